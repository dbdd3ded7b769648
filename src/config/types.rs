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

/// Where one family of requests goes: an https origin with an optional
/// path prefix, in the parts a request URI and its `Host` are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// As configured, for display.
    pub base_url: String,
    pub scheme: http::uri::Scheme,
    pub authority: http::uri::Authority,
    /// Path prefix without a trailing `/` (often empty).
    pub base_path: String,
    /// The `Host` header bcgate sends.
    pub host: HeaderValue,
}

/// Why a URL is not an [`Origin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginError {
    NotAUrl,
    NotHttps,
    Query,
    Fragment,
    NoHost,
    UserInfo,
    BadHost,
}

impl fmt::Display for OriginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAUrl => "is not a URL",
            Self::NotHttps => "must be an https:// URL",
            Self::Query => "must not have a query",
            Self::Fragment => "must not have a fragment",
            Self::NoHost => "must name a host",
            Self::UserInfo => "must not carry user info",
            Self::BadHost => "host is not a valid Host header",
        })
    }
}

impl std::error::Error for OriginError {}

impl Origin {
    /// An origin bcgate sends credentials to: `https://` with a host, no
    /// user info, no query or fragment, maybe a path prefix (kept without
    /// its trailing `/`).
    pub fn parse(url: &str) -> Result<Self, OriginError> {
        // `Uri` refuses a `#` as any bad character; name it.
        if url.contains('#') {
            return Err(OriginError::Fragment);
        }
        let uri: Uri = url.parse().map_err(|_| OriginError::NotAUrl)?;
        if uri.scheme() != Some(&http::uri::Scheme::HTTPS) {
            return Err(OriginError::NotHttps);
        }
        if uri.query().is_some() {
            return Err(OriginError::Query);
        }
        // `https://:443/` parses, with an empty host.
        let authority = uri
            .authority()
            .filter(|a| !a.host().is_empty())
            .cloned()
            .ok_or(OriginError::NoHost)?;
        if authority.as_str().contains('@') {
            return Err(OriginError::UserInfo);
        }
        let host = HeaderValue::from_str(authority.as_str()).map_err(|_| OriginError::BadHost)?;
        Ok(Self {
            base_url: url.to_owned(),
            scheme: http::uri::Scheme::HTTPS,
            authority,
            base_path: uri.path().trim_end_matches('/').to_string(),
            host,
        })
    }
}

/// The BigCommerce origins and how bcgate talks to them. The api origin's
/// parts are `Upstream`'s own fields ([`Upstream::api_origin`] gathers them).
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
    /// `upstream.payments_url`.
    pub payments: Origin,
    /// `upstream.b2b_url`.
    pub b2b: Origin,
}

impl Upstream {
    /// `upstream.base_url` as an [`Origin`], like the other families'.
    pub fn api_origin(&self) -> Origin {
        Origin {
            base_url: self.base_url.clone(),
            scheme: self.scheme.clone(),
            authority: self.authority.clone(),
            base_path: self.base_path.clone(),
            host: self.host.clone(),
        }
    }
}

/// A storefront channel and the origin its GraphQL endpoint answers on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub id: u32,
    pub origin: Origin,
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
    /// The client id of the store's API account (the `aud` of a customer's
    /// current.jwt); set together with `client_secret`.
    pub client_id: Option<String>,
    /// Signs and verifies the customer JWTs of this store.
    pub client_secret: Option<Secret>,
    /// `env NAME` or `file PATH`, never the secret.
    pub client_secret_source: Option<String>,
    /// The client secret's file, re-read on reload.
    pub client_secret_file: Option<PathBuf>,
    /// Storefront origins, in the order configured; ids are unique.
    pub channels: Vec<Channel>,
}

impl Store {
    /// Channel `id`, or without one the default channel: channel 1 if it
    /// is configured, else the first configured.
    pub fn channel(&self, id: Option<u32>) -> Option<&Channel> {
        match id {
            Some(id) => self.channels.iter().find(|c| c.id == id),
            None => self
                .channels
                .iter()
                .find(|c| c.id == 1)
                .or_else(|| self.channels.first()),
        }
    }
}

/// An `[[accounts]]` entry: an account-level API token.
#[derive(Debug)]
pub struct Account {
    /// Lowercase, with dashes: as it appears in `/accounts/{uuid}/graphql`.
    pub uuid: String,
    pub token: StoreToken,
    /// Where the token came from (`env NAME`, `file PATH`), never the token.
    pub token_source: String,
    /// The token file, re-read on reload.
    pub token_file: Option<PathBuf>,
}

/// Accounts by uuid.
#[derive(Debug, Default)]
pub struct Accounts {
    pub(super) by_uuid: foldhash::HashMap<String, Arc<Account>>,
    pub(super) list: Vec<Arc<Account>>,
}

impl Accounts {
    /// Exact match of a lowercase uuid.
    pub fn get(&self, uuid: &str) -> Option<&Arc<Account>> {
        self.by_uuid.get(uuid)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Account>> {
        self.list.iter()
    }
}

/// The `[mint]` section: the tokens bcgate mints for the storefront.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MintConfig {
    /// Asked as `expires_at` (now + this) for private tokens and impersonation tokens.
    pub token_lifetime: Duration,
    /// A cached token with less than this left is renewed; less than `token_lifetime`.
    pub renew_before: Duration,
}

impl Default for MintConfig {
    fn default() -> Self {
        Self {
            token_lifetime: Duration::from_secs(86_400),
            renew_before: Duration::from_secs(3_600),
        }
    }
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
    /// The `[[accounts]]` uuids this client may call, each configured.
    pub accounts: Vec<String>,
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
