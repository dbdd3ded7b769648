//! `[token_store]`: where installed stores' tokens live, and its key. The
//! config reads and checks the key; opening the store is the token store's
//! business (`token_store::OpenTokenStore`), so the config stays below it.

use std::fmt;

use base64::Engine;
use zeroize::Zeroizing;

use super::validate::Validator;
use super::{ConfigError, KeySource, TokenStoreBackend, TokenStoreConfig, TokenStoreFile};
use crate::secret::Secret;

impl Validator<'_> {
    pub(super) fn token_store(&self, t: &TokenStoreFile) -> Result<TokenStoreConfig, ConfigError> {
        let backend =
            match t.kind.as_str() {
                "file" => {
                    if t.url.is_some() {
                        return Err(self.err("token_store.url", "only for kind = \"redis\""));
                    }
                    let path = t.path.as_ref().map(|p| self.resolve(p)).ok_or_else(|| {
                        self.err("token_store.path", "kind = \"file\" needs a path")
                    })?;
                    TokenStoreBackend::File(path)
                }
                "redis" => {
                    if t.path.is_some() {
                        return Err(self.err("token_store.path", "only for kind = \"file\""));
                    }
                    let url = t.url.clone().ok_or_else(|| {
                        self.err("token_store.url", "kind = \"redis\" needs a url")
                    })?;
                    check_redis_url(&url).map_err(|e| self.err("token_store.url", e))?;
                    TokenStoreBackend::Redis(
                        redis_url(&url).map_err(|e| self.err("token_store.url", e))?,
                    )
                }
                other => {
                    return Err(self.err(
                        "token_store.kind",
                        format!("{other:?} is not a token store kind (\"file\" or \"redis\")"),
                    ));
                }
            };
        let key = match (&t.key_env, &t.key_file) {
            (Some(var), None) => KeySource::Env(var.clone()),
            (None, Some(p)) => KeySource::File(self.existing("token_store.key_file", p)?),
            _ => {
                return Err(self.err(
                    "token_store.key_env",
                    "set exactly one of key_env and key_file",
                ));
            }
        };
        let cfg = TokenStoreConfig { backend, key };
        if !self.secrets {
            return Ok(cfg);
        }
        // Check the key now, so a bad one is a config error naming its key.
        cfg.key().map_err(|e| {
            let (k, msg) = e.split_once(": ").unwrap_or(("token_store", e.as_str()));
            let k = k.split(' ').next().unwrap_or(k);
            self.err(k, msg)
        })?;
        Ok(cfg)
    }
}

/// Bytes in a token store key (AES-256).
pub const KEY_LEN: usize = 32;

/// Why a text is not a store key; says nothing about the text itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    NotBase64,
    /// How many bytes it decodes to, when that is not 32.
    WrongLength(usize),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotBase64 => f.write_str("the store key is not valid base64"),
            Self::WrongLength(n) => write!(
                f,
                "the store key decodes to {n} bytes; it must be exactly {KEY_LEN} \
                 (make one with `openssl rand -base64 32`)"
            ),
        }
    }
}

impl std::error::Error for KeyError {}

/// Standard base64, padded or not, surrounding whitespace ignored (env
/// files and key files end in a newline), to exactly [`KEY_LEN`] bytes.
/// The caller keeps (and should wipe) `text`.
pub fn decode_store_key(text: &str) -> Result<Secret, KeyError> {
    let text = text.trim();
    // 32 bytes are 43 or 44 characters; anything much longer cannot be a
    // key, and bounding it lets the decode land in a fixed wiped buffer
    // instead of a Vec that could reallocate.
    if text.len() > 64 {
        return Err(KeyError::WrongLength(text.len() / 4 * 3));
    }
    let mut buf = Zeroizing::new([0u8; 48]);
    let n = base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT
        .decode_slice(text, &mut buf[..])
        .map_err(|_| KeyError::NotBase64)?;
    if n != KEY_LEN {
        return Err(KeyError::WrongLength(n));
    }
    Ok(Secret::bytes(Zeroizing::new(buf[..KEY_LEN].to_vec())))
}

impl TokenStoreConfig {
    /// Reads and decodes the key now (env or file); the error names the
    /// key, never its text.
    pub fn key(&self) -> Result<Secret, String> {
        let (raw, what) = match &self.key {
            KeySource::Env(var) => (
                Zeroizing::new(std::env::var(var).map_err(|_| {
                    format!("token_store.key_env: environment variable {var} is not set")
                })?),
                format!("token_store.key_env {var}"),
            ),
            KeySource::File(p) => (
                Zeroizing::new(std::fs::read_to_string(p).map_err(|e| {
                    format!("token_store.key_file: cannot read {}: {e}", p.display())
                })?),
                format!("token_store.key_file {}", p.display()),
            ),
        };
        decode_store_key(&raw).map_err(|e| format!("{what}: {e}"))
    }
}

/// A checked Redis URL, kept as a [`Secret`] since it may hold a password.
pub(super) fn redis_url(url: &str) -> Result<Secret, String> {
    check_redis_url(url)?;
    Secret::text(url).map_err(|_| "must not be empty".to_owned())
}

/// Checks a Redis `url` without connecting: `redis://` (or
/// `redis+unix://`) only. The error never quotes the URL (it may hold a
/// password).
pub fn check_redis_url(url: &str) -> Result<(), String> {
    if url.starts_with("rediss://") {
        return Err("TLS to Redis (rediss://) is not supported; use redis://".into());
    }
    redis::Client::open(url)
        .map(|_| ())
        .map_err(|e| format!("not a Redis URL: {:?}", e.kind()))
}
