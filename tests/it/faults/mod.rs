//! Faults: the upstream refusing, resetting, presenting the wrong
//! certificate, stalling or answering errors; callers going away, trickling
//! their heads or bodies, and flooding HTTP/2 streams. Each case checks what
//! the caller gets (one of bcgate's JSON problems, or the
//! upstream's own answer), that it comes within the configured timeouts, and
//! that bcgate still serves a normal request afterwards.
//!
//! Every bcgate here runs with `BCGATE_LOG=debug`, and each test ends by
//! checking that neither the store token nor the client key reached the logs.

mod callers;
mod limits;
mod slow;
mod upstream;

use crate::support;

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

/// Assert a slow client was cut off: closed, or answered 408 (a problem
/// body) and closed, within `bound` of `since`.
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
// Slow clients and HTTP/2 callers (server.header_read_timeout_ms = 1000,
// body_read_timeout_ms = 1000)

const SLOW_BOUND: Duration = Duration::from_millis(2_500);
const WATCH: Duration = Duration::from_secs(6);

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
