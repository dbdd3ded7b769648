//! A mock of BigCommerce: real HTTPS (a [`DevCa`], ALPN h2 + http/1.1),
//! BigCommerce's error shapes and rate-limit headers, and a record of every
//! request. `bcgate dev` puts bcgate in front of it; the integration tests
//! use it as their upstream.
//!
//! One listener serves every BigCommerce host, each under its own path
//! prefix, so a test can tell which origin got what:
//! - the api host (`api.bigcommerce.com`) at the root: `/stores/{hash}/v2|v3/...`
//!   and `/stores/{hash}/graphql` with the store's `X-Auth-Token`; BigCommerce's
//!   clock (`GET /stores/{hash}/v2/time`); the minting of payment access
//!   tokens, private storefront tokens and customer impersonation tokens
//!   (recorded in a registry the other hosts check, see [`Minted`]); and
//!   `POST /accounts/{uuid}/graphql` with an account's token
//!   ([`MockBigCommerce::add_account`]);
//! - the payments host at [`MockBigCommerce::payments_url`]: Process Payment
//!   with `Authorization: PAT <token>` (single use, as BigCommerce's are);
//! - storefront channel origins at [`MockBigCommerce::storefront_origin`]:
//!   GraphQL with `Authorization: Bearer <private token or CIT>`, answering
//!   what the token carried (never the token); and the customer login access
//!   point `GET …/login/token/{jwt}`, checking the JWT with the store's client
//!   secret ([`MockBigCommerce::set_client_secret`]) and BigCommerce's clock,
//!   answering a 302 with a session cookie ([`MockBigCommerce::logins`]);
//! - the B2B Edition host at [`MockBigCommerce::b2b_url`]: `/api/v3/io/...`
//!   with `X-Auth-Token` and `X-Store-Hash`, and B2B's rate-limit headers.
//!
//! A credential that belongs to another host (an `X-Auth-Token` at the
//! payments host or a storefront, an `Authorization` at the B2B host) is
//! answered 400 and counted in [`MockStats::foreign_credentials`]: bcgate must
//! never pass one along.
//!
//! It runs on its own thread with its own tokio runtime, so it keeps serving
//! while a test blocks (a child process, a raw socket, `std::thread::sleep`).
//!
//! Behaviours chosen by query parameters, on any routable path of the api host:
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

mod account;
mod b2b;
mod body;
mod handler;
mod login;
mod mint;
mod payments;
mod storefront;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Version;
use http_body_util::combinators::BoxBody;

use crate::ca::DevCa;
use handler::serve;
pub use login::{LOGIN_WINDOW_S, Login, SESSION_COOKIE};
pub use mint::{Minted, MintedKind};

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

/// The B2B Edition host's per-store quota (requests per [`B2B_WINDOW_S`]).
pub const B2B_QUOTA: u32 = 150;
/// The B2B Edition host's rate-limit window, in seconds.
pub const B2B_WINDOW_S: u64 = 60;
/// How long a payment access token lives, in seconds.
pub const PAT_LIFETIME_S: i64 = 3600;
/// The path prefix of the payments host.
pub const PAYMENTS_PREFIX: &str = "/payments-host";
/// The path prefix of the B2B Edition host.
pub const B2B_PREFIX: &str = "/b2b-host";
/// The path prefix of the storefront channel origins.
pub const STOREFRONT_PREFIX: &str = "/storefront";

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
    /// Account UUID → account token ([`MockBigCommerce::add_account`]).
    accounts: Mutex<HashMap<String, String>>,
    /// Every token minted so far.
    minted: Mutex<mint::Registry>,
    /// The key the minted tokens (JWTs, as BigCommerce's are) are signed with.
    signing_key: [u8; 32],
    /// BigCommerce's clock minus this machine's, in seconds.
    clock_offset_s: AtomicI64,
    /// Store → the client id and secret its login JWTs are signed with.
    client_secrets: Mutex<HashMap<String, login::ClientSecret>>,
    /// Every login JWT `jti` accepted (each is good once).
    login_jtis: Mutex<HashSet<String>>,
    /// Every login accepted, oldest first.
    logins: Mutex<Vec<login::Login>>,
    /// Non-zero: every mint request is answered with this status.
    mint_failure: AtomicU16,
    /// The B2B host's windows: store → (window number, requests counted in it).
    b2b_windows: Mutex<HashMap<String, (u64, u32)>>,
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
    pats_minted: AtomicU64,
    private_tokens_minted: AtomicU64,
    cits_minted: AtomicU64,
    foreign_credentials: AtomicU64,
    expired_tokens_seen: AtomicU64,
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
    /// Payment access tokens minted.
    pub pats_minted: u64,
    /// Private storefront tokens minted.
    pub private_tokens_minted: u64,
    /// Customer impersonation tokens minted.
    pub cits_minted: u64,
    /// Requests that carried another host's credential (refused with a 400).
    pub foreign_credentials: u64,
    /// Requests to the payments host or a storefront with an expired minted token.
    pub expired_tokens_seen: u64,
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
            pats_minted: get(&self.pats_minted),
            private_tokens_minted: get(&self.private_tokens_minted),
            cits_minted: get(&self.cits_minted),
            foreign_credentials: get(&self.foreign_credentials),
            expired_tokens_seen: get(&self.expired_tokens_seen),
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
        let mut signing_key = [0u8; 32];
        getrandom::getrandom(&mut signing_key).expect("random key for the mock's minted tokens");
        let state = Arc::new(State {
            stores: stores
                .iter()
                .map(|(h, t)| ((*h).to_owned(), (*t).to_owned()))
                .collect(),
            accounts: Mutex::new(HashMap::new()),
            minted: Mutex::new(mint::Registry::default()),
            signing_key,
            clock_offset_s: AtomicI64::new(0),
            client_secrets: Mutex::new(HashMap::new()),
            login_jtis: Mutex::new(HashSet::new()),
            logins: Mutex::new(Vec::new()),
            mint_failure: AtomicU16::new(0),
            b2b_windows: Mutex::new(HashMap::new()),
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

    /// `https://127.0.0.1:PORT/payments-host`: the payments host, for
    /// bcgate's `upstream.payments_url`.
    pub fn payments_url(&self) -> String {
        self.url(PAYMENTS_PREFIX)
    }

    /// `https://127.0.0.1:PORT/b2b-host`: the B2B Edition host, for bcgate's
    /// `upstream.b2b_url`.
    pub fn b2b_url(&self) -> String {
        self.url(B2B_PREFIX)
    }

    /// `https://127.0.0.1:PORT/storefront/{hash}/{channel}`: the storefront
    /// origin of a store's channel, for a `stores[].channels[].origin`.
    pub fn storefront_origin(&self, hash: &str, channel: u32) -> String {
        self.url(&format!("{STOREFRONT_PREFIX}/{hash}/{channel}"))
    }

    /// Configure an account: `POST /accounts/{uuid}/graphql` then needs
    /// `X-Auth-Token: token`. Adding a uuid again replaces its token.
    pub fn add_account(&self, uuid: &str, token: &str) {
        self.state
            .accounts
            .lock()
            .expect("mock accounts poisoned")
            .insert(uuid.to_owned(), token.to_owned());
    }

    /// Every token minted so far, oldest first (what each carries, never the
    /// token itself).
    pub fn minted(&self) -> Vec<Minted> {
        self.state
            .minted
            .lock()
            .expect("mock token registry poisoned")
            .list()
    }

    /// Make every token minted so far refused (401) from now on, as if
    /// BigCommerce had revoked them; tokens minted later work.
    pub fn revoke_minted_tokens(&self) {
        self.state
            .minted
            .lock()
            .expect("mock token registry poisoned")
            .revoke_all();
    }

    /// Set BigCommerce's clock to run `secs` ahead of this machine's
    /// (negative: behind). `/v2/time`, the `expires_at` a mint request must
    /// exceed, and every token's expiry follow it, so a test can expire
    /// tokens at once or catch a caller that uses its own clock.
    pub fn set_clock_offset(&self, secs: i64) {
        self.state.clock_offset_s.store(secs, Ordering::SeqCst);
    }

    /// The client id and secret that sign `hash`'s customer login JWTs
    /// (its API account's or app's); without one its storefronts refuse
    /// every login. Setting it again replaces it.
    pub fn set_client_secret(&self, hash: &str, client_id: &str, secret: &str) {
        self.state
            .client_secrets
            .lock()
            .expect("mock secrets poisoned")
            .insert(
                hash.to_owned(),
                login::ClientSecret {
                    client_id: client_id.to_owned(),
                    secret: secret.to_owned(),
                },
            );
    }

    /// Every customer login a storefront accepted, oldest first.
    pub fn logins(&self) -> Vec<Login> {
        self.state
            .logins
            .lock()
            .expect("mock logins poisoned")
            .clone()
    }

    /// BigCommerce's clock now (Unix seconds), as `/v2/time` answers.
    pub fn bc_time(&self) -> i64 {
        self.state.now_unix()
    }

    /// Answer every mint request with `status` and BigCommerce's error body
    /// from now on (after the store token is checked); `None` mints again.
    pub fn fail_mints(&self, status: Option<u16>) {
        self.state
            .mint_failure
            .store(status.unwrap_or(0), Ordering::SeqCst);
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

impl State {
    /// BigCommerce's clock: this machine's plus the offset a test set.
    fn now_unix(&self) -> i64 {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        secs + self.clock_offset_s.load(Ordering::SeqCst)
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
