//! Crash safety of the file token store: a child process (this test binary,
//! re-run as `crash_child`) changes the store in a tight loop and is
//! SIGKILLed at random moments. After every kill the store must open and hold
//! exactly one of the states the child wrote, never a damaged one, never an
//! older one than after the previous kill, never empty once written.
//!
//! `BCGATE_CRASH_SEED` replays a run (the seed is printed).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bcgate::secret::StoreToken;
use bcgate::token_store::{FileBackend, Installed, TokenKey, User};

const CHILD_ENV: &str = "BCGATE_TOKEN_STORE_CRASH_CHILD";
const KILLS: usize = 30;

fn key() -> TokenKey {
    let bytes: Vec<u8> = (0..32).collect();
    TokenKey::from_base64(&base64::engine::general_purpose::STANDARD.encode(bytes)).expect("key")
}

// ---------------------------------------------------------------- the states
//
// Step j (from 1) is one mutation, cycling through put, add, replace, delete:
//   j % 4 == 1: put s1@j        → {s1@j}
//   j % 4 == 2: put s2@j        → {s1@j-1, s2@j}
//   j % 4 == 3: put s1@j        → {s1@j, s2@j-1}
//   j % 4 == 0: delete s2       → {s1@j-1}
// so every state names the step that made it, and the child can resume.

/// A record that differs in every field from step to step, with enough
/// scopes (about 4 KiB a record) that a write takes more than one syscall's
/// worth of page cache.
fn record(hash: &str, at: u64) -> Installed {
    Installed {
        hash: hash.into(),
        token: StoreToken::new(&format!("tok{hash}x{at}")).expect("token"),
        scopes: (0..150)
            .map(|n| format!("store_v2_scope_{n}_{at}"))
            .collect(),
        user: User {
            id: at,
            email: format!("user{at}@example.com"),
        },
        owner: User {
            id: 1,
            email: "owner@example.com".into(),
        },
        account_uuid: (!at.is_multiple_of(3)).then(|| format!("uuid-{at}")),
        installed_at: at,
    }
}

fn expected(j: u64) -> Vec<Installed> {
    if j == 0 {
        return Vec::new();
    }
    let mut state = vec![record("s1", if j % 2 == 1 { j } else { j - 1 })];
    if matches!(j % 4, 2 | 3) {
        state.push(record("s2", j - j % 4 + 2));
    }
    state
}

fn apply(store: &FileBackend, j: u64) {
    match j % 4 {
        1 | 3 => store.put(record("s1", j)).expect("put s1"),
        2 => store.put(record("s2", j)).expect("put s2"),
        _ => assert!(store.delete("s2").expect("delete s2"), "s2 was there"),
    }
}

/// Which step left this state; an error if no step did.
fn identify(store: &FileBackend) -> Result<u64, String> {
    let list = store.list();
    let at = |hash: &str| list.iter().find(|r| r.hash == hash).map(|r| r.installed_at);
    let j = match (at("s1"), at("s2")) {
        (None, None) if list.is_empty() => 0,
        (Some(k), None) if k % 4 == 1 => k,
        (Some(k), None) if k % 4 == 3 => k + 1,
        (Some(k), Some(m)) => k.max(m),
        _ => return Err(format!("no step leaves {} stores like these", list.len())),
    };
    let found: Vec<Installed> = list.iter().map(|r| (**r).clone()).collect();
    if found == expected(j) {
        Ok(j)
    } else {
        Err(format!("looks like step {j} but differs from it"))
    }
}

// ---------------------------------------------------------------- the child

#[test]
#[ignore = "a helper: crash_at_any_point_leaves_a_whole_state runs it in a child process"]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = FileBackend::open(Path::new(&dir).join("tokens.enc"), key()).expect("child: open");
    let mut j = identify(&store).expect("child: a known state");
    loop {
        j += 1;
        apply(&store, j);
    }
}

// ---------------------------------------------------------------- the parent

/// xorshift64: enough to scatter the kills, and replayable from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x % n
    }
}

#[test]
fn crash_at_any_point_leaves_a_whole_state() {
    let seed = std::env::var("BCGATE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("BCGATE_CRASH_SEED={seed}");
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tokens.enc");
    let tmp = dir.path().join("tokens.enc.tmp");
    let exe = std::env::current_exe().expect("test binary");
    let started = Instant::now();

    let mut last = 0u64;
    let mut phases = [0usize; 4];
    let mut left_tmp = 0;
    let mut stalled = 0;
    for kill in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([
                "token_store_crash::crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .args(["--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the child");
        // The child needs a few milliseconds to start; after that the kill
        // lands anywhere in its loop, most likely inside a write.
        std::thread::sleep(Duration::from_millis(10 + rng.below(90)));
        if let Ok(Some(status)) = child.try_wait() {
            let out = child.wait_with_output().expect("child output");
            panic!(
                "kill {kill}: the child stopped by itself ({status}):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        child.kill().expect("SIGKILL");
        let _ = child.wait();

        if tmp.exists() {
            left_tmp += 1;
        }
        let store = FileBackend::open(&path, key())
            .unwrap_or_else(|e| panic!("kill {kill} (seed {seed}): the store does not open: {e}"));
        let j = identify(&store)
            .unwrap_or_else(|e| panic!("kill {kill} (seed {seed}): not a state written: {e}"));
        assert!(
            j >= last,
            "kill {kill} (seed {seed}): back from step {last} to {j}"
        );
        if j == last {
            stalled += 1;
        }
        last = j;
        phases[(j % 4) as usize] += 1;
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{KILLS} kills in {elapsed:.1?}: {last} steps written; after the kills the store \
         was at step%4 = 1/2/3/0: {}/{}/{}/{}; {left_tmp} kills left a temporary file; \
         {stalled} kills found no new step",
        phases[1], phases[2], phases[3], phases[0]
    );
    assert!(last > 0, "the child never completed a write");
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    // Nothing but the store and at most the last write's temporary file.
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names == ["tokens.enc"] || names == ["tokens.enc", "tokens.enc.tmp"],
        "{names:?}"
    );
}
