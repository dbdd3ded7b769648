//! `bcgate explain`, `bcgate routes` and `bcgate recommend`: what the
//! policy says about a request, the whole route table, and learn mode's
//! least scopes.

use std::fmt::Write as _;

use http::Method;

use super::tokens::utc;
use crate::config::Config;
use crate::decide;
use crate::learn::Mode;
use crate::policy::{self, BodyFacts, Lookup, Policy, Route};
use crate::token_store::OpenTokenStore;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum RecommendFormat {
    Text,
    Toml,
}

/// The scopes that grant a method on a route, in words.
fn needs(policy: &Policy, route: &Route, method: &Method) -> String {
    if route.flags.not_proxied {
        return "never proxied (storefront-style API)".into();
    }
    if route.flags.graphql {
        return "bcgate:graphql_read for a query, bcgate:graphql_write for a mutation".into();
    }
    let mut s = policy
        .scopes
        .required(&route.families, route.is_write(method))
        .join(" | ");
    if route.flags.scripts_visibility {
        s.push_str(" (+ store_content_checkout when visibility is checkout/all_pages, or a PUT without visibility)");
    }
    s
}

/// A refusal as `explain` prints it: what the proxy answers.
fn refusal(e: &crate::error::ProxyError) -> String {
    format!(
        "denied ({} {}): {}",
        e.status().as_u16(),
        e.code(),
        e.detail()
    )
}

/// The decision of [`crate::decide`] for one client in one mode, in words.
fn verdict(
    gate: &decide::Gate<'_>,
    ask: decide::Ask<'_, '_>,
    body: Option<&str>,
    assumed: &mut Option<&'static str>,
) -> String {
    let routed = match decide::route(gate, ask) {
        Ok(r) => r,
        Err(d) => return refusal(&d.error),
    };
    let facts = match (routed.body_need(), body) {
        (None, _) => BodyFacts::None,
        (Some(need), Some(body)) => match decide::body_facts(need, body.as_bytes(), false) {
            Ok(f) => f,
            Err(e) => return refusal(&e),
        },
        (Some(need), None) => {
            *assumed = Some(match need {
                decide::BodyNeed::Graphql => {
                    "the body is a GraphQL query (give --body to decide on yours)"
                }
                decide::BodyNeed::Script { .. } => {
                    "the script's visibility needs no Checkout Content (give --body to decide on yours)"
                }
            });
            decide::assumed_facts(need)
        }
    };
    match routed.authorize(facts) {
        Err(d) => refusal(&d.error),
        Ok(d) => {
            let on = match (&d.store, &d.credential) {
                (Some(s), _) => format!("store '{}'", s.hash),
                (None, decide::Credential::Account(a)) => format!("account '{}'", a.uuid),
                (None, _) => "no store".into(),
            };
            match (ask.mode, d.would_deny) {
                (Mode::Enforce, _) => format!("allowed on {on}"),
                (Mode::Learn, None) => format!("forwarded to {on}, recorded"),
                (Mode::Learn, Some(denial)) => format!(
                    "forwarded to {on}, recorded and counted as would_deny ({})",
                    crate::error::ProxyError::ScopeDenied(denial).detail()
                ),
            }
        }
    }
}

/// `bcgate explain`: the route, the scopes it needs and, per client, what
/// the proxy would answer in enforce and in learn mode — by the proxy's own
/// decision ([`crate::decide`]). Needs no store token; the token store is
/// read only for a store the config does not list. Fails (after printing
/// what it knows) when it cannot show the clients.
pub(super) fn explain(
    path: &std::path::Path,
    method: &str,
    req_path: &str,
    client: Option<&str>,
    body: Option<&str>,
) -> Result<String, String> {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("bad method {method:?}"))?;
    let (path_only, query) = match req_path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (req_path, None),
    };
    let mut out = String::new();
    let canonical = match decide::Canonical::new(path_only) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(
                out,
                "{method} {path_only}: {} (before the caller is identified: the same for every client)",
                refusal(&e)
            );
            return Ok(out);
        }
    };
    let loaded = Config::load_without_secrets(path);
    let builtin = Policy::builtin().map_err(|e| e.to_string())?;
    let policy = loaded.as_ref().map_or(builtin, |c| &c.policy);
    let (_, api_path) = crate::path::split_store(canonical.as_str());
    match policy.routes.lookup(&method, api_path) {
        Lookup::Found(route) => {
            let _ = writeln!(
                out,
                "route:  {} {} ({:?})",
                route.method, route.template, route.origin
            );
            let _ = writeln!(out, "needs:  {}", needs(policy, route, &method));
            if let Some(note) = &route.note {
                let _ = writeln!(out, "note:   {note}");
            }
        }
        Lookup::Unknown => {
            let _ = writeln!(
                out,
                "route:  none: {method} {api_path} is not in the route table (an operator can map it in [[routes]])"
            );
        }
        Lookup::CaseMismatch => {
            let _ = writeln!(
                out,
                "route:  none: {method} {api_path} differs from a known route in case"
            );
        }
    }
    let fail = |out: &str, why: String| {
        // What is known is still worth showing; the exit status says it is incomplete.
        let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
        Err(why)
    };
    let cfg = match &loaded {
        Ok(cfg) => cfg,
        Err(e) => return fail(&out, format!("cannot show which clients may send it: {e}")),
    };
    if let Some(name) = client
        && cfg.clients.by_name(name).is_none()
    {
        return fail(
            &out,
            format!("no client named {name:?} in {}", path.display()),
        );
    }
    // The token store is opened (with its key) only if a decision asks for
    // a store the config does not list.
    let token_store = std::sync::OnceLock::new();
    let unreadable = std::sync::Mutex::new(None::<String>);
    let installed = |hash: &str| {
        let Some(ts) = &cfg.token_store else {
            return Ok(None);
        };
        match token_store.get_or_init(|| ts.open_once()) {
            Ok(store) => Ok(store
                .get(hash)
                .map(|inst| std::sync::Arc::new(crate::app::as_store(&inst, &cfg.policy)))),
            Err(e) => {
                *unreadable
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(format!(
                    "store '{hash}' is not in [[stores]], and the token store that would hold it cannot be read: {e}"
                ));
                Ok(None)
            }
        }
    };
    let gate = decide::Gate::of(cfg, &installed);
    let mut assumed = None;
    let mut cannot_tell = None;
    let _ = writeln!(out, "clients:");
    for c in cfg
        .clients
        .iter()
        .filter(|c| client.is_none_or(|n| n == c.name))
    {
        let mut line = |mode| {
            let ask = decide::Ask {
                client: c,
                mode,
                method: &method,
                path: canonical,
                query,
                headers: decide::FamilyHeaders::default(),
            };
            let v = verdict(&gate, ask, body, &mut assumed);
            match unreadable
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
            {
                Some(why) => {
                    let line = format!("cannot tell: {why}");
                    cannot_tell = Some(why);
                    line
                }
                None => v,
            }
        };
        let enforce = line(Mode::Enforce);
        let learn = line(Mode::Learn);
        let _ = writeln!(
            out,
            "  {} (mode {}):\n    enforce: {enforce}\n    learn:   {learn}",
            c.name, c.mode
        );
    }
    if let Some(a) = assumed {
        let _ = writeln!(out, "assumes: {a}");
    }
    match cannot_tell {
        Some(why) => fail(&out, why),
        None => Ok(out),
    }
}

pub(super) fn recommend(
    path: &std::path::Path,
    client: Option<&str>,
    format: RecommendFormat,
) -> Result<String, String> {
    use crate::learn::recommend;
    let cfg = Config::load(path).map_err(|e| e.to_string())?;
    let learn = cfg
        .learn
        .as_ref()
        .ok_or_else(|| format!("{}: no [learn] section, so no observations", path.display()))?;
    if let Some(name) = client
        && cfg.clients.by_name(name).is_none()
    {
        return Err(format!("no client named {name:?} in {}", path.display()));
    }
    let mut by_client: std::collections::BTreeMap<String, Vec<crate::learn::Observation>> =
        Default::default();
    for o in crate::learn::load(&learn.backend)? {
        if client.is_none_or(|n| n == o.client) {
            by_client.entry(o.client.clone()).or_default().push(o);
        }
    }
    let reports: Vec<recommend::ClientReport> = by_client
        .iter()
        .map(|(name, obs)| {
            let configured = cfg
                .clients
                .by_name(name)
                .map(|c| (c.scopes.as_slice(), c.mode.as_str()));
            recommend::report(&cfg.policy.scopes, name, configured, obs)
        })
        .collect();
    let source = learn.backend.to_string().replace(['\n', '\r'], " ");
    Ok(match format {
        RecommendFormat::Text => recommend::text(&reports, &utc),
        RecommendFormat::Toml => recommend::toml(&reports, &source),
    })
}

pub(super) fn routes() -> Result<String, String> {
    let policy = Policy::builtin().map_err(|e| e.to_string())?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<7} {:<70} scopes (any one grants)",
        "METHOD", "PATH"
    );
    // A heading per host; a row's PATH is what a client sends after /stores/{store}.
    let tables = [
        (
            "# api.bigcommerce.com (/stores/{store}/…)",
            "",
            &policy.routes,
        ),
        (
            "# api-b2b.bigcommerce.com (/stores/{store}/b2b/v3/io/…)",
            "/b2b/v3/io",
            &policy.b2b_routes,
        ),
    ];
    for (heading, prefix, table) in tables {
        let _ = writeln!(out, "{heading}");
        for r in table.iter() {
            let path = format!("{prefix}{}", r.template);
            let _ = writeln!(
                out,
                "{:<7} {path:<70} {}",
                r.method.as_str(),
                needs(policy, r, &r.method)
            );
        }
    }
    let _ = writeln!(
        out,
        "\nHEAD follows GET; v2 paths may end in .json or .xml.\n\nscopes (scope family level):"
    );
    for s in policy.scopes.iter() {
        let level = match s.level {
            policy::Level::Read => "read",
            policy::Level::Modify => "modify",
        };
        let _ = writeln!(
            out,
            "  {:<50} {:<45} {level}",
            s.name,
            policy.scopes.family_name(s.family)
        );
    }
    Ok(out)
}
