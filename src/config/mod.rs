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
//!
//! Layout: [`file`] (the file form), one file per section that validates
//! it (`server`, `stores`, `accounts`, `clients`, `routes`, `app`,
//! `token_store`, `quota`, `mint`), `validate` (the order and the rules
//! between sections), [`types`] (the runtime form) and `error`
//! ([`ConfigError`]). The config sits below everything but the policy and
//! the secret type: it owns the client mode ([`Mode`]) and subject
//! normalization, and leaves opening the token store to the token store.

mod accounts;
mod app;
mod clients;
mod error;
pub mod file;
mod mint;
mod quota;
mod routes;
mod server;
mod stores;
mod token_store;
pub mod types;
mod validate;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use self::clients::{normalize_subject, normalize_subject_parts};
pub use self::error::ConfigError;
pub use self::file::{
    AccountFile, AdminFile, AppFile, ChannelFile, ClientFile, FileConfig, LearnFile, MintFile,
    QuotaFile, RouteFile, ServerFile, StoreFile, TlsFile, TokenStoreFile, UpstreamFile,
};
pub use self::stores::is_store_hash;
#[cfg(feature = "dev")]
pub(crate) use self::stores::is_store_name;
pub use self::token_store::{KEY_LEN, KeyError, check_redis_url, decode_store_key};
pub use self::types::{
    Account, Accounts, App, Channel, Client, Clients, KeySource, LearnBackend, LearnConfig, Listen,
    MintConfig, Mode, Origin, OriginError, QuotaConfig, Server, Store, Stores, TlsPaths,
    TokenStoreBackend, TokenStoreConfig, Upstream,
};
use self::validate::Validator;
use crate::family::FamilyRoutes;
use crate::policy::Policy;
use crate::secret::Secret;

/// Where the config file is looked for when neither `--config` nor `BCGATE_CONFIG` is given.
pub const DEFAULT_PATH: &str = "config/bcgate.toml";

/// What stands for a secret [`Config::load_without_secrets`] did not read.
const UNREAD: &str = "(not read)";

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
    /// Account-level tokens, for `/accounts/{uuid}/graphql`.
    pub accounts: Accounts,
    pub clients: Clients,
    /// The built-in tables plus the operator's `[[routes]]`.
    pub policy: Policy,
    /// The route tables of the one-endpoint families (payments, storefront, accounts).
    pub families: &'static FamilyRoutes,
    pub app: Option<App>,
    pub token_store: Option<TokenStoreConfig>,
    pub quota: Option<QuotaConfig>,
    pub learn: Option<LearnConfig>,
    /// Lifetimes of the storefront tokens bcgate mints.
    pub mint: MintConfig,
}

impl Config {
    /// Reads the file (TOML), applies `BCGATE__…` environment overrides and validates.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        file::read(path)
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

    /// [`Config::load`] without reading a secret (store and account tokens,
    /// client secrets, the token store's key) or requiring the files a server
    /// opens, for commands that only decide (`bcgate explain`). Every store
    /// token is a placeholder: never serve with this config.
    pub fn load_without_secrets(path: &Path) -> Result<Self, ConfigError> {
        let v = Validator {
            file: path,
            dir: path.parent().unwrap_or(Path::new(".")),
            secrets: false,
        };
        v.run(file::read(path)?)
    }

    /// Every file a secret was read from (store tokens and client
    /// secrets, account tokens): re-read on reload, so a change to one is
    /// a reason to reload.
    pub fn secret_files(&self) -> impl Iterator<Item = &Path> {
        let stores = self.stores.iter().flat_map(|s| {
            [s.token_file.as_deref(), s.client_secret_file.as_deref()]
                .into_iter()
                .flatten()
        });
        let accounts = self.accounts.iter().filter_map(|a| a.token_file.as_deref());
        stores.chain(accounts)
    }

    /// The client id and secret that sign and verify `store`'s customer
    /// JWTs: its own (`[[stores]]`), or for a store that installed the app
    /// (not in `[[stores]]`) the app's.
    pub fn store_client<'a>(&'a self, store: &'a Store) -> Option<(&'a str, &'a Secret)> {
        if let (Some(id), Some(secret)) = (&store.client_id, &store.client_secret) {
            return Some((id, secret));
        }
        if self.stores.get(&store.hash).is_some() {
            return None;
        }
        self.app
            .as_ref()
            .map(|app| (app.client_id.as_str(), &app.client_secret))
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
