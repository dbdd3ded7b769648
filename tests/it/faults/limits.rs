//! Under load and faults: idle HTTP/2, descriptors, the listen backlog,
//! truncated answers, slow bodies, a slow second head, the open-files limit.

use super::*;

// ---------------------------------------------------------------------------
// Under load and faults: idle HTTP/2, descriptors, the listen backlog,
// truncated answers, slow bodies, a slow second head

/// `/metrics` from the admin listener.
async fn metrics_text(gate: &Bcgate) -> String {
    let admin = gate.admin_addr().expect("an admin listener");
    send(plain_client().get(format!("http://{admin}/metrics")))
        .await
        .text()
}

/// The access-log line of request `id`, waiting (bounded) for it.
fn access_line(gate: &Bcgate, id: &str) -> String {
    let needle = format!("request_id={id} ");
    assert!(
        gate.wait_for_log(&needle, Duration::from_secs(5)),
        "no access-log line for {id}:\n{}",
        gate.logs()
    );
    gate.logs()
        .lines()
        .find(|l| l.contains("bcgate::access") && l.contains(&needle))
        .unwrap_or_default()
        .to_owned()
}

/// An h2c connection that sends the preface and SETTINGS, answers PINGs,
/// and never opens a stream. The `SendRequest` is kept: dropping it would
/// close the connection.
async fn idle_h2c(addr: SocketAddr) -> (H2Send, tokio::task::JoinHandle<hyper::Result<()>>) {
    h2c_connect(addr).await
}

/// 60 idle h2c connections against a bcgate that may hold 64 descriptors:
/// connections past `max_connections` wait in the backlog instead of using
/// descriptors, idle ones are closed after the header timeout (the HTTP/2
/// idle and first-request deadline), and a normal request gets through
/// while the idle clients are still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_h2c_connections_are_closed_and_cannot_exhaust_descriptors() {
    const IDLE: usize = 60;
    const NOFILE: u64 = 64;
    let ca = TestCa::new();
    let mock = start_mock(&ca, Up::H2);
    let o = Opts {
        header_read_timeout_ms: 500,
        server_extra: "max_connections = 15".into(),
        admin: true,
        ..Opts::default()
    };
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    let gate = Bcgate::start_with_nofile_in(
        (NOFILE, NOFILE),
        dir,
        &config_toml(&mock.base_url(), &o),
        &[("BC_TOKEN_ABC123", TOKEN), ("BCGATE_LOG", "debug")],
    );
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(idle_h2c(gate.addr).await);
    }
    let started = Instant::now();
    let http = plain_client();
    let resp = try_send(
        http.get(gate.url(PATH))
            .header("x-auth-token", KEY)
            .timeout(Duration::from_secs(15)),
    )
    .await;
    let took = started.elapsed();
    let resp = resp.unwrap_or_else(|e| {
        panic!(
            "a normal request failed behind {IDLE} idle h2c connections after {took:?}: {e}\n{}",
            gate.logs()
        )
    });
    assert_eq!(resp.status, 200, "{}", resp.text());
    println!("{IDLE} idle h2c connections: a normal request got through after {took:?}");
    let fds = gate.open_fds();
    assert!(
        fds < NOFILE as usize,
        "bcgate holds {fds} descriptors (limit {NOFILE})"
    );
    // bcgate closed every idle connection itself (the clients never would).
    let deadline = Instant::now() + Duration::from_secs(10);
    for (i, (_send, conn)) in idle.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            tokio::time::timeout(left, conn).await.is_ok(),
            "idle h2c connection #{i} still open after {:?}",
            started.elapsed()
        );
    }
    let text = metrics_text(&gate).await;
    let closed = metric(
        &text,
        "bcgate_idle_connections_closed_total",
        &[("protocol", "http2")],
    );
    assert!(
        closed >= IDLE as f64,
        "idle h2c closes counted: {closed}\n{text}"
    );
    assert_eq!(metric(&text, "bcgate_connection_limit", &[]), 15.0);
    assert!(metric(&text, "bcgate_connection_limit_waits_total", &[]) >= 1.0);
    assert!(
        !gate.logs().contains("Too many open files"),
        "bcgate ran out of descriptors:\n{}",
        gate.logs()
    );
    gate.assert_logs_free_of(&[TOKEN, KEY]);
}

/// An HTTP/2 connection that made requests is closed once idle for the
/// header timeout, like an HTTP/1.1 keep-alive connection.
#[tokio::test]
async fn an_idle_h2c_connection_is_closed_after_its_last_request() {
    let fx = fixture(Up::H2, &Opts::default());
    let (mut send, conn) = h2c_connect(fx.gate.addr).await;
    let resp = send
        .send_request(h2_get(fx.gate.addr, PATH))
        .await
        .expect("a request on the h2c connection");
    assert_eq!(resp.status(), 200);
    http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("body");
    let idle_from = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(5), conn).await;
    let after = idle_from.elapsed();
    assert!(ended.is_ok(), "the idle h2c connection is still open");
    assert!(
        after >= Duration::from_millis(800),
        "closed too early: {after:?}"
    );
    println!("idle h2c connection closed {after:?} after its last answer");
    assert_serving(&fx.gate, &h2c_client(), "an idle close").await;
    fx.assert_no_secrets_logged();
}

/// A burst of connects while bcgate cannot accept (stopped) completes in the
/// kernel's backlog (`server.listen_backlog`, 1024 by default) instead of
/// overflowing the runtime's default of 128 into SYN retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_connects_fits_in_the_listen_backlog() {
    const BURST: usize = 400;
    let fx = fixture(Up::H2, &Opts::default());
    fx.assert_serving("start").await;
    fx.gate.signal("STOP");
    let addr = fx.gate.addr;
    let tasks: Vec<_> = (0..BURST)
        .map(|_| {
            tokio::spawn(async move {
                tokio::time::timeout(
                    Duration::from_millis(900),
                    tokio::net::TcpStream::connect(addr),
                )
                .await
                .ok()
                .and_then(Result::ok)
            })
        })
        .collect();
    let mut connected = Vec::new();
    for t in tasks {
        if let Some(s) = t.await.expect("join") {
            connected.push(s);
        }
    }
    fx.gate.signal("CONT");
    println!(
        "{} of {BURST} connects completed while bcgate was stopped",
        connected.len()
    );
    assert_eq!(connected.len(), BURST, "connects overflowed the backlog");
    drop(connected);
    fx.assert_serving("a burst of connects").await;
    fx.assert_no_secrets_logged();
}

/// An upstream that resets mid-body, and one that goes silent mid-body: the
/// caller sees the abort, and the access log and metrics say what happened
/// (not `status=200 decision=forwarded`).
#[tokio::test]
async fn a_truncated_upstream_answer_is_logged_and_counted_as_an_upstream_failure() {
    for up in [Up::H1, Up::H2] {
        let fx = fixture(
            up,
            &Opts {
                request_timeout_ms: 1_000,
                admin: true,
                ..Opts::default()
            },
        );
        let cases = [
            ("reset", "?mock_reset_after=4096", "upstream_truncated"),
            (
                "silent",
                "?mock_trickle_ms=3000&mock_bytes=4",
                "upstream_timeout",
            ),
        ];
        for (what, query, code) in cases {
            let id = format!("trunc-{what}-{up:?}");
            let resp = fx
                .http
                .get(fx.gate.url(&format!("{PATH}{query}")))
                .header("x-auth-token", KEY)
                .header("x-request-id", &id)
                .send()
                .await
                .expect("response head");
            assert_eq!(resp.status(), 200, "{up:?} {what}");
            assert!(resp.bytes().await.is_err(), "{up:?} {what}: the body fails");
            let line = access_line(&fx.gate, &id);
            println!("{up:?} {what}: {line}");
            assert!(
                line.contains("status=200")
                    && line.contains("decision=upstream_failed")
                    && line.contains(&format!("code={code} ")),
                "{up:?} {what}: {line}"
            );
        }
        // A caller that goes away mid-body: its line says so, and it is no
        // upstream error.
        let mut s = connect(fx.gate.addr);
        s.write_all(
            head(
                "GET",
                &format!("{PATH}?mock_trickle_ms=200&mock_bytes=50"),
                "x-request-id: trunc-gone\r\n",
            )
            .as_bytes(),
        )
        .expect("write request");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).expect("the response head");
        assert!(n > 0 && buf.starts_with(b"HTTP/1.1 200"), "{up:?}");
        drop(s);
        let line = access_line(&fx.gate, "trunc-gone");
        assert!(
            line.contains("decision=forwarded") && line.contains("code=client_closed "),
            "{up:?}: {line}"
        );
        let ok = send(
            fx.http
                .get(fx.gate.url(PATH))
                .header("x-auth-token", KEY)
                .header("x-request-id", "trunc-ok"),
        )
        .await;
        assert_eq!(ok.status, 200);
        let line = access_line(&fx.gate, "trunc-ok");
        assert!(
            line.contains("decision=forwarded") && line.contains("code=forwarded"),
            "{line}"
        );
        let text = metrics_text(&fx.gate).await;
        let errors = |kind| metric(&text, "bcgate_upstream_errors_total", &[("kind", kind)]);
        assert_eq!(errors("truncated"), 1.0, "{up:?}:\n{text}");
        assert_eq!(errors("timeout"), 1.0, "{up:?}:\n{text}");
        assert_eq!(
            metric(
                &text,
                "bcgate_requests_total",
                &[("decision", "upstream_failed"), ("status", "200")]
            ),
            2.0,
            "{up:?}"
        );
        fx.assert_no_secrets_logged();
    }
}

/// Writes `head` and then `body` a byte every `every`, and returns what
/// became of the connection within `WATCH`.
fn trickle_body(addr: SocketAddr, head: &str, body: &[u8], every: Duration) -> Fate {
    let mut s = connect(addr);
    let started = Instant::now();
    s.write_all(head.as_bytes()).expect("write head");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = trickle(&s, body.to_vec(), every, stop.clone());
    let fate = watch(&mut s, started, WATCH);
    stop.store(true, Ordering::SeqCst);
    let _ = writer.join();
    fate
}

fn assert_body_timeout(fate: Fate, what: &str, from: Duration, to: Duration) {
    let (after, bytes) = match fate {
        Fate::Closed { after, bytes } => (after, bytes),
        Fate::Open { bytes } => (WATCH, bytes),
    };
    let (status, head, body) = parse_response(&bytes)
        .unwrap_or_else(|| panic!("{what}: no answer within {after:?}: {bytes:?}"));
    let json: serde_json::Value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{what}: {status} is not JSON ({e}): {head}"));
    println!("{what}: {status} after {after:?}: {json}");
    check_problem_body(&json, 408, "body_timeout");
    assert!(
        after >= from && after <= to,
        "{what}: answered after {after:?}, expected {from:?}..{to:?}"
    );
}

/// A body trickled just under `body_read_timeout_ms` is cut by the whole-body
/// deadline (`body_total_timeout_ms`) as the client's fault (408
/// `body_timeout`), both when bcgate streams it upstream and when it reads
/// it itself (GraphQL); and a body still arriving when the upstream's
/// `request_timeout_ms` passes is the client's fault too, not a 504.
#[test]
fn a_slow_request_body_is_the_clients_408_not_an_upstream_timeout() {
    let body = vec![b' '; 100];
    let every = Duration::from_millis(300);
    let head_of = |path: &str| {
        head(
            "POST",
            path,
            "content-type: application/json\r\ncontent-length: 100\r\n",
        )
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let fx = fixture(
        Up::H2,
        &Opts {
            server_extra: "body_total_timeout_ms = 2000".into(),
            admin: true,
            ..Opts::default()
        },
    );
    for (what, path) in [
        ("streamed body", PATH),
        ("inspected body (graphql)", GRAPHQL),
    ] {
        let fate = trickle_body(fx.gate.addr, &head_of(path), &body, every);
        assert_body_timeout(
            fate,
            what,
            Duration::from_millis(1_900),
            Duration::from_millis(3_500),
        );
    }
    let text = rt.block_on(metrics_text(&fx.gate));
    assert_eq!(
        metric(&text, "bcgate_upstream_errors_total", &[]),
        0.0,
        "a slow client is not an upstream error:\n{text}"
    );
    rt.block_on(fx.assert_serving("slow bodies"));
    fx.assert_no_secrets_logged();

    // The upstream's deadline passes first, while the body is still arriving.
    let fx = fixture(
        Up::H2,
        &Opts {
            request_timeout_ms: 1_500,
            server_extra: "body_total_timeout_ms = 20000".into(),
            admin: true,
            ..Opts::default()
        },
    );
    let fate = trickle_body(fx.gate.addr, &head_of(PATH), &body, every);
    assert_body_timeout(
        fate,
        "body still arriving at the request timeout",
        Duration::from_millis(1_400),
        Duration::from_millis(3_000),
    );
    let text = rt.block_on(metrics_text(&fx.gate));
    assert_eq!(
        metric(&text, "bcgate_upstream_errors_total", &[]),
        0.0,
        "{text}"
    );
    fx.assert_no_secrets_logged();
}

/// A second request head that stalls on a kept-alive connection gets the
/// same 408 `header_timeout` as a first one, with its access-log line and
/// count; a kept-alive connection that just goes quiet is closed without an
/// answer and counted as an idle close.
#[test]
fn a_slow_second_head_is_answered_408_logged_and_counted() {
    let fx = fixture(
        Up::H2,
        &Opts {
            admin: true,
            ..Opts::default()
        },
    );
    let mut s = connect(fx.gate.addr);
    let first = exchange_on(&mut s, head("GET", PATH, "").as_bytes(), false)
        .expect("first request on the connection");
    assert_eq!(first.status, 200, "{}", first.body_text());
    let started = Instant::now();
    s.write_all(format!("GET {PATH} HTTP/1.1\r\nhost: bcgate\r\n").as_bytes())
        .expect("half a second head");
    match watch(&mut s, started, WATCH) {
        Fate::Closed { after, bytes } => {
            let (status, head, body) = parse_response(&bytes).unwrap_or_else(|| {
                panic!("the second head's timeout closed the connection without an answer after {after:?}")
            });
            let json: serde_json::Value = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("{status} is not JSON ({e}): {head}"));
            check_problem_body(&json, 408, "header_timeout");
            assert!(after <= SLOW_BOUND, "answered after {after:?}");
            println!("slow second head: 408 after {after:?}");
        }
        Fate::Open { .. } => panic!("still open after {WATCH:?}"),
    }
    assert!(
        fx.gate
            .wait_for_log("code=header_timeout", Duration::from_secs(3)),
        "no access-log line for the second head's timeout:\n{}",
        fx.gate.logs()
    );

    // Quiet after an answer: closed, no answer, counted.
    let mut s = connect(fx.gate.addr);
    let first = exchange_on(&mut s, head("GET", PATH, "").as_bytes(), false)
        .expect("first request on the connection");
    assert_eq!(first.status, 200);
    match watch(&mut s, Instant::now(), WATCH) {
        Fate::Closed { after, bytes } => {
            assert!(bytes.is_empty(), "an idle close sends nothing: {bytes:?}");
            assert!(after <= SLOW_BOUND, "closed after {after:?}");
        }
        Fate::Open { .. } => panic!("an idle keep-alive connection still open after {WATCH:?}"),
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let text = rt.block_on(metrics_text(&fx.gate));
    assert_eq!(
        metric(&text, "bcgate_denials_total", &[("code", "header_timeout")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "bcgate_idle_connections_closed_total",
            &[("protocol", "http1")]
        ),
        1.0,
        "{text}"
    );
    fx.assert_no_secrets_logged();
}

/// The new `[server]` keys refuse values that cannot work, naming the key.
#[test]
fn the_connection_and_body_deadline_keys_are_checked() {
    let ca = TestCa::new();
    for (line, key) in [
        ("max_connections = 0", "server.max_connections"),
        ("listen_backlog = 0", "server.listen_backlog"),
        (
            "body_total_timeout_ms = 500",
            "server.body_total_timeout_ms",
        ),
    ] {
        let dir = support::process::temp_dir();
        ca.write_to(dir.path());
        let o = Opts {
            server_extra: line.into(),
            ..Opts::default()
        };
        let err = Bcgate::try_start_in(
            dir,
            &config_toml("https://127.0.0.1:9", &o),
            &[("BC_TOKEN_ABC123", TOKEN)],
        )
        .err()
        .unwrap_or_else(|| panic!("bcgate started with {line}"));
        assert!(err.contains(key), "{line}: {err}");
    }
}

/// The soft open-files limit is raised to the hard one at start, and the
/// connection limit fits what it allows.
#[tokio::test]
async fn the_open_files_limit_is_raised_to_the_hard_limit() {
    let ca = TestCa::new();
    let mock = start_mock(&ca, Up::H2);
    let o = Opts {
        admin: true,
        ..Opts::default()
    };
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    let gate = Bcgate::start_with_nofile_in(
        (256, 4096),
        dir,
        &config_toml(&mock.base_url(), &o),
        &[("BC_TOKEN_ABC123", TOKEN)],
    );
    let limits =
        std::fs::read_to_string(format!("/proc/{}/limits", gate.pid())).expect("/proc/PID/limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("an open-files line");
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["4096", "4096"], "{line}");
    let text = metrics_text(&gate).await;
    // 10,000 configured; 4096 less a reserve of 256.
    assert_eq!(metric(&text, "bcgate_connection_limit", &[]), 3840.0);
    assert_serving(&gate, &plain_client(), "raising the limit").await;
}

/// The same idle close over TLS, HTTP/2 chosen by ALPN: a connection that
/// never opens a stream is closed after the header timeout (the first-request
/// deadline), and one whose last answer ended that long ago too.
#[tokio::test]
async fn idle_tls_h2_connections_are_closed_after_the_header_timeout() {
    let ca = TestCa::new();
    let mock = start_mock(&ca, Up::H2);
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    ca.write_leaf(dir.path(), "server", &["127.0.0.1", "localhost"]);
    let o = Opts {
        server_extra: r#"tls = { cert = "server.pem", key = "server.key" }"#.into(),
        ..Opts::default()
    };
    let gate = Bcgate::start_in(
        dir,
        &config_toml(&mock.base_url(), &o),
        &[("BC_TOKEN_ABC123", TOKEN), ("BCGATE_LOG", "debug")],
    );
    let connector =
        tokio_rustls::TlsConnector::from(Arc::new(ca.client_config(&[b"h2".as_slice()])));
    for requests in [0, 1] {
        let tcp = tokio::net::TcpStream::connect(gate.addr)
            .await
            .expect("connect");
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        let tls = connector.connect(name, tcp).await.expect("TLS handshake");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .expect("h2 handshake");
        let conn = tokio::spawn(conn);
        for _ in 0..requests {
            let req = http::Request::get(format!("https://localhost:{}{PATH}", gate.addr.port()))
                .header("x-auth-token", KEY)
                .body(Empty::<Bytes>::new())
                .expect("request");
            let resp = send.send_request(req).await.expect("a request over h2");
            assert_eq!(resp.status(), 200);
            http_body_util::BodyExt::collect(resp.into_body())
                .await
                .expect("body");
        }
        let idle_from = Instant::now();
        let ended = tokio::time::timeout(Duration::from_secs(5), conn).await;
        let after = idle_from.elapsed();
        assert!(
            ended.is_ok(),
            "TLS h2 connection after {requests} requests still open"
        );
        assert!(
            after >= Duration::from_millis(800),
            "closed after {after:?}"
        );
        println!("TLS h2 connection, {requests} requests: closed {after:?} after going idle");
    }
    gate.assert_logs_free_of(&[TOKEN, KEY]);
}
