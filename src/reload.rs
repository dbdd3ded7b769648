//! When to reload: on SIGHUP, and when the config file or a token file
//! changes on disk. The directories holding them are watched (editors and
//! Kubernetes replace files by rename, which a watch on the file itself
//! would miss), but only events naming one of those files, or a symlink on
//! the way to one (a Kubernetes volume swaps its `..data` link), count: a log
//! or a data file beside the config may change all the time. File events are
//! debounced, for a bounded time; SIGHUP is never held back by the debounce
//! and absorbs the file changes it is waiting for, so an edit followed by a
//! signal reloads once. A watched change that leaves every file's bytes as
//! they were is not a reload. A config built in memory (`bcgate dev`) has no
//! file: nothing is watched and SIGHUP keeps its default action.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use tokio::signal::unix::Signal;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::Config;
use crate::live::Live;

/// Quiet time after the last file event before reloading.
const DEBOUNCE: Duration = Duration::from_millis(250);
/// The longest a file change waits for quiet: a file rewritten more often
/// than `DEBOUNCE` for ever is still reloaded this long after it first changed.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// Symlinks followed when resolving a file, as the kernel's ELOOP limit.
const MAX_LINKS: usize = 40;

/// What started a reload (logged).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    Signal,
    /// A SIGHUP that arrived while file changes were settling: one reload for both.
    SignalAndFiles,
    Files,
    /// File changes that kept coming until `MAX_WAIT`.
    FilesUnsettled,
}

impl Trigger {
    fn name(self) -> &'static str {
        match self {
            Trigger::Signal => "SIGHUP",
            Trigger::SignalAndFiles => "SIGHUP, with file changes pending",
            Trigger::Files => "file change",
            Trigger::FilesUnsettled => "file change, still changing after the maximum wait",
        }
    }

    fn forced(self) -> bool {
        matches!(self, Trigger::Signal | Trigger::SignalAndFiles)
    }
}

/// Starts watching now (so a change made right after bcgate says it is
/// listening is not missed) and reloads `live` from its config file on
/// SIGHUP or a file change, forever. Does nothing if the config has no file.
pub fn spawn(live: Arc<Live>) {
    let config = live.state().config.clone();
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
            let trigger = tokio::select! {
                biased;
                () = hangup(&mut hup) => Trigger::Signal,
                Some(()) = rx.recv() => settle(&mut rx, &mut hup).await,
            };
            // Events already queued name changes made before the files are
            // read below, so this reload covers them.
            while rx.try_recv().is_ok() {}
            // Taken before loading, so a write that lands while the reload
            // reads the files changes the bytes again and is not missed. A
            // refused reload moves it too: the same bad bytes are not retried
            // on every event, and fixing them is a change.
            let now = fingerprint(&live.state().config);
            if trigger.forced() || now != seen {
                tracing::debug!(trigger = trigger.name(), "reloading config");
                seen = now;
                let _ = live.reload(&path);
            } else {
                tracing::debug!(
                    trigger = trigger.name(),
                    "config files unchanged; not reloading"
                );
            }
            // Also without a reload: a swapped symlink may point elsewhere now.
            watched.update(&live.state().config);
        }
    });
}

/// Resolves on the next SIGHUP; never, without a handler.
async fn hangup(hup: &mut Option<Signal>) {
    match hup {
        Some(h) => {
            if h.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// Waits, after a first file event, until no event has come for `DEBOUNCE`
/// or `MAX_WAIT` has passed, whichever is sooner; a SIGHUP ends the wait at once.
async fn settle(rx: &mut mpsc::UnboundedReceiver<()>, hup: &mut Option<Signal>) -> Trigger {
    let cap = Instant::now() + MAX_WAIT;
    loop {
        // Checked first: with events queued, a timeout that has already
        // expired would still hand them out one by one.
        let now = Instant::now();
        if now >= cap {
            return Trigger::FilesUnsettled;
        }
        let quiet = (now + DEBOUNCE).min(cap);
        tokio::select! {
            biased;
            () = hangup(hup) => return Trigger::SignalAndFiles,
            next = tokio::time::timeout_at(quiet, rx.recv()) => match next {
                Ok(Some(())) => {}
                // The watcher is gone: nothing more will come.
                Ok(None) => return Trigger::Files,
                Err(_) if quiet >= cap => return Trigger::FilesUnsettled,
                Err(_) => return Trigger::Files,
            },
        }
    }
}

/// The files whose contents make up a config: the file itself and every
/// file a secret is read from.
fn files(config: &Config) -> BTreeSet<PathBuf> {
    let mut set: BTreeSet<PathBuf> = config.path.iter().cloned().collect();
    set.extend(config.secret_files().map(PathBuf::from));
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

/// The directory watches and the entries in them that count, kept in step
/// with the config's files.
struct Watched {
    watcher: Option<RecommendedWatcher>,
    dirs: BTreeSet<PathBuf>,
    /// Shared with the watcher's callback, which drops events naming nothing in it.
    entries: Arc<Mutex<BTreeSet<PathBuf>>>,
}

impl Watched {
    fn new(tx: mpsc::UnboundedSender<()>) -> Self {
        let entries = Arc::new(Mutex::new(BTreeSet::new()));
        let wanted = entries.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            let relevant = match wanted.lock() {
                Ok(set) => counts(&event, &set),
                // Better a needless look at the files than a missed change.
                Err(_) => true,
            };
            if relevant {
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
            entries,
        }
    }

    fn update(&mut self, config: &Config) {
        let Some(watcher) = &mut self.watcher else {
            return;
        };
        let entries: BTreeSet<PathBuf> = files(config).iter().flat_map(|f| entries(f)).collect();
        let wanted: BTreeSet<PathBuf> = entries
            .iter()
            .filter_map(|e| e.parent().map(Path::to_path_buf))
            .collect();
        for gone in self.dirs.difference(&wanted) {
            // A directory removed from disk (an old Kubernetes data
            // directory) has lost its watch already.
            let _ = watcher.unwatch(gone);
        }
        for dir in wanted.difference(&self.dirs) {
            if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory");
            }
        }
        self.dirs = wanted;
        if let Ok(mut set) = self.entries.lock() {
            *set = entries;
        }
    }
}

/// Whether `event` may have changed what one of the `wanted` entries reads
/// as. Opens and reads do not; a close after writing ends a write. An
/// overflowed event queue may have lost an event that counted.
fn counts(event: &notify::Event, wanted: &BTreeSet<PathBuf>) -> bool {
    if event.need_rescan() {
        return true;
    }
    let kind_counts = match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    };
    kind_counts && event.paths.iter().any(|p| wanted.contains(p))
}

/// The directory entries whose change can change what reading `file` gives:
/// `file` itself, every symlink met while resolving it (a link in a directory
/// part too, such as Kubernetes' `..data`), and the file it resolves to. Each
/// is named as the watcher names it: the canonical directory joined with the
/// entry's name.
fn entries(file: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    out.extend(entry(file));
    let mut current = file.to_path_buf();
    for _ in 0..MAX_LINKS {
        let Some((link, next)) = first_link(&current) else {
            break;
        };
        out.extend(entry(&link));
        out.extend(entry(&next));
        current = next;
    }
    out
}

/// The first symlink on `path` (the shortest prefix that is one) and the path
/// with that prefix replaced by the link's target.
fn first_link(path: &Path) -> Option<(PathBuf, PathBuf)> {
    let mut prefix = PathBuf::new();
    let mut components = path.components();
    while let Some(c) = components.next() {
        prefix.push(c);
        if !matches!(c, Component::Normal(_)) {
            continue;
        }
        let is_link = std::fs::symlink_metadata(&prefix).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            continue;
        }
        let target = std::fs::read_link(&prefix).ok()?;
        // An absolute target replaces the base.
        let mut next = prefix.parent().unwrap_or(Path::new("")).join(target);
        let rest = components.as_path();
        if !rest.as_os_str().is_empty() {
            next.push(rest);
        }
        return Some((prefix, next));
    }
    None
}

/// `path` as the watcher reports it: its directory made absolute and
/// canonical (the watch is placed on that), joined with its name.
fn entry(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir = dir
        .canonicalize()
        .or_else(|_| std::path::absolute(dir))
        .ok()?;
    Some(dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn canonical_dir() -> tempfile::TempDir {
        tempfile::tempdir().expect("temp dir")
    }

    #[test]
    fn a_relative_path_is_named_from_the_working_directory() {
        let cwd = std::env::current_dir()
            .expect("cwd")
            .canonicalize()
            .expect("canonical");
        let got = entries(Path::new("Cargo.toml"));
        assert_eq!(got, BTreeSet::from([cwd.join("Cargo.toml")]));
    }

    #[test]
    fn a_plain_file_is_its_own_only_entry() {
        let tmp = canonical_dir();
        let dir = tmp.path().canonicalize().expect("canonical");
        std::fs::write(dir.join("bcgate.toml"), "").expect("write");
        let got = entries(&dir.join("bcgate.toml"));
        assert_eq!(got, BTreeSet::from([dir.join("bcgate.toml")]));
    }

    #[test]
    fn a_kubernetes_volume_names_the_link_the_data_link_and_the_real_file() {
        let tmp = canonical_dir();
        let dir = tmp.path().canonicalize().expect("canonical");
        std::fs::create_dir(dir.join("..2026_01")).expect("mkdir");
        std::fs::write(dir.join("..2026_01/bcgate.toml"), "").expect("write");
        symlink("..2026_01", dir.join("..data")).expect("symlink");
        symlink("..data/bcgate.toml", dir.join("bcgate.toml")).expect("symlink");
        let got = entries(&dir.join("bcgate.toml"));
        let want = BTreeSet::from([
            dir.join("bcgate.toml"),
            dir.join("..data"),
            dir.join("..2026_01/bcgate.toml"),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn an_absolute_link_into_another_directory_and_a_dot_dot_resolve() {
        let tmp = canonical_dir();
        let dir = tmp.path().canonicalize().expect("canonical");
        std::fs::create_dir(dir.join("conf")).expect("mkdir");
        std::fs::create_dir(dir.join("real")).expect("mkdir");
        std::fs::write(dir.join("real/t.token"), "").expect("write");
        symlink(dir.join("real/t.token"), dir.join("conf/t.token")).expect("symlink");
        // A `..` in the path, as `token_file = "../conf/t.token"` gives.
        let via = dir.join("real/../conf/t.token");
        let got = entries(&via);
        let want = BTreeSet::from([dir.join("conf/t.token"), dir.join("real/t.token")]);
        assert_eq!(got, want);
    }

    #[test]
    fn a_symlink_loop_ends() {
        let tmp = canonical_dir();
        let dir = tmp.path().canonicalize().expect("canonical");
        symlink("b", dir.join("a")).expect("symlink");
        symlink("a", dir.join("b")).expect("symlink");
        let got = entries(&dir.join("a"));
        assert_eq!(got, BTreeSet::from([dir.join("a"), dir.join("b")]));
    }

    #[test]
    fn only_writes_and_renames_of_wanted_entries_count() {
        use notify::event::{CreateKind, DataChange, ModifyKind, RenameMode};
        let wanted = BTreeSet::from([PathBuf::from("/etc/bcgate/bcgate.toml")]);
        let event = |kind, path: &str| notify::Event::new(kind).add_path(PathBuf::from(path));
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        assert!(counts(&event(write, "/etc/bcgate/bcgate.toml"), &wanted));
        assert!(!counts(&event(write, "/etc/bcgate/bcgate.log"), &wanted));
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        assert!(counts(&event(renamed, "/etc/bcgate/bcgate.toml"), &wanted));
        let created = EventKind::Create(CreateKind::File);
        assert!(!counts(
            &event(created, "/etc/bcgate/.bcgate.toml.swp"),
            &wanted
        ));
        let opened = EventKind::Access(AccessKind::Open(AccessMode::Any));
        assert!(!counts(&event(opened, "/etc/bcgate/bcgate.toml"), &wanted));
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert!(counts(&event(closed, "/etc/bcgate/bcgate.toml"), &wanted));
        let overflow = notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert!(counts(&overflow, &wanted));
    }
}
