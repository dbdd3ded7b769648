//! Integration tests of the real `bcgate` binary against the mock BigCommerce
//! (DESIGN §1, §2, §6). Each test starts its own mock and bcgate process.

mod support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use support::mock::{BC_ERROR_TYPE, QUOTA, RETRY_AFTER, WINDOW_MS, pattern};
use support::{
    Bcgate, MockBigCommerce, Resp, TestCa, assert_problem, check_problem_body, client, client_h1,
    h2c_client, key_sha256, noise, plain_client, raw_exchange, raw_request, send, try_send,
    unused_addr,
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

/// A secret as it could leak: raw, base64 (standard and URL-safe, padded or
/// not) and percent-encoded.
fn secret_forms(secret: &str) -> Vec<String> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut forms = vec![secret.to_owned()];
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        forms.push(engine.encode(secret));
    }
    forms.push(
        percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
    );
    forms.sort();
    forms.dedup();
    forms
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

// ---------------------------------------------------------------------------
// Identify and find the store

#[tokio::test]
async fn injects_the_token_of_the_store_named_by_hash_or_alias() {
    let fx = fixture();
    for (path, hash, token) in [
        ("/stores/abc123/v3/catalog/products", ABC, T_ABC),
        ("/stores/eu/v3/catalog/products", ABC, T_ABC),
        ("/stores/def456/v3/catalog/products", DEF, T_DEF),
        ("/stores/us/v3/catalog/products", DEF, T_DEF),
        ("/stores/ghi789/v3/catalog/products", GHI, T_GHI),
    ] {
        let resp = fx.get(path, &ADMIN).await;
        assert_ok(&resp, path);
        assert_eq!(resp.json()["data"]["store_hash"], hash, "{path}");
        let rec = fx.take_one();
        assert_eq!(rec.path, format!("/stores/{hash}/v3/catalog/products"));
        assert_eq!(rec.tokens(), vec![token.to_owned()], "{path}");
        assert_eq!(rec.host(), Some(fx.mock_host()), "{path}: upstream Host");
    }
}

#[tokio::test]
async fn host_header_from_the_caller_never_chooses_the_destination() {
    let fx = fixture();
    // SDKs send Host: api.bigcommerce.com; accepted, and replaced upstream.
    for host in ["api.bigcommerce.com", "evil.example:8443"] {
        let resp = send(
            fx.req(Method::GET, "/stores/abc123/v3/catalog/products", &ADMIN)
                .header("host", host),
        )
        .await;
        assert_ok(&resp, host);
        let rec = fx.take_one();
        assert_eq!(rec.host(), Some(fx.mock_host()));
        assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);
    }
}

#[tokio::test]
async fn default_store_serves_paths_without_a_store_prefix() {
    let fx = fixture();
    let resp = fx.get("/v3/catalog/products?limit=5", &READER).await;
    assert_ok(&resp, "reader default store");
    let rec = fx.take_one();
    assert_eq!(rec.uri, "/stores/abc123/v3/catalog/products?limit=5");
    assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);

    // admin has no default_store
    let resp = fx.get("/v3/catalog/products", &ADMIN).await;
    assert_problem(&resp, 404, "store_unknown");
    // unknown store / alias
    let resp = fx.get("/stores/zzz999/v3/catalog/products", &ADMIN).await;
    assert_problem(&resp, 404, "store_unknown");
    let resp = fx.get("/stores/nowhere/v3/catalog/products", &READER).await;
    assert_eq!(resp.status / 100, 4, "{}", resp.text());
    fx.assert_not_forwarded("unknown store");
}

#[tokio::test]
async fn unauthenticated_requests_get_401() {
    let fx = fixture();
    let path = "/stores/abc123/v3/catalog/products";
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        ("no key", fx.http.get(fx.gate.url(path))),
        (
            "unknown X-Auth-Token",
            fx.http
                .get(fx.gate.url(path))
                .header("x-auth-token", BOGUS_KEY),
        ),
        (
            "unknown Bearer",
            fx.http.get(fx.gate.url(path)).bearer_auth(BOGUS_KEY),
        ),
        (
            "store token as key",
            fx.http.get(fx.gate.url(path)).header("x-auth-token", T_ABC),
        ),
        (
            "key in query access_token",
            fx.http
                .get(fx.gate.url(&format!("{path}?access_token={}", ADMIN.key))),
        ),
        (
            "key in query X-Auth-Token",
            fx.http
                .get(fx.gate.url(&format!("{path}?X-Auth-Token={}", ADMIN.key))),
        ),
        (
            "key in query key",
            fx.http
                .get(fx.gate.url(&format!("{path}?key={}", ADMIN.key))),
        ),
        (
            "empty bearer",
            fx.http
                .get(fx.gate.url(path))
                .header("authorization", "Bearer "),
        ),
    ];
    for (what, req) in cases {
        let resp = send(req).await;
        let body = assert_problem(&resp, 401, "unauthenticated");
        assert_no_secret_in(&resp, what);
        assert!(
            !body.to_string().contains(BOGUS_KEY),
            "{what}: key echoed in body"
        );
    }
    fx.assert_not_forwarded("unauthenticated");
}

#[tokio::test]
async fn a_request_with_two_keys_is_a_bad_request() {
    let fx = fixture();
    let url = fx.gate.url("/stores/abc123/v3/catalog/products");
    let cases = vec![
        (
            "two X-Auth-Token (same key)",
            fx.http
                .get(&url)
                .header("x-auth-token", ADMIN.key)
                .header("x-auth-token", ADMIN.key),
        ),
        (
            "two X-Auth-Token (different keys)",
            fx.http
                .get(&url)
                .header("x-auth-token", READER.key)
                .header("x-auth-token", ADMIN.key),
        ),
        (
            "X-Auth-Token plus Bearer (same key)",
            fx.http
                .get(&url)
                .header("x-auth-token", ADMIN.key)
                .bearer_auth(ADMIN.key),
        ),
        (
            "X-Auth-Token plus Bearer (different keys)",
            fx.http
                .get(&url)
                .header("x-auth-token", READER.key)
                .bearer_auth(ADMIN.key),
        ),
    ];
    for (what, req) in cases {
        let resp = send(req).await;
        assert_problem(&resp, 400, "bad_request");
        assert_no_secret_in(&resp, what);
    }
    fx.assert_not_forwarded("two keys");
}

#[tokio::test]
async fn bearer_key_works_like_x_auth_token() {
    let fx = fixture();
    let resp = send(
        fx.http
            .get(fx.gate.url("/stores/abc123/v3/catalog/products"))
            .bearer_auth(READER.key),
    )
    .await;
    assert_ok(&resp, "bearer");
    let rec = fx.take_one();
    assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);
    assert!(!rec.has_header("authorization"));
}

#[tokio::test]
async fn store_not_allowed_and_store_unknown() {
    let fx = fixture();
    for (who, path) in [
        (&READER, "/stores/def456/v3/catalog/products"),
        (&READER, "/stores/us/v3/catalog/products"),
        (&READER, "/stores/ghi789/v3/catalog/products"),
        (&US_ONLY, "/stores/abc123/v3/catalog/products"),
        (&US_ONLY, "/stores/eu/v3/catalog/products"),
    ] {
        let resp = fx.get(path, who).await;
        let body = assert_problem(&resp, 403, "store_not_allowed");
        assert_no_secret_in(&resp, path);
        assert!(!body.to_string().contains(T_DEF));
    }
    fx.assert_not_forwarded("store not allowed");

    let resp = fx.get("/stores/zzz999/v3/catalog/products", &ADMIN).await;
    assert_problem(&resp, 404, "store_unknown");
    fx.assert_not_forwarded("store unknown");

    // Allowed by alias in the client's list, reached by hash and by alias.
    for path in [
        "/stores/def456/v3/catalog/products",
        "/stores/us/v3/catalog/products",
    ] {
        let resp = fx.get(path, &US_ONLY).await;
        assert_ok(&resp, path);
        let rec = fx.take_one();
        assert_eq!(rec.tokens(), vec![T_DEF.to_owned()]);
    }
}

// ---------------------------------------------------------------------------
// Rewrite

#[tokio::test]
async fn caller_credentials_and_forwarding_headers_are_stripped() {
    let fx = fixture();
    let resp = send(
        fx.req(Method::GET, "/stores/abc123/v3/catalog/products", &ADMIN)
            .header("x-auth-client", "sdk-client-id-123")
            .header("proxy-authorization", "Basic cHJveHk6c2VjcmV0")
            .header("cookie", "SHOP_SESSION=cookie-value-77; other=1")
            .header("x-http-method-override", "DELETE")
            .header("x-forwarded-for", "10.9.8.7")
            .header("x-forwarded-host", "forwarded-host.example")
            .header("x-forwarded-proto", "gopher")
            .header(
                "forwarded",
                "for=10.9.8.7;host=forwarded-host.example;proto=gopher",
            )
            .header("x-custom-kept", "kept-value")
            .header("accept", "application/json"),
    )
    .await;
    assert_ok(&resp, "credentials stripped");
    let rec = fx.take_one();
    assert_eq!(rec.method, "GET", "X-HTTP-Method-Override must not apply");
    assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);
    for name in [
        "authorization",
        "x-auth-client",
        "proxy-authorization",
        "cookie",
        "x-http-method-override",
        "x-forwarded-host",
        "x-forwarded-proto",
    ] {
        assert!(!rec.has_header(name), "{name} must be stripped: {rec:#?}");
    }
    for (name, value) in &rec.headers {
        let value = String::from_utf8_lossy(value);
        for caller_value in [
            "10.9.8.7",
            "forwarded-host.example",
            "gopher",
            "cookie-value-77",
            "sdk-client-id-123",
            ADMIN.key,
        ] {
            assert!(
                !value.contains(caller_value),
                "caller-sent {caller_value:?} reached the upstream in {name}"
            );
        }
    }
    assert_eq!(rec.header("x-custom-kept").as_deref(), Some("kept-value"));

    // The same with the key as a Bearer token.
    let resp = send(
        fx.http
            .get(fx.gate.url("/stores/abc123/v3/catalog/products"))
            .bearer_auth(ADMIN.key)
            .header("x-auth-client", "sdk-client-id-123")
            .header("cookie", "a=b"),
    )
    .await;
    assert_ok(&resp, "bearer");
    let rec = fx.take_one();
    assert!(!rec.has_header("authorization"));
    assert!(!rec.has_header("x-auth-client"));
    assert!(!rec.has_header("cookie"));
    assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);

    // X-HTTP-Method-Override cannot lift a read-only client to a write.
    let resp = send(
        fx.req(Method::GET, "/stores/abc123/v3/catalog/products/1", &READER)
            .header("x-http-method-override", "DELETE"),
    )
    .await;
    assert_ok(&resp, "override ignored");
    let rec = fx.take_one();
    assert_eq!(rec.method, "GET");
    assert!(!rec.has_header("x-http-method-override"));
}

#[tokio::test]
async fn hop_by_hop_headers_and_connection_tokens_cannot_touch_the_injected_token() {
    let fx = fixture();
    // Key as Bearer; Connection names X-Auth-Token (the header bcgate injects).
    let req = format!(
        "GET /stores/abc123/v3/catalog/products HTTP/1.1\r\n\
         Host: api.bigcommerce.com\r\n\
         Authorization: Bearer {key}\r\n\
         Connection: keep-alive, X-Auth-Token, X-Drop-Me\r\n\
         Keep-Alive: timeout=5\r\n\
         TE: trailers\r\n\
         X-Drop-Me: dropped-value\r\n\
         X-Keep-Me: kept\r\n\
         \r\n",
        key = ADMIN.key
    );
    let resp = raw_request(fx.gate.addr, req.as_bytes());
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    let rec = fx.take_one();
    assert_eq!(rec.tokens(), vec![T_ABC.to_owned()], "{rec:#?}");
    for name in [
        "x-drop-me",
        "keep-alive",
        "te",
        "connection",
        "upgrade",
        "transfer-encoding",
    ] {
        assert!(
            !rec.has_header(name),
            "{name} must not be forwarded: {rec:#?}"
        );
    }
    assert_eq!(rec.header("x-keep-me").as_deref(), Some("kept"));
    assert_eq!(rec.host(), Some(fx.mock_host()));

    // Key in X-Auth-Token and Connection naming it: the key identifies the
    // caller before any stripping, and the upstream gets exactly the store token.
    let req = format!(
        "GET /stores/abc123/v3/catalog/products HTTP/1.1\r\n\
         Host: api.bigcommerce.com\r\n\
         X-Auth-Token: {key}\r\n\
         Connection: close, X-Auth-Token\r\n\
         \r\n",
        key = ADMIN.key
    );
    let resp = raw_request(fx.gate.addr, req.as_bytes());
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert_eq!(fx.mock.requests().len(), 1);
    for rec in fx.mock.requests() {
        assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);
    }
    fx.mock.clear();

    // A caller-sent second X-Auth-Token-like header value never reaches the upstream.
    let req = format!(
        "GET /stores/abc123/v3/catalog/products HTTP/1.1\r\n\
         Host: api.bigcommerce.com\r\n\
         Authorization: Bearer {key}\r\n\
         x-auth-token : {other}\r\n\
         Connection: close\r\n\
         \r\n",
        key = ADMIN.key,
        other = T_DEF
    );
    if let Ok(resp) = raw_exchange(fx.gate.addr, req.as_bytes(), false) {
        assert_ne!(resp.status, 200, "whitespace before colon must be refused");
    }
    for rec in fx.mock.requests() {
        assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);
    }
}

// ---------------------------------------------------------------------------
// Authorize: scopes

#[tokio::test]
async fn read_only_scope_allows_get_and_head_and_denies_writes() {
    let fx = fixture();
    let resp = fx
        .get("/stores/abc123/v3/catalog/products/7", &READER)
        .await;
    assert_ok(&resp, "GET");
    let resp = send(fx.req(
        Method::HEAD,
        "/stores/abc123/v3/catalog/products/7",
        &READER,
    ))
    .await;
    assert_eq!(resp.status, 200, "HEAD follows GET");
    let recs = fx.mock.requests();
    assert_eq!(
        recs.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(),
        vec!["GET", "HEAD"]
    );
    fx.mock.clear();

    let resp = fx
        .post_json(
            "/stores/abc123/v3/catalog/products",
            &READER,
            r#"{"name":"x"}"#,
        )
        .await;
    let body = assert_scope_denied(&resp, &["store_v2_products"]);
    let scopes = required_scopes(&body);
    assert!(
        !scopes.iter().any(|s| s == "store_v2_products_read_only"),
        "a read-only scope cannot grant POST: {body}"
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("reader"),
        "detail names the client: {body}"
    );
    // (PATCH /v3/catalog/products/{id} is not a BigCommerce route: route_unknown.)
    for method in [Method::PUT, Method::DELETE] {
        let resp = send(
            fx.req(method.clone(), "/v3/catalog/products/7", &READER)
                .header("content-type", "application/json")
                .body("{}"),
        )
        .await;
        assert_scope_denied(&resp, &["store_v2_products"]);
    }
    // Another family entirely
    let resp = fx.get("/stores/abc123/v2/orders", &READER).await;
    assert_scope_denied(&resp, &["store_v2_orders_read_only", "store_v2_orders"]);
    fx.assert_not_forwarded("denied");

    // POST /v3/pricing/products is a read.
    let body = r#"{"channel_id":1,"currency_code":"USD","items":[{"product_id":1}]}"#;
    let resp = fx
        .post_json("/stores/abc123/v3/pricing/products", &READER, body)
        .await;
    assert_ok(&resp, "pricing is a read");
    let rec = fx.take_one();
    assert_eq!(rec.method, "POST");
    assert_eq!(rec.body, body.as_bytes());

    // A modify scope implies its read twin.
    let resp = fx.get("/stores/abc123/v2/orders/1", &ORDERS).await;
    assert_ok(&resp, "modify implies read");
    let resp = send(
        fx.req(Method::PUT, "/stores/abc123/v2/orders/1", &ORDERS)
            .header("content-type", "application/json")
            .body(r#"{"status_id":2}"#),
    )
    .await;
    assert_ok(&resp, "modify");
    assert_eq!(fx.mock.requests().len(), 2);
}

#[tokio::test]
async fn routes_granted_by_either_of_two_families() {
    let fx = fixture();
    for (who, method, path) in [
        (
            &TXN,
            Method::POST,
            "/stores/abc123/v3/orders/1/payment_actions/capture",
        ),
        (
            &TXN,
            Method::POST,
            "/stores/abc123/v3/orders/1/payment_actions/void",
        ),
        (&TXN, Method::GET, "/stores/abc123/v3/orders/1/transactions"),
        (
            &TXN,
            Method::POST,
            "/stores/abc123/v3/orders/1/payment_actions/refunds",
        ),
        (
            &ORDERS,
            Method::POST,
            "/stores/abc123/v3/orders/1/payment_actions/capture",
        ),
        (
            &ORDERS,
            Method::POST,
            "/stores/abc123/v3/orders/1/payment_actions/refund_quotes",
        ),
        (
            &ORDERS,
            Method::GET,
            "/stores/abc123/v3/orders/1/payment_actions/refunds",
        ),
        (
            &TXN,
            Method::GET,
            "/stores/abc123/v3/orders/1/payment_actions/refunds",
        ),
    ] {
        let resp = send(
            fx.req(method.clone(), path, who)
                .header("content-type", "application/json")
                .body("{}"),
        )
        .await;
        assert_ok(&resp, &format!("{} {method} {path}", who.name));
        let rec = fx.take_one();
        assert_eq!(rec.method, method.as_str());
        assert_eq!(rec.path, path);
    }
    // GET transactions names only the Order Transactions family.
    let resp = fx
        .get("/stores/abc123/v3/orders/1/transactions", &ORDERS)
        .await;
    assert_scope_denied(&resp, &["store_v2_transactions"]);
    // Order Transactions does not reach the orders v2 API.
    let resp = fx.get("/stores/abc123/v2/orders/1", &TXN).await;
    assert_scope_denied(&resp, &["store_v2_orders"]);
    // Products read-only reaches neither; both families are named.
    let resp = fx
        .post_json(
            "/stores/abc123/v3/orders/1/payment_actions/capture",
            &READER,
            "{}",
        )
        .await;
    assert_scope_denied(&resp, &["store_v2_orders", "store_v2_transactions"]);
    fx.assert_not_forwarded("any-of denied");
}

#[tokio::test]
async fn cart_settings_are_information_scope_and_cart_ids_are_cart_scope() {
    let fx = fixture();
    let resp = fx.get("/stores/abc123/v3/carts/settings", &INFO).await;
    assert_ok(&resp, "info → carts/settings");
    assert_eq!(fx.take_one().path, "/stores/abc123/v3/carts/settings");
    let cart = "/stores/abc123/v3/carts/5b1e4b8c-0d1a-4a8e-9f3c-2d6f1e0a7b9c";
    let resp = fx.get(cart, &CART).await;
    assert_ok(&resp, "cart → carts/{id}");
    assert_eq!(fx.take_one().path, cart);

    let resp = fx.get(cart, &INFO).await;
    assert_scope_denied(&resp, &["store_cart"]);
    let resp = fx.get("/stores/abc123/v3/carts/settings", &CART).await;
    assert_scope_denied(&resp, &["store_v2_information"]);
    fx.assert_not_forwarded("carts denied");
}

#[tokio::test]
async fn v2_format_suffix_is_the_same_route() {
    let fx = fixture();
    for path in [
        "/stores/abc123/v2/orders.json",
        "/stores/abc123/v2/orders/5.json",
        "/stores/abc123/v2/orders/count.json",
        "/v2/orders.json",
    ] {
        let resp = fx.get(path, &ORDERS).await;
        assert_ok(&resp, path);
        let rec = fx.take_one();
        let expected = if path.starts_with("/stores/") {
            path.to_owned()
        } else {
            format!("/stores/abc123{path}")
        };
        assert_eq!(rec.path, expected, "the upstream sees the authorized path");
    }
    let resp = fx.get("/stores/abc123/v2/orders.json", &READER).await;
    assert_scope_denied(&resp, &["store_v2_orders_read_only"]);
    let resp = fx.get("/stores/abc123/v2/orders/5.xml", &READER).await;
    assert_scope_denied(&resp, &["store_v2_orders_read_only"]);
    fx.assert_not_forwarded("v2 suffix denied");
}

#[tokio::test]
async fn webhooks_need_the_default_scope_listed() {
    let fx = fixture();
    let resp = fx.get("/stores/abc123/v3/hooks", &ADMIN).await;
    assert_ok(&resp, "admin has default");
    fx.take_one();
    let resp = fx.get("/stores/abc123/v3/hooks", &ORDERS).await;
    let body = assert_scope_denied(&resp, &["default"]);
    assert_eq!(required_scopes(&body), vec!["default".to_owned()]);
    fx.assert_not_forwarded("webhooks");
}

#[tokio::test]
async fn a_token_known_to_lack_the_scope_is_not_spent() {
    let fx = fixture();
    // ghi789's token holds only store_v2_products; admin may do orders, but not there.
    let resp = fx.get("/stores/ghi789/v2/orders", &ADMIN).await;
    assert_eq!(resp.status, 403, "{}", resp.text());
    let body = resp.json();
    let code = body["code"].as_str().unwrap_or_default().to_owned();
    assert!(!code.is_empty(), "{body}");
    check_problem_body(&body, 403, &code);
    assert_no_secret_in(&resp, "token lacks scope");
    fx.assert_not_forwarded("store token lacks the scope");
    let resp = fx.get("/stores/ghi789/v3/catalog/products", &ADMIN).await;
    assert_ok(&resp, "store token has products");
    assert_eq!(fx.take_one().tokens(), vec![T_GHI.to_owned()]);
}

#[tokio::test]
async fn storefront_and_customer_apis_are_never_forwarded() {
    let fx = fixture();
    for (method, path) in [
        (Method::GET, "/api/storefront/carts"),
        (Method::POST, "/api/storefront/carts"),
        (Method::GET, "/api/storefront/checkouts/5b1e4b8c"),
        (Method::GET, "/login/token/eyJhbGciOiJIUzI1NiJ9.e30.x"),
        (Method::GET, "/customer/current.jwt?app_client_id=abc"),
    ] {
        let resp = send(
            fx.req(method.clone(), path, &READER)
                .header("content-type", "application/json")
                .body("{}"),
        )
        .await;
        assert_problem(&resp, 403, "not_proxied");
        assert_no_secret_in(&resp, path);
    }
    // With a store prefix too: refused, never forwarded. The customer-login
    // API exists only as GET, so a POST there is not a route at all.
    for (path, code) in [
        ("/stores/abc123/api/storefront/carts", "not_proxied"),
        ("/stores/abc123/payments", "not_proxied"),
        ("/stores/abc123/login/token/x", "route_unknown"),
    ] {
        let resp = send(
            fx.req(Method::POST, path, &ADMIN)
                .header("content-type", "application/json")
                .body("{}"),
        )
        .await;
        assert_problem(&resp, 403, code);
    }
    let resp = send(fx.req(Method::GET, "/stores/abc123/login/token/x", &ADMIN)).await;
    assert_problem(&resp, 403, "not_proxied");
    fx.assert_not_forwarded("storefront");
}

#[tokio::test]
async fn unmapped_routes_fail_closed_until_mapped_in_config() {
    let fx = fixture();
    let path = "/stores/abc123/v3/some/new/endpoint/42";
    let resp = fx.get(path, &ADMIN).await;
    assert_problem(&resp, 403, "route_unknown");
    fx.assert_not_forwarded("unmapped");
    drop(fx);

    let fx = fixture_with(Opts {
        extra: r#"
[[routes]]
method = "GET"
path = "/v3/some/new/endpoint/{id}"
scope = "store_v2_products"
"#
        .to_owned(),
        ..Opts::default()
    });
    let resp = fx.get(path, &ADMIN).await;
    assert_ok(&resp, "mapped route");
    let rec = fx.take_one();
    assert_eq!(rec.path, path);
    assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);
    // Only GET was mapped.
    let resp = fx.post_json(path, &ADMIN, "{}").await;
    assert_eq!(resp.status, 403, "{}", resp.text());
    // A client without the scope is denied.
    let resp = fx.get(path, &ORDERS).await;
    assert_scope_denied(&resp, &["store_v2_products"]);
    fx.assert_not_forwarded("mapped route, denied");
}

#[tokio::test]
async fn scripts_visibility_decides_the_checkout_content_scope() {
    let fx = fixture();
    let scripts = "/stores/abc123/v3/content/scripts";
    let one = "/stores/abc123/v3/content/scripts/095be615-a8ad-4c33-8e9c-c7612fbf6c9f";

    let storefront =
        r#"{"name":"a","kind":"src","src":"https://cdn.example/a.js","visibility":"storefront"}"#;
    let resp = fx.post_json(scripts, &CONTENT, storefront).await;
    assert_ok(&resp, "storefront script with Content");
    let rec = fx.take_one();
    assert_eq!(rec.body, storefront.as_bytes(), "body forwarded byte-exact");

    for vis in ["checkout", "all_pages"] {
        let body = format!(
            r#"{{"name":"a","kind":"src","src":"https://cdn.example/a.js","visibility":"{vis}"}}"#
        );
        let resp = fx.post_json(scripts, &CONTENT, &body).await;
        assert_scope_denied(&resp, &["store_content_checkout"]);
        let resp = fx.post_json(scripts, &ADMIN, &body).await;
        assert_ok(&resp, &format!("{vis} with Checkout Content"));
        assert_eq!(fx.take_one().body, body.as_bytes());
    }

    // PUT without visibility: bcgate cannot know the current one.
    let resp = send(
        fx.req(Method::PUT, one, &CONTENT)
            .header("content-type", "application/json")
            .body(r#"{"name":"renamed"}"#),
    )
    .await;
    assert_scope_denied(&resp, &["store_content_checkout"]);
    let resp = send(
        fx.req(Method::PUT, one, &CONTENT)
            .header("content-type", "application/json")
            .body(r#"{"name":"renamed","visibility":"storefront"}"#),
    )
    .await;
    assert_ok(&resp, "PUT storefront with Content");
    fx.take_one();
    let resp = send(
        fx.req(Method::PUT, one, &ADMIN)
            .header("content-type", "application/json")
            .body(r#"{"name":"renamed"}"#),
    )
    .await;
    assert_ok(&resp, "PUT without visibility, with Checkout Content");
    fx.take_one();

    // Bodies bcgate cannot judge are 400, whoever sends them.
    for (what, body, encoding) in [
        (
            "duplicate visibility",
            r#"{"name":"a","visibility":"storefront","visibility":"checkout"}"#,
            None,
        ),
        ("unparsable", r#"{"name":"a","visibility":"#, None),
        ("compressed", "\u{1f}\u{8b}\u{8}\u{0}garbage", Some("gzip")),
    ] {
        for who in [&CONTENT, &ADMIN] {
            let mut req = fx
                .req(Method::POST, scripts, who)
                .header("content-type", "application/json")
                .body(body.to_owned());
            if let Some(enc) = encoding {
                req = req.header("content-encoding", enc);
            }
            let resp = send(req).await;
            assert_problem(&resp, 400, "bad_request");
            assert!(
                !resp.text().contains(who.key),
                "{what}: key echoed in the error"
            );
        }
    }
    fx.assert_not_forwarded("script bodies refused");

    let resp = fx.get(scripts, &CONTENT).await;
    assert_ok(&resp, "list scripts");
}

#[tokio::test]
async fn graphql_queries_mutations_and_garbage() {
    let fx = fixture();
    let gql = "/stores/abc123/graphql";
    let query = r#"{"query":"query { store { settings { storeProfile { storeName } } } }"}"#;
    let shorthand = r#"{"query":"{ store { settings { storeProfile { storeName } } } }"}"#;
    let mutation = r#"{"query":"mutation { channel { createChannel(input: {name: \"x\"}) { channel { id } } } }"}"#;

    for (who, body) in [
        (&GQL_READ, query),
        (&GQL_READ, shorthand),
        (&ADMIN, query),
        (&ADMIN, mutation),
    ] {
        let resp = fx.post_json(gql, who, body).await;
        assert_ok(&resp, &format!("{} {body}", who.name));
        let rec = fx.take_one();
        assert_eq!(rec.path, gql);
        assert_eq!(
            rec.body,
            body.as_bytes(),
            "GraphQL body forwarded byte-exact"
        );
        assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);
    }
    // application/graphql
    let resp = send(
        fx.req(Method::POST, gql, &GQL_READ)
            .header("content-type", "application/graphql")
            .body("query { store { settings { storeProfile { storeName } } } }"),
    )
    .await;
    assert_ok(&resp, "application/graphql");
    fx.take_one();

    // GET ?query= may carry a query only.
    let get_query = format!(
        "{gql}?query=%7B%20store%20%7B%20settings%20%7B%20storeProfile%20%7B%20storeName%20%7D%20%7D%20%7D%20%7D"
    );
    let resp = fx.get(&get_query, &GQL_READ).await;
    assert_ok(&resp, "GET ?query=");
    assert_eq!(fx.take_one().method, "GET");
    let get_mutation = format!(
        "{gql}?query=mutation%20%7B%20channel%20%7B%20createChannel(input%3A%20%7Bname%3A%20%22x%22%7D)%20%7B%20channel%20%7B%20id%20%7D%20%7D%20%7D%20%7D"
    );
    let resp = fx.get(&get_mutation, &ADMIN).await;
    assert_problem(&resp, 400, "bad_request");
    fx.assert_not_forwarded("GET mutation");

    let resp = fx.post_json(gql, &GQL_READ, mutation).await;
    assert_scope_denied(&resp, &["bcgate:graphql_write"]);
    let resp = fx.post_json(gql, &READER, query).await;
    assert_scope_denied(&resp, &["bcgate:graphql_read"]);
    let batch = format!("[{query},{mutation}]");
    let resp = fx.post_json(gql, &GQL_READ, &batch).await;
    assert_scope_denied(&resp, &["bcgate:graphql_write"]);

    for (what, body) in [
        ("garbage document", r#"{"query":"this is { not graphql"}"#),
        ("not JSON", "hello there"),
        (
            "persisted query without document",
            r#"{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"abc"}}}"#,
        ),
        (
            "two operations, no operationName",
            r#"{"query":"query A { store { id } } query B { store { id } }"}"#,
        ),
    ] {
        let resp = fx.post_json(gql, &ADMIN, body).await;
        assert_eq!(resp.status, 400, "{what}: {}", resp.text());
        assert_problem(&resp, 400, "bad_request");
    }
    let resp = fx
        .post_json(
            gql,
            &ADMIN,
            r#"{"query":"subscription { orderCreated { id } }"}"#,
        )
        .await;
    assert_problem(&resp, 400, "bad_request");
    fx.assert_not_forwarded("graphql refused");
}

// ---------------------------------------------------------------------------
// Forward

#[tokio::test]
async fn five_mib_bodies_stream_byte_exact_both_ways() {
    let fx = fixture();
    let payload = noise(5 * 1024 * 1024 + 3, 42);
    let path = "/stores/abc123/v3/catalog/products?mock_echo=1";
    for (what, http) in [("h1", plain_client()), ("h2c", h2c_client())] {
        let resp = send(
            http.post(fx.gate.url(path))
                .header("x-auth-token", ADMIN.key)
                .header("content-type", "application/octet-stream")
                .body(payload.clone()),
        )
        .await;
        assert_eq!(resp.status, 200, "{what}: {}", resp.text());
        assert_eq!(
            resp.header("content-type"),
            Some("application/octet-stream")
        );
        assert_eq!(resp.body.len(), payload.len(), "{what}: echoed length");
        assert!(
            resp.body.as_ref() == payload.as_slice(),
            "{what}: echo differs"
        );
        let rec = fx.take_one();
        assert!(rec.body_complete, "{what}");
        assert!(rec.body == payload, "{what}: upstream body differs");
    }
    // A streamed (chunked) request body.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        payload.chunks(256 * 1024).map(|c| Ok(c.to_vec())).collect();
    let resp = send(
        fx.req(
            Method::PUT,
            "/stores/abc123/v3/catalog/products/1?mock_echo=1",
            &ADMIN,
        )
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        ))),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        resp.body.as_ref() == payload.as_slice(),
        "chunked echo differs"
    );
    assert!(fx.take_one().body == payload);

    // A large response body.
    let n = 6 * 1024 * 1024 + 1;
    let resp = fx
        .get(
            &format!("/stores/abc123/v3/catalog/products?mock_bytes={n}"),
            &ADMIN,
        )
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), n);
    assert!(
        resp.body.as_ref() == pattern(n).as_slice(),
        "mock_bytes differs"
    );
}

#[tokio::test]
async fn upstream_down_is_502() {
    let down = unused_addr();
    let fx = fixture_with(Opts {
        upstream: Some(format!("https://{down}")),
        ..Opts::default()
    });
    let started = Instant::now();
    let resp = fx.get("/stores/abc123/v3/catalog/products", &ADMIN).await;
    assert_problem(&resp, 502, "upstream_unavailable");
    assert_no_secret_in(&resp, "502");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn upstream_tls_failure_is_502() {
    // bcgate trusts another CA than the one that signed the mock's certificate.
    let fx = fixture_with(Opts {
        upstream_ca: Some(TestCa::new()),
        ..Opts::default()
    });
    let resp = fx.get("/stores/abc123/v3/catalog/products", &ADMIN).await;
    assert_problem(&resp, 502, "upstream_unavailable");
    fx.assert_not_forwarded("TLS failure");
}

#[tokio::test]
async fn slow_upstream_is_504() {
    let fx = fixture_with(Opts {
        request_timeout_ms: 1_500,
        ..Opts::default()
    });
    let started = Instant::now();
    let resp = fx
        .get(
            "/stores/abc123/v3/catalog/products?mock_delay_ms=8000",
            &ADMIN,
        )
        .await;
    assert_problem(&resp, 504, "upstream_timeout");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1_400) && took < Duration::from_secs(7),
        "timed out after {took:?}"
    );
    // A fast one through the same process still works.
    let resp = fx
        .get(
            "/stores/abc123/v3/catalog/products?mock_delay_ms=100",
            &ADMIN,
        )
        .await;
    assert_ok(&resp, "fast request after a timeout");
}

#[tokio::test]
async fn redirects_are_rewritten_on_host_and_refused_off_host() {
    let fx = fixture();
    let enc = |s: &str| {
        s.replace('%', "%25")
            .replace(':', "%3A")
            .replace('/', "%2F")
            .replace('?', "%3F")
            .replace('=', "%3D")
            .replace('&', "%26")
    };
    // Off-host: answered 502, Location never shown.
    for target in [
        "https://evil.example/steal".to_owned(),
        format!(
            "https://127.0.0.1:{}/stores/abc123/v3/x",
            unused_addr().port()
        ),
        "//evil.example/stores/abc123/v3/x".to_owned(),
    ] {
        let path = format!(
            "/stores/abc123/v3/catalog/products?mock_redirect={}",
            enc(&target)
        );
        let resp = fx.get(&path, &ADMIN).await;
        let body = assert_problem(&resp, 502, "upstream_unavailable");
        assert!(resp.header("location").is_none(), "{target}");
        assert!(!body.to_string().contains("evil.example/steal"));
    }
    fx.mock.clear();

    // On-host, absolute and relative: rewritten to a bcgate path with the real hash.
    for (via, target, expected) in [
        (
            "/stores/abc123",
            fx.mock.url("/stores/abc123/v3/catalog/products/9?page=2"),
            "/stores/abc123/v3/catalog/products/9?page=2",
        ),
        (
            "/stores/eu",
            fx.mock.url("/stores/abc123/v3/catalog/products/10"),
            "/stores/abc123/v3/catalog/products/10",
        ),
        (
            "/stores/abc123",
            "/stores/abc123/v3/catalog/products/11".to_owned(),
            "/stores/abc123/v3/catalog/products/11",
        ),
    ] {
        let path = format!("{via}/v3/catalog/products?mock_redirect={}", enc(&target));
        let resp = fx.get(&path, &ADMIN).await;
        assert_eq!(resp.status, 302, "{target}: {}", resp.text());
        let location = resp.header("location").unwrap_or_default();
        assert_eq!(location, expected, "rewritten Location for {target}");
    }
    // No redirect was followed: exactly one upstream request per call.
    assert_eq!(fx.mock.requests().len(), 3);
}

#[tokio::test]
async fn bodies_over_max_body_bytes_are_413() {
    let limit: usize = 1024 * 1024;
    let fx = fixture_with(Opts {
        max_body_bytes: limit as u64,
        ..Opts::default()
    });
    let big = noise(2 * limit, 9);
    let path = "/stores/abc123/v3/catalog/products?mock_echo=1";

    // With Content-Length.
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: api.bigcommerce.com\r\nX-Auth-Token: {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        ADMIN.key,
        big.len()
    )
    .into_bytes();
    req.extend_from_slice(&big);
    let resp = raw_request(fx.gate.addr, &req);
    assert_eq!(resp.status, 413, "{}", resp.body_text());
    check_problem_body(&resp.json(), 413, "body_too_large");
    fx.assert_not_forwarded("Content-Length over the limit");

    // Chunked, no Content-Length.
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: api.bigcommerce.com\r\nX-Auth-Token: {}\r\n\
         Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        ADMIN.key
    )
    .into_bytes();
    for chunk in big.chunks(64 * 1024) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let resp = raw_request(fx.gate.addr, &req);
    assert_eq!(resp.status, 413, "{}", resp.body_text());
    check_problem_body(&resp.json(), 413, "body_too_large");
    // The upstream may have seen the start of a streamed body, never all of it.
    for rec in fx.mock.requests() {
        assert!(
            !(rec.body_complete && rec.body.len() > limit),
            "a body over the limit reached the upstream whole"
        );
    }
    fx.mock.clear();

    // Under the limit is fine, both ways.
    let ok = noise(limit / 2, 10);
    let resp = send(
        fx.req(Method::POST, path, &ADMIN)
            .header("content-type", "application/octet-stream")
            .body(ok.clone()),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.body.as_ref() == ok.as_slice());
}

#[tokio::test]
async fn rate_limit_headers_and_upstream_errors_pass_through() {
    let fx = fixture();
    let mut lefts = Vec::new();
    for _ in 0..2 {
        let resp = fx.get("/stores/abc123/v3/catalog/products", &ADMIN).await;
        assert_ok(&resp, "rate limit");
        assert_eq!(
            resp.header("x-rate-limit-requests-quota"),
            Some(QUOTA.to_string().as_str())
        );
        assert_eq!(
            resp.header("x-rate-limit-time-window-ms"),
            Some(WINDOW_MS.to_string().as_str())
        );
        assert!(resp.header("x-rate-limit-time-reset-ms").is_some());
        lefts.push(
            resp.header("x-rate-limit-requests-left")
                .expect("X-Rate-Limit-Requests-Left passes through")
                .parse::<u32>()
                .expect("number"),
        );
    }
    assert!(lefts[1] < lefts[0], "{lefts:?}");

    let resp = fx
        .get("/stores/abc123/v3/catalog/products?mock_status=429", &ADMIN)
        .await;
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("x-retry-after"), Some(RETRY_AFTER));
    assert!(resp.header("x-rate-limit-requests-left").is_some());
    assert_eq!(resp.json()["type"], BC_ERROR_TYPE, "upstream's own body");

    for status in [404u16, 422, 500, 503] {
        let resp = fx
            .get(
                &format!("/stores/abc123/v3/catalog/products?mock_status={status}"),
                &ADMIN,
            )
            .await;
        assert_eq!(resp.status, status);
        assert_eq!(resp.json()["type"], BC_ERROR_TYPE, "upstream's own body");
        assert!(resp.header("x-request-id").is_some());
    }
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let fx = fixture();
    let id = "req-0123456789abcdef";
    let resp = send(
        fx.req(Method::GET, "/stores/abc123/v3/catalog/products", &ADMIN)
            .header("x-request-id", id),
    )
    .await;
    assert_ok(&resp, "request id");
    assert_eq!(resp.header("x-request-id"), Some(id));
    assert!(
        fx.gate.wait_for_log(id, Duration::from_secs(5)),
        "the request id appears in the access log:\n{}",
        fx.gate.logs()
    );

    let resp = send(
        fx.http
            .get(fx.gate.url("/stores/abc123/v3/catalog/products"))
            .header("x-request-id", id),
    )
    .await;
    let body = assert_problem(&resp, 401, "unauthenticated");
    assert_eq!(body["request_id"], id);

    let mut seen = Vec::new();
    for bad in [None, Some("has spaces in it"), Some(&*"x".repeat(500))] {
        let mut req = fx.req(Method::GET, "/stores/abc123/v3/catalog/products", &ADMIN);
        if let Some(bad) = bad {
            req = req.header("x-request-id", bad);
        }
        let resp = send(req).await;
        let got = resp
            .header("x-request-id")
            .expect("every response has X-Request-Id")
            .to_owned();
        assert!(!got.is_empty());
        if let Some(bad) = bad {
            assert_ne!(got, bad, "an invalid request id is replaced");
        }
        seen.push(got);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "generated ids are distinct");
}

// ---------------------------------------------------------------------------
// Listeners

#[tokio::test]
async fn https_listener_serves_h1_and_h2() {
    let fx = fixture_with(Opts {
        tls: true,
        ..Opts::default()
    });
    for (what, http, version) in [
        ("h2", client(&fx.ca), http::Version::HTTP_2),
        ("http/1.1", client_h1(&fx.ca), http::Version::HTTP_11),
    ] {
        let resp = send(
            http.get(fx.gate.url("/stores/eu/v3/catalog/products"))
                .header("x-auth-token", READER.key)
                .header("x-auth-client", "python-sdk-client-id"),
        )
        .await;
        assert_ok(&resp, what);
        assert_eq!(resp.version, version, "{what}");
        let rec = fx.take_one();
        assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);
        assert!(!rec.has_header("x-auth-client"));
    }
    // By name as well as by IP.
    let url = format!(
        "https://localhost:{}/stores/abc123/v3/catalog/products",
        fx.gate.addr.port()
    );
    if let Ok(resp) = try_send(client(&fx.ca).get(&url).header("x-auth-token", READER.key)).await {
        // localhost may resolve to ::1 where nothing listens; only check a reply.
        assert_ok(&resp, "https://localhost");
    }
    // A client that does not trust the CA fails the handshake.
    let untrusted = client(&TestCa::new());
    assert!(
        try_send(
            untrusted
                .get(fx.gate.url("/stores/abc123/v3/catalog/products"))
                .header("x-auth-token", READER.key)
        )
        .await
        .is_err()
    );
}

#[tokio::test]
async fn h2c_prior_knowledge_is_served() {
    let fx = fixture();
    let resp = send(
        h2c_client()
            .get(fx.gate.url("/stores/abc123/v3/catalog/products"))
            .header("x-auth-token", READER.key),
    )
    .await;
    assert_ok(&resp, "h2c");
    assert_eq!(resp.version, http::Version::HTTP_2);
    let rec = fx.take_one();
    assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);
    assert_eq!(rec.host(), Some(fx.mock_host()));
    // h2c requests carry :authority, never a caller Host upstream.
    let resp = send(
        h2c_client()
            .get(fx.gate.url("/stores/abc123/v3/catalog/products"))
            .header("x-auth-token", READER.key)
            .header("cookie", "a=b"),
    )
    .await;
    assert_ok(&resp, "h2c cookie");
    let rec = fx.take_one();
    assert!(!rec.has_header("cookie"));
}

// ---------------------------------------------------------------------------
// Path tricks, smuggling, limits (DESIGN §2, §6)

fn raw_get(target: &str, key: &str) -> Vec<u8> {
    format!(
        "GET {target} HTTP/1.1\r\nHost: api.bigcommerce.com\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn path_tricks_are_rejected_before_any_decision() {
    let fx = fixture();
    for target in [
        "/stores/abc123/v3/catalog/../orders",
        "/stores/abc123/v3/catalog/products/../../../v2/orders",
        "/stores/abc123/v3/catalog/%2e%2e/orders",
        "/stores/abc123/v3/catalog/%2E%2E/orders",
        "/stores/abc123/v3/catalog%2fproducts",
        "/stores/abc123//v3/catalog/products",
        "/stores/def456/../abc123/v3/catalog/products",
        "/stores/abc123/v3/catalog/products;jsessionid=1",
        "/stores/abc123/v3/Catalog/Products",
        "/stores/abc123/./v3/catalog/products",
        "https://evil.example/stores/abc123/v3/catalog/products",
        "http://127.0.0.1:1/stores/abc123/v3/catalog/products",
    ] {
        let resp = raw_request(fx.gate.addr, &raw_get(target, READER.key));
        assert_eq!(resp.status, 400, "{target}: {}", resp.body_text());
        check_problem_body(&resp.json(), 400, "bad_request");
    }
    for method in ["TRACE", "CONNECT"] {
        let target = if method == "CONNECT" {
            "api.bigcommerce.com:443"
        } else {
            "/stores/abc123/v3/catalog/products"
        };
        let req = format!(
            "{method} {target} HTTP/1.1\r\nHost: api.bigcommerce.com\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            ADMIN.key
        );
        let resp = raw_request(fx.gate.addr, req.as_bytes());
        assert_eq!(resp.status, 400, "{method}: {}", resp.body_text());
    }
    fx.assert_not_forwarded("path tricks");
}

#[tokio::test]
async fn smuggling_shapes_are_rejected() {
    let fx = fixture();
    let head = |extra: &str| {
        format!(
            "POST /stores/abc123/v3/catalog/products HTTP/1.1\r\nHost: api.bigcommerce.com\r\n\
             X-Auth-Token: {}\r\nContent-Type: application/json\r\n{extra}Connection: close\r\n\r\n",
            ADMIN.key
        )
    };
    let mut failures = Vec::new();
    for (what, req) in [
        (
            "CL+TE",
            head("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n") + "2\r\n{}\r\n0\r\n\r\n",
        ),
        (
            "TE+CL",
            head("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n") + "2\r\n{}\r\n0\r\n\r\n",
        ),
        (
            "equal Content-Lengths",
            head("Content-Length: 2\r\nContent-Length: 2\r\n") + "{}",
        ),
        (
            "conflicting Content-Length",
            head("Content-Length: 2\r\nContent-Length: 3\r\n") + "{} ",
        ),
        (
            "unknown Transfer-Encoding",
            head("Transfer-Encoding: xchunked\r\n") + "2\r\n{}\r\n0\r\n\r\n",
        ),
        (
            "obs-fold",
            head("X-Folded: a\r\n  b\r\nContent-Length: 2\r\n") + "{}",
        ),
    ] {
        // Check every shape before failing, so one report lists them all.
        match raw_exchange(fx.gate.addr, req.as_bytes(), false) {
            Ok(resp) if resp.status == 400 && resp.json()["code"] == "bad_request" => {}
            Ok(resp) => failures.push(format!("{what}: {} {}", resp.status, resp.body_text())),
            Err(e) => failures.push(format!("{what}: no response ({e})")),
        }
        let reached: Vec<String> = fx
            .mock
            .requests()
            .iter()
            .map(|r| {
                format!(
                    "{what}: reached the upstream as {} {} CL={:?} TE={:?} body={:?}",
                    r.method,
                    r.uri,
                    r.header("content-length"),
                    r.header("transfer-encoding"),
                    String::from_utf8_lossy(&r.body)
                )
            })
            .collect();
        failures.extend(reached);
        fx.mock.clear();
    }
    assert!(
        failures.is_empty(),
        "smuggling shapes not rejected:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn oversized_headers_are_431() {
    let fx = fixture();
    let huge = format!(
        "GET /stores/abc123/v3/catalog/products HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {}\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        ADMIN.key,
        "a".repeat(1024 * 1024)
    );
    // Host, X-Auth-Token and Connection plus `extra` fields; the limit is 100.
    let with_fields = |extra: usize| {
        let fields: String = (0..extra).map(|i| format!("X-H{i}: v\r\n")).collect();
        format!(
            "GET /stores/abc123/v3/catalog/products HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {}\r\n{fields}Connection: close\r\n\r\n",
            ADMIN.key
        )
    };
    let at_limit = raw_exchange(fx.gate.addr, with_fields(97).as_bytes(), false).expect("response");
    assert_eq!(at_limit.status, 200, "100 fields: {}", at_limit.body_text());
    fx.mock.clear();
    for (what, req) in [
        ("one huge header", huge),
        ("101 fields", with_fields(98)),
        ("1000 fields", with_fields(997)),
    ] {
        match raw_exchange(fx.gate.addr, req.as_bytes(), false) {
            Ok(resp) => {
                assert_eq!(resp.status, 431, "{what}: {}", resp.body_text());
                check_problem_body(&resp.json(), 431, "headers_too_large");
            }
            Err(e) => panic!("{what}: no response ({e})"),
        }
    }
    fx.assert_not_forwarded("oversized headers");
}

// ---------------------------------------------------------------------------
// Secrets

#[tokio::test]
async fn no_token_or_key_in_logs_or_bodies() {
    let fx = fixture();
    let mut responses = Vec::new();
    responses.push(
        fx.get(
            "/stores/abc123/v3/catalog/products?secret_q=QSECRET-in-query-9x",
            &ADMIN,
        )
        .await,
    );
    responses.push(fx.get("/stores/def456/v3/catalog/products", &ADMIN).await);
    responses.push(fx.get("/stores/ghi789/v3/catalog/products", &ADMIN).await);
    responses.push(fx.get("/stores/abc123/v3/catalog/products", &READER).await);
    responses.push(
        fx.post_json("/stores/abc123/v3/catalog/products", &READER, "{}")
            .await,
    );
    responses.push(fx.get("/stores/def456/v3/catalog/products", &READER).await);
    responses.push(
        send(
            fx.http
                .get(fx.gate.url("/stores/abc123/v3/catalog/products"))
                .header("x-auth-token", BOGUS_KEY),
        )
        .await,
    );
    responses.push(
        send(
            fx.http
                .get(fx.gate.url("/stores/abc123/v3/catalog/products"))
                .bearer_auth(BOGUS_KEY),
        )
        .await,
    );
    responses.push(
        send(fx.http.get(fx.gate.url(&format!(
            "/stores/abc123/v3/catalog/products?access_token={BOGUS_KEY}"
        ))))
        .await,
    );
    responses.push(
        send(
            fx.req(Method::GET, "/stores/abc123/v3/catalog/products", &ADMIN)
                .header("x-auth-token", READER.key),
        )
        .await,
    );
    responses.push(
        fx.get("/stores/abc123/v3/catalog/products?mock_status=401", &ADMIN)
            .await,
    );
    responses.push(
        fx.post_json("/stores/abc123/graphql", &GQL_READ, "nonsense")
            .await,
    );
    for resp in &responses {
        assert_no_secret_in(resp, &format!("{} response", resp.status));
        assert!(!resp.text().contains(BOGUS_KEY));
    }
    let mut secrets = all_secrets();
    secrets.push("QSECRET-in-query-9x");
    fx.gate.assert_logs_free_of(&secrets);
    // The upstream never saw a caller key.
    for rec in fx.mock.requests() {
        for (name, value) in &rec.headers {
            let value = String::from_utf8_lossy(value);
            for c in CLIENTS {
                assert!(
                    !value.contains(c.key),
                    "a client key reached the upstream in {name}"
                );
            }
        }
        assert!(!String::from_utf8_lossy(&rec.body).contains(BOGUS_KEY));
    }
}

// ---------------------------------------------------------------------------
// More forwarding details

#[tokio::test]
async fn response_hop_by_hop_headers_are_removed() {
    let fx = fixture_with(Opts {
        mock_h1: true,
        ..Opts::default()
    });
    for (what, http) in [("h1", plain_client()), ("h2c", h2c_client())] {
        let resp = send(
            http.get(fx.gate.url("/stores/abc123/v3/catalog/products?mock_hop=1"))
                .header("x-auth-token", ADMIN.key),
        )
        .await;
        assert_ok(&resp, what);
        for name in ["x-mock-hop", "keep-alive", "proxy-authenticate"] {
            assert!(
                resp.header(name).is_none(),
                "{what}: response hop-by-hop header {name} must be removed"
            );
        }
        if let Some(conn) = resp.header("connection") {
            assert!(
                !conn.to_ascii_lowercase().contains("x-mock-hop"),
                "{what}: upstream Connection header forwarded: {conn}"
            );
        }
        assert_eq!(resp.header("x-mock-kept"), Some("kept-value"), "{what}");
        assert!(
            resp.header("x-rate-limit-requests-left").is_some(),
            "{what}"
        );
        assert_eq!(fx.take_one().version, http::Version::HTTP_11);
    }
}

#[tokio::test]
async fn config_keys_can_be_overridden_from_the_environment() {
    let fx = fixture_with(Opts {
        env: vec![("BCGATE__SERVER__MAX_BODY_BYTES", "1024".to_owned())],
        ..Opts::default()
    });
    let resp = send(
        fx.req(Method::POST, "/stores/abc123/v3/catalog/products", &ADMIN)
            .header("content-type", "application/json")
            .body(vec![b' '; 4096]),
    )
    .await;
    assert_problem(&resp, 413, "body_too_large");
    fx.assert_not_forwarded("env override of max_body_bytes");
    let resp = fx
        .post_json("/stores/abc123/v3/catalog/products", &ADMIN, "{}")
        .await;
    assert_ok(&resp, "small body");
}

#[tokio::test]
async fn body_limit_holds_over_h2c() {
    let limit: usize = 256 * 1024;
    let fx = fixture_with(Opts {
        max_body_bytes: limit as u64,
        ..Opts::default()
    });
    let big = noise(4 * limit, 11);
    let url = fx
        .gate
        .url("/stores/abc123/v3/catalog/products?mock_echo=1");
    // Known length
    let resp = send(
        h2c_client()
            .post(&url)
            .header("x-auth-token", ADMIN.key)
            .header("content-type", "application/octet-stream")
            .body(big.clone()),
    )
    .await;
    assert_problem(&resp, 413, "body_too_large");
    // Streamed, no length
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
    match try_send(
        h2c_client()
            .post(&url)
            .header("x-auth-token", ADMIN.key)
            .header("content-type", "application/octet-stream")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            ))),
    )
    .await
    {
        Ok(resp) => {
            assert_problem(&resp, 413, "body_too_large");
        }
        Err(e) => panic!("streamed over-limit body over h2c: no 413 response ({e})"),
    }
    for rec in fx.mock.requests() {
        assert!(
            !(rec.body_complete && rec.body.len() > limit),
            "a body over the limit reached the upstream whole"
        );
    }
}

#[tokio::test]
async fn a_stalled_body_is_408_for_streamed_and_inspected_bodies() {
    let fx = fixture_with(Opts {
        env: vec![("BCGATE__SERVER__BODY_READ_TIMEOUT_MS", "500".into())],
        ..Opts::default()
    });
    for path in [
        // Streamed straight through to the upstream.
        "/stores/abc123/v3/catalog/products",
        // Read whole first, for the GraphQL policy.
        "/stores/abc123/graphql",
    ] {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: api.bigcommerce.com\r\nX-Auth-Token: {}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a\"",
            ADMIN.key
        );
        let started = Instant::now();
        let resp = raw_exchange(fx.gate.addr, req.as_bytes(), false).expect("a response");
        assert_eq!(resp.status, 408, "{path}: {}", resp.body_text());
        check_problem_body(&resp.json(), 408, "body_timeout");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path}: answered after {:?}",
            started.elapsed()
        );
    }
    // bcgate keeps serving.
    let resp = fx.get("/stores/abc123/v3/catalog/products", &READER).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
}
