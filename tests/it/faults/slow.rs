//! Slow upstream headers and bodies, upstream errors passed through, and a
//! caller that leaves cancelling the upstream request.

use super::*;

// ---------------------------------------------------------------------------
// Slow headers, slow body

async fn slow_headers(up: Up) {
    let fx = fixture(
        up,
        &Opts {
            request_timeout_ms: 1_000,
            ..Opts::default()
        },
    );
    let started = Instant::now();
    let resp = fx.get("?mock_delay_ms=5000").await;
    let took = started.elapsed();
    let body = assert_problem(&resp, 504, "upstream_timeout");
    assert_no_secret_in(&resp);
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(3_000),
        "{up:?}: 504 after {took:?} (request_timeout_ms = 1000)"
    );
    println!(
        "{up:?} slow headers: 504 after {took:?}: {}",
        body["detail"]
    );
    // bcgate gave up on the upstream request too (it does not run on).
    let stats = fx
        .mock
        .wait_for_stats(Duration::from_secs(1), |s| s.handlers_cancelled >= 1);
    assert_eq!(
        (stats.handlers_cancelled, stats.handlers_completed),
        (1, 0),
        "{up:?}: the timed-out upstream request should be cancelled: {stats:?}"
    );
    fx.assert_serving("a 504").await;
    fx.assert_no_secrets_logged();
}

#[tokio::test]
async fn slow_upstream_headers_over_h2_are_504_in_about_the_request_timeout() {
    slow_headers(Up::H2).await;
}

#[tokio::test]
async fn slow_upstream_headers_over_h1_are_504_in_about_the_request_timeout() {
    slow_headers(Up::H1).await;
}

/// Documented behaviour: `request_timeout_ms` bounds the wait for the
/// response head, and then each silence within the body. A body that trickles
/// is streamed through as it comes, however long it takes in all; one that
/// stops for longer is cut.
#[tokio::test]
async fn slow_upstream_body_is_streamed_through_past_the_request_timeout() {
    let fx = fixture(
        Up::H2,
        &Opts {
            request_timeout_ms: 1_000,
            ..Opts::default()
        },
    );
    let started = Instant::now();
    let mut resp = fx
        .http
        .get(
            fx.gate
                .url(&format!("{PATH}?mock_trickle_ms=250&mock_bytes=8")),
        )
        .header("x-auth-token", KEY)
        .send()
        .await
        .expect("response head");
    let head_after = started.elapsed();
    assert_eq!(resp.status(), 200);
    assert!(
        head_after < Duration::from_millis(1_500),
        "the head comes long before the 2 s body ends: {head_after:?}"
    );
    let mut body = Vec::new();
    let mut arrivals = Vec::new();
    while let Some(chunk) = resp.chunk().await.expect("body chunk") {
        body.extend_from_slice(&chunk);
        arrivals.push(started.elapsed());
    }
    let total = started.elapsed();
    assert_eq!(body, pattern(8), "the whole body");
    assert!(
        total >= Duration::from_millis(1_900),
        "8 pieces 250 ms apart: {total:?}"
    );
    let first = arrivals.first().copied().unwrap_or_default();
    assert!(
        first < Duration::from_millis(1_500) && arrivals.len() >= 4,
        "streamed, not buffered: pieces arrived at {arrivals:?}"
    );
    println!(
        "slow body: head after {head_after:?}, {} pieces, first at {first:?}, done after {total:?} (request_timeout_ms = 1000)",
        arrivals.len()
    );
    let stats = fx
        .mock
        .wait_for_stats(Duration::from_secs(1), |s| s.bodies_completed >= 1);
    assert_eq!(stats.bodies_completed, 1, "{stats:?}");

    // A body silent for longer than the request timeout is cut after about it.
    // The silence is 5 s so that a loaded machine cannot finish the body first.
    let started = Instant::now();
    let resp = fx
        .http
        .get(
            fx.gate
                .url(&format!("{PATH}?mock_trickle_ms=5000&mock_bytes=2")),
        )
        .header("x-auth-token", KEY)
        .send()
        .await
        .expect("response head");
    assert_eq!(resp.status(), 200);
    let cut = resp.bytes().await;
    let took = started.elapsed();
    assert!(cut.is_err(), "a stalled body must fail, not end clean");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(4_500),
        "cut after about the 1 s request timeout of silence: {took:?}"
    );
    println!("stalled upstream body: cut after {took:?} (request_timeout_ms = 1000)");
    // Counted before the next case, so that its cut is told apart from this one.
    let stats = fx
        .mock
        .wait_for_stats(Duration::from_secs(3), |s| s.bodies_cut >= 1);
    assert_eq!(
        stats.bodies_cut, 1,
        "the stalled upstream body should be dropped with the caller's: {stats:?}"
    );

    // A caller that gives up during a slow body cuts the upstream body too.
    let mut s = connect(fx.gate.addr);
    s.write_all(
        head(
            "GET",
            &format!("{PATH}?mock_trickle_ms=200&mock_bytes=50"),
            "",
        )
        .as_bytes(),
    )
    .expect("write request");
    let mut buf = [0u8; 512];
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let n = s.read(&mut buf).expect("the head arrives");
    assert!(n > 0);
    std::thread::sleep(Duration::from_millis(300));
    drop(s);
    let gone = Instant::now();
    let stats = fx
        .mock
        .wait_for_stats(Duration::from_secs(3), |s| s.bodies_cut >= 2);
    assert_eq!(
        stats.bodies_cut, 2,
        "the upstream body should be dropped when the caller leaves: {stats:?}"
    );
    println!(
        "slow body, caller left: upstream body dropped {:?} later",
        gone.elapsed()
    );
    fx.assert_serving("a slow body").await;
    fx.assert_no_secrets_logged();
}

// ---------------------------------------------------------------------------
// Upstream errors pass through as the upstream's own answers

#[tokio::test]
async fn upstream_5xx_pass_through_with_the_upstreams_json() {
    let fx = fixture(Up::H2, &Opts::default());
    for status in [500u16, 502, 503, 504] {
        let resp = fx.get(&format!("?mock_status={status}")).await;
        assert_eq!(resp.status, status, "{}", resp.text());
        let ct = resp.header("content-type").unwrap_or_default();
        assert_eq!(
            ct, "application/json",
            "{status}: the upstream's content type"
        );
        let body = resp.json();
        assert_eq!(body["type"], BC_ERROR_TYPE, "{status}: the upstream's body");
        assert_eq!(body["status"], status);
        assert!(
            body.get("code").is_none(),
            "{status}: not one of bcgate's problems: {body}"
        );
        assert!(resp.header("x-request-id").is_some());
        assert!(resp.header("x-rate-limit-requests-left").is_some());
    }
    fx.assert_serving("upstream 5xx").await;
    fx.assert_no_secrets_logged();
}

#[tokio::test]
async fn upstream_429_passes_through_with_or_without_rate_limit_headers() {
    let fx = fixture(Up::H2, &Opts::default());
    let rate_headers = |r: &Resp| -> Vec<String> {
        r.headers
            .keys()
            .map(|k| k.as_str().to_owned())
            .filter(|k| k.starts_with("x-rate-limit-") || k == "x-retry-after")
            .collect()
    };

    // With BigCommerce's headers (the mock's default).
    let resp = fx.get("?mock_status=429").await;
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("x-retry-after"), Some(RETRY_AFTER));
    assert!(resp.header("x-rate-limit-requests-left").is_some());

    // Without any: passed through as is; bcgate adds none of its own.
    let resp = fx.get("?mock_status=429&mock_no_ratelimit=1").await;
    assert_eq!(resp.status, 429, "{}", resp.text());
    assert_eq!(resp.json()["type"], BC_ERROR_TYPE, "the upstream's body");
    assert!(
        rate_headers(&resp).is_empty(),
        "no rate-limit headers invented: {:?}",
        rate_headers(&resp)
    );
    assert!(resp.header("x-request-id").is_some());

    // Only X-Retry-After: it passes through.
    let resp = fx
        .get("?mock_status=429&mock_no_ratelimit=1&mock_retry_after=7")
        .await;
    assert_eq!(resp.status, 429);
    assert_eq!(rate_headers(&resp), vec!["x-retry-after".to_owned()]);
    assert_eq!(resp.header("x-retry-after"), Some("7"));

    fx.assert_serving("a 429").await;
    fx.assert_no_secrets_logged();
}

// ---------------------------------------------------------------------------
// A caller that leaves cancels the upstream request

async fn caller_leaves_h1(up: Up) {
    let fx = fixture(up, &Opts::default());
    let mut s = connect(fx.gate.addr);
    s.write_all(head("GET", &format!("{PATH}?mock_delay_ms=3000"), "").as_bytes())
        .expect("write request");
    let stats = fx
        .mock
        .wait_for_stats(Duration::from_secs(3), |s| s.handlers_started >= 1);
    assert_eq!(stats.handlers_started, 1, "{up:?}: forwarded: {stats:?}");
    std::thread::sleep(Duration::from_millis(200));
    drop(s);
    let gone = Instant::now();
    let stats = fx
        .mock
        .wait_for_stats(Duration::from_secs(2), |s| s.handlers_cancelled >= 1);
    let took = gone.elapsed();
    assert_eq!(
        (stats.handlers_cancelled, stats.handlers_completed),
        (1, 0),
        "{up:?}: the upstream request must be cancelled when the caller leaves: {stats:?}"
    );
    assert!(
        took < Duration::from_secs(1),
        "{up:?}: cancelled {took:?} after the caller left"
    );
    println!("{up:?} upstream, HTTP/1.1 caller left: upstream request cancelled after {took:?}");
    fx.assert_serving("a caller that left").await;
    fx.assert_no_secrets_logged();
}

#[tokio::test]
async fn a_caller_that_disconnects_cancels_the_upstream_request_over_h2() {
    caller_leaves_h1(Up::H2).await;
}

#[tokio::test]
async fn a_caller_that_disconnects_cancels_the_upstream_request_over_h1() {
    caller_leaves_h1(Up::H1).await;
}

// Multi-threaded: the wait below blocks its thread, and the client's
// connection task must run meanwhile to send the RST_STREAM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_caller_that_resets_its_stream_cancels_the_upstream_request() {
    let fx = fixture(Up::H2, &Opts::default());
    let h2 = h2c_client();
    // Warm the connection so the drop below resets a stream, not a handshake.
    assert_serving(&fx.gate, &h2, "warm-up").await;
    let before = fx.mock.stats();
    let req = h2
        .get(fx.gate.url(&format!("{PATH}?mock_delay_ms=3000")))
        .header("x-auth-token", KEY)
        .send();
    let mock = &fx.mock;
    let waited = tokio::time::timeout(Duration::from_secs(3), async {
        tokio::pin!(req);
        loop {
            tokio::select! {
                r = &mut req => panic!("the delayed request finished early: {r:?}"),
                () = tokio::time::sleep(Duration::from_millis(20)) => {
                    if mock.stats().handlers_started > before.handlers_started {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        return; // drops the request: RST_STREAM(CANCEL)
                    }
                }
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "the request never reached the upstream");
    let gone = Instant::now();
    let stats = fx.mock.wait_for_stats(Duration::from_secs(2), |s| {
        s.handlers_cancelled > before.handlers_cancelled
    });
    let took = gone.elapsed();
    assert_eq!(
        stats.handlers_cancelled - before.handlers_cancelled,
        1,
        "the upstream request must be cancelled when the h2c stream is reset: {stats:?}"
    );
    assert!(took < Duration::from_secs(1), "cancelled after {took:?}");
    println!("h2c caller reset its stream: upstream request cancelled after {took:?}");
    assert_serving(&fx.gate, &h2, "a reset stream (same h2c connection)").await;
    fx.assert_no_secrets_logged();
}
