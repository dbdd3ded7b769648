//! Metric names, each declared once with what it counts, and the functions
//! the request path calls to record them. Labels are bounded by config and
//! code: client and store names from the config, route templates from the
//! route table, error codes from [`ProxyError`](crate::error::ProxyError) —
//! never a raw path, a query or a key. The Prometheus exposition is served
//! on the admin listener's `/metrics`.

use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Requests answered, by `client`, `store`, `route` (template), `decision` and `status`.
pub const REQUESTS_TOTAL: &str = "bcgate_requests_total";
/// Requests bcgate answered itself, by error `code`.
pub const DENIALS_TOTAL: &str = "bcgate_denials_total";
/// Seconds from the request head to the response head, by `decision`.
pub const REQUEST_SECONDS: &str = "bcgate_request_duration_seconds";
/// Seconds the upstream took to send its response head, by `store`.
pub const UPSTREAM_SECONDS: &str = "bcgate_upstream_duration_seconds";
/// Upstream failures, by `kind` (`connect`, `tls`, `timeout`, `protocol`,
/// `redirect`, `truncated`: a response body the upstream cut short).
pub const UPSTREAM_ERRORS_TOTAL: &str = "bcgate_upstream_errors_total";
/// The latest `X-Rate-Limit-Requests-Left` BigCommerce reported, by `store`.
pub const RATE_LIMIT_LEFT: &str = "bcgate_store_rate_limit_requests_left";
/// Config reloads, by `result` (`ok`, `error`).
pub const CONFIG_RELOADS_TOTAL: &str = "bcgate_config_reloads_total";
/// Connections open now, by `listener` (`proxy`, `admin`).
pub const OPEN_CONNECTIONS: &str = "bcgate_open_connections";
/// Connections the proxy listener serves at most (`server.max_connections`,
/// lowered to fit the open-files limit).
pub const CONNECTION_LIMIT: &str = "bcgate_connection_limit";
/// Times the proxy listener stopped accepting because the connection limit was reached.
pub const CONNECTION_LIMIT_WAITS_TOTAL: &str = "bcgate_connection_limit_waits_total";
/// Requests the proxy serves at once (`server.max_in_flight`).
pub const IN_FLIGHT_LIMIT: &str = "bcgate_in_flight_limit";
/// Requests answered 503 `overloaded` because `server.max_in_flight` were in flight.
pub const SHED_TOTAL: &str = "bcgate_requests_shed_total";
/// Failed `accept` calls on the proxy listener (out of file descriptors, most often).
pub const ACCEPT_ERRORS_TOTAL: &str = "bcgate_accept_errors_total";
/// Connections closed because no request came for the header read timeout, by `protocol`.
pub const IDLE_CLOSED_TOTAL: &str = "bcgate_idle_connections_closed_total";
/// Tokio tasks alive when `/metrics` was read (connections, requests, background work).
pub const ALIVE_TASKS: &str = "bcgate_runtime_alive_tasks";
/// Learn-mode requests enforce mode would have refused, by `client`, `method`,
/// `route` (template) and `required` (the scopes any one of which grants it, `|`-separated).
pub const LEARN_WOULD_DENY_TOTAL: &str = "bcgate_learn_would_deny_total";
/// Distinct (client, method, route, level) entries learn mode keeps.
pub const LEARN_ENTRIES: &str = "bcgate_learn_entries";
/// Learn-mode requests not recorded because `learn.max_entries` was reached.
pub const LEARN_DROPPED_TOTAL: &str = "bcgate_learn_dropped_total";
/// Writes of the observations file, by `result` (`ok`, `error`).
pub const LEARN_WRITES_TOTAL: &str = "bcgate_learn_writes_total";

/// Requests waiting for their store's quota now (on this replica), by `store`.
pub const QUOTA_QUEUE_DEPTH: &str = "bcgate_quota_queue_depth";
/// Seconds a request waited for its store's quota before it was sent, by `store`.
pub const QUOTA_WAIT_SECONDS: &str = "bcgate_quota_wait_seconds";
/// Units of quota granted, by `store` and `client` (each client's share is its part of the store's sum).
pub const QUOTA_GRANTED_TOTAL: &str = "bcgate_quota_granted_total";
/// 429 answers, by `store` and `source` (`bcgate`: quota_exhausted; `upstream`: BigCommerce's own).
pub const RATE_LIMITED_TOTAL: &str = "bcgate_rate_limited_total";
/// Idempotent requests sent again after an upstream 429, by `store`.
pub const QUOTA_RETRIES_TOTAL: &str = "bcgate_quota_retries_total";
/// 1 while quotas are shared through Redis, 0 while this replica uses its local share.
pub const QUOTA_SHARED: &str = "bcgate_quota_shared";
/// 0 after the upstream refused a store's token (401), 1 again once a request succeeds, by `store`.
pub const TOKEN_HEALTHY: &str = "bcgate_store_token_healthy";

/// Tokens bcgate minted, by `kind` (`payment`, `private`, `impersonation`).
pub const TOKENS_MINTED_TOTAL: &str = "bcgate_tokens_minted_total";
/// Cached storefront tokens the storefront refused (401), each renewed once.
pub const MINTED_REFUSED_TOTAL: &str = "bcgate_minted_tokens_refused_total";

/// Histogram buckets (seconds) for both latency histograms: 0.5 ms to 60 s.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Installs the process-wide Prometheus recorder and describes every metric.
pub fn install() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&LATENCY_BUCKETS)
        .map_err(|e| format!("metrics: {e}"))?
        .install_recorder()
        .map_err(|e| format!("metrics: {e}"))?;
    describe();
    Ok(handle)
}

fn describe() {
    metrics::describe_counter!(
        REQUESTS_TOTAL,
        "Requests answered, by client, store, route template, decision and HTTP status."
    );
    metrics::describe_counter!(
        DENIALS_TOTAL,
        "Requests bcgate answered itself instead of forwarding, by error code."
    );
    metrics::describe_histogram!(
        REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "Time from request head to response head, by decision."
    );
    metrics::describe_histogram!(
        UPSTREAM_SECONDS,
        metrics::Unit::Seconds,
        "Time the upstream took to send its response head, by store."
    );
    metrics::describe_counter!(
        UPSTREAM_ERRORS_TOTAL,
        "Upstream failures, by kind (connect, tls, timeout, protocol, redirect, truncated)."
    );
    metrics::describe_gauge!(
        RATE_LIMIT_LEFT,
        "The latest X-Rate-Limit-Requests-Left BigCommerce reported, by store."
    );
    metrics::describe_counter!(
        CONFIG_RELOADS_TOTAL,
        "Config reloads, by result (ok, error)."
    );
    metrics::describe_gauge!(OPEN_CONNECTIONS, "Connections open now, by listener.");
    metrics::describe_gauge!(
        CONNECTION_LIMIT,
        "Connections the proxy listener serves at most (server.max_connections, fitted to the open-files limit)."
    );
    metrics::describe_counter!(
        CONNECTION_LIMIT_WAITS_TOTAL,
        "Times the proxy listener paused accepting because the connection limit was reached."
    );
    metrics::describe_gauge!(
        IN_FLIGHT_LIMIT,
        "Requests the proxy serves at once (server.max_in_flight)."
    );
    metrics::describe_counter!(
        SHED_TOTAL,
        "Requests answered 503 overloaded because server.max_in_flight requests were in flight."
    );
    metrics::describe_counter!(
        ACCEPT_ERRORS_TOTAL,
        "Failed accept calls on the proxy listener."
    );
    metrics::describe_counter!(
        IDLE_CLOSED_TOTAL,
        "Connections closed because no request came within the header read timeout, by protocol."
    );
    metrics::describe_gauge!(ALIVE_TASKS, "Tokio tasks alive when /metrics was read.");
    metrics::describe_gauge!(
        QUOTA_QUEUE_DEPTH,
        "Requests waiting for their store's quota now on this replica, by store."
    );
    metrics::describe_histogram!(
        QUOTA_WAIT_SECONDS,
        metrics::Unit::Seconds,
        "Time a request waited for its store's quota before it was sent, by store."
    );
    metrics::describe_counter!(
        QUOTA_GRANTED_TOTAL,
        "Units of store quota granted, by store and client."
    );
    metrics::describe_counter!(
        RATE_LIMITED_TOTAL,
        "429 answers, by store and source (bcgate: quota_exhausted, upstream: BigCommerce)."
    );
    metrics::describe_counter!(
        QUOTA_RETRIES_TOTAL,
        "Idempotent requests sent again after an upstream 429, by store."
    );
    metrics::describe_gauge!(
        QUOTA_SHARED,
        "1 while store quotas are shared through Redis, 0 while this replica uses its local share."
    );
    metrics::describe_gauge!(
        TOKEN_HEALTHY,
        "0 after the upstream refused a store's token (401), 1 once a request succeeds again, by store."
    );
    metrics::describe_counter!(
        LEARN_WOULD_DENY_TOTAL,
        "Learn-mode requests enforce mode would have refused, by client, method, route template and required scopes."
    );
    metrics::describe_gauge!(
        LEARN_ENTRIES,
        "Distinct (client, method, route, level) entries learn mode keeps."
    );
    metrics::describe_counter!(
        LEARN_DROPPED_TOTAL,
        "Learn-mode requests not recorded because learn.max_entries was reached."
    );
    metrics::describe_counter!(
        LEARN_WRITES_TOTAL,
        "Writes of the observations file, by result (ok, error)."
    );
}

/// What became of a request, for the `decision` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Authorized and sent upstream (whatever the upstream answered).
    Forwarded,
    /// Refused by identity or policy (401, 403, 404).
    Denied,
    /// Malformed or over a limit (400, 408, 413, 431).
    Rejected,
    /// Authorized, but the upstream failed (502, 504).
    UpstreamFailed,
}

impl Decision {
    const ALL: [Decision; 4] = [
        Self::Forwarded,
        Self::Denied,
        Self::Rejected,
        Self::UpstreamFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Forwarded => "forwarded",
            Self::Denied => "denied",
            Self::Rejected => "rejected",
            Self::UpstreamFailed => "upstream_failed",
        }
    }
}

/// One finished request. `error_code` is set when bcgate answered itself.
/// `identity` names the client and route objects of the config generation
/// the request ran on (their addresses, 0 for none), for [`Handles`].
#[derive(Debug)]
pub struct Done<'a> {
    pub client: &'a str,
    pub store: &'a str,
    /// The API family ([`crate::family::Family::as_str`]), `-` before one is known.
    pub family: &'static str,
    pub route: &'a str,
    pub identity: [usize; 2],
    pub decision: Decision,
    pub status: u16,
    pub error_code: Option<&'static str>,
    pub elapsed: Duration,
}

/// Client and route addresses, decision, status.
type RequestKey = ([usize; 2], Decision, u16);
/// The counters of one [`RequestKey`], by store hash (a client uses few stores).
type PerStore = Vec<(Box<str>, Counter)>;

/// Metric handles already resolved, kept per config generation: a request
/// then hashes a few addresses instead of building and hashing a label set.
/// The generation owns the clients and routes the addresses point at, so an
/// address is never reused for another while its handle lives. Stores are
/// told apart by hash: an installed store is a new object on every request.
#[derive(Debug, Default)]
pub struct Handles {
    requests: RwLock<foldhash::HashMap<RequestKey, PerStore>>,
    stores: RwLock<foldhash::HashMap<String, (Histogram, Gauge)>>,
    by_decision: [OnceLock<Histogram>; 4],
}

impl Handles {
    pub fn request_done(&self, d: &Done<'_>) {
        let key = (d.identity, d.decision, d.status);
        let cached = self.requests.read().ok().and_then(|m| {
            m.get(&key)?
                .iter()
                .find(|(store, _)| **store == *d.store)
                .map(|(_, c)| c.clone())
        });
        let requests = cached.unwrap_or_else(|| {
            let c = counter!(
                REQUESTS_TOTAL,
                "client" => d.client.to_owned(),
                "store" => d.store.to_owned(),
                "family" => d.family,
                "route" => d.route.to_owned(),
                "decision" => d.decision.as_str(),
                "status" => d.status.to_string(),
            );
            if let Ok(mut m) = self.requests.write() {
                m.entry(key).or_default().push((d.store.into(), c.clone()));
            }
            c
        });
        requests.increment(1);
        if let Some(code) = d.error_code {
            counter!(DENIALS_TOTAL, "code" => code).increment(1);
        }
        let slot = Decision::ALL
            .iter()
            .position(|x| *x == d.decision)
            .unwrap_or(0);
        self.by_decision[slot]
            .get_or_init(|| histogram!(REQUEST_SECONDS, "decision" => d.decision.as_str()))
            .record(d.elapsed.as_secs_f64());
    }

    pub fn upstream_done(&self, store: &str, elapsed: Duration, requests_left: Option<f64>) {
        let cached = self.stores.read().ok().and_then(|m| m.get(store).cloned());
        let (seconds, left) = cached.unwrap_or_else(|| {
            let pair = (
                histogram!(UPSTREAM_SECONDS, "store" => store.to_owned()),
                gauge!(RATE_LIMIT_LEFT, "store" => store.to_owned()),
            );
            if let Ok(mut m) = self.stores.write() {
                m.insert(store.to_owned(), pair.clone());
            }
            pair
        });
        seconds.record(elapsed.as_secs_f64());
        if let Some(n) = requests_left {
            left.set(n);
        }
    }
}

pub fn upstream_error(kind: &'static str) {
    counter!(UPSTREAM_ERRORS_TOTAL, "kind" => kind).increment(1);
}

pub fn connection_limit(n: usize) {
    gauge!(CONNECTION_LIMIT).set(n as f64);
}

pub fn connection_limit_wait() {
    counter!(CONNECTION_LIMIT_WAITS_TOTAL).increment(1);
}

pub fn in_flight_limit(n: usize) {
    gauge!(IN_FLIGHT_LIMIT).set(n as f64);
}

pub fn token_minted(kind: &'static str) {
    counter!(TOKENS_MINTED_TOTAL, "kind" => kind).increment(1);
}

pub fn minted_token_refused() {
    counter!(MINTED_REFUSED_TOTAL).increment(1);
}

pub fn request_shed() {
    counter!(SHED_TOTAL).increment(1);
}

pub fn accept_error() {
    counter!(ACCEPT_ERRORS_TOTAL).increment(1);
}

/// `protocol`: `http1` or `http2` (`h1guard::Idle::as_str`).
pub fn idle_connection_closed(protocol: &'static str) {
    counter!(IDLE_CLOSED_TOTAL, "protocol" => protocol).increment(1);
}

/// Samples what is only known on demand; called just before rendering `/metrics`.
pub fn sample_runtime() {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        gauge!(ALIVE_TASKS).set(handle.metrics().num_alive_tasks() as f64);
    }
}

/// The would-deny counter of one (client, method, route, required); the
/// recorder keeps the handle. Labels are bounded: clients by the config,
/// method and route by the route table, and `required` follows from the
/// route and level.
pub fn would_deny(client: &str, method: &http::Method, route: &str, required: String) -> Counter {
    counter!(
        LEARN_WOULD_DENY_TOTAL,
        "client" => client.to_owned(),
        "method" => method.to_string(),
        "route" => route.to_owned(),
        "required" => required,
    )
}

pub fn learn_entries(n: usize) {
    gauge!(LEARN_ENTRIES).set(n as f64);
}

pub fn learn_dropped() {
    counter!(LEARN_DROPPED_TOTAL).increment(1);
}

pub fn learn_flush(ok: bool) {
    counter!(LEARN_WRITES_TOTAL, "result" => if ok { "ok" } else { "error" }).increment(1);
}

pub fn config_reload(ok: bool) {
    counter!(CONFIG_RELOADS_TOTAL, "result" => if ok { "ok" } else { "error" }).increment(1);
}

/// Counts a connection as open until the returned guard drops.
pub fn connection_opened(listener: &'static str) -> ConnectionGuard {
    gauge!(OPEN_CONNECTIONS, "listener" => listener).increment(1.0);
    ConnectionGuard(listener)
}

#[derive(Debug)]
pub struct ConnectionGuard(&'static str);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        gauge!(OPEN_CONNECTIONS, "listener" => self.0).decrement(1.0);
    }
}

pub fn quota_queue_depth(store: &str, depth: usize) {
    gauge!(QUOTA_QUEUE_DEPTH, "store" => store.to_owned()).set(depth as f64);
}

pub fn quota_granted(store: &str, client: &str, waited: Duration) {
    histogram!(QUOTA_WAIT_SECONDS, "store" => store.to_owned()).record(waited.as_secs_f64());
    counter!(QUOTA_GRANTED_TOTAL, "store" => store.to_owned(), "client" => client.to_owned())
        .increment(1);
}

pub fn quota_rejected(store: &str) {
    counter!(RATE_LIMITED_TOTAL, "store" => store.to_owned(), "source" => "bcgate").increment(1);
}

pub fn upstream_rate_limited(store: &str) {
    counter!(RATE_LIMITED_TOTAL, "store" => store.to_owned(), "source" => "upstream").increment(1);
}

pub fn quota_retry(store: &str) {
    counter!(QUOTA_RETRIES_TOTAL, "store" => store.to_owned()).increment(1);
}

pub fn quota_shared(shared: bool) {
    gauge!(QUOTA_SHARED).set(if shared { 1.0 } else { 0.0 });
}

pub fn token_healthy(store: &str, healthy: bool) {
    gauge!(TOKEN_HEALTHY, "store" => store.to_owned()).set(if healthy { 1.0 } else { 0.0 });
}
