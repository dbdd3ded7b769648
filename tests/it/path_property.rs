//! Property test of the one-canonical-path rule over real sockets:
//! random request targets — BigCommerce-looking paths built from
//! the route table, with dot segments, encodings, `//`, `;params`, case
//! variants, aliases, other stores, a second `/stores/` segment, absolute
//! forms and queries naming other stores — go through a running bcgate to the
//! mock BigCommerce. Two stores, A and B with different tokens; the client
//! may use only A, with every scope.
//!
//! For every case: whenever the mock received a request, (1) its target is
//! `/stores/{A's hash}` + exactly what the client sent after its store
//! segment (or its whole path, for the default store), query unchanged;
//! (2) it carries A's token and never B's; (3) its path is one no normalizer
//! would change. bcgate answers 2xx only if that happened, and a 4xx only if
//! the mock received nothing. A plain well-formed request for a proxied route
//! must be forwarded, so the property cannot hold vacuously.
//!
//! Bounded: 256 cases by default (`PROPTEST_CASES`), each one raw HTTP/1.1
//! exchange with a 20 s limit; the whole run takes a few seconds.

use crate::support;

use std::sync::atomic::{AtomicUsize, Ordering};

use bcgate::policy::Policy;
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

/// What a GraphQL or scripts route reads, and harmless for every other one.
const BODY: &str = r#"{"query":"{ store { name } }"}"#;

struct Fx {
    _ca: TestCa,
    mock: MockBigCommerce,
    gate: Bcgate,
}

fn fixture() -> Fx {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(A, T_A), (B, T_B)]);
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
ca_file = "ca.pem"
connect_timeout_ms = 3000
request_timeout_ms = 10000

[[stores]]
hash = "{A}"
alias = "{A_ALIAS}"
token_env = "BC_TOKEN_A"

[[stores]]
hash = "{B}"
alias = "{B_ALIAS}"
token_env = "BC_TOKEN_B"

[[clients]]
name = "only-a"
key_sha256 = "{key}"
stores = ["{A}"]
default_store = "{A}"
scopes = [{scopes}]
"#,
        base = mock.base_url(),
        key = key_sha256(KEY),
        scopes = scopes.join(", "),
    );
    let gate = Bcgate::start_in(dir, &config, &[("BC_TOKEN_A", T_A), ("BC_TOKEN_B", T_B)]);
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
    /// No edit, store A by hash, alias or default, the route's own method,
    /// plain parameters and a proxied route: must be forwarded.
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
        ])
        .prop_map(|q| Some(q.to_owned())),
        1 => "[a-zA-Z0-9=&%._/~-]{0,24}".prop_map(Some),
    ]
}

/// A segment that is not in the route table.
fn random_segment() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._~-]{1,8}"
}

fn case(routes: Vec<(&'static str, String, bool)>) -> impl Strategy<Value = Case> {
    let api = prop_oneof![
        // A template with its parameters filled in: (path, plain, method, proxied route).
        8 => (prop::sample::select(routes), prop::collection::vec(param(), 8)).prop_map(
            |((method, template, proxied), params)| {
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
                (format!("/{}", path.join("/")), plain, Some(method), proxied)
            }
        ),
        1 => prop::collection::vec(random_segment(), 1..5).prop_map(|segs| {
            (format!("/v3/{}", segs.join("/")), false, None, false)
        }),
    ];
    (
        prefix(),
        api,
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
            |(
                (prefix, exact_a),
                (api, plain, route_method, proxied),
                other_method,
                edits,
                query,
                form,
                fragment,
            )| {
                let method = other_method.or(route_method).unwrap_or("GET");
                let mut path = format!("{prefix}{api}");
                for e in &edits {
                    path = apply(&path, e);
                }
                let graphql_get = api == "/graphql" && method == "GET";
                let clean = exact_a
                    && plain
                    && proxied
                    && edits.is_empty()
                    && route_method == Some(method)
                    && form != Form::AbsoluteOther
                    && !graphql_get;
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

/// What the mock must have received for this case, if anything may reach it:
/// `/stores/{A}` + the path after the client's store segment (or all of it,
/// for the default store) + the query as sent.
fn allowed_upstream_target(case: &Case) -> Option<String> {
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
    let mut want = format!("/stores/{A}{api}");
    if let Some(q) = query {
        want.push('?');
        want.push_str(q);
    }
    Some(want)
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
}

fn check(fx: &Fx, case: &Case, tally: &Tally) -> Result<(), TestCaseError> {
    fx.mock.clear();
    let target = case.target(fx);
    let body = if matches!(case.method, "POST" | "PUT" | "PATCH") {
        BODY
    } else {
        ""
    };
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {KEY}\r\n\
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

    prop_assert!(got.len() <= 1, "{what}: {} upstream requests", got.len());
    if let Some(rec) = got.first() {
        tally.forwarded.fetch_add(1, Ordering::Relaxed);
        let want = allowed_upstream_target(case);
        prop_assert!(
            want.is_some(),
            "{what}: forwarded as {:?}, but the client named another store or host",
            rec.uri
        );
        let want = want.expect("checked above");
        prop_assert_eq!(
            rec.uri.as_str(),
            want.as_str(),
            "{}: the upstream target is not what was authorized",
            what
        );
        prop_assert_eq!(
            rec.store(),
            Some(A),
            "{}: forwarded to another store",
            &what
        );
        let tokens = rec.tokens();
        prop_assert!(
            tokens.len() == 1 && tokens[0] == T_A,
            "{what}: upstream tokens are not exactly A's (B's present: {})",
            tokens.iter().any(|t| t == T_B)
        );
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
        // 422 is the upstream's own refusal of a body (the mock's token
        // mints check theirs); bcgate never answers 422 itself.
        prop_assert!(
            status.is_some_and(|s| !(400..500).contains(&s) || s == 422),
            "{what}: a 4xx (or no answer) although the request was forwarded"
        );
    } else {
        tally.rejected.fetch_add(1, Ordering::Relaxed);
        prop_assert!(
            !status.is_some_and(|s| (200..300).contains(&s)),
            "{what}: 2xx without reaching the upstream"
        );
    }
    if case.clean {
        tally.clean.fetch_add(1, Ordering::Relaxed);
        prop_assert!(
            status.is_some_and(|s| (200..300).contains(&s) || s == 422) && got.len() == 1,
            "{what}: a plain request for store A was not forwarded: {:?}",
            answer.map(|r| r.body_text())
        );
    }
    Ok(())
}

/// Every route of the built-in table: (method, template, proxied).
fn routes() -> Vec<(&'static str, String, bool)> {
    let policy = Policy::builtin().expect("built-in tables");
    policy
        .routes
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
    let result = runner.run(&case(routes()), |c| check(&fx, &c, &tally));
    if let Err(e) = result {
        panic!("{e}\n--- bcgate output ---\n{}", fx.gate.logs());
    }
    let forwarded = tally.forwarded.load(Ordering::Relaxed);
    let rejected = tally.rejected.load(Ordering::Relaxed);
    let clean = tally.clean.load(Ordering::Relaxed);
    eprintln!("path property: {cases} cases, {forwarded} forwarded, {rejected} not, {clean} plain");
    if cases >= 64 {
        assert!(
            forwarded * 8 >= cases && rejected * 8 >= cases,
            "the generator lost its mix: {forwarded} forwarded, {rejected} not, of {cases}"
        );
    }
    fx.gate.assert_logs_free_of(&[T_A, T_B, KEY]);
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
    ];
    for (method, path) in shapes {
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
            clean: false,
        };
        if let Err(e) = check(&fx, &case, &tally) {
            panic!("{e}\n--- bcgate output ---\n{}", fx.gate.logs());
        }
    }
    assert!(
        tally.forwarded.load(Ordering::Relaxed) >= 4,
        "the plain store-A shapes should be forwarded"
    );
}
