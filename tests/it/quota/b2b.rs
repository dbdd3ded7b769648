//! A store's B2B Edition budget beside its api budget: each learnt from its
//! own host's headers, neither spending nor holding back the other, the B2B
//! one shared through Redis like the api one. The mock's B2B host counts
//! per store (150 per 60 s) and never refuses; it is spent here by direct
//! requests, as another API client of the store would spend it.

use super::*;

const B2B_PATH: &str = "/stores/q150store/b2b/v3/io/companies";
/// The B2B host's path for [`B2B_PATH`], under the mock's prefix.
const B2B_UPSTREAM: &str = "/b2b-host/api/v3/io/companies";
const KEY: &str = "bcg-key-quota-b2b-3Lm9Tz";

/// One client with the api and B2B grants; the mock's B2B host behind
/// `b2b_url`.
fn b2b_config(mock: &MockBigCommerce, quota: &str) -> String {
    let base = support::base_config(&mock.base_url(), 5000);
    format!(
        r#"
{base}b2b_url = "{b2b}"

[[stores]]
hash = "{STORE}"
token_env = "BC_TOKEN_Q"

[quota]
{quota}

[[clients]]
name = "b2b-sync"
key_sha256 = "{key}"
stores = ["{STORE}"]
scopes = ["store_v2_products", "b2b:read"]
"#,
        b2b = mock.b2b_url(),
        key = key_sha256(KEY),
    )
}

fn start_b2b(ca: &TestCa, mock: &MockBigCommerce, quota: &str) -> Bcgate {
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    Bcgate::start_in(dir, &b2b_config(mock, quota), &[("BC_TOKEN_Q", TOKEN)])
}

async fn via(gate: &Bcgate, path: &str, n: usize) -> support::Resp {
    send(
        plain_client()
            .get(gate.url(&format!("{path}?n={n}")))
            .header("X-Auth-Token", KEY),
    )
    .await
}

fn b2b_upstream_count(mock: &MockBigCommerce) -> usize {
    mock.requests()
        .iter()
        .filter(|r| r.path == B2B_UPSTREAM)
        .count()
}

fn api_upstream_count(mock: &MockBigCommerce) -> usize {
    mock.requests()
        .iter()
        .filter(|r| r.path == PRODUCTS)
        .count()
}

/// Seconds in `X-Request-Window-Resets-After: 41.2 s`.
fn resets_after(resp: &support::Resp) -> f64 {
    resp.header("x-request-window-resets-after")
        .and_then(|v| v.trim().strip_suffix('s'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no B2B reset header: {:?}", resp.headers))
}

/// Spends the store's B2B window at the mock directly (150 requests), with
/// at least 20 s of it left; returns the last answer.
async fn spend_b2b_directly(ca: &TestCa, mock: &MockBigCommerce) -> support::Resp {
    let http = support::client(ca);
    loop {
        let mut last = None;
        for _ in 0..150 {
            let resp = send(
                http.get(mock.url(&format!("{B2B_UPSTREAM}?direct=1")))
                    .header("X-Auth-Token", TOKEN)
                    .header("X-Store-Hash", STORE),
            )
            .await;
            assert_eq!(resp.status, 200, "{}", resp.text());
            last = Some(resp);
        }
        let last = last.expect("150 answers");
        let left = resets_after(&last);
        if last.header("x-requests-remaining") == Some("0 times") && left > 20.0 {
            return last;
        }
        // Too close to the mock's window end: spend the next one instead.
        tokio::time::sleep(Duration::from_secs_f64(left + 0.1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_api_budget_leaves_the_b2b_budget_untouched() {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    // The api window: 3 requests per 20 s, all spent by another API client.
    mock.enforce_quota(3, Duration::from_secs(20));
    let gate = start_b2b(&ca, &mock, "max_wait_ms = 2000");
    for _ in 0..3 {
        assert_eq!(direct(&ca, &mock).await.status, 200);
    }

    // The first api request learns the spent window (the upstream's 429,
    // not retried: its reset is past the deadline); the next is bcgate's own.
    let first = via(&gate, PRODUCTS, 0).await;
    assert_eq!(first.status, 429, "{}", first.text());
    let started = Instant::now();
    let refused = via(&gate, PRODUCTS, 1).await;
    assert_problem(&refused, 429, "quota_exhausted");
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert_eq!(refused.header("x-rate-limit-requests-quota"), Some("3"));
    assert_eq!(refused.header("x-requests-allocated"), None);
    let api_sent = api_upstream_count(&mock);

    // B2B Edition's budget is its own: every request goes, promptly.
    for n in 0..6 {
        let sent = Instant::now();
        let resp = via(&gate, B2B_PATH, n).await;
        assert_eq!(resp.status, 200, "B2B request {n}: {}", resp.text());
        assert_eq!(resp.json()["data"]["path"], "/companies");
        assert!(
            sent.elapsed() < Duration::from_millis(1500),
            "B2B request {n} waited {:?}",
            sent.elapsed()
        );
        // B2B Edition's own headers reach the caller.
        assert!(resp.header("x-requests-remaining").is_some());
    }
    assert_eq!(b2b_upstream_count(&mock), 6);

    // And the B2B answers did not refill the api budget.
    let again = via(&gate, PRODUCTS, 2).await;
    assert_problem(&again, 429, "quota_exhausted");
    assert_eq!(api_upstream_count(&mock), api_sent);
    assert_eq!(mock.stats().rate_limited, 1, "only the learning request");

    let b2b_label = format!("{STORE}/b2b");
    let refusals = |store: &str| {
        metric(
            &gate,
            "bcgate_rate_limited_total",
            &[("store", store), ("source", "bcgate")],
        )
    };
    assert_eq!(refusals(STORE), 2.0);
    assert_eq!(refusals(&b2b_label), 0.0);
    assert_eq!(
        metric(
            &gate,
            "bcgate_quota_granted_total",
            &[("store", &b2b_label), ("client", "b2b-sync")]
        ),
        6.0
    );
    gate.assert_logs_free_of(&[TOKEN, KEY]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_b2b_budget_leaves_the_api_budget_untouched() {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    let gate = start_b2b(&ca, &mock, "max_wait_ms = 2000");
    spend_b2b_directly(&ca, &mock).await;
    let spent = b2b_upstream_count(&mock);

    // The first B2B request learns the spent window from B2B Edition's
    // headers; the next is bcgate's own 429, at once, in B2B Edition's terms.
    let first = via(&gate, B2B_PATH, 0).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("x-requests-remaining"), Some("0 times"));
    let started = Instant::now();
    let refused = via(&gate, B2B_PATH, 1).await;
    let body = assert_problem(&refused, 429, "quota_exhausted");
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("B2B Edition")),
        "{body}"
    );
    assert_eq!(
        refused.header("x-requests-allocated"),
        Some("150 times/60 s")
    );
    assert_eq!(refused.header("x-requests-remaining"), Some("0 times"));
    let reset = resets_after(&refused);
    assert!((15.0..=60.1).contains(&reset), "{reset}");
    let retry: u64 = refused
        .header("x-retry-after")
        .and_then(|v| v.parse().ok())
        .expect("X-Retry-After");
    assert_eq!(retry, reset.ceil() as u64);
    assert_eq!(refused.header("x-rate-limit-requests-left"), None);
    assert_eq!(b2b_upstream_count(&mock), spent + 1);

    // The api budget is its own: every request goes, promptly.
    for n in 0..6 {
        let sent = Instant::now();
        let resp = via(&gate, PRODUCTS, n).await;
        assert_eq!(resp.status, 200, "api request {n}: {}", resp.text());
        assert!(
            sent.elapsed() < Duration::from_millis(1500),
            "api request {n} waited {:?}",
            sent.elapsed()
        );
    }
    assert_eq!(api_upstream_count(&mock), 6);

    // And the api answers did not refill the B2B budget.
    assert_problem(&via(&gate, B2B_PATH, 2).await, 429, "quota_exhausted");
    assert_eq!(b2b_upstream_count(&mock), spent + 1);
    let b2b_label = format!("{STORE}/b2b");
    let refusals = |store: &str| {
        metric(
            &gate,
            "bcgate_rate_limited_total",
            &[("store", store), ("source", "bcgate")],
        )
    };
    assert_eq!(refusals(&b2b_label), 2.0);
    assert_eq!(refusals(STORE), 0.0);
    gate.assert_logs_free_of(&[TOKEN, KEY]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_b2b_budget_through_redis() {
    let Some(exe) = redis_or_skip() else { return };
    let redis = RedisServer::start(&exe);
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    let quota = format!(
        "max_wait_ms = 2000\nreplicas = 2\nredis_url = \"{}\"",
        redis.url()
    );
    let replicas = [start_b2b(&ca, &mock, &quota), start_b2b(&ca, &mock, &quota)];
    spend_b2b_directly(&ca, &mock).await;
    let spent = b2b_upstream_count(&mock);

    // One replica learns the spent B2B window; Redis tells the other.
    let first = via(&replicas[0], B2B_PATH, 0).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let mut conn = redis.conn().expect("connect to redis");
    let b2b_key = format!("bcgate:quota:{{{STORE}}}:b2b:w");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen: Option<u64> = redis::cmd("HGET")
            .arg(&b2b_key)
            .arg("seen")
            .query(&mut conn)
            .expect("HGET");
        if seen == Some(150) {
            break;
        }
        assert!(Instant::now() < deadline, "{b2b_key} seen: {seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The other replica never asked the B2B host: it knows from Redis alone.
    let refused = via(&replicas[1], B2B_PATH, 1).await;
    assert_problem(&refused, 429, "quota_exhausted");
    // In B2B Edition's terms (this replica's own window is still unknown).
    assert_eq!(refused.header("x-requests-remaining"), Some("0 times"));
    assert_eq!(b2b_upstream_count(&mock), spent + 1);

    // Its api budget, in Redis too, is untouched by the B2B one.
    for (n, gate) in replicas.iter().enumerate() {
        let resp = via(gate, PRODUCTS, n).await;
        assert_eq!(resp.status, 200, "api on replica {n}: {}", resp.text());
    }
    let api_key = format!("bcgate:quota:{{{STORE}}}:w");
    let api_q: Option<u64> = redis::cmd("HGET")
        .arg(&api_key)
        .arg("q")
        .query(&mut conn)
        .expect("HGET");
    // The mock's api host advertises 150 per 30 s; B2B Edition's seen stays.
    assert_eq!(api_q, Some(150));
    let api_seen: Option<u64> = redis::cmd("HGET")
        .arg(&api_key)
        .arg("seen")
        .query(&mut conn)
        .expect("HGET");
    assert!(api_seen.is_some_and(|s| s < 150), "{api_seen:?}");
    for gate in &replicas {
        gate.assert_logs_free_of(&[TOKEN, KEY]);
    }
}
