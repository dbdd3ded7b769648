//! The cache of storefront tokens bcgate minted: one slot per (store,
//! channel, kind and scope set), renewed before it expires by one caller
//! while the others wait for it (or keep using the old token while it is
//! still valid), and dropped when the storefront refuses it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::Transport;
use super::requests::{
    MintKind, StorefrontScopes, expires_at, impersonation_token_request, parse_answer, pat_request,
    private_token_request,
};
use crate::error::ProxyError;
use crate::secret::{Secret, StoreToken};

/// How many tokens the cache holds at most. A store has a few channels and
/// at most eight token kinds on each, so only a misuse reaches this.
pub const MAX_CACHED: usize = 1024;

/// Taken off the lifetime bcgate asked for: the clocks of bcgate and
/// BigCommerce differ a little, and a token must still be valid when the
/// storefront reads it. At most a tenth of the lifetime, so a short one
/// is not used up by the margin.
const SAFETY_MARGIN: Duration = Duration::from_secs(30);

/// After a renewal failed while the old token is still valid, the next
/// attempt waits this long: requests keep using the old token instead of
/// each asking BigCommerce again.
const RENEW_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Which storefront token: what a cache slot is keyed by within a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKey {
    /// A private token for `channel` with exactly `scopes`.
    Private {
        channel: u32,
        scopes: StorefrontScopes,
    },
    /// A customer impersonation token for `channel`.
    Impersonation { channel: u32 },
}

impl TokenKey {
    pub fn kind(self) -> MintKind {
        match self {
            Self::Private { .. } => MintKind::PrivateToken,
            Self::Impersonation { .. } => MintKind::ImpersonationToken,
        }
    }

    pub fn channel(self) -> u32 {
        match self {
            Self::Private { channel, .. } | Self::Impersonation { channel } => channel,
        }
    }
}

/// The tokens bcgate mints with the stores' API tokens. Cheap to clone (one
/// `Arc`); outlives config generations, so a reload keeps the tokens.
#[derive(Clone)]
pub struct Mint {
    inner: Arc<Inner>,
}

struct Inner {
    slots: Mutex<HashMap<String, HashMap<TokenKey, Arc<Slot>>>>,
    max: usize,
    /// The cache's time; tests move it by hand.
    now: Box<dyn Fn() -> Instant + Send + Sync>,
}

/// One key's token and its single flight.
#[derive(Default)]
struct Slot {
    /// Held by the caller that mints; waiters queue on it.
    flight: tokio::sync::Mutex<()>,
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    current: Option<Cached>,
    /// Mints finished on this slot, so a waiter knows whether one ended
    /// while it waited.
    finished: u64,
    /// The last mint's error, until one succeeds.
    last_error: Option<ProxyError>,
    /// No renewal before this (a failed one left a still valid token).
    retry_at: Option<Instant>,
}

struct Cached {
    token: Arc<Secret>,
    /// From here on a caller renews it.
    renew_at: Instant,
    /// From here on it is never handed out.
    expires: Instant,
}

impl Cached {
    fn usable(&self, now: Instant) -> Option<Arc<Secret>> {
        (now < self.expires).then(|| self.token.clone())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Default for Mint {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Mint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mint")
            .field("cached", &self.len())
            .field("max", &self.inner.max)
            .finish()
    }
}

impl Mint {
    pub fn new() -> Self {
        Self::with_clock(MAX_CACHED, Instant::now)
    }

    /// A cache of at most `max` tokens on the clock `now`.
    pub(crate) fn with_clock(
        max: usize,
        now: impl Fn() -> Instant + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                slots: Mutex::new(HashMap::new()),
                max: max.max(1),
                now: Box::new(now),
            }),
        }
    }

    fn now(&self) -> Instant {
        (self.inner.now)()
    }

    /// A payment access token for `order` of store `hash`, minted now with
    /// the store's token: each is for one order and one payment, so none is
    /// kept.
    pub async fn pat(
        &self,
        transport: &dyn Transport,
        hash: &str,
        token: &StoreToken,
        order: u64,
    ) -> Result<Secret, ProxyError> {
        let kind = MintKind::PaymentAccessToken;
        let (status, body) = transport
            .send(hash, pat_request(token, order))
            .await
            .map_err(|e| named(kind, e))?;
        counted(kind, parse_answer(kind, hash, status, &body))
    }

    /// The storefront token `key` of store `hash`: the cached one while it
    /// has more than `renew_before` left, else a new one asked to live
    /// `lifetime` (minted with the store's `token`). Concurrent callers for
    /// one key share one mint; while it runs, the others keep the old token
    /// if it is still valid, or wait and share its token or its error.
    pub async fn storefront(
        &self,
        transport: &dyn Transport,
        hash: &str,
        token: &StoreToken,
        key: TokenKey,
        lifetime: Duration,
        renew_before: Duration,
    ) -> Result<Arc<Secret>, ProxyError> {
        let slot = self.slot(hash, key);
        let now = self.now();
        let seen = {
            let st = lock(&slot.state);
            if let Some(c) = &st.current {
                if now < c.renew_at {
                    return Ok(c.token.clone());
                }
                if st.retry_at.is_some_and(|at| now < at)
                    && let Some(t) = c.usable(now)
                {
                    return Ok(t);
                }
            }
            st.finished
        };
        let _flight = match slot.flight.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                // Someone is minting: the old token serves meanwhile if it can.
                if let Some(t) = lock(&slot.state)
                    .current
                    .as_ref()
                    .and_then(|c| c.usable(now))
                {
                    return Ok(t);
                }
                slot.flight.lock().await
            }
        };
        {
            let st = lock(&slot.state);
            let now = self.now();
            if let Some(c) = st.current.as_ref().filter(|c| now < c.renew_at) {
                return Ok(c.token.clone());
            }
            // A mint ended while this caller waited and failed: share its
            // error rather than ask again at once (the next call does).
            if st.finished != seen
                && let Some(e) = &st.last_error
            {
                return match st.current.as_ref().and_then(|c| c.usable(now)) {
                    Some(t) => Ok(t),
                    None => Err(e.clone()),
                };
            }
        }
        let started = self.now();
        let result = mint_storefront(transport, hash, token, key, lifetime).await;
        let mut st = lock(&slot.state);
        st.finished += 1;
        match result {
            Ok(secret) => {
                let token = Arc::new(secret);
                let (renew_at, expires) = deadlines(started, lifetime, renew_before);
                tracing::debug!(
                    target: "bcgate::mint",
                    store = %hash,
                    channel = key.channel(),
                    kind = key.kind().what(),
                    lifetime_s = lifetime.as_secs(),
                    "minted"
                );
                st.current = Some(Cached {
                    token: token.clone(),
                    renew_at,
                    expires,
                });
                st.last_error = None;
                st.retry_at = None;
                Ok(token)
            }
            Err(e) => {
                st.last_error = Some(e.clone());
                let now = self.now();
                match st.current.as_ref().and_then(|c| c.usable(now)) {
                    Some(t) => {
                        st.retry_at = Some(now + RENEW_RETRY_AFTER);
                        Ok(t)
                    }
                    None => Err(e),
                }
            }
        }
    }

    /// The storefront answered 401 to `token` (store `hash`, `key`): drop it
    /// if it is still the cached one, so the next call mints a new one. A
    /// late report about an older token leaves a newer one alone.
    pub fn refused(&self, hash: &str, key: TokenKey, token: &Secret) {
        let slot = {
            let slots = lock(&self.inner.slots);
            match slots.get(hash).and_then(|m| m.get(&key)) {
                Some(s) => s.clone(),
                None => return,
            }
        };
        let mut st = lock(&slot.state);
        if st
            .current
            .as_ref()
            .is_some_and(|c| same_secret(&c.token, token))
        {
            st.current = None;
            st.retry_at = None;
        }
    }

    /// Forgets every token of store `hash` (uninstalled, or its API token
    /// changed). A mint under way for it finishes for its caller only.
    pub fn forget_store(&self, hash: &str) {
        lock(&self.inner.slots).remove(hash);
    }

    /// Tokens held that are still valid.
    pub fn len(&self) -> usize {
        let now = self.now();
        let slots = lock(&self.inner.slots);
        slots
            .values()
            .flat_map(HashMap::values)
            .filter(|s| {
                lock(&s.state)
                    .current
                    .as_ref()
                    .is_some_and(|c| now < c.expires)
            })
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The slot of (`hash`, `key`), made if new; making one in a full cache
    /// first drops slots without a valid token, then the soonest to expire.
    fn slot(&self, hash: &str, key: TokenKey) -> Arc<Slot> {
        let mut slots = lock(&self.inner.slots);
        if let Some(s) = slots.get(hash).and_then(|m| m.get(&key)) {
            return s.clone();
        }
        let count: usize = slots.values().map(HashMap::len).sum();
        if count >= self.inner.max {
            evict(&mut slots, self.inner.max - 1, self.now());
        }
        slots
            .entry(hash.to_owned())
            .or_default()
            .entry(key)
            .or_default()
            .clone()
    }
}

/// Shrinks `slots` to at most `keep`: slots nobody is using whose token is
/// gone or expired first, then those whose token expires soonest.
fn evict(slots: &mut HashMap<String, HashMap<TokenKey, Arc<Slot>>>, keep: usize, now: Instant) {
    let expiry = |s: &Arc<Slot>| lock(&s.state).current.as_ref().map(|c| c.expires);
    for m in slots.values_mut() {
        m.retain(|_, s| Arc::strong_count(s) > 1 || expiry(s).is_some_and(|e| now < e));
    }
    let mut count: usize = slots.values().map(HashMap::len).sum();
    while count > keep {
        let soonest = slots
            .iter()
            .flat_map(|(h, m)| m.iter().map(move |(k, s)| (h, *k, s)))
            .min_by_key(|(_, _, s)| expiry(s))
            .map(|(h, k, _)| (h.clone(), k));
        let Some((hash, key)) = soonest else { break };
        if let Some(m) = slots.get_mut(&hash) {
            m.remove(&key);
        }
        count -= 1;
    }
    slots.retain(|_, m| !m.is_empty());
}

/// When a token minted at `started` to live `lifetime` is renewed, and when
/// it is no longer handed out.
fn deadlines(started: Instant, lifetime: Duration, renew_before: Duration) -> (Instant, Instant) {
    let margin = SAFETY_MARGIN.min(lifetime / 10);
    let expires = started + lifetime.saturating_sub(margin);
    let renew_at = (started + lifetime.saturating_sub(renew_before)).min(expires);
    (renew_at, expires)
}

async fn mint_storefront(
    transport: &dyn Transport,
    hash: &str,
    token: &StoreToken,
    key: TokenKey,
    lifetime: Duration,
) -> Result<Secret, ProxyError> {
    let until = expires_at(lifetime);
    let req = match key {
        TokenKey::Private { channel, scopes } => {
            private_token_request(token, channel, scopes, until)
        }
        TokenKey::Impersonation { channel } => impersonation_token_request(token, channel, until),
    };
    let kind = key.kind();
    let (status, body) = transport
        .send(hash, req)
        .await
        .map_err(|e| named(kind, e))?;
    counted(kind, parse_answer(kind, hash, status, &body))
}

/// Counts a minted token (`bcgate_tokens_minted_total`).
fn counted(kind: MintKind, minted: Result<Secret, ProxyError>) -> Result<Secret, ProxyError> {
    if minted.is_ok() {
        crate::metrics::token_minted(match kind {
            MintKind::PaymentAccessToken => "payment",
            MintKind::PrivateToken => "private",
            MintKind::ImpersonationToken => "impersonation",
        });
    }
    minted
}

/// A failure to reach BigCommerce while minting, said as the mint that failed.
fn named(kind: MintKind, e: ProxyError) -> ProxyError {
    match e {
        ProxyError::UpstreamUnavailable(why) => {
            ProxyError::MintFailed(format!("{}: {why}", kind.what()))
        }
        other => other,
    }
}

/// Equal secrets, compared in time independent of where they differ.
fn same_secret(a: &Secret, b: &Secret) -> bool {
    let (a, b) = (a.expose_bytes(), b.expose_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
