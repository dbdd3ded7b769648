//! One rate-limit window as bcgate accounts for it (a store's api budget,
//! or its B2B Edition budget): what the upstream last reported, what bcgate
//! granted in the window, what is in flight.
//! Plain data and pure functions over a millisecond clock; the Redis budget
//! ([`super::redis`]) runs the same rules as Lua scripts, so keep the two in step.
//!
//! The rules, in short:
//! - A grant is allowed while `used < quota / divisor` and `seen + in flight < quota`,
//!   where `used` counts this budget's grants in the window and `seen` is
//!   what the upstream says was used (`quota − left`, other API clients included).
//! - Grants are paced over the window ([`allowance`]): one at its start, the
//!   rest evenly, so that under contention every grant is one the fair queue
//!   decides, not a first-come share of a full window.
//! - The window ends at `reset_at`, learnt from `X-Rate-Limit-Time-Reset-Ms`
//!   (B2B Edition: `X-Request-Window-Resets-After`, seconds rounded up to
//!   the millisecond) plus [`WINDOW_GUARD_MS`]. The api header is whole
//!   milliseconds rounded down and bcgate's clock counts whole milliseconds
//!   too, so a report may say up to 2 ms less than is left; with the guard, every report is at or
//!   after the upstream's real boundary (it is read after the upstream wrote
//!   it), so the earliest report of a window is kept: bcgate never opens a
//!   window before the upstream does.
//! - A new window starts with the requests still in flight counted as used:
//!   sent late in the old window, they may reach the upstream in the new one.
//! - Until a store has answered once (quota unknown), one request at a time.
//! - A 429 without rate-limit headers (platform back-pressure) blocks the
//!   store for its `X-Retry-After`, or [`BACKPRESSURE_MS`].

use std::collections::HashMap;

use http::{HeaderMap, HeaderName};

use crate::headers::{
    X_RATE_LIMIT_REQUESTS_LEFT, X_RATE_LIMIT_REQUESTS_QUOTA, X_RATE_LIMIT_TIME_RESET_MS,
    X_RATE_LIMIT_TIME_WINDOW_MS, X_REQUEST_WINDOW_RESETS_AFTER, X_REQUESTS_ALLOCATED,
    X_REQUESTS_REMAINING,
};

/// How long a store is held after a 429 without rate-limit headers and without `X-Retry-After`.
pub const BACKPRESSURE_MS: u64 = 1_000;
/// How soon to try again while the one probe of a store with an unknown quota is in flight.
pub const PROBE_WAIT_MS: u64 = 50;
/// Added to every reported reset: a window opens this long after the
/// upstream says, which covers the header's and the clocks' rounding down
/// (2 ms at most) with room to spare, and costs nothing while grants are paced.
pub const WINDOW_GUARD_MS: u64 = 5;
/// How many grants of a window of `limit` per `window_ms` are allowed
/// `elapsed` ms after it started: one at once, then one more every
/// `window_ms / limit`, the whole limit one step before the window ends.
/// What is not used early stays allowed later in the same window, so a store
/// idle for a while still serves a burst at once; under contention grants
/// come one by one and the fair queue decides every one of them. A larger
/// start burst would go to whoever has the most requests waiting at that
/// instant, whatever the weights.
pub fn allowance(limit: u64, window_ms: u64, elapsed: u64) -> u64 {
    let paced = limit * elapsed.min(window_ms) / window_ms.max(1);
    (1 + paced).min(limit)
}

/// How long after the window's start [`allowance`] first exceeds `used`.
pub fn paced_at(limit: u64, window_ms: u64, used: u64) -> u64 {
    (used * window_ms).div_ceil(limit.max(1))
}

/// Longest window or reset a report may state (a day); larger values are
/// taken as this, so no sum of times can overflow.
pub const MAX_REPORTED_MS: u64 = 86_400_000;

/// What one response says of its budget's window: BigCommerce's four
/// `X-Rate-Limit-*` headers, or B2B Edition's three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub left: u64,
    pub quota: u64,
    pub window_ms: u64,
    pub reset_ms: u64,
}

impl Report {
    /// The api host's four headers, or `None` (a missing or unreadable one, a zero quota or window).
    pub fn from_headers(h: &HeaderMap) -> Option<Report> {
        let num = |name: &HeaderName| number(h.get(name)?.to_str().ok()?);
        Report {
            left: num(&X_RATE_LIMIT_REQUESTS_LEFT)?,
            quota: num(&X_RATE_LIMIT_REQUESTS_QUOTA)?,
            window_ms: num(&X_RATE_LIMIT_TIME_WINDOW_MS)?.min(MAX_REPORTED_MS),
            reset_ms: num(&X_RATE_LIMIT_TIME_RESET_MS)?.min(MAX_REPORTED_MS),
        }
        .usable()
    }

    /// B2B Edition's headers: `X-Requests-Allocated: 150 times/60 s` (quota
    /// and window), `X-Requests-Remaining: 12 times` and
    /// `X-Request-Window-Resets-After: 0.397 s`; `None` as for
    /// [`from_headers`](Self::from_headers). Seconds become milliseconds
    /// rounded up, so a window read from them never opens before the
    /// upstream's does.
    pub fn from_b2b_headers(h: &HeaderMap) -> Option<Report> {
        let text = |name: &HeaderName| h.get(name)?.to_str().ok();
        let (quota, window) = text(&X_REQUESTS_ALLOCATED)?.split_once('/')?;
        Report {
            left: times(text(&X_REQUESTS_REMAINING)?)?,
            quota: times(quota)?,
            window_ms: seconds_ms(window)?,
            reset_ms: seconds_ms(text(&X_REQUEST_WINDOW_RESETS_AFTER)?)?,
        }
        .usable()
    }

    fn usable(self) -> Option<Report> {
        (self.quota > 0 && self.window_ms > 0).then_some(self)
    }
}

/// A count as BigCommerce sends it: an integer; a fraction is tolerated
/// (rounded down), a negative number is not.
fn number(text: &str) -> Option<u64> {
    let text = text.trim();
    text.parse::<u64>().ok().or_else(|| {
        text.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f as u64)
    })
}

/// B2B Edition's `12 times` (the unit may be left out).
fn times(text: &str) -> Option<u64> {
    let text = text.trim();
    number(text.strip_suffix("times").unwrap_or(text))
}

/// B2B Edition's `0.3973509933774834 s` in milliseconds, rounded up (the
/// unit may be left out).
fn seconds_ms(text: &str) -> Option<u64> {
    let text = text.trim();
    let secs: f64 = text.strip_suffix('s').unwrap_or(text).trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| ((secs * 1000.0).ceil() as u64).min(MAX_REPORTED_MS))
}

/// `X-Retry-After` in milliseconds (BigCommerce sends seconds).
pub fn retry_after_ms(h: &HeaderMap) -> Option<u64> {
    let secs: f64 = h.get("x-retry-after")?.to_str().ok()?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| (secs * 1000.0).min(600_000.0) as u64)
}

/// The answer to a request for one unit of a store's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    Granted,
    /// The store has no budget now; ask again in `ms`.
    Wait {
        ms: u64,
    },
    /// This client used its `quota_max_share` of the window; ask again in `ms`.
    Capped {
        ms: u64,
    },
}

/// Who asks for budget, and under which limits.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub client: &'a str,
    pub max_share: Option<f64>,
    /// Grant id, for the in-flight set.
    pub id: u64,
    /// 1 when the budget is the whole store's (Redis); the replica count for a local share.
    pub divisor: u64,
    /// In-flight grants older than this are forgotten (their answer was lost).
    pub stale_ms: u64,
}

/// What bcgate tells a caller it refuses, besides `left` (0): the store's
/// quota and window, and the time until it has budget again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub quota: u64,
    pub window_ms: u64,
    pub reset_ms: u64,
}

/// See the module docs. Times are milliseconds on one clock.
#[derive(Debug, Default, Clone)]
pub struct Window {
    /// 0 while unknown (no report yet).
    pub quota: u64,
    pub window_ms: u64,
    /// End of the current window; 0 while unknown.
    pub reset_at: u64,
    pub used: u64,
    pub seen: u64,
    pub blocked_until: u64,
    /// Grant id → when it was granted.
    pending: HashMap<u64, u64>,
    /// Grants per client in this window.
    clients: HashMap<String, u64>,
}

impl Window {
    pub fn in_flight(&self) -> u64 {
        self.pending.len() as u64
    }

    fn roll_to(&mut self, reset_at: u64) {
        self.reset_at = reset_at;
        self.used = self.in_flight();
        self.seen = 0;
        self.clients.clear();
    }

    fn prune(&mut self, now: u64, stale_ms: u64) {
        let oldest = now.saturating_sub(stale_ms);
        self.pending.retain(|_, at| *at >= oldest);
    }

    /// Starts the next window if the current one ended.
    fn advance(&mut self, now: u64) {
        if self.reset_at > 0 && self.window_ms > 0 && now >= self.reset_at {
            let k = (now - self.reset_at) / self.window_ms + 1;
            self.roll_to(self.reset_at + k * self.window_ms);
        }
    }

    fn wait_ms(&self, now: u64) -> u64 {
        self.reset_at.saturating_sub(now).max(1)
    }

    /// One unit of budget for `ask`, or how long to wait for it.
    pub fn take(&mut self, now: u64, ask: &Ask<'_>) -> Take {
        self.prune(now, ask.stale_ms);
        if now < self.blocked_until {
            return Take::Wait {
                ms: self.blocked_until - now,
            };
        }
        self.advance(now);
        if self.quota == 0 {
            if self.in_flight() > 0 {
                return Take::Wait { ms: PROBE_WAIT_MS };
            }
        } else {
            let limit = (self.quota / ask.divisor.max(1)).max(1);
            if self.used >= limit || self.seen + self.in_flight() >= self.quota {
                return Take::Wait {
                    ms: self.wait_ms(now),
                };
            }
            let start = self.reset_at.saturating_sub(self.window_ms);
            let elapsed = now.saturating_sub(start);
            if self.used >= allowance(limit, self.window_ms, elapsed) {
                let at = start + paced_at(limit, self.window_ms, self.used);
                return Take::Wait {
                    ms: at.saturating_sub(now).max(1),
                };
            }
            if let Some(share) = ask.max_share {
                let cap = ((limit as f64 * share).ceil() as u64).max(1);
                if self.clients.get(ask.client).copied().unwrap_or(0) >= cap {
                    return Take::Capped {
                        ms: self.wait_ms(now),
                    };
                }
            }
        }
        self.grant(now, ask.client, ask.id);
        Take::Granted
    }

    /// Counts a grant made elsewhere (by the shared budget), so this local
    /// window knows what this replica used if it must fall back to it.
    pub fn grant(&mut self, now: u64, client: &str, id: u64) {
        self.advance(now);
        self.used += 1;
        *self.clients.entry(client.to_owned()).or_default() += 1;
        self.pending.insert(id, now);
    }

    /// The answer to grant `id` arrived (`report`, if it had the headers;
    /// `throttled` for a 429), or the request ended without one (`None, false`).
    pub fn observe(&mut self, now: u64, id: u64, report: Option<&Report>, throttled: bool) {
        let ours = self.pending.remove(&id).is_some();
        if let Some(r) = report {
            self.quota = r.quota;
            self.window_ms = r.window_ms;
            let at = now + r.reset_ms + WINDOW_GUARD_MS;
            let half = r.window_ms / 2;
            let seen = r.quota.saturating_sub(r.left);
            if self.reset_at == 0 || at > self.reset_at + half {
                // The upstream is in a window this budget has not started yet,
                // and counted this answer's request in it.
                self.roll_to(at);
                self.used += u64::from(ours);
                self.seen = seen;
            } else if at + half >= self.reset_at {
                self.reset_at = self.reset_at.min(at);
                self.seen = self.seen.max(seen);
            }
            if throttled {
                self.seen = self.quota;
            }
        }
    }

    /// Holds every grant for `ms` (a 429 without rate-limit headers).
    pub fn block(&mut self, now: u64, ms: u64) {
        self.blocked_until = self.blocked_until.max(now + ms);
    }

    /// The `X-Rate-Limit-*` values for a 429 bcgate sends itself.
    pub fn snapshot(&self, now: u64) -> Snapshot {
        let until = self.reset_at.max(self.blocked_until);
        Snapshot {
            quota: self.quota,
            window_ms: self.window_ms,
            reset_ms: until.saturating_sub(now),
        }
    }
}
