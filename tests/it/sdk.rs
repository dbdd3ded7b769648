//! What the SDK tests share: the recipes of docs/sdks.md, the SDKs that
//! scripts/install-test-deps puts under target/sdk, and the rule that a
//! missing SDK skips the test locally but fails it under `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::process::{run_with_timeout, scrub_env, temp_dir, try_run_with_timeout};
use crate::support::{Bcgate, MockBigCommerce, TestCa, key_sha256};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Where install-test-deps puts the SDKs.
pub fn sdk_dir() -> PathBuf {
    Path::new(ROOT).join("target/sdk")
}

/// The fenced block after `<!-- recipe: NAME -->` in docs/sdks.md.
pub fn recipe(name: &str) -> String {
    let path = Path::new(ROOT).join("docs/sdks.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let marker = format!("<!-- recipe: {name} -->");
    let (_, after) = doc
        .split_once(&marker)
        .unwrap_or_else(|| panic!("docs/sdks.md has no {marker}"));
    let mut lines = after.lines().skip_while(|l| l.trim().is_empty());
    let fence = lines.next().unwrap_or_default();
    assert!(
        fence.starts_with("```"),
        "{marker} is not followed by a fenced block: {fence:?}"
    );
    let body: Vec<&str> = lines.take_while(|l| !l.starts_with("```")).collect();
    body.join("\n") + "\n"
}

/// The lines of `file` (relative to the repository) between a line ending in
/// `recipe: NAME` and the next line ending in `end recipe`, dedented.
pub fn marked_region(file: &str, name: &str) -> String {
    let path = Path::new(ROOT).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let start = format!("recipe: {name}");
    let mut lines = text.lines();
    assert!(
        lines.any(|l| l.trim_end().ends_with(&start)),
        "{file} has no `{start}` marker"
    );
    let body: Vec<&str> = lines
        .take_while(|l| !l.trim_end().ends_with("end recipe"))
        .collect();
    let indent = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let dedented: Vec<&str> = body
        .iter()
        .map(|l| if l.len() >= indent { &l[indent..] } else { "" })
        .collect();
    dedented.join("\n") + "\n"
}

/// `export NAME=VALUE` lines of a shell recipe, comments dropped.
pub fn exports(block: &str) -> Vec<(String, String)> {
    block
        .lines()
        .filter_map(|l| l.trim().strip_prefix("export "))
        .flat_map(|rest| {
            let rest = rest.split(" #").next().unwrap_or_default();
            rest.split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Ok, or skip (`None`) with a note, or, under `CI=true`, fail.
pub fn required<T>(what: &str, found: Result<T, String>) -> Option<T> {
    match found {
        Ok(v) => Some(v),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{what} is required under CI=true (scripts/install-test-deps): {why}")
        }
        Err(why) => {
            println!("skipping: {what} not installed (scripts/install-test-deps): {why}");
            None
        }
    }
}

/// The venv's python, if it can import the SDK.
pub fn python() -> Result<PathBuf, String> {
    let python = sdk_dir().join("python/bin/python");
    let mut cmd = Command::new(&python);
    cmd.args(["-c", "import bigcommerce"]);
    scrub_env(&mut cmd);
    let out = try_run_with_timeout(cmd, Duration::from_secs(30))
        .map_err(|e| format!("{}: {e}", python.display()))?;
    if out.status.success() {
        Ok(python)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The node_modules holding node-bigcommerce, if node can load it from there.
pub fn node_modules() -> Result<PathBuf, String> {
    let modules = sdk_dir().join("node/node_modules");
    let mut cmd = Command::new("node");
    cmd.args(["-e", "require('node-bigcommerce')"])
        .env("NODE_PATH", &modules);
    scrub_env(&mut cmd);
    let out =
        try_run_with_timeout(cmd, Duration::from_secs(30)).map_err(|e| format!("node: {e}"))?;
    if out.status.success() {
        Ok(modules)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// openssl, for the certificate recipe.
pub fn openssl() -> Result<(), String> {
    let mut cmd = Command::new("openssl");
    cmd.arg("version");
    let out = try_run_with_timeout(cmd, Duration::from_secs(30)).map_err(|e| e.to_string())?;
    out.status
        .success()
        .then_some(())
        .ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Runs docs/sdks.md's certificate recipe in `dir`: `ca.pem`, `ca.key`,
/// `bcgate.pem`, `bcgate.key`.
pub fn make_cert(dir: &Path) {
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", &recipe("make-cert")])
        .current_dir(dir);
    let out = run_with_timeout(cmd, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "the make-cert recipe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in ["ca.pem", "ca.key", "bcgate.pem", "bcgate.key"] {
        assert!(
            dir.join(file).is_file(),
            "the make-cert recipe made no {file}"
        );
    }
}

/// docs/sdks.md's `[server]` recipe, listening on a free port instead.
pub fn server_section() -> String {
    let block = recipe("server-tls");
    assert!(block.contains("listen = \"127.0.0.1:8443\""), "{block}");
    block.replace("127.0.0.1:8443", "127.0.0.1:0")
}

/// A shell recipe of `export` lines for bcgate on `port` instead of 8443.
pub fn env_recipe(name: &str, port: u16) -> String {
    let block = recipe(name);
    assert!(block.contains("127.0.0.1:8443"), "{block}");
    block.replace("127.0.0.1:8443", &format!("127.0.0.1:{port}"))
}

/// Runs `script` (a shell recipe followed by the command to run) with bash in
/// `dir`, with `env` set on top of a scrubbed environment.
pub fn run_shell(dir: &Path, script: &str, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", script])
        .current_dir(dir);
    scrub_env(&mut cmd);
    // The machine's own trust settings must not make a recipe pass.
    for var in [
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "NODE_EXTRA_CA_CERTS",
        "BC_API_ENDPOINT",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_PROXY", "*").env("PYTHONDONTWRITEBYTECODE", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_timeout(cmd, Duration::from_secs(90))
}

/// The JSON object on the last line of a script's stdout.
pub fn last_json(out: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {stdout}"))
}

/// bcgate serving HTTPS as docs/sdks.md's `[server]` block says (with the
/// certificate its openssl recipe makes), in front of a mock BigCommerce with
/// store `hash` (alias `eu`), for one client `name` holding `key` with
/// read-only products and orders. Returns the mock, bcgate and the folder
/// holding the certificate files.
pub fn start_behind_tls(
    hash: &str,
    token: &str,
    name: &str,
    key: &str,
) -> (MockBigCommerce, Bcgate, PathBuf) {
    let upstream_ca = TestCa::new();
    let mock = MockBigCommerce::start(&upstream_ca, &[(hash, token)]);
    let dir = temp_dir();
    upstream_ca.write_ca_as(dir.path(), "upstream-ca.pem");
    make_cert(dir.path());
    let cert_dir = dir.path().to_path_buf();
    // No [[routes]]: the v2 catalog the SDKs call is in the table.
    let config = format!(
        r#"{server}max_body_bytes = 20971520

[upstream]
base_url = "{base}"
ca_file = "upstream-ca.pem"
connect_timeout_ms = 5000
request_timeout_ms = 60000

[[stores]]
hash = "{hash}"
alias = "eu"
token_env = "BC_TOKEN_ABC123"

[[clients]]
name = "{name}"
key_sha256 = "{digest}"
stores = ["{hash}"]
scopes = ["store_v2_products_read_only", "store_v2_orders_read_only"]
"#,
        server = server_section(),
        base = mock.base_url(),
        digest = key_sha256(key),
    );
    let gate = Bcgate::start_in(dir, &config, &[("BC_TOKEN_ABC123", token)]);
    assert_eq!(gate.scheme, "https");
    (mock, gate, cert_dir)
}

/// Runs an SDK check `script` (a shell recipe, then the command) in `dir`
/// with `env`; asserts it succeeded and returns the JSON object it printed last.
pub fn run_check(
    gate: &Bcgate,
    dir: &Path,
    script: &str,
    env: &[(&str, &str)],
    what: &str,
) -> serde_json::Value {
    let out = run_shell(dir, script, env);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({:?})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n--- bcgate ---\n{}",
        out.status,
        gate.logs()
    );
    let result = last_json(&out);
    println!(
        "{}",
        serde_json::to_string_pretty(&result).unwrap_or_default()
    );
    result
}
