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

fn parse_verdict(text: &str) -> Option<Said> {
    if let Some(rest) = text
        .strip_prefix("allowed on store '")
        .or_else(|| text.strip_prefix("forwarded to store '"))
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
