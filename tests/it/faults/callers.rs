//! Slow callers, and HTTP/2 callers: concurrent streams and a rapid-reset
//! flood.

use super::*;

// ---------------------------------------------------------------------------
// Slow clients (server.header_read_timeout_ms = 1000, body_read_timeout_ms = 1000)

#[test]
fn slowloris_first_head_is_cut_off_by_the_header_read_timeout() {
    let fx = fixture(Up::H2, &Opts::default());
    let mut s = connect(fx.gate.addr);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let writer = trickle(
        &s,
        head("GET", PATH, "").into_bytes(),
        Duration::from_millis(500),
        stop.clone(),
    );
    let fate = watch(&mut s, started, WATCH);
    stop.store(true, Ordering::SeqCst);
    let sent = writer.join().expect("writer thread");
    println!("slowloris (first head): {sent} bytes sent, {fate:?}");
    assert_cut_off(fate, "slowloris, first request head", SLOW_BOUND);
    assert_eq!(fx.mock.stats().handlers_started, 0);
}

#[test]
fn a_connection_that_never_sends_is_closed_by_the_header_read_timeout() {
    let fx = fixture(Up::H2, &Opts::default());
    let mut s = connect(fx.gate.addr);
    let fate = watch(&mut s, Instant::now(), WATCH);
    assert_cut_off(fate, "silent connection", SLOW_BOUND);
}

#[test]
fn a_partial_h2c_preface_is_cut_off_by_the_header_read_timeout() {
    let fx = fixture(Up::H2, &Opts::default());
    let mut s = connect(fx.gate.addr);
    s.write_all(b"PRI * HTTP/2.0\r\n")
        .expect("write half a preface");
    let fate = watch(&mut s, Instant::now(), WATCH);
    assert_cut_off(fate, "partial h2c preface", SLOW_BOUND);
}

#[test]
fn slowloris_on_a_kept_alive_connection_is_cut_off_by_the_header_read_timeout() {
    let fx = fixture(Up::H2, &Opts::default());
    let mut s = connect(fx.gate.addr);
    let first = exchange_on(&mut s, head("GET", PATH, "").as_bytes(), false)
        .expect("first request on the connection");
    assert_eq!(first.status, 200, "{}", first.body_text());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let writer = trickle(
        &s,
        head("GET", PATH, "").into_bytes(),
        Duration::from_millis(500),
        stop.clone(),
    );
    let fate = watch(&mut s, started, WATCH);
    stop.store(true, Ordering::SeqCst);
    let sent = writer.join().expect("writer thread");
    println!("slowloris (second head): {sent} bytes sent, {fate:?}");
    assert_cut_off(fate, "slowloris, second request head", SLOW_BOUND);
}

#[test]
fn an_idle_kept_alive_connection_is_closed_after_the_header_read_timeout() {
    let fx = fixture(Up::H2, &Opts::default());
    let mut s = connect(fx.gate.addr);
    let first = exchange_on(&mut s, head("GET", PATH, "").as_bytes(), false)
        .expect("first request on the connection");
    assert_eq!(first.status, 200, "{}", first.body_text());
    let fate = watch(&mut s, Instant::now(), WATCH);
    assert_cut_off(fate, "idle keep-alive connection", SLOW_BOUND);
}

/// A request body that stops (head and 10 of 100 bytes sent), on a route
/// whose body is streamed to the upstream and on one whose body bcgate reads
/// first (GraphQL): each is answered within about `body_read_timeout_ms`.
#[test]
fn a_stalled_request_body_is_cut_off_by_the_body_read_timeout() {
    let fx = fixture(Up::H2, &Opts::default());
    for (what, path, forwarded) in [
        ("streamed body (POST products)", PATH, true),
        ("inspected body (POST graphql)", GRAPHQL, false),
    ] {
        fx.mock.clear();
        let before = fx.mock.stats();
        let mut s = connect(fx.gate.addr);
        let started = Instant::now();
        s.write_all(
            head(
                "POST",
                path,
                "content-type: application/json\r\ncontent-length: 100\r\n",
            )
            .as_bytes(),
        )
        .expect("write head");
        s.write_all(b"{\"query\":").expect("write some body");
        let fate = watch(&mut s, started, WATCH);
        let (after, bytes) = match fate {
            Fate::Closed { after, bytes } => (after, bytes),
            Fate::Open { bytes } => panic!(
                "{what}: no answer and still open after {WATCH:?}; sent {:?}",
                String::from_utf8_lossy(&bytes)
            ),
        };
        let (status, resp_head, body) = parse_response(&bytes).unwrap_or_else(|| {
            panic!("{what}: closed after {after:?} without an answer: {bytes:?}")
        });
        let json: serde_json::Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{what}: {status} body is not JSON ({e}): {resp_head}"));
        println!("{what}: {status} after {after:?}: {json}");
        assert_eq!(status, 408, "{what}: {json}");
        check_problem_body(&json, 408, "body_timeout");
        assert!(
            after >= Duration::from_millis(900) && after <= SLOW_BOUND,
            "{what}: answered after {after:?}"
        );
        let stats = fx.mock.wait_for_stats(Duration::from_secs(1), |s| {
            !forwarded || (s.in_flight == 0 && s.handlers_started > before.handlers_started)
        });
        if forwarded {
            // The upstream saw the request start and its body end in an error.
            assert_eq!(stats.in_flight, 0, "{what}: {stats:?}");
            let recs = fx.mock.requests();
            assert!(
                recs.iter().all(|r| !r.body_complete),
                "{what}: the upstream must not see a complete body: {recs:?}"
            );
        } else {
            assert_eq!(
                stats.handlers_started, before.handlers_started,
                "{what}: nothing forwarded"
            );
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(fx.assert_serving("stalled bodies"));
    fx.assert_no_secrets_logged();
}

// ---------------------------------------------------------------------------
// HTTP/2 from callers: concurrent streams and a rapid-reset flood

/// All of 250 concurrent streams on one h2c connection complete; the number
/// bcgate works on at once (seen as the upstream's peak in-flight) is bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_concurrent_streams_are_bounded_and_all_complete() {
    const STREAMS: usize = 250;
    let fx = fixture(Up::H2, &Opts::default());
    fx.mock.set_recording(false);
    let (send, conn) = h2c_connect(fx.gate.addr).await;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(STREAMS);
    for _ in 0..STREAMS {
        let mut send = send.clone();
        let req = h2_get(fx.gate.addr, &format!("{PATH}?mock_delay_ms=1000"));
        tasks.push(tokio::spawn(async move {
            let resp = send.send_request(req).await?;
            let status = resp.status().as_u16();
            http_body_util::BodyExt::collect(resp.into_body()).await?;
            Ok::<u16, hyper::Error>(status)
        }));
    }
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for t in tasks {
        let s = match t.await.expect("join") {
            Ok(status) => status.to_string(),
            Err(e) => format!("error: {e}"),
        };
        *statuses.entry(s).or_default() += 1;
    }
    let took = started.elapsed();
    let stats: MockStats = fx.mock.stats();
    println!(
        "h2c: {STREAMS} concurrent streams on one connection: {statuses:?} in {took:?}; \
         peak upstream in-flight (= streams bcgate served at once) {}",
        stats.peak_in_flight
    );
    assert_eq!(
        statuses.get("200").copied().unwrap_or(0),
        STREAMS,
        "{statuses:?}"
    );
    assert!(
        stats.peak_in_flight < STREAMS as u64 && stats.peak_in_flight >= 10,
        "bcgate should bound concurrent streams per connection below {STREAMS}: peak {}",
        stats.peak_in_flight
    );
    drop(send);
    let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
    assert_serving(&fx.gate, &fx.http, "many streams").await;
    fx.assert_no_secrets_logged();
}

/// Rapid reset (CVE-2023-44487), emulated with hyper's client: open streams
/// and drop them a moment later (hyper sends RST_STREAM(CANCEL) for each).
/// Phase 1 floods one connection as fast as it can; phase 2 resets streams
/// only once bcgate has forwarded them, so the upstream work must be
/// cancelled too. bcgate must survive and serve afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_rapid_reset_flood_is_survived() {
    const FLOOD: usize = 5_000;
    const BATCH: usize = 50;
    let fx = fixture(Up::H2, &Opts::default());
    fx.mock.set_recording(false);
    assert_serving(&fx.gate, &fx.http, "warm-up").await;
    let rss_before = fx.gate.status_kib("VmRSS").unwrap_or(0);
    let threads_before = fx.gate.threads();

    // Phase 1: flood.
    let (send, conn) = h2c_connect(fx.gate.addr).await;
    let started = Instant::now();
    let mut opened = 0usize;
    let mut early = std::collections::BTreeMap::<String, usize>::new();
    'flood: for _ in 0..FLOOD / BATCH {
        let mut tasks = Vec::with_capacity(BATCH);
        for _ in 0..BATCH {
            if send.is_closed() {
                break 'flood;
            }
            let mut send = send.clone();
            let req = h2_get(fx.gate.addr, &format!("{PATH}?mock_delay_ms=2000"));
            tasks.push(tokio::spawn(async move { send.send_request(req).await }));
            opened += 1;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        for t in tasks {
            if t.is_finished() {
                let what = match t.await {
                    Ok(Ok(resp)) => resp.status().to_string(),
                    Ok(Err(e)) => format!("error: {e}"),
                    Err(e) => format!("join: {e}"),
                };
                *early.entry(what).or_default() += 1;
            } else {
                t.abort();
            }
        }
    }
    let flood_took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let closed = send.is_closed();
    drop(send);
    let conn_end = tokio::time::timeout(Duration::from_secs(3), conn).await;
    let after_flood = fx
        .mock
        .wait_for_stats(Duration::from_millis(1_500), |s| s.in_flight == 0);
    println!(
        "rapid reset, phase 1: {opened} streams opened and reset in {flood_took:?} \
         (finished before their reset: {early:?}); bcgate closed the connection: {closed}; \
         connection end: {conn_end:?}; upstream requests started {}, cancelled {}, \
         completed {}, in flight {}",
        after_flood.handlers_started - 1,
        after_flood.handlers_cancelled,
        after_flood.handlers_completed - 1,
        after_flood.in_flight
    );
    assert_eq!(
        after_flood.in_flight, 0,
        "flood: every upstream request a reset stream started must be cancelled: {after_flood:?}"
    );

    // Phase 2: reset streams bcgate has already forwarded.
    let (send, conn) = h2c_connect(fx.gate.addr).await;
    let mut forwarded_then_reset = 0u64;
    for round in 0..4 {
        let before = fx.mock.stats();
        let mut tasks = Vec::new();
        for _ in 0..BATCH {
            let mut send = send.clone();
            let req = h2_get(fx.gate.addr, &format!("{PATH}?mock_delay_ms=5000"));
            tasks.push(tokio::spawn(async move { send.send_request(req).await }));
        }
        let reached = fx.mock.wait_for_stats(Duration::from_secs(5), |s| {
            s.handlers_started - before.handlers_started >= BATCH as u64
        });
        for t in &tasks {
            t.abort();
        }
        let done = fx
            .mock
            .wait_for_stats(Duration::from_secs(2), |s| s.in_flight == 0);
        println!(
            "rapid reset, phase 2 round {round}: {} forwarded, then reset; upstream in flight afterwards {}",
            reached.handlers_started - before.handlers_started,
            done.in_flight
        );
        assert_eq!(
            done.in_flight, 0,
            "round {round}: reset streams must cancel their upstream requests: {done:?}"
        );
        assert_eq!(done.handlers_completed, before.handlers_completed);
        forwarded_then_reset += done.handlers_cancelled - before.handlers_cancelled;
        if send.is_closed() {
            println!("rapid reset, phase 2: bcgate closed the connection after round {round}");
            break;
        }
    }
    drop(send);
    let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;

    let rss_after = fx.gate.status_kib("VmRSS").unwrap_or(0);
    println!(
        "rapid reset: {forwarded_then_reset} forwarded streams reset and cancelled upstream; \
         bcgate VmRSS {rss_before} KiB -> {rss_after} KiB, threads {threads_before} -> {}",
        fx.gate.threads()
    );
    // bcgate serves at once, over HTTP/1.1 and on a fresh h2c connection.
    let t = Instant::now();
    assert_serving(&fx.gate, &fx.http, "a rapid-reset flood").await;
    assert_serving(&fx.gate, &h2c_client(), "a rapid-reset flood (h2c)").await;
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    fx.assert_no_secrets_logged();
}
