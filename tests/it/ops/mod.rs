//! Operating bcgate: metrics that move with their events,
//! readiness, reload without dropping connections (good file, bad file,
//! rotated token file), graceful drain on SIGTERM, and identity from a
//! unix-socket peer uid or an mTLS client certificate. Real processes, real
//! sockets, the mock BigCommerce over TLS.

mod identity;
mod lifecycle;
mod metrics;

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use support::ca::ring_provider;
use support::{
    Bcgate, MockBigCommerce, TestCa, exchange_on, key_sha256, metric, plain_client, send,
};

const STORE: &str = "abc123";
const TOKEN: &str = "bc-store-token-ops-abc123-Vq8Lm2Zx";
const TOKEN_ROTATED: &str = "bc-store-token-ops-abc123-ROTATED-Pw4Ks9";
const KEY_A: &str = "bcg-key-ops-alpha-4Hs8Kd2Lq9";
const KEY_B: &str = "bcg-key-ops-bravo-7Tn3Wx5Rc1";

const WAIT: Duration = Duration::from_secs(10);

/// One client stanza.
fn client(name: &str, identity: &str, scopes: &str) -> String {
    format!(
        "\n[[clients]]\nname = \"{name}\"\n{identity}\nstores = [\"{STORE}\"]\ndefault_store = \"{STORE}\"\nscopes = {scopes}\n"
    )
}

fn key_identity(key: &str) -> String {
    format!("key_sha256 = \"{}\"", key_sha256(key))
}

/// A config in front of `mock`: store abc123 with its token from
/// `abc123.token`, an admin listener, and `clients`.
fn config(mock_url: &str, server_extra: &str, clients: &str) -> String {
    format!(
        r#"
[server]
{server_extra}
body_read_timeout_ms = 5000

[admin]
listen = "127.0.0.1:0"

[upstream]
base_url = "{mock_url}"
ca_file = "ca.pem"
connect_timeout_ms = 2000
request_timeout_ms = 2000

[[stores]]
hash = "{STORE}"
token_file = "abc123.token"
{clients}
"#
    )
}

const TCP: &str = r#"listen = "127.0.0.1:0""#;

struct Fx {
    _ca: TestCa,
    mock: MockBigCommerce,
    gate: Bcgate,
}

fn start(server_extra: &str, clients: &str, ca: TestCa) -> Fx {
    start_on(None, server_extra, clients, ca)
}

/// [`start`], with bcgate on the given CPU only when `cpu` is set.
fn start_on(cpu: Option<u32>, server_extra: &str, clients: &str, ca: TestCa) -> Fx {
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    std::fs::write(dir.path().join("abc123.token"), TOKEN).expect("write token file");
    let config = config(&mock.base_url(), server_extra, clients);
    let env = [("BCGATE_LOG", "info,bcgate=debug")];
    let gate = match cpu {
        Some(cpu) => Bcgate::start_pinned_in(cpu, dir, &config, &env),
        None => Bcgate::start_in(dir, &config, &env),
    };
    Fx {
        _ca: ca,
        mock,
        gate,
    }
}

impl Drop for Fx {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.gate
                .assert_logs_free_of(&[TOKEN, TOKEN_ROTATED, KEY_A, KEY_B]);
        }
    }
}

// ---------------------------------------------------------------- admin helpers

fn admin_get(gate: &Bcgate, path: &str) -> (u16, String) {
    let addr = gate.admin_addr().expect("admin address printed");
    let req = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    let resp = support::raw_request(addr, req.as_bytes());
    (resp.status, resp.body_text())
}

fn metrics(gate: &Bcgate) -> String {
    let (status, text) = admin_get(gate, "/metrics");
    assert_eq!(status, 200, "/metrics: {text}");
    text
}

fn wait_for_metric(gate: &Bcgate, name: &str, labels: &[(&str, &str)], want: f64) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = metrics(gate);
        if metric(&text, name, labels) == want {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{labels:?} never reached {want}:\n{text}\n--- logs ---\n{}",
            gate.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------- raw HTTP/1.1

fn get_request(path: &str, key: Option<&str>) -> String {
    let auth = key
        .map(|k| format!("X-Auth-Token: {k}\r\n"))
        .unwrap_or_default();
    format!("GET {path} HTTP/1.1\r\nHost: bcgate\r\n{auth}\r\n")
}

/// A keyed GET on a kept-open connection (the connection must survive).
fn get_on(conn: &mut TcpStream, path: &str, key: &str) -> support::RawResponse {
    exchange_on(conn, get_request(path, Some(key)).as_bytes(), false)
        .unwrap_or_else(|e| panic!("GET {path} on the same connection: {e}"))
}

/// One request over a unix socket, `Connection: close`; (status, body).
fn unix_get(sock: &Path, path: &str, key: Option<&str>) -> (u16, String) {
    let mut s = std::os::unix::net::UnixStream::connect(sock).expect("connect unix socket");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    let req = get_request(path, key).replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP response: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}
