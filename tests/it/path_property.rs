//! Property test of the one-canonical-path rule over real sockets:
//! random request targets — BigCommerce-looking paths built from the route
//! tables of every API family (api, B2B Edition, payments, storefront,
//! account-level GraphQL), with dot segments, encodings, `//`, `;params`,
//! case variants, aliases, other stores, a second `/stores/` segment, near
//! misses of the family prefixes (`/b2bx/…`, `/b2b/v2/io/…`, `/accountsx/…`),
//! other accounts, absolute forms and queries naming other stores or
//! channels — go through a running bcgate to the mock BigCommerce, which
//! serves every family's host under its own path prefix. Two stores, A and
//! B with different tokens, and two accounts; the client may use only store
//! A and only the first account, with every scope, and names store B in an
//! `X-Store-Hash` of its own on every request.
//!
//! For every case: whenever the mock received a request for the caller,
//! (1) its target is the one the family of the path names (its family being
//! the one `bcgate::family` gives too): `/stores/{A's hash}` + exactly what
//! the client sent after its store segment (or its whole path, for the
//! default store), query unchanged, for the api; B2B Edition's host with
//! the path after `/b2b/v3/io`, and a route of the B2B table; the payments
//! host's `/stores/{A}/payments`; A's channel's storefront `/graphql`; the
//! first account's `/accounts/{uuid}/…`; (2) it carries the family's
//! credential for A (or the account) and never B's token, and a B2B
//! request's `X-Store-Hash` is A's; (3) its path is one no normalizer would
//! change. Besides it, the mock may only have minted A's tokens for a
//! payments or storefront request. bcgate answers 2xx only if that
//! happened, and refuses (a 4xx of its own) only if the mock received
//! nothing. A plain
//! well-formed request for a proxied route must be forwarded, so the
//! property cannot hold vacuously.
//!
//! Bounded: 256 cases by default (`PROPTEST_CASES`), each one raw HTTP/1.1
//! exchange with a 20 s limit; the whole run takes a few seconds.

use crate::support;

use std::sync::atomic::{AtomicUsize, Ordering};

use bcgate::family::{self, Family};
use bcgate::policy::{Lookup, Policy};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use support::{Bcgate, MockBigCommerce, RawResponse, TestCa, key_sha256, raw_exchange};

const A: &str = "abc123";
const A_ALIAS: &str = "eu";
const B: &str = "def456";
const B_ALIAS: &str = "us";
const T_A: &str = "bc-store-token-A-pR0p7eSt4aaaa";
const T_B: &str = "bc-store-token-B-pR0p7eSt4bbbb";
const KEY: &str = "bcg-key-property-9qW3eR5tY7uI";
/// The account the client lists, and one it does not.
const ACCOUNT: &str = "0b4c2d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e";
const OTHER_ACCOUNT: &str = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b";
/// Configured nowhere.
const NO_ACCOUNT: &str = "11111111-2222-4333-8444-555555555555";
const T_ACCOUNT: &str = "bc-account-token-pR0p7eSt4cccc";
const T_OTHER_ACCOUNT: &str = "bc-account-token-pR0p7eSt4dddd";
/// Store A's storefront channels (B has channel 1 only).
const CHANNELS: [u32; 2] = [1, 2];
/// The order every payment is for.
const ORDER: &str = "42";

/// What a GraphQL, scripts or payments route reads (a GraphQL query and a
/// payment), and harmless for every other one.
const BODY: &str = r#"{"query":"{ store { name } }","payment":{"instrument":{"type":"stored_card","token":"tok-prop"},"payment_method_id":"stripe.card"}}"#;

struct Fx {
    _ca: TestCa,
    mock: MockBigCommerce,
    gate: Bcgate,
}

fn fixture() -> Fx {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(A, T_A), (B, T_B)]);
    mock.add_account(ACCOUNT, T_ACCOUNT);
    mock.add_account(OTHER_ACCOUNT, T_OTHER_ACCOUNT);
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    let policy = Policy::builtin().expect("built-in tables");
    let scopes: Vec<String> = policy
        .scopes
        .iter()
        .map(|s| format!("{:?}", s.name))
        .collect();
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:0"

[upstream]
base_url = "{base}"
payments_url = "{payments}"
b2b_url = "{b2b}"
ca_file = "ca.pem"
connect_timeout_ms = 3000
request_timeout_ms = 10000

[[stores]]
hash = "{A}"
alias = "{A_ALIAS}"
token_env = "BC_TOKEN_A"
channels = [{{ id = 1, origin = "{a1}" }}, {{ id = 2, origin = "{a2}" }}]

[[stores]]
hash = "{B}"
alias = "{B_ALIAS}"
token_env = "BC_TOKEN_B"
channels = [{{ id = 1, origin = "{b1}" }}]

[[accounts]]
uuid = "{ACCOUNT}"
token_env = "BC_ACCOUNT"

[[accounts]]
uuid = "{OTHER_ACCOUNT}"
token_env = "BC_OTHER_ACCOUNT"

[[clients]]
name = "only-a"
key_sha256 = "{key}"
stores = ["{A}"]
default_store = "{A}"
accounts = ["{ACCOUNT}"]
scopes = [{scopes}]
"#,
        base = mock.base_url(),
        payments = mock.payments_url(),
        b2b = mock.b2b_url(),
        a1 = mock.storefront_origin(A, 1),
        a2 = mock.storefront_origin(A, 2),
        b1 = mock.storefront_origin(B, 1),
        key = key_sha256(KEY),
        scopes = scopes.join(", "),
    );
    let gate = Bcgate::start_in(
        dir,
        &config,
        &[
            ("BC_TOKEN_A", T_A),
            ("BC_TOKEN_B", T_B),
            ("BC_ACCOUNT", T_ACCOUNT),
            ("BC_OTHER_ACCOUNT", T_OTHER_ACCOUNT),
        ],
    );
    Fx {
        _ca: ca,
        mock,
        gate,
    }
}

// ---------------------------------------------------------------- cases

/// How the request target starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Origin,
    /// `http://{bcgate's address}/…`
    AbsoluteSelf,
    /// `https://{the upstream's address}/…`
    AbsoluteUpstream,
    /// `http://evil.example/…`
    AbsoluteOther,
}

/// One edit of the path's segments.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, &'static str),
    Replace(usize, &'static str),
    Append(usize, &'static str),
    Upper(usize),
    TrailingSlash,
    DoubleSlash(usize),
}

#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    form: Form,
    path: String,
    query: Option<String>,
    fragment: bool,
    /// No edit, store A by hash, alias or default (or the client's
    /// account), the route's own method, plain parameters, a proxied route
    /// and a query its family takes: must be forwarded.
    clean: bool,
}

impl Case {
    fn target(&self, fx: &Fx) -> String {
        let mut t = match self.form {
            Form::Origin => String::new(),
            Form::AbsoluteSelf => format!("http://{}", fx.gate.addr),
            Form::AbsoluteUpstream => format!("https://{}", fx.mock.addr),
            Form::AbsoluteOther => "http://evil.example".to_owned(),
        };
        t.push_str(&self.path);
        if let Some(q) = &self.query {
            t.push('?');
            t.push_str(q);
        }
        if self.fragment {
            t.push_str("#frag");
        }
        t
    }
}

const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

/// Segments that must never change which store is used or what is sent.
const TRICKS: &[&str] = &[
    "..",
    ".",
    "",
    "%2e",
    "%2E",
    "%2e%2e",
    "%2E%2e",
    ".%2e",
    "%2e.",
    "%2f",
    "%2F",
    "..%2f",
    "%5c",
    "%5C",
    "\\",
    "%00",
    "%0a",
    "%0d%0a",
    "%7f",
    "%c0%ae",
    "%c0%ae%c0%ae",
    "%c0%af",
    "%e0%80%ae",
    "%ff",
    "%",
    "%2",
    "%zz",
    "%252e",
    "%25",
    ";x",
    "x;y=1",
    "%3b",
    "%61",
    "%7e",
    "é",
    "stores",
    "STORES",
    "Stores",
    "%73tores",
    A,
    A_ALIAS,
    B,
    B_ALIAS,
    "ABC123",
    "DEF456",
    "abc123%2f..%2fdef456",
    "?",
    "%3f",
    "#",
    "%23",
    "%20",
    "a b",
];

/// Dot segments in every spelling: what a normalizer upstream would resolve.
const DOTS: &[&str] = &[
    "..",
    ".",
    "%2e",
    "%2E",
    "%2e%2e",
    "%2E%2e",
    ".%2e",
    "%2e.",
    ".%2E",
    "%c0%ae",
    "%c0%ae%c0%ae",
    "%e0%80%ae",
    "%c0%2e",
    "..;",
    "..;x",
    "..%00",
    "..%2f..",
    "..%5c..",
    "..\\..",
    "%2e%2e%2f",
    "%252e%252e",
];

const SUFFIXES: &[&str] = &[
    ";x", ";", "%2f", "%2F..", "%5c", "%00", ".", "..", "%2e", ".json", ".xml", "%20", "~",
    "%C3%A9",
];

/// The path before the API path: which store, named how.
fn prefix() -> impl Strategy<Value = (&'static str, bool)> {
    // (prefix, whether it is store A named exactly)
    prop_oneof![
        4 => Just(("/stores/abc123", true)),
        3 => Just(("/stores/eu", true)),
        3 => Just(("", true)),
        1 => Just(("/stores/def456", false)),
        1 => Just(("/stores/us", false)),
        1 => prop::sample::select(vec![
            "/stores/ABC123",
            "/stores/Abc123",
            "/stores/EU",
            "/Stores/abc123",
            "/STORES/eu",
            "/stores/DEF456",
            "/stores/US",
        ])
        .prop_map(|p| (p, false)),
        1 => prop::sample::select(vec![
            "/stores/abc123/stores/def456",
            "/stores/eu/stores/us",
            "/stores/abc123/../def456",
            "/stores/abc123/%2e%2e/def456",
            "/stores/%61bc123",
            "/stores/abc123%2f..%2fdef456",
            "/stores/abc123;/def456",
            "/stores//abc123",
            "//stores/abc123",
            "/stores/./abc123",
            "/stores/abc124",
            "/stores",
            "/stores/def456/..",
            "/stores/us%00",
        ])
        .prop_map(|p| (p, false)),
    ]
}

/// A value for a `{param}` segment, and whether it is plain.
fn param() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        6 => "[1-9][0-9]{0,5}".prop_map(|s| (s, true)),
        2 => "[a-zA-Z0-9_~-]{1,10}".prop_map(|s| (s, false)),
        1 => "[a-z]{1,4}\\.(json|xml)".prop_map(|s| (s, false)),
        1 => "[a-zA-Z0-9]{1,3}(%20|%C3%A9|%2B|:|@|,|=|\\+|!|\\$|'|\\(|\\)|\\*|&)[a-z]{0,3}"
            .prop_map(|s| (s, false)),
        3 => prop::sample::select(DOTS).prop_map(|s| (s.to_owned(), false)),
        2 => prop::sample::select(TRICKS).prop_map(|s| (s.to_owned(), false)),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<usize>(), prop::sample::select(TRICKS)).prop_map(|(i, s)| Edit::Insert(i, s)),
        2 => (any::<usize>(), prop::sample::select(TRICKS)).prop_map(|(i, s)| Edit::Replace(i, s)),
        2 => (any::<usize>(), prop::sample::select(SUFFIXES)).prop_map(|(i, s)| Edit::Append(i, s)),
        1 => any::<usize>().prop_map(Edit::Upper),
        1 => Just(Edit::TrailingSlash),
        1 => any::<usize>().prop_map(Edit::DoubleSlash),
    ]
}

fn query() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => Just(None),
        1 => prop::sample::select(vec![
            "limit=2",
            "store_hash=def456",
            "store=us&store_hash=def456",
            "x=/stores/def456/v3/catalog/products",
            "path=..%2f..%2fstores%2fdef456",
            "a=%2e%2e&b=;c",
            "",
            "query=%7B+store+%7B+name+%7D+%7D",
            "include_fields=name,sku&page=1",
            // Storefront channels: A's second, one A lacks, B's, malformed.
            "channel_id=2",
            "channel_id=%32",
            "channel_id=3",
            "channel_id=0",
            "channel_id=x",
            "channel_id=1&channel_id=2",
            "channel_id=2&store_hash=def456",
        ])
        .prop_map(|q| Some(q.to_owned())),
        1 => "[a-zA-Z0-9=&%._/~-]{0,24}".prop_map(Some),
    ]
}

/// A segment that is not in the route table.
fn random_segment() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._~-]{1,8}"
}

/// [`ACCOUNT`] in another case: a different account to bcgate.
const ACCOUNT_UPPER: &str = "0B4C2D1E-5F6A-4B7C-8D9E-0F1A2B3C4D5E";

/// The part of a path after the store (or a whole account path).
#[derive(Debug, Clone)]
struct Shape {
    path: String,
    /// Every parameter plain.
    plain: bool,
    /// The method of the route it was built from, if any.
    method: Option<&'static str>,
    /// A proxied route of its family (for an account path: the client's account).
    proxied: bool,
    /// A whole path (`/accounts/…`), not put after a store.
    whole: bool,
}

/// The route tables the generator builds paths from: (method, template, proxied).
#[derive(Debug, Clone)]
struct Tables {
    api: Vec<(&'static str, String, bool)>,
    b2b: Vec<(&'static str, String, bool)>,
}

/// A template with its parameters filled in, and whether they all are plain.
fn fill(template: &str, params: Vec<(String, bool)>) -> (String, bool) {
    let mut plain = true;
    let mut params = params.into_iter().cycle();
    let path: Vec<String> = template[1..]
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                let (v, p) = params.next().expect("a cycled non-empty vec");
                plain &= p;
                v
            } else {
                seg.to_owned()
            }
        })
        .collect();
    (format!("/{}", path.join("/")), plain)
}

fn route_shape(
    routes: Vec<(&'static str, String, bool)>,
    prefix: &'static str,
) -> impl Strategy<Value = Shape> {
    (
        prop::sample::select(routes),
        prop::collection::vec(param(), 8),
    )
        .prop_map(move |((method, template, proxied), params)| {
            let (path, plain) = fill(&template, params);
            Shape {
                path: format!("{prefix}{path}"),
                plain,
                method: Some(method),
                proxied,
                whole: false,
            }
        })
}

/// A one-endpoint family's path, or a near miss of a family prefix.
fn fixed(path: &str, method: Option<&'static str>, proxied: bool, whole: bool) -> Shape {
    Shape {
        path: path.to_owned(),
        plain: true,
        method,
        proxied,
        whole,
    }
}

fn shape(tables: Tables) -> impl Strategy<Value = Shape> {
    let post = Some("POST");
    let accounts = vec![
        ACCOUNT,
        ACCOUNT,
        ACCOUNT,
        OTHER_ACCOUNT,
        NO_ACCOUNT,
        ACCOUNT_UPPER,
    ];
    prop_oneof![
        8 => route_shape(tables.api, ""),
        3 => route_shape(tables.b2b, family::B2B_PREFIX),
        1 => Just(fixed("/payments", post, true, false)),
        2 => Just(fixed("/storefront/graphql", post, true, false)),
        2 => prop::sample::select(accounts).prop_map(move |uuid| {
            fixed(&format!("/accounts/{uuid}/graphql"), post, uuid == ACCOUNT, true)
        }),
        // Near misses after a store: each is another family's path, or none.
        1 => prop::sample::select(vec![
            ("/b2bx/v3/io/companies", "GET"),
            ("/b2b/v2/io/companies", "GET"),
            ("/b2b/v3/iox/companies", "GET"),
            ("/b2b/v3/io", "GET"),
            ("/b2b", "GET"),
            ("/b2b/api/v3/io/companies", "GET"),
            ("/api/v3/io/companies", "GET"),
            ("/paymentsx", "POST"),
            ("/payments/x", "POST"),
            ("/payments-host/stores/def456/payments", "POST"),
            ("/storefrontx/graphql", "POST"),
            ("/storefront/graphqlx", "POST"),
            ("/storefront", "POST"),
            ("/storefront/def456/1/graphql", "POST"),
            ("/accounts/0b4c2d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e/graphql", "POST"),
        ])
        .prop_map(|(path, method)| fixed(path, Some(method), false, false)),
        // Near misses of an account path.
        1 => prop::sample::select(vec![
            "/accountsx/0b4c2d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e/graphql",
            "/accounts/0b4c2d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e/graphqlx",
            "/accounts/0b4c2d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e/graphql/x",
            "/accounts/0b4c2d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e",
            "/accounts/0b4c2d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e/v3/catalog/products",
            "/accounts/0b4c2d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e/stores/def456/graphql",
            "/accounts",
            "/Accounts/0b4c2d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e/graphql",
            "/accounts/9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b/graphql",
            "/accounts/0b4c2d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e,9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b/graphql",
        ])
        .prop_map(move |path| fixed(path, post, false, true)),
        1 => prop::collection::vec(random_segment(), 1..5).prop_map(|segs| Shape {
            path: format!("/v3/{}", segs.join("/")),
            plain: false,
            method: None,
            proxied: false,
            whole: false,
        }),
    ]
}

/// Whether a storefront request's query is one bcgate takes: none, or one
/// `channel_id` naming a channel of store A.
fn storefront_channel(query: Option<&str>) -> Option<u32> {
    let mut channel = None;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k != "channel_id" || channel.is_some() {
            return None;
        }
        channel = Some(v.parse::<u32>().ok()?);
    }
    let channel = channel.unwrap_or(CHANNELS[0]);
    CHANNELS.contains(&channel).then_some(channel)
}

fn case(tables: Tables) -> impl Strategy<Value = Case> {
    (
        prefix(),
        shape(tables),
        prop_oneof![4 => Just(None), 1 => prop::sample::select(&METHODS[..]).prop_map(Some)],
        prop_oneof![
            6 => Just(Vec::new()),
            4 => prop::collection::vec(edit(), 1..4),
        ],
        query(),
        prop_oneof![
            12 => Just(Form::Origin),
            1 => Just(Form::AbsoluteSelf),
            1 => Just(Form::AbsoluteUpstream),
            1 => Just(Form::AbsoluteOther),
        ],
        prop::bool::weighted(0.03),
    )
        .prop_map(
            |((prefix, exact_a), shape, other_method, edits, query, form, fragment)| {
                let method = other_method.or(shape.method).unwrap_or("GET");
                let mut path = if shape.whole {
                    shape.path.clone()
                } else {
                    format!("{prefix}{}", shape.path)
                };
                for e in &edits {
                    path = apply(&path, e);
                }
                let graphql_get = shape.path == "/graphql" && method == "GET";
                let query_taken = shape.path != "/storefront/graphql"
                    || storefront_channel(query.as_deref()).is_some();
                let clean = (exact_a || shape.whole)
                    && shape.plain
                    && shape.proxied
                    && edits.is_empty()
                    && shape.method == Some(method)
                    && form != Form::AbsoluteOther
                    && !graphql_get
                    && query_taken;
                Case {
                    method,
                    form,
                    path,
                    query,
                    fragment,
                    clean,
                }
            },
        )
}

fn apply(path: &str, edit: &Edit) -> String {
    let mut segs: Vec<String> = path
        .strip_prefix('/')
        .unwrap_or(path)
        .split('/')
        .map(str::to_owned)
        .collect();
    let n = segs.len();
    match edit {
        Edit::Insert(i, s) => segs.insert(i % (n + 1), (*s).to_owned()),
        Edit::Replace(i, s) => segs[i % n] = (*s).to_owned(),
        Edit::Append(i, s) => segs[i % n].push_str(s),
        Edit::Upper(i) => segs[i % n] = segs[i % n].to_ascii_uppercase(),
        Edit::TrailingSlash => segs.push(String::new()),
        Edit::DoubleSlash(i) => segs.insert(i % (n + 1), String::new()),
    }
    format!("/{}", segs.join("/"))
}

// ---------------------------------------------------------------- the oracle

/// What the mock must have received for a case, if anything may reach it.
#[derive(Debug)]
struct Expected {
    family: Family,
    /// Path and query, as the mock records them.
    target: String,
}

fn with_query(mut target: String, query: Option<&str>) -> String {
    if let Some(q) = query {
        target.push('?');
        target.push_str(q);
    }
    target
}

/// The family of a store path by its first segment, as the families table
/// of docs/request-path.md says (checked against `bcgate::family` too).
fn family_of(api: &str) -> Family {
    match api.get(1..).unwrap_or("").split('/').next().unwrap_or("") {
        "b2b" => Family::B2b,
        "storefront" => Family::Storefront,
        "payments" => Family::Payments,
        "customer-login" | "current-customer" => Family::Local,
        _ => Family::Api,
    }
}

/// What the mock may receive for this case: `/accounts/{the client's
/// account}/…`, or for store A (named by hash or alias, or the default
/// store) the family's target built from the path after the store segment
/// (or all of it, for the default store), with the query as sent where the
/// family takes one.
fn expected(case: &Case) -> Option<Expected> {
    if case.form == Form::AbsoluteOther {
        return None;
    }
    // Read the target as a URI parser does: a `#` ends it, the first `?`
    // starts the query (either may come from an edit of the path).
    let mut raw = case.path.clone();
    if let Some(q) = &case.query {
        raw.push('?');
        raw.push_str(q);
    }
    let raw = raw.split('#').next().unwrap_or("");
    let (path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    };
    if let Some(rest) = path.strip_prefix("/accounts/") {
        let (uuid, after) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        assert_eq!(family::account_path(path), Some((uuid, after)), "{path}");
        if uuid != ACCOUNT {
            return None;
        }
        return Some(Expected {
            family: Family::Account,
            target: with_query(format!("/accounts/{uuid}{after}"), query),
        });
    }
    assert_eq!(family::account_path(path), None, "{path}");
    let api = match path.strip_prefix("/stores/") {
        Some(rest) => {
            let (name, api) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            if name != A && name != A_ALIAS {
                return None;
            }
            api
        }
        None => {
            let first = path.get(1..).unwrap_or("").split('/').next().unwrap_or("");
            if first.eq_ignore_ascii_case("stores") {
                return None;
            }
            path
        }
    };
    let family = family_of(api);
    assert_eq!(family::of_store_path(api).0, family, "{api}");
    let target = match family {
        Family::Api => with_query(format!("/stores/{A}{api}"), query),
        Family::B2b => {
            let rest = api
                .strip_prefix(family::B2B_PREFIX)
                .filter(|r| r.starts_with('/'))?;
            with_query(format!("/b2b-host/api/v3/io{rest}"), query)
        }
        // The payments host takes no query; bcgate sends none.
        Family::Payments => {
            (api == "/payments").then(|| format!("/payments-host/stores/{A}/payments"))?
        }
        Family::Storefront => {
            let channel = storefront_channel(query).filter(|_| api == "/storefront/graphql")?;
            format!("/storefront/{A}/{channel}/graphql")
        }
        // Answered by bcgate itself: nothing is forwarded.
        Family::Account | Family::Local => return None,
    };
    Some(Expected { family, target })
}

/// A request bcgate makes on its own account to mint store A's tokens (or
/// to read BigCommerce's clock for their expiry).
fn is_mint(path: &str) -> bool {
    [
        "/v3/payments/access_tokens",
        "/v3/storefront/api-token-private",
        "/v3/storefront/api-token-customer-impersonation",
        "/v2/time",
    ]
    .iter()
    .any(|m| path == format!("/stores/{A}{m}"))
}

/// A path no normalizer changes: no empty, `.` or `..` segment in any
/// encoding, nothing that decodes to a separator or a control character
/// (C0, DEL or C1), and a URL parser leaves it as it is.
fn is_canonical(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let segments_ok = rest.split('/').all(|seg| {
        let decoded: Vec<u8> = percent_encoding::percent_decode_str(seg).collect();
        !seg.is_empty()
            && std::str::from_utf8(&decoded).is_ok_and(|d| {
                d != "."
                    && d != ".."
                    && !d.contains(['/', '\\', ';'])
                    && !d.chars().any(char::is_control)
            })
    });
    let url_ok = reqwest::Url::parse(&format!("https://upstream.invalid{path}"))
        .is_ok_and(|u| u.path() == path);
    segments_ok && url_ok
}

#[derive(Debug, Default)]
struct Tally {
    forwarded: AtomicUsize,
    rejected: AtomicUsize,
    clean: AtomicUsize,
    /// Forwarded, per family (in `Family::ALL`'s order).
    families: [AtomicUsize; 5],
}

impl Tally {
    fn families(&self) -> String {
        Family::ALL
            .iter()
            .zip(&self.families)
            .map(|(f, n)| format!("{f} {}", n.load(Ordering::Relaxed)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn check(fx: &Fx, case: &Case, tally: &Tally) -> Result<(), TestCaseError> {
    fx.mock.clear();
    let target = case.target(fx);
    let body = if matches!(case.method, "POST" | "PUT" | "PATCH") {
        BODY
    } else {
        ""
    };
    // The caller names store B as B2B Edition's store, and an order: only
    // bcgate's own values may reach an upstream.
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {KEY}\r\n\
         X-Store-Hash: {B}\r\nX-Bcgate-Order-Id: {ORDER}\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{body}",
        method = case.method,
        host = fx.gate.addr,
        len = body.len(),
    );
    let answer: Result<RawResponse, String> =
        raw_exchange(fx.gate.addr, request.as_bytes(), case.method == "HEAD");
    let status = answer.as_ref().map(|r| r.status).ok();
    let got = fx.mock.requests();
    let what = format!("{} {target:?} → {status:?}", case.method);
    let want = expected(case);

    for rec in &got {
        let values: Vec<String> = rec
            .headers
            .iter()
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect();
        prop_assert!(
            !values
                .iter()
                .any(|v| v.contains(T_B) || v.contains(T_OTHER_ACCOUNT)),
            "{what}: {:?} carried store B's or the other account's token",
            rec.uri
        );
        prop_assert!(
            !rec.has_header("x-bcgate-order-id"),
            "{what}: the caller's X-Bcgate-Order-Id reached {:?}",
            rec.uri
        );
    }
    // Minting is bcgate's own business, for the families that need it.
    let mints = want
        .as_ref()
        .is_some_and(|w| matches!(w.family, Family::Payments | Family::Storefront));
    let (minted, forwarded): (Vec<_>, Vec<_>) = got.iter().partition(|r| mints && is_mint(&r.path));
    for rec in &minted {
        prop_assert_eq!(
            rec.tokens(),
            vec![T_A.to_owned()],
            "{}: a mint without A's token",
            &what
        );
    }
    prop_assert!(
        forwarded.len() <= 1,
        "{what}: {} upstream requests",
        forwarded.len()
    );
    if let Some(rec) = forwarded.first() {
        tally.forwarded.fetch_add(1, Ordering::Relaxed);
        prop_assert!(
            want.is_some(),
            "{what}: forwarded as {:?}, but the client named another store, account or host",
            rec.uri
        );
        let want = want.expect("checked above");
        if let Some(i) = Family::ALL.iter().position(|f| *f == want.family) {
            tally.families[i].fetch_add(1, Ordering::Relaxed);
        }
        prop_assert_eq!(
            rec.uri.as_str(),
            want.target.as_str(),
            "{}: the upstream target is not what was authorized ({})",
            &what,
            want.family
        );
        check_credential(&what, rec, want.family)?;
        prop_assert_eq!(
            rec.method.as_str(),
            case.method,
            "{}: method changed",
            &what
        );
        prop_assert!(
            is_canonical(&rec.path),
            "{what}: forwarded a path that is not canonical: {:?}",
            rec.path
        );
        // A 4xx may be the upstream's own (a mint endpoint of the api
        // refuses the body), never one of bcgate's refusals.
        let own_refusal = answer.as_ref().is_ok_and(|r| {
            (400..500).contains(&r.status)
                && r.header("content-type") == Some("application/problem+json")
        });
        prop_assert!(
            status.is_some() && !own_refusal,
            "{what}: bcgate refused (or did not answer) although the request was forwarded"
        );
    } else {
        tally.rejected.fetch_add(1, Ordering::Relaxed);
        prop_assert!(
            !status.is_some_and(|s| (200..300).contains(&s)),
            "{what}: 2xx without reaching the upstream"
        );
        prop_assert!(
            minted.is_empty(),
            "{what}: minted {:?} for a request bcgate did not forward",
            minted.iter().map(|r| &r.path).collect::<Vec<_>>()
        );
    }
    if case.clean {
        tally.clean.fetch_add(1, Ordering::Relaxed);
        // Forwarded; its answer is the upstream's (an api mint endpoint
        // refuses this body with a 422).
        prop_assert!(
            forwarded.len() == 1 && status.is_some_and(|s| s < 300 || s == 422),
            "{what}: a plain request for store A was not forwarded: {:?}",
            answer.map(|r| r.body_text())
        );
    }
    Ok(())
}

/// The family's credential, for store A (or the client's account), and
/// nothing the caller chose.
fn check_credential(
    what: &str,
    rec: &support::Recorded,
    family: Family,
) -> Result<(), TestCaseError> {
    let tokens = rec.tokens();
    let store_hash = rec.header_all("x-store-hash");
    let authorization = rec.header_all("authorization");
    let bearer = |prefix: &str| authorization.len() == 1 && authorization[0].starts_with(prefix);
    match family {
        Family::Api => {
            prop_assert_eq!(rec.store(), Some(A), "{}: forwarded to another store", what);
            prop_assert!(
                tokens == [T_A],
                "{what}: upstream tokens are not exactly A's"
            );
            prop_assert!(store_hash.is_empty(), "{what}: X-Store-Hash {store_hash:?}");
        }
        Family::B2b => {
            prop_assert!(
                tokens == [T_A],
                "{what}: upstream tokens are not exactly A's"
            );
            prop_assert!(
                store_hash == [A],
                "{what}: B2B Edition was told store {store_hash:?}"
            );
            let rest = rec
                .path
                .strip_prefix("/b2b-host/api/v3/io")
                .unwrap_or_default();
            let method = http::Method::from_bytes(rec.method.as_bytes())
                .map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
            let policy = Policy::builtin().expect("built-in tables");
            prop_assert!(
                matches!(policy.b2b_routes.lookup(&method, rest), Lookup::Found(_)),
                "{what}: {rest:?} is no route of the B2B table"
            );
        }
        Family::Payments => {
            prop_assert!(
                tokens.is_empty(),
                "{what}: a store token at the payments host"
            );
            prop_assert!(bearer("PAT "), "{what}: Authorization {authorization:?}");
        }
        Family::Storefront => {
            prop_assert!(tokens.is_empty(), "{what}: a store token at a storefront");
            prop_assert!(bearer("Bearer "), "{what}: Authorization {authorization:?}");
        }
        Family::Account => {
            prop_assert!(
                tokens == [T_ACCOUNT],
                "{what}: upstream tokens are not exactly the account's"
            );
            prop_assert!(store_hash.is_empty(), "{what}: X-Store-Hash {store_hash:?}");
        }
        Family::Local => {
            prop_assert!(
                false,
                "{what}: bcgate answers these itself, nothing is forwarded"
            );
        }
    }
    if family != Family::B2b {
        prop_assert!(store_hash.is_empty(), "{what}: X-Store-Hash {store_hash:?}");
    }
    Ok(())
}

/// Every route of the built-in tables: (method, template, proxied).
fn tables() -> Tables {
    let policy = Policy::builtin().expect("built-in tables");
    let rows = |table: &bcgate::policy::RouteTable| {
        table
            .iter()
            .map(|r| {
                let method = METHODS
                    .iter()
                    .copied()
                    .find(|m| *m == r.method.as_str())
                    .unwrap_or("GET");
                (method, r.template.to_string(), !r.flags.not_proxied)
            })
            .collect()
    };
    Tables {
        api: rows(&policy.routes),
        b2b: rows(&policy.b2b_routes),
    }
}

#[test]
fn forwarded_paths_are_exactly_the_authorized_ones_for_store_a() {
    let fx = fixture();
    let tally = Tally::default();
    let config = Config {
        // Config::default() honours PROPTEST_CASES (256 when unset).
        cases: Config::default().cases,
        failure_persistence: None,
        max_shrink_iters: 512,
        ..Config::default()
    };
    let cases = config.cases as usize;
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case(tables()), |c| check(&fx, &c, &tally));
    if let Err(e) = result {
        panic!("{e}\n--- bcgate output ---\n{}", fx.gate.logs());
    }
    let forwarded = tally.forwarded.load(Ordering::Relaxed);
    let rejected = tally.rejected.load(Ordering::Relaxed);
    let clean = tally.clean.load(Ordering::Relaxed);
    eprintln!(
        "path property: {cases} cases, {forwarded} forwarded ({}), {rejected} not, {clean} plain",
        tally.families()
    );
    if cases >= 64 {
        assert!(
            forwarded * 8 >= cases && rejected * 8 >= cases,
            "the generator lost its mix: {forwarded} forwarded, {rejected} not, of {cases}"
        );
    }
    fx.gate
        .assert_logs_free_of(&[T_A, T_B, KEY, T_ACCOUNT, T_OTHER_ACCOUNT]);
}

/// Hand-picked cross-store and traversal shapes (and the inputs the fuzzers
/// found), checked by the same oracle on every run.
#[test]
fn known_attack_paths_never_reach_another_store() {
    let fx = fixture();
    let tally = Tally::default();
    let shapes: &[(&str, &str)] = &[
        ("GET", "/stores/abc123/v3/catalog/products"),
        ("GET", "/stores/eu/v2/orders.json"),
        ("GET", "/stores/abc123/v3/catalog/products/.."),
        ("DELETE", "/stores/abc123/v3/catalog/products/%2e%2e"),
        (
            "GET",
            "/stores/eu/v2/orders/%2E%2e/..%2f..%2fstores%2fdef456",
        ),
        ("GET", "/v3/catalog/products/%c0%ae%c0%ae/reviews"),
        ("GET", "/stores/abc123/v3/catalog/products/1/images/.."),
        // Found by fuzz/path_route: encoded C1 control characters (U+0085
        // NEL is a line break to some parsers) passed check_canonical.
        ("DELETE", "/stores/abc123/v3/catalog/products/%c2%85"),
        ("GET", "/stores/eu/v3/catalog/products/s%c2%8e"),
        ("GET", "/v3/catalog/products?store_hash=def456"),
        ("GET", "/stores/def456/v3/catalog/products"),
        ("GET", "/stores/us/v3/catalog/products"),
        ("GET", "/stores/DEF456/v3/catalog/products"),
        ("GET", "/Stores/abc123/v3/catalog/products"),
        ("GET", "/stores/abc123/stores/def456/v3/catalog/products"),
        ("GET", "/stores/abc123/../def456/v3/catalog/products"),
        ("GET", "/stores/abc123/%2e%2e/def456/v3/catalog/products"),
        ("GET", "/stores/abc123/.%2E/def456/v3/catalog/products"),
        (
            "GET",
            "/stores/abc123/v3/%c0%ae%c0%ae/%c0%ae%c0%ae/def456/v3/catalog/products",
        ),
        ("GET", "/stores/abc123%2f..%2fdef456/v3/catalog/products"),
        ("GET", "/stores/abc123%5c..%5cdef456/v3/catalog/products"),
        ("GET", "/stores/abc123;/def456/v3/catalog/products"),
        ("GET", "/stores/abc123//v3/catalog/products"),
        ("GET", "//stores/def456/v3/catalog/products"),
        ("GET", "/v3/../stores/def456/v3/catalog/products"),
        ("GET", "/stores/abc123/v3/catalog/products#/../../def456"),
        (
            "GET",
            "/stores/abc123/v3/catalog/products?x=/../../stores/def456/v3",
        ),
        ("POST", "/stores/eu/graphql"),
        ("GET", "/stores/abc123/graphql?query=%7B+a+%7D"),
        // The other families' near misses and cross-store shapes.
        ("GET", "/stores/abc123/b2bx/v3/io/companies"),
        ("GET", "/stores/abc123/b2b/v2/io/companies"),
        ("GET", "/stores/abc123/b2b/v3/iox/companies"),
        ("GET", "/stores/abc123/b2b/v3/io"),
        ("GET", "/stores/abc123/B2B/v3/io/companies"),
        ("GET", "/stores/def456/b2b/v3/io/companies"),
        (
            "GET",
            "/stores/abc123/b2b/v3/io/companies/../../../../../def456/v3/catalog/products",
        ),
        (
            "GET",
            "/stores/abc123/b2b/v3/io/%2e%2e/%2e%2e/v2/io/companies",
        ),
        ("GET", "/b2b/v3/io/companies?store_hash=def456"),
        ("POST", "/stores/def456/payments"),
        ("POST", "/stores/us/payments"),
        ("POST", "/stores/abc123/paymentsx"),
        ("POST", "/stores/abc123/payments/x"),
        ("POST", "/stores/abc123/payments/../../def456/payments"),
        ("POST", "/stores/abc123/storefront/graphql?channel_id=3"),
        (
            "POST",
            "/stores/abc123/storefront/graphql?channel_id=1&store_hash=def456",
        ),
        (
            "POST",
            "/stores/abc123/storefront/graphql?channel_id=1&channel_id=2",
        ),
        ("POST", "/stores/us/storefront/graphql"),
        ("POST", "/stores/abc123/storefront/def456/1/graphql"),
        ("POST", "/stores/abc123/storefrontx/graphql"),
        (
            "POST",
            "/accounts/9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b/graphql",
        ),
        (
            "POST",
            "/accounts/11111111-2222-4333-8444-555555555555/graphql",
        ),
        (
            "POST",
            "/accounts/0B4C2D1E-5F6A-4B7C-8D9E-0F1A2B3C4D5E/graphql",
        ),
        (
            "POST",
            "/accountsx/0b4c2d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e/graphql",
        ),
        (
            "POST",
            "/stores/abc123/accounts/0b4c2d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e/graphql",
        ),
        (
            "POST",
            "/accounts/0b4c2d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e/../9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b/graphql",
        ),
        (
            "POST",
            "/accounts/0b4c2d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e/%2e%2e/9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b/graphql",
        ),
        (
            "POST",
            "/accounts/0b4c2d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e/graphql?x=/accounts/9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
        ),
    ];
    // Each family's plain request: must be forwarded, as the oracle says.
    let plain: &[(&str, &str)] = &[
        ("GET", "/stores/abc123/b2b/v3/io/companies"),
        ("GET", "/b2b/v3/io/companies?limit=2"),
        ("POST", "/stores/eu/b2b/v3/io/companies"),
        ("POST", "/stores/abc123/payments"),
        ("POST", "/payments"),
        ("POST", "/stores/eu/storefront/graphql"),
        ("POST", "/storefront/graphql?channel_id=2"),
        (
            "POST",
            "/accounts/0b4c2d1e-5f6a-4b7c-8d9e-0f1a2b3c4d5e/graphql",
        ),
    ];
    let cases = shapes
        .iter()
        .map(|s| (s, false))
        .chain(plain.iter().map(|s| (s, true)));
    for ((method, path), clean) in cases {
        let (path, fragment) = match path.split_once('#') {
            Some((p, _)) => (p, true),
            None => (*path, false),
        };
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (path.to_owned(), None),
        };
        let case = Case {
            method,
            form: Form::Origin,
            path,
            query,
            fragment,
            clean,
        };
        if let Err(e) = check(&fx, &case, &tally) {
            panic!("{e}\n--- bcgate output ---\n{}", fx.gate.logs());
        }
    }
    assert!(
        tally.forwarded.load(Ordering::Relaxed) >= 4,
        "the plain store-A shapes should be forwarded"
    );
    let every = tally.families.iter().all(|n| n.load(Ordering::Relaxed) > 0);
    assert!(every, "a family was never forwarded: {}", tally.families());
    fx.gate
        .assert_logs_free_of(&[T_A, T_B, KEY, T_ACCOUNT, T_OTHER_ACCOUNT]);
}
