//! Readiness (`/readyz`): the config is loaded, every secret read from a
//! file (store tokens, store client secrets, account tokens) is still there,
//! the token store's directory is there (with a
//! `[token_store]`; with `kind = "redis"`, that Redis is in sync), and the upstream accepts a TCP connection.
//! Informative lines follow: how `[quota]` shares the stores' quotas, and stores whose token the upstream refused.
//! They say `"ok": false` when something is wrong but carry `"affects_ready": false`:
//! taking the replica out of rotation would not fix them.
//! The answer is JSON naming each check, so an operator sees which failed;
//! it never contains a token.

use std::time::Duration;

use serde::Serialize;

use crate::live::Live;
use crate::token_store::TokenStore;

/// Longest the upstream connect check may take, whatever `connect_timeout_ms` says.
const UPSTREAM_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize)]
pub struct Report {
    pub ready: bool,
    pub checks: Vec<Check>,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// Whether a failure makes the replica unready (written only when not).
    #[serde(skip_serializing_if = "is_true")]
    pub affects_ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Report {
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string(self).unwrap_or_else(|_| "{}".into());
        text.push('\n');
        text
    }
}

pub async fn check(live: &Live) -> Report {
    let state = live.state();
    let config = &state.config;
    let mut checks = vec![Check {
        name: "config".into(),
        ok: true,
        affects_ready: true,
        detail: live
            .last_reload_failed()
            .then(|| "the last reload was refused; the previous config is serving".into()),
    }];
    // A secret file that is gone or empty fails the next reload, and the
    // requests that need it once that happens.
    let mut secret_file = |name: String, what: &str, path: Option<&std::path::Path>| {
        let problem = path.and_then(|path| match std::fs::metadata(path) {
            Ok(m) if m.is_file() && m.len() > 0 => None,
            Ok(_) => Some(format!("{what} file {} is empty", path.display())),
            Err(e) => Some(format!("{what} file {}: {e}", path.display())),
        });
        checks.push(Check {
            name,
            ok: problem.is_none(),
            affects_ready: true,
            detail: problem,
        });
    };
    for store in config.stores.iter() {
        secret_file(
            format!("store {} token", store.hash),
            "token",
            store.token_file.as_deref(),
        );
        if store.client_secret_source.is_some() {
            secret_file(
                format!("store {} client secret", store.hash),
                "client secret",
                store.client_secret_file.as_deref(),
            );
        }
    }
    for account in config.accounts.iter() {
        secret_file(
            format!("account {} token", account.uuid),
            "token",
            account.token_file.as_deref(),
        );
    }
    if let Some(installs) = &state.installs {
        let n = installs.store().list().len();
        let result = match installs.store() {
            // Writes go to a temporary file beside the store, then a rename.
            TokenStore::File(file) => {
                let path = file.path();
                let dir = match path.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => std::path::Path::new("."),
                };
                if dir.is_dir() {
                    Ok(format!("{n} installed"))
                } else {
                    Err(format!(
                        "the directory of token store {} is gone: installs cannot be written",
                        path.display()
                    ))
                }
            }
            // Down: the last known stores keep serving, installs fail.
            TokenStore::Redis(redis) => redis.health(),
        };
        checks.push(Check {
            name: "token_store".into(),
            ok: result.is_ok(),
            affects_ready: true,
            detail: Some(result.unwrap_or_else(|e| e)),
        });
    }
    let upstream = upstream_reachable(&config.upstream).await.err();
    checks.push(Check {
        name: "upstream".into(),
        ok: upstream.is_none(),
        affects_ready: true,
        detail: upstream,
    });
    // Informative only: neither the local quota share nor a refused store token is fixed by
    // taking this replica out of rotation.
    for (name, ok, detail) in state.quota.checks() {
        checks.push(Check {
            name,
            ok,
            affects_ready: false,
            detail: Some(detail),
        });
    }
    Report {
        ready: checks.iter().all(|c| c.ok || !c.affects_ready),
        checks,
    }
}

/// Whether the upstream accepts a TCP connection (within its connect
/// timeout, at most 2 s); the error names the address, never a token.
pub async fn upstream_reachable(up: &crate::config::Upstream) -> Result<(), String> {
    let port = up.authority.port_u16().unwrap_or(443);
    let timeout = up.connect_timeout.min(UPSTREAM_CHECK_TIMEOUT);
    let host = up
        .authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let connect = tokio::net::TcpStream::connect((host, port));
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("{}: {e}", up.authority)),
        Err(_) => Err(format!(
            "{}: no connection within {timeout:?}",
            up.authority
        )),
    }
}
