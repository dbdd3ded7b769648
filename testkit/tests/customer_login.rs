//! The storefront's customer login access point: a JWT signed as
//! BigCommerce documents it logs the shopper in once; every deviation is
//! refused.

use bcgate_testkit::ca::DevCa;
use bcgate_testkit::mock::{LOGIN_WINDOW_S, MockBigCommerce, SESSION_COOKIE};
use bcgate_testkit::sign_hs256;
use serde_json::{Value, json};

const HASH: &str = "abc123";
const OTHER: &str = "def456";
const CLIENT_ID: &str = "login-client-id";
const SECRET: &str = "login-client-secret-Zq8";

struct Fx {
    _ca: DevCa,
    mock: MockBigCommerce,
    http: reqwest::Client,
}

fn start() -> Fx {
    let ca = DevCa::new();
    let mock = MockBigCommerce::start(&ca, &[(HASH, "t-a"), (OTHER, "t-b")]);
    mock.set_client_secret(HASH, CLIENT_ID, SECRET);
    mock.set_client_secret(OTHER, "other-client", "other-secret");
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(ca.client_config(&[b"h2", b"http/1.1"]))
        .tls_built_in_root_certs(false)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("test client");
    Fx {
        _ca: ca,
        mock,
        http,
    }
}

fn claims(mock: &MockBigCommerce, jti: &str) -> Value {
    json!({
        "iss": CLIENT_ID,
        "iat": mock.bc_time(),
        "jti": jti,
        "operation": "customer_login",
        "store_hash": HASH,
        "customer_id": 42,
        "channel_id": 1,
    })
}

impl Fx {
    /// GET the login URL on `hash`'s channel 1; status, Location, Set-Cookie.
    async fn login(&self, hash: &str, jwt: &str) -> (u16, Option<String>, Option<String>) {
        let url = format!("{}/login/token/{jwt}", self.mock.storefront_origin(hash, 1));
        let resp = self.http.get(url).send().await.expect("login request");
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        (
            resp.status().as_u16(),
            header("location"),
            header("set-cookie"),
        )
    }
}

#[tokio::test]
async fn a_documented_login_jwt_logs_the_customer_in_once() {
    let fx = start();
    let jwt = sign_hs256(&claims(&fx.mock, "jti-1"), SECRET);
    let (status, location, cookie) = fx.login(HASH, &jwt).await;
    assert_eq!(status, 302);
    assert_eq!(location.as_deref(), Some("/account.php"));
    assert!(
        cookie.is_some_and(|c| c.starts_with(&format!("{SESSION_COOKIE}="))),
        "a session cookie"
    );
    let logins = fx.mock.logins();
    assert_eq!(logins.len(), 1);
    assert_eq!(
        (
            logins[0].store.as_str(),
            logins[0].channel,
            logins[0].customer_id
        ),
        (HASH, 1, 42)
    );
    // A JWT is good once.
    assert_eq!(fx.login(HASH, &jwt).await.0, 401);

    let mut c = claims(&fx.mock, "jti-2");
    c["redirect_to"] = json!("/cart.php?x=1");
    let (status, location, _) = fx.login(HASH, &sign_hs256(&c, SECRET)).await;
    assert_eq!((status, location.as_deref()), (302, Some("/cart.php?x=1")));
    assert_eq!(fx.mock.logins().len(), 2);
}

#[tokio::test]
async fn iat_is_judged_on_bigcommerce_s_clock() {
    let fx = start();
    fx.mock.set_clock_offset(600);
    let mut local = claims(&fx.mock, "jti-local");
    local["iat"] = json!(fx.mock.bc_time() - 600);
    assert_eq!(fx.login(HASH, &sign_hs256(&local, SECRET)).await.0, 401);
    let bc = claims(&fx.mock, "jti-bc");
    assert_eq!(fx.login(HASH, &sign_hs256(&bc, SECRET)).await.0, 302);
    let mut future = claims(&fx.mock, "jti-future");
    future["iat"] = json!(fx.mock.bc_time() + 5);
    assert_eq!(fx.login(HASH, &sign_hs256(&future, SECRET)).await.0, 401);
    let mut old = claims(&fx.mock, "jti-old");
    old["iat"] = json!(fx.mock.bc_time() - LOGIN_WINDOW_S - 2);
    assert_eq!(fx.login(HASH, &sign_hs256(&old, SECRET)).await.0, 401);
}

#[tokio::test]
async fn every_deviation_is_refused() {
    let fx = start();
    let refused: Vec<(&str, Value, &str, &str, u16)> = vec![
        ("wrong secret", json!({}), "not-the-secret", HASH, 401),
        ("another store's path", json!({}), SECRET, OTHER, 401),
        (
            "another store_hash",
            json!({"store_hash": OTHER}),
            SECRET,
            HASH,
            401,
        ),
        ("another iss", json!({"iss": "someone"}), SECRET, HASH, 401),
        (
            "operation",
            json!({"operation": "current_customer"}),
            SECRET,
            HASH,
            400,
        ),
        (
            "customer_id string",
            json!({"customer_id": "42"}),
            SECRET,
            HASH,
            400,
        ),
        (
            "another channel",
            json!({"channel_id": 2}),
            SECRET,
            HASH,
            400,
        ),
        ("no jti", json!({"jti": null}), SECRET, HASH, 400),
        (
            "absolute redirect",
            json!({"redirect_to": "https://evil.example/"}),
            SECRET,
            HASH,
            400,
        ),
        (
            "protocol-relative redirect",
            json!({"redirect_to": "//evil.example"}),
            SECRET,
            HASH,
            400,
        ),
    ];
    for (i, (what, change, secret, hash, want)) in refused.into_iter().enumerate() {
        let mut c = claims(&fx.mock, &format!("jti-{i}"));
        for (k, v) in change.as_object().expect("object") {
            c[k] = v.clone();
        }
        let (status, _, cookie) = fx.login(hash, &sign_hs256(&c, secret)).await;
        assert_eq!(status, want, "{what}");
        assert!(cookie.is_none(), "{what}: no session");
    }
    // alg none, unsigned.
    let none = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
        sign_hs256(&claims(&fx.mock, "jti-none"), SECRET)
            .split('.')
            .nth(1)
            .expect("payload")
    );
    assert_eq!(fx.login(HASH, &none).await.0, 401);
    assert_eq!(fx.login(HASH, "garbage").await.0, 401);
    assert!(fx.mock.logins().is_empty());
    // A store without a client secret logs nobody in.
    let ca = DevCa::new();
    let bare = MockBigCommerce::start(&ca, &[(HASH, "t")]);
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(ca.client_config(&[b"http/1.1"]))
        .tls_built_in_root_certs(false)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("client");
    let jwt = sign_hs256(&claims(&bare, "jti-bare"), SECRET);
    let url = format!("{}/login/token/{jwt}", bare.storefront_origin(HASH, 1));
    let status = http.get(url).send().await.expect("login").status();
    assert_eq!(status.as_u16(), 401);
}
