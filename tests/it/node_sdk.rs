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

    let (mock, gate, cert_dir) = sdk::start_behind_tls(HASH, TOKEN, "node-sdk", KEY);

    let script = format!(
        "{}exec node \"$SDK_CHECK\"\n",
        sdk::env_recipe("node-env", gate.addr.port())
    );
    let check = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node/sdk_check.js");
    let result = sdk::run_check(
        &gate,
        &cert_dir,
        &script,
        &[
            ("NODE_PATH", &modules.display().to_string()),
            ("SDK_CHECK", check),
            ("BCGATE_KEY", KEY),
            ("BC_STORE_HASH", HASH),
        ],
        "sdk_check.js",
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
