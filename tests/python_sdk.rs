//! The real python `bigcommerce` SDK (PyPI) against bcgate's HTTPS listener,
//! set up exactly as docs/sdks.md says: the certificate made by its openssl
//! recipe, its `[server]` block, its `export` lines, and its python recipe
//! (which `tests/python/sdk_check.py` holds verbatim). The SDK hard-codes
//! `https://`, sends `X-Auth-Client` and reads all four `X-Rate-Limit-*`
//! headers. Also: deploy/k8s-sidecar.yaml hands the app what the recipes read.
//!
//! The SDK lives in the venv scripts/install-test-deps makes under
//! target/sdk; without it the SDK test is skipped, except under `CI=true`,
//! where it fails.

mod sdk;
mod support;

use support::process::temp_dir;
use support::{Bcgate, MockBigCommerce, TestCa, key_sha256};

const HASH: &str = "abc123";
const TOKEN: &str = "bc-store-token-py-Lk9Jh7Gf5Ds3";
const KEY: &str = "bcg-key-python-sdk-Po0Iu9Yt8Re7";

#[test]
fn python_recipe_in_the_docs_is_what_sdk_check_runs() {
    assert_eq!(
        sdk::recipe("python"),
        sdk::marked_region("tests/python/sdk_check.py", "python"),
        "docs/sdks.md's python recipe and tests/python/sdk_check.py's recipe lines differ"
    );
}

#[test]
fn python_bigcommerce_sdk_through_bcgate_https() {
    let Some(python) = sdk::required("the python bigcommerce SDK", sdk::python()) else {
        return;
    };
    let Some(()) = sdk::required("openssl", sdk::openssl()) else {
        return;
    };

    let upstream_ca = TestCa::new();
    let mock = MockBigCommerce::start(&upstream_ca, &[(HASH, TOKEN)]);
    let dir = temp_dir();
    upstream_ca.write_ca_as(dir.path(), "upstream-ca.pem");
    sdk::make_cert(dir.path());
    let cert_dir = dir.path().to_path_buf();
    // No [[routes]]: the v2 catalog that Products.all() calls is in the table.
    let config = format!(
        r#"{server}max_body_bytes = 20971520

[upstream]
base_url = "{base}"
ca_file = "upstream-ca.pem"
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
"#,
        server = sdk::server_section(),
        base = mock.base_url(),
        digest = key_sha256(KEY),
    );
    let gate = Bcgate::start_in(dir, &config, &[("BC_TOKEN_ABC123", TOKEN)]);
    assert_eq!(gate.scheme, "https");

    let script = format!(
        "{}exec \"$PYTHON\" \"$SDK_CHECK\"\n",
        sdk::env_recipe("python-env", gate.addr.port())
    );
    let check = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sdk_check.py");
    let out = sdk::run_shell(
        &cert_dir,
        &script,
        &[
            ("PYTHON", &python.display().to_string()),
            ("SDK_CHECK", check),
            ("BCGATE_KEY", KEY),
            ("BC_STORE_HASH", HASH),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "sdk_check.py failed ({:?})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n--- bcgate ---\n{}",
        out.status,
        gate.logs()
    );
    let result = sdk::last_json(&out);
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
