//! `bcgate tokens`: the stores in the token store, listed or deleted.

use std::fmt::Write as _;

use clap::Subcommand;

use crate::config::Config;
use crate::token_store::OpenTokenStore;

#[derive(Debug, Subcommand)]
pub(super) enum TokensAction {
    /// Every store with a token: hash, scopes, installed at, source (config|installed).
    List,
    /// Delete an installed store's token (a running bcgate reads the file
    /// again on SIGHUP or config reload).
    Delete {
        /// The store hash.
        hash: String,
    },
}

fn open_token_store(cfg: &Config) -> Result<crate::token_store::TokenStore, String> {
    cfg.token_store
        .as_ref()
        .ok_or_else(|| "the config has no [token_store]".to_string())?
        .open_once()
}

pub(super) fn tokens(path: &std::path::Path, action: TokensAction) -> Result<String, String> {
    let cfg = Config::load(path).map_err(|e| e.to_string())?;
    let store = open_token_store(&cfg)?;
    let mut out = String::new();
    match action {
        TokensAction::List => {
            let _ = writeln!(
                out,
                "{:<20} {:<10} {:<22} scopes",
                "STORE", "SOURCE", "INSTALLED AT"
            );
            for s in cfg.stores.iter() {
                let scopes = s
                    .scopes
                    .as_ref()
                    .map_or("(not stated)".to_string(), |v| v.join(" "));
                let _ = writeln!(out, "{:<20} {:<10} {:<22} {scopes}", s.hash, "config", "-");
            }
            for i in store.list() {
                let source = if cfg.stores.get(&i.hash).is_some() {
                    "installed (config wins)"
                } else {
                    "installed"
                };
                let _ = writeln!(
                    out,
                    "{:<20} {:<10} {:<22} {}",
                    i.hash,
                    source,
                    utc(i.installed_at),
                    i.scopes.join(" ")
                );
            }
        }
        TokensAction::Delete { hash } => {
            if !store.delete(&hash)? {
                return Err(format!(
                    "store {hash:?} is not in the token store {}",
                    store.location()
                ));
            }
            let when = match store {
                crate::token_store::TokenStore::File(_) => "on SIGHUP",
                crate::token_store::TokenStore::Redis(_) => "within a second",
            };
            let _ = writeln!(
                out,
                "deleted the token of store {hash}; a running bcgate forgets it {when}"
            );
        }
    }
    Ok(out)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub(super) fn utc(secs: u64) -> String {
    let (y, m, d) = crate::log::text::civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
