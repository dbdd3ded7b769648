//! Operating bcgate (issue 4): metrics that move with their events,
//! readiness, reload without dropping connections (good file, bad file,
//! rotated token file), graceful drain on SIGTERM, and identity from a
//! unix-socket peer uid or an mTLS client certificate. Real processes, real
//! sockets, the mock BigCommerce over TLS.

mod support;

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

// ---------------------------------------------------------------- metrics

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_metric_moves_when_its_event_happens() {
    let clients = client(
        "alpha",
        &key_identity(KEY_A),
        r#"["store_v2_products_read_only"]"#,
    );
    let fx = start(TCP, &clients, TestCa::new());
    let gate = &fx.gate;
    let http = plain_client();
    let before = metrics(gate);
    assert_eq!(metric(&before, "bcgate_requests_total", &[]), 0.0);

    // Forwarded: counted by client, store, route template, decision and
    // status; latency histograms; the store's remaining quota.
    let ok = send(
        http.get(gate.url("/v3/catalog/products?limit=1"))
            .header("X-Auth-Token", KEY_A),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let left: f64 = ok
        .header("x-rate-limit-requests-left")
        .expect("mock sends X-Rate-Limit-Requests-Left")
        .parse()
        .expect("number");
    let text = metrics(gate);
    for name in [
        "bcgate_requests_total",
        "bcgate_request_duration_seconds",
        "bcgate_upstream_duration_seconds",
        "bcgate_store_rate_limit_requests_left",
        "bcgate_open_connections",
    ] {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} is described:\n{text}"
        );
    }
    let forwarded = [
        ("client", "alpha"),
        ("store", STORE),
        ("route", "/v3/catalog/products"),
        ("decision", "forwarded"),
        ("status", "200"),
    ];
    assert_eq!(
        metric(&text, "bcgate_requests_total", &forwarded),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "bcgate_request_duration_seconds_count",
            &[("decision", "forwarded")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "bcgate_upstream_duration_seconds_count",
            &[("store", STORE)]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "bcgate_store_rate_limit_requests_left",
            &[("store", STORE)]
        ),
        left,
        "{text}"
    );
    // The keep-alive connection the client still holds is open.
    assert_eq!(
        metric(&text, "bcgate_open_connections", &[("listener", "proxy")]),
        1.0,
        "{text}"
    );

    // Denials by code, and the decision label.
    let denied = send(
        http.post(gate.url("/v3/catalog/products"))
            .header("X-Auth-Token", KEY_A)
            .body("{}"),
    )
    .await;
    assert_eq!(denied.status, 403);
    let unknown = send(
        http.get(gate.url("/v3/catalog/products"))
            .header("X-Auth-Token", KEY_B),
    )
    .await;
    assert_eq!(unknown.status, 401);
    let bad = send(
        http.get(gate.url("/v3/catalog/products/%2e%2e"))
            .header("X-Auth-Token", KEY_A),
    )
    .await;
    assert_eq!(bad.status, 400);
    let text = metrics(gate);
    assert_eq!(
        metric(&text, "bcgate_denials_total", &[("code", "scope_denied")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "bcgate_denials_total",
            &[("code", "unauthenticated")]
        ),
        1.0
    );
    assert_eq!(
        metric(&text, "bcgate_denials_total", &[("code", "bad_request")]),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "bcgate_requests_total",
            &[
                ("client", "alpha"),
                ("route", "/v3/catalog/products"),
                ("decision", "denied"),
                ("status", "403")
            ]
        ),
        1.0,
        "{text}"
    );
    // An unidentified caller and an unmatched path are labelled "-", never the raw path.
    assert_eq!(
        metric(
            &text,
            "bcgate_requests_total",
            &[("client", "-"), ("decision", "denied"), ("status", "401")]
        ),
        1.0,
        "{text}"
    );
    assert!(
        !text.contains("%2e"),
        "a raw path leaked into a label:\n{text}"
    );

    // Upstream errors by kind: a timeout (the mock sleeps past request_timeout_ms).
    let slow = send(
        http.get(gate.url("/v3/catalog/products?mock_delay_ms=4000"))
            .header("X-Auth-Token", KEY_A),
    )
    .await;
    assert_eq!(slow.status, 504, "{}", slow.text());
    let text = metrics(gate);
    assert_eq!(
        metric(
            &text,
            "bcgate_upstream_errors_total",
            &[("kind", "timeout")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "bcgate_requests_total",
            &[("decision", "upstream_failed"), ("status", "504")]
        ),
        1.0
    );

    // The connection gauge falls when the caller goes away.
    drop(http);
    wait_for_metric(
        gate,
        "bcgate_open_connections",
        &[("listener", "proxy")],
        0.0,
    );

    for secret in [TOKEN, KEY_A, KEY_B] {
        assert!(!text.contains(secret), "a secret is in /metrics");
    }
    assert_eq!(
        fx.mock.requests().len(),
        2,
        "only the two authorized requests reached the mock"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_one_access_line_per_request_without_secrets() {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    std::fs::write(dir.path().join("abc123.token"), TOKEN).expect("token");
    let clients = client(
        "alpha",
        &key_identity(KEY_A),
        r#"["store_v2_products_read_only"]"#,
    );
    let gate = Bcgate::start_in(
        dir,
        &config(&mock.base_url(), TCP, &clients),
        &[("BCGATE_LOG_FORMAT", "json")],
    );
    let http = plain_client();
    let resp = send(
        http.get(gate.url("/v3/catalog/products?limit=1&secret_query=1"))
            .header("X-Auth-Token", KEY_A)
            .header("X-Request-Id", "ops-json-1"),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert!(gate.wait_for_log("ops-json-1", WAIT));
    let line = gate
        .logs()
        .lines()
        .find(|l| l.contains("ops-json-1"))
        .map(str::to_owned)
        .expect("access line");
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["target"], "bcgate::access", "{line}");
    assert_eq!(v["client"], "alpha");
    assert_eq!(v["store"], STORE);
    assert_eq!(v["method"], "GET");
    assert_eq!(v["route"], "/v3/catalog/products");
    assert_eq!(v["status"], 200);
    assert_eq!(v["decision"], "forwarded");
    assert!(
        v["latency_ms"].as_f64().is_some() && v["upstream_ms"].as_f64().is_some(),
        "{line}"
    );
    assert!(
        !line.contains("secret_query"),
        "the raw query is not logged: {line}"
    );
    gate.assert_logs_free_of(&[TOKEN, KEY_A]);
}

// ---------------------------------------------------------------- readiness

#[test]
fn readyz_reports_each_check_and_goes_unready_when_a_token_file_disappears() {
    let clients = client(
        "alpha",
        &key_identity(KEY_A),
        r#"["store_v2_products_read_only"]"#,
    );
    let fx = start(TCP, &clients, TestCa::new());
    let (status, body) = admin_get(&fx.gate, "/readyz");
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(report["ready"], true);
    let names: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["config", "store abc123 token", "upstream"]);
    assert_eq!(admin_get(&fx.gate, "/healthz").0, 200);

    std::fs::remove_file(fx.gate.dir().join("abc123.token")).expect("remove token file");
    let (status, body) = admin_get(&fx.gate, "/readyz");
    assert_eq!(status, 503, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(report["ready"], false);
    let token_check = &report["checks"][1];
    assert_eq!(token_check["ok"], false, "{body}");
    assert!(
        token_check["detail"]
            .as_str()
            .is_some_and(|d| d.contains("abc123.token"))
    );
    assert!(!body.contains(TOKEN));
    // Alive all the same.
    assert_eq!(admin_get(&fx.gate, "/healthz").0, 200);
}

#[test]
fn readyz_is_unready_while_the_upstream_refuses_connections() {
    let ca = TestCa::new();
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    std::fs::write(dir.path().join("abc123.token"), TOKEN).expect("token");
    let dead = format!("https://{}", support::unused_addr());
    let clients = client(
        "alpha",
        &key_identity(KEY_A),
        r#"["store_v2_products_read_only"]"#,
    );
    let gate = Bcgate::start_in(dir, &config(&dead, TCP, &clients), &[]);
    let (status, body) = admin_get(&gate, "/readyz");
    assert_eq!(status, 503, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(report["checks"][2]["name"], "upstream");
    assert_eq!(report["checks"][2]["ok"], false, "{body}");
}

// ---------------------------------------------------------------- reload

#[test]
fn reload_with_a_good_file_serves_a_new_client_on_the_same_connection() {
    let alpha = client(
        "alpha",
        &key_identity(KEY_A),
        r#"["store_v2_products_read_only"]"#,
    );
    let fx = start(TCP, &alpha, TestCa::new());
    let gate = &fx.gate;
    let mut conn = TcpStream::connect(gate.addr).expect("connect");
    let path = "/v3/catalog/products";
    let before = get_on(&mut conn, path, KEY_B);
    assert_eq!(before.status, 401, "bravo is not configured yet");

    // The file watch picks up an atomic replace.
    let bravo = client("bravo", &key_identity(KEY_B), r#"["store_v2_products"]"#);
    gate.rewrite_config(&config(
        &fx.mock.base_url(),
        TCP,
        &format!("{alpha}{bravo}"),
    ));
    wait_for_metric(
        gate,
        "bcgate_config_reloads_total",
        &[("result", "ok")],
        1.0,
    );
    let after = get_on(&mut conn, path, KEY_B);
    assert_eq!(after.status, 200, "{}", after.body_text());
    let still = get_on(&mut conn, path, KEY_A);
    assert_eq!(still.status, 200);

    // SIGHUP reloads even when nothing changed on disk.
    gate.signal("HUP");
    wait_for_metric(
        gate,
        "bcgate_config_reloads_total",
        &[("result", "ok")],
        2.0,
    );

    // Token rotation: a new token file is re-read, and used from then on.
    std::fs::write(gate.dir().join("abc123.token"), TOKEN_ROTATED).expect("rotate token");
    wait_for_metric(
        gate,
        "bcgate_config_reloads_total",
        &[("result", "ok")],
        3.0,
    );
    fx.mock.clear();
    let rotated = get_on(&mut conn, path, KEY_A);
    // The mock still knows only the old token, as BigCommerce would until
    // the rotation reached it: its 401 passes through.
    assert_eq!(rotated.status, 401, "{}", rotated.body_text());
    assert_eq!(fx.mock.only_request().tokens(), [TOKEN_ROTATED]);
}

#[test]
fn reload_with_a_bad_file_keeps_the_old_config_and_counts_the_failure() {
    let alpha = client(
        "alpha",
        &key_identity(KEY_A),
        r#"["store_v2_products_read_only"]"#,
    );
    let fx = start(TCP, &alpha, TestCa::new());
    let gate = &fx.gate;
    let mut conn = TcpStream::connect(gate.addr).expect("connect");
    let path = "/v3/catalog/products";

    // A misspelt scope: the whole file is refused, bravo never appears.
    let bravo = client("bravo", &key_identity(KEY_B), r#"["store_v2_product"]"#);
    gate.rewrite_config(&config(
        &fx.mock.base_url(),
        TCP,
        &format!("{alpha}{bravo}"),
    ));
    let text = wait_for_metric(
        gate,
        "bcgate_config_reloads_total",
        &[("result", "error")],
        1.0,
    );
    assert_eq!(
        metric(&text, "bcgate_config_reloads_total", &[("result", "ok")]),
        0.0
    );
    assert!(gate.wait_for_log("config reload refused", WAIT));
    assert!(
        gate.logs().contains("clients[1].scopes[0]"),
        "the error names the key:\n{}",
        gate.logs()
    );
    let old = get_on(&mut conn, path, KEY_A);
    assert_eq!(old.status, 200, "the old config keeps serving");
    let new = get_on(&mut conn, path, KEY_B);
    assert_eq!(new.status, 401);
    let (_, ready) = admin_get(gate, "/readyz");
    assert!(ready.contains("the last reload was refused"), "{ready}");

    // So is a file that moves the listener (it cannot move without a restart).
    let moved = config(&fx.mock.base_url(), r#"listen = "127.0.0.1:1""#, &alpha);
    gate.rewrite_config(&moved);
    wait_for_metric(
        gate,
        "bcgate_config_reloads_total",
        &[("result", "error")],
        2.0,
    );

    // Fixing the file is a change like any other.
    let bravo = client("bravo", &key_identity(KEY_B), r#"["store_v2_products"]"#);
    gate.rewrite_config(&config(
        &fx.mock.base_url(),
        TCP,
        &format!("{alpha}{bravo}"),
    ));
    wait_for_metric(
        gate,
        "bcgate_config_reloads_total",
        &[("result", "ok")],
        1.0,
    );
    let fixed = get_on(&mut conn, path, KEY_B);
    assert_eq!(fixed.status, 200);
}

// ---------------------------------------------------------------- drain

#[test]
fn sigterm_lets_a_slow_in_flight_request_finish_then_exits_zero() {
    drains_a_slow_request(None);
}

/// On one CPU bcgate runs its tasks on the main thread (no runtime workers),
/// and serving, reloading and draining work the same.
#[test]
fn on_one_cpu_it_runs_without_worker_threads_and_still_reloads_and_drains() {
    drains_a_slow_request(Some(0));
}

fn drains_a_slow_request(cpu: Option<u32>) {
    let alpha = client(
        "alpha",
        &key_identity(KEY_A),
        r#"["store_v2_products_read_only"]"#,
    );
    let server = format!("{TCP}\ndrain_timeout_ms = 10000");
    let mut fx = start_on(cpu, &server, &alpha, TestCa::new());
    let addr = fx.gate.addr;
    if cpu.is_some() {
        let names = fx.gate.thread_names();
        assert!(
            !names.iter().any(|n| n.starts_with("tokio-rt")),
            "no runtime worker threads on one CPU: {names:?}"
        );
        let resp = support::raw_exchange(
            addr,
            get_request("/v3/catalog/products", Some(KEY_A)).as_bytes(),
            false,
        )
        .expect("a request on one CPU");
        assert_eq!(resp.status, 200, "{}", resp.body_text());
        // A reload is read by the watcher thread and applied on the runtime's one thread.
        let beta = client(
            "beta",
            &key_identity(KEY_B),
            r#"["store_v2_products_read_only"]"#,
        );
        fx.gate.rewrite_config(&config(
            &fx.mock.base_url(),
            &server,
            &format!("{alpha}\n{beta}"),
        ));
        fx.gate.signal("HUP");
        assert!(
            fx.gate.wait_for_log("config reloaded", WAIT),
            "{}",
            fx.gate.logs()
        );
        let resp = support::raw_exchange(
            addr,
            get_request("/v3/catalog/products", Some(KEY_B)).as_bytes(),
            false,
        )
        .expect("a request from the reloaded client");
        assert_eq!(resp.status, 200, "{}", resp.body_text());
    }
    let before = fx.mock.wait_for_stats(WAIT, |_| true).handlers_started;
    let slow = std::thread::spawn(move || {
        let req = get_request("/v3/catalog/products?mock_delay_ms=1500", Some(KEY_A))
            .replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
        support::raw_exchange(addr, req.as_bytes(), false)
    });
    let stats = fx
        .mock
        .wait_for_stats(WAIT, |s| s.handlers_started > before);
    assert_eq!(
        stats.handlers_started,
        before + 1,
        "the slow request reached the mock"
    );
    let signalled = Instant::now();
    fx.gate.signal("TERM");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        TcpStream::connect(addr).is_err(),
        "no new connections are accepted while draining"
    );
    let resp = slow
        .join()
        .expect("thread")
        .expect("the in-flight request completed");
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    let status = fx
        .gate
        .wait_exit(WAIT)
        .expect("bcgate exits after draining");
    assert!(status.success(), "exit status {status}");
    assert!(
        signalled.elapsed() >= Duration::from_millis(1000),
        "it waited for the request"
    );
    assert!(fx.gate.logs().contains("draining"), "{}", fx.gate.logs());
}

// ---------------------------------------------------------------- identity

fn current_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("Uid line")
}

#[test]
fn unix_socket_peer_uid_identifies_a_client_without_a_key() {
    let uid = current_uid();
    let by_uid = client(
        "by-uid",
        &format!("unix_uid = {uid}"),
        r#"["store_v2_products_read_only"]"#,
    );
    let by_key = client(
        "by-key",
        &key_identity(KEY_B),
        r#"["store_v2_products_read_only"]"#,
    );
    let fx = start(
        r#"listen = "unix:bcgate.sock""#,
        &format!("{by_uid}{by_key}"),
        TestCa::new(),
    );
    let sock = fx.gate.unix.clone().expect("a unix listener");

    let (status, body) = unix_get(&sock, "/v3/catalog/products", None);
    assert_eq!(status, 200, "{body}");
    let rec = fx.mock.only_request();
    assert_eq!(rec.tokens(), [TOKEN]);
    assert!(
        fx.gate.wait_for_log("client=by-uid ", WAIT),
        "{}",
        fx.gate.logs()
    );

    // The uid grants only by-uid's scopes.
    let (status, _) = unix_get(&sock, "/v2/orders", None);
    assert_eq!(status, 403);
    // A key naming another client on the same connection is a conflict.
    let (status, body) = unix_get(&sock, "/v3/catalog/products", Some(KEY_B));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("another client"), "{body}");
    // An unknown key is not rescued by the uid.
    let (status, _) = unix_get(&sock, "/v3/catalog/products", Some(KEY_A));
    assert_eq!(status, 401);
}

#[test]
fn unix_uid_of_nobody_in_config_does_not_identify_this_process() {
    let other = current_uid().wrapping_add(4242);
    let by_uid = client(
        "someone-else",
        &format!("unix_uid = {other}"),
        r#"["store_v2_products_read_only"]"#,
    );
    let fx = start(r#"listen = "unix:bcgate.sock""#, &by_uid, TestCa::new());
    let sock = fx.gate.unix.clone().expect("a unix listener");
    let (status, body) = unix_get(&sock, "/v3/catalog/products", None);
    assert_eq!(status, 401, "{body}");
    assert!(fx.mock.requests().is_empty());
}

/// An HTTPS client presenting a certificate for `cn` signed by `ca`.
fn mtls_client(ca: &TestCa, cn: Option<&str>) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.ca_der())).expect("root");
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(ring_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let mut tls = match cn {
        Some(cn) => {
            let leaf = ca.issue_leaf(&[cn]);
            builder
                .with_client_auth_cert(
                    vec![CertificateDer::from(leaf.cert_der)],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der)),
                )
                .expect("client cert")
        }
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .no_proxy()
        .timeout(WAIT)
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_certificate_subject_identifies_a_client_without_a_key() {
    let ca = TestCa::new();
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    ca.write_leaf(dir.path(), "server", &["127.0.0.1", "localhost"]);
    std::fs::write(dir.path().join("abc123.token"), TOKEN).expect("token");
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    let tls = r#"listen = "127.0.0.1:0"
tls = { cert = "server.pem", key = "server.key", client_ca = "ca.pem" }"#;
    let clients = format!(
        "{}{}",
        client(
            "inventory-sync",
            r#"tls_subject = "CN=inventory-sync""#,
            r#"["store_v2_products_read_only"]"#
        ),
        client(
            "by-key",
            &key_identity(KEY_B),
            r#"["store_v2_orders_read_only"]"#
        )
    );
    let gate = Bcgate::start_in(dir, &config(&mock.base_url(), tls, &clients), &[]);
    assert_eq!(gate.scheme, "https");
    let url = gate.url("/v3/catalog/products");

    let inventory = mtls_client(&ca, Some("inventory-sync"));
    let resp = send(inventory.get(&url)).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(mock.only_request().tokens(), [TOKEN]);
    let denied = send(inventory.get(gate.url("/v2/orders"))).await;
    assert_eq!(
        denied.status, 403,
        "the certificate grants only its client's scopes"
    );

    // A valid certificate no client names: a key still identifies the caller.
    let stranger = mtls_client(&ca, Some("stranger"));
    assert_eq!(send(stranger.get(&url)).await.status, 401);
    let keyed = send(
        stranger
            .get(gate.url("/v2/orders"))
            .header("X-Auth-Token", KEY_B),
    )
    .await;
    assert_eq!(keyed.status, 200, "{}", keyed.text());
    // A certificate naming a client plus another client's key: refused.
    let both = send(inventory.get(&url).header("X-Auth-Token", KEY_B)).await;
    assert_eq!(both.status, 400, "{}", both.text());

    // No certificate: the handshake itself is refused.
    let anonymous = mtls_client(&ca, None);
    assert!(
        anonymous.get(&url).send().await.is_err(),
        "client_ca makes a certificate mandatory"
    );
    // A certificate from another CA with the right subject: refused too.
    let other_ca = TestCa::new();
    let forged = mtls_client_with_roots(&other_ca, &ca, "inventory-sync");
    assert!(
        forged.get(&url).send().await.is_err(),
        "only client_ca's certificates count"
    );
    gate.assert_logs_free_of(&[TOKEN, KEY_B]);
}

/// A client trusting `server_ca` that presents a certificate for `cn` signed by `signer`.
fn mtls_client_with_roots(signer: &TestCa, server_ca: &TestCa, cn: &str) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(server_ca.ca_der()))
        .expect("root");
    let leaf = signer.issue_leaf(&[cn]);
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(ring_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from(leaf.cert_der)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der)),
        )
        .expect("client cert");
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .no_proxy()
        .timeout(WAIT)
        .build()
        .expect("client")
}

#[test]
fn healthcheck_command_exits_zero_only_on_a_200() {
    let alpha = client(
        "alpha",
        &key_identity(KEY_A),
        r#"["store_v2_products_read_only"]"#,
    );
    let fx = start(TCP, &alpha, TestCa::new());
    let admin = fx.gate.admin_addr().expect("admin address");
    let ok = Bcgate::run_cli(&["healthcheck", &format!("http://{admin}/healthz")], &[]);
    assert!(ok.status.success(), "{ok:?}");
    let not_found = Bcgate::run_cli(&["healthcheck", &format!("http://{admin}/nope")], &[]);
    assert!(!not_found.status.success());
    assert!(String::from_utf8_lossy(&not_found.stderr).contains("404"));
    let refused = Bcgate::run_cli(
        &[
            "healthcheck",
            &format!("http://{}/healthz", support::unused_addr()),
        ],
        &[],
    );
    assert!(!refused.status.success());
}

#[test]
fn an_in_flight_request_finishes_on_the_config_it_started_with() {
    let alpha = client(
        "alpha",
        &key_identity(KEY_A),
        r#"["store_v2_products_read_only"]"#,
    );
    let bravo = client(
        "bravo",
        &key_identity(KEY_B),
        r#"["store_v2_products_read_only"]"#,
    );
    let fx = start(TCP, &format!("{alpha}{bravo}"), TestCa::new());
    let addr = fx.gate.addr;
    let slow = std::thread::spawn(move || {
        let req = get_request("/v3/catalog/products?mock_delay_ms=1500", Some(KEY_A))
            .replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
        support::raw_exchange(addr, req.as_bytes(), false)
    });
    let stats = fx.mock.wait_for_stats(WAIT, |s| s.handlers_started >= 1);
    assert_eq!(stats.handlers_started, 1, "the slow request is upstream");
    // alpha is removed while its request is in flight.
    fx.gate
        .rewrite_config(&config(&fx.mock.base_url(), TCP, &bravo));
    wait_for_metric(
        &fx.gate,
        "bcgate_config_reloads_total",
        &[("result", "ok")],
        1.0,
    );
    let gone = support::raw_request(
        addr,
        get_request("/v3/catalog/products", Some(KEY_A)).as_bytes(),
    );
    assert_eq!(gone.status, 401, "new requests see the new config");
    let resp = slow
        .join()
        .expect("thread")
        .expect("the in-flight request completed");
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert!(
        fx.gate.wait_for_log("client=alpha store=abc123", WAIT),
        "its access line still names alpha:\n{}",
        fx.gate.logs()
    );
}
