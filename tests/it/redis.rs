//! The Redis token store (`[token_store] kind = "redis"`) against a real
//! `redis-server`, started by the tests themselves (a free port on
//! 127.0.0.1, no persistence, killed on drop): two bcgate replicas sharing
//! one Redis (an install through one is served by the other within a
//! second, an uninstall through the other refused by the first), values
//! encrypted in Redis, and Redis going down and coming back.
//!
//! Without `redis-server` on the PATH the tests are skipped, except under
//! `CI=true`, where they fail (scripts/install-test-deps installs it).

use crate::support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::login::MockLogin;
use support::redis::{RedisServer, redis_or_skip};
use support::{Bcgate, MockBigCommerce, TestCa, assert_problem, key_sha256, plain_client, send};

const STORE: &str = "redis7store";
const TOKEN1: &str = "bc-installed-token-REDIS-k3Vq8Zr2Lw";
const CODE: &str = "authcode-secret-Rd5Hs2Mq8Xc";
const SECRET: &str = "client-secret-Wt4Bn7Jq1Ky3";
const CLIENT_ID: &str = "bcgate-redis-test-client";
const STORE_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY: &str = "bcg-key-redis-svc-5Fh2Qm8Tn4";
const SCOPES: &[&str] = &["store_v2_products", "store_v2_orders_read_only"];
/// How long a change may take to reach another replica.
const PROPAGATION: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------- replicas

fn config(mock_url: &str, login_url: &str, redis_url: &str) -> String {
    let app = support::app_section("https://bcgate.example.com/", CLIENT_ID, SCOPES, login_url);
    let base = support::base_config(mock_url, 4000);
    format!(
        r#"
{base}
[[clients]]
name = "svc"
key_sha256 = "{key}"
stores = ["*"]
scopes = ["store_v2_products", "store_v2_orders_read_only"]

{app}
[token_store]
kind = "redis"
url = "{redis_url}"
key_env = "BCGATE_STORE_KEY"
"#,
        key = key_sha256(KEY),
    )
}

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("BC_CLIENT_SECRET", SECRET),
        ("BCGATE_STORE_KEY", STORE_KEY),
        ("BCGATE_LOG", "info,bcgate=debug"),
    ]
}

/// One bcgate process and the address of its app callbacks.
struct Replica {
    gate: Bcgate,
    app: String,
}

impl Replica {
    fn start(ca: &TestCa, mock: &MockBigCommerce, login: &MockLogin, redis: &RedisServer) -> Self {
        let dir = support::process::temp_dir();
        ca.write_to(dir.path());
        ca.write_leaf(dir.path(), "app", &["127.0.0.1"]);
        let toml = config(&mock.base_url(), &login.base_url(), &redis.url());
        let gate = Bcgate::start_in(dir, &toml, &env());
        let line = "bcgate: app callbacks listening on ";
        let logs = gate.logs();
        let app = logs
            .lines()
            .find_map(|l| l.trim().strip_prefix(line))
            .unwrap_or_else(|| panic!("no app listening line:\n{logs}"))
            .to_owned();
        Self { gate, app }
    }

    async fn callback(&self, ca: &TestCa, path_and_query: &str) -> support::Resp {
        send(support::client(ca).get(format!("{}{path_and_query}", self.app))).await
    }

    async fn install(&self, ca: &TestCa) -> support::Resp {
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("code", CODE)
            .append_pair("scope", &SCOPES.join(" "))
            .append_pair("context", &format!("stores/{STORE}"))
            .finish();
        self.callback(ca, &format!("/auth?{q}")).await
    }

    async fn uninstall(&self, ca: &TestCa) -> support::Resp {
        self.callback(ca, &format!("/uninstall?signed_payload_jwt={}", good_jwt()))
            .await
    }

    async fn products(&self) -> support::Resp {
        send(
            plain_client()
                .get(
                    self.gate
                        .url(&format!("/stores/{STORE}/v3/catalog/products")),
                )
                .header("X-Auth-Token", KEY),
        )
        .await
    }

    /// `/readyz`: the status and the token_store check.
    fn ready(&self) -> (u16, serde_json::Value) {
        let (status, check) = support::ready_check(&self.gate, "token_store");
        (status, check.expect("a token_store check"))
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        let cfg = self.gate.config_path().to_str().expect("utf-8 path");
        let mut full = args.to_vec();
        full.extend(["--config", cfg]);
        Bcgate::run_cli_in(self.gate.dir(), &full, &env())
    }

    fn assert_logs_clean(&self) {
        self.gate
            .assert_logs_free_of(&[TOKEN1, CODE, SECRET, KEY, STORE_KEY]);
    }
}

fn good_jwt() -> String {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({
            "aud": CLIENT_ID, "iss": "bc", "iat": n - 5, "nbf": n - 5, "exp": n + 600,
            "sub": format!("stores/{STORE}"),
            "user": {"id": 9876543, "email": "user@example.com"},
        }),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("encode jwt")
}

/// Polls `check` every 10 ms until it says `true`, for at most `limit`;
/// how long it took.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_through_one_replica_is_served_by_the_other() {
    let Some(exe) = redis_or_skip() else { return };
    let redis = RedisServer::start(&exe);
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN1)]);
    let login = MockLogin::start(&ca);
    login.grant(STORE, TOKEN1, &SCOPES.join(" "));
    let a = Replica::start(&ca, &mock, &login, &redis);
    let b = Replica::start(&ca, &mock, &login, &redis);
    for r in [&a, &b] {
        let (status, check) = r.ready();
        assert_eq!(status, 200, "{check}");
        assert_eq!(check["ok"], true, "{check}");
    }
    assert_problem(&b.products().await, 404, "store_unknown");

    // Installed through A…
    let page = a.install(&ca).await;
    assert_eq!(page.status, 200, "{}", page.text());
    // …served by B, with the installed token, within a second.
    let took = within(
        PROPAGATION,
        "B serves the store installed through A",
        || async { b.products().await.status == 200 },
    )
    .await;
    println!("propagation A install -> B serving: {took:?}");
    mock.clear();
    let r = b.products().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(mock.only_request().tokens(), vec![TOKEN1.to_string()]);

    // In Redis: one sealed value (the store file format), no token in it.
    let raw = redis
        .get(&format!("bcgate:store:{STORE}"))
        .expect("the store's key is in Redis");
    assert!(raw.starts_with(b"BCGTS1"), "not a sealed value");
    assert!(
        !raw.windows(TOKEN1.len()).any(|w| w == TOKEN1.as_bytes()),
        "the token is in Redis in clear"
    );
    assert!(!String::from_utf8_lossy(&raw).contains("installer@example.com"));
    let (_, check) = b.ready();
    assert_eq!(check["ok"], true, "{check}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap_or("")
            .starts_with("1 installed"),
        "{check}"
    );

    // bcgate tokens list reads Redis.
    let out = a.cli(&["tokens", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains(STORE), "{text}");

    // Uninstalled through B: A refuses the store within a second, as
    // store_uninstalled (A served it and saw it removed).
    let r = b.uninstall(&ca).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_problem(&b.products().await, 403, "store_uninstalled");
    let took = within(
        PROPAGATION,
        "A refuses the store uninstalled through B",
        || async { a.products().await.status == 403 },
    )
    .await;
    println!("propagation B uninstall -> A refusing: {took:?}");
    mock.clear();
    assert_problem(&a.products().await, 403, "store_uninstalled");
    assert!(mock.requests().is_empty(), "nothing reaches BigCommerce");
    assert!(redis.get(&format!("bcgate:store:{STORE}")).is_none());

    // Installed again through B: A serves it again.
    let page = b.install(&ca).await;
    assert_eq!(page.status, 200, "{}", page.text());
    within(
        PROPAGATION,
        "A serves the store reinstalled through B",
        || async { a.products().await.status == 200 },
    )
    .await;

    // bcgate tokens delete: both replicas refuse it within a second.
    let out = a.cli(&["tokens", "delete", STORE]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for r in [&a, &b] {
        within(PROPAGATION, "the deleted store is refused", || async {
            r.products().await.status == 403
        })
        .await;
    }
    a.assert_logs_clean();
    b.assert_logs_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_keeps_serving_and_reports_unready() {
    let Some(exe) = redis_or_skip() else { return };
    let mut redis = RedisServer::start(&exe);
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN1)]);
    let login = MockLogin::start(&ca);
    login.grant(STORE, TOKEN1, &SCOPES.join(" "));
    let a = Replica::start(&ca, &mock, &login, &redis);
    let page = a.install(&ca).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(a.products().await.status, 200);
    // So that the restarted server has the store again (no persistence
    // otherwise).
    redis.save();

    redis.kill();
    within(
        Duration::from_secs(5),
        "/readyz reports Redis down",
        || async {
            let (status, check) = a.ready();
            status == 503 && check["ok"] == false
        },
    )
    .await;
    let (_, check) = a.ready();
    let detail = check["detail"].as_str().unwrap_or("").to_owned();
    assert!(
        detail.contains("redis://127.0.0.1") && detail.contains("serving the 1 installed"),
        "{check}"
    );
    // The last known tokens keep serving.
    mock.clear();
    let r = a.products().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(mock.only_request().tokens(), vec![TOKEN1.to_string()]);
    // An install cannot be recorded now, and says so.
    let page = a.install(&ca).await;
    assert_eq!(page.status, 500, "{}", page.text());
    assert!(page.text().contains("Not installed"), "{}", page.text());

    // Redis back on the same port: ready again within a few seconds.
    redis.restart();
    let took = within(Duration::from_secs(8), "/readyz recovers", || async {
        let (status, check) = a.ready();
        status == 200 && check["ok"] == true
    })
    .await;
    println!("recovery after redis-server restart: {took:?}");
    assert_eq!(a.products().await.status, 200);

    // An uninstall while Redis is down: not recorded (500), but this
    // replica refuses the store from then on, also after Redis is back and
    // still holds it.
    redis.kill();
    within(
        Duration::from_secs(5),
        "/readyz reports Redis down",
        || async { a.ready().0 == 503 },
    )
    .await;
    let r = a.uninstall(&ca).await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("Uninstall not recorded"), "{}", r.text());
    assert_problem(&a.products().await, 403, "store_uninstalled");
    redis.restart();
    within(Duration::from_secs(8), "/readyz recovers", || async {
        a.ready().0 == 200
    })
    .await;
    assert!(redis.get(&format!("bcgate:store:{STORE}")).is_some());
    assert_problem(&a.products().await, 403, "store_uninstalled");
    a.assert_logs_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_started_without_redis_catches_up_and_resyncs() {
    let Some(exe) = redis_or_skip() else { return };
    let mut redis = RedisServer::start(&exe);
    redis.kill();
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN1)]);
    let login = MockLogin::start(&ca);
    login.grant(STORE, TOKEN1, &SCOPES.join(" "));
    // Redis down at start: bcgate runs, unready.
    let a = Replica::start(&ca, &mock, &login, &redis);
    let (status, check) = a.ready();
    assert_eq!(status, 503, "{check}");
    assert_eq!(check["ok"], false, "{check}");

    redis.restart();
    within(Duration::from_secs(8), "ready once Redis is up", || async {
        a.ready().0 == 200
    })
    .await;
    let page = a.install(&ca).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(a.products().await.status, 200);

    // Changes no message announced are picked up by the periodic resync:
    // a value that cannot be opened is skipped (and said), a key deleted
    // behind bcgate's back is dropped.
    let mut c = redis.conn().expect("connect");
    redis::cmd("SET")
        .arg("bcgate:store:junk1")
        .arg("not a sealed value")
        .query::<()>(&mut c)
        .expect("SET");
    redis::cmd("DEL")
        .arg(format!("bcgate:store:{STORE}"))
        .query::<()>(&mut c)
        .expect("DEL");
    assert_eq!(a.products().await.status, 200, "no message: still served");
    let took = within(
        Duration::from_secs(13),
        "the resync drops the store",
        || async { a.products().await.status == 403 },
    )
    .await;
    println!("resync without a message: {took:?}");
    assert_problem(&a.products().await, 403, "store_uninstalled");
    let (status, check) = a.ready();
    assert_eq!(status, 200, "{check}");
    let detail = check["detail"].as_str().unwrap_or("");
    assert!(
        detail.starts_with("0 installed") && detail.contains("1 value(s) could not be read"),
        "{check}"
    );
    a.assert_logs_clean();
}
