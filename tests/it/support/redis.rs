//! A `redis-server` of the test's own (a free port on 127.0.0.1, no
//! persistence, killed on drop), for the tests of the Redis backends.
//! Without `redis-server` on the PATH those tests are skipped, except under
//! `CI=true`, where they fail (scripts/install-test-deps installs it).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn redis_server_exe() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("redis-server"))
            .find(|p| p.is_file())
    })
}

/// `Some(path)`, or `None` after printing why the test is skipped; panics
/// under `CI=true`, where a missing redis-server is a broken setup.
pub fn redis_or_skip() -> Option<PathBuf> {
    let exe = redis_server_exe();
    if exe.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "redis-server is required under CI=true \
                 (scripts/install-test-deps installs the Debian package redis-server)"
            );
        }
        println!("skipping: redis-server not installed (apt-get install redis-server)");
    }
    exe
}

/// A `redis-server` of the test's own; killed on drop.
pub struct RedisServer {
    exe: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start(exe: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut server = Self {
            exe: exe.to_path_buf(),
            port,
            dir: super::process::temp_dir(),
            child: None,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts it (again) on the same port; a dump made by [`save`](Self::save) is loaded.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(&self.exe)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pong = self
                .conn()
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if pong.is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn conn(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url())?.get_connection_with_timeout(Duration::from_secs(2))
    }

    /// Writes the data set to the dump file, for a restart to load.
    pub fn save(&self) {
        let mut c = self.conn().expect("connect to redis");
        redis::cmd("SAVE").query::<()>(&mut c).expect("SAVE");
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let mut c = self.conn().expect("connect to redis");
        redis::cmd("GET").arg(key).query(&mut c).expect("GET")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
