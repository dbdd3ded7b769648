//! The app install flow (issue: "the only place a store token ever exists
//! is inside bcgate"): BigCommerce's `/auth` callback, bcgate's own code
//! exchange at a mock login server (HTTPS, test CA), the token in the
//! encrypted token store and at once in proxied requests to the mock
//! BigCommerce, the signed-payload callbacks (`/load`, `/uninstall`,
//! `/remove_user`) verified strictly, `store_uninstalled`, and `bcgate
//! tokens`. Real processes, real sockets, real TLS.

use crate::support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use support::login::{MockLogin, grant_json};
use support::{Bcgate, MockBigCommerce, TestCa, assert_problem, key_sha256, plain_client, send};

const STORE: &str = "inst42store";
/// A store in `[[stores]]` that also installs the app (config wins).
const CFG_STORE: &str = "cfgstore9";
const CFG_TOKEN: &str = "bc-config-token-cfgstore9-Hq2Lr8Vn";
const TOKEN1: &str = "bc-installed-token-ONE-z7Qm3Wp9Kd";
const TOKEN2: &str = "bc-installed-token-TWO-r4Xs8Ln2Fb";
const CODE: &str = "authcode-secret-Yv6Tg1Ne5Ja";
const SECRET: &str = "client-secret-Gp3Dk9Wm2Rq7";
const CLIENT_ID: &str = "bcgate-test-client-id";
const STORE_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY: &str = "bcg-key-app-svc-8Jd3Kw1Zp5";
const PUBLIC_URL: &str = "https://bcgate.example.com";
const SCOPES: &[&str] = &["store_v2_products", "store_v2_orders_read_only"];

// ---------------------------------------------------------------- fixture

struct Fx {
    ca: TestCa,
    mock: MockBigCommerce,
    login: MockLogin,
    gate: Bcgate,
    app: String,
    /// Extra secrets this test put into play, checked against the logs.
    secrets: Vec<String>,
}

fn config(mock_url: &str, login_url: &str) -> String {
    let app = support::app_section(&format!("{PUBLIC_URL}/"), CLIENT_ID, SCOPES, login_url);
    let base = support::base_config(mock_url, 4000);
    format!(
        r#"
{base}
[[stores]]
hash = "{CFG_STORE}"
token_file = "cfg.token"

[[clients]]
name = "svc"
key_sha256 = "{key}"
stores = ["*"]
scopes = ["store_v2_products", "store_v2_orders_read_only", "store_v2_customers_read_only"]

[[clients]]
name = "pinned"
key_sha256 = "{pinned}"
stores = ["{STORE}"]
default_store = "{STORE}"
scopes = ["store_v2_products_read_only"]

{app}
[token_store]
kind = "file"
path = "tokens.enc"
key_env = "BCGATE_STORE_KEY"
"#,
        key = key_sha256(KEY),
        pinned = key_sha256(PINNED_KEY),
    )
}

const PINNED_KEY: &str = "bcg-key-app-pinned-2Wc7Hb4Lx0";

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("BC_CLIENT_SECRET", SECRET),
        ("BCGATE_STORE_KEY", STORE_KEY),
        ("BCGATE_LOG", "info,bcgate=debug"),
    ]
}

fn start() -> Fx {
    start_with(None)
}

/// With `login_ca`, the mock login server's certificate comes from that CA
/// instead of the one bcgate trusts.
fn start_with(login_ca: Option<&TestCa>) -> Fx {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN1), (CFG_STORE, CFG_TOKEN)]);
    let login = MockLogin::start(login_ca.unwrap_or(&ca));
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    ca.write_leaf(dir.path(), "app", &["127.0.0.1"]);
    std::fs::write(dir.path().join("cfg.token"), CFG_TOKEN).expect("write token");
    let gate = Bcgate::start_in(dir, &config(&mock.base_url(), &login.base_url()), &env());
    let line = "bcgate: app callbacks listening on ";
    let logs = gate.logs();
    let app = logs
        .lines()
        .find_map(|l| l.trim().strip_prefix(line))
        .unwrap_or_else(|| panic!("no app listening line:\n{logs}"))
        .to_owned();
    assert!(app.starts_with("https://"), "{app}");
    Fx {
        ca,
        mock,
        login,
        gate,
        app,
        secrets: Vec::new(),
    }
}

impl Drop for Fx {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let mut all: Vec<&str> = vec![
                TOKEN1, TOKEN2, CFG_TOKEN, CODE, SECRET, KEY, PINNED_KEY, STORE_KEY,
            ];
            all.extend(self.secrets.iter().map(String::as_str));
            self.gate.assert_logs_free_of(&all);
        }
    }
}

impl Fx {
    async fn callback(&self, path_and_query: &str) -> support::Resp {
        send(support::client(&self.ca).get(format!("{}{path_and_query}", self.app))).await
    }

    async fn install(&self, code: &str) -> support::Resp {
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("code", code)
            .append_pair("scope", &SCOPES.join(" "))
            .append_pair("context", &format!("stores/{STORE}"))
            .append_pair("account_uuid", "a7b1c3d4-0000-4000-8000-000000000001")
            .finish();
        self.callback(&format!("/auth?{q}")).await
    }

    async fn signed(&mut self, path: &str, jwt: String) -> support::Resp {
        if !jwt.is_empty() {
            self.secrets.push(jwt.clone());
        }
        self.callback(&format!("{path}?signed_payload_jwt={jwt}"))
            .await
    }

    async fn proxied(&self, key: &str, path: &str) -> support::Resp {
        send(
            plain_client()
                .get(self.gate.url(path))
                .header("X-Auth-Token", key),
        )
        .await
    }

    async fn products(&self, store: &str) -> support::Resp {
        self.proxied(KEY, &format!("/stores/{store}/v3/catalog/products"))
            .await
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        let cfg = self
            .gate
            .config_path()
            .to_str()
            .expect("utf-8 path")
            .to_owned();
        let mut full = args.to_vec();
        full.extend(["--config", cfg.as_str()]);
        Bcgate::run_cli_in(self.gate.dir(), &full, &env())
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn claims(sub: &str, aud: &str, iss: &str, nbf: u64, exp: u64) -> serde_json::Value {
    serde_json::json!({
        "aud": aud, "iss": iss, "iat": nbf, "nbf": nbf, "exp": exp,
        "jti": "e0d7c1b5-0000-4000-8000-000000000002",
        "sub": sub,
        "user": {"id": 9876543, "email": "user@example.com", "locale": "en-US"},
        "owner": {"id": 7654321, "email": "owner@example.com"},
        "url": "/", "channel_id": null
    })
}

fn jwt_with(alg: jsonwebtoken::Algorithm, secret: &str, claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode jwt")
}

fn good_jwt(hash: &str) -> String {
    let n = now();
    jwt_with(
        jsonwebtoken::Algorithm::HS256,
        SECRET,
        &claims(&format!("stores/{hash}"), CLIENT_ID, "bc", n - 5, n + 600),
    )
}

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

fn text_has(resp: &support::Resp, needles: &[&str]) {
    let text = resp.text();
    for n in needles {
        assert!(
            text.contains(n),
            "{n:?} not in the {} page:\n{text}",
            resp.status
        );
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_then_proxy_then_uninstall() {
    let mut fx = start();
    // Not installed yet: the store is unknown.
    assert_problem(&fx.products(STORE).await, 404, "store_unknown");

    fx.login.grant(STORE, TOKEN1, &SCOPES.join(" "));
    let page = fx.install(CODE).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(
        page.header("content-type")
            .unwrap_or("")
            .starts_with("text/html")
    );
    text_has(
        &page,
        &[
            "App installed",
            STORE,
            "store_v2_products",
            "installer@example.com",
        ],
    );
    assert!(!page.text().contains(TOKEN1) && !page.text().contains(CODE));

    // bcgate exchanged the code itself, with every field BigCommerce needs.
    let forms = fx.login.forms();
    assert_eq!(forms.len(), 1);
    let f = &forms[0];
    for (k, v) in [
        ("client_id", CLIENT_ID),
        ("client_secret", SECRET),
        ("code", CODE),
        ("scope", &SCOPES.join(" ")),
        ("context", &format!("stores/{STORE}")),
        ("grant_type", "authorization_code"),
        ("redirect_uri", &format!("{PUBLIC_URL}/auth")),
    ] {
        assert_eq!(
            f.get(k).map(String::as_str),
            Some(v),
            "form field {k}: {f:?}"
        );
    }
    assert_eq!(
        fx.login.state.paths.lock().expect("lock")[0],
        "/oauth2/token"
    );

    // /readyz counts it.
    let (_, check) = support::ready_check(&fx.gate, "token_store");
    let check = check.expect("a token_store check");
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(check["detail"], "1 installed", "{check}");

    // The token is encrypted at rest.
    let file = std::fs::read(fx.gate.dir().join("tokens.enc")).expect("token store written");
    assert!(!String::from_utf8_lossy(&file).contains(TOKEN1));

    // At once, proxied requests for the store carry the installed token.
    fx.mock.clear();
    let r = fx.products(STORE).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(fx.mock.only_request().tokens(), vec![TOKEN1.to_string()]);
    // A client pinned to the (installable) hash, via its default store too.
    fx.mock.clear();
    let r = fx.proxied(PINNED_KEY, "/v3/catalog/products").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(fx.mock.only_request().store(), Some(STORE));
    // The granted scopes are known: a route none of them grants is refused
    // by bcgate itself, before BigCommerce.
    fx.mock.clear();
    let r = fx
        .proxied(KEY, &format!("/stores/{STORE}/v2/customers"))
        .await;
    let body = assert_problem(&r, 403, "scope_denied");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("the token of store '{STORE}'")),
        "{body}"
    );
    assert!(fx.mock.requests().is_empty());

    // /load and /remove_user: pages, no change.
    let r = fx.signed("/load", good_jwt(STORE)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    text_has(&r, &[STORE]);
    let r = fx.signed("/remove_user", good_jwt(STORE)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(fx.products(STORE).await.status, 200);

    // /uninstall: the token is gone at once.
    let r = fx.signed("/uninstall", good_jwt(STORE)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    text_has(&r, &["App uninstalled", STORE]);
    fx.mock.clear();
    let r = fx.products(STORE).await;
    let body = assert_problem(&r, 403, "store_uninstalled");
    assert!(
        body["detail"].as_str().unwrap_or("").contains(STORE),
        "{body}"
    );
    assert!(fx.mock.requests().is_empty(), "nothing reaches BigCommerce");
    // Repeated: idempotent.
    let r = fx.signed("/uninstall", good_jwt(STORE)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = fx.cli(&["tokens", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains(STORE), "{text}");

    // Installing again brings the store back.
    fx.login.grant(STORE, TOKEN1, &SCOPES.join(" "));
    assert_eq!(fx.install(CODE).await.status, 200);
    assert_eq!(fx.products(STORE).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reinstall_replaces_the_token_and_repeats_are_idempotent() {
    let fx = start();
    fx.login.grant(STORE, TOKEN1, &SCOPES.join(" "));
    assert_eq!(fx.install(CODE).await.status, 200);
    assert_eq!(
        fx.install(CODE).await.status,
        200,
        "the same callback again"
    );
    fx.mock.clear();
    assert_eq!(fx.products(STORE).await.status, 200);
    assert_eq!(fx.mock.only_request().tokens(), vec![TOKEN1.to_string()]);

    // Scopes in another order are the same set.
    let reordered: Vec<&str> = SCOPES.iter().rev().copied().collect();
    fx.login.grant(STORE, TOKEN2, &reordered.join(" "));
    let page = fx.install("second-code-Hv5Pq2").await;
    assert_eq!(page.status, 200, "{}", page.text());
    fx.mock.clear();
    let _ = fx.products(STORE).await;
    assert_eq!(
        fx.mock.only_request().tokens(),
        vec![TOKEN2.to_string()],
        "the new token replaced the old one"
    );
    let out = fx.cli(&["tokens", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches(STORE).count(), 1, "{text}");

    // The callback repeated with its (now used) code: refused by the login
    // server, and the install stands.
    fx.login.answer(
        400,
        r#"{"error":"The authorization code is invalid"}"#.into(),
    );
    let page = fx.install("second-code-Hv5Pq2").await;
    assert_eq!(page.status, 502, "{}", page.text());
    text_has(&page, &["is installed already", "that install stands"]);
    fx.mock.clear();
    // (The mock BigCommerce knows only TOKEN1, so it answers 401 itself.)
    let _ = fx.products(STORE).await;
    assert_eq!(fx.mock.only_request().tokens(), vec![TOKEN2.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_mismatch_is_refused_and_stores_nothing() {
    let fx = start();
    // One configured scope missing, one unexpected scope granted.
    fx.login
        .grant(STORE, TOKEN1, "store_v2_products store_v2_customers");
    let page = fx.install(CODE).await;
    assert_eq!(page.status, 403, "{}", page.text());
    text_has(
        &page,
        &[
            "Not installed",
            "not granted: store_v2_orders_read_only",
            "granted but not in app.scopes: store_v2_customers",
            "Nothing was stored",
        ],
    );
    assert!(!page.text().contains(TOKEN1));
    assert_problem(&fx.products(STORE).await, 404, "store_unknown");
    let out = fx.cli(&["tokens", "list"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains(STORE));
    assert!(
        !fx.gate.dir().join("tokens.enc").exists(),
        "the token store file was never written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_that_fails_to_exchange_stores_nothing() {
    let fx = start();
    for status in [400, 401] {
        fx.login
            .answer(status, r#"{"error":"Invalid grant: code expired"}"#.into());
        let page = fx.install(CODE).await;
        assert_eq!(page.status, 502, "{}", page.text());
        text_has(
            &page,
            &[
                "Not installed",
                "could not be exchanged",
                &format!("HTTP {status}"),
                "Nothing was stored",
            ],
        );
        assert!(!page.text().contains(CODE));
    }
    // A 200 that is not a grant, and one without a usable context.
    fx.login.answer(200, "not json".into());
    assert_eq!(fx.install(CODE).await.status, 502);
    fx.login
        .answer(200, grant_json("BAD/HASH", TOKEN1, &SCOPES.join(" ")));
    assert_eq!(fx.install(CODE).await.status, 502);
    // No code at all: nothing is exchanged.
    let before = fx.login.forms().len();
    let r = fx.callback(&format!("/auth?context=stores/{STORE}")).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(fx.login.forms().len(), before);
    assert_problem(&fx.products(STORE).await, 404, "store_unknown");
    assert!(!fx.gate.dir().join("tokens.enc").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_server_outside_the_trusted_roots_gets_no_secret() {
    let stranger = TestCa::new();
    let fx = start_with(Some(&stranger));
    fx.login.grant(STORE, TOKEN1, &SCOPES.join(" "));
    let page = fx.install(CODE).await;
    assert_eq!(page.status, 502, "{}", page.text());
    text_has(&page, &["could not be reached", "Nothing was stored"]);
    assert!(
        fx.login.forms().is_empty(),
        "the TLS handshake failed before any form was sent"
    );
    assert_problem(&fx.products(STORE).await, 404, "store_unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_payloads_are_verified_strictly() {
    let mut fx = start();
    fx.login.grant(STORE, TOKEN1, &SCOPES.join(" "));
    assert_eq!(fx.install(CODE).await.status, 200);
    let n = now();
    let sub = format!("stores/{STORE}");
    let hs = jsonwebtoken::Algorithm::HS256;
    let ok_claims = claims(&sub, CLIENT_ID, "bc", n - 5, n + 600);
    let none_jwt = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(ok_claims.to_string().as_bytes())
    );
    // A valid signature with the header changed to `none` afterwards.
    let good = jwt_with(hs, SECRET, &ok_claims);
    let sig = good.rsplit('.').next().expect("signature").to_owned();
    let none_signed = format!("{none_jwt}{sig}");
    let bad: Vec<(&str, String)> = vec![
        ("bad signature", jwt_with(hs, "not-the-secret", &ok_claims)),
        (
            "expired",
            jwt_with(hs, SECRET, &claims(&sub, CLIENT_ID, "bc", n - 900, n - 300)),
        ),
        (
            "not yet valid",
            jwt_with(
                hs,
                SECRET,
                &claims(&sub, CLIENT_ID, "bc", n + 600, n + 1200),
            ),
        ),
        (
            "wrong audience",
            jwt_with(
                hs,
                SECRET,
                &claims(&sub, "another-app", "bc", n - 5, n + 600),
            ),
        ),
        (
            "wrong issuer",
            jwt_with(hs, SECRET, &claims(&sub, CLIENT_ID, "evil", n - 5, n + 600)),
        ),
        (
            "sub without stores/",
            jwt_with(hs, SECRET, &claims(STORE, CLIENT_ID, "bc", n - 5, n + 600)),
        ),
        (
            "sub of another shape",
            jwt_with(
                hs,
                SECRET,
                &claims(&format!("store/{STORE}"), CLIENT_ID, "bc", n - 5, n + 600),
            ),
        ),
        (
            "sub with a bad hash",
            jwt_with(
                hs,
                SECRET,
                &claims("stores/ABC/../x", CLIENT_ID, "bc", n - 5, n + 600),
            ),
        ),
        ("alg none", none_jwt),
        ("alg none with a signature", none_signed),
        (
            "HS512",
            jwt_with(jsonwebtoken::Algorithm::HS512, SECRET, &ok_claims),
        ),
        (
            "HS384",
            jwt_with(jsonwebtoken::Algorithm::HS384, SECRET, &ok_claims),
        ),
        ("garbage", "not.a.jwt".into()),
        ("empty", String::new()),
    ];
    for path in ["/uninstall", "/load", "/remove_user"] {
        for (what, jwt) in &bad {
            let r = fx.signed(path, jwt.clone()).await;
            assert_eq!(r.status, 401, "{path} with {what}: {}", r.text());
            text_has(&r, &["Signed payload refused", "Nothing was changed"]);
        }
        let r = fx.callback(path).await;
        assert_eq!(r.status, 401, "{path} without a payload: {}", r.text());
    }
    // No side effect: the store is still installed and served.
    fx.mock.clear();
    let r = fx.products(STORE).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(fx.mock.only_request().tokens(), vec![TOKEN1.to_string()]);
    // Within the leeway is accepted.
    let skewed = jwt_with(
        hs,
        SECRET,
        &claims(&sub, CLIENT_ID, "bc", n + 20, n - 20 + 60),
    );
    let r = fx.signed("/load", skewed).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_cli_lists_and_deletes_and_config_wins() {
    let fx = start();
    fx.login.grant(STORE, TOKEN1, &SCOPES.join(" "));
    assert_eq!(fx.install(CODE).await.status, 200);
    // The config's store installs the app too: the config's token wins.
    fx.login.grant(CFG_STORE, TOKEN2, &SCOPES.join(" "));
    assert_eq!(fx.install("code-for-cfg-Rw2Xb7").await.status, 200);
    fx.mock.clear();
    assert_eq!(fx.products(CFG_STORE).await.status, 200);
    assert_eq!(fx.mock.only_request().tokens(), vec![CFG_TOKEN.to_string()]);

    let out = fx.cli(&["tokens", "list"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.starts_with(STORE))
        .unwrap_or_else(|| panic!("{STORE} not listed:\n{text}"));
    assert!(
        line.contains("installed") && line.contains("store_v2_orders_read_only"),
        "{line}"
    );
    assert!(line.contains("20"), "an installed-at date: {line}");
    assert!(
        text.lines()
            .any(|l| l.starts_with(CFG_STORE) && l.contains("config")),
        "{text}"
    );
    for secret in [TOKEN1, TOKEN2, CFG_TOKEN] {
        assert!(!text.contains(secret), "a token in `tokens list`:\n{text}");
    }
    let out = fx.cli(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!(
            "warning: store {CFG_STORE} is in [[stores]] and in the token store"
        )),
        "{text}"
    );
    assert!(!text.contains(SECRET) && !text.contains(TOKEN1), "{text}");

    let out = fx.cli(&["tokens", "delete", STORE]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = fx.cli(&["tokens", "list"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains(STORE));
    let out = fx.cli(&["tokens", "delete", STORE]);
    assert!(!out.status.success(), "deleting twice says it is not there");
    // The running bcgate forgets it on SIGHUP.
    fx.gate.signal("HUP");
    assert!(
        fx.gate
            .wait_for_log("config reloaded", Duration::from_secs(10))
    );
    assert_problem(&fx.products(STORE).await, 404, "store_unknown");
}

#[test]
fn config_rules_for_app_and_token_store() {
    let dir = support::process::temp_dir();
    let base = |extra: &str| {
        format!(
            "[upstream]\nbase_url = \"https://127.0.0.1:1\"\n\n[[clients]]\nname = \"c\"\nkey_sha256 = \"{}\"\nstores = [\"{STORE}\"]\nscopes = []\n{extra}",
            key_sha256(KEY)
        )
    };
    let check = |toml: &str| {
        std::fs::write(dir.path().join("bcgate.toml"), toml).expect("write");
        let out = Bcgate::run_cli_in(dir.path(), &["check", "--config", "bcgate.toml"], &env());
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    // A client may name a hash outside [[stores]] only with a [token_store].
    let (ok, text) = check(&base(""));
    assert!(!ok && text.contains("clients[0].stores[0]"), "{text}");
    let ts = "\n[token_store]\nkind = \"file\"\npath = \"t.enc\"\nkey_env = \"BCGATE_STORE_KEY\"\n";
    let (ok, text) = check(&base(ts));
    assert!(ok, "{text}");
    let (ok, text) = check(&base(&ts.replace("\"file\"", "\"redis\"")));
    assert!(
        !ok && text.contains("token_store.path") && text.contains("only for kind = \"file\""),
        "{text}"
    );
    let redis = "\n[token_store]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:1/0\"\nkey_env = \"BCGATE_STORE_KEY\"\n";
    let (ok, text) = check(&base(redis));
    assert!(ok && text.contains("redis://127.0.0.1:1/0"), "{text}");
    let (ok, text) = check(&base(&redis.replace("redis://", "rediss://")));
    assert!(!ok && text.contains("token_store.url"), "{text}");
    let (ok, text) = check(&base(&redis.replace("url = ", "path = \"t.enc\"\nurl = ")));
    assert!(!ok && text.contains("token_store.path"), "{text}");
    let (ok, text) = check(&base(&ts.replace("\"file\"", "\"memcached\"")));
    assert!(!ok && text.contains("token_store.kind"), "{text}");
    let (ok, text) = check(&base(&ts.replace("BCGATE_STORE_KEY", "NO_SUCH_KEY_VAR")));
    assert!(!ok && text.contains("token_store.key_env"), "{text}");
    let app = format!(
        "\n[app]\nlisten = \"127.0.0.1:0\"\npublic_url = \"{PUBLIC_URL}\"\nclient_id = \"x\"\nclient_secret_env = \"BC_CLIENT_SECRET\"\nscopes = [\"store_v2_products\"]\n"
    );
    let (ok, text) = check(&base(&format!("{ts}{app}")));
    assert!(ok, "{text}");
    assert!(
        text.contains("redirect_uri https://bcgate.example.com/auth") && !text.contains(SECRET),
        "{text}"
    );
    let (ok, text) = check(&base(&app).replace(&format!("[\"{STORE}\"]"), "[\"*\"]"));
    assert!(!ok && text.contains("[token_store]"), "{text}");
    let (ok, text) = check(&base(&format!(
        "{ts}{}",
        app.replace("store_v2_products", "store_v2_prodcts")
    )));
    assert!(!ok && text.contains("app.scopes[0]"), "{text}");
    let (ok, text) = check(&base(&format!(
        "{ts}{app}login_url = \"http://login.example.com\"\n"
    )));
    assert!(!ok && text.contains("app.login_url"), "{text}");
}
