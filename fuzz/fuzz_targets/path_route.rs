//! Path canonicalization and routing: the request target as hyper would
//! parse it → the proxy's decision (`decide::Canonical`, then `decide::route`:
//! account or store, store allowed, family, route lookup; then
//! `Routed::authorize`) → the family's upstream URI (`forward::Upstreams::target`).
//!
//! Invariants, whenever a path is accepted:
//! - it has no empty, `.` or `..` segment, in any encoding; no raw `\`, `;`,
//!   `?`, `#` or control byte; no escape encodes an unreserved character;
//!   every segment decodes to UTF-8 without `/`, `\`, `%`, `;` or a control
//!   character (C0, DEL or C1); an independent normalizer (the `url` crate)
//!   leaves it unchanged;
//! - an `/accounts/{uuid}/…` path is the account family, decided only for a
//!   client listing that (configured) account, its API path the rest of the
//!   path;
//! - otherwise the store found is the one whose hash or alias is exactly the
//!   `/stores/{name}` segment (or the default store, for any other first
//!   segment), and the API path is the rest of the path, byte for byte;
//!   a client without a default store gets `store_unknown` for the latter,
//!   and a client never gets a store it is not allowed;
//! - the family is the one `family::of_store_path` (or `account_path`) gives,
//!   and the route found is in that family's table (a B2B route in
//!   `policy.b2b_routes`), matching its template segment for segment;
//! - the URI sent upstream is on the family's origin (its scheme, authority
//!   and base path), the store's configured channel for a storefront: the
//!   api's `/stores/{real hash}` + the API path + the caller's query; B2B
//!   Edition's `/api/v3/io` + the path after `/b2b/v3/io` + the query; the
//!   payments host's `/stores/{hash}/payments`; the channel's `/graphql`;
//!   the account's `/accounts/{uuid}` + the rest + the query.
#![no_main]

use std::sync::OnceLock;

use bcgate::config::{Client, Config, Origin, Stores};
use bcgate::decide::{self, Ask, Canonical, Credential, FamilyHeaders, Gate};
use bcgate::family::{self, Family};
use bcgate::forward::Upstreams;
use bcgate::learn::Mode;
use bcgate::policy::{BodyFacts, Policy, Route, RouteTable};
use http::Method;
use libfuzzer_sys::fuzz_target;

/// (hash, alias, channels) of the stores in the fixed config; the first is the default.
const STORES: [(&str, Option<&str>, &str); 3] = [
    (
        "abc123",
        Some("eu"),
        r#"[{ id = 1, origin = "https://shop.example.com" }, { id = 2, origin = "https://b2b-shop.example.com/store/two" }]"#,
    ),
    (
        "def456",
        Some("us-east_1"),
        r#"[{ id = 1, origin = "https://other.example.net/sf" }]"#,
    ),
    // Odd but valid names: a hash that is the prefix word, an alias that is a literal.
    ("stores", Some("v3"), "[]"),
];
const DEFAULT: &str = "abc123";
/// The account the `with-default` client lists, and one nobody lists.
const ACCOUNT: &str = "0b4c2d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e";
const OTHER_ACCOUNT: &str = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b";

struct Fixture {
    config: Config,
    upstreams: Upstreams,
}

/// Clients: (name, default store, accounts, every scope); both may use
/// every store but `stores`.
const CLIENTS: [(&str, Option<&str>, &str, bool); 2] = [
    ("with-default", Some(DEFAULT), ACCOUNT, true),
    ("no-default", None, "", false),
];

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // Every origin has a base path, so a URI that drops or doubles it shows.
        let mut text = String::from(
            "[upstream]\nbase_url = \"https://api.example.com/bc\"\n\
             payments_url = \"https://payments.example.com/pay\"\n\
             b2b_url = \"https://b2b.example.com/b2b-host\"\n",
        );
        for (hash, alias, channels) in STORES {
            text.push_str(&format!(
                "[[stores]]\nhash = {hash:?}\ntoken_env = \"FUZZ_NEVER_READ\"\nchannels = {channels}\n"
            ));
            if let Some(a) = alias {
                text.push_str(&format!("alias = {a:?}\n"));
            }
        }
        for uuid in [ACCOUNT, OTHER_ACCOUNT] {
            text.push_str(&format!(
                "[[accounts]]\nuuid = {uuid:?}\ntoken_env = \"FUZZ_NEVER_READ\"\n"
            ));
        }
        let every: Vec<String> = Policy::builtin()
            .expect("built-in tables")
            .scopes
            .iter()
            .map(|s| format!("{:?}", s.name))
            .collect();
        for (i, (name, default, account, all)) in CLIENTS.iter().enumerate() {
            let scopes = if *all { every.join(", ") } else { String::new() };
            let accounts = if account.is_empty() {
                String::new()
            } else {
                format!("{account:?}")
            };
            text.push_str(&format!(
                "[[clients]]\nname = {name:?}\nkey_sha256 = \"{:064x}\"\n\
                 stores = [\"abc123\", \"def456\"]\naccounts = [{accounts}]\nscopes = [{scopes}]\n",
                i + 1
            ));
            if let Some(d) = default {
                text.push_str(&format!("default_store = {d:?}\n"));
            }
        }
        let dir = std::env::temp_dir().join(format!("bcgate-fuzz-route-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let path = dir.join("bcgate.toml");
        std::fs::write(&path, text).expect("write the config");
        let config = Config::load_without_secrets(&path).expect("fixture config");
        let _ = std::fs::remove_dir_all(&dir);
        let upstreams =
            Upstreams::new(&config.upstream, &config.stores, None).expect("upstream clients");
        Fixture { config, upstreams }
    })
}

const METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// The headers the payments and storefront decisions read: none; an order
/// and a customer to impersonate; a current-customer token.
const HEADERS: [FamilyHeaders<'static>; 3] = [
    FamilyHeaders {
        customer_id: None,
        customer_token: false,
        order_id: None,
    },
    FamilyHeaders {
        customer_id: Some(b"7"),
        customer_token: false,
        order_id: Some(b"42"),
    },
    FamilyHeaders {
        customer_id: None,
        customer_token: true,
        order_id: Some(b"x"),
    },
];

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    // As hyper hands it over: a parsed request target (origin or absolute form).
    if let Ok(uri) = http::Uri::try_from(data) {
        check(fx, uri.path(), uri.query());
    }
    // And any text at all as a path: the checks must not rely on the parser.
    if let Ok(text) = std::str::from_utf8(data) {
        check(fx, text, None);
    }
});

fn check(fx: &Fixture, path: &str, query: Option<&str>) {
    let Ok(canonical) = Canonical::new(path) else {
        return;
    };
    assert_canonical(path);
    let gate = Gate::of(&fx.config, &|_| Ok(None));
    // Only payments and storefront decisions read the headers.
    let headers = if path.contains("/payments") || path.contains("/storefront") {
        &HEADERS[..]
    } else {
        &HEADERS[..1]
    };
    for (name, default, _, _) in CLIENTS {
        let client = fx.config.clients.by_name(name).expect("a fixture client");
        for method in &METHODS {
            for h in headers {
                let ask = Ask {
                    client,
                    mode: Mode::Enforce,
                    method,
                    path: canonical,
                    query,
                    headers: *h,
                };
                match decide::route(&gate, ask) {
                    Ok(routed) => {
                        let lookup = check_routed(fx, path, default, client, &routed);
                        let want = if *method == Method::HEAD {
                            &Method::GET
                        } else {
                            method
                        };
                        assert_eq!(&routed.route.method, want);
                        assert!(
                            template_matches(&routed.route.template, lookup),
                            "{method} {lookup:?} matched {} whose segments differ",
                            routed.route.template
                        );
                        let facts = routed
                            .body_need()
                            .map_or(BodyFacts::None, decide::assumed_facts);
                        match routed.authorize(facts) {
                            Ok(d) => check_decision(fx, path, query, client, &d),
                            Err(d) => {
                                let code = d.error.code();
                                assert!(
                                    matches!(code, "scope_denied" | "bad_request"),
                                    "{method} {path:?}: unexpected refusal {code} once routed"
                                );
                            }
                        }
                    }
                    Err(d) => {
                        let code = d.error.code();
                        assert!(
                            matches!(
                                code,
                                "store_unknown"
                                    | "store_not_allowed"
                                    | "route_unknown"
                                    | "bad_request"
                                    | "account_not_allowed"
                                    | "channel_unknown"
                            ),
                            "{method} {path:?}: unexpected refusal {code}"
                        );
                        if code == "store_not_allowed" {
                            let hash = d.store.as_ref().map(|s| s.hash.as_str());
                            assert_eq!(hash, Some("stores"), "{path:?}: refused an allowed store");
                        }
                        if code == "account_not_allowed" {
                            assert!(family::account_path(path).is_some(), "{path:?}");
                        }
                    }
                }
            }
        }
    }
}

/// The store (or account), family and route of a routed request are the
/// ones the path names. Returns the path looked up in the family's table.
fn check_routed<'r>(
    fx: &Fixture,
    path: &str,
    default: Option<&str>,
    client: &Client,
    t: &decide::Routed<'_, 'r>,
) -> &'r str {
    let api = t.api_path;
    assert!(
        path.ends_with(api),
        "{path:?}: api path {api:?} is not its suffix"
    );
    if let Some((uuid, rest)) = family::account_path(path) {
        assert_eq!(t.family, Family::Account, "{path:?}");
        assert!(t.store.is_none(), "{path:?}: an account path with a store");
        assert_eq!(api, rest, "{path:?}: the account's api path");
        assert!(
            client.accounts.iter().any(|a| a == uuid),
            "{path:?}: account {uuid:?} routed for a client not listing it"
        );
        assert!(fx.config.accounts.get(uuid).is_some(), "{path:?}");
        assert!(in_table(&fx.config.families.account, t.route), "{path:?}");
        return api;
    }
    assert_ne!(t.family, Family::Account, "{path:?}: not an account path");
    let store = t.store.as_ref().expect("a store path has a store");
    assert_ne!(
        store.hash, "stores",
        "{path:?}: a store the client may not use"
    );
    let stores = &fx.config.stores;
    let rest = &path[1..];
    let (first, after) = rest.split_once('/').unwrap_or((rest, ""));
    if first == "stores" {
        let name = after.split('/').next().unwrap_or("");
        assert_eq!(
            path,
            format!("/stores/{name}{api}"),
            "the api path is what follows the store segment"
        );
        assert_eq!(
            Some(&store.hash),
            owner_of(stores, name).as_ref(),
            "{path:?}: the store named {name:?} is not the one chosen"
        );
    } else {
        assert!(
            !first.eq_ignore_ascii_case("stores"),
            "{path:?}: a case variant of /stores/ was routed"
        );
        assert_eq!(
            default,
            Some(store.hash.as_str()),
            "{path:?}: not the default store"
        );
        assert_eq!(api, path, "{path:?}: a default-store path is the api path");
    }
    let (family, lookup) = family::of_store_path(api);
    assert_eq!(t.family, family, "{path:?}: not the family of its path");
    let policy = &fx.config.policy;
    let families = fx.config.families;
    let table = match family {
        Family::Api => &policy.routes,
        Family::B2b => {
            let rest = api.strip_prefix(family::B2B_PREFIX);
            assert_eq!(rest, Some(lookup), "{path:?}: B2B route outside /b2b/v3/io");
            &policy.b2b_routes
        }
        Family::Payments => &families.payments,
        Family::Storefront => &families.storefront,
        Family::Local => &families.local,
        Family::Account => unreachable!("checked above"),
    };
    assert!(
        in_table(table, t.route),
        "{path:?}: {} route {} is not in its family's table",
        family,
        t.route.template
    );
    lookup
}

fn in_table(table: &RouteTable, route: &Route) -> bool {
    table.iter().any(|r| std::ptr::eq(r, route))
}

/// The upstream URI of a decision is on its family's origin, at the path
/// the family's rule builds.
fn check_decision(
    fx: &Fixture,
    path: &str,
    query: Option<&str>,
    client: &Client,
    d: &decide::Decision<'_, '_>,
) {
    let up = &fx.config.upstream;
    let api = d.api_path;
    let hash = d.store.as_ref().map(|s| s.hash.as_str());
    let with_query = |mut s: String| {
        if let Some(q) = query {
            s.push('?');
            s.push_str(q);
        }
        s
    };
    let (origin, want): (Origin, String) = match (d.family, &d.credential) {
        (Family::Api, _) => {
            let hash = hash.expect("an api decision has a store");
            let o = up.api_origin();
            let want = with_query(format!("{}/stores/{hash}{api}", o.base_path));
            (o, want)
        }
        (Family::B2b, _) => {
            let rest = api
                .strip_prefix(family::B2B_PREFIX)
                .expect("a B2B path is under /b2b/v3/io");
            let want = with_query(format!("{}/api/v3/io{rest}", up.b2b.base_path));
            (up.b2b.clone(), want)
        }
        (Family::Payments, Credential::PaymentToken { order }) => {
            assert_eq!(*order, 42, "{path:?}: the order is the caller's header");
            let hash = hash.expect("a payment has a store");
            let want = format!("{}/stores/{hash}/payments", up.payments.base_path);
            (up.payments.clone(), want)
        }
        (
            Family::Storefront,
            Credential::Private { channel, .. }
            | Credential::Impersonation { channel, .. }
            | Credential::ProvenCustomer { channel },
        ) => {
            let store = d.store.as_ref().expect("a storefront request has a store");
            let origin = store
                .channel(Some(*channel))
                .unwrap_or_else(|| panic!("{path:?}: channel {channel} is not the store's"))
                .origin
                .clone();
            let want = format!("{}/graphql", origin.base_path);
            (origin, want)
        }
        (Family::Account, Credential::Account(account)) => {
            let (uuid, rest) = family::account_path(path).expect("an account path");
            assert_eq!(account.uuid, uuid, "{path:?}: another account's credential");
            assert!(client.accounts.iter().any(|a| a == uuid), "{path:?}");
            let o = up.api_origin();
            let want = with_query(format!("{}/accounts/{uuid}{rest}", o.base_path));
            (o, want)
        }
        // Answered by bcgate itself: there is no upstream target.
        (Family::Local, Credential::Answer(_)) => return,
        (family, credential) => panic!("{path:?}: {family} decided with {credential:?}"),
    };
    let Ok((upstream, uri)) = fx.upstreams.target(d, query) else {
        // A query the URI builder refuses is a 400 before anything is sent.
        return;
    };
    assert_eq!(
        uri.scheme(),
        Some(&origin.scheme),
        "{path:?}: {} scheme",
        d.family
    );
    assert_eq!(
        uri.authority(),
        Some(&origin.authority),
        "{path:?}: {} request leaves its origin",
        d.family
    );
    assert_eq!(
        upstream.host(),
        &origin.host,
        "{path:?}: not the {} origin's client",
        d.family
    );
    let sent = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("");
    assert_eq!(
        sent, want,
        "{path:?}: the {} upstream target differs from the authorized one",
        d.family
    );
}

/// The hash of the one store whose hash or alias is exactly `name`.
fn owner_of(stores: &Stores, name: &str) -> Option<String> {
    let mut owners = stores
        .iter()
        .filter(|s| s.hash == name || s.alias.as_deref() == Some(name));
    let owner = owners.next().map(|s| s.hash.clone());
    assert!(owners.next().is_none(), "{name:?} names two stores");
    owner
}

fn assert_canonical(path: &str) {
    let rest = path.strip_prefix('/').expect("starts with '/'");
    for seg in rest.split('/') {
        assert!(!seg.is_empty(), "{path:?}: empty segment");
        let decoded = percent_encoding::percent_decode_str(seg).collect::<Vec<u8>>();
        let decoded = std::str::from_utf8(&decoded)
            .unwrap_or_else(|_| panic!("{path:?}: segment {seg:?} decodes to invalid UTF-8"));
        assert!(
            decoded != "." && decoded != "..",
            "{path:?}: dot segment {seg:?}"
        );
        assert!(
            !decoded.contains(['/', '\\', '%', ';']) && !decoded.chars().any(char::is_control),
            "{path:?}: segment {seg:?} decodes to a separator or control character"
        );
        let bytes = seg.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            assert!(
                b.is_ascii() && !b.is_ascii_control() && !b"\\;?#".contains(b),
                "{path:?}: raw byte {b:#04x}"
            );
            if *b == b'%' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex digits");
                let v = u8::from_str_radix(hex, 16).expect("a valid escape");
                assert!(
                    !(v.is_ascii_alphanumeric() || b"-._~".contains(&v)),
                    "{path:?}: %{hex} encodes an unreserved character"
                );
            }
        }
    }
    // A normalizer has nothing to do on a canonical path (characters it
    // would percent-encode are left out of the comparison).
    let plain = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@/%".contains(&b));
    if plain {
        let url = url::Url::parse(&format!("http://h{path}")).expect("parses as a URL path");
        assert_eq!(url.path(), path, "a URL normalizer would change the path");
    }
}

/// Whether `api` (less a v2 format suffix) fits `template` segment by segment.
fn template_matches(template: &str, api: &str) -> bool {
    let t: Vec<&str> = template[1..].split('/').collect();
    let mut candidates = vec![api];
    if api.starts_with("/v2/") {
        for suffix in [".json", ".xml"] {
            if let Some(s) = api.strip_suffix(suffix) {
                candidates.push(s);
            }
        }
    }
    candidates.into_iter().any(|p| {
        let Some(p) = p.strip_prefix('/') else {
            return false;
        };
        let segs: Vec<&str> = p.split('/').collect();
        segs.len() == t.len()
            && t.iter()
                .zip(&segs)
                .all(|(ts, s)| !s.is_empty() && (ts.starts_with('{') || ts == s))
    })
}
