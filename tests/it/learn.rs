//! Learn mode end to end: a learn-mode client driven through a
//! fixed sequence of requests over real sockets, in front of the mock
//! BigCommerce over TLS, across real restarts of the binary; then
//! `bcgate recommend` and `bcgate explain` on what it saw, and the switch to
//! enforce mode. The observations in a file (surviving SIGTERM and SIGKILL)
//! and in the token store's Redis (two replicas, bounded); the Redis tests
//! are skipped without `redis-server`, as in `tests/redis.rs`.

use crate::support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{Bcgate, MockBigCommerce, TestCa, assert_problem, key_sha256, metric, send};

const STORE: &str = "abc123";
const OTHER: &str = "def456";
/// A store whose token is stated to hold only store_v2_orders_read_only.
const NARROW: &str = "xyz789";
const TOKEN: &str = "bc-store-token-learn-abc123-Hq7Wm3Kd";
const TOKEN_OTHER: &str = "bc-store-token-learn-def456-Zp2Rt8Ls";
const TOKEN_NARROW: &str = "bc-store-token-learn-xyz789-Bn5Yc1Vf";
const KEY_LEARN: &str = "bcg-key-learn-sync-8Jd3Lq0Xw";
const KEY_STRICT: &str = "bcg-key-learn-strict-2Mv6Tn4Qe";

const SECRETS: [&str; 5] = [TOKEN, TOKEN_OTHER, TOKEN_NARROW, KEY_LEARN, KEY_STRICT];
const WAIT: Duration = Duration::from_secs(10);

/// `[learn]` keeping the observations in `state/observations.json`.
fn file_learn(flush_interval_ms: u64) -> String {
    format!(
        "[learn]\npath = \"state/observations.json\"\nflush_interval_ms = {flush_interval_ms}\n"
    )
}

fn config(mock_url: &str, learn: &str) -> String {
    let base = support::base_config(mock_url, 5000);
    format!(
        r#"
{base}
[[stores]]
hash = "{STORE}"
token_file = "{STORE}.token"

[[stores]]
hash = "{OTHER}"
token_file = "{OTHER}.token"

[[stores]]
hash = "{NARROW}"
token_file = "{NARROW}.token"
scopes = ["store_v2_orders_read_only"]

{learn}

[[clients]]
name = "sync"
key_sha256 = "{learn_key}"
stores = ["{STORE}", "{NARROW}"]
default_store = "{STORE}"
scopes = ["store_v2_orders", "store_v2_content_read_only"]
mode = "learn"

[[clients]]
name = "strict"
key_sha256 = "{strict_key}"
stores = ["{STORE}"]
default_store = "{STORE}"
scopes = ["store_v2_orders"]
"#,
        learn_key = key_sha256(KEY_LEARN),
        strict_key = key_sha256(KEY_STRICT),
    )
}

struct Fx {
    _ca: TestCa,
    mock: MockBigCommerce,
    gate: Option<Bcgate>,
    http: reqwest::Client,
    /// The environment bcgate runs with, again after a restart.
    env: &'static [(&'static str, &'static str)],
}

impl Fx {
    fn start(learn: &str, env: &'static [(&'static str, &'static str)]) -> Fx {
        let ca = TestCa::new();
        let mock = MockBigCommerce::start(
            &ca,
            &[(STORE, TOKEN), (OTHER, TOKEN_OTHER), (NARROW, TOKEN_NARROW)],
        );
        let dir = support::process::temp_dir();
        ca.write_to(dir.path());
        std::fs::create_dir(dir.path().join("state")).expect("state dir");
        for (hash, token) in [(STORE, TOKEN), (OTHER, TOKEN_OTHER), (NARROW, TOKEN_NARROW)] {
            std::fs::write(dir.path().join(format!("{hash}.token")), token).expect("token file");
        }
        let gate = Bcgate::start_in(dir, &config(&mock.base_url(), learn), env);
        Fx {
            _ca: ca,
            mock,
            gate: Some(gate),
            http: support::plain_client(),
            env,
        }
    }

    fn gate(&self) -> &Bcgate {
        self.gate.as_ref().expect("bcgate running")
    }

    fn restart(&mut self) {
        let gate = self.gate.take().expect("bcgate running");
        gate.assert_logs_free_of(&SECRETS);
        self.gate = Some(gate.restart(self.env));
    }

    async fn send(&self, method: &str, path: &str, key: &str, body: Option<&str>) -> support::Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(method, self.gate().url(path))
            .header("X-Auth-Token", key);
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_owned());
        }
        send(req).await
    }

    /// A request the learn-mode client may send: forwarded, 200 from the mock.
    async fn forwarded(&self, method: &str, path: &str, body: Option<&str>) {
        let resp = self.send(method, path, KEY_LEARN, body).await;
        assert_eq!(resp.status, 200, "{method} {path}: {}", resp.text());
    }

    /// A request that must be refused in learn mode too, before the upstream.
    async fn refused(&self, method: &str, path: &str, body: Option<&str>, status: u16, code: &str) {
        let before = self.mock.requests().len();
        let resp = self.send(method, path, KEY_LEARN, body).await;
        assert_problem(&resp, status, code);
        assert_eq!(
            self.mock.requests().len(),
            before,
            "{method} {path} reached the upstream"
        );
    }

    fn metrics(&self) -> String {
        let addr = self.gate().admin_addr().expect("admin address printed");
        let resp = support::raw_request(
            addr,
            b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(resp.status, 200);
        resp.body_text()
    }

    fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let config = self.gate().config_path().to_str().expect("utf-8 path");
        let mut all = args.to_vec();
        all.extend(["--config", config]);
        let out = Bcgate::run_cli(&all, self.env);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn observations_path(&self) -> std::path::PathBuf {
        self.gate().dir().join("state/observations.json")
    }
}

impl Drop for Fx {
    fn drop(&mut self) {
        if !std::thread::panicking()
            && let Some(gate) = &self.gate
        {
            gate.assert_logs_free_of(&SECRETS);
        }
    }
}

fn would_deny(metrics: &str, labels: &[(&str, &str)]) -> f64 {
    metric(metrics, "bcgate_learn_would_deny_total", labels)
}

/// The `scopes` of each client table in `bcgate recommend --format toml`.
fn toml_scopes(text: &str, client: &str) -> Vec<String> {
    let parsed = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .unwrap_or_else(|e| panic!("recommend --format toml is not TOML ({e}):\n{text}"));
    parsed
        .get(&format!("{client}.scopes"))
        .unwrap_or_else(|e| panic!("no {client}.scopes ({e}):\n{text}"))
}

fn entry<'a>(file: &'a serde_json::Value, method: &str, route: &str) -> &'a serde_json::Value {
    file["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["method"] == method && e["route"] == route)
        .unwrap_or_else(|| panic!("no entry {method} {route} in {file}"))
}

fn read_json(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "a secret is in the observations file"
        );
    }
    serde_json::from_str(&text).expect("observations file is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learn_mode_records_across_a_restart_and_recommends_the_least_scopes() {
    let mut fx = Fx::start(&file_learn(60_000), &[]);

    // --- before the restart: two granted reads, two that enforce would deny.
    fx.forwarded("GET", "/v2/orders", None).await;
    fx.forwarded("GET", &format!("/stores/{STORE}/v2/orders/1"), None)
        .await;
    fx.forwarded("GET", "/v3/catalog/products", None).await;
    fx.forwarded("PUT", "/v3/catalog/products/5", Some(r#"{"price":1}"#))
        .await;

    // Learn mode never widens what is forwarded beyond the scope decision.
    fx.refused(
        "GET",
        &format!("/stores/{OTHER}/v2/orders"),
        None,
        403,
        "store_not_allowed",
    )
    .await;
    fx.refused(
        "GET",
        "/stores/nosuchstore/v2/orders",
        None,
        404,
        "store_unknown",
    )
    .await;
    fx.refused("GET", "/api/storefront/carts", None, 403, "not_proxied")
        .await;
    fx.refused("GET", "/customer/current.jwt", None, 403, "not_proxied")
        .await;
    fx.refused("GET", "/v3/no/such/route", None, 403, "route_unknown")
        .await;
    fx.refused("GET", "/v2/orders%2F1", None, 400, "bad_request")
        .await;
    // The store's token is known to lack the scope: still bcgate's own 403.
    let body = {
        let before = fx.mock.requests().len();
        let resp = fx
            .send(
                "GET",
                &format!("/stores/{NARROW}/v3/catalog/products"),
                KEY_LEARN,
                None,
            )
            .await;
        assert_eq!(fx.mock.requests().len(), before);
        assert_problem(&resp, 403, "scope_denied")
    };
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("the token of store '{NARROW}'"))),
        "{body}"
    );
    // Body rules about safety still refuse: an unparsable GraphQL document.
    fx.refused(
        "POST",
        "/graphql",
        Some(r#"{"query":"{ store"}"#),
        400,
        "bad_request",
    )
    .await;
    // The same request from a client in enforce mode is refused.
    let resp = fx
        .send("GET", "/v3/catalog/products", KEY_STRICT, None)
        .await;
    assert_problem(&resp, 403, "scope_denied");

    // Exactly the four forwarded requests reached the upstream, with the
    // token of the store each path named.
    let seen = fx.mock.requests();
    let got: Vec<(String, String, Vec<String>)> = seen
        .iter()
        .map(|r| (r.method.clone(), r.path.clone(), r.tokens()))
        .collect();
    let t = || vec![TOKEN.to_owned()];
    assert_eq!(
        got,
        [
            ("GET".into(), format!("/stores/{STORE}/v2/orders"), t()),
            ("GET".into(), format!("/stores/{STORE}/v2/orders/1"), t()),
            (
                "GET".into(),
                format!("/stores/{STORE}/v3/catalog/products"),
                t()
            ),
            (
                "PUT".into(),
                format!("/stores/{STORE}/v3/catalog/products/5"),
                t()
            ),
        ]
    );

    let m = fx.metrics();
    assert_eq!(would_deny(&m, &[("client", "sync")]), 2.0, "{m}");
    assert_eq!(
        would_deny(
            &m,
            &[
                ("client", "sync"),
                ("method", "GET"),
                ("route", "/v3/catalog/products"),
                ("required", "store_v2_products_read_only|store_v2_products"),
            ]
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        would_deny(
            &m,
            &[
                ("method", "PUT"),
                ("route", "/v3/catalog/products/{product_id}"),
                ("required", "store_v2_products"),
            ]
        ),
        1.0,
        "{m}"
    );
    assert_eq!(would_deny(&m, &[("client", "strict")]), 0.0);
    assert!(fx.gate().wait_for_log("would deny in enforce mode", WAIT));

    // Nothing was written yet (the interval is a minute): the shutdown writes it.
    assert!(!fx.observations_path().exists());
    fx.restart();
    let file = read_json(&fx.observations_path());
    assert_eq!(entry(&file, "GET", "/v2/orders")["count"], 1);
    let put = entry(&file, "PUT", "/v3/catalog/products/{product_id}");
    assert_eq!(put["would_deny"], 1);
    assert_eq!(put["needs"], serde_json::json!([["store_v2_products"]]));

    // --- after the restart: the counts continue.
    fx.forwarded("GET", "/v2/orders", None).await;
    fx.forwarded("GET", "/v3/customers", None).await;
    fx.forwarded(
        "POST",
        "/graphql",
        Some(r#"{"query":"{ store { name } }"}"#),
    )
    .await;
    fx.forwarded("GET", &format!("/stores/{NARROW}/v2/orders"), None)
        .await;
    let m = fx.metrics();
    assert_eq!(would_deny(&m, &[("client", "sync")]), 2.0, "{m}");
    assert_eq!(
        would_deny(
            &m,
            &[
                ("route", "/graphql"),
                ("required", "bcgate:graphql_read|bcgate:graphql_write")
            ]
        ),
        1.0,
        "{m}"
    );

    fx.restart();
    let file = read_json(&fx.observations_path());
    let orders = entry(&file, "GET", "/v2/orders");
    assert_eq!(
        (orders["count"].as_u64(), orders["would_deny"].as_u64()),
        (Some(3), Some(0))
    );
    assert!(orders["first_seen"].as_u64() <= orders["last_seen"].as_u64());

    // --- recommend: exactly the least set, as TOML and as text.
    let (ok, toml, err) = fx.cli(&["recommend", "--format", "toml"]);
    assert!(ok, "{err}");
    assert_eq!(
        toml_scopes(&toml, "sync"),
        [
            "bcgate:graphql_read",
            "store_v2_customers_read_only",
            "store_v2_orders_read_only",
            "store_v2_products",
        ],
        "{toml}"
    );
    assert!(
        !toml.contains("[\"strict\"]"),
        "an enforce-mode client has no observations:\n{toml}"
    );
    let (ok, text, err) = fx.cli(&["recommend", "--client", "sync"]);
    assert!(ok, "{err}");
    for line in [
        "client 'sync' (mode learn)",
        "seen: 8 requests on 6 routes, 4 would have been denied by its scopes",
        "    store_v2_products\n        GET /v3/catalog/products\n        PUT /v3/catalog/products/{product_id}\n",
        "    store_v2_orders_read_only\n        GET /v2/orders\n        GET /v2/orders/{order_id}\n",
        "    + store_v2_products  (not granted now: enforce mode would deny)",
        "    + store_v2_orders_read_only  (in place of a broader scope granted now)",
        "    - store_v2_orders  (granted, only reads seen: its read-only scope is enough)",
        "    - store_v2_content_read_only  (granted, never used)",
        "  scopes = [\"bcgate:graphql_read\", \"store_v2_customers_read_only\", \"store_v2_orders_read_only\", \"store_v2_products\"]",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    let (ok, _, err) = fx.cli(&["recommend", "--client", "nobody"]);
    assert!(!ok && err.contains("no client named \"nobody\""), "{err}");

    // --- enforce: paste the recommended scopes, drop learn mode, reload.
    let recommended = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("scopes = "))
        .expect("a scopes line");
    let enforced = config(&fx.mock.base_url(), &file_learn(60_000)).replace(
        r#"scopes = ["store_v2_orders", "store_v2_content_read_only"]
mode = "learn""#,
        &format!("scopes = {recommended}"),
    );
    assert!(!enforced.contains(r#"mode = "learn""#));
    fx.gate().rewrite_config(&enforced);
    let deadline = Instant::now() + WAIT;
    while metric(
        &fx.metrics(),
        "bcgate_config_reloads_total",
        &[("result", "ok")],
    ) < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "no reload:\n{}",
            fx.gate().logs()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    // Everything observed still works, now granted; anything else is refused.
    fx.forwarded("GET", "/v2/orders", None).await;
    fx.forwarded("PUT", "/v3/catalog/products/5", Some("{}"))
        .await;
    fx.forwarded(
        "POST",
        "/graphql",
        Some(r#"{"query":"{ store { name } }"}"#),
    )
    .await;
    fx.refused("POST", "/v2/orders", Some("{}"), 403, "scope_denied")
        .await;
    fx.refused(
        "POST",
        "/graphql",
        Some(r#"{"query":"mutation { a }"}"#),
        403,
        "scope_denied",
    )
    .await;
    fx.refused("GET", "/v3/content/scripts", None, 403, "scope_denied")
        .await;
    assert_eq!(
        would_deny(&fx.metrics(), &[("client", "sync")]),
        0.0,
        "enforce mode refuses; it counts nothing as would_deny"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_write_survives_a_kill() {
    let fx = Fx::start(&file_learn(100), &[]);
    fx.forwarded("GET", "/v3/catalog/products/3", None).await;
    let path = fx.observations_path();
    let deadline = Instant::now() + WAIT;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "no periodic write:\n{}",
            fx.gate().logs()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    // SIGKILL: no shutdown path runs.
    fx.gate().signal("KILL");
    let (ok, toml, err) = fx.cli(&["recommend", "--format", "toml"]);
    assert!(ok, "{err}");
    assert_eq!(
        toml_scopes(&toml, "sync"),
        ["store_v2_products_read_only"],
        "{toml}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_both_modes() {
    let fx = Fx::start(&file_learn(60_000), &[]);
    let (ok, out, err) = fx.cli(&["explain", "PUT", "/v3/catalog/products/5"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(
            "  sync (mode learn):\n    enforce: denied (403 scope_denied): client 'sync' lacks store_v2_products for PUT /v3/catalog/products/{product_id}\n    learn:   forwarded to store 'abc123', recorded and counted as would_deny"
        ),
        "{out}"
    );
    assert!(
        out.contains("  strict (mode enforce):\n    enforce: denied"),
        "{out}"
    );
    let (ok, out, err) = fx.cli(&[
        "explain",
        "GET",
        &format!("/stores/{NARROW}/v3/catalog/products"),
        "--client",
        "sync",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("    learn:   denied (403 scope_denied): the token of store 'xyz789' lacks"),
        "{out}"
    );
    let (ok, out, err) = fx.cli(&["explain", "GET", "/v2/orders", "--client", "sync"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("    enforce: allowed on store 'abc123'\n    learn:   forwarded to store 'abc123', recorded\n"),
        "{out}"
    );
}

#[test]
fn a_bad_mode_or_a_missing_learn_section_names_the_key() {
    let dir = support::process::temp_dir();
    // `bcgate check` on a one-client config: (success, stdout, stderr).
    let check = |mode: &str, learn: &str| {
        let path = dir.path().join("bcgate.toml");
        std::fs::write(
            &path,
            format!(
                "{learn}\n[[clients]]\nname = \"a\"\nkey_sha256 = \"{}\"\nscopes = []\nmode = \"{mode}\"\n",
                key_sha256("k")
            ),
        )
        .expect("write config");
        let out = Bcgate::run_cli(&["check", "--config", path.to_str().expect("utf-8")], &[]);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, err) = check("Learn", "[learn]\npath = \"o.json\"");
    assert!(
        !ok && err.contains("clients[0].mode: \"Learn\" is not a mode"),
        "{err}"
    );
    let (ok, _, err) = check("learn", "");
    assert!(
        !ok && err.contains("clients[0].mode: learn mode needs a [learn] section"),
        "{err}"
    );
    let (ok, _, err) = check("learn", "[learn]\npath = \"o.json\"\nmax_entries = 0");
    assert!(!ok && err.contains("learn.max_entries"), "{err}");
    let (ok, _, err) = check("enforce", "");
    assert!(ok, "{err}");
    let (ok, out, err) = check("learn", "[learn]\npath = \"o.json\"");
    assert!(ok, "{err}");
    assert!(out.contains("; mode learn\n"), "{out}");
    assert!(out.contains("o.json (0 kept now; max 10000)"), "{out}");
}

const STORE_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// `[token_store] kind = "redis"` and `[learn]` without a path: the
/// observations go to that Redis.
fn redis_learn(url: &str) -> String {
    format!(
        "[token_store]\nkind = \"redis\"\nurl = \"{url}\"\nkey_env = \"BCGATE_STORE_KEY\"\n\n\
         [learn]\nflush_interval_ms = 60000\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_their_observations_in_the_token_stores_redis() {
    let Some(exe) = support::redis::redis_or_skip() else {
        return;
    };
    let redis = support::redis::RedisServer::start(&exe);
    const ENV: &[(&str, &str)] = &[("BCGATE_STORE_KEY", STORE_KEY)];
    let a = Fx::start(&redis_learn(&redis.url()), ENV);
    let mut b = Fx::start(&redis_learn(&redis.url()), ENV);
    a.forwarded("GET", "/v2/orders", None).await;
    a.forwarded("GET", "/v2/orders", None).await;
    a.forwarded("GET", "/v3/catalog/products", None).await;
    b.forwarded("GET", "/v2/orders", None).await;
    b.forwarded("PUT", "/v3/catalog/products/5", Some("{}"))
        .await;
    b.refused(
        "GET",
        &format!("/stores/{OTHER}/v2/orders"),
        None,
        403,
        "store_not_allowed",
    )
    .await;
    // b writes at shutdown and comes back; a writes at its shutdown below.
    b.restart();
    b.forwarded("GET", "/v2/orders/9", None).await;
    b.restart();
    let (ok, text, err) = a.cli(&["recommend"]);
    assert!(ok, "{err}");
    assert!(
        text.contains("seen: 3 requests on 3 routes, 1 would have been denied"),
        "only b's writes so far:\n{text}"
    );
    let gate = a.gate.as_ref().expect("a running");
    gate.signal("TERM");
    assert!(gate.wait_for_log("shutting down", WAIT));
    let deadline = Instant::now() + WAIT;
    let text = loop {
        let (ok, text, err) = b.cli(&["recommend"]);
        assert!(ok, "{err}");
        if text.contains("seen: 6 requests") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    for line in [
        "seen: 6 requests on 4 routes, 2 would have been denied by its scopes",
        "    store_v2_orders_read_only\n        GET /v2/orders\n        GET /v2/orders/{order_id}\n",
        "  scopes = [\"store_v2_orders_read_only\", \"store_v2_products\"]",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    // What Redis holds: counts by entry, no secret.
    let mut c = redis.conn().expect("connect to redis");
    let counts: std::collections::HashMap<String, u64> = redis::cmd("HGETALL")
        .arg("bcgate:learn:count")
        .query(&mut c)
        .expect("HGETALL");
    assert_eq!(
        counts.get(r#"["sync","GET","/v2/orders",false,false]"#),
        Some(&3),
        "{counts:?}"
    );
    let dump = format!("{counts:?}");
    for secret in SECRETS {
        assert!(!dump.contains(secret));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_entries_bounds_what_redis_keeps() {
    let Some(exe) = support::redis::redis_or_skip() else {
        return;
    };
    let redis = support::redis::RedisServer::start(&exe);
    const ENV: &[(&str, &str)] = &[("BCGATE_STORE_KEY", STORE_KEY)];
    let learn = redis_learn(&redis.url()).replace("[learn]\n", "[learn]\nmax_entries = 2\n");
    let mut a = Fx::start(&learn, ENV);
    let mut b = Fx::start(&learn, ENV);
    a.forwarded("GET", "/v2/orders", None).await;
    a.forwarded("GET", "/v2/orders/1", None).await;
    a.restart();
    // b holds one entry of its own, but Redis is full: it is not added...
    b.forwarded("GET", "/v3/catalog/products", None).await;
    // ...while one Redis holds already still counts.
    b.forwarded("GET", "/v2/orders", None).await;
    b.restart();
    let (ok, text, err) = b.cli(&["recommend"]);
    assert!(ok, "{err}");
    assert!(
        text.contains("seen: 3 requests on 2 routes"),
        "the third entry was refused by the cap:\n{text}"
    );
    assert!(
        text.contains("  scopes = [\"store_v2_orders_read_only\"]"),
        "{text}"
    );
    let mut c = redis.conn().expect("connect to redis");
    let n: usize = redis::cmd("HLEN")
        .arg("bcgate:learn:meta")
        .query(&mut c)
        .expect("HLEN");
    assert_eq!(n, 2);
}

// ---------------------------------------------------------------- families

const ACCOUNT: &str = "0b4c5d6e-1f2a-4b3c-8d9e-0a1b2c3d4e5f";
const TOKEN_ACCOUNT: &str = "bc-account-token-learn-Vt6Gh2Nw";
const KEY_SHOP: &str = "bcg-key-learn-shop-4Xs9Kd1Pq";

/// bcgate in front of every host of the mock, with a learn-mode client
/// (`shop`) that holds only `storefront:Customer`.
fn families_fx() -> Fx {
    families_fx_with(&file_learn(60_000), &[])
}

fn families_fx_with(learn: &str, env: &'static [(&'static str, &'static str)]) -> Fx {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    mock.add_account(ACCOUNT, TOKEN_ACCOUNT);
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    std::fs::create_dir(dir.path().join("state")).expect("state dir");
    std::fs::write(dir.path().join("account.token"), TOKEN_ACCOUNT).expect("token file");
    std::fs::write(dir.path().join(format!("{STORE}.token")), TOKEN).expect("token file");
    let config = format!(
        r#"
{base}payments_url = "{payments}"
b2b_url = "{b2b}"

{learn}

[[stores]]
hash = "{STORE}"
token_file = "{STORE}.token"
channels = [{{ id = 1, origin = "{sf}" }}]

[[accounts]]
uuid = "{ACCOUNT}"
token_file = "account.token"

[[clients]]
name = "shop"
key_sha256 = "{key}"
stores = ["{STORE}"]
default_store = "{STORE}"
accounts = ["{ACCOUNT}"]
scopes = ["storefront:Customer"]
mode = "learn"
"#,
        base = support::base_config(&mock.base_url(), 5000),
        payments = mock.payments_url(),
        b2b = mock.b2b_url(),
        sf = mock.storefront_origin(STORE, 1),
        key = key_sha256(KEY_SHOP),
    );
    let gate = Bcgate::start_in(dir, &config, env);
    Fx {
        _ca: ca,
        mock,
        gate: Some(gate),
        http: support::plain_client(),
        env,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_is_learned_and_recommended() {
    let mut fx = families_fx();
    let post = |path: &str, headers: &[(&str, &str)], body: &str| {
        let mut req = fx
            .http
            .post(fx.gate().url(path))
            .header("X-Auth-Token", KEY_SHOP)
            .header("Content-Type", "application/json")
            .body(body.to_owned());
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        send(req)
    };
    let query = r#"{"query":"{ site { settings { storeName } } }"}"#;
    // Storefront: a private token (the client's one access scope), twice;
    // as a named customer (enforce mode would deny: no storefront:impersonate).
    for _ in 0..2 {
        let resp = post("/storefront/graphql", &[], query).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(
            resp.json()["data"]["mock"]["scopes"],
            serde_json::json!(["Customer"])
        );
    }
    let resp = post("/storefront/graphql", &[("X-Bc-Customer-Id", "5")], query).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["data"]["mock"]["customer_id"], 5);
    // Payments, B2B Edition (a read), account-level GraphQL (a query): all
    // would be denied in enforce mode.
    let payment = r#"{"payment":{"instrument":{"type":"stored_card","token":"tok_1"},"payment_method_id":"stripe.card"}}"#;
    let resp = post("/payments", &[("X-Bcgate-Order-Id", "7")], payment).await;
    assert_eq!(resp.status, 201, "{}", resp.text());
    let resp = send(
        fx.http
            .get(fx.gate().url("/b2b/v3/io/companies"))
            .header("X-Auth-Token", KEY_SHOP),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = post(&format!("/accounts/{ACCOUNT}/graphql"), &[], query).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    // Learn mode does not widen what no grant decides: another account.
    let resp = post(
        "/accounts/11111111-2222-4333-8444-555555555555/graphql",
        &[],
        query,
    )
    .await;
    assert_problem(&resp, 403, "account_not_allowed");

    let m = fx.metrics();
    assert_eq!(would_deny(&m, &[("client", "shop")]), 4.0, "{m}");
    for (route, required) in [
        ("/storefront/graphql", "storefront:impersonate"),
        ("/payments", "store_payments_access_token_create"),
        ("/b2b/v3/io/companies", "b2b:read|b2b:modify"),
    ] {
        assert_eq!(
            would_deny(&m, &[("route", route), ("required", required)]),
            1.0,
            "{route}: {m}"
        );
    }
    assert_eq!(
        would_deny(&m, &[("route", "/accounts/{uuid}/graphql")]),
        1.0,
        "{m}"
    );

    // The file: each family's entries, the storefront by what its credential needed.
    fx.restart();
    let file = read_json(&fx.observations_path());
    let entries = file["entries"].as_array().expect("entries");
    let mut got: Vec<(String, String, String, u64)> = entries
        .iter()
        .map(|e| {
            (
                e["family"].as_str().unwrap_or("?").to_owned(),
                e["route"].as_str().unwrap_or("?").to_owned(),
                e["needs"].to_string(),
                e["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    got.sort();
    let account_needs = entries
        .iter()
        .find(|e| e["family"] == "account")
        .map(|e| e["needs"].to_string())
        .expect("an account entry");
    assert!(
        account_needs.starts_with(r#"[["account_read""#),
        "{account_needs}"
    );
    let row = |f: &str, r: &str, n: &str, c: u64| (f.to_owned(), r.to_owned(), n.to_owned(), c);
    let mut want = vec![
        row("account", "/graphql", &account_needs, 1),
        row("b2b", "/companies", r#"[["b2b:read","b2b:modify"]]"#, 1),
        row(
            "payments",
            "/payments",
            r#"[["store_payments_access_token_create"]]"#,
            1,
        ),
        row(
            "storefront",
            "/storefront/graphql",
            r#"[["storefront:Customer"]]"#,
            2,
        ),
        row(
            "storefront",
            "/storefront/graphql",
            r#"[["storefront:impersonate"]]"#,
            1,
        ),
    ];
    want.sort();
    assert_eq!(got, want, "{file}");

    // recommend: the least grants for all of it, under the paths sent.
    let (ok, toml, err) = fx.cli(&["recommend", "--format", "toml"]);
    assert!(ok, "{err}");
    assert_eq!(
        toml_scopes(&toml, "shop"),
        [
            "account_read",
            "b2b:read",
            "store_payments_access_token_create",
            "storefront:Customer",
            "storefront:impersonate",
        ],
        "{toml}"
    );
    let (ok, text, err) = fx.cli(&["recommend", "--client", "shop"]);
    assert!(ok, "{err}");
    for line in [
        "seen: 6 requests on 4 routes, 4 would have been denied by its scopes",
        "    b2b:read\n        GET /b2b/v3/io/companies\n",
        "    account_read\n        POST /accounts/{uuid}/graphql\n",
        "    storefront:impersonate\n        POST /storefront/graphql\n",
        "    + storefront:impersonate  (not granted now: enforce mode would deny)",
        "    + b2b:read  (not granted now: enforce mode would deny)",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(
        !text.contains("- storefront:Customer"),
        "it was used:\n{text}"
    );
    fx.gate().assert_logs_free_of(&[TOKEN_ACCOUNT, KEY_SHOP]);
}

/// A storefront request the client's grants refuse is forwarded with the
/// least scope, and recorded as needing exactly that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storefront_request_without_a_grant_records_the_least_scope() {
    let mut fx = families_fx();
    let config = std::fs::read_to_string(fx.gate().config_path()).expect("config");
    fx.gate()
        .rewrite_config(&config.replace(r#"scopes = ["storefront:Customer"]"#, "scopes = []"));
    let deadline = Instant::now() + WAIT;
    while metric(
        &fx.metrics(),
        "bcgate_config_reloads_total",
        &[("result", "ok")],
    ) < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "no reload:\n{}",
            fx.gate().logs()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    let resp = send(
        fx.http
            .post(fx.gate().url("/storefront/graphql"))
            .header("X-Auth-Token", KEY_SHOP)
            .header("Content-Type", "application/json")
            .body(r#"{"query":"{ site { settings { storeName } } }"}"#),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json()["data"]["mock"]["scopes"],
        serde_json::json!(["Unauthenticated"])
    );
    fx.restart();
    let (ok, toml, err) = fx.cli(&["recommend", "--format", "toml"]);
    assert!(ok, "{err}");
    assert_eq!(
        toml_scopes(&toml, "shop"),
        ["storefront:Unauthenticated"],
        "{toml}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keeps_each_entrys_family() {
    let Some(exe) = support::redis::redis_or_skip() else {
        return;
    };
    let redis = support::redis::RedisServer::start(&exe);
    const ENV: &[(&str, &str)] = &[("BCGATE_STORE_KEY", STORE_KEY)];
    let mut fx = families_fx_with(&redis_learn(&redis.url()), ENV);
    for path in ["/b2b/v3/io/companies", "/v3/catalog/products"] {
        let resp = send(
            fx.http
                .get(fx.gate().url(path))
                .header("X-Auth-Token", KEY_SHOP),
        )
        .await;
        assert_eq!(resp.status, 200, "{path}: {}", resp.text());
    }
    let resp = send(
        fx.http
            .post(fx.gate().url("/storefront/graphql"))
            .header("X-Auth-Token", KEY_SHOP)
            .header("X-Bc-Customer-Id", "9")
            .header("Content-Type", "application/json")
            .body(r#"{"query":"{ customer { entityId } }"}"#),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    fx.restart();
    let (ok, toml, err) = fx.cli(&["recommend", "--format", "toml"]);
    assert!(ok, "{err}");
    assert_eq!(
        toml_scopes(&toml, "shop"),
        [
            "b2b:read",
            "store_v2_products_read_only",
            "storefront:impersonate"
        ],
        "{toml}"
    );
    let mut c = redis.conn().expect("connect to redis");
    let counts: std::collections::HashMap<String, u64> = redis::cmd("HGETALL")
        .arg("bcgate:learn:count")
        .query(&mut c)
        .expect("HGETALL");
    let mut fields: Vec<&str> = counts.keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            r#"["shop","GET","/companies",false,false,"b2b",0]"#,
            r#"["shop","GET","/v3/catalog/products",false,false]"#,
            r#"["shop","POST","/storefront/graphql",true,false,"storefront",8]"#,
        ]
    );
}
