//! Configuration: the TOML file as written (unknown keys are errors), loaded
//! through the `config` crate with `BCGATE__SECTION__KEY` overrides, and
//! validated into [`Config`], the only form the rest of bcgate sees. Every
//! error names the file and the key.
//!
//! Relative paths in the file (`token_file`, `tls.cert`, `ca_file`, …) are
//! resolved against the directory of the config file.
//!
//! `bcgate dev` builds a [`FileConfig`] in memory instead, with the two
//! things a file cannot hold: a store token ([`StoreFile::token`]) and extra
//! upstream roots ([`UpstreamFile::ca_pem`]), both given as values.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Uri};
use serde::Deserialize;

use crate::learn::Mode;
use crate::policy::{Grants, Level, Origin, Policy, Route, RouteFlags, StoreAllow, table};
use crate::secret::StoreToken;
use zeroize::Zeroizing;

/// Where the config file is looked for when neither `--config` nor `BCGATE_CONFIG` is given.
pub const DEFAULT_PATH: &str = "config/bcgate.toml";

/// What stands for a secret [`Config::load_without_secrets`] did not read.
const UNREAD: &str = "(not read)";

// ---------------------------------------------------------------- file form

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub server: ServerFile,
    pub admin: Option<AdminFile>,
    #[serde(default)]
    pub upstream: UpstreamFile,
    #[serde(default)]
    pub stores: Vec<StoreFile>,
    #[serde(default)]
    pub clients: Vec<ClientFile>,
    #[serde(default)]
    pub routes: Vec<RouteFile>,
    /// The BigCommerce app callbacks (the install flow).
    pub app: Option<AppFile>,
    /// Where installed stores' tokens live.
    pub token_store: Option<TokenStoreFile>,
    /// Sharing each store's rate-limit window among the clients.
    pub quota: Option<QuotaFile>,
    /// Where learn-mode observations are kept.
    pub learn: Option<LearnFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerFile {
    pub listen: String,
    pub tls: Option<TlsFile>,
    pub max_body_bytes: u64,
    /// How long a client may take to send its request headers.
    pub header_read_timeout_ms: u64,
    /// How long a client may pause while sending a request body.
    pub body_read_timeout_ms: u64,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    pub drain_timeout_ms: u64,
    /// The page documenting the error codes; an error's `type` is this plus `#<code>`.
    pub error_docs_url: String,
    /// How long a client may take to send a whole request body.
    pub body_total_timeout_ms: u64,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: u64,
    /// The kernel's queue of connections not yet accepted (TCP listeners).
    pub listen_backlog: u32,
    /// Requests in flight at once; further ones are answered 503 `overloaded`.
    pub max_in_flight: u64,
}

impl Default for ServerFile {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            tls: None,
            max_body_bytes: 20 * 1024 * 1024,
            header_read_timeout_ms: 30_000,
            body_read_timeout_ms: 30_000,
            drain_timeout_ms: 30_000,
            error_docs_url: crate::error::DEFAULT_ERROR_DOCS_URL.into(),
            body_total_timeout_ms: 60_000,
            max_connections: 10_000,
            listen_backlog: 1024,
            max_in_flight: 1024,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    pub listen: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamFile {
    pub base_url: String,
    pub ca_file: Option<PathBuf>,
    /// PEM roots given in memory, added like `ca_file`'s (`bcgate dev`'s
    /// CA); not a key of the file.
    #[serde(skip)]
    pub ca_pem: Option<String>,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
}

impl Default for UpstreamFile {
    fn default() -> Self {
        Self {
            base_url: "https://api.bigcommerce.com".into(),
            ca_file: None,
            ca_pem: None,
            connect_timeout_ms: 5_000,
            request_timeout_ms: 60_000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreFile {
    pub hash: String,
    pub alias: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// The token itself, given in memory instead of `token_env` or
    /// `token_file` (`bcgate dev`); not a key of the file.
    #[serde(skip)]
    pub token: Option<StoreToken>,
    pub scopes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    pub name: String,
    pub key_sha256: Option<String>,
    /// Identity from a unix-socket peer's uid, instead of (or beside) a key.
    pub unix_uid: Option<u32>,
    /// Identity from an mTLS client certificate's subject.
    pub tls_subject: Option<String>,
    #[serde(default)]
    pub stores: Vec<String>,
    pub default_store: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// This client's weight in each store's quota (`[quota]`), default 1.
    pub quota_weight: Option<u32>,
    /// The most of each store's quota window this client may use (0 < x ≤ 1).
    pub quota_max_share: Option<f64>,
    /// `enforce` (the default) or `learn`.
    pub mode: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub method: String,
    pub path: String,
    pub scope: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppFile {
    pub listen: String,
    pub tls: Option<TlsFile>,
    pub public_url: String,
    pub client_id: String,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub scopes: Vec<String>,
    #[serde(default = "default_login_url")]
    pub login_url: String,
}

fn default_login_url() -> String {
    "https://login.bigcommerce.com".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenStoreFile {
    pub kind: String,
    pub path: Option<PathBuf>,
    pub key_env: Option<String>,
    pub key_file: Option<PathBuf>,
    pub url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaFile {
    pub max_wait_ms: u64,
    pub max_queue: usize,
    pub retries: u32,
    pub replicas: u32,
    pub redis_url: Option<String>,
}

impl Default for QuotaFile {
    fn default() -> Self {
        Self {
            max_wait_ms: 2_000,
            max_queue: 1_000,
            retries: 1,
            replicas: 1,
            redis_url: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnFile {
    pub path: Option<PathBuf>,
    #[serde(default = "default_learn_max_entries")]
    pub max_entries: usize,
    #[serde(default = "default_learn_flush_interval_ms")]
    pub flush_interval_ms: u64,
}

fn default_learn_max_entries() -> usize {
    10_000
}

fn default_learn_flush_interval_ms() -> u64 {
    10_000
}

// ---------------------------------------------------------------- errors

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
    fn blame_env(mut self, vars: impl Iterator<Item = String>) -> Self {
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

// ---------------------------------------------------------------- validated form

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
    pub redis_url: Option<String>,
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
                &self
                    .redis_url
                    .as_deref()
                    .map(crate::token_store::redact_url),
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
    pub client_secret: ClientSecret,
    /// `env NAME` or `file PATH`, never the secret.
    pub client_secret_source: String,
    /// What the app must be granted, in the order configured.
    pub scopes: Vec<String>,
    /// `login_url` + `/oauth2/token`.
    pub token_url: Uri,
}

/// The app's client secret: `Debug` and `Display` say `[REDACTED]`, and the
/// bytes are zeroed on drop.
#[derive(Clone)]
pub struct ClientSecret(Arc<Zeroizing<String>>);

impl ClientSecret {
    pub fn new(raw: &str) -> Result<Self, &'static str> {
        let t = raw.trim();
        if t.is_empty() {
            return Err("the client secret is empty");
        }
        Ok(Self(Arc::new(Zeroizing::new(t.to_owned()))))
    }

    /// The only way to reach the secret (form field of the code exchange,
    /// HMAC key of the signed payloads).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([REDACTED])")
    }
}

impl fmt::Display for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
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
    Redis(String),
}

impl fmt::Debug for TokenStoreBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => f.debug_tuple("File").field(p).finish(),
            // The URL may hold a password.
            Self::Redis(url) => f
                .debug_tuple("Redis")
                .field(&crate::token_store::redact_url(url))
                .finish(),
        }
    }
}

impl TokenStoreConfig {
    /// Reads the key now (env or file); the error names the key, never its text.
    pub fn key(&self) -> Result<crate::token_store::StoreKey, String> {
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
        crate::token_store::StoreKey::from_base64(&raw).map_err(|e| format!("{what}: {e}"))
    }

    /// Opens the store for the server: the file, or Redis followed by a
    /// background task (a Redis that is down is retried, not an error).
    pub fn open(&self) -> Result<crate::token_store::TokenStore, String> {
        use crate::token_store::{FileStore, RedisStore, TokenStore};
        Ok(match &self.backend {
            TokenStoreBackend::File(path) => TokenStore::File(
                FileStore::open(path.clone(), self.key()?).map_err(|e| e.to_string())?,
            ),
            TokenStoreBackend::Redis(url) => {
                TokenStore::Redis(RedisStore::start(url, self.key()?)?)
            }
        })
    }

    /// Opens the store once, for `bcgate tokens`: Redis must answer now.
    pub fn open_once(&self) -> Result<crate::token_store::TokenStore, String> {
        use crate::token_store::{RedisStore, TokenStore};
        match &self.backend {
            TokenStoreBackend::File(_) => self.open(),
            TokenStoreBackend::Redis(url) => {
                Ok(TokenStore::Redis(RedisStore::open_once(url, self.key()?)?))
            }
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
    Redis(String),
}

impl fmt::Display for LearnBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => write!(f, "{}", p.display()),
            // The URL may hold a password.
            Self::Redis(url) => f.write_str(&crate::token_store::redact_url(url)),
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
    by_name: foldhash::HashMap<String, Arc<Store>>,
    list: Vec<Arc<Store>>,
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
    by_digest: foldhash::HashMap<[u8; 32], Arc<Client>>,
    by_uid: foldhash::HashMap<u32, Arc<Client>>,
    /// Keyed by [`tls::normalize_subject`](crate::tls::normalize_subject).
    by_subject: foldhash::HashMap<String, Arc<Client>>,
    list: Vec<Arc<Client>>,
}

impl Clients {
    pub fn by_digest(&self, digest: &[u8; 32]) -> Option<&Arc<Client>> {
        self.by_digest.get(digest)
    }

    pub fn by_uid(&self, uid: u32) -> Option<&Arc<Client>> {
        self.by_uid.get(&uid)
    }

    /// `subject` in normalized form, as [`tls::peer_subject`](crate::tls::peer_subject) gives it.
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

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    /// The file it was loaded from; `None` for a config built in memory
    /// (`bcgate dev`), which has nothing to reload.
    pub path: Option<PathBuf>,
    pub server: Server,
    pub admin: Option<Listen>,
    pub upstream: Upstream,
    pub stores: Stores,
    pub clients: Clients,
    /// The built-in tables plus the operator's `[[routes]]`.
    pub policy: Policy,
    pub app: Option<App>,
    pub token_store: Option<TokenStoreConfig>,
    pub quota: Option<QuotaConfig>,
    pub learn: Option<LearnConfig>,
}

impl Config {
    /// Reads the file (TOML), applies `BCGATE__…` environment overrides and validates.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        read_file(path)
            .and_then(|file| Self::validate(file, path))
            .map_err(|e| {
                // Names only: a variable's value may be a secret.
                let names = std::env::vars_os().filter_map(|(k, _)| k.into_string().ok());
                e.blame_env(names)
            })
    }

    /// Turns the file form into the runtime form; `path` names the file in
    /// errors and anchors relative paths.
    pub fn validate(file: FileConfig, path: &Path) -> Result<Self, ConfigError> {
        let v = Validator {
            file: path,
            dir: path.parent().unwrap_or(Path::new(".")),
            secrets: true,
        };
        v.run(file)
    }

    /// [`Config::load`] without reading a secret (store tokens, the app's
    /// client secret, the token store's key) or requiring the files a server
    /// opens, for commands that only decide (`bcgate explain`). Every store
    /// token is a placeholder: never serve with this config.
    pub fn load_without_secrets(path: &Path) -> Result<Self, ConfigError> {
        let v = Validator {
            file: path,
            dir: path.parent().unwrap_or(Path::new(".")),
            secrets: false,
        };
        v.run(read_file(path)?)
    }

    /// Validates a config built in memory (`bcgate dev`): `name` stands for
    /// the file in errors, and there is no file to reload.
    pub fn from_memory(file: FileConfig, name: &str) -> Result<Self, ConfigError> {
        let mut config = Self::validate(file, Path::new(name))?;
        config.path = None;
        Ok(config)
    }
}

/// The config path: `--config`, else `BCGATE_CONFIG`, else the default.
pub fn resolve_path(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("BCGATE_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let err = |msg: String| ConfigError {
        file: path.to_path_buf(),
        key: String::new(),
        msg,
        env: None,
    };
    if !path.is_file() {
        return Err(err("no such config file".into()));
    }
    let built = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .add_source(
            config::Environment::with_prefix("BCGATE")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        )
        .build()
        .map_err(|e| err(e.to_string()))?;
    built.try_deserialize::<FileConfig>().map_err(|e| {
        // The config crate says "… for key `x.y` in <file>"; keep the key, drop the repeat.
        let text = e.to_string();
        let key = text
            .split_once("for key `")
            .and_then(|(_, rest)| rest.split_once('`'))
            .map(|(k, _)| k.to_string())
            .unwrap_or_default();
        let msg = text
            .split_once(" for key `")
            .map_or(text.as_str(), |(m, _)| m)
            .to_string();
        ConfigError {
            file: path.to_path_buf(),
            key,
            msg,
            env: None,
        }
    })
}

struct Validator<'a> {
    file: &'a Path,
    dir: &'a Path,
    /// Read secrets and require files to exist; see [`Config::load_without_secrets`].
    secrets: bool,
}

impl Validator<'_> {
    fn err(&self, key: impl Into<String>, msg: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            key: key.into(),
            msg: msg.into(),
            env: None,
        }
    }

    fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    fn existing(&self, key: &str, p: &Path) -> Result<PathBuf, ConfigError> {
        let full = self.resolve(p);
        if full.is_file() || !self.secrets {
            Ok(full)
        } else {
            Err(self.err(key, format!("file {} does not exist", full.display())))
        }
    }

    fn run(&self, f: FileConfig) -> Result<Config, ConfigError> {
        let server = self.server(&f.server)?;
        let admin = f
            .admin
            .as_ref()
            .map(|a| self.listen("admin.listen", &a.listen))
            .transpose()?;
        let upstream = self.upstream(&f.upstream)?;
        let builtin =
            Policy::builtin().map_err(|e| self.err("", format!("built-in route table: {e}")))?;
        let mut policy = builtin.clone();
        for (i, r) in f.routes.iter().enumerate() {
            let route = self.route(&policy, i, r)?;
            policy
                .routes
                .insert(route)
                .map_err(|e| self.err(format!("routes[{i}].path"), e))?;
        }
        let stores = self.stores(&policy, &f.stores)?;
        let token_store = f
            .token_store
            .as_ref()
            .map(|t| self.token_store(t))
            .transpose()?;
        let clients = self.clients(&policy, &stores, token_store.is_some(), &f.clients)?;
        let app = f.app.as_ref().map(|a| self.app(&policy, a)).transpose()?;
        if app.is_some() && token_store.is_none() {
            return Err(self.err(
                "app",
                "needs a [token_store] to keep the tokens of the stores that install the app",
            ));
        }
        if let (Some(a), Listen::Tcp(s)) = (&app, &server.listen)
            && a.listen == *s
            && s.port() != 0
        {
            return Err(self.err("app.listen", "must differ from server.listen"));
        }
        for (i, c) in f.clients.iter().enumerate() {
            if c.unix_uid.is_some() && !matches!(server.listen, Listen::Unix(_)) {
                return Err(self.err(
                    format!("clients[{i}].unix_uid"),
                    "needs server.listen = \"unix:/path\" (a TCP peer has no uid)",
                ));
            }
            let has_client_ca = server.tls.as_ref().is_some_and(|t| t.client_ca.is_some());
            if c.tls_subject.is_some() && !has_client_ca {
                return Err(self.err(
                    format!("clients[{i}].tls_subject"),
                    "needs server.tls.client_ca (only a verified certificate names a client)",
                ));
            }
        }
        let quota = f.quota.as_ref().map(|q| self.quota(q)).transpose()?;
        let learn = self.learn(f.learn.as_ref(), &clients, token_store.as_ref())?;
        Ok(Config {
            path: Some(self.file.to_path_buf()),
            server,
            admin,
            upstream,
            stores,
            clients,
            policy,
            app,
            token_store,
            quota,
            learn,
        })
    }

    fn quota(&self, q: &QuotaFile) -> Result<QuotaConfig, ConfigError> {
        if q.max_wait_ms > 600_000 {
            return Err(self.err("quota.max_wait_ms", "must be at most 600000 (10 minutes)"));
        }
        if q.max_queue == 0 {
            return Err(self.err("quota.max_queue", "must be greater than 0"));
        }
        if q.retries > 10 {
            return Err(self.err("quota.retries", "must be at most 10"));
        }
        if q.replicas == 0 {
            return Err(self.err("quota.replicas", "must be greater than 0"));
        }
        if let Some(url) = &q.redis_url {
            crate::token_store::check_redis_url(url).map_err(|e| self.err("quota.redis_url", e))?;
        }
        Ok(QuotaConfig {
            max_wait: Duration::from_millis(q.max_wait_ms),
            max_queue: q.max_queue,
            retries: q.retries,
            replicas: q.replicas,
            redis_url: q.redis_url.clone(),
        })
    }

    fn learn(
        &self,
        l: Option<&LearnFile>,
        clients: &Clients,
        token_store: Option<&TokenStoreConfig>,
    ) -> Result<Option<LearnConfig>, ConfigError> {
        let Some(l) = l else {
            if let Some(i) = clients.iter().position(|c| c.mode == Mode::Learn) {
                return Err(self.err(
                    format!("clients[{i}].mode"),
                    "learn mode needs a [learn] section (where the observations are kept)",
                ));
            }
            return Ok(None);
        };
        let backend = match (&l.path, token_store.map(|t| &t.backend)) {
            (Some(p), _) if p.file_name().is_none() => {
                return Err(self.err("learn.path", "must name a file"));
            }
            (Some(p), _) => LearnBackend::File(self.resolve(p)),
            (None, Some(TokenStoreBackend::Redis(url))) => LearnBackend::Redis(url.clone()),
            (None, _) => {
                return Err(self.err(
                    "learn.path",
                    "needed, unless [token_store] kind = \"redis\" keeps the observations",
                ));
            }
        };
        if l.max_entries == 0 {
            return Err(self.err("learn.max_entries", "must be greater than 0"));
        }
        if l.flush_interval_ms == 0 {
            return Err(self.err("learn.flush_interval_ms", "must be greater than 0"));
        }
        Ok(Some(LearnConfig {
            backend,
            max_entries: l.max_entries,
            flush_interval: Duration::from_millis(l.flush_interval_ms),
        }))
    }

    fn token_store(&self, t: &TokenStoreFile) -> Result<TokenStoreConfig, ConfigError> {
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
                    crate::token_store::check_redis_url(&url)
                        .map_err(|e| self.err("token_store.url", e))?;
                    TokenStoreBackend::Redis(url)
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

    fn app(&self, policy: &Policy, a: &AppFile) -> Result<App, ConfigError> {
        let listen = match self.listen("app.listen", &a.listen)? {
            Listen::Tcp(addr) => addr,
            Listen::Unix(_) => {
                return Err(self.err(
                    "app.listen",
                    "must be ip:port (BigCommerce calls it over the network)",
                ));
            }
        };
        let tls = match &a.tls {
            None => None,
            Some(t) => {
                if t.client_ca.is_some() {
                    return Err(self.err(
                        "app.tls.client_ca",
                        "BigCommerce presents no client certificate",
                    ));
                }
                Some(TlsPaths {
                    cert: self.existing("app.tls.cert", &t.cert)?,
                    key: self.existing("app.tls.key", &t.key)?,
                    client_ca: None,
                })
            }
        };
        let public: Uri = a
            .public_url
            .parse()
            .map_err(|_| self.err("app.public_url", format!("{:?} is not a URL", a.public_url)))?;
        if public.scheme().is_none() || public.authority().is_none() || public.query().is_some() {
            return Err(self.err(
                "app.public_url",
                "must be an absolute URL without a query (https://bcgate.example.com)",
            ));
        }
        let public_url = a.public_url.trim_end_matches('/').to_string();
        if a.client_id.is_empty() || a.client_id.chars().any(|c| c.is_control()) {
            return Err(self.err("app.client_id", "must be non-empty text"));
        }
        let (raw, client_secret_source, k) = match (&a.client_secret_env, &a.client_secret_file) {
            (Some(var), None) if !self.secrets => (
                Zeroizing::new(UNREAD.to_owned()),
                format!("env {var}"),
                "app.client_secret_env",
            ),
            (None, Some(p)) if !self.secrets => (
                Zeroizing::new(UNREAD.to_owned()),
                format!("file {}", self.resolve(p).display()),
                "app.client_secret_file",
            ),
            (Some(var), None) => (
                Zeroizing::new(std::env::var(var).map_err(|_| {
                    self.err(
                        "app.client_secret_env",
                        format!("environment variable {var} is not set"),
                    )
                })?),
                format!("env {var}"),
                "app.client_secret_env",
            ),
            (None, Some(p)) => {
                let full = self.existing("app.client_secret_file", p)?;
                let raw = std::fs::read_to_string(&full).map_err(|e| {
                    self.err(
                        "app.client_secret_file",
                        format!("cannot read {}: {e}", full.display()),
                    )
                })?;
                (
                    Zeroizing::new(raw),
                    format!("file {}", full.display()),
                    "app.client_secret_file",
                )
            }
            _ => {
                return Err(self.err(
                    "app.client_secret_env",
                    "set exactly one of client_secret_env and client_secret_file",
                ));
            }
        };
        let client_secret = ClientSecret::new(&raw)
            .map_err(|e| self.err(k, format!("{client_secret_source}: {e}")))?;
        if a.scopes.is_empty() {
            return Err(self.err("app.scopes", "list the scopes the app must be granted"));
        }
        self.scopes(policy, "app.scopes", &a.scopes)?;
        let mut seen = HashSet::new();
        for (i, s) in a.scopes.iter().enumerate() {
            if !seen.insert(s) {
                return Err(self.err(format!("app.scopes[{i}]"), format!("{s:?} is listed twice")));
            }
        }
        let login = a.login_url.trim_end_matches('/');
        let token_url: Uri = format!("{login}/oauth2/token")
            .parse()
            .map_err(|_| self.err("app.login_url", format!("{:?} is not a URL", a.login_url)))?;
        if token_url.scheme() != Some(&http::uri::Scheme::HTTPS)
            || token_url.authority().is_none()
            || token_url.query().is_some()
        {
            return Err(self.err(
                "app.login_url",
                "must be an https:// URL without a query: the client secret never travels in clear",
            ));
        }
        Ok(App {
            listen,
            tls,
            redirect_uri: format!("{public_url}/auth"),
            public_url,
            client_id: a.client_id.clone(),
            client_secret,
            client_secret_source,
            scopes: a.scopes.clone(),
            token_url,
        })
    }

    fn listen(&self, key: &str, text: &str) -> Result<Listen, ConfigError> {
        if let Some(p) = text.strip_prefix("unix:") {
            if p.is_empty() {
                return Err(self.err(key, "unix: needs a socket path"));
            }
            return Ok(Listen::Unix(self.resolve(Path::new(p))));
        }
        text.parse::<SocketAddr>()
            .map(Listen::Tcp)
            .map_err(|_| self.err(key, format!("{text:?} is not ip:port or unix:/path")))
    }

    fn server(&self, s: &ServerFile) -> Result<Server, ConfigError> {
        let listen = self.listen("server.listen", &s.listen)?;
        let tls = match &s.tls {
            None => None,
            Some(t) => Some(TlsPaths {
                cert: self.existing("server.tls.cert", &t.cert)?,
                key: self.existing("server.tls.key", &t.key)?,
                client_ca: t
                    .client_ca
                    .as_ref()
                    .map(|p| self.existing("server.tls.client_ca", p))
                    .transpose()?,
            }),
        };
        if s.max_body_bytes == 0 {
            return Err(self.err("server.max_body_bytes", "must be greater than 0"));
        }
        for (k, v) in [
            ("server.header_read_timeout_ms", s.header_read_timeout_ms),
            ("server.body_read_timeout_ms", s.body_read_timeout_ms),
            ("server.drain_timeout_ms", s.drain_timeout_ms),
            ("server.body_total_timeout_ms", s.body_total_timeout_ms),
            ("server.max_connections", s.max_connections),
            ("server.listen_backlog", u64::from(s.listen_backlog)),
            ("server.max_in_flight", s.max_in_flight),
        ] {
            if v == 0 {
                return Err(self.err(k, "must be greater than 0"));
            }
        }
        if let Err(why) = check_error_docs_url(&s.error_docs_url) {
            return Err(self.err("server.error_docs_url", why));
        }
        if s.body_total_timeout_ms < s.body_read_timeout_ms {
            return Err(self.err(
                "server.body_total_timeout_ms",
                "must be at least server.body_read_timeout_ms",
            ));
        }
        Ok(Server {
            listen,
            tls,
            error_docs_url: s.error_docs_url.clone(),
            max_body_bytes: s.max_body_bytes,
            header_read_timeout: Duration::from_millis(s.header_read_timeout_ms),
            body_read_timeout: Duration::from_millis(s.body_read_timeout_ms),
            drain_timeout: Duration::from_millis(s.drain_timeout_ms),
            body_total_timeout: Duration::from_millis(s.body_total_timeout_ms),
            max_connections: usize::try_from(s.max_connections).unwrap_or(usize::MAX),
            listen_backlog: s.listen_backlog,
            max_in_flight: usize::try_from(s.max_in_flight).unwrap_or(usize::MAX),
        })
    }

    fn upstream(&self, u: &UpstreamFile) -> Result<Upstream, ConfigError> {
        let key = "upstream.base_url";
        let uri: Uri = u
            .base_url
            .parse()
            .map_err(|_| self.err(key, format!("{:?} is not a URL", u.base_url)))?;
        if uri.scheme() != Some(&http::uri::Scheme::HTTPS) {
            return Err(self.err(
                key,
                "must be an https:// URL: store tokens never travel in clear",
            ));
        }
        if uri.query().is_some() {
            return Err(self.err(key, "must not have a query"));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| self.err(key, "must name a host"))?;
        if authority.as_str().contains('@') {
            return Err(self.err(key, "must not carry user info"));
        }
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|_| self.err(key, "host is not a valid Host header"))?;
        for (k, v) in [
            ("upstream.connect_timeout_ms", u.connect_timeout_ms),
            ("upstream.request_timeout_ms", u.request_timeout_ms),
        ] {
            if v == 0 {
                return Err(self.err(k, "must be greater than 0"));
            }
        }
        Ok(Upstream {
            base_url: u.base_url.clone(),
            scheme: http::uri::Scheme::HTTPS,
            authority,
            base_path: uri.path().trim_end_matches('/').to_string(),
            host,
            ca_file: u
                .ca_file
                .as_ref()
                .map(|p| self.existing("upstream.ca_file", p))
                .transpose()?,
            ca_pem: u.ca_pem.clone(),
            connect_timeout: Duration::from_millis(u.connect_timeout_ms),
            request_timeout: Duration::from_millis(u.request_timeout_ms),
        })
    }

    /// An operator route grants exactly what its named scope's level grants:
    /// a read-level scope makes any method a read; a modify-level scope on a
    /// GET requires the modify level.
    fn route(&self, policy: &Policy, i: usize, r: &RouteFile) -> Result<Route, ConfigError> {
        let method = Method::from_bytes(r.method.as_bytes())
            .ok()
            .filter(|m| {
                [
                    Method::GET,
                    Method::POST,
                    Method::PUT,
                    Method::PATCH,
                    Method::DELETE,
                ]
                .contains(m)
            })
            .ok_or_else(|| {
                self.err(
                    format!("routes[{i}].method"),
                    "must be GET, POST, PUT, PATCH or DELETE",
                )
            })?;
        table::split_template(&r.path).map_err(|e| self.err(format!("routes[{i}].path"), e))?;
        let scope = policy.scopes.get(&r.scope).ok_or_else(|| {
            self.err(
                format!("routes[{i}].scope"),
                unknown_scope(policy, &r.scope),
            )
        })?;
        let family = policy.scopes.family_name(scope.family).to_string();
        let families = table::families_of(&policy.scopes, std::slice::from_ref(&family))
            .map_err(|e| self.err(format!("routes[{i}].scope"), e))?;
        let reads = method == Method::GET;
        let flags = RouteFlags {
            read: scope.level == Level::Read && !reads,
            modify: scope.level == Level::Modify && reads,
            ..RouteFlags::default()
        };
        Ok(Route {
            method,
            template: Arc::from(r.path.as_str()),
            families,
            family_names: vec![family],
            flags,
            origin: Origin::Operator,
            note: Some(format!("operator route, scope {}", r.scope)),
        })
    }

    fn scopes(&self, policy: &Policy, key: &str, names: &[String]) -> Result<Grants, ConfigError> {
        policy
            .scopes
            .grants(names.iter().map(String::as_str))
            .map_err(|bad| {
                let idx = names.iter().position(|n| n == bad).unwrap_or(0);
                self.err(format!("{key}[{idx}]"), unknown_scope(policy, bad))
            })
    }

    fn stores(&self, policy: &Policy, files: &[StoreFile]) -> Result<Stores, ConfigError> {
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
            let mut token_file = None;
            let parse = |k: &str, raw: Zeroizing<String>, source: String| {
                let token = StoreToken::new(&raw)
                    .map_err(|e| self.err(key(k), format!("{source}: {e}")))?;
                Ok::<_, ConfigError>((token, source))
            };
            let (token, token_source) = match (&s.token_env, &s.token_file, &s.token) {
                (None, None, Some(token)) => (token.clone(), "memory".to_owned()),
                (Some(var), None, None) if !self.secrets => parse(
                    "token_env",
                    Zeroizing::new(UNREAD.into()),
                    format!("env {var}"),
                )?,
                (None, Some(p), None) if !self.secrets => {
                    let source = format!("file {}", self.resolve(p).display());
                    parse("token_file", Zeroizing::new(UNREAD.into()), source)?
                }
                (Some(var), None, None) => {
                    let raw = std::env::var(var).map_err(|_| {
                        self.err(
                            key("token_env"),
                            format!("environment variable {var} is not set"),
                        )
                    })?;
                    parse("token_env", Zeroizing::new(raw), format!("env {var}"))?
                }
                (None, Some(p), None) => {
                    let full = self.existing(&key("token_file"), p)?;
                    let raw = std::fs::read_to_string(&full).map_err(|e| {
                        self.err(
                            key("token_file"),
                            format!("cannot read {}: {e}", full.display()),
                        )
                    })?;
                    let source = format!("file {}", full.display());
                    token_file = Some(full);
                    parse("token_file", Zeroizing::new(raw), source)?
                }
                _ => {
                    return Err(self.err(
                        key("token_env"),
                        "set exactly one of token_env and token_file",
                    ));
                }
            };
            let grants = s
                .scopes
                .as_ref()
                .map(|names| self.scopes(policy, &key("scopes"), names))
                .transpose()?;
            let store = Arc::new(Store {
                hash: s.hash.clone(),
                alias: s.alias.clone(),
                token,
                token_source,
                token_file,
                scopes: s.scopes.clone(),
                grants,
                label: format!("the token of store '{}'", s.hash),
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

    fn clients(
        &self,
        policy: &Policy,
        stores: &Stores,
        installable: bool,
        files: &[ClientFile],
    ) -> Result<Clients, ConfigError> {
        let mut clients = Clients::default();
        let mut names = HashSet::new();
        for (i, c) in files.iter().enumerate() {
            let key = |k: &str| format!("clients[{i}].{k}");
            if c.name.is_empty() || c.name.chars().any(|ch| ch.is_control() || ch == '\'') {
                return Err(self.err(
                    key("name"),
                    "a client name is non-empty text without quotes",
                ));
            }
            if !names.insert(c.name.clone()) {
                return Err(self.err(key("name"), format!("client {:?} is defined twice", c.name)));
            }
            let digest = c
                .key_sha256
                .as_ref()
                .map(|hexed| {
                    let mut digest = [0u8; 32];
                    hex::decode_to_slice(hexed, &mut digest)
                        .map(|()| digest)
                        .map_err(|_| {
                            self.err(
                            key("key_sha256"),
                            "must be 64 hex digits (the SHA-256 of the key; see `bcgate keygen`)",
                        )
                        })
                })
                .transpose()?;
            let subject = c
                .tls_subject
                .as_deref()
                .map(|t| {
                    crate::tls::normalize_subject(t).map_err(|e| self.err(key("tls_subject"), e))
                })
                .transpose()?;
            if digest.is_none() && c.unix_uid.is_none() && subject.is_none() {
                return Err(self.err(
                    key("key_sha256"),
                    "a client needs key_sha256, unix_uid or tls_subject to be identified by",
                ));
            }
            let allow = if c.stores.iter().any(|s| s == "*") {
                if c.stores.len() != 1 {
                    return Err(self.err(key("stores"), "\"*\" must stand alone"));
                }
                StoreAllow::All
            } else {
                let mut hashes = Vec::new();
                for (j, s) in c.stores.iter().enumerate() {
                    hashes.push(self.store_ref(
                        stores,
                        installable,
                        &format!("clients[{i}].stores[{j}]"),
                        &c.name,
                        s,
                    )?);
                }
                StoreAllow::Only(hashes)
            };
            let default_store = match &c.default_store {
                None => None,
                Some(s) => {
                    let hash =
                        self.store_ref(stores, installable, &key("default_store"), &c.name, s)?;
                    if !allow.allows(&hash) {
                        return Err(self.err(
                            key("default_store"),
                            format!("{s:?} is not in this client's stores"),
                        ));
                    }
                    Some(hash)
                }
            };
            let grants = self.scopes(policy, &key("scopes"), &c.scopes)?;
            let quota_weight = c.quota_weight.unwrap_or(1);
            if !(1..=1000).contains(&quota_weight) {
                return Err(self.err(key("quota_weight"), "must be from 1 to 1000"));
            }
            if let Some(share) = c.quota_max_share
                && !(share > 0.0 && share <= 1.0)
            {
                return Err(self.err(
                    key("quota_max_share"),
                    "must be a fraction greater than 0 and at most 1",
                ));
            }
            let mode = match c.mode.as_deref() {
                None | Some("enforce") => Mode::Enforce,
                Some("learn") => Mode::Learn,
                Some(other) => {
                    return Err(self.err(
                        key("mode"),
                        format!("{other:?} is not a mode (\"enforce\" or \"learn\")"),
                    ));
                }
            };
            let mut identity = String::new();
            if let Some(uid) = c.unix_uid {
                identity.push_str(&format!("; unix uid {uid}"));
            }
            if let Some(subject) = &c.tls_subject {
                identity.push_str(&format!("; tls subject {subject}"));
            }
            let client = Arc::new(Client {
                name: c.name.clone(),
                label: format!("client '{}'", c.name),
                stores: allow,
                default_store,
                scopes: c.scopes.clone(),
                grants,
                mode,
                identity,
                quota_weight,
                quota_max_share: c.quota_max_share,
            });
            if let Some(digest) = digest
                && clients.by_digest.insert(digest, client.clone()).is_some()
            {
                return Err(self.err(key("key_sha256"), "another client has the same key"));
            }
            if let Some(uid) = c.unix_uid
                && clients.by_uid.insert(uid, client.clone()).is_some()
            {
                return Err(self.err(key("unix_uid"), "another client has the same unix_uid"));
            }
            if let Some(subject) = subject
                && clients.by_subject.insert(subject, client.clone()).is_some()
            {
                return Err(self.err(
                    key("tls_subject"),
                    "another client has the same tls_subject",
                ));
            }
            clients.list.push(client);
        }
        Ok(clients)
    }
}

impl Validator<'_> {
    /// The hash a client's `stores` entry or `default_store` means: a
    /// configured hash or alias, or — with a `[token_store]` — the hash of a
    /// store that may install the app later. An unknown name is reported
    /// with the client it belongs to and the nearest configured store.
    fn store_ref(
        &self,
        stores: &Stores,
        installable: bool,
        key: &str,
        client: &str,
        name: &str,
    ) -> Result<String, ConfigError> {
        if let Some(store) = stores.get(name) {
            return Ok(store.hash.clone());
        }
        if !installable {
            return Err(self.err(
                key,
                format!(
                    "client {client:?}: no store {name:?} is configured{}",
                    nearest_store(stores, name)
                ),
            ));
        }
        if !crate::token_store::is_store_hash(name) {
            return Err(self.err(
                key,
                format!(
                    "client {client:?}: no store {name:?} is configured, and it is not a store hash \
                     (lowercase letters and digits) an installed store could have{}",
                    nearest_store(stores, name)
                ),
            ));
        }
        Ok(name.to_owned())
    }
}

/// ` (did you mean "abc123"?)` for the configured hash or alias nearest to
/// `name`, else the configured names, so a typo is fixed without opening
/// the `[[stores]]` section.
fn nearest_store(stores: &Stores, name: &str) -> String {
    let mut names: Vec<&str> = stores.by_name.keys().map(String::as_str).collect();
    if names.is_empty() {
        return " (there are no [[stores]])".into();
    }
    names.sort_unstable();
    let lower = name.to_ascii_lowercase();
    let near = names
        .iter()
        .map(|n| (crate::policy::scopes::edit_distance(n, &lower), *n))
        .filter(|(d, n)| *d <= 3 && *d < n.len().max(name.len()))
        .min();
    match near {
        Some((_, n)) => format!(" (did you mean {n:?}?)"),
        None => {
            let shown: Vec<String> = names.iter().take(8).map(|n| format!("{n:?}")).collect();
            let more = if names.len() > shown.len() {
                ", …"
            } else {
                ""
            };
            format!(" (configured: {}{more})", shown.join(", "))
        }
    }
}

pub(crate) fn is_store_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn is_alias(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// `server.error_docs_url`: an absolute URI without a fragment (bcgate adds
/// `#<code>`), of characters a JSON string and an SDK's exception text carry
/// unchanged.
fn check_error_docs_url(url: &str) -> Result<(), &'static str> {
    let Some((scheme, rest)) = url.split_once(':') else {
        return Err("must be an absolute URI (https://…/errors.html, or a tag: URI)");
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok || rest.is_empty() {
        return Err("must be an absolute URI (https://…/errors.html, or a tag: URI)");
    }
    if url.contains('#') {
        return Err("must not have a fragment: bcgate appends #<code>");
    }
    if url.len() > 2048
        || !url
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?[]@!$&'()*+,;=%".contains(&b))
    {
        return Err("must be at most 2048 URI characters (percent-encode anything else)");
    }
    Ok(())
}

fn unknown_scope(policy: &Policy, name: &str) -> String {
    match policy.scopes.suggest(name) {
        Some(s) => {
            format!("unknown scope {name:?} (did you mean {s:?}? `bcgate routes` lists them)")
        }
        None => format!("unknown scope {name:?} (`bcgate routes` lists the known scopes)"),
    }
}
