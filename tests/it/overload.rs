//! Overload protection: past `server.max_in_flight` requests in flight,
//! bcgate answers 503 `overloaded` with `Retry-After` at once instead of
//! queueing; the admin listener answers throughout; a burst far above the
//! limit is served or refused in bounded memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::{
    Bcgate, MockBigCommerce, Resp, TestCa, assert_problem, exchange_on, key_sha256, metric,
    plain_client, send, try_send,
};

const STORE: &str = "abc123";
const TOKEN: &str = "bc-store-token-overload-Pq7Vn2Xc8Lm4";
const KEY: &str = "bcg-key-overload-Tg5Wr9Bz3Hk6Ja1";
const PATH: &str = "/stores/abc123/v3/catalog/products";

fn start(max_in_flight: usize) -> (MockBigCommerce, Bcgate) {
    start_with(max_in_flight, "")
}

/// With more `[server]` lines.
fn start_with(max_in_flight: usize, server_extra: &str) -> (MockBigCommerce, Bcgate) {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    let toml = format!(
        r#"[server]
listen = "127.0.0.1:0"
max_in_flight = {max_in_flight}
{server_extra}

[admin]
listen = "127.0.0.1:0"

[upstream]
base_url = "{base}"
ca_file = "ca.pem"
connect_timeout_ms = 2000
request_timeout_ms = 60000

[[stores]]
hash = "{STORE}"
token_env = "BC_TOKEN_ABC123"

[[clients]]
name = "overload"
key_sha256 = "{key}"
stores = ["{STORE}"]
default_store = "{STORE}"
scopes = ["store_v2_products"]
"#,
        base = mock.base_url(),
        key = key_sha256(KEY),
    );
    let dir = crate::support::process::temp_dir();
    ca.write_to(dir.path());
    let gate = Bcgate::start_in(dir, &toml, &[("BC_TOKEN_ABC123", TOKEN)]);
    (mock, gate)
}

/// `GET {PATH}?mock_delay_ms={delay_ms}` with the client's key.
async fn slow_get(gate: &Bcgate, http: &reqwest::Client, delay_ms: u64) -> Result<Resp, String> {
    try_send(
        http.get(gate.url(&format!("{PATH}?mock_delay_ms={delay_ms}")))
            .header("x-auth-token", KEY)
            .timeout(Duration::from_secs(60)),
    )
    .await
}

async fn admin_get(gate: &Bcgate, path: &str) -> Resp {
    let admin = gate.admin_addr().expect("an admin listener");
    send(
        plain_client()
            .get(format!("http://{admin}{path}"))
            .timeout(Duration::from_secs(10)),
    )
    .await
}

fn assert_overloaded(resp: &Resp) {
    assert_problem(resp, 503, "overloaded");
    assert_eq!(resp.header("retry-after"), Some("1"), "{:?}", resp.headers);
}

/// Times `needle` occurs in the logs, waiting (bounded) until it is `n`.
fn wait_for_count(gate: &Bcgate, needle: &str, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = gate.logs().matches(needle).count();
        if seen >= n || Instant::now() > deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// 40 requests at once against a limit of 4, each held 4 s by the upstream:
/// exactly 4 are served, the other 36 refused at once (long before the
/// upstream answers), and the admin endpoints answer meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_limit_requests_are_refused_at_once_and_admin_still_answers() {
    const LIMIT: usize = 4;
    const CALLERS: usize = 40;
    const DELAY_MS: u64 = 4_000;
    let (_mock, gate) = start(LIMIT);
    let http = plain_client();
    let gate = Arc::new(gate);
    let served_done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let calls: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (gate, http, done) = (gate.clone(), http.clone(), served_done.clone());
            tokio::spawn(async move {
                let resp = slow_get(&gate, &http, DELAY_MS).await;
                if resp.as_ref().is_ok_and(|r| r.status == 200) {
                    done.fetch_add(1, Ordering::SeqCst);
                }
                (resp, started.elapsed())
            })
        })
        .collect();

    // Once the refusals are out, the admitted four are still upstream.
    let refused = wait_for_count(&gate, "code=overloaded", CALLERS - LIMIT);
    assert_eq!(refused, CALLERS - LIMIT, "refusals logged\n{}", gate.logs());
    for path in ["/healthz", "/readyz", "/metrics"] {
        let resp = admin_get(&gate, path).await;
        assert_eq!(resp.status, 200, "{path} while overloaded: {}", resp.text());
    }
    assert_eq!(
        served_done.load(Ordering::SeqCst),
        0,
        "the admin checks ran after the admitted requests ended ({:?}): not while overloaded",
        started.elapsed()
    );

    let mut served = 0;
    let mut shed = 0;
    for call in calls {
        let (resp, at) = call.await.expect("caller task");
        let resp = resp.unwrap_or_else(|e| panic!("a request failed: {e}\n{}", gate.logs()));
        match resp.status {
            200 => {
                served += 1;
                assert!(
                    at >= Duration::from_millis(DELAY_MS),
                    "served early: {at:?}"
                );
            }
            _ => {
                assert_overloaded(&resp);
                // Not queued behind the admitted ones: answered before the upstream.
                assert!(
                    at < Duration::from_millis(DELAY_MS),
                    "refused only after {at:?}"
                );
                shed += 1;
            }
        }
    }
    assert_eq!((served, shed), (LIMIT, CALLERS - LIMIT));

    let text = admin_get(&gate, "/metrics").await.text();
    assert_eq!(
        metric(&text, "bcgate_requests_shed_total", &[]),
        (CALLERS - LIMIT) as f64,
        "{text}"
    );
    assert_eq!(
        metric(&text, "bcgate_denials_total", &[("code", "overloaded")]),
        (CALLERS - LIMIT) as f64
    );
    assert_eq!(metric(&text, "bcgate_in_flight_limit", &[]), LIMIT as f64);
    // The places are free again.
    let resp = slow_get(&gate, &http, 0).await.expect("a request after");
    assert_eq!(resp.status, 200, "{}", resp.text());
    gate.assert_logs_free_of(&[TOKEN, KEY]);
}

/// Bursts of 10× the limit, each request held by the upstream: every one is
/// served or refused with `overloaded`, and bcgate's memory stays bounded
/// (it does not grow from one burst to the next).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_ten_times_the_limit_is_served_or_refused_in_bounded_memory() {
    const LIMIT: usize = 40;
    const BURST: usize = 10 * LIMIT;
    const ROUNDS: usize = 3;
    let (_mock, gate) = start(LIMIT);
    let gate = Arc::new(gate);
    let http = plain_client();
    let burst = |delay_ms: u64| {
        let (gate, http) = (gate.clone(), http.clone());
        async move {
            let calls: Vec<_> = (0..BURST)
                .map(|_| {
                    let (gate, http) = (gate.clone(), http.clone());
                    tokio::spawn(async move { slow_get(&gate, &http, delay_ms).await })
                })
                .collect();
            let (mut served, mut shed) = (0, 0);
            for call in calls {
                let resp = call
                    .await
                    .expect("caller task")
                    .unwrap_or_else(|e| panic!("a request failed: {e}\n{}", gate.logs()));
                if resp.status == 200 {
                    served += 1;
                } else {
                    assert_overloaded(&resp);
                    shed += 1;
                }
            }
            (served, shed)
        }
    };
    // Warm: the connections, pools and allocator arenas a burst uses.
    burst(1_000).await;
    let rss_before = gate.status_kib("VmRSS").expect("VmRSS");
    let mut shed_total = 0;
    for _ in 0..ROUNDS {
        let (served, shed) = burst(1_000).await;
        assert_eq!(served + shed, BURST);
        assert!(served >= LIMIT, "served {served} of {BURST}");
        shed_total += shed;
    }
    let rss_after = gate.status_kib("VmRSS").expect("VmRSS");
    let peak = gate.status_kib("VmHWM").expect("VmHWM");
    println!(
        "{ROUNDS} bursts of {BURST} (limit {LIMIT}): {shed_total} shed; \
         RSS {rss_before} KiB → {rss_after} KiB, peak {peak} KiB"
    );
    assert!(shed_total > 0, "no burst went past the limit");
    assert!(
        rss_after < rss_before + 32 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB over {ROUNDS} bursts"
    );
    assert!(peak < 256 * 1024, "peak RSS {peak} KiB");
    let resp = slow_get(&gate, &http, 0).await.expect("a request after");
    assert_eq!(resp.status, 200, "{}", resp.text());
}

/// A keep-alive HTTP/1.1 connection that was answered `overloaded` still
/// times its next head: the refusal counts as a request begun and answered,
/// so a slow head after it gets 408 `header_timeout` as after any answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_refused_overloaded_still_times_its_next_head() {
    const DELAY_MS: u64 = 6_000;
    let (mock, gate) = start_with(1, "header_read_timeout_ms = 1000");
    let gate = Arc::new(gate);
    let busy = {
        let gate = gate.clone();
        tokio::spawn(async move { slow_get(&gate, &plain_client(), DELAY_MS).await })
    };
    // The slow request holds the only place once the upstream has it.
    let upstream =
        tokio::task::block_in_place(|| mock.wait_for_requests(1, Duration::from_secs(10)));
    assert_eq!(
        upstream.len(),
        1,
        "the slow request never reached the upstream"
    );
    let addr = gate.addr;
    let request = format!("GET {PATH} HTTP/1.1\r\nHost: bcgate\r\nX-Auth-Token: {KEY}\r\n\r\n");
    let outcome = tokio::task::spawn_blocking(move || {
        let mut conn = std::net::TcpStream::connect(addr).expect("connect");
        let refused = exchange_on(&mut conn, request.as_bytes(), false)?;
        let sent_at = Instant::now();
        let slow = exchange_on(&mut conn, b"GET / HTTP/1.1\r\nHost: bcg", false);
        Ok::<_, String>((refused, slow, sent_at.elapsed()))
    })
    .await
    .expect("raw client");
    let (refused, slow, after) = outcome.unwrap_or_else(|e| panic!("{e}\n{}", gate.logs()));
    assert_eq!(refused.status, 503, "{}", refused.body_text());
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.json()["code"], "overloaded");
    let slow = slow.unwrap_or_else(|e| {
        panic!(
            "no 408 for the slow head after an overloaded answer ({after:?}): {e}\n{}",
            gate.logs()
        )
    });
    assert_eq!(slow.status, 408, "{}", slow.body_text());
    assert_eq!(slow.json()["code"], "header_timeout");
    let resp = busy.await.expect("busy task").expect("the slow request");
    assert_eq!(resp.status, 200, "{}", resp.text());
}

/// `server.max_in_flight = 0` would refuse everything: bcgate does not start,
/// and says which key.
#[test]
fn a_limit_of_zero_is_refused_at_start() {
    let ca = TestCa::new();
    let dir = crate::support::process::temp_dir();
    ca.write_to(dir.path());
    let toml = "[server]\nlisten = \"127.0.0.1:0\"\nmax_in_flight = 0\n\n\
         [upstream]\nbase_url = \"https://127.0.0.1:9\"\nca_file = \"ca.pem\"\n";
    let Err(err) = Bcgate::try_start_in(dir, toml, &[]) else {
        panic!("bcgate started with max_in_flight = 0");
    };
    assert!(err.contains("server.max_in_flight"), "{err}");
    assert!(err.contains("greater than 0"), "{err}");
}
