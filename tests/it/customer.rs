//! Customer login links and the current-customer check, answered by bcgate
//! itself: the real binary over TLS, the mock BigCommerce's clock and
//! storefront login access point as the other side. A link bcgate signs
//! logs a shopper in on the mock storefront; nothing it signs reaches its
//! logs or `/metrics`.

use crate::support;

use base64::Engine;
use bcgate_testkit::{customer_jwt, customer_jwt_claims, sign_hs256};
use reqwest::Method;
use serde_json::{Value, json};
use support::{Bcgate, MockBigCommerce, Resp, TestCa, assert_problem, key_sha256};

/// Channels 1 and 2, its own client id and secret.
const ABC: &str = "abc123";
/// Channel 1, its own client id and secret.
const DEF: &str = "def456";
/// Channel 1, no client id.
const JKL: &str = "jkl012";
const T_ABC: &str = "bc-store-token-abc123-Lg7Qw2Xe9Rt4";
const T_DEF: &str = "bc-store-token-def456-Vb3Nm8Kc1Zp6";
const T_JKL: &str = "bc-store-token-jkl012-Hd5Sf9Ga2Wy7";
const ABC_ID: &str = "bcgate-login-client-abc123";
const ABC_SECRET: &str = "bc-client-secret-abc123-Mq4Tz8Lw1Xs5";
const DEF_ID: &str = "bcgate-login-client-def456";
const DEF_SECRET: &str = "bc-client-secret-def456-Pj6Ry3Ck9Vn2";

/// `store_v2_customers_login` on every store, `abc123` by default.
const LOGIN_KEY: &str = "bcg-key-login-8Fh3Tk6Wq1Zm4Ld";
/// A products reader on `abc123` only.
const READER_KEY: &str = "bcg-key-reader-2Jx7Ns4Bv9Ce5Pa";
/// Learn mode, no login scope.
const LEARNER_KEY: &str = "bcg-key-learner-5Gd1Ry8Hm3Qk7Tw";
/// Allowed `def456` only.
const OUTSIDER_KEY: &str = "bcg-key-outsider-9Lc4Vp2Xz6Bn1Sj";

const SECRETS: [&str; 10] = [
    T_ABC,
    T_DEF,
    T_JKL,
    ABC_SECRET,
    DEF_SECRET,
    LOGIN_KEY,
    READER_KEY,
    LEARNER_KEY,
    OUTSIDER_KEY,
    // Never configured; a test signs with it.
    "not-the-client-secret-Yk2",
];

struct Fx {
    _ca: TestCa,
    mock: MockBigCommerce,
    gate: Bcgate,
    http: reqwest::Client,
}

fn fixture() -> Fx {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(ABC, T_ABC), (DEF, T_DEF), (JKL, T_JKL)]);
    mock.set_client_secret(ABC, ABC_ID, ABC_SECRET);
    mock.set_client_secret(DEF, DEF_ID, DEF_SECRET);
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    ca.write_leaf(dir.path(), "server", &["localhost", "127.0.0.1"]);
    let sf = |h: &str, c: u32| mock.storefront_origin(h, c);
    let config = format!(
        r#"[server]
listen = "127.0.0.1:0"
tls = {{ cert = "server.pem", key = "server.key" }}

[admin]
listen = "127.0.0.1:0"

[learn]
path = "observations.json"

[upstream]
base_url = "{base}"
ca_file = "ca.pem"
connect_timeout_ms = 3000
request_timeout_ms = 20000

[[stores]]
hash = "{ABC}"
token_env = "T_ABC"
client_id = "{ABC_ID}"
client_secret_env = "S_ABC"
channels = [{{ id = 1, origin = "{abc1}" }}, {{ id = 2, origin = "{abc2}" }}]

[[stores]]
hash = "{DEF}"
token_env = "T_DEF"
client_id = "{DEF_ID}"
client_secret_env = "S_DEF"
channels = [{{ id = 1, origin = "{def1}" }}]

[[stores]]
hash = "{JKL}"
token_env = "T_JKL"
channels = [{{ id = 1, origin = "{jkl1}" }}]

[[clients]]
name = "login"
key_sha256 = "{login}"
stores = ["{ABC}", "{DEF}", "{JKL}"]
default_store = "{ABC}"
scopes = ["store_v2_customers_login"]

[[clients]]
name = "reader"
key_sha256 = "{reader}"
stores = ["{ABC}", "{JKL}"]
scopes = ["store_v2_products_read_only"]

[[clients]]
name = "learner"
key_sha256 = "{learner}"
stores = ["*"]
scopes = ["store_v2_products_read_only"]
mode = "learn"

[[clients]]
name = "outsider"
key_sha256 = "{outsider}"
stores = ["{DEF}"]
scopes = ["store_v2_customers_login"]
"#,
        base = mock.base_url(),
        abc1 = sf(ABC, 1),
        abc2 = sf(ABC, 2),
        def1 = sf(DEF, 1),
        jkl1 = sf(JKL, 1),
        login = key_sha256(LOGIN_KEY),
        reader = key_sha256(READER_KEY),
        learner = key_sha256(LEARNER_KEY),
        outsider = key_sha256(OUTSIDER_KEY),
    );
    let env = [
        ("T_ABC", T_ABC),
        ("T_DEF", T_DEF),
        ("T_JKL", T_JKL),
        ("S_ABC", ABC_SECRET),
        ("S_DEF", DEF_SECRET),
        ("BCGATE_LOG", "debug"),
    ];
    let gate = Bcgate::start_in(dir, &config, &env);
    let http = support::client(&ca);
    Fx {
        _ca: ca,
        mock,
        gate,
        http,
    }
}

impl Fx {
    async fn post(&self, key: &str, path: &str, body: &Value) -> Resp {
        support::send(
            self.http
                .request(Method::POST, self.gate.url(path))
                .header("x-auth-token", key)
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    async fn link(&self, path: &str, body: &Value) -> (String, u64) {
        let resp = self.post(LOGIN_KEY, path, body).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(resp.header("cache-control"), Some("no-store"));
        let v = resp.json();
        let url = v["url"].as_str().expect("url").to_owned();
        (url, v["expires_at"].as_u64().expect("expires_at"))
    }

    /// Follows a login link as a shopper's browser would: status, Location, Set-Cookie.
    async fn follow(&self, url: &str) -> (u16, Option<String>, Option<String>) {
        let resp = self.http.get(url).send().await.expect("follow the link");
        let h = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        (resp.status().as_u16(), h("location"), h("set-cookie"))
    }

    fn time_calls(&self) -> usize {
        self.mock
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/v2/time"))
            .count()
    }

    /// No secret, link or JWT bcgate signed is in its logs or `/metrics`.
    fn assert_nothing_leaked(&self, signed: &[String]) {
        // A link and the JWT in it, and every token a test sent.
        let jwts: Vec<String> = signed.iter().map(|s| jwt_of(s)).collect();
        let mut all: Vec<&str> = SECRETS.to_vec();
        all.extend(signed.iter().chain(&jwts).map(String::as_str));
        self.gate.assert_logs_free_of(&all);
        let admin = self.gate.admin_addr().expect("admin address");
        let metrics = support::raw_request(
            admin,
            b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n",
        )
        .body_text();
        assert!(metrics.contains("bcgate_requests_total"));
        for s in &all {
            assert!(!metrics.contains(s), "a secret ({}…) in /metrics", &s[..6]);
        }
    }
}

fn jwt_of(url: &str) -> String {
    url.rsplit('/').next().expect("jwt").to_owned()
}

fn claims_of(url: &str) -> Value {
    let payload = jwt_of(url).split('.').nth(1).expect("payload").to_owned();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims")
}

#[tokio::test]
async fn a_login_link_logs_the_shopper_into_the_storefront() {
    let fx = fixture();
    // The request docs/request-path.md shows.
    let (url, expires_at) = fx
        .link(
            "/stores/abc123/customer-login",
            &json!({"customer_id": 42, "redirect_to": "/cart.php"}),
        )
        .await;
    let prefix = format!("{}/login/token/", fx.mock.storefront_origin(ABC, 1));
    assert!(url.starts_with(&prefix), "{url}");
    let c = claims_of(&url);
    assert_eq!(c["iss"], ABC_ID);
    assert_eq!(c["store_hash"], ABC);
    assert_eq!(c["operation"], "customer_login");
    assert_eq!(c["customer_id"], 42);
    assert_eq!(c["channel_id"], 1);
    let iat = c["iat"].as_u64().expect("iat");
    assert_eq!(expires_at, iat + 30);
    let (status, location, cookie) = fx.follow(&url).await;
    assert_eq!(status, 302);
    assert_eq!(location.as_deref(), Some("/cart.php"));
    assert!(cookie.is_some_and(|c| c.starts_with("SHOP_SESSION_TOKEN=")));
    // The link is good once, as BigCommerce's are.
    assert_eq!(fx.follow(&url).await.0, 401);

    // The default store, another channel: that channel's origin.
    let (url2, _) = fx
        .link(
            "/customer-login",
            &json!({"customer_id": 7, "channel_id": 2}),
        )
        .await;
    assert!(url2.starts_with(&format!(
        "{}/login/token/",
        fx.mock.storefront_origin(ABC, 2)
    )));
    let (status, location, _) = fx.follow(&url2).await;
    assert_eq!((status, location.as_deref()), (302, Some("/account.php")));

    // Another store signs with its own secret.
    let (url3, _) = fx
        .link("/stores/def456/customer-login", &json!({"customer_id": 9}))
        .await;
    assert_eq!(claims_of(&url3)["iss"], DEF_ID);
    assert_eq!(fx.follow(&url3).await.0, 302);

    let logins = fx.mock.logins();
    let who: Vec<(&str, u32, u64)> = logins
        .iter()
        .map(|l| (l.store.as_str(), l.channel, l.customer_id))
        .collect();
    assert_eq!(who, [(ABC, 1, 42), (ABC, 2, 7), (DEF, 1, 9)]);
    // BigCommerce's clock was read once per store, not once per link.
    assert_eq!(fx.time_calls(), 2);
    fx.assert_nothing_leaked(&[url, url2, url3]);
}

#[tokio::test]
async fn iat_follows_bigcommerce_s_clock_and_every_link_has_its_own_jti() {
    let fx = fixture();
    fx.mock.set_clock_offset(600);
    let mut urls = Vec::new();
    for _ in 0..3 {
        let (url, _) = fx.link("/customer-login", &json!({"customer_id": 5})).await;
        let iat = claims_of(&url)["iat"].as_i64().expect("iat");
        let bc = fx.mock.bc_time();
        assert!(iat <= bc && bc - iat <= 5, "iat {iat} vs BigCommerce {bc}");
        assert_eq!(
            fx.follow(&url).await.0,
            302,
            "accepted on BigCommerce's clock"
        );
        urls.push(url);
    }
    let mut jtis: Vec<String> = urls
        .iter()
        .map(|u| claims_of(u)["jti"].as_str().expect("jti").to_owned())
        .collect();
    jtis.sort();
    jtis.dedup();
    assert_eq!(jtis.len(), 3, "a fresh jti per link");
    fx.assert_nothing_leaked(&urls);
}

#[tokio::test]
async fn refusals_come_before_anything_is_signed() {
    let fx = fixture();
    let body = json!({"customer_id": 42});
    // No scope: 403, in learn mode too, and BigCommerce's clock is not asked.
    for key in [READER_KEY, LEARNER_KEY] {
        let resp = fx.post(key, "/stores/abc123/customer-login", &body).await;
        assert_problem(&resp, 403, "scope_denied");
    }
    let resp = fx
        .post(OUTSIDER_KEY, "/stores/abc123/customer-login", &body)
        .await;
    assert_problem(&resp, 403, "store_not_allowed");
    for bad in [
        json!({"customer_id": 42, "redirect_to": "https://evil.example/"}),
        json!({"customer_id": 42, "redirect_to": "//evil.example"}),
        json!({"customer_id": 42, "redirect_to": "/\\evil.example"}),
        json!({"customer_id": 42, "redirect_to": "/%2F%2Fevil.example"}),
        json!({"customer_id": 42, "redirect_to": "/a\tb"}),
        json!({"customer_id": "42"}),
        json!({"customer_id": 42, "extra": 1}),
        json!({"customer_id": 42, "request_ip": "nowhere"}),
    ] {
        let resp = fx
            .post(LOGIN_KEY, "/stores/abc123/customer-login", &bad)
            .await;
        assert_problem(&resp, 400, "bad_request");
    }
    let dup = support::send(
        fx.http
            .post(fx.gate.url("/customer-login"))
            .header("x-auth-token", LOGIN_KEY)
            .body(r#"{"customer_id": 1, "customer_id": 2}"#),
    )
    .await;
    assert_problem(&dup, 400, "bad_request");
    let resp = fx
        .post(
            LOGIN_KEY,
            "/customer-login",
            &json!({"customer_id": 1, "channel_id": 3}),
        )
        .await;
    assert_problem(&resp, 403, "channel_unknown");
    let resp = fx
        .post(LOGIN_KEY, "/stores/jkl012/customer-login", &body)
        .await;
    assert_problem(&resp, 403, "store_client_missing");
    let get = support::send(
        fx.http
            .get(fx.gate.url("/customer-login"))
            .header("x-auth-token", LOGIN_KEY),
    )
    .await;
    assert_problem(&get, 403, "route_unknown");
    let big = support::send(
        fx.http
            .post(fx.gate.url("/customer-login"))
            .header("x-auth-token", LOGIN_KEY)
            .body(format!(
                r#"{{"customer_id": 1, "redirect_to": "/{}"}}"#,
                "a".repeat(20_000)
            )),
    )
    .await;
    assert_problem(&big, 413, "body_too_large");
    assert_eq!(fx.time_calls(), 0, "nothing reached BigCommerce");
    assert!(fx.mock.logins().is_empty());
    fx.assert_nothing_leaked(&[]);
}

#[tokio::test]
async fn current_customer_names_the_shopper_of_a_valid_token_only() {
    let fx = fixture();
    let signed = |claims: &Value, secret: &str| sign_hs256(claims, secret);
    let for_store = |store: &str, id: &str, secret: &str, ttl: i64| {
        let mut c = customer_jwt_claims(id, 77, ttl);
        c["store_hash"] = json!(store);
        signed(&c, secret)
    };
    let good = for_store(ABC, ABC_ID, ABC_SECRET, 600);
    // The request docs/request-path.md shows; any client allowed the store, no scope.
    for key in [LOGIN_KEY, READER_KEY, LEARNER_KEY] {
        let resp = fx
            .post(
                key,
                "/stores/abc123/current-customer",
                &json!({"token": good}),
            )
            .await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(
            resp.json(),
            json!({"id": 77, "email": "customer77@example.com", "group_id": "0"})
        );
    }
    let none_alg = {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut c = customer_jwt_claims(ABC_ID, 77, 600);
        c["store_hash"] = json!(ABC);
        format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(c.to_string())
        )
    };
    let refused = [
        ("expired", for_store(ABC, ABC_ID, ABC_SECRET, -120)),
        (
            "wrong secret",
            for_store(ABC, ABC_ID, "not-the-client-secret-Yk2", 600),
        ),
        ("another client id", for_store(ABC, DEF_ID, ABC_SECRET, 600)),
        (
            "another store's token",
            for_store(DEF, DEF_ID, DEF_SECRET, 600),
        ),
        (
            "naming another store",
            for_store(DEF, ABC_ID, ABC_SECRET, 600),
        ),
        ("alg none", none_alg),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, token) in &refused {
        let resp = fx
            .post(
                READER_KEY,
                "/stores/abc123/current-customer",
                &json!({"token": token}),
            )
            .await;
        assert_eq!(resp.status, 401, "{what}: {}", resp.text());
        assert_problem(&resp, 401, "invalid_customer_token");
    }
    // A store without a client secret verifies nothing.
    let resp = fx
        .post(
            READER_KEY,
            "/stores/jkl012/current-customer",
            &json!({"token": customer_jwt(ABC_ID, ABC_SECRET, 77, 600)}),
        )
        .await;
    assert_problem(&resp, 401, "invalid_customer_token");
    // The store allowlist applies.
    let resp = fx
        .post(
            OUTSIDER_KEY,
            "/stores/abc123/current-customer",
            &json!({"token": good}),
        )
        .await;
    assert_problem(&resp, 403, "store_not_allowed");
    let resp = fx
        .post(
            READER_KEY,
            "/stores/abc123/current-customer",
            &json!({"jwt": good}),
        )
        .await;
    assert_problem(&resp, 400, "bad_request");
    assert!(
        fx.mock.requests().is_empty(),
        "answered without BigCommerce"
    );
    let mut sent: Vec<String> = refused.iter().map(|(_, t)| t.clone()).collect();
    sent.push(good);
    fx.assert_nothing_leaked(&sent);
}
