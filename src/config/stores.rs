//! `[[stores]]`: the configured stores, their tokens, client secrets and
//! storefront channels; and reading a secret from `…_env` or `…_file`,
//! which `[[accounts]]` shares.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zeroize::Zeroizing;

use super::validate::Validator;
use super::{Channel, ConfigError, Store, StoreFile, Stores, UNREAD};
use crate::policy::Policy;
use crate::secret::{Secret, StoreToken, TokenError};

/// Where a secret is read from.
#[derive(Clone, Copy)]
pub(super) enum SecretFrom<'a> {
    Env(&'a str),
    File(&'a Path),
}

/// A secret as read: its text (wiped on drop), where it came from (`env
/// NAME`, `file PATH`) and the file to re-read on reload.
pub(super) struct ReadSecret {
    pub(super) raw: Zeroizing<String>,
    pub(super) source: String,
    pub(super) file: Option<PathBuf>,
}

/// A store's `client_id` with its secret, as read.
struct StoreClient {
    id: String,
    secret: Secret,
    source: String,
    file: Option<PathBuf>,
}

impl Validator<'_> {
    pub(super) fn stores(
        &self,
        policy: &Policy,
        files: &[StoreFile],
    ) -> Result<Stores, ConfigError> {
        let mut stores = Stores::default();
        for (i, s) in files.iter().enumerate() {
            let key = |k: &str| format!("stores[{i}].{k}");
            if !is_store_name(&s.hash) {
                return Err(self.err(key("hash"), "a store hash is lowercase letters and digits"));
            }
            if let Some(a) = &s.alias
                && !is_alias(a)
            {
                return Err(self.err(
                    key("alias"),
                    "an alias is lowercase letters, digits, '-' and '_'",
                ));
            }
            let (token, token_source, token_file) =
                self.token_of(&key, &s.token_env, &s.token_file, &s.token)?;
            let grants = s
                .scopes
                .as_ref()
                .map(|names| self.scopes(policy, &key("scopes"), names))
                .transpose()?;
            let client = self.client_credentials(&key, s)?;
            let channels = self.channels(&key, s)?;
            let store = Arc::new(Store {
                hash: s.hash.clone(),
                alias: s.alias.clone(),
                token,
                token_source,
                token_file,
                scopes: s.scopes.clone(),
                grants,
                label: format!("the token of store '{}'", s.hash),
                client_id: client.as_ref().map(|c| c.id.clone()),
                client_secret_source: client.as_ref().map(|c| c.source.clone()),
                client_secret_file: client.as_ref().and_then(|c| c.file.clone()),
                client_secret: client.map(|c| c.secret),
                channels,
            });
            for (k, name) in [("hash", Some(&s.hash)), ("alias", s.alias.as_ref())] {
                let Some(name) = name else { continue };
                if stores.by_name.insert(name.clone(), store.clone()).is_some() {
                    return Err(self.err(key(k), format!("{name:?} names another store already")));
                }
            }
            stores.list.push(store);
        }
        Ok(stores)
    }

    /// `client_id` and the client secret: both or neither, since each is
    /// useless without the other (the secret signs what the id names).
    fn client_credentials(
        &self,
        key: &dyn Fn(&str) -> String,
        s: &StoreFile,
    ) -> Result<Option<StoreClient>, ConfigError> {
        if let Some(id) = &s.client_id
            && (id.trim().is_empty() || id.chars().any(char::is_control))
        {
            return Err(self.err(key("client_id"), "must be non-empty text"));
        }
        if let (None, None, Some(secret), Some(id)) = (
            &s.client_secret_env,
            &s.client_secret_file,
            &s.client_secret,
            &s.client_id,
        ) {
            return Ok(Some(StoreClient {
                id: id.clone(),
                secret: secret.clone(),
                source: "memory".to_owned(),
                file: None,
            }));
        }
        let (k, from) = match (&s.client_secret_env, &s.client_secret_file) {
            (None, None) => {
                if s.client_id.is_some() {
                    return Err(self.err(
                        key("client_secret_env"),
                        "client_id needs its client secret: set client_secret_env or client_secret_file",
                    ));
                }
                return Ok(None);
            }
            (Some(var), None) => ("client_secret_env", SecretFrom::Env(var)),
            (None, Some(p)) => ("client_secret_file", SecretFrom::File(p)),
            (Some(_), Some(_)) => {
                return Err(self.err(
                    key("client_secret_env"),
                    "set at most one of client_secret_env and client_secret_file",
                ));
            }
        };
        let Some(client_id) = &s.client_id else {
            return Err(self.err(
                key("client_id"),
                format!("{k} needs the client_id the secret belongs to"),
            ));
        };
        let read = self.read_secret(&key(k), from)?;
        let secret = Secret::text(&read.raw).map_err(|e| {
            let why = match e {
                TokenError::Empty | TokenError::NotAHeaderValue => "the client secret is empty",
            };
            self.err(key(k), format!("{}: {why}", read.source))
        })?;
        Ok(Some(StoreClient {
            id: client_id.clone(),
            secret,
            source: read.source,
            file: read.file,
        }))
    }

    /// `channels`: ids from 1, each once, with an https origin. bcgate never
    /// guesses a storefront's host, so only these are ever queried.
    fn channels(
        &self,
        key: &dyn Fn(&str) -> String,
        s: &StoreFile,
    ) -> Result<Vec<Channel>, ConfigError> {
        let mut seen = HashSet::new();
        let mut channels = Vec::with_capacity(s.channels.len());
        for (j, c) in s.channels.iter().enumerate() {
            let k = |f: &str| key(&format!("channels[{j}].{f}"));
            if c.id == 0 {
                return Err(self.err(k("id"), "a channel id is 1 or more"));
            }
            if !seen.insert(c.id) {
                return Err(self.err(k("id"), format!("channel {} is listed twice", c.id)));
            }
            let origin = self.origin(&k("origin"), &c.origin, "storefront tokens")?;
            channels.push(Channel { id: c.id, origin });
        }
        Ok(channels)
    }

    /// The token of a store or an account: exactly one of its `token_env`
    /// and `token_file` (or a token given in memory, `bcgate dev`'s); `key`
    /// names a field of the entry.
    pub(super) fn token_of(
        &self,
        key: &dyn Fn(&str) -> String,
        env: &Option<String>,
        file: &Option<PathBuf>,
        memory: &Option<StoreToken>,
    ) -> Result<(StoreToken, String, Option<PathBuf>), ConfigError> {
        match (env, file, memory) {
            (None, None, Some(token)) => Ok((token.clone(), "memory".to_owned(), None)),
            (Some(var), None, None) => self.token(&key("token_env"), SecretFrom::Env(var)),
            (None, Some(p), None) => self.token(&key("token_file"), SecretFrom::File(p)),
            _ => Err(self.err(
                key("token_env"),
                "set exactly one of token_env and token_file",
            )),
        }
    }

    /// A header-value token (`X-Auth-Token`) from `key`'s variable or file.
    pub(super) fn token(
        &self,
        key: &str,
        from: SecretFrom<'_>,
    ) -> Result<(StoreToken, String, Option<PathBuf>), ConfigError> {
        let read = self.read_secret(key, from)?;
        let token = StoreToken::new(&read.raw)
            .map_err(|e| self.err(key, format!("{}: {e}", read.source)))?;
        Ok((token, read.source, read.file))
    }

    /// Reads a secret; without secrets (see [`Config::load_without_secrets`](super::Config::load_without_secrets))
    /// a placeholder, and a file that need not exist.
    pub(super) fn read_secret(
        &self,
        key: &str,
        from: SecretFrom<'_>,
    ) -> Result<ReadSecret, ConfigError> {
        match from {
            SecretFrom::Env(var) => {
                let raw = if self.secrets {
                    std::env::var(var).map_err(|_| {
                        self.err(key, format!("environment variable {var} is not set"))
                    })?
                } else {
                    UNREAD.to_owned()
                };
                Ok(ReadSecret {
                    raw: Zeroizing::new(raw),
                    source: format!("env {var}"),
                    file: None,
                })
            }
            SecretFrom::File(p) if !self.secrets => Ok(ReadSecret {
                raw: Zeroizing::new(UNREAD.to_owned()),
                source: format!("file {}", self.resolve(p).display()),
                file: None,
            }),
            SecretFrom::File(p) => {
                let full = self.existing(key, p)?;
                let raw = std::fs::read_to_string(&full)
                    .map_err(|e| self.err(key, format!("cannot read {}: {e}", full.display())))?;
                Ok(ReadSecret {
                    raw: Zeroizing::new(raw),
                    source: format!("file {}", full.display()),
                    file: Some(full),
                })
            }
        }
    }
}

pub(crate) fn is_store_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

pub(super) fn is_alias(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// What a store hash may be; the same rule as `stores[].hash`, so every
/// installed store can be addressed as `/stores/{hash}/…`, with a bound on
/// its length since it comes from BigCommerce, not the operator.
pub fn is_store_hash(s: &str) -> bool {
    s.len() <= 64 && is_store_name(s)
}
