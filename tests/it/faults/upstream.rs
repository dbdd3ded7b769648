//! The upstream refuses, shows a wrong certificate, never ends its
//! handshake, or resets mid-response.

use super::*;

// ---------------------------------------------------------------------------
// Upstream refused, wrong certificates, a handshake that never ends

#[tokio::test]
async fn upstream_refused_is_502_within_the_connect_timeout_and_serving_resumes() {
    let ca = TestCa::new();
    let down = unused_addr();
    let gate = start_gate(&ca, &format!("https://{down}"), &Opts::default());
    let http = plain_client();
    for attempt in 0..2 {
        let started = Instant::now();
        let resp = get(&gate, &http, "").await;
        let body = assert_problem(&resp, 502, "upstream_unavailable");
        assert_no_secret_in(&resp);
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(3_000),
            "refused connection #{attempt}: 502 after {took:?}"
        );
        println!("refused: {took:?}: {}", body["detail"]);
    }
    // The upstream comes back on the same address: bcgate uses it at once.
    let mock = MockBigCommerce::start_at(&ca, &STORES, down).expect("rebind the refused address");
    assert_serving(&gate, &http, "the upstream came back").await;
    assert_eq!(mock.requests().len(), 1);
    gate.assert_logs_free_of(&[TOKEN, KEY]);
}

/// Mock servers on one address in turn: two with a bad certificate, then a good one.
#[tokio::test]
async fn wrong_upstream_certificates_fail_closed_with_502_and_no_plaintext_retry() {
    let ca = TestCa::new();
    let other = TestCa::new();
    let alpn: &[&[u8]] = &[b"h2", b"http/1.1"];
    let cases: [(&str, Arc<rustls::ServerConfig>); 2] = [
        (
            "certificate signed by another CA",
            other.server_config(&["127.0.0.1", "localhost"], alpn),
        ),
        (
            "certificate for another host name",
            ca.server_config(&["api.wrong.example"], alpn),
        ),
    ];
    let addr = unused_addr();
    let gate = start_gate(&ca, &format!("https://{addr}"), &Opts::default());
    let http = plain_client();
    for (what, tls) in cases {
        let mock = MockBigCommerce::start_with_tls_at(tls, &STORES, addr).expect("bind mock");
        for _ in 0..2 {
            let started = Instant::now();
            let resp = get(&gate, &http, "").await;
            let body = assert_problem(&resp, 502, "upstream_unavailable");
            assert_no_secret_in(&resp);
            assert!(started.elapsed() < Duration::from_secs(3), "{what}");
            println!("{what}: {}", body["detail"]);
        }
        let stats = mock.wait_for_stats(Duration::from_millis(500), |s| {
            s.tls_failures >= s.connections
        });
        assert_eq!(
            stats.handlers_started, 0,
            "{what}: no request may reach an unverified upstream"
        );
        assert!(
            stats.connections >= 1,
            "{what}: bcgate should have tried: {stats:?}"
        );
        assert_eq!(
            stats.non_tls_connections, 0,
            "{what}: every connection must start a TLS handshake (no plaintext retry): {stats:?}"
        );
        assert_eq!(
            stats.tls_failures, stats.connections,
            "{what}: every handshake must fail: {stats:?}"
        );
        drop(mock);
    }
    let _good = MockBigCommerce::start_at(&ca, &STORES, addr).expect("bind good mock");
    assert_serving(&gate, &http, "bad certificates").await;
    gate.assert_logs_free_of(&[TOKEN, KEY]);
}

#[tokio::test]
async fn an_upstream_that_accepts_but_never_handshakes_is_504_within_the_request_timeout() {
    let ca = TestCa::new();
    // The kernel completes TCP handshakes into the backlog; nobody ever reads.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind silent listener");
    let addr = silent.local_addr().expect("silent address");
    let o = Opts {
        request_timeout_ms: 1_000,
        ..Opts::default()
    };
    let gate = start_gate(&ca, &format!("https://{addr}"), &o);
    let http = plain_client();
    let started = Instant::now();
    let resp = get(&gate, &http, "").await;
    assert_problem(&resp, 504, "upstream_timeout");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(3_500),
        "TLS stall: 504 after {took:?}"
    );
    drop(silent);
    let _good = MockBigCommerce::start_at(&ca, &STORES, addr).expect("bind good mock");
    assert_serving(&gate, &http, "a stalled handshake").await;
    gate.assert_logs_free_of(&[TOKEN, KEY]);
}

// ---------------------------------------------------------------------------
// Reset mid-response

/// Read everything until the peer closes (bounded); returns the bytes and
/// whether the close came within the bound.
fn read_to_close(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    match watch(stream, Instant::now(), limit) {
        Fate::Closed { bytes, .. } => (bytes, true),
        Fate::Open { bytes } => (bytes, false),
    }
}

async fn reset_mid_response(up: Up) {
    const SENT: usize = 4096;
    let fx = fixture(up, &Opts::default());
    let target = format!("{PATH}?mock_reset_after={SENT}");

    // HTTP/1.1 caller, raw: the head arrives, then SENT bytes, then the
    // connection ends without completing the declared body.
    let mut s = connect(fx.gate.addr);
    s.write_all(head("GET", &target, "").as_bytes())
        .expect("write request");
    let (bytes, closed) = read_to_close(&mut s, Duration::from_secs(5));
    assert!(
        closed,
        "{up:?}: bcgate must end the caller's connection when the upstream cuts the body"
    );
    let (status, resp_head, body) =
        parse_response(&bytes).unwrap_or_else(|| panic!("{up:?}: no response head: {bytes:?}"));
    assert_eq!(status, 200, "{up:?}: the upstream's head: {resp_head}");
    match header_of(&resp_head, "content-length") {
        Some(len) => {
            let len: usize = len.parse().expect("content-length");
            assert_eq!(len, SENT + 1024, "{up:?}: the upstream's declared length");
            assert_eq!(
                body.len(),
                SENT,
                "{up:?}: the caller gets what the upstream sent, and no more"
            );
            assert!(body == pattern(SENT), "{up:?}: bytes as sent");
        }
        None => {
            // Chunked: the final 0-size chunk must be missing.
            assert!(
                !body.ends_with(b"0\r\n\r\n"),
                "{up:?}: a cut upstream body must not end cleanly: {resp_head}"
            );
        }
    }
    println!(
        "{up:?} upstream reset: caller got the head and {} body bytes, then the connection closed",
        body.len()
    );

    // reqwest over HTTP/1.1 sees an error reading the body.
    let resp = fx
        .http
        .get(fx.gate.url(&target))
        .header("x-auth-token", KEY)
        .send()
        .await
        .expect("response head arrives");
    assert_eq!(resp.status(), 200);
    let err = resp
        .bytes()
        .await
        .expect_err("the body must fail, not end short and clean");
    println!("{up:?} upstream reset, HTTP/1.1 caller: {err:?}");

    // An h2c caller sees its stream fail; the connection stays usable.
    let h2 = h2c_client();
    let resp = h2
        .get(fx.gate.url(&target))
        .header("x-auth-token", KEY)
        .send()
        .await
        .expect("response head arrives over h2c");
    assert_eq!(resp.status(), 200);
    let err = resp
        .bytes()
        .await
        .expect_err("the h2c body must fail, not end short and clean");
    println!("{up:?} upstream reset, h2c caller: {err:?}");
    assert_serving(&fx.gate, &h2, "a reset (h2c caller)").await;

    fx.assert_serving("an upstream reset").await;
    fx.assert_no_secrets_logged();
}

/// Upstream connections are kept and reused: sequential requests of every
/// body shape share one; a burst opens at most one per request in flight and
/// later requests reuse those; a response cut by the upstream is not reused.
async fn connections_are_reused(up: Up) {
    let fx = fixture(up, &Opts::default());
    let conns = |fx: &Fx| fx.mock.wait_for_stats(Duration::ZERO, |_| true).connections;
    // Sized (Content-Length), streamed (chunked), empty (HEAD), bcgate-read (GraphQL) bodies.
    for round in 0..5 {
        assert_eq!(fx.get("").await.status, 200, "round {round}");
        let resp = fx.get("?mock_bytes=70000").await;
        assert_eq!(resp.status, 200);
        assert!(
            resp.body == pattern(70_000),
            "{up:?}: streamed bytes intact"
        );
        let head = send(fx.http.head(fx.gate.url(PATH)).header("x-auth-token", KEY)).await;
        assert_eq!(head.status, 200);
        let gql = send(
            fx.http
                .post(fx.gate.url(GRAPHQL))
                .header("x-auth-token", KEY)
                .header("content-type", "application/json")
                .body(r#"{"query":"{ site { settings { storeName } } }"}"#),
        )
        .await;
        assert_eq!(gql.status, 200, "{}", gql.text());
    }
    assert_eq!(
        conns(&fx),
        1,
        "{up:?}: 20 sequential requests on one upstream connection"
    );

    let burst = futures_util::future::join_all(
        (0..8).map(|_| get(&fx.gate, &fx.http, "?mock_delay_ms=200")),
    )
    .await;
    assert!(burst.iter().all(|r| r.status == 200));
    let after_burst = conns(&fx);
    let most = if up == Up::H2 { 1 } else { 1 + 8 };
    assert!(
        after_burst <= most,
        "{up:?}: 8 concurrent requests opened {after_burst} connections in all"
    );
    for _ in 0..10 {
        assert_eq!(fx.get("").await.status, 200);
    }
    assert_eq!(
        conns(&fx),
        after_burst,
        "{up:?}: later requests reuse the pool"
    );

    // A body the upstream cuts breaks that connection (HTTP/1.1); the next
    // request still gets through.
    let cut = fx
        .http
        .get(fx.gate.url(&format!("{PATH}?mock_reset_after=100")))
        .header("x-auth-token", KEY)
        .send()
        .await
        .expect("head");
    assert!(cut.bytes().await.is_err(), "{up:?}: the cut body fails");
    fx.assert_serving("a cut body").await;
    println!(
        "{up:?}: upstream connections: {after_burst} after the burst, {} at the end",
        conns(&fx)
    );
    fx.assert_no_secrets_logged();
}

#[tokio::test]
async fn upstream_connections_are_reused_over_h1() {
    connections_are_reused(Up::H1).await;
}

#[tokio::test]
async fn the_upstream_h2_connection_is_shared() {
    connections_are_reused(Up::H2).await;
}

#[tokio::test]
async fn upstream_reset_mid_response_over_h2_cuts_the_caller_and_serving_continues() {
    reset_mid_response(Up::H2).await;
}

#[tokio::test]
async fn upstream_reset_mid_response_over_h1_cuts_the_caller_and_serving_continues() {
    reset_mid_response(Up::H1).await;
}
