//! `bcgate run` (serve) and `bcgate check` (validate and describe the config).

use std::fmt::Write as _;

use crate::config::Config;
use crate::policy::{self, Route};
use crate::token_store::OpenTokenStore;

pub(super) fn run(path: &std::path::Path, format: crate::log::Format) -> Result<String, String> {
    crate::log::init(format);
    let config = Config::load(path).map_err(|e| e.to_string())?;
    // On one CPU (a pinned sidecar) the multi-thread scheduler only adds its
    // cross-thread bookkeeping; the current-thread one runs the same tasks.
    let one_cpu = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let mut builder = if one_cpu {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(crate::server::run(config))?;
    Ok(String::new())
}

pub(super) fn check(path: &std::path::Path) -> Result<String, String> {
    let cfg = Config::load(path).map_err(|e| e.to_string())?;
    crate::forward::UpstreamClient::new(&cfg.upstream)?;
    let mut out = String::new();
    let _ = writeln!(out, "{}: OK", path.display());
    let _ = writeln!(
        out,
        "listen:   {}{}",
        cfg.server.listen,
        if cfg.server.tls.is_some() {
            " (TLS)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "upstream: {}", cfg.upstream.base_url);
    let _ = writeln!(out, "payments: {}", cfg.upstream.payments.base_url);
    let _ = writeln!(out, "b2b:      {}", cfg.upstream.b2b.base_url);
    let _ = writeln!(out, "stores:");
    for s in cfg.stores.iter() {
        let alias = s
            .alias
            .as_deref()
            .map(|a| format!(" alias {a}"))
            .unwrap_or_default();
        let scopes = s
            .scopes
            .as_ref()
            .map_or("(not stated)".to_string(), |v| v.join(", "));
        let _ = writeln!(
            out,
            "  {}{alias}: token from {}; token scopes: {scopes}",
            s.hash, s.token_source
        );
        // The client id is no secret (it is a JWT's `aud`); where the
        // secret comes from is shown, never the secret.
        if let (Some(id), Some(source)) = (&s.client_id, &s.client_secret_source) {
            let _ = writeln!(out, "    client_id {id}; client secret from {source}");
        }
        for c in &s.channels {
            let _ = writeln!(
                out,
                "    channel {}: storefront {}",
                c.id, c.origin.base_url
            );
        }
    }
    if cfg.accounts.iter().next().is_some() {
        let _ = writeln!(out, "accounts:");
        for a in cfg.accounts.iter() {
            let clients: Vec<&str> = cfg
                .clients
                .iter()
                .filter(|c| c.accounts.contains(&a.uuid))
                .map(|c| c.name.as_str())
                .collect();
            let clients = if clients.is_empty() {
                "no client".to_owned()
            } else {
                clients.join(", ")
            };
            let _ = writeln!(
                out,
                "  {}: token from {}; used by {clients}",
                a.uuid, a.token_source
            );
        }
    }
    let _ = writeln!(out, "clients:");
    for c in cfg.clients.iter() {
        let stores = match &c.stores {
            policy::StoreAllow::All => "*".to_string(),
            policy::StoreAllow::Only(v) => v.join(", "),
        };
        let default = c
            .default_store
            .as_deref()
            .map(|d| format!(" (default {d})"))
            .unwrap_or_default();
        let mode = match c.mode {
            crate::learn::Mode::Learn => "; mode learn",
            crate::learn::Mode::Enforce => "",
        };
        let accounts = if c.accounts.is_empty() {
            String::new()
        } else {
            format!("; accounts {}", c.accounts.join(", "))
        };
        let _ = writeln!(
            out,
            "  {}: stores {stores}{default}; scopes {}{accounts}{}{mode}",
            c.name,
            c.scopes.join(", "),
            c.identity
        );
    }
    if cfg.stores.iter().any(|s| !s.channels.is_empty()) {
        let _ = writeln!(
            out,
            "mint:     storefront tokens asked for {} s, renewed {} s before they expire",
            cfg.mint.token_lifetime.as_secs(),
            cfg.mint.renew_before.as_secs()
        );
    }
    if let Some(l) = &cfg.learn {
        let kept = match crate::learn::load(&l.backend) {
            Ok(obs) => format!("{} kept now", obs.len()),
            // A Redis that is down now is not a config error.
            Err(e) if matches!(l.backend, crate::config::LearnBackend::Redis(_)) => {
                format!("not reachable now: {e}")
            }
            Err(e) => return Err(e),
        };
        let _ = writeln!(
            out,
            "learn:    observations in {} ({kept}; max {})",
            l.backend, l.max_entries
        );
    }
    if let Some(app) = &cfg.app {
        let _ = writeln!(
            out,
            "app:      {}{} (redirect_uri {}); client {}; secret from {}; scopes {}",
            app.listen,
            if app.tls.is_some() { " (TLS)" } else { "" },
            app.redirect_uri,
            app.client_id,
            app.client_secret_source,
            app.scopes.join(", ")
        );
    }
    if let Some(q) = &cfg.quota {
        let sharing = match &q.redis_url {
            Some(url) => format!(
                "shared through Redis {} (else 1/{} each)",
                crate::token_store::redact_url(url.expose()),
                q.replicas
            ),
            None => format!("1/{} of each store's quota per replica", q.replicas),
        };
        let weights: Vec<String> = cfg
            .clients
            .iter()
            .map(|c| match c.quota_max_share {
                Some(cap) => format!("{} {} (at most {cap})", c.name, c.quota_weight),
                None => format!("{} {}", c.name, c.quota_weight),
            })
            .collect();
        let _ = writeln!(
            out,
            "quota:    wait up to {} ms, {} waiting per store, {} retries; {sharing}; weights {}",
            q.max_wait.as_millis(),
            q.max_queue,
            q.retries,
            weights.join(", ")
        );
    }
    if let Some(ts) = &cfg.token_store {
        let store = match ts.open_once() {
            Ok(store) => Some(store),
            // A Redis that is down now is not a config error.
            Err(e) if matches!(ts.backend, crate::config::TokenStoreBackend::Redis(_)) => {
                let _ = writeln!(out, "token store: not reachable now: {e}");
                None
            }
            Err(e) => return Err(e),
        };
        let installed = store.as_ref().map(|s| s.list()).unwrap_or_default();
        if let Some(store) = &store {
            let _ = writeln!(
                out,
                "token store: {} ({} installed)",
                store.location(),
                installed.len()
            );
        }
        for i in &installed {
            let _ = writeln!(
                out,
                "  {}: installed; scopes {}",
                i.hash,
                i.scopes.join(", ")
            );
            if cfg.stores.get(&i.hash).is_some() {
                let _ = writeln!(
                    out,
                    "  warning: store {} is in [[stores]] and in the token store; the config's token wins",
                    i.hash
                );
            }
        }
    }
    let operator: Vec<&Route> = cfg
        .policy
        .routes
        .iter()
        .filter(|r| r.origin == policy::Origin::Operator)
        .collect();
    let _ = writeln!(
        out,
        "routes: {} ({} from [[routes]]); B2B Edition: {}",
        cfg.policy.routes.len(),
        operator.len(),
        cfg.policy.b2b_routes.len()
    );
    for r in operator {
        let _ = writeln!(
            out,
            "  {} {} -> {}",
            r.method,
            r.template,
            r.family_names.join(" | ")
        );
    }
    Ok(out)
}
