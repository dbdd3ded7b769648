//! When to reload: on SIGHUP, and when the config file or a token file
//! changes on disk. The directories holding them are watched (editors and
//! Kubernetes replace files by rename, which a watch on the file itself
//! would miss); events are debounced, and a watched change that leaves every
//! file's bytes as they were is not a reload. A config built in memory
//! (`bcgate dev`) has no file: nothing is watched and SIGHUP keeps its
//! default action.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::gateway::Gateway;

/// Quiet time after the last file event before reloading.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// Starts watching now (so a change made right after bcgate says it is
/// listening is not missed) and reloads `gateway` from its config file on
/// SIGHUP or a file change, forever. Does nothing if the config has no file.
pub fn spawn(gateway: Arc<Gateway>) {
    let config = gateway.state().config.clone();
    let Some(path) = config.path.clone() else {
        tracing::debug!("config built in memory: nothing to reload");
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut watched = Watched::new(tx);
    watched.update(&config);
    let mut seen = fingerprint(&config);
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "no SIGHUP handler; reload on file change only");
            None
        }
    };
    tokio::spawn(async move {
        loop {
            let forced = tokio::select! {
                Some(()) = async { match &mut hup { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
                Some(()) = rx.recv() => {
                    // Let a burst of events (write, rename, chmod) settle.
                    while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
                    false
                }
            };
            // Taken before loading, so a write that lands while the reload
            // reads the files changes the bytes again and is not missed. A
            // refused reload moves it too: the same bad bytes are not retried
            // on every event, and fixing them is a change.
            let now = fingerprint(&gateway.state().config);
            if !forced && now == seen {
                continue;
            }
            seen = now;
            let _ = gateway.reload(&path);
            watched.update(&gateway.state().config);
        }
    });
}

/// The files whose contents make up a config: the file itself and every token file.
fn files(config: &Config) -> BTreeSet<PathBuf> {
    let mut set: BTreeSet<PathBuf> = config.path.iter().cloned().collect();
    set.extend(config.stores.iter().filter_map(|s| s.token_file.clone()));
    set
}

/// SHA-256 over every file's path and bytes (a missing file counts as empty).
fn fingerprint(config: &Config) -> [u8; 32] {
    let mut h = Sha256::new();
    for f in files(config) {
        h.update(f.as_os_str().as_encoded_bytes());
        h.update([0]);
        h.update(std::fs::read(&f).unwrap_or_default());
        h.update([0]);
    }
    h.finalize().into()
}

/// The directory watches, kept in step with the config's files.
struct Watched {
    watcher: Option<RecommendedWatcher>,
    dirs: BTreeSet<PathBuf>,
}

impl Watched {
    fn new(tx: mpsc::UnboundedSender<()>) -> Self {
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| !e.kind.is_access()) {
                let _ = tx.send(());
            }
        });
        let watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch files; reload on SIGHUP only");
                None
            }
        };
        Self {
            watcher,
            dirs: BTreeSet::new(),
        }
    }

    fn update(&mut self, config: &Config) {
        let Some(watcher) = &mut self.watcher else {
            return;
        };
        let wanted: BTreeSet<PathBuf> = files(config)
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .map(|d| {
                if d.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    d
                }
            })
            .collect();
        for gone in self.dirs.difference(&wanted) {
            let _ = watcher.unwatch(gone);
        }
        for dir in wanted.difference(&self.dirs) {
            if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory");
            }
        }
        self.dirs = wanted;
    }
}
