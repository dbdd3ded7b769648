//! The store quota governor (`[quota]`): every client of a store shares the
//! store's one rate-limit window, so bcgate spends it for them. A store has
//! two such budgets ([`Budget`]): the api host's, and B2B Edition's, which
//! counts its own requests and reports them in its own headers. A request
//! takes one unit of its store's budget before it is forwarded: it joins the
//! budget's weighted-fair queue ([`fair`]), whose one pump task hands out
//! budget in queue order as the window allows it: paced over the window
//! ([`window::allowance`]), so that under contention the queue's weights
//! decide every grant, whatever each client's concurrency. A request not served within `max_wait_ms` (or that cannot be, as
//! the store has nothing before then) gets bcgate's own 429 (`quota_exhausted`). The budget
//! is learnt from BigCommerce's `X-Rate-Limit-*` headers (B2B Edition's
//! `X-Requests-*`; [`window`]) and
//! shared by the replicas through Redis ([`redis`]), with a local share
//! (quota / replicas) while Redis cannot be reached. An idempotent request
//! that still meets an upstream 429 is sent again after the reset, within
//! the same deadline.
//!
//! Without `[quota]` nothing waits, but token health (an api host 401 marks
//! a store's token unhealthy until a request succeeds) and the upstream 429
//! count are kept all the same. The per-store state lives outside the config
//! generation: [`Governor::next`] carries it over a reload.

pub mod fair;
pub mod redis;
pub mod window;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::sync::{Notify, oneshot};

use crate::body::{self, BodyFault, BodyWatch, ProxyBody, millis};
use crate::config::{Client, QuotaConfig};
use crate::error::{ProxyError, QuotaDenial};
use crate::family::Family;
use crate::forward::{PooledBody, UpstreamClient};
use fair::FairQueue;
use window::{Ask, Report, Take, Window};

/// Largest request body kept in memory so that a PUT can be sent again.
pub const REPLAY_BODY_LIMIT: u64 = 1024 * 1024;
/// How long a request may wait for the pump to hand out budget there is,
/// whatever its deadline.
const GRANT_GRACE: Duration = Duration::from_millis(100);
/// Added to the upstream request timeout: an in-flight grant older than that
/// lost its answer (a crashed replica) and stops counting.
const STALE_MARGIN: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Which of a store's rate-limit budgets a request spends. BigCommerce
/// counts the api host's requests and B2B Edition's apart, each in its own
/// window with its own headers, so each is governed alone: spending one
/// never holds back the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Budget {
    /// `api.bigcommerce.com/stores/{hash}/…`: `X-Rate-Limit-*`.
    Api,
    /// B2B Edition (`api-b2b.bigcommerce.com`): `X-Requests-*`.
    B2b,
}

impl Budget {
    /// The budget a family's requests spend; `None` for a family bcgate does
    /// not govern.
    pub fn of(family: Family) -> Option<Budget> {
        match family {
            Family::Api => Some(Budget::Api),
            Family::B2b => Some(Budget::B2b),
            Family::Payments | Family::Storefront | Family::Account | Family::Local => None,
        }
    }

    fn index(self) -> usize {
        match self {
            Budget::Api => 0,
            Budget::B2b => 1,
        }
    }

    /// The window an answer reports, in this budget's headers.
    pub fn report(self, h: &HeaderMap) -> Option<Report> {
        match self {
            Budget::Api => Report::from_headers(h),
            Budget::B2b => Report::from_b2b_headers(h),
        }
    }

    /// The `store` label of this budget's metrics: the hash for the api
    /// budget, `{hash}/b2b` for B2B Edition's (a hash never has a `/`).
    pub fn label(self, hash: &str) -> String {
        match self {
            Budget::Api => hash.to_owned(),
            Budget::B2b => format!("{hash}/b2b"),
        }
    }
}

/// The governor of one config generation: its settings, and the per-store
/// state every generation shares.
#[derive(Debug, Clone)]
pub struct Governor {
    settings: Option<Arc<QuotaConfig>>,
    stale_ms: u64,
    shared: Arc<Shared>,
    redis: Option<Arc<redis::RedisBudget>>,
}

#[derive(Debug)]
struct Shared {
    /// Per budget (by [`Budget::index`]), per store hash.
    stores: [Mutex<HashMap<String, Arc<StoreGov>>>; 2],
    /// Stores whose token the upstream refused (401), since when.
    unhealthy: Mutex<HashMap<String, Instant>>,
    /// How many stores `unhealthy` holds: a success reads this, not the lock.
    unhealthy_count: AtomicU64,
    /// The local clock's zero.
    epoch: Instant,
    /// Grant ids: a random prefix (unique among replicas) and a counter.
    id_prefix: u64,
    ids: AtomicU64,
}

/// One budget of one store.
#[derive(Debug)]
struct StoreGov {
    hash: String,
    budget: Budget,
    /// [`Budget::label`]: the metrics' `store` label.
    label: String,
    /// Its keys in Redis start with this ([`redis::key_prefix`]).
    redis_key: String,
    /// The local budget: this replica's own accounting, used alone without
    /// Redis and as the fallback share while Redis is down.
    window: Mutex<Window>,
    queue: Mutex<Queue>,
    /// Rung when an answer may have freed budget, or a request arrived.
    wake: Notify,
}

#[derive(Debug)]
struct Queue {
    fair: FairQueue<Waiter>,
    /// Whether the pump task runs.
    pump: bool,
    /// Clients at their `quota_max_share` for this window, until when.
    capped: HashMap<String, Instant>,
}

#[derive(Debug)]
struct Waiter {
    /// A grant, or `None`: refused now, the store has no budget before the deadline.
    tx: oneshot::Sender<Option<Grant>>,
    max_share: Option<f64>,
    deadline: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Grant {
    id: u64,
    /// Granted by the shared (Redis) budget, which must hear the answer too.
    shared: bool,
}

impl Governor {
    /// The governor for a new generation, keeping `previous`'s per-store state
    /// (and its Redis connection while `redis_url` stays the same).
    pub fn next(
        settings: Option<&QuotaConfig>,
        upstream_timeout: Duration,
        previous: Option<&Governor>,
    ) -> Result<Self, String> {
        let shared = match previous {
            Some(p) => p.shared.clone(),
            None => {
                let mut seed = [0u8; 8];
                // Without randomness, ids of two replicas might collide in Redis: a
                // grant answered by one would then clear the other's; never fatal.
                let _ = getrandom::getrandom(&mut seed);
                Arc::new(Shared {
                    stores: [Mutex::new(HashMap::new()), Mutex::new(HashMap::new())],
                    unhealthy: Mutex::new(HashMap::new()),
                    unhealthy_count: AtomicU64::new(0),
                    epoch: Instant::now(),
                    id_prefix: u64::from_le_bytes(seed) << 24,
                    ids: AtomicU64::new(0),
                })
            }
        };
        let url = settings.and_then(|s| s.redis_url.as_ref().map(|u| u.expose()));
        let redis = match (url, previous.and_then(|p| p.redis.as_ref())) {
            (Some(url), Some(r)) if r.url() == url => Some(r.clone()),
            (Some(url), _) => Some(Arc::new(redis::RedisBudget::new(url)?)),
            (None, _) => None,
        };
        if let Some(r) = &redis {
            r.publish_state();
        }
        Ok(Self {
            settings: settings.cloned().map(Arc::new),
            stale_ms: millis(upstream_timeout + STALE_MARGIN),
            shared,
            redis,
        })
    }

    fn now_ms(&self) -> u64 {
        millis(self.shared.epoch.elapsed())
    }

    fn divisor(&self) -> u64 {
        self.settings.as_ref().map_or(1, |s| u64::from(s.replicas))
    }

    fn store(&self, budget: Budget, hash: &str) -> Arc<StoreGov> {
        let mut stores = lock(&self.shared.stores[budget.index()]);
        if let Some(s) = stores.get(hash) {
            return s.clone();
        }
        let limit = self.settings.as_ref().map_or(1, |s| s.max_queue);
        let s = Arc::new(StoreGov {
            hash: hash.to_owned(),
            budget,
            label: budget.label(hash),
            redis_key: redis::key_prefix(hash, budget),
            window: Mutex::new(Window::default()),
            queue: Mutex::new(Queue {
                fair: FairQueue::new(limit),
                pump: false,
                capped: HashMap::new(),
            }),
            wake: Notify::new(),
        });
        stores.insert(hash.to_owned(), s.clone());
        s
    }

    fn next_id(&self) -> u64 {
        self.shared.id_prefix | (self.shared.ids.fetch_add(1, Ordering::Relaxed) & 0xff_ffff)
    }

    /// One unit of the store's budget: from Redis when it answers, else from
    /// the local share.
    async fn take(&self, sg: &StoreGov, client: &str, max_share: Option<f64>) -> (Take, Grant) {
        let id = self.next_id();
        if let Some(r) = &self.redis
            && let Some(take) = r
                .take(&sg.redis_key, client, max_share, id, self.stale_ms)
                .await
        {
            if take == Take::Granted {
                lock(&sg.window).grant(self.now_ms(), client, id);
            }
            return (take, Grant { id, shared: true });
        }
        let ask = Ask {
            client,
            max_share,
            id,
            divisor: self.divisor(),
            stale_ms: self.stale_ms,
        };
        let take = lock(&sg.window).take(self.now_ms(), &ask);
        (take, Grant { id, shared: false })
    }

    /// Waits for one unit of `store`'s `budget` until `deadline`; a 429
    /// `quota_exhausted` past it (or at once when the queue is full, or the
    /// store cannot have budget before the deadline).
    async fn admit(
        &self,
        settings: &QuotaConfig,
        budget: Budget,
        store: &str,
        client: &Client,
        deadline: Instant,
    ) -> Result<Permit, ProxyError> {
        let started = Instant::now();
        let sg = self.store(budget, store);
        // Every request queues, even when budget is plenty: the pump alone
        // takes budget, in queue order, so no request overtakes an earlier
        // one of its client while that one waits for Redis.
        let (tx, mut rx) = oneshot::channel();
        let seq = {
            let mut q = lock(&sg.queue);
            q.fair.set_limit(settings.max_queue);
            let waiter = Waiter {
                tx,
                max_share: client.quota_max_share,
                deadline,
            };
            let Ok(seq) = q.fair.push(&client.name, client.quota_weight, waiter) else {
                drop(q);
                return Err(self.exhausted(&sg, client, started));
            };
            crate::metrics::quota_queue_depth(&sg.label, q.fair.len());
            if !q.pump {
                q.pump = true;
                tokio::spawn(pump(self.clone(), sg.clone()));
            }
            seq
        };
        sg.wake.notify_one();
        // The pump refuses by the deadline itself when the store has nothing;
        // the grace lets it hand out budget there is even at `max_wait_ms = 0`.
        let timer = deadline.max(started + GRANT_GRACE);
        let granted = match tokio::time::timeout_at(timer.into(), &mut rx).await {
            Ok(result) => result.ok().flatten(),
            Err(_) => {
                let removed = {
                    let mut q = lock(&sg.queue);
                    let removed = q.fair.remove(seq).is_some();
                    crate::metrics::quota_queue_depth(&sg.label, q.fair.len());
                    removed
                };
                // Not in the queue any more: served just now, the grant is on its way.
                if removed {
                    None
                } else {
                    rx.await.ok().flatten()
                }
            }
        };
        match granted {
            Some(grant) => Ok(self.permit(&sg, client, grant, started)),
            None => Err(self.exhausted(&sg, client, started)),
        }
    }

    fn permit(
        &self,
        sg: &Arc<StoreGov>,
        client: &Client,
        grant: Grant,
        started: Instant,
    ) -> Permit {
        crate::metrics::quota_granted(&sg.label, &client.name, started.elapsed());
        Permit {
            gov: self.clone(),
            grant: Some((sg.clone(), grant)),
        }
    }

    fn exhausted(&self, sg: &StoreGov, client: &Client, started: Instant) -> ProxyError {
        crate::metrics::quota_rejected(&sg.label);
        let snapshot = lock(&sg.window).snapshot(self.now_ms());
        ProxyError::QuotaExhausted(Box::new(QuotaDenial {
            client: client.name.clone(),
            store: sg.hash.clone(),
            b2b: sg.budget == Budget::B2b,
            waited_ms: millis(started.elapsed()),
            quota: snapshot.quota,
            window_ms: snapshot.window_ms,
            reset_ms: snapshot.reset_ms,
        }))
    }

    /// Forwards one request under the governor, spending `store`'s
    /// `budget`: waits for budget, sends, learns from the answer, and sends
    /// an idempotent request again after an upstream 429 (at most `retries`
    /// times, within the same deadline). Returns the answer and the time the
    /// upstream took for it (no waiting).
    #[allow(clippy::too_many_arguments)]
    pub async fn forward(
        &self,
        upstream: &UpstreamClient,
        budget: Budget,
        store: &str,
        client: &Client,
        parts: http::request::Parts,
        body: ProxyBody,
        limit: u64,
        idle: Duration,
        watch: &BodyWatch,
    ) -> Result<(Response<PooledBody>, Duration), ProxyError> {
        let Some(settings) = &self.settings else {
            // No [quota]: straight through; only token health and the 429 count.
            let sent = Instant::now();
            let resp = upstream
                .send(Request::from_parts(parts, body), limit, idle, watch)
                .await?;
            self.observe(budget, store, None, Some((resp.status(), resp.headers())));
            return Ok((resp, sent.elapsed()));
        };
        // Boxed: the request future without [quota] stays as small as before
        // (it is held per request in flight, and idle-connection memory shows it).
        Box::pin(self.governed(
            settings, upstream, budget, store, client, parts, body, limit, idle, watch,
        ))
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn governed(
        &self,
        settings: &QuotaConfig,
        upstream: &UpstreamClient,
        budget: Budget,
        store: &str,
        client: &Client,
        parts: http::request::Parts,
        body: ProxyBody,
        limit: u64,
        idle: Duration,
        watch: &BodyWatch,
    ) -> Result<(Response<PooledBody>, Duration), ProxyError> {
        let deadline = Instant::now() + settings.max_wait;
        let idempotent =
            [Method::GET, Method::HEAD, Method::PUT, Method::DELETE].contains(&parts.method);
        let retries = if idempotent { settings.retries } else { 0 };
        let (first, replay) = if retries == 0 {
            (body, None)
        } else {
            replayable(&parts, body, limit, idle, watch).await?
        };
        let mut first = Some(first);
        let mut attempt = 0;
        loop {
            let permit = self
                .admit(settings, budget, store, client, deadline)
                .await?;
            let body = match (first.take(), &replay) {
                (Some(b), _) => b,
                (None, Some(bytes)) => body::full(bytes.clone()),
                (None, None) => body::empty(),
            };
            let head = match &replay {
                Some(_) => parts.clone(),
                // Sent once only: the parts move.
                None => {
                    return self
                        .send_once(upstream, permit, parts, body, limit, idle, watch)
                        .await;
                }
            };
            let sent = Instant::now();
            let resp = upstream
                .send(Request::from_parts(head, body), limit, idle, watch)
                .await;
            let took = sent.elapsed();
            let resp = match resp {
                Ok(r) => r,
                Err(e) => {
                    permit.finish(None);
                    return Err(e);
                }
            };
            permit.finish(Some((resp.status(), resp.headers())));
            if resp.status() == StatusCode::TOO_MANY_REQUESTS && attempt < retries {
                let wait = Duration::from_millis(retry_wait_ms(budget, resp.headers()));
                if Instant::now() + wait < deadline {
                    attempt += 1;
                    crate::metrics::quota_retry(&budget.label(store));
                    drop(resp);
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            return Ok((resp, took));
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_once(
        &self,
        upstream: &UpstreamClient,
        permit: Permit,
        parts: http::request::Parts,
        body: ProxyBody,
        limit: u64,
        idle: Duration,
        watch: &BodyWatch,
    ) -> Result<(Response<PooledBody>, Duration), ProxyError> {
        let sent = Instant::now();
        match upstream
            .send(Request::from_parts(parts, body), limit, idle, watch)
            .await
        {
            Ok(resp) => {
                permit.finish(Some((resp.status(), resp.headers())));
                Ok((resp, sent.elapsed()))
            }
            Err(e) => {
                permit.finish(None);
                Err(e)
            }
        }
    }

    /// Learns from an answer for `store`'s `budget` (or its absence): the
    /// budget, the upstream 429 count, token health (the api host's answers
    /// only: B2B Edition refuses a token that lacks B2B access, which says
    /// nothing of the token elsewhere).
    fn observe(
        &self,
        budget: Budget,
        store: &str,
        grant: Option<(&StoreGov, Grant)>,
        answer: Option<(StatusCode, &HeaderMap)>,
    ) {
        let throttled = answer.is_some_and(|(s, _)| s == StatusCode::TOO_MANY_REQUESTS);
        if throttled {
            crate::metrics::upstream_rate_limited(&budget.label(store));
        }
        if let Some((status, _)) = answer
            && budget == Budget::Api
        {
            self.token_health(store, status);
        }
        let Some((sg, g)) = grant else { return };
        let report = answer.and_then(|(_, h)| budget.report(h));
        let block_ms = match answer {
            // No rate-limit headers: the platform itself pushes back.
            Some((_, h)) if throttled && report.is_none() => {
                Some(window::retry_after_ms(h).unwrap_or(window::BACKPRESSURE_MS))
            }
            _ => None,
        };
        {
            let mut w = lock(&sg.window);
            let now = self.now_ms();
            w.observe(now, g.id, report.as_ref(), throttled);
            if let Some(ms) = block_ms {
                w.block(now, ms);
            }
        }
        if let Some(r) = &self.redis
            && g.shared
        {
            r.observe_later(sg.redis_key.clone(), g.id, report, throttled, block_ms);
        }
        sg.wake.notify_one();
    }

    fn token_health(&self, store: &str, status: StatusCode) {
        if status == StatusCode::UNAUTHORIZED {
            let mut bad = lock(&self.shared.unhealthy);
            if !bad.contains_key(store) {
                bad.insert(store.to_owned(), Instant::now());
                let n = bad.len() as u64;
                drop(bad);
                self.shared.unhealthy_count.store(n, Ordering::Relaxed);
                tracing::warn!(
                    store,
                    "the upstream refused this store's token (401); it is marked unhealthy until a request succeeds"
                );
                crate::metrics::token_healthy(store, false);
            }
        } else if status.is_success() && self.shared.unhealthy_count.load(Ordering::Relaxed) > 0 {
            let was = {
                let mut bad = lock(&self.shared.unhealthy);
                let was = bad.remove(store);
                self.shared
                    .unhealthy_count
                    .store(bad.len() as u64, Ordering::Relaxed);
                was
            };
            if let Some(since) = was {
                tracing::info!(
                    store,
                    unhealthy_s = since.elapsed().as_secs(),
                    "the upstream accepts this store's token again"
                );
                crate::metrics::token_healthy(store, true);
            }
        }
    }

    /// `/readyz` lines (name, ok, detail): the quota sharing (with
    /// `[quota]`) and each store whose token the upstream refuses. Neither
    /// makes the replica unready: the fallback share keeps serving, and a
    /// refused token is the store's problem, which another replica would
    /// have as well.
    pub fn checks(&self) -> Vec<(String, bool, String)> {
        let mut out = Vec::new();
        if let Some(s) = &self.settings {
            let share = if s.replicas > 1 {
                format!("1/{} of each store's quota", s.replicas)
            } else {
                "each store's whole quota".to_owned()
            };
            let (ok, detail) = match &self.redis {
                Some(r) => match r.down() {
                    None => (true, format!("shared through Redis {}", r.location())),
                    Some(why) => (
                        false,
                        format!(
                            "Redis unreachable ({why}); falling back to the local share, {share}"
                        ),
                    ),
                },
                None => (true, format!("local: {share}")),
            };
            out.push(("quota".to_owned(), ok, detail));
        }
        let mut bad: Vec<(String, Instant)> = lock(&self.shared.unhealthy)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        bad.sort();
        for (store, since) in bad {
            out.push((
                format!("store {store} token health"),
                false,
                format!(
                    "the upstream refused the token with 401 {} s ago; unhealthy until a request succeeds",
                    since.elapsed().as_secs()
                ),
            ));
        }
        out
    }
}

/// One unit of budget held by a request; the answer (or its absence) must
/// be told with [`finish`](Self::finish), or it is on drop.
#[derive(Debug)]
struct Permit {
    gov: Governor,
    grant: Option<(Arc<StoreGov>, Grant)>,
}

impl Permit {
    fn finish(mut self, answer: Option<(StatusCode, &HeaderMap)>) {
        if let Some((sg, g)) = self.grant.take() {
            self.gov
                .observe(sg.budget, &sg.hash, Some((&sg, g)), answer);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some((sg, g)) = self.grant.take() {
            self.gov.observe(sg.budget, &sg.hash, Some((&sg, g)), None);
        }
    }
}

/// Serves a store's queue: the next request in fair order gets budget as
/// soon as there is some. Ends when the queue is empty.
async fn pump(gov: Governor, sg: Arc<StoreGov>) {
    loop {
        let pick = {
            let mut q = lock(&sg.queue);
            let now = Instant::now();
            q.capped.retain(|_, until| *until > now);
            let q = &mut *q;
            // Requests whose caller went away get no budget spent on them.
            while let Some((_, seq)) = q.fair.peek(|_| false)
                && q.fair.get(seq).is_some_and(|w| w.tx.is_closed())
            {
                q.fair.remove(seq);
            }
            let capped = &q.capped;
            match q.fair.peek(|c| capped.contains_key(c)) {
                Some((client, seq)) => Ok((
                    client.to_owned(),
                    seq,
                    q.fair.get(seq).and_then(|w| w.max_share),
                )),
                None if q.fair.is_empty() => {
                    q.pump = false;
                    return;
                }
                // Everyone waiting is capped: until the first cap ends.
                None => Err(q.capped.values().min().copied().unwrap_or(now)),
            }
        };
        let (client, seq, share) = match pick {
            Ok(p) => p,
            Err(until) => {
                tokio::select! {
                    () = tokio::time::sleep_until(until.into()) => {}
                    () = sg.wake.notified() => {}
                }
                continue;
            }
        };
        let (take, grant) = gov.take(&sg, &client, share).await;
        match take {
            Take::Granted => {
                let waiter = {
                    let mut q = lock(&sg.queue);
                    let w = q.fair.serve(seq);
                    crate::metrics::quota_queue_depth(&sg.label, q.fair.len());
                    w
                };
                let handed = match waiter {
                    Some((_, w)) => w.tx.send(Some(grant)).is_ok(),
                    None => false,
                };
                if !handed {
                    // The request gave up meanwhile: the unit goes back.
                    gov.observe(sg.budget, &sg.hash, Some((&sg, grant)), None);
                }
            }
            Take::Wait { ms } => {
                // Whoever cannot be served before its deadline hears so now,
                // rather than after a useless wait.
                let until = Instant::now() + Duration::from_millis(ms);
                {
                    let mut q = lock(&sg.queue);
                    for w in q.fair.remove_where(|w| w.deadline < until) {
                        let _ = w.tx.send(None);
                    }
                    crate::metrics::quota_queue_depth(&sg.label, q.fair.len());
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(ms)) => {}
                    () = sg.wake.notified() => {}
                }
            }
            Take::Capped { ms } => {
                lock(&sg.queue)
                    .capped
                    .insert(client, Instant::now() + Duration::from_millis(ms));
            }
        }
    }
}

/// How long to wait before sending again after an upstream 429: until the
/// budget's window resets, else `X-Retry-After`, else [`window::BACKPRESSURE_MS`].
fn retry_wait_ms(budget: Budget, h: &HeaderMap) -> u64 {
    budget
        .report(h)
        .map(|r| r.reset_ms)
        .or_else(|| window::retry_after_ms(h))
        .unwrap_or(window::BACKPRESSURE_MS)
}

/// The body as sent first, and a copy to send again: an empty body, or one
/// read into memory when `Content-Length` says it is small enough. Larger or
/// chunked bodies are streamed and not retried.
async fn replayable(
    parts: &http::request::Parts,
    body: ProxyBody,
    limit: u64,
    idle: Duration,
    watch: &BodyWatch,
) -> Result<(ProxyBody, Option<Bytes>), ProxyError> {
    if body.is_end_stream() {
        return Ok((body, Some(Bytes::new())));
    }
    let small = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n <= REPLAY_BODY_LIMIT);
    if !small {
        return Ok((body, None));
    }
    match body.collect().await {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            Ok((body::full(bytes.clone()), Some(bytes)))
        }
        Err(e) => Err(match watch.fault() {
            Some(BodyFault::TooLarge) => ProxyError::BodyTooLarge { limit },
            Some(BodyFault::Stalled) => ProxyError::BodyTimeout {
                after_ms: millis(idle),
            },
            None => ProxyError::BadRequest(format!(
                "the request body could not be read: {}",
                crate::forward::describe(e.as_ref())
            )),
        }),
    }
}
