//! The request path end to end: the real `bcgate` binary against the mock
//! BigCommerce, one module per stage. Each test starts its own mock and
//! bcgate process. `scripts/test` runs these again with
//! `BCGATE_MOCK_HTTP1=1 cargo test --test it proxy::`, so bcgate's own
//! HTTP/1.1 upstream client sees every case too.

mod authorize;
mod bodies;
mod forward;
mod identify;
mod listen;
mod rewrite;
mod screen;
mod secrets;

use crate::support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use support::mock::{BC_ERROR_TYPE, QUOTA, RETRY_AFTER, WINDOW_MS, pattern};
use support::{
    Bcgate, MockBigCommerce, Resp, TestCa, assert_problem, check_problem_body, client, client_h1,
    h2c_client, key_sha256, noise, plain_client, raw_exchange, raw_request, secret_forms, send,
    try_send, unused_addr,
};

// ---------------------------------------------------------------------------
// Stores, tokens, clients and keys of the standard fixture.

const ABC: &str = "abc123"; // alias "eu", token from env
const DEF: &str = "def456"; // alias "us", token from a file
const GHI: &str = "ghi789"; // token known to hold only store_v2_products

const T_ABC: &str = "bc-store-token-abc123-Qm7Zr2Wx9Lk4";
const T_DEF: &str = "bc-store-token-def456-Hy3Np8Vt1Cs6";
const T_GHI: &str = "bc-store-token-ghi789-Jd5Fb0Xq4Re2";

struct TestClient {
    name: &'static str,
    key: &'static str,
    stores: &'static str,
    default_store: Option<&'static str>,
    scopes: &'static str,
}

const ADMIN: TestClient = TestClient {
    name: "admin",
    key: "bcg-key-admin-7fT2mQ9xLw4Zp1Rv",
    stores: r#"["*"]"#,
    default_store: None,
    scopes: r#"["store_v2_products", "store_v2_orders", "store_v2_information", "store_cart", "store_v2_content", "store_content_checkout", "default", "bcgate:graphql_write"]"#,
};
const READER: TestClient = TestClient {
    name: "reader",
    key: "bcg-key-reader-3kS8dN1vB6yH0cJq",
    stores: r#"["eu"]"#,
    default_store: Some(ABC),
    scopes: r#"["store_v2_products_read_only"]"#,
};
const ORDERS: TestClient = TestClient {
    name: "orders",
    key: "bcg-key-orders-9pL2xW7mF4tR8nZe",
    stores: r#"["abc123"]"#,
    default_store: Some(ABC),
    scopes: r#"["store_v2_orders"]"#,
};
const TXN: TestClient = TestClient {
    name: "transactions",
    key: "bcg-key-txn-5gH1qV6cY3sK9wDa",
    stores: r#"["abc123"]"#,
    default_store: Some(ABC),
    scopes: r#"["store_v2_transactions"]"#,
};
const INFO: TestClient = TestClient {
    name: "info",
    key: "bcg-key-info-2bN7rT4jM8vX1zQf",
    stores: r#"["abc123"]"#,
    default_store: Some(ABC),
    scopes: r#"["store_v2_information"]"#,
};
const CART: TestClient = TestClient {
    name: "cart",
    key: "bcg-key-cart-6wE3yU9oP2aS5dGh",
    stores: r#"["abc123"]"#,
    default_store: Some(ABC),
    scopes: r#"["store_cart"]"#,
};
const CONTENT: TestClient = TestClient {
    name: "content",
    key: "bcg-key-content-8jK4lZ1xC7vB3nMw",
    stores: r#"["abc123"]"#,
    default_store: Some(ABC),
    scopes: r#"["store_v2_content"]"#,
};
const GQL_READ: TestClient = TestClient {
    name: "gql-reader",
    key: "bcg-key-gqlread-1qA9sD4fG6hJ2kLz",
    stores: r#"["abc123"]"#,
    default_store: Some(ABC),
    scopes: r#"["bcgate:graphql_read"]"#,
};
const US_ONLY: TestClient = TestClient {
    name: "us-only",
    key: "bcg-key-usonly-4xC8vB2nM6qW0eRt",
    stores: r#"["us"]"#,
    default_store: None,
    scopes: r#"["store_v2_products_read_only"]"#,
};

const CLIENTS: [&TestClient; 9] = [
    &ADMIN, &READER, &ORDERS, &TXN, &INFO, &CART, &CONTENT, &GQL_READ, &US_ONLY,
];

/// A key no client has (looks like one, so a log leak would be visible).
const BOGUS_KEY: &str = "bcg-key-bogus-0zX9cV8bN7mL6kJh";

fn all_secrets() -> Vec<&'static str> {
    let mut s = vec![T_ABC, T_DEF, T_GHI, BOGUS_KEY];
    s.extend(CLIENTS.iter().map(|c| c.key));
    s
}

// ---------------------------------------------------------------------------
// Fixture

struct Opts {
    request_timeout_ms: u64,
    max_body_bytes: u64,
    tls: bool,
    /// Replace `upstream.base_url` (default: the mock).
    upstream: Option<String>,
    /// Trust this CA for the upstream instead of the mock's.
    upstream_ca: Option<TestCa>,
    /// Appended to the config (e.g. `[[routes]]`).
    extra: String,
    /// The mock offers only HTTP/1.1.
    mock_h1: bool,
    /// Extra environment for bcgate.
    env: Vec<(&'static str, String)>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            request_timeout_ms: 60_000,
            max_body_bytes: 20_971_520,
            tls: false,
            upstream: None,
            upstream_ca: None,
            extra: String::new(),
            mock_h1: false,
            env: Vec::new(),
        }
    }
}

struct Fx {
    ca: TestCa,
    mock: MockBigCommerce,
    gate: Bcgate,
    http: reqwest::Client,
}

/// Whatever a test did, no token or key may appear in bcgate's (debug) logs,
/// in any encoding.
impl Drop for Fx {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let forms: Vec<String> = all_secrets().into_iter().flat_map(secret_forms).collect();
        let forms: Vec<&str> = forms.iter().map(String::as_str).collect();
        self.gate.assert_logs_free_of(&forms);
        // Nor in the metrics, after everything the test sent.
        if let Some(admin) = self.gate.admin_addr() {
            let metrics = raw_request(
                admin,
                b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n",
            );
            assert_eq!(metrics.status, 200);
            let text = metrics.body_text();
            assert!(text.contains("bcgate_requests_total"), "{text}");
            for form in &forms {
                assert!(!text.contains(form), "a secret appears in /metrics");
            }
        }
    }
}

fn config_toml(base_url: &str, o: &Opts) -> String {
    let tls = if o.tls {
        r#"tls = { cert = "server.pem", key = "server.key" }"#
    } else {
        ""
    };
    let mut clients = String::new();
    for c in CLIENTS {
        clients.push_str(&format!(
            "\n[[clients]]\nname = \"{}\"\nkey_sha256 = \"{}\"\nstores = {}\n{}scopes = {}\n",
            c.name,
            key_sha256(c.key),
            c.stores,
            c.default_store
                .map(|d| format!("default_store = \"{d}\"\n"))
                .unwrap_or_default(),
            c.scopes
        ));
    }
    format!(
        r#"# bcgate integration-test config
[server]
listen = "127.0.0.1:0"
{tls}
max_body_bytes = {max_body}

[admin]
listen = "127.0.0.1:0"

[upstream]
base_url = "{base_url}"
ca_file = "ca.pem"
connect_timeout_ms = 3000
request_timeout_ms = {request_timeout}

[[stores]]
hash = "{ABC}"
alias = "eu"
token_env = "BC_TOKEN_ABC123"

[[stores]]
hash = "{DEF}"
alias = "us"
token_file = "def456.token"

[[stores]]
hash = "{GHI}"
token_env = "BC_TOKEN_GHI789"
scopes = ["store_v2_products"]
{clients}
{extra}
"#,
        max_body = o.max_body_bytes,
        request_timeout = o.request_timeout_ms,
        extra = o.extra,
    )
}

fn fixture() -> Fx {
    fixture_with(Opts::default())
}

fn fixture_with(o: Opts) -> Fx {
    let ca = TestCa::new();
    let stores = [(ABC, T_ABC), (DEF, T_DEF), (GHI, T_GHI)];
    let mock = if o.mock_h1 {
        MockBigCommerce::start_h1(&ca, &stores)
    } else {
        MockBigCommerce::start(&ca, &stores)
    };
    let dir = support::process::temp_dir();
    match &o.upstream_ca {
        Some(other) => other.write_to(dir.path()),
        None => ca.write_to(dir.path()),
    };
    std::fs::write(dir.path().join("def456.token"), T_DEF).expect("write token file");
    if o.tls {
        ca.write_leaf(dir.path(), "server", &["localhost", "127.0.0.1"]);
    }
    let base = o.upstream.clone().unwrap_or_else(|| mock.base_url());
    // Every fixture runs with debug logging; dropping it checks the logs.
    let mut env = vec![
        ("BC_TOKEN_ABC123", T_ABC),
        ("BC_TOKEN_GHI789", T_GHI),
        ("BCGATE_LOG", "debug"),
    ];
    env.extend(o.env.iter().map(|(k, v)| (*k, v.as_str())));
    let gate = Bcgate::start_in(dir, &config_toml(&base, &o), &env);
    let http = if o.tls { client(&ca) } else { plain_client() };
    if o.tls {
        assert_eq!(gate.scheme, "https", "server.tls configured");
    } else {
        assert_eq!(gate.scheme, "http", "no server.tls configured");
    }
    Fx {
        ca,
        mock,
        gate,
        http,
    }
}

impl Fx {
    /// A request with the client's key in `X-Auth-Token`.
    fn req(&self, method: Method, path: &str, who: &TestClient) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.gate.url(path))
            .header("x-auth-token", who.key)
    }

    async fn get(&self, path: &str, who: &TestClient) -> Resp {
        send(self.req(Method::GET, path, who)).await
    }

    async fn post_json(&self, path: &str, who: &TestClient, body: &str) -> Resp {
        send(
            self.req(Method::POST, path, who)
                .header("content-type", "application/json")
                .body(body.to_owned()),
        )
        .await
    }

    /// Assert nothing reached the upstream, then forget.
    fn assert_not_forwarded(&self, what: &str) {
        let got = self.mock.requests();
        assert!(
            got.is_empty(),
            "{what}: must not reach the upstream, but it received {:?}",
            got.iter().map(|r| (&r.method, &r.uri)).collect::<Vec<_>>()
        );
    }

    /// The one upstream request since the last clear, then clear.
    fn take_one(&self) -> support::Recorded {
        let rec = self.mock.only_request();
        self.mock.clear();
        rec
    }

    fn mock_host(&self) -> String {
        self.mock.addr.to_string()
    }
}

/// `resp` is 200 and no secret appears in it.
fn assert_ok(resp: &Resp, what: &str) {
    assert_eq!(resp.status, 200, "{what}: {}", resp.text());
    assert_no_secret_in(resp, what);
}

fn assert_no_secret_in(resp: &Resp, what: &str) {
    let text = resp.text();
    let headers = format!("{:?}", resp.headers);
    for secret in all_secrets() {
        assert!(
            !text.contains(secret) && !headers.contains(secret),
            "{what}: a secret appears in the response"
        );
    }
}

fn required_scopes(body: &Value) -> Vec<String> {
    body["required_scopes"]
        .as_array()
        .unwrap_or_else(|| panic!("required_scopes should be an array: {body}"))
        .iter()
        .map(|v| v.as_str().expect("scope is a string").to_owned())
        .collect()
}

fn assert_scope_denied(resp: &Resp, must_include: &[&str]) -> Value {
    let body = assert_problem(resp, 403, "scope_denied");
    let scopes = required_scopes(&body);
    for s in must_include {
        assert!(
            scopes.iter().any(|x| x == s),
            "required_scopes should include {s}: {body}"
        );
    }
    assert_no_secret_in(resp, "scope_denied");
    body
}
