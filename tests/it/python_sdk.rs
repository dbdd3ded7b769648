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

use crate::sdk;

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

    let (mock, gate, cert_dir) = sdk::start_behind_tls(HASH, TOKEN, "python-sdk", KEY);

    let script = format!(
        "{}exec \"$PYTHON\" \"$SDK_CHECK\"\n",
        sdk::env_recipe("python-env", gate.addr.port())
    );
    let check = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sdk_check.py");
    let result = sdk::run_check(
        &gate,
        &cert_dir,
        &script,
        &[
            ("PYTHON", &python.display().to_string()),
            ("SDK_CHECK", check),
            ("BCGATE_KEY", KEY),
            ("BC_STORE_HASH", HASH),
        ],
        "sdk_check.py",
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
    let denied = result["denied_product"].as_str().unwrap_or_default();
    assert!(denied.contains("403"), "{denied}");
    assert!(
        denied.contains("lacks store_v2_products for POST /v2/products"),
        "{denied}"
    );

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
        "the denied POSTs never reached the upstream"
    );
    for rec in &recs {
        assert_eq!(rec.method, "GET");
        assert_eq!(rec.tokens(), vec![TOKEN.to_owned()], "{}", rec.uri);
        assert!(!rec.has_header("x-auth-client"), "{}", rec.uri);
        assert_eq!(rec.host(), Some(mock.addr.to_string()), "{}", rec.uri);
    }
    gate.assert_logs_free_of(&[TOKEN, KEY]);
}

/// The sidecar example hands the app exactly the variables docs/sdks.md's
/// python and node recipes read, pointing at bcgate's HTTPS listener as the
/// ConfigMap configures it, with the CA the certificate recipe makes.
#[test]
fn k8s_sidecar_hands_the_app_what_the_sdk_recipes_read() {
    use serde::Deserialize as _;
    use serde_json::Value;
    use std::collections::{BTreeMap, BTreeSet};

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/k8s-sidecar.yaml");
    let text = std::fs::read_to_string(path).expect("read the yaml");
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("a YAML document"))
        .collect();
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let named = |list: &Value, name: &str| -> Value {
        list.as_array()
            .and_then(|l| l.iter().find(|c| c["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no {name:?} in {list}"))
    };
    let bcgate = named(&pod["initContainers"], "bcgate");
    let app = named(&pod["containers"], "app");
    // The volume mounted in `container` holding `file`, and the file's name in it.
    let volume_of = |container: &Value, file: &str| -> (Value, String) {
        let (dir, name) = file.rsplit_once('/').expect("an absolute path");
        let mount = container["volumeMounts"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["mountPath"] == dir))
            .unwrap_or_else(|| panic!("{} mounts nothing at {dir}", container["name"]));
        let volume = named(&pod["volumes"], mount["name"].as_str().unwrap_or_default());
        (volume, name.to_owned())
    };

    // bcgate's config: the ConfigMap file its --config names.
    let args: Vec<&str> = bcgate["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let config_path = args
        .iter()
        .position(|a| *a == "--config")
        .and_then(|i| args.get(i + 1))
        .expect("--config PATH");
    let (volume, file) = volume_of(&bcgate, config_path);
    let map_name = volume["configMap"]["name"].as_str().expect("a ConfigMap");
    let map = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == map_name)
        .expect("the config's ConfigMap");
    let toml = map["data"][file.as_str()]
        .as_str()
        .expect("the config file");
    let config: Value = config::Config::builder()
        .add_source(config::File::from_str(toml, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .expect("the ConfigMap's bcgate.toml parses");
    let listen = config["server"]["listen"].as_str().expect("server.listen");
    // TLS from the Secret `kubectl create secret tls` makes (tls.crt, tls.key).
    let mut tls_secrets = BTreeSet::new();
    for (key, want) in [("cert", "tls.crt"), ("key", "tls.key")] {
        let file = config["server"]["tls"][key]
            .as_str()
            .unwrap_or_else(|| panic!("server.tls.{key}: bcgate must serve HTTPS"));
        let (volume, name) = volume_of(&bcgate, file);
        assert_eq!(name, want);
        tls_secrets.insert(volume["secret"]["secretName"].as_str().map(str::to_owned));
    }
    assert_eq!(tls_secrets.len(), 1, "cert and key from one Secret");

    // The app's environment: the recipes' variables, and nothing of the old
    // plain-http BIGCOMMERCE_API_URL kind.
    let env: BTreeMap<String, Value> = app["env"]
        .as_array()
        .expect("app env")
        .iter()
        .map(|e| (e["name"].as_str().expect("name").to_owned(), e.clone()))
        .collect();
    let value = |name: &str| -> String {
        env.get(name)
            .and_then(|e| e["value"].as_str())
            .unwrap_or_else(|| panic!("app env {name} has no plain value"))
            .to_owned()
    };
    let mut recipe_vars = BTreeMap::new();
    for block in ["python-env", "node-env"] {
        recipe_vars.extend(sdk::exports(&sdk::recipe(block)));
    }
    let mut want: BTreeSet<&str> = recipe_vars.keys().map(String::as_str).collect();
    want.extend(["BC_STORE_HASH", "BCGATE_KEY"]);
    let have: BTreeSet<&str> = env.keys().map(String::as_str).collect();
    assert_eq!(
        have, want,
        "the app's env and docs/sdks.md's recipes differ"
    );
    for name in ["BC_API_ENDPOINT", "BCGATE_ADDR"] {
        assert_eq!(value(name), listen, "{name} is bcgate's listener");
        assert_eq!(recipe_vars[name], listen, "docs/sdks.md's {name}");
    }
    let ca = value("REQUESTS_CA_BUNDLE");
    assert_eq!(value("BCGATE_CA_FILE"), ca);
    let (volume, name) = volume_of(&app, &ca);
    assert!(
        sdk::recipe("make-cert").contains(&format!("-out {name}")),
        "the app trusts {name}, which the certificate recipe makes"
    );
    assert!(
        volume["configMap"]["name"].is_string(),
        "the CA is public: a ConfigMap, {volume}"
    );
    for e in env.values() {
        let v = e["value"].as_str().unwrap_or_default();
        assert!(!v.starts_with("http://"), "the SDKs speak only HTTPS: {e}");
    }
    // The store is one bcgate serves; the key comes from a Secret.
    let store = value("BC_STORE_HASH");
    let stores = config["stores"].as_array().expect("stores");
    assert!(
        stores
            .iter()
            .any(|s| s["hash"] == store.as_str() || s["alias"] == store.as_str()),
        "{store}"
    );
    assert!(env["BCGATE_KEY"]["valueFrom"]["secretKeyRef"]["name"].is_string());
    // The app mounts no Secret: neither the store token nor bcgate's key.
    for mount in app["volumeMounts"].as_array().into_iter().flatten() {
        let volume = named(&pod["volumes"], mount["name"].as_str().unwrap_or_default());
        assert!(
            volume["secret"].is_null(),
            "the app mounts a Secret: {volume}"
        );
    }
}
