//! `bcgate explain` and the proxy agree: both call the one decision
//! (`bcgate::decide`). A property test sends random requests — route-table
//! paths under every store prefix (hash, alias, another store, an unknown
//! one, case variants, none), every method, bodies for the routes that read
//! them — through a running bcgate to the mock BigCommerce as three clients
//! (enforce with a default store, learn without one, enforce with every
//! scope), and compares each answer with the line `explain` prints for that
//! client: "allowed on store 'H'" (or, in learn mode, "forwarded to store
//! 'H'") exactly when the mock received the request for H, and
//! "denied (STATUS CODE)" exactly when bcgate answered that itself.
//!
//! `explain` runs without the store tokens in its environment: it needs none.
//!
//! Bounded: 48 cases by default (`PROPTEST_CASES`), each one `explain`
//! process and three raw HTTP/1.1 exchanges.
//!
//! The other API families (payments, storefront, B2B Edition, account) are
//! checked the same way on a fixed list of requests with the headers their
//! decision reads (`--header`), against the mock's every host: explain's
//! verdict, and the credential it names (channel, private token scopes,
//! customer), is what the proxy did.

use crate::support;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use support::{Bcgate, MockBigCommerce, TestCa, key_sha256, raw_exchange};

const A: &str = "abc123";
const B: &str = "def456";
const T_A: &str = "bc-store-token-A-eXpLaIn4aaaa";
const T_B: &str = "bc-store-token-B-eXpLaIn4bbbb";

/// (name, key, mode as `explain` prints it).
const CLIENTS: [(&str, &str, &str); 3] = [
    ("inventory-sync", "bcg-key-explain-sync-7Yh2", "enforce"),
    ("learner", "bcg-key-explain-learn-3Kd8", "learn"),
    ("admin", "bcg-key-explain-admin-9Pq4", "enforce"),
];

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
    let policy = bcgate::policy::Policy::builtin().expect("built-in tables");
    let every: Vec<String> = policy
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

[learn]
path = "observations.json"

[[stores]]
hash = "{A}"
alias = "eu"
token_env = "BC_TOKEN_A"
scopes = ["store_v2_products", "store_v2_orders_read_only", "store_v2_content", "bcgate:graphql_read"]

[[stores]]
hash = "{B}"
token_env = "BC_TOKEN_B"

[[clients]]
name = "inventory-sync"
key_sha256 = "{k0}"
stores = ["{A}"]
default_store = "{A}"
scopes = ["store_v2_products_read_only", "bcgate:graphql_read"]

[[clients]]
name = "learner"
key_sha256 = "{k1}"
stores = ["*"]
scopes = ["store_v2_orders_read_only", "store_v2_content"]
mode = "learn"

[[clients]]
name = "admin"
key_sha256 = "{k2}"
stores = ["*"]
default_store = "{B}"
scopes = [{every}]
"#,
        base = mock.base_url(),
        k0 = key_sha256(CLIENTS[0].1),
        k1 = key_sha256(CLIENTS[1].1),
        k2 = key_sha256(CLIENTS[2].1),
        every = every.join(", "),
    );
    let gate = Bcgate::start_in(dir, &config, &[("BC_TOKEN_A", T_A), ("BC_TOKEN_B", T_B)]);
    Fx {
        _ca: ca,
        mock,
        gate,
    }
}

/// `bcgate explain` on the running bcgate's config, without its tokens:
/// (exit success, stdout, stderr).
fn explain(fx: &Fx, args: &[&str]) -> (bool, String, String) {
    let config = fx
        .gate
        .config_path()
        .to_str()
        .expect("utf-8 path")
        .to_owned();
    let mut all = vec!["explain", "--config", config.as_str()];
    all.extend_from_slice(args);
    let out = Bcgate::run_cli(&all, &[]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What `explain` says the proxy does with one client's request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Said {
    Forwarded { store: String },
    Denied { status: u16, code: String },
}

/// A verdict line; an account counts as the "store" a request went to.
fn parse_verdict(text: &str) -> Option<Said> {
    if let Some(rest) = text
        .strip_prefix("allowed on ")
        .or_else(|| text.strip_prefix("forwarded to "))
        .and_then(|r| {
            r.strip_prefix("store '")
                .or_else(|| r.strip_prefix("account '"))
        })
    {
        let store = rest.split('\'').next()?;
        return Some(Said::Forwarded {
            store: store.to_owned(),
        });
    }
    let rest = text.split("denied (").nth(1)?;
    let (status, rest) = rest.split_once(' ')?;
    let code = rest.split(')').next()?;
    Some(Said::Denied {
        status: status.parse().ok()?,
        code: code.to_owned(),
    })
}

/// The verdict `explain` printed for `client` in its configured mode.
fn said_for(out: &str, client: &str, mode: &str) -> Option<Said> {
    // A path refused before identification: one line for everyone.
    if let Some(line) = out
        .lines()
        .find(|l| l.contains("before the caller is identified"))
    {
        return parse_verdict(line);
    }
    let header = format!("  {client} (mode {mode}):");
    let mut lines = out.lines().skip_while(|l| *l != header).skip(1);
    let enforce = lines.next()?.strip_prefix("    enforce: ")?;
    let learn = lines.next()?.strip_prefix("    learn:   ")?;
    parse_verdict(if mode == "learn" { learn } else { enforce })
}

/// What the proxy did: forwarded to the mock (for which store), or answered itself.
fn proxy_did(fx: &Fx, method: &str, target: &str, key: &str, body: &str) -> Result<Said, String> {
    fx.mock.clear();
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n{body}",
        host = fx.gate.addr,
        len = body.len(),
    );
    let resp = raw_exchange(fx.gate.addr, request.as_bytes(), method == "HEAD")?;
    let got = fx.mock.requests();
    match got.as_slice() {
        [] => {
            let code = if method == "HEAD" {
                // A HEAD answer has no body to read the code from.
                String::from("?")
            } else {
                resp.json()["code"].as_str().unwrap_or("?").to_owned()
            };
            Ok(Said::Denied {
                status: resp.status,
                code,
            })
        }
        [one] => Ok(Said::Forwarded {
            store: one.store().unwrap_or("?").to_owned(),
        }),
        many => Err(format!("{} upstream requests", many.len())),
    }
}

// ---------------------------------------------------------------- cases

const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    path: String,
    query: Option<&'static str>,
    body: &'static str,
}

fn prefix() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "",
        "",
        "/stores/abc123",
        "/stores/eu",
        "/stores/def456",
        "/stores/nope",
        "/stores/ABC123",
        "/Stores/abc123",
    ])
}

fn case(routes: Vec<(&'static str, String)>) -> impl Strategy<Value = Case> {
    let api = prop_oneof![
        6 => (prop::sample::select(routes), prop::sample::select(vec!["5", "abc", "settings"]))
            .prop_map(|((method, template), value)| {
                let path: Vec<&str> = template[1..]
                    .split('/')
                    .map(|seg| if seg.starts_with('{') { value } else { seg })
                    .collect();
                (Some(method), format!("/{}", path.join("/")))
            }),
        1 => prop::collection::vec("[a-z0-9]{1,6}", 1..4)
            .prop_map(|segs| (None, format!("/v3/{}", segs.join("/")))),
        1 => prop::sample::select(vec!["/graphql", "/v3/content/scripts", "/v3/content/scripts/x1"])
            .prop_map(|p| (None, p.to_owned())),
    ];
    (
        prefix(),
        api,
        prop_oneof![3 => Just(None), 1 => prop::sample::select(&METHODS[..]).prop_map(Some)],
        prop::sample::select(vec![
            None,
            None,
            Some("limit=2"),
            Some("query=%7B+store+%7B+name+%7D+%7D"),
            Some("query=mutation+%7B+a+%7D"),
        ]),
        prop::sample::select(vec![
            r#"{"query":"{ store { name } }"}"#,
            r#"{"query":"mutation { a }","visibility":"checkout"}"#,
            r#"{"visibility":"storefront","name":"x"}"#,
            "[",
        ]),
    )
        .prop_map(|(prefix, (route_method, api), other, query, body)| Case {
            method: other.or(route_method).unwrap_or("GET"),
            path: format!("{prefix}{api}"),
            query,
            body,
        })
}

fn routes() -> Vec<(&'static str, String)> {
    let policy = bcgate::policy::Policy::builtin().expect("built-in tables");
    policy
        .routes
        .iter()
        .map(|r| {
            let method = METHODS
                .iter()
                .copied()
                .find(|m| *m == r.method.as_str())
                .unwrap_or("GET");
            (method, r.template.to_string())
        })
        .collect()
}

#[derive(Debug, Default)]
struct Tally {
    forwarded: usize,
    denied: usize,
}

fn check(fx: &Fx, case: &Case, tally: &mut Tally) -> Result<(), TestCaseError> {
    let target = match case.query {
        Some(q) => format!("{}?{q}", case.path),
        None => case.path.clone(),
    };
    let body = if matches!(case.method, "POST" | "PUT" | "PATCH") {
        case.body
    } else {
        ""
    };
    let mut args = vec![case.method, target.as_str()];
    if !body.is_empty() {
        args.extend(["--body", body]);
    }
    let (ok, out, err) = explain(fx, &args);
    prop_assert!(ok, "explain {args:?} failed: {err}\n{out}");
    for (name, key, mode) in CLIENTS {
        let what = format!("{} {target} as {name}", case.method);
        let said = said_for(&out, name, mode);
        prop_assert!(said.is_some(), "{what}: no verdict in\n{out}");
        let said = said.expect("checked above");
        let did = proxy_did(fx, case.method, &target, key, body);
        prop_assert!(did.is_ok(), "{what}: {:?}", did);
        let did = did.expect("checked above");
        let agree = match (&said, &did) {
            // A HEAD answer has no body: the status must agree.
            (Said::Denied { status: s, .. }, Said::Denied { status: d, code }) if code == "?" => {
                s == d
            }
            _ => said == did,
        };
        prop_assert!(
            agree,
            "{what}: explain said {said:?}, the proxy did {did:?}\n{out}"
        );
        match did {
            Said::Forwarded { .. } => tally.forwarded += 1,
            Said::Denied { .. } => tally.denied += 1,
        }
    }
    Ok(())
}

#[test]
fn explain_and_the_proxy_agree_on_random_requests() {
    let fx = fixture();
    let config = Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(48),
        failure_persistence: None,
        max_shrink_iters: 64,
        ..Config::default()
    };
    let cases = config.cases as usize;
    let mut runner = TestRunner::new(config);
    let tally = std::cell::RefCell::new(Tally::default());
    let result = runner.run(&case(routes()), |c| check(&fx, &c, &mut tally.borrow_mut()));
    if let Err(e) = result {
        panic!("{e}\n--- bcgate output ---\n{}", fx.gate.logs());
    }
    let tally = tally.into_inner();
    eprintln!(
        "explain property: {cases} cases, {} answers forwarded, {} denied",
        tally.forwarded, tally.denied
    );
    if cases >= 32 {
        assert!(
            tally.forwarded * 10 >= cases && tally.denied * 10 >= cases,
            "the generator lost its mix: {tally:?}"
        );
    }
    fx.gate.assert_logs_free_of(&[T_A, T_B]);
}

/// The report: `explain` said "allowed on store 'abc123'" (the client's
/// default store) for a path naming an unknown store, which the proxy
/// answers with 404 `store_unknown`.
#[test]
fn an_unknown_store_is_unknown_to_explain_as_to_the_proxy() {
    let fx = fixture();
    let path = "/stores/nope/v3/catalog/products";
    let (ok, out, err) = explain(&fx, &["GET", path, "--client", "inventory-sync"]);
    assert!(ok, "{err}\n{out}");
    assert!(
        out.contains("    enforce: denied (404 store_unknown): no store 'nope' is configured\n"),
        "{out}"
    );
    assert!(!out.contains("allowed"), "{out}");
    let did = proxy_did(&fx, "GET", path, CLIENTS[0].1, "").expect("an answer");
    assert_eq!(
        did,
        Said::Denied {
            status: 404,
            code: "store_unknown".into()
        }
    );

    // No store in the path and no default_store: said in words, by both.
    let (ok, out, err) = explain(&fx, &["GET", "/v2/orders", "--client", "learner"]);
    assert!(ok, "{err}");
    let words =
        "the path names no store (/stores/{store}/…) and client 'learner' has no default_store";
    assert!(out.contains(words), "{out}");
    fx.mock.clear();
    let request = format!(
        "GET /v2/orders HTTP/1.1\r\nHost: {}\r\nX-Auth-Token: {}\r\nConnection: close\r\n\r\n",
        fx.gate.addr, CLIENTS[1].1
    );
    let resp = raw_exchange(fx.gate.addr, request.as_bytes(), false).expect("an answer");
    assert_eq!(resp.status, 404);
    assert_eq!(resp.json()["detail"], words);
}

#[test]
fn explain_needs_no_token_and_fails_when_it_cannot_show_the_clients() {
    let fx = fixture();
    // The tokens are not in explain's environment (see `explain`), and the
    // config names them by env var: it still shows every client.
    let (ok, out, err) = explain(&fx, &["GET", "/stores/eu/v3/catalog/products"]);
    assert!(ok, "{err}");
    for (name, _, _) in CLIENTS {
        assert!(out.contains(&format!("  {name} (mode ")), "{out}");
    }
    assert!(!out.contains(T_A) && !err.contains(T_A));

    // No config: the route is shown, the clients cannot be: non-zero.
    let dir = support::process::temp_dir();
    let missing = dir.path().join("missing.toml");
    let out = Bcgate::run_cli(
        &[
            "explain",
            "GET",
            "/v3/catalog/products",
            "--config",
            missing.to_str().expect("utf-8 path"),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("route:  GET /v3/catalog/products"),
        "{stdout}"
    );
    assert!(stderr.contains("cannot show which clients"), "{stderr}");

    // A store only the token store could know, and its key is not set.
    let config = format!(
        "[token_store]\nkind = \"file\"\npath = \"tokens.json\"\nkey_env = \"BCGATE_TEST_NO_SUCH_KEY\"\n\n\
         [[clients]]\nname = \"a\"\nkey_sha256 = \"{}\"\nstores = [\"*\"]\nscopes = [\"store_v2_products\"]\n",
        key_sha256("k")
    );
    let path = dir.path().join("bcgate.toml");
    std::fs::write(&path, config).expect("write config");
    let out = Bcgate::run_cli(
        &[
            "explain",
            "GET",
            "/stores/zzz999/v3/catalog/products",
            "--config",
            path.to_str().expect("utf-8 path"),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("cannot tell"), "{stdout}");
    assert!(stderr.contains("token store"), "{stderr}");
}

// ---------------------------------------------------------------- families

const UUID: &str = "0b4c5d6e-1f2a-4b3c-8d9e-0a1b2c3d4e5f";
const OTHER_UUID: &str = "11111111-2222-4333-8444-555555555555";
const T_ACCOUNT: &str = "bc-account-token-eXpLaIn-Acc7Qz";
const CLIENT_ID: &str = "explain-store-client-id";
const CLIENT_SECRET: &str = "explain-store-client-secret-Hn3Vb";

/// (name, key, mode as `explain` prints it).
const FAMILY_CLIENTS: [(&str, &str, &str); 3] = [
    ("shop", "bcg-key-explain-shop-5Tg1Lw", "enforce"),
    ("agent", "bcg-key-explain-agent-8Rf2Xc", "enforce"),
    ("watcher", "bcg-key-explain-watch-2Nm7Pd", "learn"),
];

fn family_fixture() -> Fx {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(A, T_A), (B, T_B)]);
    mock.add_account(UUID, T_ACCOUNT);
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
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

[learn]
path = "observations.json"

[[stores]]
hash = "{A}"
token_env = "BC_TOKEN_A"
client_id = "{CLIENT_ID}"
client_secret_env = "BC_SECRET_A"
channels = [{{ id = 1, origin = "{sf1}" }}, {{ id = 2, origin = "{sf2}" }}]

[[stores]]
hash = "{B}"
token_env = "BC_TOKEN_B"

[[accounts]]
uuid = "{UUID}"
token_env = "BC_ACCOUNT"

[[clients]]
name = "shop"
key_sha256 = "{k0}"
stores = ["*"]
default_store = "{A}"
accounts = ["{UUID}"]
scopes = ["storefront:Customer", "storefront:B2B", "b2b:read", "store_payments_access_token_create", "account_read"]

[[clients]]
name = "agent"
key_sha256 = "{k1}"
stores = ["{A}"]
scopes = ["storefront:impersonate", "storefront:Unauthenticated", "b2b:modify"]

[[clients]]
name = "watcher"
key_sha256 = "{k2}"
stores = ["*"]
default_store = "{A}"
accounts = ["{UUID}"]
scopes = []
mode = "learn"
"#,
        base = mock.base_url(),
        payments = mock.payments_url(),
        b2b = mock.b2b_url(),
        sf1 = mock.storefront_origin(A, 1),
        sf2 = mock.storefront_origin(A, 2),
        k0 = key_sha256(FAMILY_CLIENTS[0].1),
        k1 = key_sha256(FAMILY_CLIENTS[1].1),
        k2 = key_sha256(FAMILY_CLIENTS[2].1),
    );
    let gate = Bcgate::start_in(
        dir,
        &config,
        &[
            ("BC_TOKEN_A", T_A),
            ("BC_TOKEN_B", T_B),
            ("BC_SECRET_A", CLIENT_SECRET),
            ("BC_ACCOUNT", T_ACCOUNT),
        ],
    );
    Fx {
        _ca: ca,
        mock,
        gate,
    }
}

/// What the proxy did with a request of any family: the request the mock
/// got at the family's host (not a mint or clock request on the api host),
/// with the storefront's answer; or bcgate's own refusal.
struct Did {
    said: Said,
    status: u16,
    /// The storefront's `data.mock` (what its token carried).
    storefront: Option<serde_json::Value>,
}

fn is_mint(path: &str) -> bool {
    [
        "/v3/payments/access_tokens",
        "/v3/storefront/api-token-private",
        "/v3/storefront/api-token-customer-impersonation",
        "/v2/time",
    ]
    .iter()
    .any(|m| path.ends_with(m))
}

async fn proxy_did_family(
    fx: &Fx,
    method: &str,
    target: &str,
    key: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Did {
    fx.mock.clear();
    let method_r = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = support::plain_client()
        .request(method_r, fx.gate.url(target))
        .header("X-Auth-Token", key);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    if !body.is_empty() {
        req = req
            .header("Content-Type", "application/json")
            .body(body.to_owned());
    }
    let resp = support::send(req).await;
    let forwarded: Vec<_> = fx
        .mock
        .requests()
        .into_iter()
        .filter(|r| !is_mint(&r.path))
        .collect();
    let said = match forwarded.as_slice() {
        [] => Said::Denied {
            status: resp.status,
            code: resp.json()["code"].as_str().unwrap_or("?").to_owned(),
        },
        [one] => {
            let p = one.path.as_str();
            let store = if let Some(rest) = p.strip_prefix("/payments-host/stores/") {
                rest.split('/').next().unwrap_or("?").to_owned()
            } else if let Some(rest) = p.strip_prefix("/storefront/") {
                rest.split('/').next().unwrap_or("?").to_owned()
            } else if p.starts_with("/b2b-host/") {
                one.header("x-store-hash").unwrap_or_else(|| "?".into())
            } else if let Some(rest) = p.strip_prefix("/accounts/") {
                rest.split('/').next().unwrap_or("?").to_owned()
            } else {
                one.store().unwrap_or("?").to_owned()
            };
            Said::Forwarded { store }
        }
        many => panic!(
            "{method} {target}: {} upstream requests: {:?}",
            many.len(),
            many.iter().map(|r| &r.path).collect::<Vec<_>>()
        ),
    };
    let storefront = (resp.status == 200)
        .then(|| resp.json()["data"]["mock"].clone())
        .filter(|m| m.is_object());
    Did {
        said,
        status: resp.status,
        storefront,
    }
}

/// The verdict line `explain` printed for `client` in its configured mode.
fn line_for<'o>(out: &'o str, client: &str, mode: &str) -> Option<&'o str> {
    let header = format!("  {client} (mode {mode}):");
    let mut lines = out.lines().skip_while(|l| *l != header).skip(1);
    let enforce = lines.next()?.strip_prefix("    enforce: ")?;
    let learn = lines.next()?.strip_prefix("    learn:   ")?;
    Some(if mode == "learn" { learn } else { enforce })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_and_the_proxy_agree_on_every_family() {
    let fx = family_fixture();
    let mut claims = bcgate_testkit::customer_jwt_claims(CLIENT_ID, 42, 600);
    claims["store_hash"] = A.into();
    let jwt = bcgate_testkit::sign_hs256(&claims, CLIENT_SECRET);
    let query = r#"{"query":"{ site { settings { storeName } } }"}"#;
    let mutation = r#"{"query":"mutation { a }"}"#;
    let payment = r#"{"payment":{"instrument":{"type":"stored_card","token":"tok_1"},"payment_method_id":"stripe.card"}}"#;
    let sf = format!("/stores/{A}/storefront/graphql");
    let sf2 = format!("{sf}?channel_id=2");
    let sf9 = format!("{sf}?channel_id=9");
    let sf_b = format!("/stores/{B}/storefront/graphql");
    let pay = format!("/stores/{A}/payments");
    let b2b = format!("/stores/{A}/b2b/v3/io/companies");
    let account = format!("/accounts/{UUID}/graphql");
    let other_account = format!("/accounts/{OTHER_UUID}/graphql");
    let customer: &[(&str, &str)] = &[("X-Bc-Customer-Id", "5")];
    let shopper: &[(&str, &str)] = &[("X-Bcgate-Customer-Token", jwt.as_str())];
    let both: &[(&str, &str)] = &[
        ("X-Bc-Customer-Id", "5"),
        ("X-Bcgate-Customer-Token", jwt.as_str()),
    ];
    let order: &[(&str, &str)] = &[("X-Bcgate-Order-Id", "7")];
    let bad_order: &[(&str, &str)] = &[("X-Bcgate-Order-Id", "0")];
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: Vec<Case<'_>> = vec![
        ("POST", &sf, &[], query),
        ("POST", &sf2, customer, query),
        ("POST", &sf, shopper, query),
        ("POST", &sf, both, query),
        ("POST", &sf9, &[], query),
        ("POST", &sf_b, &[], query),
        ("POST", &pay, order, payment),
        ("POST", &pay, &[], payment),
        ("POST", &pay, bad_order, payment),
        ("GET", &b2b, &[], ""),
        ("GET", "/b2b/v3/io/companies", &[], ""),
        ("POST", &b2b, &[], r#"{"companyName":"x"}"#),
        ("POST", &account, &[], query),
        ("POST", &account, &[], mutation),
        ("POST", &other_account, &[], query),
    ];
    let (mut forwarded, mut denied) = (0, 0);
    for (method, target, headers, body) in cases {
        let mut args = vec![method, target];
        let flags: Vec<String> = headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
        for f in &flags {
            args.extend(["--header", f.as_str()]);
        }
        if !body.is_empty() {
            args.extend(["--body", body]);
        }
        let (ok, out, err) = explain(&fx, &args);
        assert!(ok, "explain {args:?}: {err}\n{out}");
        assert!(!out.contains(&jwt), "the customer token is never echoed");
        for (name, key, mode) in FAMILY_CLIENTS {
            let what = format!("{method} {target} {headers:?} as {name}");
            let line =
                line_for(&out, name, mode).unwrap_or_else(|| panic!("{what}: no verdict\n{out}"));
            let said = parse_verdict(line).unwrap_or_else(|| panic!("{what}: {line}"));
            let did = proxy_did_family(&fx, method, target, key, headers, body).await;
            assert_eq!(said, did.said, "{what}: explain said {line:?}\n{out}");
            match &did.said {
                Said::Forwarded { .. } => {
                    forwarded += 1;
                    assert!(
                        (200..300).contains(&did.status),
                        "{what}: the host refused bcgate's credential ({})",
                        did.status
                    );
                }
                Said::Denied { .. } => denied += 1,
            }
            // The storefront got the credential explain named.
            if let Some(m) = &did.storefront {
                let channel = format!("channel {} (", m["channel"]);
                assert!(line.contains(&channel), "{what}: {line} vs {m}");
                let scopes: Vec<&str> = m["scopes"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|s| s.as_str()).collect())
                    .unwrap_or_default();
                let detail = match (m["kind"].as_str(), m["customer_id"].as_u64()) {
                    (Some("private"), _) => {
                        format!("a private token of scopes {})", scopes.join(", "))
                    }
                    (Some("impersonation"), Some(_)) if headers == shopper => {
                        "an impersonation token as the shopper".to_owned()
                    }
                    (Some("impersonation"), Some(c)) => {
                        format!("an impersonation token as customer {c})")
                    }
                    other => panic!("{what}: {other:?}"),
                };
                assert!(
                    line.contains(&detail),
                    "{what}: {line:?} lacks {detail:?} ({m})"
                );
            }
        }
    }
    assert!(
        forwarded >= 15 && denied >= 15,
        "{forwarded} forwarded, {denied} denied"
    );
    fx.gate
        .assert_logs_free_of(&[T_A, T_B, T_ACCOUNT, CLIENT_SECRET, &jwt]);
}

#[test]
fn explain_names_each_familys_route_origin_and_credential() {
    let fx = family_fixture();
    let run = |args: &[&str]| {
        let (ok, out, err) = explain(&fx, args);
        assert!(ok, "{args:?}: {err}\n{out}");
        for secret in [T_A, T_ACCOUNT, CLIENT_SECRET] {
            assert!(!out.contains(secret) && !err.contains(secret));
        }
        out
    };
    let header = |out: &str| -> Vec<String> {
        out.lines()
            .take_while(|l| *l != "clients:")
            .map(str::to_owned)
            .collect()
    };
    let sf = format!("/stores/{A}/storefront/graphql");
    let out = run(&["POST", &sf, "--client", "shop"]);
    assert_eq!(
        header(&out),
        [
            "route:  POST /storefront/graphql (Builtin)",
            "family: storefront (the channel's storefront origin)",
            "needs:  storefront:Unauthenticated | storefront:Customer | storefront:B2B (the private token carries each of them the client holds)",
            "adds:   a private token with the client's storefront scopes",
            "note:   a private token is minted with the storefront scopes the client holds",
        ],
        "{out}"
    );
    assert!(
        out.contains("    enforce: allowed on store 'abc123' channel 1 (a private token of scopes Customer, B2B)\n"),
        "{out}"
    );
    let out = run(&[
        "POST",
        &sf,
        "-H",
        "x-bc-customer-id: 77",
        "--client",
        "agent",
    ]);
    assert!(
        out.contains("needs:  storefront:impersonate (it names the customer to act as)\n")
            && out.contains("adds:   a customer impersonation token acting as customer 77 (and X-Bc-Customer-Id: 77)\n")
            && !out.contains("note:"),
        "{out}"
    );
    let out = run(&["POST", &sf, "-H", "X-Bcgate-Customer-Token: eyJhbGciOi.x.y"]);
    assert!(out.contains("needs:  storefront:Customer ("), "{out}");
    assert!(
        !out.contains("eyJhbGciOi"),
        "the token is not echoed:\n{out}"
    );

    let out = run(&[
        "POST",
        &format!("/stores/{A}/payments"),
        "--header",
        "X-Bcgate-Order-Id: 7",
    ]);
    let payments = fx.mock.payments_url();
    assert!(
        out.contains(&format!(
            "family: payments (upstream.payments_url {payments})\n"
        )) && out.contains("needs:  store_payments_access_token_create\n")
            && out.contains("adds:   a payment access token for order 7 (Authorization: PAT)"),
        "{out}"
    );
    assert!(
        out.contains(
            "    enforce: allowed on store 'abc123' (a payment access token for order 7)\n"
        ),
        "{out}"
    );
    let out = run(&["POST", &format!("/stores/{A}/payments"), "--client", "shop"]);
    assert!(
        out.contains("    enforce: denied (400 bad_request): X-Bcgate-Order-Id is required\n"),
        "{out}"
    );

    let out = run(&["GET", &format!("/stores/{A}/b2b/v3/io/companies")]);
    let b2b = fx.mock.b2b_url();
    assert_eq!(
        header(&out),
        [
            "route:  GET /b2b/v3/io/companies (Builtin)".to_owned(),
            format!("family: b2b (upstream.b2b_url {b2b}/api/v3/io)"),
            "needs:  b2b:read | b2b:modify".to_owned(),
            "adds:   the store's X-Auth-Token and X-Store-Hash".to_owned(),
        ],
        "{out}"
    );
    let out = run(&["POST", &format!("/stores/{A}/b2b/v3/io/no/such/thing")]);
    assert!(
        out.contains(
            "route:  none: POST /b2b/v3/io/no/such/thing is not in the B2B Edition route table\n"
        ),
        "{out}"
    );

    let out = run(&[
        "POST",
        &format!("/accounts/{UUID}/graphql"),
        "--body",
        r#"{"query":"mutation { a }"}"#,
    ]);
    assert!(
        out.contains("route:  POST /accounts/{uuid}/graphql (Builtin)\n")
            && out.contains("family: account (upstream.base_url ")
            && out.contains("needs:  a query: account_read | ")
            && out.contains("adds:   the account's X-Auth-Token\n"),
        "{out}"
    );
    assert!(
        out.contains("  shop (mode enforce):\n    enforce: denied (403 scope_denied)"),
        "a mutation needs a modify-level account scope:\n{out}"
    );
    assert!(
        out.contains("  agent (mode enforce):\n    enforce: denied (403 account_not_allowed)"),
        "{out}"
    );
    let out = run(&[
        "POST",
        &format!("/accounts/{UUID}/graphql"),
        "--client",
        "shop",
    ]);
    assert!(
        out.contains(&format!("    enforce: allowed on account '{UUID}'\n")),
        "{out}"
    );

    // --header takes only the headers a decision reads, each once.
    for (flag, needle) in [
        ("X-Auth-Token: bcg-key-typed-here", "explain reads only"),
        (
            "X-Bcgate-Customer-Token bcg-key-typed-here",
            "expected 'Name: value'",
        ),
    ] {
        let (ok, out, err) = explain(&fx, &["POST", &sf, "--header", flag]);
        assert!(!ok && err.contains(needle), "{flag}: {err}\n{out}");
        assert!(
            !err.contains("bcg-key"),
            "a header value is never shown: {err}"
        );
    }
    let (ok, _, err) = explain(
        &fx,
        &[
            "POST",
            &sf,
            "-H",
            "X-Bc-Customer-Id: 1",
            "-H",
            "x-bc-customer-id: 2",
        ],
    );
    assert!(!ok && err.contains("given twice"), "{err}");
}
