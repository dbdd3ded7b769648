//! The mock's accept loop and its request handler: every request is
//! recorded, then handed to its host by path prefix; the api host's own
//! answers (a request's path, token and `mock_*` parameters) are here.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::body::{chunked, empty, full, pattern_body, reset_body, tracked, trickle_body};
use super::{
    B2B_PREFIX, BC_ERROR_TYPE, Enforced, HandlerGuard, MAX_DELAY_MS, MAX_RECORDED_BODY,
    MOCK_MAX_STREAMS, MockBody, PAYMENTS_PREFIX, QUOTA, RETRY_AFTER, Recorded, STOREFRONT_PREFIX,
    State, TRICKLE_BYTES, WINDOW_MS, account, b2b, mint, payments, store_of, storefront,
};

/// What the hosts' handlers read of a request (its body already in full).
pub(super) struct Req<'a> {
    pub method: &'a http::Method,
    pub headers: &'a http::HeaderMap,
    pub query: Option<&'a str>,
    pub body: &'a [u8],
}

impl Req<'_> {
    /// The only value of header `name`: `None` if absent or repeated.
    pub fn single(&self, name: &str) -> Option<&HeaderValue> {
        let mut all = self.headers.get_all(name).iter();
        let first = all.next()?;
        all.next().is_none().then_some(first)
    }

    /// Whether the request carries any of `names`: a credential meant for
    /// another host, which bcgate must never pass along. Counted.
    pub fn foreign_credential(&self, state: &State, names: &[&str]) -> bool {
        let found = names.iter().any(|n| self.headers.contains_key(*n));
        if found {
            state
                .counters
                .foreign_credentials
                .fetch_add(1, Ordering::SeqCst);
        }
        found
    }
}

/// The rest of `path` under a host's `prefix` (`""` or starting with `/`).
fn under<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

pub(super) fn serve(
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
                                let head = req.method() == http::Method::HEAD;
                                let mut resp = handle(state, req).await;
                                guard.done = true;
                                // As BigCommerce: a HEAD answer has the GET
                                // answer's head and no body (hyper's HTTP/1
                                // server drops it itself, its HTTP/2 one does not).
                                if head {
                                    resp = resp.map(|_| empty());
                                }
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

    let req = Req {
        method: &parts.method,
        headers: &parts.headers,
        query: query.as_deref(),
        body: &buf,
    };
    if let Some(rest) = under(&path, PAYMENTS_PREFIX) {
        return payments::handle(&state, &req, rest);
    }
    if let Some(rest) = under(&path, B2B_PREFIX) {
        return b2b::handle(&state, &req, rest);
    }
    if let Some(rest) = under(&path, STOREFRONT_PREFIX) {
        return storefront::handle(&state, &req, rest);
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

    if let Some(uuid) = account::graphql_path(&path) {
        return account::handle(&state, &req, uuid, &rate);
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
        let mut resp = Response::new(chunked(Bytes::copy_from_slice(req.body)));
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

    let rest = &path["/stores/".len() + hash.len()..];
    if let Some(resp) = mint::handle(&state, &req, &hash, rest, &rate) {
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

pub(super) struct RateInfo {
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
    pub(super) fn apply(&self, resp: &mut Response<MockBody>) {
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

pub(super) fn error(status: StatusCode, title: &str, rate: &RateInfo) -> Response<MockBody> {
    error_with(status, title, serde_json::json!({}), rate)
}

/// BigCommerce's error body, with `errors` naming what was wrong.
pub(super) fn error_with(
    status: StatusCode,
    title: &str,
    errors: serde_json::Value,
    rate: &RateInfo,
) -> Response<MockBody> {
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
            "errors": errors,
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

/// A JSON response with `status`.
pub(super) fn json(status: StatusCode, value: &serde_json::Value) -> Response<MockBody> {
    let mut resp = Response::new(full(value.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    resp
}
