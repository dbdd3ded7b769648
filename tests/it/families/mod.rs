//! Every API family end to end: the real `bcgate` binary serving HTTPS with
//! the test CA, the mock BigCommerce as every host (api, payments, B2B
//! Edition, storefront channels, accounts), one module per family and one
//! for the security properties that cut across them.
//!
//! Dropping a fixture checks what must hold whatever a test did: no host got
//! another host's credential (the mock counts them), every request each host
//! got carries exactly its own credential, and no secret — store, account and
//! client-secret tokens, client keys, the customer JWTs callers sent, and
//! every token bcgate minted (read back from what the mock received) — is in
//! any response a test read, in bcgate's debug logs or in `/metrics`.

mod account;
mod b2b;
mod payments;
mod security;
mod storefront;

use crate::support;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::Value;
use support::mock::{B2B_PREFIX, PAYMENTS_PREFIX, STOREFRONT_PREFIX};
use support::{
    Bcgate, MockBigCommerce, Recorded, Resp, TestCa, assert_problem, key_sha256, secret_forms,
};

// ---------------------------------------------------------------------------
// Stores, accounts, clients

/// Alias `eu`; channels 1 and 2; a client id and secret for customer JWTs.
const ABC: &str = "abc123";
/// Channel 1 only; its own client id and secret.
const DEF: &str = "def456";
/// Channel 1's configured origin is the mock's channel 9 path: the
/// storefront refuses every token bcgate mints for it (a misconfigured or
/// misbehaving storefront).
const GHI: &str = "ghi789";
/// No channels, no client id.
const JKL: &str = "jkl012";

const T_ABC: &str = "bc-store-token-abc123-Fm4Qz8Wc1Ls7";
const T_DEF: &str = "bc-store-token-def456-Rb6Nv3Tx9Kd2";
const T_GHI: &str = "bc-store-token-ghi789-Pj2Hs5Ye8Ua4";
const T_JKL: &str = "bc-store-token-jkl012-Gw7Cm1Zn3Vo6";

const ABC_CLIENT_ID: &str = "bcgate-app-client-abc123";
const ABC_CLIENT_SECRET: &str = "bc-client-secret-abc123-Xk9Tq2Lm5Rw8";
const DEF_CLIENT_ID: &str = "bcgate-app-client-def456";
const DEF_CLIENT_SECRET: &str = "bc-client-secret-def456-Hz3Vb7Nc1Py4";

/// Listed by the account clients.
const ACC_A: &str = "0b6a4f2e-3c1d-4e5f-8a9b-0c1d2e3f4a5b";
/// Configured, listed only by [`ACCT_WRITE`].
const ACC_B: &str = "7d9e1f20-4a5b-4c6d-8e7f-901a2b3c4d5e";
/// Configured nowhere.
const ACC_UNKNOWN: &str = "11111111-2222-4333-8444-555555555555";
const T_ACC_A: &str = "bc-account-token-a-Jq5Wd8Xs2Ke6";
const T_ACC_B: &str = "bc-account-token-b-Mv4Rt9Gy1Lp3";

struct TestClient {
    name: &'static str,
    key: &'static str,
    stores: &'static str,
    default_store: Option<&'static str>,
    scopes: &'static str,
    accounts: &'static str,
}

const SF_ANON: TestClient = TestClient {
    name: "sf-anon",
    key: "bcg-key-sfanon-4Rk8Lq2Zx6Vm1Np9",
    stores: r#"["abc123", "def456", "ghi789", "jkl012"]"#,
    default_store: Some(ABC),
    scopes: r#"["storefront:Unauthenticated"]"#,
    accounts: "[]",
};
const SF_CUSTOMER: TestClient = TestClient {
    name: "sf-customer",
    key: "bcg-key-sfcust-7Ty3Hw9Qb2Jd5Ks8",
    stores: r#"["abc123", "def456", "ghi789"]"#,
    default_store: Some(ABC),
    scopes: r#"["storefront:Customer", "storefront:B2B"]"#,
    accounts: "[]",
};
const SF_IMP: TestClient = TestClient {
    name: "sf-impersonate",
    key: "bcg-key-sfimp-2Gc6Pn1Xv8Wr3Lh7",
    stores: r#"["abc123", "def456"]"#,
    default_store: Some(ABC),
    scopes: r#"["storefront:impersonate"]"#,
    accounts: "[]",
};
const B2B_READ: TestClient = TestClient {
    name: "b2b-reader",
    key: "bcg-key-b2bread-9Mf4Sd7Qa1Zk5Yt",
    stores: r#"["eu"]"#,
    default_store: Some(ABC),
    scopes: r#"["b2b:read"]"#,
    accounts: "[]",
};
const B2B_MODIFY: TestClient = TestClient {
    name: "b2b-modifier",
    key: "bcg-key-b2bmod-3Lx8Wn2Rc6Vh9Dq",
    stores: r#"["abc123", "def456"]"#,
    default_store: None,
    scopes: r#"["b2b:modify"]"#,
    accounts: "[]",
};
const PAYER: TestClient = TestClient {
    name: "payer",
    key: "bcg-key-payer-6Jv1Kt5Bn9Xe2Mw",
    stores: r#"["abc123", "def456"]"#,
    default_store: Some(ABC),
    scopes: r#"["store_payments_access_token_create"]"#,
    accounts: "[]",
};
const ACCT_READ: TestClient = TestClient {
    name: "account-reader",
    key: "bcg-key-acctread-8Qp3Zy6Hd1Fs4",
    stores: r#"["abc123"]"#,
    default_store: None,
    scopes: r#"["account_read"]"#,
    accounts: r#"["0b6a4f2e-3c1d-4e5f-8a9b-0c1d2e3f4a5b"]"#,
};
const ACCT_WRITE: TestClient = TestClient {
    name: "account-writer",
    key: "bcg-key-acctwrite-5Wn7Ck2Tg9Jr6",
    stores: r#"["abc123"]"#,
    default_store: None,
    scopes: r#"["account_users_write"]"#,
    accounts: r#"["0b6a4f2e-3c1d-4e5f-8a9b-0c1d2e3f4a5b", "7d9e1f20-4a5b-4c6d-8e7f-901a2b3c4d5e"]"#,
};
/// None of the families' grants: an api-family scope only.
const NOTHING: TestClient = TestClient {
    name: "nothing",
    key: "bcg-key-nothing-1Ds9Vf3Lb7Qm2",
    stores: r#"["*"]"#,
    default_store: Some(ABC),
    scopes: r#"["store_v2_products_read_only"]"#,
    accounts: "[]",
};

const CLIENTS: [&TestClient; 9] = [
    &SF_ANON,
    &SF_CUSTOMER,
    &SF_IMP,
    &B2B_READ,
    &B2B_MODIFY,
    &PAYER,
    &ACCT_READ,
    &ACCT_WRITE,
    &NOTHING,
];

/// Every configured secret and key.
fn configured_secrets() -> Vec<String> {
    let mut s: Vec<String> = [
        T_ABC,
        T_DEF,
        T_GHI,
        T_JKL,
        T_ACC_A,
        T_ACC_B,
        ABC_CLIENT_SECRET,
        DEF_CLIENT_SECRET,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    s.extend(CLIENTS.iter().map(|c| c.key.to_owned()));
    s
}

// ---------------------------------------------------------------------------
// Fixture

#[derive(Default)]
struct Opts {
    /// `[mint] token_lifetime_s, renew_before_s`.
    mint: Option<(u64, u64)>,
}

struct Fx {
    ca: TestCa,
    mock: MockBigCommerce,
    gate: Bcgate,
    /// HTTPS (h2 and http/1.1) trusting the test CA only.
    http: reqwest::Client,
    /// Every response a test read through [`Fx::send`] or [`Fx::keep`].
    seen: Mutex<Vec<Resp>>,
    /// Secrets a test sent besides the configured ones (customer JWTs).
    sent_secrets: Mutex<Vec<String>>,
}

impl Drop for Fx {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        self.check_invariants();
    }
}

fn config_toml(mock: &MockBigCommerce, o: &Opts) -> String {
    let mut clients = String::new();
    for c in CLIENTS {
        clients.push_str(&format!(
            "\n[[clients]]\nname = \"{}\"\nkey_sha256 = \"{}\"\nstores = {}\n{}scopes = {}\naccounts = {}\n",
            c.name,
            key_sha256(c.key),
            c.stores,
            c.default_store
                .map(|d| format!("default_store = \"{d}\"\n"))
                .unwrap_or_default(),
            c.scopes,
            c.accounts,
        ));
    }
    let mint = o
        .mint
        .map(|(lifetime, renew)| {
            format!("[mint]\ntoken_lifetime_s = {lifetime}\nrenew_before_s = {renew}\n")
        })
        .unwrap_or_default();
    let sf = |hash: &str, channel: u32| mock.storefront_origin(hash, channel);
    format!(
        r#"# bcgate integration-test config: every family
[server]
listen = "127.0.0.1:0"
tls = {{ cert = "server.pem", key = "server.key" }}

[admin]
listen = "127.0.0.1:0"

[upstream]
base_url = "{base}"
payments_url = "{payments}"
b2b_url = "{b2b}"
ca_file = "ca.pem"
connect_timeout_ms = 3000
request_timeout_ms = 30000

[[stores]]
hash = "{ABC}"
alias = "eu"
token_env = "BC_TOKEN_ABC123"
client_id = "{ABC_CLIENT_ID}"
client_secret_env = "BC_SECRET_ABC123"
channels = [{{ id = 1, origin = "{abc1}" }}, {{ id = 2, origin = "{abc2}" }}]

[[stores]]
hash = "{DEF}"
token_env = "BC_TOKEN_DEF456"
client_id = "{DEF_CLIENT_ID}"
client_secret_file = "def456.secret"
channels = [{{ id = 1, origin = "{def1}" }}]

[[stores]]
hash = "{GHI}"
token_env = "BC_TOKEN_GHI789"
channels = [{{ id = 1, origin = "{ghi9}" }}]

[[stores]]
hash = "{JKL}"
token_env = "BC_TOKEN_JKL012"

[[accounts]]
uuid = "{ACC_A}"
token_env = "BC_ACCOUNT_A"

[[accounts]]
uuid = "{ACC_B}"
token_file = "account-b.token"
{clients}
{mint}"#,
        base = mock.base_url(),
        payments = mock.payments_url(),
        b2b = mock.b2b_url(),
        abc1 = sf(ABC, 1),
        abc2 = sf(ABC, 2),
        def1 = sf(DEF, 1),
        ghi9 = sf(GHI, 9),
    )
}

fn fixture() -> Fx {
    fixture_with(Opts::default())
}

fn fixture_with(o: Opts) -> Fx {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(
        &ca,
        &[(ABC, T_ABC), (DEF, T_DEF), (GHI, T_GHI), (JKL, T_JKL)],
    );
    mock.add_account(ACC_A, T_ACC_A);
    mock.add_account(ACC_B, T_ACC_B);
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    ca.write_leaf(dir.path(), "server", &["localhost", "127.0.0.1"]);
    std::fs::write(dir.path().join("def456.secret"), DEF_CLIENT_SECRET).expect("write secret");
    std::fs::write(dir.path().join("account-b.token"), T_ACC_B).expect("write account token");
    let env = [
        ("BC_TOKEN_ABC123", T_ABC),
        ("BC_TOKEN_DEF456", T_DEF),
        ("BC_TOKEN_GHI789", T_GHI),
        ("BC_TOKEN_JKL012", T_JKL),
        ("BC_SECRET_ABC123", ABC_CLIENT_SECRET),
        ("BC_ACCOUNT_A", T_ACC_A),
        // Every fixture logs at debug level; dropping it reads the logs.
        ("BCGATE_LOG", "debug"),
    ];
    let gate = Bcgate::start_in(dir, &config_toml(&mock, &o), &env);
    assert_eq!(gate.scheme, "https", "bcgate serves TLS");
    let http = support::client(&ca);
    Fx {
        ca,
        mock,
        gate,
        http,
        seen: Mutex::new(Vec::new()),
        sent_secrets: Mutex::new(Vec::new()),
    }
}

/// A card payment as a caller sends it: odd spacing, a non-ASCII name and
/// key order that a re-serialization would change.
const CARD_BODY: &[u8] = "{ \"payment\" : {\"instrument\":{\"type\":\"card\",\
\"number\":\"4111111111111111\",\"cardholder_name\":\"Zoë Cardholder-Q7x\",\
\"expiry_month\":12,\"expiry_year\":2031,\"verification_value\":\"7373\"},\n  \
\"payment_method_id\":\"stripe.card\" ,\"save_instrument\":false}}"
    .as_bytes();
const CARD_NUMBER: &str = "4111111111111111";
const CARDHOLDER: &str = "Cardholder-Q7x";

/// The default GraphQL document a storefront test sends.
const SF_QUERY: &str = r#"{"query":"{ site { settings { storeName } } }"}"#;

impl Fx {
    /// A request with the client's key in `X-Auth-Token`.
    fn req(&self, method: Method, path: &str, who: &TestClient) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.gate.url(path))
            .header("x-auth-token", who.key)
    }

    /// Send, read the whole response and keep it for the final secret check.
    async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        self.keep(support::send(req).await)
    }

    fn keep(&self, resp: Resp) -> Resp {
        self.seen.lock().expect("seen").push(resp.clone());
        resp
    }

    /// A secret the test itself sent (a customer JWT), for the final checks.
    fn sent_secret(&self, secret: &str) {
        self.sent_secrets
            .lock()
            .expect("sent secrets")
            .push(secret.to_owned());
    }

    /// `POST /stores/{store}/storefront/graphql{query}` as `who`.
    fn storefront(&self, store: &str, query: &str, who: &TestClient) -> reqwest::RequestBuilder {
        self.req(
            Method::POST,
            &format!("/stores/{store}/storefront/graphql{query}"),
            who,
        )
        .header("content-type", "application/json")
        .body(SF_QUERY)
    }

    /// `POST /stores/{store}/payments` for `order` (none: no order header).
    fn pay(
        &self,
        store: &str,
        who: &TestClient,
        order: Option<&str>,
        body: &[u8],
    ) -> reqwest::RequestBuilder {
        let mut req = self
            .req(Method::POST, &format!("/stores/{store}/payments"), who)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(body.to_vec());
        if let Some(order) = order {
            req = req.header("x-bcgate-order-id", order);
        }
        req
    }

    /// The requests the mock got under `prefix` (a host's path prefix).
    fn at(&self, prefix: &str) -> Vec<Recorded> {
        self.mock
            .requests()
            .into_iter()
            .filter(|r| r.path.starts_with(prefix))
            .collect()
    }

    fn at_payments(&self) -> Vec<Recorded> {
        self.at(&format!("{PAYMENTS_PREFIX}/"))
    }

    fn at_storefronts(&self) -> Vec<Recorded> {
        self.at(&format!("{STOREFRONT_PREFIX}/"))
    }

    fn at_b2b(&self) -> Vec<Recorded> {
        self.at(&format!("{B2B_PREFIX}/"))
    }

    /// Every token bcgate minted and sent somewhere, as the hosts got it.
    fn minted_tokens(&self) -> Vec<String> {
        let mut tokens: Vec<String> = self
            .mock
            .requests()
            .iter()
            .filter(|r| {
                r.path.starts_with(PAYMENTS_PREFIX) || r.path.starts_with(STOREFRONT_PREFIX)
            })
            .flat_map(|r| r.header_all("authorization"))
            .filter_map(|v| {
                v.strip_prefix("PAT ")
                    .or_else(|| v.strip_prefix("Bearer "))
                    .map(str::to_owned)
            })
            .collect();
        tokens.sort();
        tokens.dedup();
        tokens
    }

    /// Every secret that must never leave bcgate, in every form it could leak in.
    fn all_secret_forms(&self) -> Vec<String> {
        let mut secrets = configured_secrets();
        secrets.extend(self.minted_tokens());
        secrets.extend(
            self.sent_secrets
                .lock()
                .expect("sent secrets")
                .iter()
                .cloned(),
        );
        secrets.iter().flat_map(|s| secret_forms(s)).collect()
    }

    fn metrics(&self) -> String {
        let admin = self.gate.admin_addr().expect("admin address");
        let resp = support::raw_request(
            admin,
            b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(resp.status, 200);
        resp.body_text()
    }

    /// What must hold after any test (see the module docs).
    fn check_invariants(&self) {
        let stats = self.mock.stats();
        assert_eq!(
            stats.foreign_credentials, 0,
            "a host got another host's credential"
        );
        for rec in self.mock.requests() {
            check_credentials(&rec);
        }
        let forms = self.all_secret_forms();
        for resp in self.seen.lock().expect("seen").iter() {
            let text = resp.text();
            let headers = format!("{:?}", resp.headers);
            for form in &forms {
                assert!(
                    !text.contains(form.as_str()) && !headers.contains(form.as_str()),
                    "a secret ({}…) is in a {} response",
                    &form[..form.len().min(8)],
                    resp.status
                );
            }
        }
        let refs: Vec<&str> = forms.iter().map(String::as_str).collect();
        self.gate.assert_logs_free_of(&refs);
        let metrics = self.metrics();
        assert!(metrics.contains("bcgate_requests_total"), "{metrics}");
        for form in &forms {
            assert!(
                !metrics.contains(form.as_str()),
                "a secret ({}…) is in /metrics",
                &form[..form.len().min(8)]
            );
        }
    }
}

/// The store token of `hash`, as configured.
fn store_token(hash: &str) -> Option<&'static str> {
    match hash {
        ABC => Some(T_ABC),
        DEF => Some(T_DEF),
        GHI => Some(T_GHI),
        JKL => Some(T_JKL),
        _ => None,
    }
}

/// Each host got exactly its own credential, and nothing a caller sent to
/// identify itself.
fn check_credentials(rec: &Recorded) {
    let path = rec.path.as_str();
    let what = format!("{} {}", rec.method, rec.uri);
    let auth = rec.header_all("authorization");
    let x_auth = rec.header_all("x-auth-token");
    for (name, value) in &rec.headers {
        let value = String::from_utf8_lossy(value);
        for c in CLIENTS {
            assert!(
                !value.contains(c.key),
                "{what}: a client key reached the mock in {name}"
            );
        }
        assert!(
            !value.contains(ABC_CLIENT_SECRET) && !value.contains(DEF_CLIENT_SECRET),
            "{what}: a client secret reached the mock in {name}"
        );
    }
    assert!(!rec.has_header("cookie"), "{what}: a cookie went upstream");
    assert!(
        !rec.has_header("x-bcgate-customer-token") && !rec.has_header("x-bcgate-order-id"),
        "{what}: a bcgate request header went upstream"
    );
    if let Some(rest) = path.strip_prefix(PAYMENTS_PREFIX) {
        assert!(
            x_auth.is_empty(),
            "{what}: X-Auth-Token at the payments host"
        );
        assert_eq!(auth.len(), 1, "{what}: one Authorization");
        let pat = auth[0]
            .strip_prefix("PAT ")
            .unwrap_or_else(|| panic!("{what}: Authorization is not a PAT"));
        let claims = minted_claims(pat);
        assert_eq!(claims["kind"], "pat", "{what}");
        let store = rest
            .strip_prefix("/stores/")
            .and_then(|r| r.split('/').next());
        assert_eq!(
            claims["store_hash"].as_str(),
            store,
            "{what}: another store's PAT"
        );
    } else if let Some(rest) = path.strip_prefix(STOREFRONT_PREFIX) {
        assert!(x_auth.is_empty(), "{what}: X-Auth-Token at a storefront");
        assert!(!rec.has_header("x-store-hash"), "{what}");
        assert_eq!(auth.len(), 1, "{what}: one Authorization");
        let token = auth[0]
            .strip_prefix("Bearer ")
            .unwrap_or_else(|| panic!("{what}: Authorization is not a Bearer token"));
        let claims = minted_claims(token);
        let mut parts = rest.trim_start_matches('/').split('/');
        let (hash, channel) = (parts.next(), parts.next());
        assert_eq!(
            claims["store_hash"].as_str(),
            hash,
            "{what}: another store's token"
        );
        let kind = claims["kind"].as_str().unwrap_or_default();
        assert!(
            kind == "private" || kind == "impersonation",
            "{what}: a {kind} token at a storefront"
        );
        // GHI's channel 1 is configured on the mock's channel 9 path.
        let channel: u32 = match (hash, channel) {
            (Some(GHI), _) => 1,
            (_, Some(c)) => c.parse().expect("channel in the storefront path"),
            _ => panic!("{what}: no channel in the path"),
        };
        assert!(
            claims["channel_ids"]
                .as_array()
                .is_some_and(|ids| ids == &vec![Value::from(channel)]),
            "{what}: a token for channels {} sent to channel {channel}",
            claims["channel_ids"]
        );
        let customer = rec.header_all("x-bc-customer-id");
        if kind == "impersonation" {
            assert_eq!(customer.len(), 1, "{what}: one customer");
        } else {
            assert!(
                customer.is_empty(),
                "{what}: a customer with a private token"
            );
        }
    } else if path.starts_with(B2B_PREFIX) {
        assert!(auth.is_empty(), "{what}: Authorization at the B2B host");
        assert!(
            !rec.has_header("authtoken"),
            "{what}: authToken at the B2B host"
        );
        let hashes = rec.header_all("x-store-hash");
        assert_eq!(hashes.len(), 1, "{what}: one X-Store-Hash");
        let token = store_token(&hashes[0]).unwrap_or_else(|| panic!("{what}: unknown store"));
        assert_eq!(
            x_auth,
            vec![token.to_owned()],
            "{what}: the store's own token"
        );
    } else if let Some(hash) = rec.store() {
        // The api host: a store path (minting included) with its own token.
        assert!(auth.is_empty(), "{what}: Authorization at the api host");
        let token = store_token(hash).unwrap_or_else(|| panic!("{what}: unknown store"));
        assert_eq!(
            x_auth,
            vec![token.to_owned()],
            "{what}: the store's own token"
        );
    } else if let Some(rest) = path.strip_prefix("/accounts/") {
        assert!(auth.is_empty(), "{what}: Authorization at the api host");
        let uuid = rest.split('/').next().unwrap_or_default();
        let token = match uuid {
            ACC_A => T_ACC_A,
            ACC_B => T_ACC_B,
            other => panic!("{what}: an unconfigured account {other} reached the mock"),
        };
        assert_eq!(
            x_auth,
            vec![token.to_owned()],
            "{what}: the account's token"
        );
    } else {
        panic!("{what}: a path on no host");
    }
}

/// The `data` claims of a token the mock minted (a JWT signed with the
/// mock's key; read here without checking the signature).
fn minted_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .unwrap_or_else(|| panic!("not a token the mock minted"));
    payload["data"].clone()
}

/// The `data.mock` object a storefront answers (what its token carried).
fn storefront_echo(resp: &Resp) -> Value {
    assert_eq!(resp.status, 200, "storefront answer: {}", resp.text());
    let body = resp.json();
    body["data"]["mock"].clone()
}

// ---------------------------------------------------------------------------
// Raw HTTP/1.1 over TLS, for request targets and headers no client library
// lets a caller choose.

/// A response read off a raw TLS connection.
struct TlsResponse {
    status: u16,
    body: Vec<u8>,
}

impl TlsResponse {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Sends `request` verbatim to bcgate over TLS (HTTP/1.1) and reads the
/// response until the server closes (send `Connection: close`).
fn tls_exchange(fx: &Fx, request: &[u8]) -> TlsResponse {
    let config = Arc::new(fx.ca.client_config(&[b"http/1.1"]));
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("server name");
    let conn = rustls::ClientConnection::new(config, name).expect("TLS client");
    let tcp = std::net::TcpStream::connect(fx.gate.addr).expect("connect to bcgate");
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("read timeout");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(request).expect("write request");
    tls.flush().expect("flush request");
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match tls.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            // A peer that closes without close_notify still said everything.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!(
                "read response: {e}; got {:?}",
                String::from_utf8_lossy(&raw)
            ),
        }
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> TlsResponse {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else if let Some((_, len)) = headers.iter().find(|(n, _)| n == "content-length") {
        let len: usize = len.parse().expect("content-length");
        rest[..len.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    TlsResponse { status, body }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(pos) = rest.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[..pos]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        rest = &rest[pos + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[(size + 2).min(rest.len())..];
    }
    body
}
