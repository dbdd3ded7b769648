//! The Redis token store, for several replicas behind one load balancer.
//!
//! Each installed store is one Redis string, `bcgate:store:{hash}`, whose
//! value is a sealed store file holding that one store (the file backend's
//! format and AES-256-GCM key, see [`super::file`]); the value also names
//! its store, so values moved between keys are refused. Every put and delete
//! is a `MULTI` of the `SET`/`DEL` and a `PUBLISH bcgate:stores {hash}`.
//!
//! Every replica serves from an in-memory map (requests never wait for
//! Redis), kept current by a background task: it subscribes to the channel,
//! then reads every key (`SCAN`), then applies each message by reading that
//! one key, and reads everything again every [`RESYNC_EVERY`] as a safety
//! net. When Redis cannot be reached the map stays as it was last seen, the
//! store reports itself down (for `/readyz`), and the task reconnects with
//! exponential backoff (capped at [`BACKOFF_MAX`]) and resyncs.
//!
//! Plain TCP only (`redis://`): the redis crate is built without TLS, which
//! would bring a second TLS stack beside rustls.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::Commands;
use zeroize::Zeroizing;

use super::file::{decode_one, encode_one};
use super::{Installed, TokenKey, is_store_hash};

/// The key of store `hash` is this prefix and the hash.
pub const KEY_PREFIX: &str = "bcgate:store:";
/// Where every put and delete is announced, with the store hash as payload.
pub const CHANNEL: &str = "bcgate:stores";
/// How often every replica rereads all keys, in case a message was lost.
pub const RESYNC_EVERY: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest wait between two reconnection attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Connect, read and write timeout of every Redis call.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

type Entries = BTreeMap<String, Arc<Installed>>;

/// The Redis-backed token store. Share it in an `Arc`; call
/// [`put`](Self::put) and [`delete`](Self::delete) from `spawn_blocking`.
/// Dropping it stops its background task.
pub struct RedisBackend {
    inner: Arc<Inner>,
    /// Dropped with the store, which ends the background task.
    _stop: Option<tokio::sync::oneshot::Sender<()>>,
}

struct Inner {
    client: redis::Client,
    key: TokenKey,
    /// The URL without its user and password, for messages.
    location: String,
    entries: Mutex<Arc<Entries>>,
    /// Stores that were in the map and left it through a change seen in
    /// Redis (another replica's uninstall, `bcgate tokens delete`).
    removed: Mutex<HashSet<String>>,
    /// Stores uninstalled through this replica: refused here even if the
    /// delete could not reach Redis (so a resync finds them still there),
    /// until an install of the store, here or announced by another replica.
    uninstalled_here: Mutex<HashSet<String>>,
    /// Bumped by every local put and delete, so a resync that read Redis
    /// before one of them does not undo it.
    mutations: AtomicU64,
    /// `None` while in sync with Redis; otherwise why not.
    down: Mutex<Option<String>>,
    /// Values that could not be read on the last resync (wrong key, damaged).
    unreadable: Mutex<usize>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("location", &self.inner.location)
            .field("stores", &lock(&self.inner.entries).len())
            .finish_non_exhaustive()
    }
}

pub use crate::config::check_redis_url as check_url;
pub use crate::secret::redact_url;

trait KindStr {
    fn kind_str(&self) -> String;
}

impl KindStr for redis::RedisError {
    /// The error without any detail that could quote the URL.
    fn kind_str(&self) -> String {
        format!("{:?}", self.kind())
    }
}

/// A Redis error as said in logs and on `/readyz` (it never holds a value).
fn why(location: &str, e: &redis::RedisError) -> String {
    format!("redis {location}: {e}")
}

impl RedisBackend {
    fn new(url: &str, key: TokenKey) -> Result<Self, String> {
        check_url(url)?;
        let client = redis::Client::open(url).map_err(|e| e.kind_str())?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                key,
                location: redact_url(url),
                entries: Mutex::new(Arc::new(Entries::new())),
                removed: Mutex::new(HashSet::new()),
                uninstalled_here: Mutex::new(HashSet::new()),
                mutations: AtomicU64::new(0),
                down: Mutex::new(Some("not synchronised with Redis yet".into())),
                unreadable: Mutex::new(0),
            }),
            _stop: None,
        })
    }

    /// Reads every store now, failing if Redis cannot be reached; no
    /// background task (for `bcgate tokens`).
    pub fn open_once(url: &str, key: TokenKey) -> Result<Self, String> {
        let store = Self::new(url, key)?;
        store.inner.resync()?;
        Ok(store)
    }

    /// For the server: reads every store now if Redis answers (starting
    /// empty and down if not), and keeps the map in sync from a background
    /// task on the current tokio runtime.
    pub fn start(url: &str, key: TokenKey) -> Result<Self, String> {
        let mut store = Self::new(url, key)?;
        if let Err(e) = store.inner.resync() {
            tracing::warn!(error = %e, "the token store cannot be read from Redis yet; retrying in the background");
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (tx, rx) = tokio::sync::oneshot::channel();
            rt.spawn(run(Arc::downgrade(&store.inner), rx));
            store._stop = Some(tx);
        }
        Ok(store)
    }

    /// `redis://host:port/db`, without credentials.
    pub fn location(&self) -> &str {
        &self.inner.location
    }

    /// Every installed store, ordered by hash.
    pub fn list(&self) -> Vec<Arc<Installed>> {
        let entries = lock(&self.inner.entries).clone();
        entries.values().cloned().collect()
    }

    pub fn get(&self, hash: &str) -> Option<Arc<Installed>> {
        lock(&self.inner.entries).get(hash).cloned()
    }

    /// Whether `hash` was served and then removed through Redis (an
    /// uninstall on another replica): its requests say `store_uninstalled`.
    pub fn removed(&self, hash: &str) -> bool {
        lock(&self.inner.uninstalled_here).contains(hash)
            || lock(&self.inner.removed).contains(hash)
    }

    /// Refuses `hash` from now on (an uninstall is about to be written);
    /// cleared when the store is installed again, here or elsewhere.
    pub fn mark_removed(&self, hash: &str) {
        lock(&self.inner.uninstalled_here).insert(hash.to_owned());
        self.inner.mutations.fetch_add(1, Ordering::SeqCst);
    }

    /// `Ok(detail)` while in sync with Redis, `Err(problem)` when not.
    pub fn health(&self) -> Result<String, String> {
        let n = lock(&self.inner.entries).len();
        if let Some(why) = lock(&self.inner.down).clone() {
            return Err(format!(
                "{why}; serving the {n} installed stores last seen, retrying"
            ));
        }
        let bad = *lock(&self.inner.unreadable);
        Ok(if bad == 0 {
            format!("{n} installed ({})", self.inner.location)
        } else {
            format!(
                "{n} installed ({}); {bad} value(s) could not be read, see the log",
                self.inner.location
            )
        })
    }

    /// Writes the store to Redis and announces it; then it is served here.
    /// Blocks (up to a few seconds when Redis is slow or down).
    pub fn put(&self, installed: Installed) -> Result<(), String> {
        let inner = &self.inner;
        if !is_store_hash(&installed.hash) {
            return Err(format!("{:?} is not a store hash", installed.hash));
        }
        let installed = Arc::new(installed);
        let value = encode_one(&inner.key, &installed)
            .map_err(|k| format!("cannot seal the record: {k:?}"))?;
        let mut conn = inner.conn()?;
        inner.mutations.fetch_add(1, Ordering::SeqCst);
        redis::pipe()
            .atomic()
            .set(format!("{KEY_PREFIX}{}", installed.hash), &value[..])
            .ignore()
            .publish(CHANNEL, &installed.hash)
            .ignore()
            .query::<()>(&mut conn)
            .map_err(|e| why(&inner.location, &e))?;
        inner.apply_one(&installed.hash, Some(installed.clone()));
        lock(&inner.uninstalled_here).remove(&installed.hash);
        Ok(())
    }

    /// Deletes the store from Redis and announces it; `false` if it was not
    /// there. Blocks like [`put`](Self::put).
    pub fn delete(&self, hash: &str) -> Result<bool, String> {
        let inner = &self.inner;
        let mut conn = inner.conn()?;
        inner.mutations.fetch_add(1, Ordering::SeqCst);
        let (n,): (u64,) = redis::pipe()
            .atomic()
            .del(format!("{KEY_PREFIX}{hash}"))
            .publish(CHANNEL, hash)
            .ignore()
            .query(&mut conn)
            .map_err(|e| why(&inner.location, &e))?;
        let existed = {
            let mut entries = lock(&inner.entries);
            let mut next = (**entries).clone();
            let existed = next.remove(hash).is_some();
            *entries = Arc::new(next);
            existed
        };
        Ok(n > 0 || existed)
    }
}

impl Inner {
    fn conn(&self) -> Result<redis::Connection, String> {
        let fail = |e: redis::RedisError| why(&self.location, &e);
        let conn = self
            .client
            .get_connection_with_timeout(IO_TIMEOUT)
            .map_err(fail)?;
        conn.set_read_timeout(Some(IO_TIMEOUT)).map_err(fail)?;
        conn.set_write_timeout(Some(IO_TIMEOUT)).map_err(fail)?;
        Ok(conn)
    }

    fn decode(&self, hash: &str, value: Vec<u8>) -> Option<Arc<Installed>> {
        match decode_one(&self.key, hash, Zeroizing::new(value)) {
            Ok(one) => Some(one),
            Err(kind) => {
                tracing::error!(
                    key = %format!("{KEY_PREFIX}{hash}"),
                    problem = ?kind,
                    "a token store value in Redis cannot be read (encrypted with another key, or damaged); skipped"
                );
                None
            }
        }
    }

    /// The current value of one store (`None`: not installed, or unreadable).
    fn fetch_one(&self, hash: &str) -> Result<Option<Arc<Installed>>, String> {
        let mut conn = self.conn()?;
        let value: Option<Vec<u8>> = conn
            .get(format!("{KEY_PREFIX}{hash}"))
            .map_err(|e| why(&self.location, &e))?;
        Ok(value.and_then(|v| self.decode(hash, v)))
    }

    /// Every store in Redis, and how many values could not be read.
    fn fetch_all(&self) -> Result<(Entries, usize), String> {
        let fail = |e: redis::RedisError| why(&self.location, &e);
        let mut conn = self.conn()?;
        let keys: Vec<String> = conn
            .scan_match::<_, String>(format!("{KEY_PREFIX}*"))
            .map_err(fail)?
            .collect::<Result<_, _>>()
            .map_err(fail)?;
        let mut entries = Entries::new();
        let mut bad = 0;
        for k in keys {
            let Some(hash) = k.strip_prefix(KEY_PREFIX).filter(|h| is_store_hash(h)) else {
                continue;
            };
            let value: Option<Vec<u8>> = conn.get(&k).map_err(fail)?;
            match value.map(|v| self.decode(hash, v)) {
                Some(Some(one)) => {
                    entries.insert(hash.to_owned(), one);
                }
                Some(None) => bad += 1,
                None => {} // deleted between the scan and the get
            }
        }
        Ok((entries, bad))
    }

    /// Replaces the map with what Redis holds (retried when a local write
    /// raced it), and marks the store up.
    fn resync(&self) -> Result<(), String> {
        for _ in 0..3 {
            let before = self.mutations.load(Ordering::SeqCst);
            let (fresh, bad) = self.fetch_all()?;
            let mut entries = lock(&self.entries);
            if self.mutations.load(Ordering::SeqCst) != before {
                continue;
            }
            let mut removed = lock(&self.removed);
            for gone in entries.keys().filter(|h| !fresh.contains_key(*h)) {
                removed.insert(gone.clone());
            }
            for present in fresh.keys() {
                removed.remove(present);
            }
            *entries = Arc::new(fresh);
            drop((removed, entries));
            *lock(&self.unreadable) = bad;
            *lock(&self.down) = None;
            return Ok(());
        }
        // Local writes keep coming; they are in the map, and the next
        // resync will try again.
        *lock(&self.down) = None;
        Ok(())
    }

    fn apply_one(&self, hash: &str, value: Option<Arc<Installed>>) {
        let mut entries = lock(&self.entries);
        let mut next = (**entries).clone();
        match value {
            Some(one) => {
                next.insert(hash.to_owned(), one);
                lock(&self.removed).remove(hash);
            }
            None => {
                if next.remove(hash).is_some() {
                    lock(&self.removed).insert(hash.to_owned());
                }
            }
        }
        *entries = Arc::new(next);
    }

    fn set_down(&self, why: String) {
        let mut down = lock(&self.down);
        if down.is_none() {
            tracing::warn!(error = %why, "lost the token store in Redis; serving the stores last seen");
        }
        *down = Some(why);
    }
}

/// Runs `f` on the inner store in a blocking thread; `None` when the store
/// was dropped.
async fn blocking<T: Send + 'static>(
    weak: &Weak<Inner>,
    f: impl FnOnce(&Inner) -> Result<T, String> + Send + 'static,
) -> Option<Result<T, String>> {
    let inner = weak.upgrade()?;
    Some(
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .unwrap_or_else(|e| Err(format!("interrupted: {e}"))),
    )
}

enum End {
    Stopped,
    Lost(String),
}

/// The background task: sessions, and backoff between them.
async fn run(weak: Weak<Inner>, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let Some(client) = weak.upgrade().map(|i| i.client.clone()) else {
        return;
    };
    let mut backoff = BACKOFF_MIN;
    loop {
        let mut was_up = false;
        match session(&weak, &client, &mut stop, &mut was_up).await {
            End::Stopped => return,
            End::Lost(why) => match weak.upgrade() {
                Some(inner) => inner.set_down(why),
                None => return,
            },
        }
        if was_up {
            backoff = BACKOFF_MIN;
        }
        tokio::select! {
            _ = &mut stop => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connection: subscribe, resync, then follow the channel.
async fn session(
    weak: &Weak<Inner>,
    client: &redis::Client,
    stop: &mut tokio::sync::oneshot::Receiver<()>,
    was_up: &mut bool,
) -> End {
    let location = weak
        .upgrade()
        .map(|i| i.location.clone())
        .unwrap_or_default();
    let lost = |e: redis::RedisError| End::Lost(why(&location, &e));
    let timed_out = || End::Lost(format!("redis {location}: no answer within {IO_TIMEOUT:?}"));
    let mut pubsub = match tokio::time::timeout(IO_TIMEOUT, client.get_async_pubsub()).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return lost(e),
        Err(_) => return timed_out(),
    };
    match tokio::time::timeout(IO_TIMEOUT, pubsub.subscribe(CHANNEL)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return lost(e),
        Err(_) => return timed_out(),
    }
    // Subscribed first, so no change made during the scan is missed.
    match blocking(weak, Inner::resync).await {
        None => return End::Stopped,
        Some(Err(e)) => return End::Lost(e),
        Some(Ok(())) => {}
    }
    *was_up = true;
    let mut messages = pubsub.on_message();
    let mut tick = tokio::time::interval(RESYNC_EVERY);
    tick.reset();
    loop {
        tokio::select! {
            _ = &mut *stop => return End::Stopped,
            msg = messages.next() => {
                let Some(msg) = msg else {
                    return End::Lost(format!("redis {location}: the connection was closed"));
                };
                let Ok(hash) = msg.get_payload::<String>() else { continue };
                if !is_store_hash(&hash) {
                    continue;
                }
                let h = hash.clone();
                match blocking(weak, move |i| i.fetch_one(&h)).await {
                    None => return End::Stopped,
                    Some(Err(e)) => return End::Lost(e),
                    Some(Ok(value)) => match weak.upgrade() {
                        Some(inner) => {
                            // Announced and present: installed (again) somewhere.
                            if value.is_some() {
                                lock(&inner.uninstalled_here).remove(&hash);
                            }
                            inner.apply_one(&hash, value);
                        }
                        None => return End::Stopped,
                    },
                }
            }
            _ = tick.tick() => match blocking(weak, Inner::resync).await {
                None => return End::Stopped,
                Some(Err(e)) => return End::Lost(e),
                Some(Ok(())) => {}
            },
        }
    }
}
