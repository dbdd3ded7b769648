//! The real node-bigcommerce (npm) against bcgate's HTTPS listener, set up
//! exactly as docs/sdks.md says: the certificate made by its openssl recipe,
//! its `[server]` block, its `export` lines, and its node recipe (an
//! `https.Agent` whose `createConnection` dials bcgate, since the SDK
//! hard-codes api.bigcommerce.com:443), which `tests/node/sdk_check.js` holds
//! verbatim.
//!
//! The SDK lives in the node_modules scripts/install-test-deps makes under
//! target/sdk/node; without it the SDK test is skipped, except under
//! `CI=true`, where it fails.

use crate::sdk;
use crate::support;

use support::process::temp_dir;
use support::{Bcgate, MockBigCommerce, TestCa, key_sha256};

const HASH: &str = "abc123";
const TOKEN: &str = "bc-store-token-node-Qa2Ws3Ed4Rf5";
const KEY: &str = "bcg-key-node-sdk-Tg6Yh7Uj8Ik9";

#[test]
fn node_recipe_in_the_docs_is_what_sdk_check_runs() {
    assert_eq!(
        sdk::recipe("node"),
        sdk::marked_region("tests/node/sdk_check.js", "node"),
        "docs/sdks.md's node recipe and tests/node/sdk_check.js's recipe lines differ"
    );
}

#[test]
fn node_bigcommerce_through_bcgate_https() {
    let Some(modules) = sdk::required("node-bigcommerce", sdk::node_modules()) else {
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
    let config = format!(
        r#"{server}
[upstream]
base_url = "{base}"
ca_file = "upstream-ca.pem"
connect_timeout_ms = 5000
request_timeout_ms = 60000

[[stores]]
hash = "{HASH}"
token_env = "BC_TOKEN_ABC123"

[[clients]]
name = "node-sdk"
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
        "{}exec node \"$SDK_CHECK\"\n",
        sdk::env_recipe("node-env", gate.addr.port())
    );
    let check = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node/sdk_check.js");
    let out = sdk::run_shell(
        &cert_dir,
        &script,
        &[
            ("NODE_PATH", &modules.display().to_string()),
            ("SDK_CHECK", check),
            ("BCGATE_KEY", KEY),
            ("BC_STORE_HASH", HASH),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "sdk_check.js failed ({:?})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n--- bcgate ---\n{}",
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
        "/stores/abc123/v3/catalog/products"
    );
    assert_eq!(
        result["order"]["data"]["path"],
        "/stores/abc123/v2/orders/1"
    );
    // A write with a read-only key: the SDK rejects with bcgate's problem details.
    assert_eq!(result["denied"]["code"], 403, "{result}");
    let message = result["denied"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("scope_denied"), "{message}");
    assert!(
        !message.contains(TOKEN) && !message.contains(KEY),
        "{message}"
    );

    // What the mock received: the store token, never the SDK's credentials;
    // bcgate's own upstream host, not the api.bigcommerce.com the SDK named.
    let recs = mock.requests();
    let uris: Vec<&str> = recs.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(
        uris,
        vec![
            "/stores/abc123/v3/catalog/products?limit=1",
            "/stores/abc123/v2/orders/1",
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
