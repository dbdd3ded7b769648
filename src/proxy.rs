//! One request through bcgate, in order:
//!
//! 1. **screen**    — a head the [`h1guard`](crate::h1guard) refused, CONNECT/TRACE
//!    and foreign absolute-form targets are 400;
//!    the path must be canonical ([`decide::Canonical`]).
//! 2. **identify**  — the caller's key → client ([`identify`]).
//! 3. **route**     — the store the path names (or the client's default), the
//!    API family and its route template ([`decide::route`]).
//! 4. **authorize** — store allowed, route proxied, scopes at the right level,
//!    body facts for GraphQL and scripts, the credential the family takes
//!    ([`decide::Routed::authorize`]); a learn-mode client's request is recorded.
//! 5. **credential** — the store's or account's token, or one minted for the
//!    request ([`credential`]).
//! 6. **rewrite**   — credentials and hop-by-hop out, the credential in ([`rewrite`]).
//! 7. **forward**   — stream to the family's origin and back ([`crate::forward`]), within
//!    the store's quota of that host (api or B2B Edition): wait for it, retry an
//!    idempotent 429 ([`quota`](crate::quota)); a refused storefront token is
//!    renewed once.
//!
//! Every error of every stage becomes a response in one place, [`handle`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderValue, Method, Request, Response, Version, header};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::body::{self, ProxyBody};
use crate::config::Config;
use crate::error::ProxyError;
use crate::family::Family;
use crate::h1guard::GuardState;
use crate::headers::{
    X_BC_CUSTOMER_ID, X_BCGATE_CUSTOMER_TOKEN, X_BCGATE_ORDER_ID, X_RATE_LIMIT_REQUESTS_LEFT,
    X_REQUEST_ID,
};
use crate::identify::{Peer, identify};
use crate::learn::Mode;
use crate::metrics::Decision;
use crate::policy::{self, BodyFacts};
use crate::state::State;
use crate::{credential, decide, metrics, rewrite};

/// Facts about the connection a request came in on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub local: Option<SocketAddr>,
    /// What the head guard refused on this connection.
    pub guard: Arc<GuardState>,
    /// The connection's own identity (unix uid, mTLS subject), if any.
    pub peer: Arc<Peer>,
}

/// What the access log line says about a request.
#[derive(Debug, Default)]
struct Outcome {
    client: Option<Arc<crate::config::Client>>,
    store: Option<Arc<crate::config::Store>>,
    route: Option<Arc<str>>,
    family: Option<Family>,
    upstream_ms: Option<f64>,
}

impl Outcome {
    /// Keeps what the decision had found for the access log; the error to answer.
    fn denied(&mut self, d: decide::Denial<'_>) -> ProxyError {
        self.store = d.store;
        self.route = d.route.map(|r| r.template.clone());
        d.error
    }
}

/// Handles one request on `state`, the config generation current when it
/// arrived, kept for the whole request even if a reload lands meanwhile;
/// never fails (errors become JSON responses).
pub async fn handle(
    state: Arc<State>,
    conn: ConnInfo,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let started = Instant::now();
    // Until the answer is sent to its end: the connection is busy, not idle.
    let active = conn.guard.begin();
    let method = req.method().clone();
    let request_id = state.request_ids.for_request(req.headers());
    let mut outcome = Outcome::default();
    let result = run(&state, conn, req, &request_id, &mut outcome).await;
    let (mut resp, code, decision, cause) = match result {
        Ok(resp) => (resp, None, Decision::Forwarded, None),
        Err(e) => (
            e.to_response_in(
                request_id.to_str().unwrap_or(""),
                &state.config.server.error_docs_url,
            )
            .map(body::full),
            Some(e.code()),
            e.decision(),
            e.cause().map(str::to_owned),
        ),
    };
    resp.headers_mut().insert(X_REQUEST_ID, request_id.clone());
    let access = Access {
        status: resp.status().as_u16(),
        elapsed: started.elapsed(),
        state,
        request_id,
        cause,
        head: method == Method::HEAD,
        method,
        outcome,
    };
    if decision != Decision::Forwarded || access.head || resp.body().is_end_stream() {
        access.write(decision, code, code.unwrap_or("forwarded"));
        return resp;
    }
    // A forwarded body is logged when it ends, as what it turned out to be.
    resp.map(|b| {
        body::on_end(b, move |end| {
            drop(active);
            access.ended(&end);
        })
    })
}

/// [`handle`] as a tower service: one per connection, under the server's
/// layers ([`crate::overload`]). `live` gives the config generation current
/// when a request arrives. Cloned for every request, so it is one reference
/// count of the connection's own, not one per field.
pub struct Service<L>(Arc<(L, ConnInfo)>);

impl<L> Service<L>
where
    L: Fn() -> Arc<State>,
{
    pub fn new(live: L, conn: ConnInfo) -> Self {
        Self(Arc::new((live, conn)))
    }
}

impl<L> Clone for Service<L> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<L> std::fmt::Debug for Service<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Service").field(&self.0.1).finish()
    }
}

/// [`Service`]'s future. Boxed: hyper keeps a connection's request future
/// allocated while it sits idle, so it stays a pointer (and a named type
/// keeps rustc's `Send` proof of the connection task tractable).
pub type Handled = std::pin::Pin<
    Box<dyn Future<Output = Result<Response<ProxyBody>, std::convert::Infallible>> + Send>,
>;

impl<L> tower::Service<Request<Incoming>> for Service<L>
where
    L: Fn() -> Arc<State>,
{
    type Response = Response<ProxyBody>;
    type Error = std::convert::Infallible;
    type Future = Handled;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Handled {
        let (live, conn) = &*self.0;
        let handled = handle(live(), conn.clone(), req);
        Box::pin(async move { Ok(handled.await) })
    }
}

/// The answer to a request the in-flight limit refused
/// ([`crate::overload`]): 503 `overloaded` at once (or the head guard's own
/// refusal of that head), logged and counted like any other refusal. Reads
/// nothing of the request but its head.
impl<L> crate::overload::Refuse<Request<Incoming>> for Service<L>
where
    L: Fn() -> Arc<State>,
{
    fn refuse(&self, req: &Request<Incoming>) -> Response<ProxyBody> {
        let (live, conn) = &*self.0;
        let started = Instant::now();
        // A request all the same: the connection's head and idle clocks
        // count it as begun and answered.
        let _active = conn.guard.begin();
        let state = live();
        let request_id = state.request_ids.for_request(req.headers());
        // The head guard counts the requests of a connection in order: a
        // head it refused is answered as that refusal, overloaded or not.
        let e = match conn.guard.next_request() {
            Some(refused) => refused,
            None => {
                metrics::request_shed();
                ProxyError::Overloaded
            }
        };
        let mut resp = e
            .to_response_in(
                request_id.to_str().unwrap_or(""),
                &state.config.server.error_docs_url,
            )
            .map(body::full);
        resp.headers_mut().insert(X_REQUEST_ID, request_id.clone());
        let method = req.method().clone();
        Access {
            status: resp.status().as_u16(),
            elapsed: started.elapsed(),
            state,
            request_id,
            cause: None,
            head: method == Method::HEAD,
            method,
            outcome: Outcome::default(),
        }
        .write(e.decision(), Some(e.code()), e.code());
        resp
    }
}

/// What the access log line and the request metrics say about a request,
/// kept until its answer ends.
struct Access {
    state: Arc<State>,
    request_id: HeaderValue,
    /// What failed on the way to the upstream (an error's [`ProxyError::cause`]).
    cause: Option<String>,
    method: Method,
    head: bool,
    outcome: Outcome,
    status: u16,
    elapsed: std::time::Duration,
}

impl Access {
    fn ended(self, end: &body::BodyEnd<'_>) {
        match end {
            body::BodyEnd::Complete => self.write(Decision::Forwarded, None, "forwarded"),
            body::BodyEnd::Failed(e) if body::is_idle_timeout(*e) => {
                metrics::upstream_error("timeout");
                self.write(Decision::UpstreamFailed, None, "upstream_timeout");
            }
            body::BodyEnd::Failed(_) => {
                metrics::upstream_error("truncated");
                self.write(Decision::UpstreamFailed, None, "upstream_truncated");
            }
            body::BodyEnd::Dropped => self.write(Decision::Forwarded, None, "client_closed"),
        }
    }

    fn write(&self, decision: Decision, error_code: Option<&'static str>, code: &str) {
        let outcome = &self.outcome;
        let client = outcome.client.as_ref().map_or("-", |c| c.name.as_str());
        let store = outcome.store.as_ref().map_or("-", |s| s.hash.as_str());
        let route = outcome.route.as_deref().unwrap_or("-");
        let family = outcome.family.map_or("-", Family::as_str);
        let identity = [
            outcome
                .client
                .as_ref()
                .map_or(0, |c| Arc::as_ptr(c) as usize),
            outcome
                .route
                .as_ref()
                .map_or(0, |r| Arc::as_ptr(r).cast::<u8>() as usize),
        ];
        self.state.metrics.request_done(&metrics::Done {
            client,
            store,
            family,
            route,
            identity,
            decision,
            status: self.status,
            error_code,
            elapsed: self.elapsed,
        });
        tracing::info!(
            target: "bcgate::access",
            request_id = self.request_id.to_str().unwrap_or(""),
            client,
            store,
            method = self.method.as_str(),
            family,
            route,
            status = self.status,
            decision = decision.as_str(),
            code,
            latency_ms = millis_3(self.elapsed),
            upstream_ms = outcome.upstream_ms.unwrap_or(0.0),
            cause = self.cause.as_deref(),
        );
    }
}

async fn run(
    state: &State,
    conn: ConnInfo,
    req: Request<Incoming>,
    request_id: &HeaderValue,
    out: &mut Outcome,
) -> Result<Response<ProxyBody>, ProxyError> {
    let cfg = &state.config;
    let (mut parts, body) = req.into_parts();

    // 1. screen
    if let Some(refused) = conn.guard.next_request() {
        return Err(refused);
    }
    if parts.method == Method::CONNECT || parts.method == Method::TRACE {
        return Err(ProxyError::BadRequest(format!(
            "{} is not supported",
            parts.method
        )));
    }
    if parts.version < Version::HTTP_2 {
        check_absolute_form(&parts.uri, cfg, &conn)?;
    }
    let path = decide::Canonical::new(parts.uri.path())?;

    // 2. identify
    let client = identify(&parts.headers, &conn.peer, &cfg.clients)?;
    out.client = Some(client.clone());

    // 3. route and 4. authorize: the decision `bcgate explain` shows too,
    // reading the body in between where policy depends on it.
    let installed = |hash: &str| match &state.installs {
        Some(i) => i.lookup(hash, &cfg.policy),
        None => Ok(None),
    };
    let ask = decide::Ask {
        client,
        mode: client.mode,
        method: &parts.method,
        path,
        query: parts.uri.query(),
        headers: decide::FamilyHeaders {
            customer_id: parts
                .headers
                .get(X_BC_CUSTOMER_ID)
                .map(HeaderValue::as_bytes),
            customer_token: parts.headers.contains_key(X_BCGATE_CUSTOMER_TOKEN),
            order_id: parts
                .headers
                .get(X_BCGATE_ORDER_ID)
                .map(HeaderValue::as_bytes),
        },
    };
    let gate = decide::Gate::of(cfg, &installed);
    let routed = decide::route(&gate, ask).map_err(|d| out.denied(d))?;
    out.store = routed.store.clone();
    out.family = Some(routed.family);
    out.route = Some(routed.route.template.clone());
    let limit = cfg.server.max_body_bytes;
    if content_length(&parts.headers).is_some_and(|n| n > limit) {
        return Err(ProxyError::BodyTooLarge { limit });
    }
    let idle = cfg.server.body_read_timeout;
    let total = cfg.server.body_total_timeout;
    // Customer login and current-customer: authorized before the body is
    // read, then answered here; nothing is forwarded.
    if routed.family == Family::Local {
        let decision = routed
            .authorize(BodyFacts::None)
            .map_err(|d| out.denied(d))?;
        let (decide::Credential::Answer(what), Some(store)) =
            (&decision.credential, decision.store.as_deref())
        else {
            return Err(ProxyError::BadRequest("the request names no store".into()));
        };
        let ctx = crate::answer::Ctx {
            store,
            client: cfg.store_client(store),
            api: &state.upstreams.api,
            clocks: &state.clocks,
        };
        return crate::answer::answer(
            ctx,
            *what,
            &parts.method,
            &parts.headers,
            body,
            limit,
            idle,
            total,
        )
        .await;
    }
    // A storefront body is read whole: it is sent again if the storefront
    // refuses the cached token.
    let (facts, body, watch, whole) = if routed.family == Family::Storefront {
        let bytes = body::read_bounded(body, limit, idle, total).await?;
        let full = body::full(bytes.clone());
        (
            BodyFacts::None,
            full,
            body::BodyWatch::default(),
            Some(bytes),
        )
    } else {
        let (facts, body, watch) = body_facts(
            &parts,
            routed.body_need(),
            routed.route,
            body,
            limit,
            idle,
            total,
        )
        .await?;
        (facts, body, watch, None)
    };
    let decision = routed.authorize(facts).map_err(|d| out.denied(d))?;
    if client.mode == Mode::Learn {
        let seen = decision.seen(&parts.method);
        let would_deny = decision.would_deny.as_deref();
        crate::learn::observe(&cfg.policy, &state.learn, client, &seen, would_deny);
    }

    // 5. credential: the family's token, minted if need be
    let minting = credential::Minting {
        mint: &state.mint,
        api: &state.upstreams.api,
        settings: &cfg.mint,
    };
    let store = decision.store.clone();
    let store = store.as_deref();
    let mut injected = credential::resolve(
        minting,
        decision.family,
        &decision.credential,
        store,
        cfg,
        &parts.headers,
    )
    .await?;
    let (upstream, uri) = state.upstreams.target(&decision, parts.uri.query())?;
    let family = decision.family;

    // 6. rewrite
    rewrite::upstream_request(
        &mut parts.headers,
        upstream.host(),
        &injected.headers,
        request_id,
    );
    parts.uri = uri;
    parts.version = Version::HTTP_11;

    // 7. forward: the api and B2B Edition each within the store's budget of
    // that host (waiting for it, retrying a 429); a storefront token the
    // storefront refuses is renewed once.
    let (resp, upstream_elapsed) = match (family, crate::quota::Budget::of(family), store) {
        (_, Some(budget), Some(store)) => {
            state
                .quota
                .forward(
                    upstream,
                    budget,
                    &store.hash,
                    client,
                    parts,
                    body,
                    limit,
                    idle,
                    &watch,
                )
                .await?
        }
        (Family::Storefront, _, Some(store)) => {
            let whole = whole.unwrap_or_default();
            storefront_forward(
                minting,
                upstream,
                store,
                parts,
                whole,
                &mut injected,
                limit,
                idle,
            )
            .await?
        }
        _ => {
            let sent = Instant::now();
            let resp = upstream
                .send(Request::from_parts(parts, body), limit, idle, &watch)
                .await?;
            (resp, sent.elapsed())
        }
    };
    out.upstream_ms = Some(millis_3(upstream_elapsed));
    let (mut rparts, rbody) = resp.into_parts();
    if let (Family::Api, Some(store)) = (family, store) {
        let requests_left = rparts
            .headers
            .get(X_RATE_LIMIT_REQUESTS_LEFT)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok());
        state
            .metrics
            .upstream_done(&store.hash, upstream_elapsed, requests_left);
        crate::forward::check_token_accepted(rparts.status, &store.hash)?;
    }
    rewrite::downstream_response(&mut rparts.headers, &injected.secret);
    if family == Family::Api {
        upstream.rewrite_location(rparts.status, &mut rparts.headers)?;
    } else {
        upstream.refuse_redirect(rparts.status, &mut rparts.headers)?;
    }
    rparts.version = Version::HTTP_11;
    // A stalled upstream body is cut after the request timeout of silence.
    let rbody = body::IdleTimeout::new(cfg.upstream.request_timeout, rbody);
    Ok(Response::from_parts(rparts, rbody.boxed_unsync()))
}

type Forwarded = Result<(Response<crate::forward::PooledBody>, std::time::Duration), ProxyError>;

/// Sends a storefront request (its body read whole); if the storefront
/// refuses the cached token (401), drops it and sends the request once more
/// with a fresh one, which then becomes `injected` (the answer is scrubbed
/// of the token it was sent with).
#[allow(clippy::too_many_arguments)]
async fn storefront_forward(
    minting: credential::Minting<'_>,
    upstream: &crate::forward::UpstreamClient,
    store: &crate::config::Store,
    parts: http::request::Parts,
    whole: bytes::Bytes,
    injected: &mut credential::Injected,
    limit: u64,
    idle: std::time::Duration,
) -> Forwarded {
    let sent = Instant::now();
    let again = Request::from_parts(parts.clone(), whole.clone());
    let watch = body::BodyWatch::default();
    let first = Request::from_parts(parts, body::full(whole));
    let resp = upstream.send(first, limit, idle, &watch).await?;
    if resp.status() != http::StatusCode::UNAUTHORIZED {
        return Ok((resp, sent.elapsed()));
    }
    let Some(fresh) = credential::renew(minting, store, injected).await? else {
        return Ok((resp, sent.elapsed()));
    };
    metrics::minted_token_refused();
    let (mut parts, whole) = again.into_parts();
    for (name, value) in &fresh.headers {
        parts.headers.insert(name.clone(), value.clone());
    }
    *injected = fresh;
    let resp = upstream
        .send(
            Request::from_parts(parts, body::full(whole)),
            limit,
            idle,
            &watch,
        )
        .await?;
    Ok((resp, sent.elapsed()))
}

/// Reads the body when the decision needs facts from it; otherwise streams
/// it through under the size limit and idle timeout (the watch says which tripped).
async fn body_facts(
    parts: &http::request::Parts,
    need: Option<decide::BodyNeed>,
    route: &policy::Route,
    body: Incoming,
    limit: u64,
    idle: std::time::Duration,
    total: std::time::Duration,
) -> Result<(BodyFacts, ProxyBody, body::BodyWatch), ProxyError> {
    if route.flags.graphql && (parts.method == Method::GET || parts.method == Method::HEAD) {
        // The document is in the query string (the decision read it).
        return Ok((BodyFacts::None, body::empty(), body::BodyWatch::default()));
    }
    let Some(need) = need else {
        if body.is_end_stream() {
            // No body: say so, so an HTTP/2 upstream gets no empty DATA frame.
            return Ok((BodyFacts::None, body::empty(), body::BodyWatch::default()));
        }
        let (streamed, watch) = body::streamed(body, limit, idle, total);
        return Ok((BodyFacts::None, streamed, watch));
    };
    if parts
        .headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
    {
        return Err(ProxyError::BadRequest(
            "bcgate must read this body and does not accept it compressed".into(),
        ));
    }
    let bytes = body::read_bounded(body, limit, idle, total).await?;
    let graphql_media = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/graphql"));
    let facts = decide::body_facts(need, &bytes, graphql_media)?;
    Ok((facts, body::full(bytes), body::BodyWatch::default()))
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// An absolute-form target (`GET http://host:port/path`) may only name the
/// upstream or bcgate itself (the address and port the request came in on,
/// by IP or as `localhost`): the destination is never the caller's choice.
fn check_absolute_form(uri: &http::Uri, cfg: &Config, conn: &ConnInfo) -> Result<(), ProxyError> {
    let Some(authority) = uri.authority() else {
        return Ok(());
    };
    let default_port = if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
        443
    } else {
        80
    };
    let port = authority.port_u16().unwrap_or(default_port);
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let up = &cfg.upstream.authority;
    let is_upstream = host.eq_ignore_ascii_case(up.host()) && port == up.port_u16().unwrap_or(443);
    let is_self = conn.local.is_some_and(|local| {
        port == local.port()
            && (host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip == local.ip()))
    });
    if is_upstream || is_self {
        Ok(())
    } else {
        Err(ProxyError::BadRequest(
            "the request target names another host".into(),
        ))
    }
}

/// Milliseconds with microsecond resolution (`1.234`), for the access log.
fn millis_3(d: std::time::Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

#[cfg(test)]
mod size {
    /// What hyper keeps allocated per idle HTTP/1 connection, under the
    /// in-flight limit as the server stacks it.
    #[test]
    fn the_request_future_stays_small() {
        // The server's `live`: a closure holding the live generation's handle.
        type Live = fn() -> std::sync::Arc<crate::state::State>;
        type Fut = <crate::overload::Shed<super::Service<Live>> as hyper::service::Service<
            http::Request<hyper::body::Incoming>,
        >>::Future;
        assert!(
            std::mem::size_of::<Fut>() <= 48,
            "{}",
            std::mem::size_of::<Fut>()
        );
    }
}
