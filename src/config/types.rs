//! The validated configuration's parts: what the rest of bcgate reads.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Uri};

use crate::policy::{Grants, StoreAllow};
use crate::secret::{Secret, StoreToken, redact_url};

/// Whether a scope denial refuses the request or is only recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Enforce,
    Learn,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Learn => "learn",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(a) => write!(f, "{a}"),
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TlsPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: Listen,
    pub tls: Option<TlsPaths>,
    pub max_body_bytes: u64,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub drain_timeout: Duration,
    /// Base of every error's `type` URI (`server.error_docs_url`).
    pub error_docs_url: String,
    pub body_total_timeout: Duration,
    pub max_connections: usize,
    pub listen_backlog: u32,
    pub max_in_flight: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// As configured, for display.
    pub base_url: String,
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
    /// Path prefix of `base_url` without a trailing `/` (usually empty).
    pub base_path: String,
    /// The `Host` header bcgate sends.
    pub host: HeaderValue,
    pub ca_file: Option<PathBuf>,
    /// Extra roots given in memory, PEM.
    pub ca_pem: Option<String>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

#[derive(Debug)]
pub struct Store {
    pub hash: String,
    pub alias: Option<String>,
    pub token: StoreToken,
    /// Where the token came from (`env BC_TOKEN_X`, `file /run/…`), never the token.
    pub token_source: String,
    /// The token file, re-read on reload and checked by `/readyz`.
    pub token_file: Option<PathBuf>,
    /// The scopes the store's token was granted, when the operator states them.
    pub scopes: Option<Vec<String>>,
    pub grants: Option<Grants>,
    /// `the token of store 'abc123'`, for error details.
    pub label: String,
}

#[derive(Debug)]
pub struct Client {
    pub name: String,
    /// `client 'name'`, for error details.
    pub label: String,
    pub stores: StoreAllow,
    /// Real hash of the store used for paths without `/stores/{store}`.
    pub default_store: Option<String>,
    pub scopes: Vec<String>,
    pub grants: Grants,
    /// Whether a scope denial refuses the request or is only recorded.
    pub mode: Mode,
    /// How the client is identified besides a key (`; unix uid 1000`), for `bcgate check`.
    pub identity: String,
    /// Weight in each store's fair queue (`quota_weight`, 1 to 1000).
    pub quota_weight: u32,
    /// Cap on this client's part of each quota window (`quota_max_share`).
    pub quota_max_share: Option<f64>,
}

/// The `[quota]` section: how bcgate shares each store's rate-limit window.
#[derive(Clone, PartialEq)]
pub struct QuotaConfig {
    /// Longest a request waits for its store's budget before a 429.
    pub max_wait: Duration,
    /// Requests that may wait per store (on this replica); more are a 429 at once.
    pub max_queue: usize,
    /// How often an idempotent request that met an upstream 429 is sent again.
    pub retries: u32,
    /// Replicas sharing each store; without Redis each uses 1/replicas of the quota.
    pub replicas: u32,
    /// The URL may hold a password: kept as a [`Secret`], shown through [`redact_url`].
    pub redis_url: Option<Secret>,
}

impl fmt::Debug for QuotaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuotaConfig")
            .field("max_wait", &self.max_wait)
            .field("max_queue", &self.max_queue)
            .field("retries", &self.retries)
            .field("replicas", &self.replicas)
            // The URL may hold a password.
            .field(
                "redis_url",
                &self.redis_url.as_ref().map(|u| redact_url(u.expose())),
            )
            .finish()
    }
}

/// The `[app]` section: the BigCommerce app callbacks.
#[derive(Debug)]
pub struct App {
    pub listen: SocketAddr,
    /// Like `server.tls`, without client certificates.
    pub tls: Option<TlsPaths>,
    /// `public_url` without a trailing `/`.
    pub public_url: String,
    /// `public_url` + `/auth`, sent as `redirect_uri` in the code exchange.
    pub redirect_uri: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// `env NAME` or `file PATH`, never the secret.
    pub client_secret_source: String,
    /// What the app must be granted, in the order configured.
    pub scopes: Vec<String>,
    /// `login_url` + `/oauth2/token`.
    pub token_url: Uri,
}

/// Where the store key of `[token_store]` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Env(String),
    File(PathBuf),
}

/// The `[token_store]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenStoreConfig {
    pub backend: TokenStoreBackend,
    pub key: KeySource,
}

/// `kind = "file"` with its `path`, or `kind = "redis"` with its `url`.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenStoreBackend {
    File(PathBuf),
    /// The URL, which may hold a password.
    Redis(Secret),
}

impl fmt::Debug for TokenStoreBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => f.debug_tuple("File").field(p).finish(),
            // The URL may hold a password.
            Self::Redis(url) => f
                .debug_tuple("Redis")
                .field(&redact_url(url.expose()))
                .finish(),
        }
    }
}

/// The `[learn]` section: where learn-mode observations are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnConfig {
    pub backend: LearnBackend,
    /// Distinct (client, method, route, level) entries kept; more are dropped.
    pub max_entries: usize,
    pub flush_interval: Duration,
}

/// `learn.path`, or without it the Redis of `[token_store] kind = "redis"`.
#[derive(Clone, PartialEq, Eq)]
pub enum LearnBackend {
    File(PathBuf),
    /// The URL, which may hold a password.
    Redis(Secret),
}

impl fmt::Display for LearnBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => write!(f, "{}", p.display()),
            // The URL may hold a password.
            Self::Redis(url) => f.write_str(&redact_url(url.expose())),
        }
    }
}

impl fmt::Debug for LearnBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LearnBackend({self})")
    }
}

/// Stores by hash and by alias. These maps are built from the config and
/// only read per request, so a fast seeded hash serves (no inserts an
/// attacker could steer).
#[derive(Debug, Default)]
pub struct Stores {
    pub(super) by_name: foldhash::HashMap<String, Arc<Store>>,
    pub(super) list: Vec<Arc<Store>>,
}

impl Stores {
    /// Exact match of a hash or alias.
    pub fn get(&self, name: &str) -> Option<&Arc<Store>> {
        self.by_name.get(name)
    }

    /// Whether a name matches a hash or alias in another case.
    pub fn matches_ignoring_case(&self, name: &str) -> bool {
        self.by_name.keys().any(|k| k.eq_ignore_ascii_case(name))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Store>> {
        self.list.iter()
    }
}

/// Clients by the SHA-256 of their key, by unix uid and by certificate subject.
#[derive(Debug, Default)]
pub struct Clients {
    pub(super) by_digest: foldhash::HashMap<[u8; 32], Arc<Client>>,
    pub(super) by_uid: foldhash::HashMap<u32, Arc<Client>>,
    /// Keyed by [`normalize_subject`](super::normalize_subject).
    pub(super) by_subject: foldhash::HashMap<String, Arc<Client>>,
    pub(super) list: Vec<Arc<Client>>,
}

impl Clients {
    pub fn by_digest(&self, digest: &[u8; 32]) -> Option<&Arc<Client>> {
        self.by_digest.get(digest)
    }

    pub fn by_uid(&self, uid: u32) -> Option<&Arc<Client>> {
        self.by_uid.get(&uid)
    }

    /// `subject` in normalized form, as [`normalize_subject`](super::normalize_subject) gives it.
    pub fn by_subject(&self, subject: &str) -> Option<&Arc<Client>> {
        self.by_subject.get(subject)
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<Client>> {
        self.list.iter().find(|c| c.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Client>> {
        self.list.iter()
    }
}
