//! Test infrastructure shared by the integration tests: a test CA and a mock
//! BigCommerce API over real TLS (both from `bcgate-testkit`, which
//! `bcgate dev` uses too), a process helper for the `bcgate` binary, HTTP
//! clients and a raw HTTP/1.1 socket helper.

pub mod login;
pub mod process;
pub mod raw;
pub mod redis;

use std::time::Duration;

pub use bcgate_testkit::{ca, mock};
pub use ca::DevCa as TestCa;
pub use mock::{MockBigCommerce, Recorded, unused_addr};
pub use process::Bcgate;
pub use raw::{RawResponse, exchange_on, raw_exchange, raw_request};

use sha2::{Digest, Sha256};

/// Per-request limit for every test client.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The `[server]`, `[admin]` and `[upstream]` sections most process tests
/// start from: both listeners on a free port, the mock (trusted through
/// `ca.pem` beside the config) as the upstream.
pub fn base_config(mock_url: &str, request_timeout_ms: u64) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n\
         [upstream]\nbase_url = \"{mock_url}\"\nca_file = \"ca.pem\"\n\
         connect_timeout_ms = 2000\nrequest_timeout_ms = {request_timeout_ms}\n"
    )
}

/// An `[app]` section for the install-flow tests: TLS from `app.pem` /
/// `app.key` beside the config, the client secret from `BC_CLIENT_SECRET`.
pub fn app_section(public_url: &str, client_id: &str, scopes: &[&str], login_url: &str) -> String {
    let scopes = scopes
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "[app]\nlisten = \"127.0.0.1:0\"\ntls = {{ cert = \"app.pem\", key = \"app.key\" }}\n\
         public_url = \"{public_url}\"\nclient_id = \"{client_id}\"\n\
         client_secret_env = \"BC_CLIENT_SECRET\"\nscopes = [{scopes}]\nlogin_url = \"{login_url}\"\n"
    )
}

/// `/readyz` on the gate's admin listener: the status and the check called
/// `name`, if any.
pub fn ready_check(gate: &Bcgate, name: &str) -> (u16, Option<serde_json::Value>) {
    let admin = gate.admin_addr().expect("admin address");
    let resp = raw_request(
        admin,
        b"GET /readyz HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n",
    );
    let report = resp.json();
    let check = report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name).cloned());
    (resp.status, check)
}

/// Lower-case hex SHA-256 of a client key, as written in `key_sha256`.
pub fn key_sha256(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// An HTTPS client that trusts only `ca`, offers h2 and http/1.1, follows no
/// redirects and ignores proxy settings.
pub fn client(ca: &TestCa) -> reqwest::Client {
    tls_client(ca, &[b"h2", b"http/1.1"])
}

/// An HTTPS client that trusts only `ca` and speaks HTTP/1.1 only (the
/// python SDK's shape).
pub fn client_h1(ca: &TestCa) -> reqwest::Client {
    tls_client(ca, &[b"http/1.1"])
}

fn tls_client(ca: &TestCa, alpn: &[&[u8]]) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_preconfigured_tls(ca.client_config(alpn))
        .tls_built_in_root_certs(false)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(CLIENT_TIMEOUT);
    if alpn == [b"http/1.1"] {
        builder = builder.http1_only();
    }
    builder.build().expect("build TLS test client")
}

/// A plain-HTTP/1.1 client, no redirects, no proxy.
pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(CLIENT_TIMEOUT)
        .build()
        .expect("build plain test client")
}

/// A cleartext HTTP/2 (prior knowledge, "h2c") client, no redirects, no proxy.
pub fn h2c_client() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(CLIENT_TIMEOUT)
        .build()
        .expect("build h2c test client")
}

/// A fully read response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub version: http::Version,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body of the {} response is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }
}

/// Send and read the whole response, panicking on transport errors.
pub async fn send(req: reqwest::RequestBuilder) -> Resp {
    match try_send(req).await {
        Ok(resp) => resp,
        Err(e) => panic!("request failed: {e}"),
    }
}

/// Send and read the whole response.
pub async fn try_send(req: reqwest::RequestBuilder) -> Result<Resp, String> {
    let resp = req.send().await.map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    let version = resp.version();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.map_err(|e| format!("{e:?}"))?;
    Ok(Resp {
        status,
        version,
        headers,
        body,
    })
}

/// Check that `resp` is one of bcgate's own errors (docs/errors.md): the status,
/// a JSON body with `status`, `title`, `type`, `detail`, `code`, `request_id`,
/// and an `X-Request-Id` header equal to `request_id`. Returns the body.
pub fn assert_problem(resp: &Resp, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(
        resp.status,
        status,
        "expected {status} {code}, got {}: {}",
        resp.status,
        resp.text()
    );
    let ct = resp.header("content-type").unwrap_or_default();
    assert!(
        ct.contains("json"),
        "{status} {code}: content-type should be JSON, got {ct:?}"
    );
    let body = resp.json();
    check_problem_body(&body, status, code);
    let request_id = body["request_id"].as_str().unwrap_or_default();
    assert_eq!(
        resp.header("x-request-id"),
        Some(request_id),
        "X-Request-Id header should equal the body's request_id"
    );
    body
}

/// The body checks of [`assert_problem`], for responses read another way.
pub fn check_problem_body(body: &serde_json::Value, status: u16, code: &str) {
    assert_eq!(
        body["status"],
        serde_json::json!(status),
        "status field: {body}"
    );
    assert_eq!(body["code"], serde_json::json!(code), "code field: {body}");
    for field in ["title", "type", "detail", "request_id"] {
        assert!(
            body[field].as_str().is_some_and(|s| !s.is_empty()),
            "`{field}` should be a non-empty string: {body}"
        );
    }
}

/// Deterministic pseudo-random bytes (xorshift), for large bodies that do not compress.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// The value of the sample of `name` whose labels include all of `labels`
/// (summed over the samples that match, so a subset selects a family).
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut total = 0.0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric_name, label_text) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric_name != name {
            continue;
        }
        let have: Vec<(&str, &str)> = label_text
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k, v.trim_matches('"')))
            .collect();
        if labels.iter().all(|want| have.contains(want)) {
            total += value.parse::<f64>().unwrap_or(0.0);
        }
    }
    total
}

/// Held by the tests that need the machine to themselves (thousands of
/// sockets, a saturated bcgate): all the integration tests share one process,
/// so two of those at once would share its descriptors and the CPU.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static EXCLUSIVE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    EXCLUSIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Set in a child started by [`run_in_child`].
const CHILD_ENV: &str = "BCGATE_TEST_CHILD";

/// Whether this process is a child started by [`run_in_child`]: an ignored
/// test that is only the child's body returns at once without it.
pub fn in_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Runs the ignored test `name` (its full path, e.g. `load::idle_child`) in
/// a child process of this test binary and fails if it fails. The child has
/// its own descriptor table and memory, so a test that counts or exhausts
/// this process's descriptors is not disturbed by (and does not disturb) the
/// tests running beside it. Its output is printed here (`--nocapture` shows it).
pub fn run_in_child(name: &str) {
    let exe = std::env::current_exe().expect("the test binary");
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, "1");
    let out = process::run_with_timeout(cmd, Duration::from_secs(600));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "{name} failed in its child process ({})",
        out.status
    );
    assert!(
        stdout.contains("1 passed"),
        "{name} did not run in its child process"
    );
}

/// A secret as it could leak: raw, base64 (standard and URL-safe, padded or
/// not) and percent-encoded.
pub fn secret_forms(secret: &str) -> Vec<String> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut forms = vec![secret.to_owned()];
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        forms.push(engine.encode(secret));
    }
    forms.push(
        percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
    );
    forms.sort();
    forms.dedup();
    forms
}
