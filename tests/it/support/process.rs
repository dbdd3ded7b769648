//! Run the real `bcgate` binary: as a server (`Bcgate::start`, or
//! `Bcgate::start_dev` for `bcgate dev`) or a one-shot CLI command.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long `Bcgate::start` waits for the listening line.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a one-shot CLI command may run.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);

const PROXY_LINE: &str = "bcgate: proxy listening on ";
const ADMIN_LINE: &str = "bcgate: admin listening on ";

/// The path of the binary under test.
pub fn bcgate_exe() -> &'static str {
    env!("CARGO_BIN_EXE_bcgate")
}

/// A running `bcgate run --config <dir>/bcgate.toml` (or `bcgate dev`, which
/// has no config file); killed on drop.
pub struct Bcgate {
    child: Child,
    dir: tempfile::TempDir,
    config_path: Option<PathBuf>,
    /// `http` or `https`
    pub scheme: String,
    /// The TCP address (unspecified, port 0, when bcgate listens on a unix socket).
    pub addr: SocketAddr,
    /// The socket path, when bcgate listens on `unix:PATH`.
    pub unix: Option<PathBuf>,
    logs: Arc<Mutex<String>>,
    /// What the process wrote on stdout alone.
    stdout: Arc<Mutex<String>>,
}

impl std::fmt::Debug for Bcgate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bcgate")
            .field("scheme", &self.scheme)
            .field("addr", &self.addr)
            .field("config", &self.config_path)
            .finish_non_exhaustive()
    }
}

/// A fresh temp dir for a config and the files next to it.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("bcgate-test-")
        .tempdir()
        .expect("create temp dir")
}

impl Bcgate {
    /// Write `config_toml` as `bcgate.toml` in a fresh temp dir and start the binary.
    pub fn start(config_toml: &str, env: &[(&str, &str)]) -> Bcgate {
        Self::start_in(temp_dir(), config_toml, env)
    }

    /// Start with `config_toml` written as `bcgate.toml` inside `dir` (which
    /// the test may have filled with certificates and the like already).
    pub fn start_in(dir: tempfile::TempDir, config_toml: &str, env: &[(&str, &str)]) -> Bcgate {
        match Self::try_start_in(dir, config_toml, env) {
            Ok(gate) => gate,
            Err(msg) => panic!("{msg}"),
        }
    }

    /// Like [`start_in`](Self::start_in), but returns the failure (with the
    /// process's output) instead of panicking.
    pub fn try_start_in(
        dir: tempfile::TempDir,
        config_toml: &str,
        env: &[(&str, &str)],
    ) -> Result<Bcgate, String> {
        Self::try_start_on(None, dir, config_toml, env)
    }

    /// Like [`start_in`](Self::start_in), on one CPU (`taskset -c CPU`), as a
    /// pinned sidecar runs.
    pub fn start_pinned_in(
        cpu: u32,
        dir: tempfile::TempDir,
        config_toml: &str,
        env: &[(&str, &str)],
    ) -> Bcgate {
        match Self::try_start_on(Some(cpu), dir, config_toml, env) {
            Ok(gate) => gate,
            Err(msg) => panic!("{msg}"),
        }
    }

    /// Like [`start_in`](Self::start_in), with the open-files limit set to
    /// `soft` and `hard` (`prlimit`, which execs the binary, so the child's
    /// pid stays bcgate's).
    pub fn start_with_nofile_in(
        (soft, hard): (u64, u64),
        dir: tempfile::TempDir,
        config_toml: &str,
        env: &[(&str, &str)],
    ) -> Bcgate {
        let config_path = dir.path().join("bcgate.toml");
        std::fs::write(&config_path, config_toml).expect("write bcgate.toml");
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--nofile={soft}:{hard}"))
            .arg(bcgate_exe())
            .arg("run")
            .arg("--config")
            .arg(&config_path);
        let context = format!("--- config (nofile {soft}:{hard}) ---\n{config_toml}");
        match Self::launch(cmd, dir, Some(config_path), env, &context) {
            Ok(gate) => gate,
            Err(msg) => panic!("{msg}"),
        }
    }

    fn try_start_on(
        cpu: Option<u32>,
        dir: tempfile::TempDir,
        config_toml: &str,
        env: &[(&str, &str)],
    ) -> Result<Bcgate, String> {
        let config_path = dir.path().join("bcgate.toml");
        std::fs::write(&config_path, config_toml).expect("write bcgate.toml");
        // taskset execs the binary, so the child's pid stays bcgate's.
        let mut cmd = match cpu {
            Some(cpu) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(cpu.to_string()).arg(bcgate_exe());
                cmd
            }
            None => Command::new(bcgate_exe()),
        };
        cmd.arg("run").arg("--config").arg(&config_path);
        let context = format!("--- config ---\n{config_toml}");
        Self::launch(cmd, dir, Some(config_path), env, &context)
    }

    /// Start `bcgate dev ARGS` in a fresh temp dir and wait for its listening
    /// line, which `bcgate dev` prints after its keys and `curl` lines.
    #[cfg(feature = "dev")]
    pub fn start_dev(args: &[&str]) -> Bcgate {
        let mut cmd = Command::new(bcgate_exe());
        cmd.arg("dev").args(args);
        let context = format!("--- command ---\nbcgate dev {}", args.join(" "));
        match Self::launch(cmd, temp_dir(), None, &[], &context) {
            Ok(gate) => gate,
            Err(msg) => panic!("{msg}"),
        }
    }

    /// Spawn `cmd` in `dir` and wait for the proxy's listening line;
    /// `context` (the config, or the command) goes into the failure message.
    fn launch(
        mut cmd: Command,
        dir: tempfile::TempDir,
        config_path: Option<PathBuf>,
        env: &[(&str, &str)],
        context: &str,
    ) -> Result<Bcgate, String> {
        cmd.current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        scrub_env(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn bcgate");

        let logs = Arc::new(Mutex::new(String::new()));
        let stdout_only = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        spawn_drain(
            stdout,
            logs.clone(),
            Some((tx, stdout_only.clone())),
            "stdout",
        );
        let stderr_drain = spawn_drain(stderr, logs.clone(), None, "stderr");

        let deadline = Instant::now() + START_TIMEOUT;
        let found = loop {
            let now = Instant::now();
            if now >= deadline {
                break None;
            }
            match rx.recv_timeout(deadline - now) {
                Ok(line) => {
                    if let Some(url) = listening_url(&line, PROXY_LINE) {
                        break Some(url);
                    }
                }
                Err(_) => break None, // timeout, or stdout closed (process gone)
            }
        };
        let Some(url) = found else {
            let status = wait_briefly(&mut child);
            let _ = child.kill();
            let _ = child.wait();
            // The process is gone, so its stderr ends: read all of it (the
            // reason it exited) before reporting.
            let _ = stderr_drain.join();
            let text = logs.lock().map(|l| l.clone()).unwrap_or_default();
            let hint = if text.contains(PROXY_LINE) {
                " (the listening line was printed, but not on stdout)"
            } else {
                ""
            };
            let what = match status {
                Some(status) => format!("bcgate exited ({status}) before printing"),
                None => format!("bcgate did not print within {START_TIMEOUT:?}"),
            };
            return Err(format!(
                "{what} `{PROXY_LINE}http(s)://ADDR` on stdout{hint}\n\
                 {context}\n--- output ---\n{text}"
            ));
        };
        let (scheme, addr) = url
            .split_once("://")
            .unwrap_or_else(|| panic!("listening line without scheme: {url:?}"));
        let (addr, unix) = match addr.strip_prefix("unix:") {
            Some(path) => (
                SocketAddr::from(([0, 0, 0, 0], 0)),
                Some(PathBuf::from(path)),
            ),
            None => (
                addr.trim_end_matches('/')
                    .parse()
                    .unwrap_or_else(|e| panic!("listening line address {addr:?}: {e}")),
                None,
            ),
        };
        Ok(Bcgate {
            child,
            dir,
            config_path,
            scheme: scheme.to_owned(),
            addr,
            unix,
            logs,
            stdout: stdout_only,
        })
    }

    /// The process id of the running binary (for `/proc/<pid>/…` figures).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`, …), in KiB.
    pub fn status_kib(&self, field: &str) -> Option<u64> {
        proc_status_kib(self.pid(), field)
    }

    /// How many file descriptors the process holds (`/proc/<pid>/fd`).
    pub fn open_fds(&self) -> usize {
        proc_open_fds(self.pid())
    }

    /// How many threads the process runs (`/proc/<pid>/task`).
    pub fn threads(&self) -> usize {
        proc_threads(self.pid())
    }

    /// The names of the process's threads (`/proc/<pid>/task/*/comm`).
    pub fn thread_names(&self) -> Vec<String> {
        let dir = format!("/proc/{}/task", self.pid());
        let tasks = std::fs::read_dir(dir).expect("read /proc/<pid>/task");
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|n| n.trim().to_owned())
            .collect()
    }

    /// `{scheme}://{addr}{path}`
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.addr, path)
    }

    /// The directory holding `bcgate.toml`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> &Path {
        self.config_path
            .as_deref()
            .expect("bcgate dev has no config file")
    }

    /// The admin address, if the binary printed one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        let logs = self.logs();
        logs.lines()
            .find_map(|l| listening_url(l, ADMIN_LINE))
            .as_deref()
            .and_then(|rest| rest.split_once("://"))
            .and_then(|(_, addr)| addr.trim_end_matches('/').parse().ok())
    }

    /// Everything the process printed so far, stdout and stderr interleaved.
    pub fn logs(&self) -> String {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Everything the process printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Wait (bounded) until the logs contain `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.logs().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Give the log threads a moment to catch up with the process.
    pub fn settle_logs(&self) {
        std::thread::sleep(Duration::from_millis(300));
    }

    /// Panic if any of `secrets` appears in the logs.
    pub fn assert_logs_free_of(&self, secrets: &[&str]) {
        self.settle_logs();
        let logs = self.logs();
        for secret in secrets {
            assert!(
                !logs.contains(secret),
                "a secret ({}…) appears in bcgate's output:\n{logs}",
                &secret[..secret.len().min(6)]
            );
        }
    }

    /// Send a signal by name (`HUP`, `TERM`, …) with the system's `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Wait (bounded) for the process to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stop the process with SIGTERM (it drains and exits) and start the
    /// binary again on the same directory and config: a real restart.
    pub fn restart(mut self, env: &[(&str, &str)]) -> Bcgate {
        self.signal("TERM");
        let status = self.wait_exit(Duration::from_secs(20));
        assert!(
            status.is_some_and(|s| s.success()),
            "bcgate did not exit cleanly on SIGTERM ({status:?}):\n{}",
            self.logs()
        );
        let config = std::fs::read_to_string(self.config_path()).expect("read bcgate.toml");
        // Drop runs on `self` (nothing left to kill); the directory lives on.
        let dir = std::mem::replace(&mut self.dir, temp_dir());
        Self::start_in(dir, &config, env)
    }

    /// Replace `bcgate.toml` atomically (write a sibling, rename over), as
    /// an editor or a config-management tool would.
    pub fn rewrite_config(&self, config_toml: &str) {
        let tmp = self.dir.path().join(".bcgate.toml.new");
        std::fs::write(&tmp, config_toml).expect("write new config");
        std::fs::rename(&tmp, self.config_path()).expect("rename new config into place");
    }

    /// Run `bcgate ARGS` to completion (30 s limit) in a fresh temp dir, with
    /// inherited `BCGATE_*` variables removed and `env` added.
    pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> Output {
        let dir = temp_dir();
        Self::run_cli_in(dir.path(), args, env)
    }

    /// Like [`run_cli`](Self::run_cli) with `cwd` as the working directory.
    pub fn run_cli_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(bcgate_exe());
        cmd.args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        scrub_env(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_with_timeout(cmd, CLI_TIMEOUT)
    }
}

impl Drop for Bcgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `kB` field of `/proc/<pid>/status`, in KiB (Linux only).
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The entries of `/proc/<pid>/fd` (Linux only; panics if unreadable).
pub fn proc_open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/fd: {e}"))
        .count()
}

/// The entries of `/proc/<pid>/task`, i.e. threads (Linux only; panics if unreadable).
pub fn proc_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/task: {e}"))
        .count()
}

/// The soft `RLIMIT_NOFILE` of this process (children inherit it), from
/// `/proc/self/limits`; `None` if unlimited or unreadable.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The URL of a listening line: `bcgate: NAME listening on URL` as text, or
/// the JSON line with that `message` (`--log-format json`).
pub fn listening_url(line: &str, prefix: &str) -> Option<String> {
    let line = line.trim();
    if let Some(url) = line.strip_prefix(prefix) {
        return Some(url.to_owned());
    }
    let json: serde_json::Value = serde_json::from_str(line).ok()?;
    json["message"].as_str()?.strip_prefix(prefix)?;
    json["url"].as_str().map(str::to_owned)
}

/// Remove inherited `BCGATE_*` configuration and proxy settings.
pub fn scrub_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let upper = key.to_ascii_uppercase();
        if upper.starts_with("BCGATE_")
            || upper == "BCGATE"
            || upper == "HTTP_PROXY"
            || upper == "HTTPS_PROXY"
            || upper == "ALL_PROXY"
            || upper == "NO_PROXY"
        {
            cmd.env_remove(key);
        }
    }
}

/// Spawn `cmd`, collect stdout and stderr, and kill it if it runs past `timeout`.
pub fn run_with_timeout(cmd: Command, timeout: Duration) -> Output {
    try_run_with_timeout(cmd, timeout).unwrap_or_else(|e| panic!("spawn command: {e}"))
}

/// [`run_with_timeout`], returning an error if the command cannot be started.
pub fn try_run_with_timeout(mut cmd: Command, timeout: Duration) -> std::io::Result<Output> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let out = child.stdout.take().expect("piped stdout");
    let err = child.stderr.take().expect("piped stderr");
    let out_t = std::thread::spawn(move || read_all(out));
    let err_t = std::thread::spawn(move || read_all(err));
    let deadline = Instant::now() + timeout;
    let status: ExitStatus = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let status = child.wait().expect("wait for killed command");
                let stdout = out_t.join().unwrap_or_default();
                let stderr = err_t.join().unwrap_or_default();
                panic!(
                    "command {cmd:?} ran longer than {timeout:?} ({status:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    String::from_utf8_lossy(&stdout),
                    String::from_utf8_lossy(&stderr)
                );
            }
            Err(e) => panic!("waiting for {cmd:?}: {e}"),
        }
    };
    Ok(Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    })
}

fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = r.read_to_end(&mut buf);
    buf
}

fn spawn_drain(
    stream: impl Read + Send + 'static,
    logs: Arc<Mutex<String>>,
    lines: Option<(mpsc::Sender<String>, Arc<Mutex<String>>)>,
    name: &'static str,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name(format!("bcgate-{name}"))
        .spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut raw = Vec::new();
            loop {
                raw.clear();
                match reader.read_until(b'\n', &mut raw) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&raw).into_owned();
                        if let Ok(mut logs) = logs.lock() {
                            logs.push_str(&line);
                            if !line.ends_with('\n') {
                                logs.push('\n');
                            }
                        }
                        if let Some((tx, only)) = &lines {
                            if let Ok(mut only) = only.lock() {
                                only.push_str(&line);
                            }
                            let _ = tx.send(line);
                        }
                    }
                }
            }
        })
        .expect("spawn log drain thread")
}

fn wait_briefly(child: &mut Child) -> Option<ExitStatus> {
    let deadline = Instant::now() + Duration::from_millis(500);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
