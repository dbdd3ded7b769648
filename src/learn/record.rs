//! The observations of learn-mode clients: counted in memory on the request
//! path, written every `flush_interval_ms` and on shutdown — to `[learn]
//! path` (the whole state, read back at start) or to the token store's
//! Redis (what was counted since the last write, see [`super::redis`]).
//!
//! Recording is a lock-free map lookup and two atomic adds: the map is an
//! immutable snapshot behind an [`ArcSwap`], replaced (copy on write) only
//! when a new (client, family, method, route, level, storefront grants)
//! entry appears, which happens a
//! bounded number of times (`max_entries`). Timestamps come from the flush,
//! not from each request: `last_seen` is exact to one flush interval.
//!
//! What is kept is client names, route templates, scope names and counts —
//! never a key, token, raw path or query. The file is JSON, replaced
//! atomically (write a sibling, fsync, rename, fsync the directory).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::hash::BuildHasher;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use http::Method;
use serde::{Deserialize, Serialize};

use super::Seen;
use super::redis::{Delta, RedisLearn};
use crate::config::{LearnBackend, LearnConfig};
use crate::error::ScopeDenial;
use crate::family::Family;
use crate::policy::{Need, Policy};

/// The file's format version.
const VERSION: u32 = 1;

/// The observations file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observations {
    pub version: u32,
    pub entries: Vec<Observation>,
}

/// One (client, family, method, route template, level) and what was seen of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    pub client: String,
    /// The API family (`api`, `payments`, `storefront`, `b2b`, `account`);
    /// `api` in a file written before bcgate served the others.
    #[serde(default = "api_family")]
    pub family: String,
    pub method: String,
    /// The template in the family's route table (B2B Edition's without
    /// `/b2b/v3/io`, an account's without `/accounts/{uuid}`).
    pub route: String,
    /// Whether the operation needed a modify-level scope.
    pub write: bool,
    /// Whether a script's visibility also needed Checkout Content.
    #[serde(default)]
    pub checkout_content: bool,
    /// The scopes that would grant it: every clause met by any one of its scopes.
    pub needs: Vec<Vec<String>>,
    pub count: u64,
    /// How many of them enforce mode would have refused (client scopes as configured then).
    pub would_deny: u64,
    /// Unix seconds.
    pub first_seen: u64,
    pub last_seen: u64,
}

fn api_family() -> String {
    Family::Api.as_str().to_owned()
}

impl Observation {
    /// `METHOD /route` as a client sends it (see [`super::shown_route`]).
    pub fn shown(&self) -> String {
        let route = match super::family_named(&self.family) {
            Some(f) => super::shown_route(f, &self.route),
            None => self.route.clone(),
        };
        format!("{} {route}", self.method)
    }
}

/// Everything kept: the file, or every replica's writes in Redis.
pub fn load(backend: &LearnBackend) -> Result<Vec<Observation>, String> {
    match backend {
        LearnBackend::File(path) => load_file(path),
        LearnBackend::Redis(url) => RedisLearn::new(url.expose())?.load(),
    }
}

/// Reads an observations file; a missing file is no observations.
fn load_file(path: &Path) -> Result<Vec<Observation>, String> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(format!(
                "learn.path {}: cannot read it: {e}",
                path.display()
            ));
        }
    };
    let obs: Observations = serde_json::from_slice(&data).map_err(|e| {
        format!(
            "learn.path {}: not a bcgate observations file: {e}",
            path.display()
        )
    })?;
    if obs.version != VERSION {
        return Err(format!(
            "learn.path {}: format version {} is not one this bcgate reads ({VERSION})",
            path.display(),
            obs.version
        ));
    }
    Ok(obs.entries)
}

#[derive(Debug)]
struct Entry {
    client: Box<str>,
    family: Family,
    /// [`Seen::storefront`].
    storefront: u8,
    method: Method,
    route: Arc<str>,
    write: bool,
    checkout_content: bool,
    needs: Vec<Vec<String>>,
    count: AtomicU64,
    would_deny: AtomicU64,
    first_seen: u64,
    last_seen: AtomicU64,
    /// `count` and `would_deny` as of the last successful write.
    written: AtomicU64,
    deny_written: AtomicU64,
    /// Redis holds the entry (an earlier write of this process added it).
    in_store: AtomicBool,
    /// The would-deny counter for a failure of `needs[0]` and of `needs[1]`.
    deny_metric: [OnceLock<metrics::Counter>; 2],
}

/// What tells entries apart, borrowed from the request.
struct Key<'a> {
    client: &'a str,
    family: Family,
    storefront: u8,
    method: &'a Method,
    route: &'a str,
    write: bool,
    checkout: bool,
}

impl Key<'_> {
    fn find<'m>(&self, map: &'m Map, hash: u64) -> Option<&'m Arc<Entry>> {
        map.get(&hash)?.iter().find(|e| {
            e.write == self.write
                && e.checkout_content == self.checkout
                && e.family == self.family
                && e.storefront == self.storefront
                && e.method == *self.method
                && *e.route == *self.route
                && *e.client == *self.client
        })
    }
}

/// Entries by a hash of their key; a bucket holds the (rare) collisions.
type Map = HashMap<u64, Vec<Arc<Entry>>>;

/// The recorder. One per process, kept across config reloads.
#[derive(Debug)]
pub struct Learner {
    config: Option<LearnConfig>,
    redis: Option<RedisLearn>,
    hasher: std::collections::hash_map::RandomState,
    map: ArcSwap<Map>,
    /// Held to add an entry; how many there are.
    insert: Mutex<usize>,
    /// Held for a whole write, so two writes never interleave.
    write: Mutex<()>,
    dropped: AtomicU64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Learner {
    /// A recorder that keeps nothing (no `[learn]`; no client can be in learn mode).
    pub fn disabled() -> Self {
        Self::with(None)
    }

    fn with(config: Option<LearnConfig>) -> Self {
        Self {
            config,
            redis: None,
            hasher: Default::default(),
            map: ArcSwap::from_pointee(Map::new()),
            insert: Mutex::new(0),
            write: Mutex::new(()),
            dropped: AtomicU64::new(0),
        }
    }

    /// Opens the recorder of `[learn]`: with what its file holds, or empty
    /// in front of Redis (which keeps the totals).
    pub fn open(config: &LearnConfig) -> Result<Self, String> {
        let path = match &config.backend {
            LearnBackend::Redis(url) => {
                let mut learner = Self::with(Some(config.clone()));
                learner.redis = Some(RedisLearn::new(url.expose())?);
                return Ok(learner);
            }
            LearnBackend::File(path) => path,
        };
        let dir = dir_of(path);
        if !dir.is_dir() {
            return Err(format!(
                "learn.path {}: the directory {} does not exist",
                path.display(),
                dir.display()
            ));
        }
        let learner = Self::with(Some(config.clone()));
        let mut map = Map::new();
        for o in load_file(path)? {
            let (Ok(method), Some(family)) = (
                Method::from_bytes(o.method.as_bytes()),
                super::family_named(&o.family),
            ) else {
                continue;
            };
            let storefront = match family {
                Family::Storefront => super::storefront_bits(&o.needs),
                _ => 0,
            };
            let key = Key {
                client: &o.client,
                family,
                storefront,
                method: &method,
                route: &o.route,
                write: o.write,
                checkout: o.checkout_content,
            };
            let hash = learner.hash(&key);
            map.entry(hash).or_default().push(Arc::new(Entry {
                client: o.client.into(),
                family,
                storefront,
                method,
                route: o.route.into(),
                write: o.write,
                checkout_content: o.checkout_content,
                needs: o.needs,
                count: AtomicU64::new(o.count),
                would_deny: AtomicU64::new(o.would_deny),
                first_seen: o.first_seen,
                last_seen: AtomicU64::new(o.last_seen),
                written: AtomicU64::new(o.count),
                deny_written: AtomicU64::new(o.would_deny),
                in_store: AtomicBool::new(true),
                deny_metric: Default::default(),
            }));
        }
        let n = map.values().map(Vec::len).sum();
        learner.map.store(Arc::new(map));
        *learner
            .insert
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = n;
        Ok(learner)
    }

    pub fn config(&self) -> Option<&LearnConfig> {
        self.config.as_ref()
    }

    fn hash(&self, k: &Key<'_>) -> u64 {
        self.hasher.hash_one((
            k.client,
            k.family,
            k.storefront,
            k.method.as_str(),
            k.route,
            k.write,
            k.checkout,
        ))
    }

    /// Counts one request of a learn-mode client; `denied` is what enforce
    /// mode would have refused it with, which is also counted in
    /// `bcgate_learn_would_deny_total` (through a handle the entry keeps).
    pub fn record(
        &self,
        policy: &Policy,
        client: &str,
        seen: &Seen<'_>,
        denied: Option<&ScopeDenial>,
    ) {
        let req = &seen.req;
        let metric = || {
            denied.map(|d| {
                crate::metrics::would_deny(
                    client,
                    req.method,
                    &seen.shown_route(),
                    d.required.join("|"),
                )
            })
        };
        if self.config.is_none() {
            if let Some(c) = metric() {
                c.increment(1);
            }
            return;
        }
        let need = policy.need(req);
        let key = Key {
            client,
            family: seen.family,
            storefront: seen.storefront,
            method: req.method,
            route: &req.route.template,
            write: need.write,
            checkout: need.checkout_content,
        };
        let hash = self.hash(&key);
        let count = |e: &Entry| {
            e.count.fetch_add(1, Ordering::Relaxed);
            if let Some(d) = denied {
                e.would_deny.fetch_add(1, Ordering::Relaxed);
                // Which clause failed decides the `required` label.
                let slot = usize::from(e.needs.get(1).is_some_and(|c| *c == d.required));
                e.deny_metric[slot]
                    .get_or_init(|| metric().unwrap_or_else(metrics::Counter::noop))
                    .increment(1);
            }
        };
        // The common case: the entry exists; no lock, no allocation.
        if let Some(e) = key.find(&self.map.load(), hash) {
            count(e);
            return;
        }
        match self.add(policy, &key, hash, &need, &req.route.template) {
            Some(e) => count(&e),
            None => {
                if let Some(c) = metric() {
                    c.increment(1);
                }
            }
        }
    }

    /// Adds an entry (copy on write of the map), unless `max_entries` is reached.
    fn add(
        &self,
        policy: &Policy,
        key: &Key<'_>,
        hash: u64,
        need: &Need,
        route: &Arc<str>,
    ) -> Option<Arc<Entry>> {
        let mut len = self.insert.lock().unwrap_or_else(PoisonError::into_inner);
        // Another request may have added it meanwhile.
        let current = self.map.load_full();
        if let Some(e) = key.find(&current, hash) {
            return Some(e.clone());
        }
        let max = self.config.as_ref().map_or(0, |c| c.max_entries);
        if *len >= max {
            if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    target: "bcgate::learn",
                    max_entries = max,
                    "learn.max_entries reached: new routes are not recorded"
                );
            }
            crate::metrics::learn_dropped();
            return None;
        }
        let needs = match key.storefront {
            0 => policy.need_scopes(need),
            bits => super::storefront_needs(bits),
        };
        let entry = Arc::new(Entry {
            client: key.client.into(),
            family: key.family,
            storefront: key.storefront,
            method: key.method.clone(),
            route: route.clone(),
            write: key.write,
            checkout_content: key.checkout,
            needs,
            count: AtomicU64::new(0),
            would_deny: AtomicU64::new(0),
            first_seen: now_secs(),
            last_seen: AtomicU64::new(0),
            written: AtomicU64::new(0),
            deny_written: AtomicU64::new(0),
            in_store: AtomicBool::new(false),
            deny_metric: Default::default(),
        });
        let mut next = (*current).clone();
        next.entry(hash).or_default().push(entry.clone());
        self.map.store(Arc::new(next));
        *len += 1;
        crate::metrics::learn_entries(*len);
        Some(entry)
    }

    /// Everything recorded, sorted by client, family, route, method.
    pub fn snapshot(&self) -> Vec<Observation> {
        let map = self.map.load();
        let mut out: Vec<Observation> = map
            .values()
            .flatten()
            .map(|e| Observation {
                client: e.client.to_string(),
                family: e.family.as_str().to_owned(),
                method: e.method.to_string(),
                route: e.route.to_string(),
                write: e.write,
                checkout_content: e.checkout_content,
                needs: e.needs.clone(),
                count: e.count.load(Ordering::Relaxed),
                would_deny: e.would_deny.load(Ordering::Relaxed),
                first_seen: e.first_seen,
                last_seen: e.last_seen.load(Ordering::Relaxed).max(e.first_seen),
            })
            .collect();
        out.sort_by(|a, b| {
            (
                &a.client,
                &a.family,
                &a.route,
                &a.method,
                a.write,
                a.checkout_content,
                &a.needs,
            )
                .cmp(&(
                    &b.client,
                    &b.family,
                    &b.route,
                    &b.method,
                    b.write,
                    b.checkout_content,
                    &b.needs,
                ))
        });
        out
    }

    /// Writes what changed since the last write, if anything. Blocks (fsync,
    /// or a Redis round trip): call it from `spawn_blocking` or at shutdown.
    pub fn flush(&self) -> Result<(), String> {
        let Some(config) = &self.config else {
            return Ok(());
        };
        let _writing = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        let map = self.map.load_full();
        let now = now_secs();
        let changed: Vec<(Arc<Entry>, u64, u64)> = map
            .values()
            .flatten()
            .filter_map(|e| {
                let count = e.count.load(Ordering::Relaxed);
                (count != e.written.load(Ordering::Relaxed))
                    .then(|| (e.clone(), count, e.would_deny.load(Ordering::Relaxed)))
            })
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        let written = match (&config.backend, &self.redis) {
            (LearnBackend::Redis(_), Some(redis)) => {
                let deltas: Vec<Delta<'_>> = changed
                    .iter()
                    .map(|(e, count, deny)| Delta {
                        client: &e.client,
                        family: e.family,
                        storefront: e.storefront,
                        method: e.method.as_str(),
                        route: &e.route,
                        write: e.write,
                        checkout_content: e.checkout_content,
                        needs: &e.needs,
                        first_seen: e.first_seen,
                        count: count - e.written.load(Ordering::Relaxed),
                        would_deny: deny - e.deny_written.load(Ordering::Relaxed),
                        known: e.in_store.load(Ordering::Relaxed),
                    })
                    .collect();
                redis.write(&deltas, config.max_entries, now)?
            }
            (LearnBackend::File(path), _) => {
                for (e, _, _) in &changed {
                    e.last_seen.store(now, Ordering::Relaxed);
                }
                let file = Observations {
                    version: VERSION,
                    entries: self.snapshot(),
                };
                let data = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
                write_atomic(path.as_path(), &data)
                    .map_err(|e| format!("learn.path {}: {e}", path.display()))?;
                vec![true; changed.len()]
            }
            (LearnBackend::Redis(_), None) => return Err("learn: Redis is not open".into()),
        };
        for ((e, count, deny), ok) in changed.into_iter().zip(written) {
            e.written.store(count, Ordering::Relaxed);
            e.deny_written.store(deny, Ordering::Relaxed);
            if ok {
                e.in_store.store(true, Ordering::Relaxed);
                e.last_seen.store(now, Ordering::Relaxed);
            } else {
                crate::metrics::learn_dropped();
            }
        }
        Ok(())
    }

    /// Writes every `flush_interval` until the process ends (the shutdown
    /// path calls [`flush`](Self::flush) once more after draining).
    pub fn spawn_flusher(self: &Arc<Self>) {
        let Some(interval) = self.config.as_ref().map(|c| c.flush_interval) else {
            return;
        };
        let learner = self.clone();
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                learner.flush_in_background().await;
            }
        });
    }

    /// [`flush`](Self::flush) on the blocking pool; failures are logged and
    /// retried on the next tick (the counts stay in memory).
    pub async fn flush_in_background(self: &Arc<Self>) {
        let learner = self.clone();
        let result = tokio::task::spawn_blocking(move || learner.flush())
            .await
            .unwrap_or_else(|e| Err(format!("the flush task failed: {e}")));
        crate::metrics::learn_flush(result.is_ok());
        if let Err(e) = result {
            tracing::error!(target: "bcgate::learn", error = %e, "cannot write the observations");
        }
    }
}

/// How long a write may take before the shutdown path gives up on it.
pub const SHUTDOWN_FLUSH_LIMIT: Duration = Duration::from_secs(5);

fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `data` in a sibling file (0600, fsynced), renamed over `path`, then the
/// directory fsynced: a crash leaves the old file or the new one.
fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    let tmp: PathBuf = path.with_file_name(name);
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        File::open(dir_of(path))?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
