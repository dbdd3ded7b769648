//! A mock of `api.bigcommerce.com`: real HTTPS (a [`DevCa`], ALPN h2 +
//! http/1.1), `/stores/{hash}/v2|v3/...` and `/stores/{hash}/graphql`,
//! BigCommerce's error shapes and rate-limit headers, and a record of every
//! request. `bcgate dev` puts bcgate in front of it; the integration tests
//! use it as their upstream.
//!
//! It runs on its own thread with its own tokio runtime, so it keeps serving
//! while a test blocks (a child process, a raw socket, `std::thread::sleep`).
//!
//! Behaviours chosen by query parameters, on any routable path:
//! - `mock_delay_ms=N`   sleep N ms before answering
//! - `mock_status=N`     answer N with a BigCommerce-style error body (429 adds `X-Retry-After`)
//! - `mock_redirect=URL` 302 with `Location: URL`
//! - `mock_echo=1`       stream the request body back byte-exact, with the request's content-type
//! - `mock_bytes=N`      stream a deterministic N-byte body ([`pattern`])
//! - `mock_hop=1`        add hop-by-hop response headers: `Connection: X-Mock-Hop`,
//!   `X-Mock-Hop`, `Keep-Alive`, `Proxy-Authenticate`, plus an end-to-end
//!   `X-Mock-Kept` (only visible over HTTP/1.1, see [`MockBigCommerce::start_h1`])
//! - `mock_reset_after=N` answer 200 with `Content-Length: N + 1024`, send N
//!   [`pattern`] bytes, pause [`RESET_PAUSE`], then fail the body: hyper
//!   resets the stream (HTTP/2, `RST_STREAM`) or drops the connection (HTTP/1.1)
//! - `mock_trickle_ms=N` answer 200 at once, then send the [`pattern`] body
//!   (`mock_bytes`, default [`TRICKLE_BYTES`]) in `mock_chunk`-byte pieces
//!   (default 1), sleeping N ms before each
//! - `mock_no_ratelimit=1` send no `X-Rate-Limit-*` and no `X-Retry-After`
//! - `mock_retry_after=V` (with `mock_status`) send `X-Retry-After: V`
//!
//! By default the mock only advertises a quota ([`QUOTA`] per [`WINDOW_MS`],
//! counting down and never refusing). [`MockBigCommerce::enforce_quota`]
//! makes it enforce one, as BigCommerce does: fixed windows per store, and
//! past the quota a 429 with BigCommerce's error body, the four
//! `X-Rate-Limit-*` headers and `X-Retry-After`, counted in
//! [`MockStats::rate_limited`].
//!
//! A `mock_redirect` or `mock_retry_after` value that cannot be a header
//! value is answered 400; nothing a request carries makes the mock panic.
//!
//! Instrumentation ([`MockBigCommerce::stats`]): connections (and those that
//! did not start with a TLS handshake), failed handshakes, request handlers
//! started / completed / cancelled (the handler's future dropped before it
//! produced a response, e.g. the proxy gave up on the request), the peak
//! number in flight, and streamed bodies finished or cut.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Body as _, Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::ca::DevCa;

/// BigCommerce's error `type` link.
pub const BC_ERROR_TYPE: &str =
    "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes";
/// The per-store quota the mock advertises.
pub const QUOTA: u32 = 150;
/// The rate-limit window the mock advertises.
pub const WINDOW_MS: u64 = 30_000;
/// `X-Retry-After` sent with a `mock_status=429`.
pub const RETRY_AFTER: &str = "2";
/// How long a `mock_reset_after` body waits (so what was sent is flushed) before failing.
pub const RESET_PAUSE: Duration = Duration::from_millis(150);
/// Default body length of a `mock_trickle_ms` response.
pub const TRICKLE_BYTES: usize = 8;
/// HTTP/2 concurrent streams the mock allows (high, so it never caps a
/// measurement of the proxy's own limit).
pub const MOCK_MAX_STREAMS: u32 = 10_000;

/// Largest request body the mock keeps (bigger ones are recorded as incomplete).
const MAX_RECORDED_BODY: usize = 64 * 1024 * 1024;
/// Chunk size of streamed response bodies.
const CHUNK: usize = 64 * 1024;
/// Longest `mock_delay_ms` honoured.
const MAX_DELAY_MS: u64 = 120_000;

type MockBody = BoxBody<Bytes, std::io::Error>;

/// One request as the mock received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query, as received.
    pub uri: String,
    pub path: String,
    pub query: Option<String>,
    /// `:authority` (HTTP/2) or absolute-form authority, if any.
    pub authority: Option<String>,
    pub version: Version,
    /// Every header in arrival order, duplicates kept, lower-case names, raw value bytes.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// False when the body stream ended in an error (e.g. the proxy aborted
    /// it) or was too large to keep.
    pub body_complete: bool,
    /// When its head arrived.
    pub received: Instant,
}

impl Recorded {
    /// All values of header `name` (case-insensitive), lossily as strings.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// The first value of header `name`, if any.
    pub fn header(&self, name: &str) -> Option<String> {
        self.header_all(name).into_iter().next()
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The host the request was addressed to: `Host` (HTTP/1.1) or `:authority` (HTTP/2).
    pub fn host(&self) -> Option<String> {
        self.header("host").or_else(|| self.authority.clone())
    }

    /// The store hash of a `/stores/{hash}/...` path.
    pub fn store(&self) -> Option<&str> {
        store_of(&self.path)
    }

    /// The `X-Auth-Token` values received (should be exactly one).
    pub fn tokens(&self) -> Vec<String> {
        self.header_all("x-auth-token")
    }
}

struct State {
    stores: HashMap<String, String>,
    requests: Mutex<Vec<Recorded>>,
    /// Whether requests are kept in `requests` (off for load tests).
    record: AtomicBool,
    left: Mutex<HashMap<String, u32>>,
    started: Instant,
    counters: Counters,
    /// Set by [`MockBigCommerce::enforce_quota`].
    enforced: Mutex<Option<Enforced>>,
}

/// An enforced quota: `quota` requests per store in each `window` since `since`.
struct Enforced {
    quota: u32,
    window_ms: u64,
    since: Instant,
    /// Store → (window number, requests counted in it).
    counts: HashMap<String, (u64, u32)>,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    non_tls: AtomicU64,
    tls_failures: AtomicU64,
    started: AtomicU64,
    completed: AtomicU64,
    cancelled: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
    bodies_completed: AtomicU64,
    bodies_cut: AtomicU64,
    rate_limited: AtomicU64,
}

/// A snapshot of the mock's counters (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MockStats {
    /// TCP connections accepted.
    pub connections: u64,
    /// Connections whose first byte was not a TLS handshake record (a
    /// plaintext request, or a connection closed before sending anything).
    pub non_tls_connections: u64,
    /// TLS handshakes that failed or timed out.
    pub tls_failures: u64,
    /// Request handlers started (one per request that reached the mock's service).
    pub handlers_started: u64,
    /// Handlers that produced a response.
    pub handlers_completed: u64,
    /// Handlers dropped before producing a response (request cancelled by the peer).
    pub handlers_cancelled: u64,
    /// Handlers running now.
    pub in_flight: u64,
    /// The most handlers ever running at once.
    pub peak_in_flight: u64,
    /// Streamed (`mock_trickle_ms`, `mock_reset_after`, `mock_bytes`) bodies sent to the end.
    pub bodies_completed: u64,
    /// Streamed bodies dropped before their end (the peer went away).
    pub bodies_cut: u64,
    /// Requests refused with a 429 by an enforced quota.
    pub rate_limited: u64,
}

impl Counters {
    fn snapshot(&self) -> MockStats {
        let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
        MockStats {
            connections: get(&self.connections),
            non_tls_connections: get(&self.non_tls),
            tls_failures: get(&self.tls_failures),
            handlers_started: get(&self.started),
            handlers_completed: get(&self.completed),
            handlers_cancelled: get(&self.cancelled),
            in_flight: get(&self.in_flight),
            peak_in_flight: get(&self.peak_in_flight),
            bodies_completed: get(&self.bodies_completed),
            bodies_cut: get(&self.bodies_cut),
            rate_limited: get(&self.rate_limited),
        }
    }
}

/// Counts a handler as started; on drop, as completed or cancelled.
struct HandlerGuard {
    state: Arc<State>,
    done: bool,
}

impl HandlerGuard {
    fn new(state: Arc<State>) -> Self {
        let c = &state.counters;
        c.started.fetch_add(1, Ordering::SeqCst);
        let now = c.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        c.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        HandlerGuard { state, done: false }
    }
}

impl Drop for HandlerGuard {
    fn drop(&mut self) {
        let c = &self.state.counters;
        c.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.done {
            c.completed.fetch_add(1, Ordering::SeqCst);
        } else {
            c.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// See the module docs.
pub struct MockBigCommerce {
    pub addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MockBigCommerce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockBigCommerce")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl MockBigCommerce {
    /// Start on `127.0.0.1:0` with a certificate for `127.0.0.1` and `localhost`
    /// signed by `ca`. `stores` are `(hash, token)` pairs.
    /// With `BCGATE_MOCK_HTTP1` set it offers only `http/1.1`, as
    /// [`start_h1`](Self::start_h1) does: the test command runs the proxy
    /// suite that way too, so both upstream clients see every case.
    pub fn start(ca: &DevCa, stores: &[(&str, &str)]) -> MockBigCommerce {
        if std::env::var_os("BCGATE_MOCK_HTTP1").is_some() {
            return Self::start_h1(ca, stores);
        }
        let tls = ca.server_config(&["127.0.0.1", "localhost"], &[b"h2", b"http/1.1"]);
        Self::start_with_tls(tls, stores)
    }

    /// Like [`start`](Self::start) but offering only `http/1.1` in ALPN, so the
    /// proxy talks HTTP/1.1 to it (needed to see hop-by-hop response headers,
    /// which HTTP/2 cannot carry).
    pub fn start_h1(ca: &DevCa, stores: &[(&str, &str)]) -> MockBigCommerce {
        let tls = ca.server_config(&["127.0.0.1", "localhost"], &[b"http/1.1"]);
        Self::start_with_tls(tls, stores)
    }

    /// Start with a given rustls server config (e.g. a certificate from another CA).
    pub fn start_with_tls(
        tls: Arc<rustls::ServerConfig>,
        stores: &[(&str, &str)],
    ) -> MockBigCommerce {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind mock listener");
        Self::start_on(listener, tls, stores)
    }

    /// Like [`start`](Self::start) but on a given address (e.g. one that was
    /// refusing connections a moment ago). Fails if the address is taken.
    pub fn start_at(
        ca: &DevCa,
        stores: &[(&str, &str)],
        addr: SocketAddr,
    ) -> std::io::Result<MockBigCommerce> {
        let tls = ca.server_config(&["127.0.0.1", "localhost"], &[b"h2", b"http/1.1"]);
        Self::start_with_tls_at(tls, stores, addr)
    }

    /// [`start_with_tls`](Self::start_with_tls) on a given address.
    pub fn start_with_tls_at(
        tls: Arc<rustls::ServerConfig>,
        stores: &[(&str, &str)],
        addr: SocketAddr,
    ) -> std::io::Result<MockBigCommerce> {
        let listener = std::net::TcpListener::bind(addr)?;
        Ok(Self::start_on(listener, tls, stores))
    }

    fn start_on(
        listener: std::net::TcpListener,
        tls: Arc<rustls::ServerConfig>,
        stores: &[(&str, &str)],
    ) -> MockBigCommerce {
        listener
            .set_nonblocking(true)
            .expect("set mock listener non-blocking");
        let addr = listener.local_addr().expect("mock listener address");
        let state = Arc::new(State {
            stores: stores
                .iter()
                .map(|(h, t)| ((*h).to_owned(), (*t).to_owned()))
                .collect(),
            requests: Mutex::new(Vec::new()),
            record: AtomicBool::new(true),
            left: Mutex::new(HashMap::new()),
            started: Instant::now(),
            counters: Counters::default(),
            enforced: Mutex::new(None),
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread_state = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("mock-bigcommerce-{}", addr.port()))
            .spawn(move || serve(listener, tls, thread_state, rx))
            .expect("spawn mock thread");
        MockBigCommerce {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `https://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// `https://127.0.0.1:PORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url(), path)
    }

    /// Every request received so far, in arrival order (of completed bodies).
    pub fn requests(&self) -> Vec<Recorded> {
        self.state
            .requests
            .lock()
            .expect("mock request log poisoned")
            .clone()
    }

    /// Forget the recorded requests.
    pub fn clear(&self) {
        self.state
            .requests
            .lock()
            .expect("mock request log poisoned")
            .clear();
    }

    /// The single recorded request, panicking if there is not exactly one.
    pub fn only_request(&self) -> Recorded {
        let all = self.requests();
        assert_eq!(
            all.len(),
            1,
            "expected exactly one upstream request, got {}: {:#?}",
            all.len(),
            all.iter().map(|r| (&r.method, &r.uri)).collect::<Vec<_>>()
        );
        all.into_iter().next().expect("one request")
    }

    /// Keep (the default) or stop keeping a record of every request; a load
    /// test turns it off so memory stays flat.
    pub fn set_recording(&self, on: bool) {
        self.state.record.store(on, Ordering::SeqCst);
    }

    /// From now on, allow each store `quota` requests per `window` (fixed
    /// windows starting now) and answer the rest with BigCommerce's 429.
    pub fn enforce_quota(&self, quota: u32, window: Duration) {
        *self.state.enforced.lock().expect("mock quota poisoned") = Some(Enforced {
            quota,
            window_ms: (window.as_millis() as u64).max(1),
            since: Instant::now(),
            counts: HashMap::new(),
        });
    }

    /// The mock's counters now.
    pub fn stats(&self) -> MockStats {
        self.state.counters.snapshot()
    }

    /// Wait (bounded) until `done(stats)` holds; returns the last stats seen.
    pub fn wait_for_stats(
        &self,
        timeout: Duration,
        done: impl Fn(&MockStats) -> bool,
    ) -> MockStats {
        let deadline = Instant::now() + timeout;
        loop {
            let stats = self.stats();
            if done(&stats) || Instant::now() >= deadline {
                return stats;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Wait (bounded) until at least `n` requests were recorded.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        let deadline = Instant::now() + timeout;
        loop {
            let all = self.requests();
            if all.len() >= n || Instant::now() >= deadline {
                return all;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for MockBigCommerce {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An address on 127.0.0.1 where nothing listens (bound to port 0, then released).
pub fn unused_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind throwaway port");
    listener.local_addr().expect("throwaway address")
}

/// Byte `i` of every `mock_bytes` body.
pub fn pattern_byte(i: usize) -> u8 {
    // 251 is prime, so the pattern does not line up with power-of-two chunk sizes.
    (i % 251) as u8
}

/// The first `n` bytes of the `mock_bytes` pattern.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(pattern_byte).collect()
}

/// The store hash of a `/stores/{hash}/...` path.
pub fn store_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/stores/")?;
    let hash = rest.split('/').next()?;
    if hash.is_empty() { None } else { Some(hash) }
}

fn serve(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<State>,
    shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mock-bigcommerce-rt")
        .enable_all()
        .build()
        .expect("build mock runtime");
    rt.block_on(async move {
        let listener =
            tokio::net::TcpListener::from_std(listener).expect("register mock listener");
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let mut shutdown = shutdown;
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => {
                    let Ok((tcp, _peer)) = accepted else { continue };
                    state.counters.connections.fetch_add(1, Ordering::SeqCst);
                    let acceptor = acceptor.clone();
                    let state = state.clone();
                    tokio::spawn(async move {
                        let mut first = [0u8; 1];
                        let peeked =
                            tokio::time::timeout(Duration::from_secs(10), tcp.peek(&mut first)).await;
                        // 0x16: a TLS handshake record (the ClientHello).
                        if !matches!(peeked, Ok(Ok(1))) || first[0] != 0x16 {
                            state.counters.non_tls.fetch_add(1, Ordering::SeqCst);
                        }
                        let Ok(Ok(tls)) =
                            tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                        else {
                            state.counters.tls_failures.fetch_add(1, Ordering::SeqCst);
                            return;
                        };
                        let service = hyper::service::service_fn(move |req| {
                            let state = state.clone();
                            async move {
                                let mut guard = HandlerGuard::new(state.clone());
                                let resp = handle(state, req).await;
                                guard.done = true;
                                Ok::<_, Infallible>(resp)
                            }
                        });
                        let mut builder =
                            hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                        builder.http2().max_concurrent_streams(MOCK_MAX_STREAMS);
                        let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                    });
                }
            }
        }
    });
    rt.shutdown_background();
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<MockBody> {
    let received = Instant::now();
    let (parts, mut body) = req.into_parts();
    let mut buf = Vec::new();
    let mut complete = true;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    if buf.len() + data.len() > MAX_RECORDED_BODY {
                        complete = false;
                        break;
                    }
                    buf.extend_from_slice(data);
                }
            }
            Err(_) => {
                complete = false;
                break;
            }
        }
    }
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let uri = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let recorded = Recorded {
        method: parts.method.as_str().to_owned(),
        uri: uri.clone(),
        path: path.clone(),
        query: query.clone(),
        authority: parts.uri.authority().map(|a| a.as_str().to_owned()),
        version: parts.version,
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect(),
        body: buf.clone(),
        body_complete: complete,
        received,
    };
    if state.record.load(Ordering::SeqCst) {
        state
            .requests
            .lock()
            .expect("mock request log poisoned")
            .push(recorded);
    }

    let params = query_params(&uri);
    let store = store_of(&path).map(str::to_owned);
    let counter_key = store
        .clone()
        .filter(|s| state.stores.contains_key(s))
        .unwrap_or_else(|| "_".to_owned());
    let enforced = state
        .enforced
        .lock()
        .expect("mock quota poisoned")
        .as_mut()
        .map(|e| e.count(&counter_key));
    let rate = match enforced {
        Some(rate) => rate,
        None => {
            let left = {
                let mut left = state.left.lock().expect("mock rate limits poisoned");
                let entry = left.entry(counter_key).or_insert(QUOTA);
                *entry = entry.saturating_sub(1);
                *entry
            };
            RateInfo {
                left,
                quota: QUOTA,
                window_ms: WINDOW_MS,
                reset_ms: reset_ms(state.started.elapsed(), WINDOW_MS),
                enabled: true,
                over: false,
            }
        }
    };
    let rate = RateInfo {
        enabled: param(&params, "mock_no_ratelimit").is_none_or(|v| v != "1"),
        ..rate
    };
    if rate.over {
        state.counters.rate_limited.fetch_add(1, Ordering::SeqCst);
        let mut resp = error(
            StatusCode::TOO_MANY_REQUESTS,
            "You have exceeded your request quota.",
            &rate,
        );
        let secs = rate.reset_ms.div_ceil(1000).max(1);
        resp.headers_mut()
            .insert("x-retry-after", HeaderValue::from(secs));
        return resp;
    }

    // Shape: /stores/{hash}/v2/..., /stores/{hash}/v3/..., /stores/{hash}/graphql
    let routable = store.as_deref().is_some_and(|hash| {
        let rest = &path["/stores/".len() + hash.len()..];
        rest == "/graphql"
            || (rest.starts_with("/v2/") && rest.len() > 4)
            || (rest.starts_with("/v3/") && rest.len() > 4)
    });
    let Some(hash) = store.filter(|_| routable) else {
        return error(
            StatusCode::NOT_FOUND,
            "The requested resource was not found.",
            &rate,
        );
    };
    let Some(expected) = state.stores.get(&hash) else {
        return error(StatusCode::NOT_FOUND, "Store not found.", &rate);
    };
    let tokens: Vec<&HeaderValue> = parts.headers.get_all("x-auth-token").iter().collect();
    if tokens.len() != 1 || tokens[0].as_bytes() != expected.as_bytes() {
        return error(
            StatusCode::UNAUTHORIZED,
            "You are not authorized to access this resource.",
            &rate,
        );
    }

    if let Some(ms) = param(&params, "mock_delay_ms").and_then(|v| v.parse::<u64>().ok()) {
        tokio::time::sleep(Duration::from_millis(ms.min(MAX_DELAY_MS))).await;
    }
    if let Some(status) = param(&params, "mock_status")
        .and_then(|v| v.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
    {
        let mut resp = error(
            status,
            status.canonical_reason().unwrap_or("Mock status"),
            &rate,
        );
        if status == StatusCode::TOO_MANY_REQUESTS && rate.enabled {
            resp.headers_mut()
                .insert("x-retry-after", HeaderValue::from_static(RETRY_AFTER));
        }
        if let Some(v) = param(&params, "mock_retry_after") {
            let Ok(v) = HeaderValue::from_str(v) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "mock_retry_after is not a valid header value.",
                    &rate,
                );
            };
            resp.headers_mut().insert("x-retry-after", v);
        }
        return resp;
    }
    if let Some(location) = param(&params, "mock_redirect") {
        let Ok(location) = HeaderValue::from_str(location) else {
            return error(
                StatusCode::BAD_REQUEST,
                "mock_redirect is not a valid header value.",
                &rate,
            );
        };
        let mut resp = Response::new(empty());
        *resp.status_mut() = StatusCode::FOUND;
        resp.headers_mut().insert("location", location);
        rate.apply(&mut resp);
        return resp;
    }
    if param(&params, "mock_echo").is_some_and(|v| v == "1") {
        let content_type = parts
            .headers
            .get("content-type")
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
        let mut resp = Response::new(chunked(Bytes::from(buf)));
        resp.headers_mut().insert("content-type", content_type);
        rate.apply(&mut resp);
        return resp;
    }
    if let Some(n) = param(&params, "mock_reset_after").and_then(|v| v.parse::<usize>().ok()) {
        let mut resp = Response::new(tracked(&state, reset_body(n)));
        resp.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("application/octet-stream"),
        );
        resp.headers_mut()
            .insert("content-length", HeaderValue::from(n.saturating_add(1024)));
        rate.apply(&mut resp);
        return resp;
    }
    if let Some(every) = param(&params, "mock_trickle_ms").and_then(|v| v.parse::<u64>().ok()) {
        let n = param(&params, "mock_bytes")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(TRICKLE_BYTES);
        let chunk = param(&params, "mock_chunk")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let every = Duration::from_millis(every.min(MAX_DELAY_MS));
        let mut resp = Response::new(tracked(&state, trickle_body(n, chunk, every)));
        resp.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("application/octet-stream"),
        );
        rate.apply(&mut resp);
        return resp;
    }
    if let Some(n) = param(&params, "mock_bytes").and_then(|v| v.parse::<usize>().ok()) {
        let mut resp = Response::new(tracked(&state, pattern_body(n)));
        resp.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("application/octet-stream"),
        );
        rate.apply(&mut resp);
        return resp;
    }

    let hop = param(&params, "mock_hop").is_some_and(|v| v == "1");
    let json = serde_json::json!({
        "data": {
            "method": parts.method.as_str(),
            "path": path,
            "query": query,
            "store_hash": hash,
        },
        "meta": {},
    });
    let mut resp = Response::new(full(json.to_string()));
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    rate.apply(&mut resp);
    if hop {
        let h = resp.headers_mut();
        h.insert("connection", HeaderValue::from_static("X-Mock-Hop"));
        h.insert("x-mock-hop", HeaderValue::from_static("hop-value"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            "proxy-authenticate",
            HeaderValue::from_static("Basic realm=\"mock\""),
        );
        h.insert("x-mock-kept", HeaderValue::from_static("kept-value"));
    }
    resp
}

struct RateInfo {
    left: u32,
    quota: u32,
    window_ms: u64,
    reset_ms: u64,
    /// False with `mock_no_ratelimit=1`.
    enabled: bool,
    /// The enforced quota of this window is used up: answer 429.
    over: bool,
}

impl Enforced {
    /// Counts one request of `store` in the current window.
    fn count(&mut self, store: &str) -> RateInfo {
        let elapsed = self.since.elapsed();
        let window = elapsed.as_millis() as u64 / self.window_ms;
        let entry = self.counts.entry(store.to_owned()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        let over = entry.1 >= self.quota;
        if !over {
            entry.1 += 1;
        }
        RateInfo {
            left: self.quota - entry.1,
            quota: self.quota,
            window_ms: self.window_ms,
            reset_ms: reset_ms(elapsed, self.window_ms),
            enabled: true,
            over,
        }
    }
}

/// Whole milliseconds left in the window `elapsed` falls in, rounded down as
/// BigCommerce does: the window may end up to 1 ms before `now + reset`.
fn reset_ms(elapsed: Duration, window_ms: u64) -> u64 {
    let window_us = window_ms * 1000;
    (window_us - elapsed.as_micros() as u64 % window_us) / 1000
}

impl RateInfo {
    fn apply(&self, resp: &mut Response<MockBody>) {
        if !self.enabled {
            return;
        }
        let h = resp.headers_mut();
        h.insert("x-rate-limit-requests-left", HeaderValue::from(self.left));
        h.insert("x-rate-limit-requests-quota", HeaderValue::from(self.quota));
        h.insert(
            "x-rate-limit-time-window-ms",
            HeaderValue::from(self.window_ms),
        );
        h.insert(
            "x-rate-limit-time-reset-ms",
            HeaderValue::from(self.reset_ms),
        );
    }
}

fn error(status: StatusCode, title: &str, rate: &RateInfo) -> Response<MockBody> {
    let no_body = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let mut resp = if no_body {
        Response::new(empty())
    } else {
        let json = serde_json::json!({
            "status": status.as_u16(),
            "title": title,
            "type": BC_ERROR_TYPE,
            "errors": {},
        });
        let mut resp = Response::new(full(json.to_string()));
        resp.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        resp
    };
    *resp.status_mut() = status;
    rate.apply(&mut resp);
    resp
}

fn full(data: impl Into<Bytes>) -> MockBody {
    Full::new(data.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn empty() -> MockBody {
    full(Bytes::new())
}

fn chunked(data: Bytes) -> MockBody {
    let chunks: Vec<Result<Frame<Bytes>, std::io::Error>> = (0..data.len())
        .step_by(CHUNK)
        .map(|start| {
            Ok(Frame::data(
                data.slice(start..(start + CHUNK).min(data.len())),
            ))
        })
        .collect();
    BodyExt::boxed(StreamBody::new(futures_util::stream::iter(chunks)))
}

fn pattern_body(n: usize) -> MockBody {
    let frames = (0..n).step_by(CHUNK).map(move |start| {
        let end = start.saturating_add(CHUNK).min(n);
        let chunk: Vec<u8> = (start..end).map(pattern_byte).collect();
        Ok::<_, std::io::Error>(Frame::data(Bytes::from(chunk)))
    });
    BodyExt::boxed(StreamBody::new(futures_util::stream::iter(frames)))
}

/// `n` pattern bytes, a pause (so they are flushed), then a body error.
fn reset_body(n: usize) -> MockBody {
    enum Step {
        Data(usize),
        Fail,
        Done,
    }
    let stream = futures_util::stream::unfold(Step::Data(0), move |step| async move {
        match step {
            Step::Data(start) if start < n => {
                let end = start.saturating_add(CHUNK).min(n);
                let chunk: Vec<u8> = (start..end).map(pattern_byte).collect();
                let next = if end < n { Step::Data(end) } else { Step::Fail };
                Some((Ok(Frame::data(Bytes::from(chunk))), next))
            }
            Step::Data(_) | Step::Fail => {
                tokio::time::sleep(RESET_PAUSE).await;
                Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "mock_reset_after: the mock cuts this response",
                    )),
                    Step::Done,
                ))
            }
            Step::Done => None,
        }
    });
    BodyExt::boxed(StreamBody::new(stream))
}

/// The `n`-byte pattern in `chunk`-byte pieces, sleeping `every` before each.
fn trickle_body(n: usize, chunk: usize, every: Duration) -> MockBody {
    let stream = futures_util::stream::unfold(0usize, move |sent| async move {
        if sent >= n {
            return None;
        }
        tokio::time::sleep(every).await;
        let end = sent.saturating_add(chunk).min(n);
        let data: Vec<u8> = (sent..end).map(pattern_byte).collect();
        Some((Ok::<_, std::io::Error>(Frame::data(Bytes::from(data))), end))
    });
    BodyExt::boxed(StreamBody::new(stream))
}

/// Wraps a streamed body so the counters say whether it was sent to the end.
fn tracked(state: &Arc<State>, inner: MockBody) -> MockBody {
    BodyExt::boxed(Tracked {
        inner,
        state: state.clone(),
        finished: false,
    })
}

struct Tracked {
    inner: MockBody,
    state: Arc<State>,
    finished: bool,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        // The end of the stream, or the error a `mock_reset_after` body means to send.
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.finished = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let c = &self.state.counters;
        if self.finished || self.inner.is_end_stream() {
            c.bodies_completed.fetch_add(1, Ordering::SeqCst);
        } else {
            c.bodies_cut.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn query_params(uri: &str) -> Vec<(String, String)> {
    let query = uri.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
