//! [`ConfigError`]: which file (or environment variable), which key, what
//! is wrong.

use std::fmt;
use std::path::PathBuf;

/// A config that cannot be used: which file (or environment variable),
/// which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// Dotted key path, e.g. `clients[1].scopes[0]`; empty when it is the whole file.
    pub key: String,
    pub msg: String,
    /// The `BCGATE__…` variable that set the bad key, when one did: the
    /// file is not where to look then.
    pub env: Option<String>,
}

impl ConfigError {
    /// Blames the `BCGATE__…` override among `vars` that set the key this
    /// error is about (or, for an unknown field, that named it), if any.
    pub(super) fn blame_env(mut self, vars: impl Iterator<Item = String>) -> Self {
        let unknown = self
            .msg
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(field, _)| match self.key.as_str() {
                "" => field.to_owned(),
                parent => format!("{parent}.{field}"),
            });
        for var in vars {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let key = rest
                .split("__")
                .collect::<Vec<_>>()
                .join(".")
                .to_lowercase();
            let hit = match &unknown {
                Some(field) => key == *field || key.starts_with(&format!("{field}.")),
                None => !self.key.is_empty() && key == self.key,
            };
            if hit {
                self.key = key;
                self.env = Some(var);
                break;
            }
        }
        self
    }
}

/// Environment overrides: `BCGATE__SECTION__KEY`.
const ENV_PREFIX: &str = "BCGATE__";

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(var) = &self.env {
            write!(f, "environment variable {var} ({}): {}", self.key, self.msg)
        } else if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.msg)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.key, self.msg)
        }
    }
}

impl std::error::Error for ConfigError {}
