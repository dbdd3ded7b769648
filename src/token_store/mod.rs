//! The token store: where the tokens of stores that installed the app are
//! kept, so that no person ever handles them. This module holds the record
//! and key types and the two backends: [`FileBackend`] (one encrypted file,
//! rewritten atomically on every change) and [`RedisBackend`] (one encrypted
//! value per store in Redis, shared by several replicas), behind
//! [`TokenStore`].

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{KeySource, TokenStoreBackend, TokenStoreConfig};
use crate::secret::{Secret, StoreToken};

mod file;
mod redis;

pub use self::file::FileBackend;
pub use self::redis::{RedisBackend, check_url as check_redis_url, redact_url};
pub use crate::config::{KEY_LEN, KeyError, is_store_hash};

/// The configured backend. Reads are served from memory in both; `put` and
/// `delete` block (disk sync, or a Redis round trip).
#[derive(Debug)]
pub enum TokenStore {
    File(FileBackend),
    Redis(RedisBackend),
}

impl TokenStore {
    /// Every installed store, ordered by hash.
    pub fn list(&self) -> Vec<Arc<Installed>> {
        match self {
            Self::File(f) => f.list(),
            Self::Redis(r) => r.list(),
        }
    }

    pub fn get(&self, hash: &str) -> Option<Arc<Installed>> {
        match self {
            Self::File(f) => f.get(hash),
            Self::Redis(r) => r.get(hash),
        }
    }

    pub fn put(&self, installed: Installed) -> Result<(), String> {
        match self {
            Self::File(f) => f.put(installed).map_err(|e| e.to_string()),
            Self::Redis(r) => r.put(installed),
        }
    }

    /// `false` if the store was not there.
    pub fn delete(&self, hash: &str) -> Result<bool, String> {
        match self {
            Self::File(f) => f.delete(hash).map_err(|e| e.to_string()),
            Self::Redis(r) => r.delete(hash),
        }
    }

    /// Picks up changes another process made: the file is read again; the
    /// Redis backend follows Redis by itself, so there is nothing to do.
    pub fn reread(&self) -> Result<(), String> {
        match self {
            Self::File(f) => f.reread().map_err(|e| e.to_string()),
            Self::Redis(_) => Ok(()),
        }
    }

    /// The file's path, or the Redis URL without credentials.
    pub fn location(&self) -> String {
        match self {
            Self::File(f) => f.path().display().to_string(),
            Self::Redis(r) => r.location().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests;

/// One store that installed the app: what BigCommerce's `/auth` exchange
/// returned. `Debug` shows everything but the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The store hash (`abc123` of `stores/abc123`): lowercase letters and digits.
    pub hash: String,
    pub token: StoreToken,
    /// The scopes the token was granted, as BigCommerce names them.
    pub scopes: Vec<String>,
    /// Who installed the app.
    pub user: User,
    /// The store's owner.
    pub owner: User,
    pub account_uuid: Option<String>,
    /// Unix seconds.
    pub installed_at: u64,
}

/// A BigCommerce control-panel user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub id: u64,
    pub email: String,
}

// ---------------------------------------------------------------- key

/// The AES-256-GCM key the store file is encrypted with, kept in a
/// [`Secret`] (redacted, zeroed on drop). (ring's expanded key schedule,
/// built for each read or write and dropped after it, is not wiped: ring
/// offers no way to.)
pub struct TokenKey {
    /// Exactly [`KEY_LEN`] bytes.
    bytes: Secret,
    /// Identifies the key in the file header without revealing it, so that
    /// "wrong key" and "damaged file" are told apart.
    id: [u8; KEY_ID_LEN],
}

pub(crate) const KEY_ID_LEN: usize = 8;

impl TokenKey {
    /// Standard base64, padded or not, surrounding whitespace ignored (env
    /// files and key files end in a newline). Must decode to exactly 32 bytes.
    /// The caller keeps (and should wipe) `text`.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        Self::new(crate::config::decode_store_key(text)?)
    }

    /// The key the config read ([`TokenStoreConfig::key`]).
    pub fn new(bytes: Secret) -> Result<Self, KeyError> {
        if bytes.expose_bytes().len() != KEY_LEN {
            return Err(KeyError::WrongLength(bytes.expose_bytes().len()));
        }
        let digest = Sha256::new()
            .chain_update(b"bcgate token store key id\0")
            .chain_update(bytes.expose_bytes())
            .finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Ok(Self { bytes, id })
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.bytes.expose_bytes()
    }

    pub(crate) fn id(&self) -> &[u8; KEY_ID_LEN] {
        &self.id
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TokenKey").field(&self.bytes).finish()
    }
}

// ---------------------------------------------------------------- opening

/// Opening the configured store: the layer that builds live state (the
/// server, `bcgate tokens`) does it, so that the config stays below the
/// token store.
pub trait OpenTokenStore {
    /// Opens the store for the server: the file, or Redis followed by a
    /// background task (a Redis that is down is retried, not an error).
    fn open(&self) -> Result<TokenStore, String>;
    /// Opens the store once, for `bcgate tokens`: Redis must answer now.
    fn open_once(&self) -> Result<TokenStore, String>;
}

impl OpenTokenStore for TokenStoreConfig {
    fn open(&self) -> Result<TokenStore, String> {
        Ok(match &self.backend {
            TokenStoreBackend::File(path) => TokenStore::File(
                FileBackend::open(path.clone(), store_key(self)?).map_err(|e| e.to_string())?,
            ),
            TokenStoreBackend::Redis(url) => {
                TokenStore::Redis(RedisBackend::start(url.expose(), store_key(self)?)?)
            }
        })
    }

    fn open_once(&self) -> Result<TokenStore, String> {
        match &self.backend {
            TokenStoreBackend::File(_) => self.open(),
            TokenStoreBackend::Redis(url) => Ok(TokenStore::Redis(RedisBackend::open_once(
                url.expose(),
                store_key(self)?,
            )?)),
        }
    }
}

/// Reads the key now (env or file); the error names the key, never its text.
fn store_key(cfg: &TokenStoreConfig) -> Result<TokenKey, String> {
    let what = match &cfg.key {
        KeySource::Env(var) => format!("token_store.key_env {var}"),
        KeySource::File(p) => format!("token_store.key_file {}", p.display()),
    };
    TokenKey::new(cfg.key()?).map_err(|e| format!("{what}: {e}"))
}

// ---------------------------------------------------------------- errors

/// A token store that cannot be read or written: which file, and what is
/// wrong. Never contains key or token bytes.
#[derive(Debug)]
pub struct StoreError {
    pub path: PathBuf,
    pub kind: StoreErrorKind,
}

#[derive(Debug)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// A file-system call failed; `action` says which, on which file.
    Io { action: String, source: io::Error },
    /// The file is missing and so is the directory it would be written to.
    NoDirectory,
    /// The path names no file (it is `/` or ends in `..`).
    NotAFilePath,
    /// The file does not start with the store's magic bytes.
    NotAStore,
    /// A store file of a format version this bcgate does not read.
    UnsupportedVersion(u8),
    /// Shorter (or longer) than its header says; `expected` is `None` when
    /// even the header is incomplete.
    Truncated { len: u64, expected: Option<u64> },
    /// Encrypted with another key.
    WrongKey,
    /// Authentication failed: the ciphertext or header was changed.
    Damaged,
    /// Decrypted, but not a token store this bcgate understands (a newer
    /// format?). Only the position is kept: serde messages can quote values.
    Contents { line: usize, column: usize },
    /// The same store hash twice in the decrypted contents.
    Duplicate(String),
    /// A record whose store hash is not lowercase letters and digits.
    InvalidHash(String),
    /// The system random number generator failed.
    Random,
    /// The encryption library refused an operation it only refuses on
    /// misuse (a bug in bcgate, never the file's fault).
    Crypto,
}

impl StoreError {
    pub(crate) fn new(path: &Path, kind: StoreErrorKind) -> Self {
        Self {
            path: path.to_path_buf(),
            kind,
        }
    }

    pub(crate) fn io(path: &Path, action: impl Into<String>, source: io::Error) -> Self {
        Self::new(
            path,
            StoreErrorKind::Io {
                action: action.into(),
                source,
            },
        )
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token store {}: ", self.path.display())?;
        match &self.kind {
            StoreErrorKind::Io { action, source } => write!(f, "{action}: {source}"),
            StoreErrorKind::NoDirectory => {
                f.write_str("the file is missing and its directory does not exist")
            }
            StoreErrorKind::NotAFilePath => f.write_str("the path does not name a file"),
            StoreErrorKind::NotAStore => f.write_str("not a bcgate token store file"),
            StoreErrorKind::UnsupportedVersion(v) => write!(
                f,
                "format version {} is not one this bcgate reads (it reads 1)",
                char::from(*v).escape_default()
            ),
            StoreErrorKind::Truncated {
                len,
                expected: Some(expected),
            } => write!(
                f,
                "the file is {len} bytes but its header says {expected}: truncated or damaged"
            ),
            StoreErrorKind::Truncated {
                len,
                expected: None,
            } => write!(
                f,
                "the file is {len} bytes, too short for its header: truncated or damaged"
            ),
            StoreErrorKind::WrongKey => {
                f.write_str("the file was encrypted with a different key than the configured one")
            }
            StoreErrorKind::Damaged => f.write_str(
                "the file failed authentication: it was damaged or tampered with \
                 (restore it from a backup, or delete it and reinstall the app)",
            ),
            StoreErrorKind::Contents { line, column } => write!(
                f,
                "the decrypted contents are not a token store this bcgate understands \
                 (at line {line}, column {column}); written by a newer version?"
            ),
            StoreErrorKind::Duplicate(hash) => write!(f, "store {hash:?} is in the file twice"),
            StoreErrorKind::InvalidHash(hash) => write!(
                f,
                "{hash:?} is not a store hash (lowercase letters and digits)"
            ),
            StoreErrorKind::Random => f.write_str("the system random number generator failed"),
            StoreErrorKind::Crypto => f.write_str("encryption failed (a bug in bcgate)"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            StoreErrorKind::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
