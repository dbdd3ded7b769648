//! The live config generation ([`State`]) held behind one atomic pointer. A
//! reload builds a whole new generation and swaps it in; a request takes its
//! snapshot once, at its start, so in-flight requests finish on the config
//! they began with, and a config that fails to load never replaces the one
//! serving.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::state::State;

/// Why a reload was refused; the generation serving keeps serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadError {
    /// The file does not load or validate (the message names file and key).
    Invalid(String),
    /// A setting only a restart can change was changed (listeners, TLS on
    /// or off, `[learn]`, `[app]`).
    NeedsRestart(String),
    /// The new generation could not be built (certificates, token store, …).
    Build(String),
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(why) | Self::NeedsRestart(why) | Self::Build(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ReloadError {}

#[derive(Debug)]
pub struct Live {
    state: ArcSwap<State>,
    last_reload_failed: AtomicBool,
}

impl Live {
    pub fn new(config: Config) -> Result<Self, String> {
        Ok(Self {
            state: ArcSwap::from_pointee(State::build(config, None)?),
            last_reload_failed: AtomicBool::new(false),
        })
    }

    /// The current generation; hold it for the whole request.
    pub fn state(&self) -> Arc<State> {
        self.state.load_full()
    }

    /// Loads `path` again (token files re-read) and swaps it in if it is
    /// valid. Listener addresses cannot change without a restart: a new
    /// `server.listen` or `admin.listen` is refused.
    pub fn reload(&self, path: &Path) -> Result<(), ReloadError> {
        let result = self.try_reload(path);
        self.last_reload_failed
            .store(result.is_err(), Ordering::Relaxed);
        crate::metrics::config_reload(result.is_ok());
        match &result {
            Ok(()) => tracing::info!(config = %path.display(), "config reloaded"),
            Err(e) => tracing::error!(
                config = %path.display(),
                error = %e,
                "config reload refused; the previous config keeps serving"
            ),
        }
        result
    }

    fn try_reload(&self, path: &Path) -> Result<(), ReloadError> {
        let config = Config::load(path).map_err(|e| ReloadError::Invalid(e.to_string()))?;
        let current = self.state();
        if let Some(why) = needs_restart(&config, &current.config) {
            return Err(ReloadError::NeedsRestart(why));
        }
        let next = State::build(config, Some(&current)).map_err(ReloadError::Build)?;
        self.state.store(Arc::new(next));
        Ok(())
    }

    /// Whether the most recent reload was refused (shown by `/readyz`).
    pub fn last_reload_failed(&self) -> bool {
        self.last_reload_failed.load(Ordering::Relaxed)
    }
}

/// What in `config` differs from `old` that only a restart can change.
fn needs_restart(config: &Config, old: &Config) -> Option<String> {
    let why = if config.server.listen != old.server.listen {
        return Some(format!(
            "server.listen changed ({} → {}); restart bcgate to move it",
            old.server.listen, config.server.listen
        ));
    } else if config.admin != old.admin {
        "admin.listen changed; restart bcgate to move it"
    } else if config.server.tls.is_some() != old.server.tls.is_some() {
        "server.tls was turned on or off; restart bcgate for that"
    } else if config.learn != old.learn {
        "[learn] (or the Redis keeping its observations) changed; restart bcgate for that"
    } else {
        match (&config.app, &old.app) {
            (Some(new), Some(was)) if new.listen != was.listen => {
                "app.listen changed; restart bcgate to move it"
            }
            (Some(new), Some(was)) if new.tls.is_some() != was.tls.is_some() => {
                "app.tls was turned on or off; restart bcgate for that"
            }
            (Some(_), Some(_)) | (None, None) => return None,
            _ => "[app] was added or removed; restart bcgate for that",
        }
    };
    Some(why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "bc-token-for-live-tests-7Hq2";

    fn write(dir: &Path, listen: &str, extra: &str) -> std::path::PathBuf {
        std::fs::write(dir.join("t"), TOKEN).expect("token file");
        let path = dir.join("bcgate.toml");
        let toml = format!(
            "[server]\nlisten = \"{listen}\"\n{extra}\n[[stores]]\nhash = \"abc\"\ntoken_file = \"t\"\n\n\
             [[clients]]\nname = \"c\"\nkey_sha256 = \"{}\"\nstores = [\"abc\"]\n",
            "ab".repeat(32)
        );
        std::fs::write(&path, toml).expect("config");
        path
    }

    fn live(path: &Path) -> Live {
        Live::new(Config::load(path).expect("valid config")).expect("live")
    }

    #[test]
    fn a_refused_reload_says_why_and_keeps_the_generation_serving() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write(dir.path(), "127.0.0.1:18080", "");
        let gw = live(&path);
        let first = gw.state();
        let ids = first.request_ids.clone();

        write(dir.path(), "127.0.0.1:18081", "");
        let err = gw
            .reload(&path)
            .expect_err("a new listen address needs a restart");
        assert!(matches!(err, ReloadError::NeedsRestart(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "server.listen changed (127.0.0.1:18080 → 127.0.0.1:18081); restart bcgate to move it"
        );
        assert!(gw.last_reload_failed());
        assert!(
            Arc::ptr_eq(&gw.state(), &first),
            "the old generation keeps serving"
        );

        std::fs::write(&path, "[server]\nlisten = 5\n").expect("config");
        let err = gw.reload(&path).expect_err("not a valid config");
        assert!(matches!(err, ReloadError::Invalid(_)), "{err:?}");
        assert!(Arc::ptr_eq(&gw.state(), &first));

        write(dir.path(), "127.0.0.1:18080", "");
        gw.reload(&path).expect("same listeners: reloads");
        assert!(!gw.last_reload_failed());
        let second = gw.state();
        assert!(!Arc::ptr_eq(&second, &first), "a new generation");
        assert!(
            Arc::ptr_eq(&second.request_ids, &ids),
            "request ids carry over, so they stay unique across reloads"
        );
        assert!(!err.to_string().contains(TOKEN));
    }
}
