//! `bcgate explain`, `bcgate routes` and `bcgate recommend`: what the
//! policy says about a request (in every API family), the route tables, and
//! learn mode's least scopes.

use std::fmt::Write as _;

use http::Method;

use super::tokens::utc;
use crate::config::{Config, UpstreamFile};
use crate::decide::{self, Credential, FamilyHeaders};
use crate::family::{self, Family, FamilyRoutes};
use crate::learn::Mode;
use crate::policy::{self, BodyFacts, Lookup, Policy, Route, RouteTable};
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

/// What a client needs for a route of `family`, in words: the route's
/// scopes, except where the family's credential decides (who a storefront
/// request acts as, an account's query or mutation).
fn family_needs(
    policy: &Policy,
    family: Family,
    route: &Route,
    method: &Method,
    headers: &FamilyHeaders<'_>,
) -> String {
    match family {
        Family::Storefront if headers.customer_id.is_some() => {
            format!(
                "{} (it names the customer to act as)",
                family::STOREFRONT_IMPERSONATE
            )
        }
        Family::Storefront if headers.customer_token => {
            "storefront:Customer (it acts as the shopper whose token it sends)".into()
        }
        Family::Storefront => format!(
            "{} (the private token carries each of them the client holds)",
            policy.scopes.required(&route.families, true).join(" | ")
        ),
        Family::Account if route.flags.graphql => {
            // A modify-level scope grants a query too; naming the read
            // ones is enough.
            let reads: Vec<String> = policy
                .scopes
                .required(&route.families, false)
                .into_iter()
                .filter(|n| {
                    policy
                        .scopes
                        .get(n)
                        .is_some_and(|s| s.level == policy::Level::Read)
                })
                .collect();
            format!(
                "a query: {} (or a modify-level one); a mutation: {}",
                reads.join(" | "),
                policy.scopes.required(&route.families, true).join(" | ")
            )
        }
        Family::Local if route.template.as_ref() == family::CURRENT_CUSTOMER_PATH => {
            "no scope: any client allowed the store (bcgate answers it)".into()
        }
        Family::Api | Family::Payments | Family::B2b | Family::Account | Family::Local => {
            needs(policy, route, method)
        }
    }
}

/// Where a family's requests go, in words.
fn destination(family: Family, upstream: Option<&crate::config::Upstream>) -> String {
    let defaults = UpstreamFile::default();
    let (api, payments, b2b) = match upstream {
        Some(u) => (
            u.base_url.as_str(),
            u.payments.base_url.as_str(),
            u.b2b.base_url.as_str(),
        ),
        None => (
            defaults.base_url.as_str(),
            defaults.payments_url.as_str(),
            defaults.b2b_url.as_str(),
        ),
    };
    match family {
        Family::Api => format!("upstream.base_url {api}"),
        Family::Payments => format!("upstream.payments_url {payments}"),
        Family::Storefront => "the channel's storefront origin".into(),
        Family::B2b => format!("upstream.b2b_url {b2b}{}", family::B2B_UPSTREAM_PREFIX),
        Family::Account => format!("upstream.base_url {api}"),
        Family::Local => "answered by bcgate, nothing forwarded".into(),
    }
}

/// The credential bcgate adds for a family, in words (never a secret: it
/// names what is sent, not its value).
fn adds(family: Family, headers: &FamilyHeaders<'_>) -> String {
    // The id as the decision reads it (a value it refuses is not shown).
    let shown_id = |raw: Option<&[u8]>| raw.and_then(decide::parse_positive_id);
    match family {
        Family::Api => "the store's X-Auth-Token".into(),
        Family::B2b => "the store's X-Auth-Token and X-Store-Hash".into(),
        Family::Account => "the account's X-Auth-Token".into(),
        Family::Payments => match shown_id(headers.order_id) {
            Some(order) => format!(
                "a payment access token for order {order} (Authorization: PAT), minted with the store's token"
            ),
            None => "a payment access token for the order in X-Bcgate-Order-Id (Authorization: PAT), minted with the store's token".into(),
        },
        Family::Storefront if headers.customer_id.is_some() => {
            match shown_id(headers.customer_id) {
                Some(c) => format!(
                    "a customer impersonation token acting as customer {c} (and X-Bc-Customer-Id: {c})"
                ),
                None => "a customer impersonation token acting as the customer in X-Bc-Customer-Id".into(),
            }
        }
        Family::Storefront if headers.customer_token => {
            "a customer impersonation token acting as the customer the X-Bcgate-Customer-Token names, once verified".into()
        }
        Family::Storefront => "a private token with the client's storefront scopes".into(),
        Family::Local => "nothing; it signs or verifies with the store's client secret, which never leaves it".into(),
    }
}

/// The family of a canonical path, the table it is looked up in and the
/// path to look up (see [`crate::family`]).
fn family_route<'p, 't>(
    path: &'p str,
    policy: &'t Policy,
    families: &'t FamilyRoutes,
) -> (Family, &'t RouteTable, &'p str) {
    if let Some((_, rest)) = family::account_path(path) {
        return (Family::Account, &families.account, rest);
    }
    let (_, api_path) = crate::path::split_store(path);
    let (family, lookup) = family::of_store_path(api_path);
    let table = match family {
        Family::Api => &policy.routes,
        Family::B2b => &policy.b2b_routes,
        Family::Payments => &families.payments,
        Family::Storefront => &families.storefront,
        Family::Account => &families.account,
        Family::Local => &families.local,
    };
    (family, table, lookup)
}

/// `--header 'Name: value'` as the decision reads it; any other header is
/// refused, since it would not change what `explain` says.
struct GivenHeaders {
    customer_id: Option<String>,
    customer_token: bool,
    order_id: Option<String>,
    graphql_media: bool,
}

impl GivenHeaders {
    fn parse(given: &[String]) -> Result<Self, String> {
        let mut out = Self {
            customer_id: None,
            customer_token: false,
            order_id: None,
            graphql_media: false,
        };
        let mut seen = std::collections::HashSet::new();
        for h in given {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| format!("--header {:?}: expected 'Name: value'", shorten(h)))?;
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim();
            if !seen.insert(name.clone()) {
                return Err(format!("--header {name} is given twice"));
            }
            match name.as_str() {
                "x-bc-customer-id" => out.customer_id = Some(value.to_owned()),
                // Only its presence matters here: the proxy verifies it.
                "x-bcgate-customer-token" => out.customer_token = true,
                "x-bcgate-order-id" => out.order_id = Some(value.to_owned()),
                "content-type" => {
                    let media = value.split(';').next().unwrap_or("").trim();
                    out.graphql_media = media.eq_ignore_ascii_case("application/graphql");
                }
                _ => {
                    return Err(format!(
                        "--header {:?}: explain reads only X-Bc-Customer-Id, X-Bcgate-Customer-Token, \
                         X-Bcgate-Order-Id and Content-Type (no other header changes the decision)",
                        shorten(&name)
                    ));
                }
            }
        }
        Ok(out)
    }

    fn family_headers(&self) -> FamilyHeaders<'_> {
        FamilyHeaders {
            customer_id: self.customer_id.as_deref().map(str::as_bytes),
            customer_token: self.customer_token,
            order_id: self.order_id.as_deref().map(str::as_bytes),
        }
    }
}

/// The name part of what was typed, for an error: a header's value may be
/// a token, so nothing after the name is shown.
fn shorten(text: &str) -> String {
    text.split(|c: char| c == ':' || c.is_whitespace())
        .find(|w| !w.is_empty())
        .unwrap_or("")
        .chars()
        .take(40)
        .collect()
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
    graphql_media: bool,
    assumed: &mut Option<&'static str>,
) -> String {
    let routed = match decide::route(gate, ask) {
        Ok(r) => r,
        Err(d) => return refusal(&d.error),
    };
    let facts = match (routed.body_need(), body) {
        (None, _) => BodyFacts::None,
        (Some(need), Some(body)) => {
            match decide::body_facts(need, body.as_bytes(), graphql_media) {
                Ok(f) => f,
                Err(e) => return refusal(&e),
            }
        }
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
                (Some(s), c) => format!("store '{}'{}", s.hash, credential_detail(c)),
                (None, Credential::Account(a)) => format!("account '{}'", a.uuid),
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

/// What a decided credential carries beyond the store, in words (empty for
/// the store's own token).
fn credential_detail(credential: &Credential) -> String {
    match credential {
        Credential::StoreToken | Credential::Account(_) => String::new(),
        Credential::Answer(_) => " (answered by bcgate)".into(),
        Credential::PaymentToken { order } => {
            format!(" (a payment access token for order {order})")
        }
        Credential::Private { channel, scopes } => {
            let names: Vec<&str> = family::STOREFRONT_SCOPES
                .iter()
                .enumerate()
                .filter(|(i, _)| scopes & (1 << i) != 0)
                .map(|(_, s)| *s)
                .collect();
            format!(
                " channel {channel} (a private token of scopes {})",
                names.join(", ")
            )
        }
        Credential::Impersonation { channel, customer } => {
            format!(" channel {channel} (an impersonation token as customer {customer})")
        }
        Credential::ProvenCustomer { channel } => format!(
            " channel {channel} (an impersonation token as the shopper, if the X-Bcgate-Customer-Token verifies; else 401 invalid_customer_token)"
        ),
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
    headers: &[String],
) -> Result<String, String> {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("bad method {method:?}"))?;
    let given = GivenHeaders::parse(headers)?;
    let family_headers = given.family_headers();
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
    let policy = match &loaded {
        Ok(c) => &c.policy,
        Err(_) => Policy::builtin().map_err(|e| e.to_string())?,
    };
    let families = match &loaded {
        Ok(c) => c.families,
        Err(_) => FamilyRoutes::builtin().map_err(|e| e.to_string())?,
    };
    let (family, table, lookup) = family_route(canonical.as_str(), policy, families);
    let upstream = loaded.as_ref().ok().map(|c| &c.upstream);
    match table.lookup(&method, lookup) {
        Lookup::Found(route) => {
            let _ = writeln!(
                out,
                "route:  {} {} ({:?})",
                route.method,
                crate::learn::shown_route(family, &route.template),
                route.origin
            );
            let _ = writeln!(out, "family: {family} ({})", destination(family, upstream));
            let _ = writeln!(
                out,
                "needs:  {}",
                family_needs(policy, family, route, &method, &family_headers)
            );
            if !route.flags.not_proxied {
                let _ = writeln!(out, "adds:   {}", adds(family, &family_headers));
            }
            // The storefront row's note is about private tokens only.
            let acting = family == Family::Storefront
                && (family_headers.customer_id.is_some() || family_headers.customer_token);
            if let Some(note) = route.note.as_ref().filter(|_| !acting) {
                let _ = writeln!(out, "note:   {note}");
            }
        }
        Lookup::Unknown => {
            let shown = crate::learn::shown_route(family, lookup);
            let why = match family {
                Family::Api => "is not in the route table (an operator can map it in [[routes]])",
                Family::B2b => "is not in the B2B Edition route table",
                Family::Payments | Family::Storefront | Family::Account | Family::Local => {
                    "is not an endpoint bcgate serves for this family"
                }
            };
            let _ = writeln!(out, "route:  none: {method} {shown} {why}");
            let _ = writeln!(out, "family: {family} ({})", destination(family, upstream));
        }
        Lookup::CaseMismatch => {
            let _ = writeln!(
                out,
                "route:  none: {method} {} differs from a known route in case",
                crate::learn::shown_route(family, lookup)
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
                headers: family_headers,
            };
            let v = verdict(&gate, ask, body, given.graphql_media, &mut assumed);
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
    // The one-endpoint families, each with the credential it is sent with.
    let families = FamilyRoutes::builtin().map_err(|e| e.to_string())?;
    let one_endpoint = [
        (Family::Payments, &families.payments),
        (Family::Storefront, &families.storefront),
        (Family::Account, &families.account),
        (Family::Local, &families.local),
    ];
    out.push('\n');
    for (family, table) in one_endpoint {
        let _ = writeln!(
            out,
            "# {family} ({}; bcgate adds {})",
            destination(family, None),
            adds(family, &FamilyHeaders::default())
        );
        for r in table.iter() {
            let _ = writeln!(
                out,
                "{:<7} {:<70} {}",
                r.method.as_str(),
                crate::learn::shown_route(family, &r.template),
                family_needs(policy, family, r, &r.method, &FamilyHeaders::default())
            );
        }
    }
    let _ = writeln!(
        out,
        "A storefront request with X-Bc-Customer-Id needs storefront:impersonate; with \
         X-Bcgate-Customer-Token, storefront:Customer."
    );
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
