//! The shared budget: each store's window ([`super::window`]'s rules) kept in
//! Redis and changed only by two Lua scripts (`EVALSHA`, atomic), so the
//! replicas together stay inside the store's quota. Redis's own clock
//! (`TIME`) times every window, so the replicas' clocks need not agree.
//!
//! Keys, per store (one hash tag, so a cluster keeps them on one node):
//! `bcgate:quota:{hash}:w` (hash: q, w, reset, used, seen, block),
//! `bcgate:quota:{hash}:p` (sorted set: grants in flight, by grant time) and
//! `bcgate:quota:{hash}:c` (hash: grants per client in this window); the
//! store's B2B Edition budget has its own three, `bcgate:quota:{hash}:b2b:w`,
//! `…:b2b:p` and `…:b2b:c` ([`key_prefix`]). All expire after [`KEY_TTL_MS`]
//! without use.
//!
//! When Redis does not answer within [`IO_TIMEOUT`], [`RedisBudget::take`]
//! says so and the caller uses its local share; Redis is tried again after a
//! backoff (doubling up to [`BACKOFF_MAX`]), and the state is logged once
//! per change and shown by the `bcgate_quota_shared` gauge and `/readyz`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

use super::window::{Report, Take};
use super::{Budget, lock};

/// Longest one Redis call may take on the request path.
pub const IO_TIMEOUT: Duration = Duration::from_millis(500);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest wait between two attempts to reach Redis again.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Idle keys vanish after this (milliseconds).
pub const KEY_TTL_MS: u64 = 600_000;

/// KEYS: window, in flight, clients. ARGV: client, max share (0: none),
/// grant id, stale ms, ttl ms. Returns {1, 0} granted, {0, ms} wait,
/// {2, ms} capped. Mirrors `Window::take` with a divisor of 1 (and
/// `window::allowance`, `window::paced_at`).
const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HMGET', KEYS[1], 'q', 'w', 'reset', 'used', 'seen', 'block')
local q = tonumber(s[1]) or 0
local w = tonumber(s[2]) or 0
local reset = tonumber(s[3]) or 0
local used = tonumber(s[4]) or 0
local seen = tonumber(s[5]) or 0
local block = tonumber(s[6]) or 0
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. string.format('%d', now - tonumber(ARGV[4])))
local pending = redis.call('ZCARD', KEYS[2])
if now < block then
  return {0, block - now}
end
if reset > 0 and w > 0 and now >= reset then
  local k = math.floor((now - reset) / w) + 1
  reset = reset + k * w
  used = pending
  seen = 0
  redis.call('DEL', KEYS[3])
  redis.call('HSET', KEYS[1], 'reset', string.format('%d', reset), 'used', used, 'seen', 0)
end
local wait = math.max(reset - now, 1)
if q == 0 then
  if pending > 0 then
    return {0, 50}
  end
else
  if used >= q or seen + pending >= q then
    return {0, wait}
  end
  local start = reset - w
  local elapsed = math.min(math.max(now - start, 0), w)
  if used >= math.min(1 + math.floor(q * elapsed / w), q) then
    return {0, math.max(start + math.ceil(used * w / q) - now, 1)}
  end
  local share = tonumber(ARGV[2])
  if share > 0 then
    local cap = math.max(math.ceil(q * share), 1)
    local mine = tonumber(redis.call('HGET', KEYS[3], ARGV[1])) or 0
    if mine >= cap then
      return {2, wait}
    end
  end
end
redis.call('HINCRBY', KEYS[1], 'used', 1)
redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
redis.call('ZADD', KEYS[2], string.format('%d', now), ARGV[3])
for i = 1, 3 do
  redis.call('PEXPIRE', KEYS[i], ARGV[5])
end
return {1, 0}
";

/// KEYS as for TAKE. ARGV: grant id, has report (0/1), left, quota, window
/// ms, reset ms (`window::WINDOW_GUARD_MS` added), throttled (0/1), block ms
/// (0: none), ttl ms. Mirrors `Window::observe` and `Window::block`.
const OBSERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ours = redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] == '1' then
  local left = tonumber(ARGV[3])
  local q = tonumber(ARGV[4])
  local w = tonumber(ARGV[5])
  local at = now + tonumber(ARGV[6])
  local half = math.floor(w / 2)
  local s = redis.call('HMGET', KEYS[1], 'reset', 'seen')
  local reset = tonumber(s[1]) or 0
  local seen = tonumber(s[2]) or 0
  local used_now = math.max(q - left, 0)
  redis.call('HSET', KEYS[1], 'q', q, 'w', w)
  if reset == 0 or at > reset + half then
    redis.call('DEL', KEYS[3])
    redis.call('HSET', KEYS[1], 'reset', string.format('%d', at), 'used', redis.call('ZCARD', KEYS[2]) + ours, 'seen', used_now)
  elseif at + half >= reset then
    redis.call('HSET', KEYS[1], 'reset', string.format('%d', math.min(reset, at)), 'seen', math.max(seen, used_now))
  end
  if ARGV[7] == '1' then
    redis.call('HSET', KEYS[1], 'seen', q)
  end
end
local block_ms = tonumber(ARGV[8])
if block_ms > 0 then
  local block = tonumber(redis.call('HGET', KEYS[1], 'block')) or 0
  redis.call('HSET', KEYS[1], 'block', string.format('%d', math.max(block, now + block_ms)))
end
for i = 1, 3 do
  redis.call('PEXPIRE', KEYS[i], ARGV[9])
end
return 1
";

/// See the module docs.
pub struct RedisBudget {
    client: redis::Client,
    url: String,
    location: String,
    conn: Mutex<Option<MultiplexedConnection>>,
    health: Mutex<Health>,
    take: redis::Script,
    observe: redis::Script,
}

#[derive(Debug)]
struct Health {
    /// Why Redis is not used now; `None` while it answers.
    down: Option<String>,
    /// No attempt before this.
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl std::fmt::Debug for RedisBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBudget")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// What the keys of `hash`'s `budget` start with: `bcgate:quota:{hash}`, or
/// `bcgate:quota:{hash}:b2b`.
pub fn key_prefix(hash: &str, budget: Budget) -> String {
    match budget {
        Budget::Api => format!("bcgate:quota:{{{hash}}}"),
        Budget::B2b => format!("bcgate:quota:{{{hash}}}:b2b"),
    }
}

fn keys(prefix: &str) -> [String; 3] {
    [
        format!("{prefix}:w"),
        format!("{prefix}:p"),
        format!("{prefix}:c"),
    ]
}

impl RedisBudget {
    /// No connection yet: the first request makes it.
    pub fn new(url: &str) -> Result<Self, String> {
        crate::token_store::check_redis_url(url).map_err(|e| format!("quota.redis_url: {e}"))?;
        let client =
            redis::Client::open(url).map_err(|e| format!("quota.redis_url: {:?}", e.kind()))?;
        Ok(Self {
            client,
            url: url.to_owned(),
            location: crate::token_store::redact_url(url),
            conn: Mutex::new(None),
            health: Mutex::new(Health {
                down: Some("not connected yet".into()),
                retry_at: None,
                backoff: BACKOFF_MIN,
            }),
            take: redis::Script::new(TAKE),
            observe: redis::Script::new(OBSERVE),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// `redis://host:port/db`, without credentials.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Why the local share is in use, or `None` while Redis answers (or was not tried yet).
    pub fn down(&self) -> Option<String> {
        let h = lock(&self.health);
        h.down.clone().filter(|_| h.retry_at.is_some())
    }

    /// Sets the `bcgate_quota_shared` gauge to what is known now.
    pub fn publish_state(&self) {
        crate::metrics::quota_shared(self.down().is_none());
    }

    async fn conn(&self) -> Option<MultiplexedConnection> {
        {
            let h = lock(&self.health);
            if h.retry_at.is_some_and(|at| Instant::now() < at) {
                return None;
            }
        }
        if let Some(c) = lock(&self.conn).clone() {
            return Some(c);
        }
        let made =
            tokio::time::timeout(IO_TIMEOUT, self.client.get_multiplexed_async_connection()).await;
        match made {
            Ok(Ok(c)) => {
                *lock(&self.conn) = Some(c.clone());
                Some(c)
            }
            Ok(Err(e)) => {
                self.failed(format!("redis {}: {e}", self.location));
                None
            }
            Err(_) => {
                self.failed(format!(
                    "redis {}: no connection within {IO_TIMEOUT:?}",
                    self.location
                ));
                None
            }
        }
    }

    fn failed(&self, why: String) {
        *lock(&self.conn) = None;
        let mut h = lock(&self.health);
        let first = h.retry_at.is_none() || h.down.is_none();
        if first {
            tracing::warn!(error = %why, "quota: Redis unreachable; each store falls back to this replica's local share");
            crate::metrics::quota_shared(false);
        }
        let backoff = if first { BACKOFF_MIN } else { h.backoff };
        h.retry_at = Some(Instant::now() + backoff);
        h.backoff = (backoff * 2).min(BACKOFF_MAX);
        h.down = Some(why);
    }

    fn succeeded(&self) {
        let mut h = lock(&self.health);
        if h.down.is_some() {
            if h.retry_at.is_some() {
                tracing::info!(location = %self.location, "quota: Redis answers again; budgets are shared");
            }
            crate::metrics::quota_shared(true);
            h.down = None;
            h.retry_at = None;
            h.backoff = BACKOFF_MIN;
        }
    }

    /// One unit of the shared budget whose keys start with `prefix`
    /// ([`key_prefix`]); `None` when Redis did not answer.
    pub async fn take(
        &self,
        prefix: &str,
        client: &str,
        max_share: Option<f64>,
        id: u64,
        stale_ms: u64,
    ) -> Option<Take> {
        let mut conn = self.conn().await?;
        let [w, p, c] = keys(prefix);
        let mut inv = self.take.key(w);
        inv.key(p)
            .key(c)
            .arg(client)
            .arg(max_share.unwrap_or(0.0))
            .arg(id)
            .arg(stale_ms)
            .arg(KEY_TTL_MS);
        let result =
            tokio::time::timeout(IO_TIMEOUT, inv.invoke_async::<(i64, i64)>(&mut conn)).await;
        let (code, ms) = match result {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                self.failed(format!("redis {}: {e}", self.location));
                return None;
            }
            Err(_) => {
                self.failed(format!(
                    "redis {}: no answer within {IO_TIMEOUT:?}",
                    self.location
                ));
                return None;
            }
        };
        self.succeeded();
        let ms = u64::try_from(ms).unwrap_or(1).max(1);
        Some(match code {
            1 => Take::Granted,
            2 => Take::Capped { ms },
            _ => Take::Wait { ms },
        })
    }

    /// Tells Redis what became of grant `id` of the budget at `prefix`, in
    /// the background (the answer is not held back for it).
    pub fn observe_later(
        self: &Arc<Self>,
        prefix: String,
        id: u64,
        report: Option<Report>,
        throttled: bool,
        block_ms: Option<u64>,
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            let Some(mut conn) = this.conn().await else {
                return;
            };
            let [w, p, c] = keys(&prefix);
            let r = report.unwrap_or(Report {
                left: 0,
                quota: 0,
                window_ms: 0,
                reset_ms: 0,
            });
            let mut inv = this.observe.key(w);
            inv.key(p)
                .key(c)
                .arg(id)
                .arg(u8::from(report.is_some()))
                .arg(r.left)
                .arg(r.quota)
                .arg(r.window_ms)
                .arg(r.reset_ms + super::window::WINDOW_GUARD_MS)
                .arg(u8::from(throttled))
                .arg(block_ms.unwrap_or(0))
                .arg(KEY_TTL_MS);
            match tokio::time::timeout(IO_TIMEOUT, inv.invoke_async::<i64>(&mut conn)).await {
                Ok(Ok(_)) => this.succeeded(),
                Ok(Err(e)) => this.failed(format!("redis {}: {e}", this.location)),
                Err(_) => this.failed(format!(
                    "redis {}: no answer within {IO_TIMEOUT:?}",
                    this.location
                )),
            }
        });
    }
}
