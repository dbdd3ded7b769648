//! The file form into the runtime form: [`Validator::run`] checks each
//! section (one file per section beside this one) and the rules between
//! sections.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::{Config, ConfigError, FileConfig, Listen};
use crate::family::FamilyRoutes;
use crate::policy::{Grants, Policy};

pub(super) struct Validator<'a> {
    pub(super) file: &'a Path,
    pub(super) dir: &'a Path,
    /// Read secrets and require files to exist; see [`Config::load_without_secrets`].
    pub(super) secrets: bool,
}

impl Validator<'_> {
    pub(super) fn err(&self, key: impl Into<String>, msg: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            key: key.into(),
            msg: msg.into(),
            env: None,
        }
    }

    pub(super) fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    pub(super) fn existing(&self, key: &str, p: &Path) -> Result<PathBuf, ConfigError> {
        let full = self.resolve(p);
        if full.is_file() || !self.secrets {
            Ok(full)
        } else {
            Err(self.err(key, format!("file {} does not exist", full.display())))
        }
    }

    pub(super) fn run(&self, f: FileConfig) -> Result<Config, ConfigError> {
        let server = self.server(&f.server)?;
        let admin = f
            .admin
            .as_ref()
            .map(|a| self.listen("admin.listen", &a.listen))
            .transpose()?;
        let upstream = self.upstream(&f.upstream)?;
        let builtin =
            Policy::builtin().map_err(|e| self.err("", format!("built-in route table: {e}")))?;
        let families = FamilyRoutes::builtin()
            .map_err(|e| self.err("", format!("built-in family tables: {e}")))?;
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
        let accounts = self.accounts(&f.accounts)?;
        let clients = self.clients(
            &policy,
            &stores,
            &accounts,
            token_store.is_some(),
            &f.clients,
        )?;
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
        let mint = self.mint(&f.mint)?;
        Ok(Config {
            path: Some(self.file.to_path_buf()),
            server,
            admin,
            upstream,
            stores,
            accounts,
            clients,
            policy,
            families,
            app,
            token_store,
            quota,
            learn,
            mint,
        })
    }

    pub(super) fn listen(&self, key: &str, text: &str) -> Result<Listen, ConfigError> {
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

    pub(super) fn scopes(
        &self,
        policy: &Policy,
        key: &str,
        names: &[String],
    ) -> Result<Grants, ConfigError> {
        policy
            .scopes
            .grants(names.iter().map(String::as_str))
            .map_err(|bad| {
                let idx = names.iter().position(|n| n == bad).unwrap_or(0);
                self.err(format!("{key}[{idx}]"), unknown_scope(policy, bad))
            })
    }
}

pub(super) fn unknown_scope(policy: &Policy, name: &str) -> String {
    match policy.scopes.suggest(name) {
        Some(s) => {
            format!("unknown scope {name:?} (did you mean {s:?}? `bcgate routes` lists them)")
        }
        None => format!("unknown scope {name:?} (`bcgate routes` lists the known scopes)"),
    }
}
