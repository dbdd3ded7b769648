//! The config file as written: serde types with `deny_unknown_fields`, read
//! through the `config` crate (TOML plus `BCGATE__SECTION__KEY`
//! overrides). The key path of an error comes from serde's own walk of the
//! file (`serde_path_to_error`), not from an error's text.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;
use crate::secret::{Secret, StoreToken};

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
    /// Account-level API tokens (`/accounts/{uuid}/graphql`).
    #[serde(default)]
    pub accounts: Vec<AccountFile>,
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
    /// How long the tokens bcgate mints live and when they are renewed.
    #[serde(default)]
    pub mint: MintFile,
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
    /// The payments API's origin (`POST /stores/{hash}/payments`).
    pub payments_url: String,
    /// B2B Edition's origin (`/api/v3/io/…`).
    pub b2b_url: String,
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
            payments_url: "https://payments.bigcommerce.com".into(),
            b2b_url: "https://api-b2b.bigcommerce.com".into(),
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
    /// The client id of the API account (or app) the token belongs to.
    pub client_id: Option<String>,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    /// The client secret itself, given in memory instead of
    /// `client_secret_env` or `client_secret_file` (`bcgate dev`); not a
    /// key of the file.
    #[serde(skip)]
    pub client_secret: Option<Secret>,
    /// The storefront origin of each channel bcgate may query.
    #[serde(default)]
    pub channels: Vec<ChannelFile>,
}

/// `stores[].channels[]`: a channel and the origin its storefront answers on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelFile {
    pub id: u32,
    pub origin: String,
}

/// `[[accounts]]`: an account-level API token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountFile {
    pub uuid: String,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// The token itself, given in memory (`bcgate dev`); not a key of the file.
    #[serde(skip)]
    pub token: Option<StoreToken>,
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
    /// The `[[accounts]]` uuids this client may call.
    #[serde(default)]
    pub accounts: Vec<String>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MintFile {
    /// The lifetime asked for each storefront private token and customer impersonation token.
    pub token_lifetime_s: u64,
    /// How long before its expiry a cached token is renewed.
    pub renew_before_s: u64,
}

impl Default for MintFile {
    fn default() -> Self {
        Self {
            token_lifetime_s: 86_400,
            renew_before_s: 3_600,
        }
    }
}

fn default_learn_max_entries() -> usize {
    10_000
}

fn default_learn_flush_interval_ms() -> u64 {
    10_000
}

/// Reads the file and its environment overrides into the file form.
pub(super) fn read(path: &Path) -> Result<FileConfig, ConfigError> {
    let err = |key: String, msg: String| ConfigError {
        file: path.to_path_buf(),
        key,
        msg,
        env: None,
    };
    if !path.is_file() {
        return Err(err(String::new(), "no such config file".into()));
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
        .map_err(|e| err(String::new(), e.to_string()))?;
    serde_path_to_error::deserialize::<_, FileConfig>(built).map_err(|e| {
        let mut path: Vec<_> = e.path().iter().cloned().collect();
        let e = e.into_inner();
        // An unknown key is reported on the table it appears in, the
        // message naming the key.
        if message(&e).starts_with("unknown field `") {
            path.pop();
        }
        err(key_path(&path), message(&e))
    })
}

/// `clients[1].scopes[0]`: map keys joined by `.`, sequence indexes in brackets.
fn key_path(path: &[serde_path_to_error::Segment]) -> String {
    use serde_path_to_error::Segment;
    let mut key = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => key.push_str(&format!("[{index}]")),
            Segment::Map { key: k } | Segment::Enum { variant: k } => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(k);
            }
            Segment::Unknown => {}
        }
    }
    key
}

/// The error without the key and origin the `config` crate appends (the
/// key is reported on its own, the origin is the file or the variable).
fn message(e: &config::ConfigError) -> String {
    match e {
        config::ConfigError::Type {
            unexpected,
            expected,
            ..
        } => format!("invalid type: {unexpected}, expected {expected}"),
        config::ConfigError::At { error, .. } => message(error),
        config::ConfigError::Message(m) => m.clone(),
        // The config crate names the whole path (`routes[0]scope`); the
        // path is reported as the key already.
        config::ConfigError::NotFound(path) => {
            let field = path.rsplit(['.', ']']).next().unwrap_or(path);
            format!("missing field `{field}`")
        }
        other => other.to_string(),
    }
}
