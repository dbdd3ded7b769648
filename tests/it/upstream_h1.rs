//! The HTTP/1.1 upstream client (`src/forward/h1.rs`) against a scripted
//! upstream over TLS that answers in the shapes a real server may use:
//! chunked with extensions and trailers trickled a few bytes at a time, 1xx
//! before the answer, close-delimited, `Connection: close`, HEAD and 204 —
//! and in shapes it must refuse: bytes after the body, malformed heads and
//! lengths, a body cut short. Each case checks what the caller gets and
//! whether the connection was reused; the upstream's record of what arrived
//! checks the request framing.

use crate::support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use support::{Bcgate, Resp, TestCa, assert_problem, h2c_client, key_sha256, plain_client, send};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const STORE: &str = "abc123";
const TOKEN: &str = "bc-store-token-h1-Vb7Qm2Xr9Lp4";
const KEY: &str = "bcg-key-h1-Tn3Wk8Zc5Hy1";
const PATH: &str = "/stores/abc123/v3/catalog/products";

/// One request as the upstream read it.
#[derive(Debug, Clone)]
struct Seen {
    /// Which accepted connection it came on (0, 1, …).
    conn: usize,
    /// The request head, lower-cased.
    head: String,
    /// The body, de-chunked when it was chunked.
    body: Vec<u8>,
}

/// What the upstream writes back.
struct Reply {
    bytes: Vec<u8>,
    /// Write this many bytes at a time, flushing and pausing between pieces.
    trickle: Option<usize>,
    /// Close the connection after writing (with close_notify).
    close: bool,
    /// Close the connection this long after writing, while it sits idle.
    close_idle_after: Option<Duration>,
}

impl Reply {
    fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Reply {
            bytes: bytes.into(),
            trickle: None,
            close: false,
            close_idle_after: None,
        }
    }
}

const PRODUCTS: &str = r#"{"data":[{"id":1}],"meta":{}}"#;

fn ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The answer for a request, chosen by its `case=` query parameter.
fn reply_for(method: &str, target: &str) -> Reply {
    let case = target
        .split_once("case=")
        .map_or("", |(_, c)| c.split('&').next().unwrap_or(""));
    match case {
        "chunked" => {
            let (a, b) = PRODUCTS.split_at(5);
            Reply {
                trickle: Some(3),
                ..Reply::new(format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                     transfer-encoding: chunked\r\n\r\n\
                     5;ext=1\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\nx-checksum: abc\r\n\r\n",
                    b.len()
                ))
            }
        }
        "continue" => Reply::new(format!(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n{}",
            ok(PRODUCTS)
        )),
        "until-close" => Reply {
            close: true,
            ..Reply::new(format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{PRODUCTS}"
            ))
        },
        "conn-close" => Reply {
            close: true,
            ..Reply::new(format!(
                "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{PRODUCTS}",
                PRODUCTS.len()
            ))
        },
        "no-content" => {
            Reply::new("HTTP/1.1 204 No Content\r\nx-rate-limit-requests-left: 9\r\n\r\n")
        }
        "extra" => Reply::new(format!(
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok{}",
            ok("smuggled")
        )),
        "bad-status" => Reply::new("HTTP/1.1 2000 OK\r\ncontent-length: 0\r\n\r\n"),
        "bad-length" => Reply::new("HTTP/1.1 200 OK\r\ncontent-length: 3, 4\r\n\r\nabc"),
        "bad-coding" => {
            Reply::new("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n")
        }
        "short" => Reply {
            close: true,
            ..Reply::new("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        },
        "idle-close" => Reply {
            close_idle_after: Some(Duration::from_millis(50)),
            ..Reply::new(ok(PRODUCTS))
        },
        _ if method == "HEAD" => Reply::new(format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            PRODUCTS.len()
        )),
        _ if method == "POST" => Reply::new(ok(r#"{"data":{"id":2}}"#)),
        _ => Reply::new(ok(PRODUCTS)),
    }
}

/// The scripted upstream: TLS with ALPN `http/1.1` only, on its own runtime.
struct Upstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    fn start(ca: &TestCa) -> Upstream {
        let tls = ca.server_config(&["127.0.0.1", "localhost"], &[b"http/1.1"]);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("listener");
                let acceptor = TlsAcceptor::from(tls);
                for conn in 0.. {
                    let Ok((tcp, _)) = listener.accept().await else {
                        return;
                    };
                    let acceptor = acceptor.clone();
                    let record = record.clone();
                    tokio::spawn(async move {
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            serve(conn, tls, record).await;
                        }
                    });
                }
            });
        });
        Upstream { addr, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn serve(
    conn: usize,
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    record: Arc<Mutex<Vec<Seen>>>,
) {
    let mut io = BufReader::new(tls);
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match io.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            head.push_str(&line.to_ascii_lowercase());
            if line == "\r\n" {
                break;
            }
        }
        let mut request_line = head.split_whitespace();
        let method = request_line.next().unwrap_or("").to_ascii_uppercase();
        let target = request_line.next().unwrap_or("").to_owned();
        if target.contains("case=early") {
            // Answers before reading the body, then closes (unread bytes and all).
            record.lock().expect("lock").push(Seen {
                conn,
                head: head.clone(),
                body: Vec::new(),
            });
            let reply = b"HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\n\
                content-length: 31\r\n\r\n{\"title\":\"The body is too big\"}";
            let _ = io.write_all(reply).await;
            let _ = io.flush().await;
            let _ = io.get_mut().shutdown().await;
            return;
        }
        let field = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
        };
        let mut body = Vec::new();
        if field("transfer-encoding").as_deref() == Some("chunked") {
            loop {
                let mut size = String::new();
                if io.read_line(&mut size).await.unwrap_or(0) == 0 {
                    return;
                }
                let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
                let mut chunk = vec![0; n + 2];
                if io.read_exact(&mut chunk).await.is_err() {
                    return;
                }
                body.extend_from_slice(&chunk[..n]);
                if n == 0 {
                    break;
                }
            }
        } else if let Some(len) = field("content-length") {
            body = vec![0; len.trim().parse().expect("length")];
            if io.read_exact(&mut body).await.is_err() {
                return;
            }
        }
        record.lock().expect("lock").push(Seen {
            conn,
            head: head.clone(),
            body,
        });
        let reply = reply_for(&method, &target);
        let piece = reply.trickle.unwrap_or(reply.bytes.len().max(1));
        for part in reply.bytes.chunks(piece) {
            if io.write_all(part).await.is_err() || io.flush().await.is_err() {
                return;
            }
            if reply.trickle.is_some() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        if let Some(after) = reply.close_idle_after {
            tokio::time::sleep(after).await;
        }
        if reply.close || reply.close_idle_after.is_some() {
            let _ = io.get_mut().shutdown().await;
            return;
        }
    }
}

struct Fx {
    upstream: Upstream,
    gate: Bcgate,
    http: reqwest::Client,
}

fn fixture() -> Fx {
    let ca = TestCa::new();
    let upstream = Upstream::start(&ca);
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    let config = format!(
        "{}\n[[stores]]\nhash = \"{STORE}\"\ntoken_env = \"BC_TOKEN\"\n\n\
         [[clients]]\nname = \"h1\"\nkey_sha256 = \"{}\"\nstores = [\"{STORE}\"]\n\
         scopes = [\"store_v2_products\"]\n",
        support::base_config(&format!("https://{}", upstream.addr), 5_000),
        key_sha256(KEY),
    );
    let gate = Bcgate::start_in(
        dir,
        &config,
        &[("BC_TOKEN", TOKEN), ("BCGATE_LOG", "debug")],
    );
    Fx {
        upstream,
        gate,
        http: plain_client(),
    }
}

impl Fx {
    async fn call(&self, method: reqwest::Method, case: &str) -> Resp {
        send(
            self.http
                .request(method, self.gate.url(&format!("{PATH}?case={case}")))
                .header("x-auth-token", KEY),
        )
        .await
    }

    async fn get(&self, case: &str) -> Resp {
        self.call(reqwest::Method::GET, case).await
    }

    /// The connection the last request reached the upstream on.
    fn last_conn(&self) -> usize {
        self.upstream.seen().last().expect("a request arrived").conn
    }

    fn finish(&self) {
        self.gate.assert_logs_free_of(&[TOKEN, KEY]);
    }
}

#[tokio::test]
async fn answers_in_every_framing_reach_the_caller_exactly() {
    let fx = fixture();
    let first = fx.get("").await;
    assert_eq!((first.status, first.text().as_str()), (200, PRODUCTS));
    let conn = fx.last_conn();

    let chunked = fx.get("chunked").await;
    assert_eq!(chunked.status, 200);
    assert_eq!(chunked.text(), PRODUCTS, "de-chunked across 3-byte reads");
    assert_eq!(
        chunked.header("x-checksum"),
        None,
        "trailers are not forwarded"
    );
    assert_eq!(
        fx.last_conn(),
        conn,
        "a chunked answer read to its end keeps the connection"
    );

    let informational = fx.get("continue").await;
    assert_eq!(
        (informational.status, informational.text().as_str()),
        (200, PRODUCTS)
    );
    assert_eq!(informational.header("link"), None, "1xx heads are skipped");

    let head = fx.call(reqwest::Method::HEAD, "").await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(PRODUCTS.len().to_string().as_str())
    );
    assert!(head.body.is_empty());

    let empty = fx.get("no-content").await;
    assert_eq!(empty.status, 204);
    assert_eq!(empty.header("x-rate-limit-requests-left"), Some("9"));
    assert!(empty.body.is_empty());
    assert_eq!(
        fx.last_conn(),
        conn,
        "HEAD, 204 and 1xx answers leave the connection in use"
    );

    let until_close = fx.get("until-close").await;
    assert_eq!(
        (until_close.status, until_close.text().as_str()),
        (200, PRODUCTS)
    );
    assert_eq!(fx.get("").await.status, 200);
    let after_close = fx.last_conn();
    assert_ne!(
        after_close, conn,
        "a body delimited by close ends its connection"
    );

    let said_close = fx.get("conn-close").await;
    assert_eq!(
        (said_close.status, said_close.text().as_str()),
        (200, PRODUCTS)
    );
    assert_eq!(fx.get("").await.status, 200);
    assert_ne!(fx.last_conn(), after_close, "Connection: close is honoured");
    fx.finish();
}

#[tokio::test]
async fn answers_that_could_be_read_two_ways_are_refused_and_never_reused() {
    let fx = fixture();
    assert_eq!(fx.get("").await.status, 200);

    // Two lengths, a bad status line, a transfer coding bcgate cannot undo: 502.
    for case in ["bad-length", "bad-status", "bad-coding"] {
        let before = fx.last_conn();
        let resp = fx.get(case).await;
        let problem = assert_problem(&resp, 502, "upstream_unavailable");
        assert!(!problem.to_string().contains(TOKEN));
        assert_eq!(fx.get("").await.status, 200, "{case}: serving goes on");
        assert_ne!(fx.last_conn(), before, "{case}: that connection is dropped");
    }

    // Bytes after a complete body: the caller gets the body, and the bytes
    // after it never become anyone's answer.
    let extra = fx.get("extra").await;
    assert_eq!((extra.status, extra.text().as_str()), (200, "ok"));
    let before = fx.last_conn();
    let next = fx.get("").await;
    assert_eq!(next.text(), PRODUCTS, "not the upstream's extra bytes");
    assert_ne!(
        fx.last_conn(),
        before,
        "a connection with stray bytes is closed"
    );

    // A body shorter than its length fails at the caller: the connection
    // ends before the head is out, or the body fails; it never ends clean.
    let sent = fx
        .http
        .get(fx.gate.url(&format!("{PATH}?case=short")))
        .header("x-auth-token", KEY)
        .send()
        .await;
    if let Ok(resp) = sent {
        assert_eq!(resp.status(), 200);
        resp.bytes()
            .await
            .expect_err("a body cut short must fail at the caller");
    }
    assert_eq!(fx.get("").await.status, 200);
    fx.finish();
}

#[tokio::test]
async fn request_bodies_are_framed_exactly_once() {
    let fx = fixture();
    let body = support::noise(100_000, 7);

    // A sized body: the caller's Content-Length, no Transfer-Encoding.
    let resp = send(
        fx.http
            .post(fx.gate.url(PATH))
            .header("x-auth-token", KEY)
            .header("content-type", "application/json")
            .body(body.clone()),
    )
    .await;
    assert_eq!(resp.status, 200);
    let seen = fx.upstream.seen().pop().expect("arrived");
    assert!(
        seen.head
            .starts_with("post /stores/abc123/v3/catalog/products http/1.1\r\n")
    );
    assert!(
        seen.head.contains("content-length: 100000\r\n"),
        "{}",
        seen.head
    );
    assert!(!seen.head.contains("transfer-encoding"), "{}", seen.head);
    assert!(seen.body == body, "the body arrives byte for byte");

    // A body of unknown length from an h2c caller: chunked upstream.
    let stream = futures_util::stream::iter(
        body.chunks(7_000)
            .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let resp = send(
        h2c_client()
            .post(fx.gate.url(PATH))
            .header("x-auth-token", KEY)
            .body(reqwest::Body::wrap_stream(stream)),
    )
    .await;
    assert_eq!(resp.status, 200);
    let seen = fx.upstream.seen().pop().expect("arrived");
    assert!(
        seen.head.contains("transfer-encoding: chunked\r\n"),
        "{}",
        seen.head
    );
    assert!(!seen.head.contains("content-length"), "{}", seen.head);
    assert!(seen.body == body, "the chunked body arrives byte for byte");

    // No body: no framing field on a GET; an explicit zero on an empty POST.
    assert_eq!(fx.get("").await.status, 200);
    let seen = fx.upstream.seen().pop().expect("arrived");
    assert!(!seen.head.contains("content-length") && !seen.head.contains("transfer-encoding"));
    assert_eq!(fx.call(reqwest::Method::POST, "").await.status, 200);
    let seen = fx.upstream.seen().pop().expect("arrived");
    assert!(seen.head.contains("content-length: 0\r\n"), "{}", seen.head);

    // Every request went out with the store's token and none of the caller's key.
    for s in fx.upstream.seen() {
        assert!(
            s.head
                .contains(&format!("x-auth-token: {}", TOKEN.to_ascii_lowercase()))
        );
        assert!(!s.head.contains(&KEY.to_ascii_lowercase()));
    }
    fx.finish();
}

#[tokio::test]
async fn an_answer_sent_before_the_upstream_read_the_body_reaches_the_caller() {
    let fx = fixture();
    // The answer is read after the body is written, or after writing it
    // failed because the upstream closed (fuzz/h1_response covers a failed
    // write for certain); either way it is passed on.
    for size in [64 * 1024, 512 * 1024] {
        let resp = send(
            fx.http
                .post(fx.gate.url(&format!("{PATH}?case=early")))
                .header("x-auth-token", KEY)
                .body(support::noise(size, 3)),
        )
        .await;
        assert_eq!(resp.status, 413, "{size} bytes: {}", resp.text());
        assert_eq!(resp.text(), r#"{"title":"The body is too big"}"#);
        // A new caller connection: bcgate closes the one whose body it left
        // unread, and reusing it would race that close.
        let after = send(
            plain_client()
                .get(fx.gate.url(PATH))
                .header("x-auth-token", KEY),
        )
        .await;
        assert_eq!(after.status, 200, "serving goes on");
    }
    fx.finish();
}

#[tokio::test]
async fn an_idle_connection_the_upstream_closed_is_not_used_again() {
    let fx = fixture();
    for round in 0..3 {
        let resp = fx.get("idle-close").await;
        assert_eq!(resp.status, 200, "round {round}");
        let closed = fx.last_conn();
        // The upstream closes it 50 ms later; bcgate sees that before reusing it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let resp = fx.get("").await;
        assert_eq!(
            (resp.status, resp.text().as_str()),
            (200, PRODUCTS),
            "round {round}"
        );
        assert_ne!(fx.last_conn(), closed, "round {round}");
    }
    fx.finish();
}
