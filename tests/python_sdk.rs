//! The real python `bigcommerce` SDK (PyPI) against bcgate's HTTPS listener:
//! it hard-codes `https://`, sends `X-Auth-Client` and reads all four
//! `X-Rate-Limit-*` headers. Runs `tests/python/sdk_check.py`.
//!
//! Without the SDK installed the test is skipped, except under `CI=true`,
//! where it fails.

mod support;

use std::process::Command;
use std::time::Duration;

use support::process::{run_with_timeout, scrub_env, temp_dir, try_run_with_timeout};
use support::{Bcgate, MockBigCommerce, TestCa, key_sha256};

const HASH: &str = "abc123";
const TOKEN: &str = "bc-store-token-py-Lk9Jh7Gf5Ds3";
const KEY: &str = "bcg-key-python-sdk-Po0Iu9Yt8Re7";

fn sdk_available() -> Result<(), String> {
    let mut cmd = Command::new("python3");
    cmd.args(["-c", "import bigcommerce"]);
    scrub_env(&mut cmd);
    let out = try_run_with_timeout(cmd, Duration::from_secs(30))
        .map_err(|e| format!("python3 could not be run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn python_bigcommerce_sdk_through_bcgate_https() {
    if let Err(why) = sdk_available() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "the python bigcommerce SDK is required under CI=true \
                 (pip install bigcommerce): {why}"
            );
        }
        println!("skipping: python bigcommerce SDK not installed (pip install bigcommerce)");
        return;
    }

    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(HASH, TOKEN)]);
    let dir = temp_dir();
    let ca_path = ca.write_to(dir.path());
    ca.write_leaf(dir.path(), "server", &["localhost", "127.0.0.1"]);
    let config = format!(
        r#"[server]
listen = "127.0.0.1:0"
tls = {{ cert = "server.pem", key = "server.key" }}
max_body_bytes = 20971520

[upstream]
base_url = "{base}"
ca_file = "ca.pem"
connect_timeout_ms = 5000
request_timeout_ms = 60000

[[stores]]
hash = "{HASH}"
alias = "eu"
token_env = "BC_TOKEN_ABC123"

[[clients]]
name = "python-sdk"
key_sha256 = "{digest}"
stores = ["{HASH}"]
scopes = ["store_v2_products_read_only", "store_v2_orders_read_only"]

# The legacy v2 catalog is not in BigCommerce's current specs; map it.
[[routes]]
method = "GET"
path = "/v2/products"
scope = "store_v2_products_read_only"
"#,
        base = mock.base_url(),
        digest = key_sha256(KEY),
    );
    let gate = Bcgate::start_in(dir, &config, &[("BC_TOKEN_ABC123", TOKEN)]);
    assert_eq!(gate.scheme, "https");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sdk_check.py");
    let host = format!("127.0.0.1:{}", gate.addr.port());
    let mut cmd = Command::new("python3");
    cmd.arg(script);
    scrub_env(&mut cmd);
    cmd.env("BCGATE_HOST", &host)
        .env("BCGATE_KEY", KEY)
        .env("BC_STORE_HASH", HASH)
        .env("REQUESTS_CA_BUNDLE", &ca_path)
        .env_remove("CURL_CA_BUNDLE")
        .env_remove("BC_API_ENDPOINT")
        .env("NO_PROXY", "*")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let out = run_with_timeout(cmd, Duration::from_secs(90));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "sdk_check.py failed ({:?})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n--- bcgate ---\n{}",
        out.status,
        gate.logs()
    );
    let last = stdout.lines().last().unwrap_or_default();
    let result: serde_json::Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("last line is not JSON ({e}): {stdout}"));
    println!(
        "{}",
        serde_json::to_string_pretty(&result).unwrap_or_default()
    );

    // What the SDK got back is the mock's answer, through bcgate.
    assert_eq!(
        result["products"]["data"]["path"],
        "/stores/abc123/v2/products"
    );
    assert_eq!(
        result["order"]["data"]["path"],
        "/stores/abc123/v2/orders/1"
    );
    assert_eq!(
        result["v3"]["data"]["path"],
        "/stores/abc123/v3/catalog/products"
    );
    // The SDK read all four X-Rate-Limit-* headers.
    assert_eq!(result["rate_limit"]["requests_quota"], 150);
    assert_eq!(result["rate_limit"]["window_size_ms"], 30000);
    assert!(result["rate_limit"]["requests_remaining"].is_u64());
    assert!(result["rate_limit"]["ms_until_reset"].is_u64());
    // A write with a read-only key: bcgate's error reads well in the SDK's exception.
    let denied = result["denied"].as_str().unwrap_or_default();
    assert!(denied.contains("403"), "{denied}");
    assert!(denied.contains("scope_denied"), "{denied}");
    assert!(!denied.contains(TOKEN) && !denied.contains(KEY), "{denied}");

    // What the mock received: the store token, never the SDK's credentials.
    let recs = mock.requests();
    let uris: Vec<&str> = recs.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(
        uris,
        vec![
            "/stores/abc123/v2/products?limit=2",
            "/stores/abc123/v2/orders/1",
            "/stores/abc123/v3/catalog/products?limit=1",
        ],
        "the denied POST never reached the upstream"
    );
    for rec in &recs {
        assert_eq!(rec.method, "GET");
        assert_eq!(rec.tokens(), vec![TOKEN.to_owned()], "{}", rec.uri);
        assert!(!rec.has_header("x-auth-client"), "{}", rec.uri);
        assert_eq!(rec.host(), Some(mock.addr.to_string()), "{}", rec.uri);
    }
    gate.assert_logs_free_of(&[TOKEN, KEY]);
}
