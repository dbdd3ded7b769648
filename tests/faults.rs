//! Faults (issue 3): the upstream refusing, resetting, presenting the wrong
//! certificate, stalling or answering errors; callers going away, trickling
//! their heads or bodies, and flooding HTTP/2 streams. Each case checks what
//! the caller gets (one of bcgate's JSON problems, DESIGN §2, or the
//! upstream's own answer), that it comes within the configured timeouts, and
//! that bcgate still serves a normal request afterwards.
//!
//! Every bcgate here runs with `BCGATE_LOG=debug`, and each test ends by
//! checking that neither the store token nor the client key reached the logs.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::mock::{BC_ERROR_TYPE, MockStats, RETRY_AFTER, pattern};
use support::{
    Bcgate, MockBigCommerce, Resp, TestCa, assert_problem, check_problem_body, exchange_on,
    h2c_client, key_sha256, metric, plain_client, send, try_send, unused_addr,
};

const STORE: &str = "abc123";
const TOKEN: &str = "bc-store-token-faults-Zq8Wm3Lp5Xv1";
const KEY: &str = "bcg-key-faults-Hn4Tx7Rb2Kc9Ys6";
const STORES: [(&str, &str); 1] = [(STORE, TOKEN)];
/// A route every test may call (granted by `store_v2_products`).
const PATH: &str = "/stores/abc123/v3/catalog/products";
/// A route whose body bcgate reads before deciding (GraphQL).
const GRAPHQL: &str = "/stores/abc123/graphql";

// ---------------------------------------------------------------------------
// Fixture

/// What the mock upstream speaks (by ALPN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Up {
    H2,
    H1,
}

#[derive(Debug, Clone)]
struct Opts {
    connect_timeout_ms: u64,
    request_timeout_ms: u64,
    header_read_timeout_ms: u64,
    body_read_timeout_ms: u64,
    /// More `[server]` lines.
    server_extra: String,
    /// With an admin listener (for `/metrics`).
    admin: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            connect_timeout_ms: 2_000,
            request_timeout_ms: 5_000,
            header_read_timeout_ms: 1_000,
            body_read_timeout_ms: 1_000,
            server_extra: String::new(),
            admin: false,
        }
    }
}

fn config_toml(base_url: &str, o: &Opts) -> String {
    format!(
        r#"# bcgate fault-test config
[server]
listen = "127.0.0.1:0"
header_read_timeout_ms = {header}
body_read_timeout_ms = {body}
{extra}
{admin}
[upstream]
base_url = "{base_url}"
ca_file = "ca.pem"
connect_timeout_ms = {connect}
request_timeout_ms = {request}

[[stores]]
hash = "{STORE}"
token_env = "BC_TOKEN_ABC123"

[[clients]]
name = "faults"
key_sha256 = "{key}"
stores = ["{STORE}"]
default_store = "{STORE}"
scopes = ["store_v2_products", "bcgate:graphql_write"]
"#,
        header = o.header_read_timeout_ms,
        body = o.body_read_timeout_ms,
        connect = o.connect_timeout_ms,
        request = o.request_timeout_ms,
        key = key_sha256(KEY),
        extra = o.server_extra,
        admin = if o.admin {
            "[admin]\nlisten = \"127.0.0.1:0\"\n"
        } else {
            ""
        },
    )
}

/// Start bcgate trusting `ca` for an upstream at `base_url`.
fn start_gate(ca: &TestCa, base_url: &str, o: &Opts) -> Bcgate {
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    Bcgate::start_in(
        dir,
        &config_toml(base_url, o),
        &[("BC_TOKEN_ABC123", TOKEN), ("BCGATE_LOG", "debug")],
    )
}

fn start_mock(ca: &TestCa, up: Up) -> MockBigCommerce {
    match up {
        Up::H2 => MockBigCommerce::start(ca, &STORES),
        Up::H1 => MockBigCommerce::start_h1(ca, &STORES),
    }
}

struct Fx {
    mock: MockBigCommerce,
    gate: Bcgate,
    http: reqwest::Client,
}

fn fixture(up: Up, o: &Opts) -> Fx {
    let ca = TestCa::new();
    let mock = start_mock(&ca, up);
    let gate = start_gate(&ca, &mock.base_url(), o);
    Fx {
        mock,
        gate,
        http: plain_client(),
    }
}

impl Fx {
    async fn get(&self, query: &str) -> Resp {
        get(&self.gate, &self.http, query).await
    }

    async fn assert_serving(&self, after: &str) {
        assert_serving(&self.gate, &self.http, after).await;
    }

    fn assert_no_secrets_logged(&self) {
        self.gate.assert_logs_free_of(&[TOKEN, KEY]);
    }
}

/// `GET {PATH}{query}` with the client's key.
async fn get(gate: &Bcgate, http: &reqwest::Client, query: &str) -> Resp {
    send(
        http.get(gate.url(&format!("{PATH}{query}")))
            .header("x-auth-token", KEY),
    )
    .await
}

/// A normal request through `gate` succeeds (the upstream's JSON, 200).
async fn assert_serving(gate: &Bcgate, http: &reqwest::Client, after: &str) {
    let resp = get(gate, http, "").await;
    assert_eq!(
        resp.status,
        200,
        "a normal request after {after} should succeed: {}",
        resp.text()
    );
    assert_eq!(
        resp.json()["data"]["path"],
        PATH,
        "after {after}: the upstream's answer"
    );
}

/// The problem body of a 502/504 must not carry a secret either.
fn assert_no_secret_in(resp: &Resp) {
    let all = format!("{:?}{}", resp.headers, resp.text());
    assert!(
        !all.contains(TOKEN) && !all.contains(KEY),
        "a secret in the response"
    );
}

// ---------------------------------------------------------------------------
// Raw sockets

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to bcgate");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// An HTTP/1.1 request head with the client's key.
fn head(method: &str, target: &str, extra: &str) -> String {
    format!("{method} {target} HTTP/1.1\r\nhost: bcgate\r\nx-auth-token: {KEY}\r\n{extra}\r\n")
}

/// What became of a connection, watched from `since` for at most `limit`.
#[derive(Debug)]
enum Fate {
    /// The peer closed (or reset) it after `after`; `bytes` is what it sent first.
    Closed { after: Duration, bytes: Vec<u8> },
    /// Still open when the watch ended.
    Open { bytes: Vec<u8> },
}

fn watch(stream: &mut TcpStream, since: Instant, limit: Duration) -> Fate {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = (since + limit).saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Fate::Open { bytes };
        }
        stream
            .set_read_timeout(Some(left.min(Duration::from_millis(50))))
            .expect("set read timeout");
        match stream.read(&mut buf) {
            Ok(0) => {
                return Fate::Closed {
                    after: since.elapsed(),
                    bytes,
                };
            }
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                return Fate::Closed {
                    after: since.elapsed(),
                    bytes,
                };
            }
        }
    }
}

/// The status and body of the response at the start of `bytes`, if any.
fn parse_response(bytes: &[u8]) -> Option<(u16, String, Vec<u8>)> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, head, bytes[end..].to_vec()))
}

fn header_of(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// Send `bytes` one byte at a time, `every` apart, from a thread, until done,
/// `stop` is set or a write fails. Returns the thread (joins to bytes sent).
fn trickle(
    stream: &TcpStream,
    bytes: Vec<u8>,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    let mut w = stream.try_clone().expect("clone socket");
    std::thread::spawn(move || {
        let mut sent = 0;
        for b in bytes {
            if stop.load(Ordering::SeqCst) || w.write_all(&[b]).is_err() {
                break;
            }
            sent += 1;
            std::thread::sleep(every);
        }
        sent
    })
}

/// Assert a slow client was cut off: closed, or answered 408 (DESIGN §2
/// problem) and closed, within `bound` of `since`.
fn assert_cut_off(fate: Fate, what: &str, bound: Duration) -> Duration {
    match fate {
        Fate::Open { bytes } => panic!(
            "{what}: bcgate still holds the connection after the watch; it sent {:?}",
            String::from_utf8_lossy(&bytes)
        ),
        Fate::Closed { after, bytes } => {
            assert!(
                after <= bound,
                "{what}: cut off only after {after:?} (bound {bound:?})"
            );
            if let Some((status, _, body)) = parse_response(&bytes) {
                assert_eq!(
                    status,
                    408,
                    "{what}: a slow client is closed or answered 408, got {}",
                    String::from_utf8_lossy(&bytes)
                );
                let json: serde_json::Value =
                    serde_json::from_slice(&body).expect("408 body is JSON");
                assert_eq!(json["status"], 408, "{what}: {json}");
            } else {
                assert!(
                    bytes.is_empty(),
                    "{what}: bcgate sent something that is not a response: {:?}",
                    String::from_utf8_lossy(&bytes)
                );
            }
            println!("{what}: cut off after {after:?}");
            after
        }
    }
}

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
            took < Duration::from_millis(2_000),
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
        took >= Duration::from_millis(900) && took < Duration::from_millis(2_500),
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
        took >= Duration::from_millis(950) && took < Duration::from_millis(2_000),
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
        head_after < Duration::from_millis(800),
        "the head comes at once: {head_after:?}"
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
        first < Duration::from_millis(1_000) && arrivals.len() >= 4,
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
    let started = Instant::now();
    let resp = fx
        .http
        .get(
            fx.gate
                .url(&format!("{PATH}?mock_trickle_ms=2500&mock_bytes=2")),
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
        took >= Duration::from_millis(900) && took < Duration::from_millis(2_400),
        "cut after about the 1 s request timeout of silence: {took:?}"
    );
    println!("stalled upstream body: cut after {took:?} (request_timeout_ms = 1000)");

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
        .wait_for_stats(Duration::from_secs(2), |s| s.bodies_cut >= 1);
    assert_eq!(
        stats.bodies_cut, 1,
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

// ---------------------------------------------------------------------------
// Slow clients (server.header_read_timeout_ms = 1000, body_read_timeout_ms = 1000)

const SLOW_BOUND: Duration = Duration::from_millis(2_500);
const WATCH: Duration = Duration::from_secs(6);

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

type H2Send = hyper::client::conn::http2::SendRequest<Empty<Bytes>>;

async fn h2c_connect(addr: SocketAddr) -> (H2Send, tokio::task::JoinHandle<hyper::Result<()>>) {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect h2c");
    tcp.set_nodelay(true).expect("nodelay");
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("h2c handshake");
    (send, tokio::spawn(conn))
}

fn h2_get(addr: SocketAddr, path_and_query: &str) -> http::Request<Empty<Bytes>> {
    http::Request::get(format!("http://{addr}{path_and_query}"))
        .header("x-auth-token", KEY)
        .body(Empty::new())
        .expect("request")
}

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
