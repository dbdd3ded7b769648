//! When bcgate reloads: an edit, a rename onto the config or a token file, a
//! Kubernetes-style `..data` symlink swap and SIGHUP each reload promptly even
//! while another file beside the config changes every 50 ms; a config file
//! that never stops changing still reloads (the debounce is bounded); an
//! edit and a SIGHUP arriving together reload once. Real binary, real files,
//! real signals, the mock BigCommerce over TLS.

use crate::support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::{Bcgate, MockBigCommerce, TestCa, key_sha256, metric, raw_request};

const STORE: &str = "abc123";
const TOKEN: &str = "bc-store-token-reload-abc123-Jk3Pq8Wd";
const TOKEN_ROTATED: &str = "bc-store-token-reload-abc123-ROTATED-Zr5Tm1";
const KEY_A: &str = "bcg-key-reload-alpha-9Gd2Lx7Qw4";
const KEY_B: &str = "bcg-key-reload-bravo-3Fh6Np1Vs8";

/// How soon a change must have been applied (the figure).
const PROMPT: Duration = Duration::from_secs(2);
const RELOADS: &str = "bcgate_config_reloads_total";
const PATH: &str = "/v3/catalog/products";

fn client(name: &str, key: &str) -> String {
    format!(
        "\n[[clients]]\nname = \"{name}\"\nkey_sha256 = \"{}\"\nstores = [\"{STORE}\"]\n\
         default_store = \"{STORE}\"\nscopes = [\"store_v2_products_read_only\"]\n",
        key_sha256(key)
    )
}

/// A config in front of `mock_url` with store abc123 (token from
/// `abc123.token` beside the config) and `clients`.
fn config(mock_url: &str, clients: &str) -> String {
    format!(
        "{}\n[[stores]]\nhash = \"{STORE}\"\ntoken_file = \"abc123.token\"\n{clients}",
        support::base_config(mock_url, 5000)
    )
}

struct Fx {
    _ca: TestCa,
    mock: MockBigCommerce,
    gate: Bcgate,
    /// Stopped before the gate (fields drop in order).
    noise: Option<Noise>,
}

impl Fx {
    /// Start bcgate with client alpha; `prepare` may lay out the directory
    /// first (the config is then written through whatever `bcgate.toml` is).
    fn start(noisy: bool, prepare: impl FnOnce(&Path)) -> Fx {
        let ca = TestCa::new();
        let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
        let dir = support::process::temp_dir();
        ca.write_to(dir.path());
        prepare(dir.path());
        std::fs::write(dir.path().join("abc123.token"), TOKEN).expect("write token file");
        let noise = noisy.then(|| Noise::start(&dir.path().join("bcgate.log")));
        let text = config(&mock.base_url(), &client("alpha", KEY_A));
        let gate = Bcgate::start_in(dir, &text, &[("BCGATE_LOG", "info,bcgate=debug")]);
        Fx {
            _ca: ca,
            mock,
            gate,
            noise,
        }
    }

    /// The config with both alpha and bravo.
    fn with_bravo(&self) -> String {
        config(
            &self.mock.base_url(),
            &format!("{}{}", client("alpha", KEY_A), client("bravo", KEY_B)),
        )
    }

    fn reloads(&self, result: &str) -> f64 {
        metric(&self.metrics(), RELOADS, &[("result", result)])
    }

    fn metrics(&self) -> String {
        let addr = self.gate.admin_addr().expect("admin address printed");
        let resp = raw_request(
            addr,
            b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(resp.status, 200, "/metrics: {}", resp.body_text());
        resp.body_text()
    }

    /// Poll until `reloads_total{result="ok"}` reaches `want`; panics (with
    /// the logs) if it has not within `within` of `since`.
    fn expect_reloads(&self, want: f64, since: Instant, within: Duration, what: &str) {
        loop {
            let have = self.reloads("ok");
            if have >= want {
                assert_eq!(have, want, "{what}: too many reloads\n{}", self.gate.logs());
                return;
            }
            assert!(
                since.elapsed() < within,
                "{what}: {have} reloads after {:?}, want {want} within {within:?}\n--- logs ---\n{}",
                since.elapsed(),
                self.gate.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn status_for(&self, key: &str) -> u16 {
        let req = format!("GET {PATH} HTTP/1.1\r\nHost: bcgate\r\nX-Auth-Token: {key}\r\n\r\n");
        raw_request(self.gate.addr, req.as_bytes()).status
    }
}

impl Drop for Fx {
    fn drop(&mut self) {
        if let Some(noise) = self.noise.take() {
            noise.stop();
        }
        if !std::thread::panicking() {
            self.gate
                .assert_logs_free_of(&[TOKEN, TOKEN_ROTATED, KEY_A, KEY_B]);
        }
    }
}

/// A file beside the config appended to every 50 ms, as bcgate's own log,
/// learn observations or a sidecar's log would be.
struct Noise {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl Noise {
    fn start(path: &Path) -> Noise {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let path = path.to_path_buf();
        let thread = std::thread::spawn(move || {
            let mut writes = 0u64;
            while !flag.load(Ordering::Relaxed) {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .expect("open noise file");
                writeln!(f, "line {writes}").expect("write noise file");
                writes += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            writes
        });
        Noise { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let writes = self.thread.join().expect("noise thread");
        assert!(writes > 10, "the noise file was written {writes} times");
    }
}

/// Write `contents` to `path` by a sibling and a rename, as editors do.
fn rename_onto(path: &Path, contents: &str) {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    std::fs::write(&tmp, contents).expect("write sibling");
    std::fs::rename(&tmp, path).expect("rename onto the file");
}

// ---------------------------------------------------------------- noisy directory

#[test]
fn an_edit_in_place_reloads_within_two_seconds_while_a_sibling_changes_every_50ms() {
    let fx = Fx::start(true, |_| {});
    // The noise alone is no reason to reload.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(fx.reloads("ok") + fx.reloads("error"), 0.0);
    assert_eq!(fx.status_for(KEY_B), 401, "bravo is not configured yet");

    let edited = Instant::now();
    std::fs::write(fx.gate.config_path(), fx.with_bravo()).expect("edit config in place");
    fx.expect_reloads(1.0, edited, PROMPT, "edit in place");
    assert_eq!(fx.status_for(KEY_B), 200, "the new client is served");
}

#[test]
fn sighup_reloads_within_two_seconds_while_a_sibling_changes_every_50ms() {
    let fx = Fx::start(true, |_| {});
    std::thread::sleep(Duration::from_millis(500));
    let sent = Instant::now();
    fx.gate.signal("HUP");
    fx.expect_reloads(1.0, sent, PROMPT, "first SIGHUP");
    // And again: the signal is read whatever the directory does.
    let sent = Instant::now();
    fx.gate.signal("HUP");
    fx.expect_reloads(2.0, sent, PROMPT, "second SIGHUP");
}

#[test]
fn a_rename_onto_the_config_file_reloads_while_a_sibling_changes_every_50ms() {
    let fx = Fx::start(true, |_| {});
    std::thread::sleep(Duration::from_millis(500));
    let renamed = Instant::now();
    fx.gate.rewrite_config(&fx.with_bravo());
    fx.expect_reloads(1.0, renamed, PROMPT, "rename onto the config");
    assert_eq!(fx.status_for(KEY_B), 200, "the new client is served");
}

#[test]
fn a_rename_onto_the_token_file_rotates_the_token_while_a_sibling_changes_every_50ms() {
    let fx = Fx::start(true, |_| {});
    std::thread::sleep(Duration::from_millis(500));
    let renamed = Instant::now();
    rename_onto(&fx.gate.dir().join("abc123.token"), TOKEN_ROTATED);
    fx.expect_reloads(1.0, renamed, PROMPT, "rename onto the token file");
    fx.mock.clear();
    // The mock knows only the old token, so its 401 passes through.
    assert_eq!(fx.status_for(KEY_A), 401);
    assert_eq!(fx.mock.only_request().tokens(), [TOKEN_ROTATED]);
}

/// A Kubernetes ConfigMap or Secret volume: `bcgate.toml -> ..data/bcgate.toml`,
/// `..data -> ..<timestamp>`; an update writes a new timestamped directory,
/// points `..data_tmp` at it and renames that onto `..data`. The file
/// `bcgate.toml` itself never changes.
#[test]
fn a_kubernetes_data_symlink_swap_reloads_while_a_sibling_changes_every_50ms() {
    let fx = Fx::start(true, |dir| {
        std::fs::create_dir(dir.join("..2026_01_01_00_00_00.1")).expect("mkdir");
        symlink("..2026_01_01_00_00_00.1", &dir.join("..data"));
        symlink("..data/bcgate.toml", &dir.join("bcgate.toml"));
    });
    let dir = fx.gate.dir().to_path_buf();
    assert!(
        std::fs::symlink_metadata(fx.gate.config_path())
            .expect("stat config")
            .file_type()
            .is_symlink(),
        "the config is read through the symlinks"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(fx.status_for(KEY_B), 401, "bravo is not configured yet");

    let swapped = Instant::now();
    let new = dir.join("..2026_01_01_00_01_00.2");
    std::fs::create_dir(&new).expect("mkdir");
    std::fs::write(new.join("bcgate.toml"), fx.with_bravo()).expect("write new config");
    symlink("..2026_01_01_00_01_00.2", &dir.join("..data_tmp"));
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("swap ..data");
    std::fs::remove_dir_all(dir.join("..2026_01_01_00_00_00.1")).expect("remove old data");
    fx.expect_reloads(1.0, swapped, PROMPT, "..data swap");
    assert_eq!(fx.status_for(KEY_B), 200, "the new client is served");

    // The watch follows the new directory: a second swap is seen too.
    let swapped = Instant::now();
    let newer = dir.join("..2026_01_01_00_02_00.3");
    std::fs::create_dir(&newer).expect("mkdir");
    let alpha_only = config(&fx.mock.base_url(), &client("alpha", KEY_A));
    std::fs::write(newer.join("bcgate.toml"), alpha_only).expect("write newer config");
    symlink("..2026_01_01_00_02_00.3", &dir.join("..data_tmp"));
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("swap ..data");
    std::fs::remove_dir_all(&new).expect("remove old data");
    fx.expect_reloads(2.0, swapped, PROMPT, "second ..data swap");
    assert_eq!(fx.status_for(KEY_B), 401, "bravo is gone again");
}

fn symlink(target: &str, link: &Path) {
    std::os::unix::fs::symlink(PathBuf::from(target), link).expect("symlink");
}

// ---------------------------------------------------------------- debounce

/// A config file that changes every 50 ms, for ever, still reloads: the quiet
/// period the debounce waits for is capped.
#[test]
fn a_config_file_that_never_stops_changing_still_reloads_within_two_seconds() {
    let fx = Fx::start(false, |_| {});
    let base = fx.with_bravo();
    let path = fx.gate.config_path().to_path_buf();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let started = Instant::now();
    let writer = std::thread::spawn(move || {
        let mut n = 0u64;
        while !flag.load(Ordering::Relaxed) {
            // Every version is valid and different from the one before.
            rename_onto(&path, &format!("{base}\n# version {n}\n"));
            n += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        while fx.reloads("ok") < 1.0 {
            assert!(
                started.elapsed() < PROMPT,
                "no reload within {PROMPT:?} of a config rewritten every 50 ms\n--- logs ---\n{}",
                fx.gate.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }));
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer thread");
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    assert_eq!(fx.status_for(KEY_B), 200, "the new client is served");
}

/// An edit and a SIGHUP sent right after it (as a deploy tool that writes the
/// file and then signals does) give one reload, not two.
#[test]
fn an_edit_and_a_sighup_together_reload_once() {
    let fx = Fx::start(false, |_| {});
    std::thread::sleep(Duration::from_millis(300));
    let edited = Instant::now();
    fx.gate.rewrite_config(&fx.with_bravo());
    std::thread::sleep(Duration::from_millis(100));
    fx.gate.signal("HUP");
    fx.expect_reloads(1.0, edited, PROMPT, "edit then SIGHUP");
    // Long enough for a second reload from either trigger to have happened.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(fx.reloads("ok"), 1.0, "one reload:\n{}", fx.gate.logs());
    assert_eq!(
        fx.gate.logs().matches("config reloaded").count(),
        1,
        "one reload logged:\n{}",
        fx.gate.logs()
    );
    assert_eq!(fx.status_for(KEY_B), 200, "the new client is served");
}
