//! The command line: `check`, `keygen`, `explain`, `routes`, and
//! `run` refusing a bad config.

use crate::support;

use std::path::PathBuf;
use std::process::Output;

use support::{Bcgate, key_sha256};

const CONFIG_NAME: &str = "cli-check.toml";
const TOKEN: &str = "bc-store-token-cli-Wq4Rt7Yu1Io3";
const KEY: &str = "bcg-key-cli-inventory-Zx8Cv5Bn2Ml6";

fn good_config() -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
max_body_bytes = 20971520

[upstream]
base_url = "https://api.bigcommerce.com"
connect_timeout_ms = 5000
request_timeout_ms = 60000

[[stores]]
hash = "abc123"
alias = "eu"
token_env = "BC_TOKEN_ABC123"
scopes = ["store_v2_products", "store_v2_orders_read_only"]

[[clients]]
name = "inventory-sync"
key_sha256 = "{}"
stores = ["abc123"]
default_store = "abc123"
scopes = ["store_v2_products_read_only"]

[[routes]]
method = "GET"
path = "/v3/some/new/endpoint/{{id}}"
scope = "store_v2_products"
"#,
        key_sha256(KEY)
    )
}

struct Cfg {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn write_config(text: &str) -> Cfg {
    let dir = support::process::temp_dir();
    let path = dir.path().join(CONFIG_NAME);
    std::fs::write(&path, text).expect("write config");
    Cfg { _dir: dir, path }
}

fn combined(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn check(text: &str) -> Output {
    let cfg = write_config(text);
    let path = cfg.path.to_str().expect("utf-8 temp path").to_owned();
    Bcgate::run_cli(&["check", "--config", &path], &[("BC_TOKEN_ABC123", TOKEN)])
}

#[test]
fn check_accepts_a_good_config_and_prints_stores_and_clients() {
    let out = check(&good_config());
    let text = combined(&out);
    assert!(
        out.status.success(),
        "check failed on a good config:\n{text}"
    );
    assert!(text.contains("abc123"), "check prints the stores:\n{text}");
    assert!(
        text.contains("inventory-sync"),
        "check prints the clients:\n{text}"
    );
    assert!(
        text.contains("store_v2_products_read_only"),
        "check prints the scopes:\n{text}"
    );
    assert!(!text.contains(TOKEN), "check must not print the token");
}

#[test]
fn check_also_reads_bcgate_config_from_the_environment() {
    let cfg = write_config(&good_config());
    let path = cfg.path.to_str().expect("utf-8 temp path").to_owned();
    let out = Bcgate::run_cli(
        &["check"],
        &[("BCGATE_CONFIG", &path), ("BC_TOKEN_ABC123", TOKEN)],
    );
    assert!(out.status.success(), "{}", combined(&out));
}

#[test]
fn check_names_the_unknown_key_and_the_file() {
    let good = good_config();
    let cases = [
        (
            "bogus_option",
            good.replace(
                "max_body_bytes = 20971520",
                "max_body_bytes = 20971520\nbogus_option = 1",
            ),
        ),
        (
            "colour",
            good.replace(
                "name = \"inventory-sync\"",
                "name = \"inventory-sync\"\ncolour = \"blue\"",
            ),
        ),
        (
            "token_environment",
            good.replace("token_env =", "token_environment ="),
        ),
        ("serverr", format!("{good}\n[serverr]\nlisten = \"x\"\n")),
    ];
    for (key, text) in cases {
        let out = check(&text);
        let output = combined(&out);
        assert!(!out.status.success(), "{key}: check must fail:\n{output}");
        assert!(
            output.contains(key),
            "{key}: the error names the key:\n{output}"
        );
        assert!(
            output.contains(CONFIG_NAME),
            "{key}: the error names the file:\n{output}"
        );
    }
}

#[test]
fn check_names_the_key_with_a_bad_value() {
    let good = good_config();
    let cases = [
        (
            "max_body_bytes",
            good.replace("max_body_bytes = 20971520", "max_body_bytes = \"lots\""),
        ),
        (
            "listen",
            good.replace("listen = \"127.0.0.1:0\"", "listen = \"not an address\""),
        ),
        (
            "key_sha256",
            good.replace(&key_sha256(KEY), "not-a-sha256-digest"),
        ),
        (
            "store_v2_productz",
            good.replace(
                "scopes = [\"store_v2_products_read_only\"]",
                "scopes = [\"store_v2_productz\"]",
            ),
        ),
        (
            "nowhere",
            good.replace("stores = [\"abc123\"]", "stores = [\"nowhere\"]"),
        ),
    ];
    for (needle, text) in cases {
        let out = check(&text);
        let output = combined(&out);
        assert!(
            !out.status.success(),
            "{needle}: check must fail:\n{output}"
        );
        assert!(
            output.contains(needle),
            "{needle}: the error names it:\n{output}"
        );
        assert!(
            output.contains(CONFIG_NAME),
            "{needle}: the error names the file:\n{output}"
        );
    }
}

#[test]
fn run_refuses_a_bad_config() {
    let dir = support::process::temp_dir();
    let text = good_config().replace(
        "max_body_bytes = 20971520",
        "max_body_bytes = 20971520\nbogus_option = 1",
    );
    match Bcgate::try_start_in(dir, &text, &[("BC_TOKEN_ABC123", TOKEN)]) {
        Ok(gate) => panic!("bcgate served a config with an unknown key: {gate:?}"),
        Err(output) => assert!(output.contains("bogus_option"), "{output}"),
    }
}

#[test]
fn keygen_prints_a_key_and_its_sha256() {
    let out = Bcgate::run_cli(&["keygen"], &[]);
    let text = combined(&out);
    assert!(out.status.success(), "{text}");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // Format-agnostic: some printed word is a key whose SHA-256 hex is
    // another printed word.
    let words: Vec<String> = stdout
        .split(|c: char| c.is_whitespace() || c == '=' || c == ':' || c == ',')
        .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_owned())
        .filter(|w| !w.is_empty())
        .collect();
    let digests: Vec<&String> = words
        .iter()
        .filter(|w| w.len() == 64 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .collect();
    assert!(!digests.is_empty(), "keygen prints a key_sha256:\n{stdout}");
    assert!(
        stdout.contains("key_sha256"),
        "names the key_sha256 line:\n{stdout}"
    );
    let key = words
        .iter()
        .find(|w| digests.iter().any(|d| **d == key_sha256(w)))
        .unwrap_or_else(|| panic!("no printed key matches a printed key_sha256:\n{stdout}"))
        .clone();
    assert!(
        key.len() >= 32,
        "a key should carry enough entropy: {key:?}"
    );
    assert_eq!(
        digests
            .iter()
            .find(|d| **d == &key_sha256(&key))
            .map(|d| d.to_ascii_lowercase()),
        Some(key_sha256(&key)),
        "key_sha256 is lower-case hex"
    );

    let again = Bcgate::run_cli(&["keygen"], &[]);
    assert!(
        !String::from_utf8_lossy(&again.stdout).contains(&key),
        "keygen must print a new key each time"
    );
}

#[test]
fn explain_names_the_route_the_scopes_and_the_verdict_for_a_client() {
    let cfg = write_config(&good_config());
    let path = cfg.path.to_str().expect("utf-8 temp path").to_owned();
    let env = [("BCGATE_CONFIG", path.as_str()), ("BC_TOKEN_ABC123", TOKEN)];

    let out = Bcgate::run_cli(
        &[
            "explain",
            "GET",
            "/v3/catalog/products",
            "--client",
            "inventory-sync",
        ],
        &env,
    );
    let text = combined(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("/v3/catalog/products"), "{text}");
    assert!(text.contains("store_v2_products_read_only"), "{text}");
    assert!(text.contains("inventory-sync"), "{text}");

    let out = Bcgate::run_cli(
        &[
            "explain",
            "POST",
            "/v3/catalog/products",
            "--client",
            "inventory-sync",
        ],
        &env,
    );
    let text = combined(&out);
    assert!(text.contains("store_v2_products"), "{text}");

    let out = Bcgate::run_cli(&["explain", "GET", "/v3/carts/settings"], &env);
    let text = combined(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("store_v2_information"), "{text}");

    let out = Bcgate::run_cli(&["explain", "GET", "/stores/abc123/v2/orders.json"], &env);
    let text = combined(&out);
    assert!(text.contains("store_v2_orders"), "{text}");
    assert!(!text.contains(TOKEN));
}

#[test]
fn routes_prints_the_route_table() {
    let out = Bcgate::run_cli(&["routes"], &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", combined(&out));
    let rows = text.lines().filter(|l| l.contains("/v")).count();
    assert!(rows > 200, "expected hundreds of rows, got {rows}:\n{text}");
    let has_row = |method: &str, path: &str, scope: &str| {
        text.lines()
            .any(|l| l.contains(method) && l.contains(path) && l.contains(scope))
    };
    assert!(
        has_row("GET", "/v3/catalog/products", "store_v2_products_read_only"),
        "GET /v3/catalog/products row"
    );
    assert!(
        has_row(
            "POST",
            "/v3/pricing/products",
            "store_v2_products_read_only"
        ),
        "pricing is a read"
    );
    assert!(
        has_row("GET", "/v3/carts/settings", "store_v2_information"),
        "carts settings"
    );
    assert!(
        has_row("GET", "/v3/hooks", "default"),
        "webhooks need default"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.contains("/api/storefront/carts") && l.contains("store_")),
        "storefront routes carry no scope"
    );
    // The B2B Edition table follows under its own heading, with bcgate's paths.
    let api = text
        .lines()
        .position(|l| l == "# api.bigcommerce.com (/stores/{store}/…)")
        .unwrap_or_else(|| panic!("api heading:\n{text}"));
    let b2b = text
        .lines()
        .position(|l| l == "# api-b2b.bigcommerce.com (/stores/{store}/b2b/v3/io/…)")
        .unwrap_or_else(|| panic!("B2B heading:\n{text}"));
    assert!(api < b2b);
    let b2b_rows: Vec<&str> = text
        .lines()
        .skip(b2b + 1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(b2b_rows.len() > 100, "{b2b_rows:?}");
    let fields = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        b2b_rows
            .iter()
            .any(|l| fields(l) == "GET /b2b/v3/io/companies b2b:read | b2b:modify"),
        "GET companies: {b2b_rows:?}"
    );
    assert!(
        b2b_rows
            .iter()
            .any(|l| fields(l) == "POST /b2b/v3/io/companies b2b:modify"),
        "POST companies: {b2b_rows:?}"
    );
    assert!(
        b2b_rows.iter().all(|l| l.contains(" /b2b/v3/io/")),
        "every B2B row has bcgate's B2B path: {b2b_rows:?}"
    );
    assert!(text.contains("  b2b:read "), "b2b:read in the scope list");
    assert!(
        text.contains("  storefront:impersonate "),
        "storefront grants in the scope list"
    );
}

#[test]
fn keygen_json_prints_one_object_with_the_key_and_its_sha256() {
    let out = Bcgate::run_cli(&["keygen", "--json"], &[]);
    assert!(out.status.success(), "{}", combined(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(stdout.lines().count(), 1, "one line:\n{stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let key = v["key"].as_str().expect("key is a string");
    assert!(key.len() >= 32, "{key:?}");
    assert_eq!(v["key_sha256"], key_sha256(key), "{stdout}");
    assert_eq!(v.as_object().map(|o| o.len()), Some(2), "{stdout}");
}

/// Every subcommand and every argument the user can type has a help line.
#[test]
fn every_subcommand_and_argument_has_help() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") || arg.is_hide_set() {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} <{id}>"));
            }
        }
        for sub in cmd.get_subcommands() {
            let name = format!("{path} {}", sub.get_name());
            if sub.get_name() == "help" {
                continue;
            }
            if sub.get_about().is_none() && sub.get_long_about().is_none() {
                missing.push(name.clone());
            }
            walk(sub, &name, missing);
        }
    }
    let mut cmd = bcgate::cli::Cli::command();
    cmd.build();
    let mut missing = Vec::new();
    walk(&cmd, "bcgate", &mut missing);
    assert!(
        cmd.get_subcommands().count() >= 8,
        "the walk sees the subcommands"
    );
    assert!(missing.is_empty(), "no help text for: {missing:#?}");
}

/// `check` with the good config and `env` added.
fn check_with_env(env: &[(&str, &str)]) -> Output {
    let cfg = write_config(&good_config());
    let path = cfg.path.to_str().expect("utf-8 temp path").to_owned();
    let mut all = vec![("BC_TOKEN_ABC123", TOKEN)];
    all.extend_from_slice(env);
    Bcgate::run_cli(&["check", "--config", &path], &all)
}

#[test]
fn a_bad_environment_override_names_the_variable_not_the_file() {
    let cases = [
        (
            "BCGATE__SERVER__MAX_BODY_BYTES",
            "lots",
            "expected an integer",
        ),
        ("BCGATE__SERVER__LISTEN", "nowhere", "not ip:port"),
        ("BCGATE__SERVER__BOGUS_OPTION", "1", "unknown field"),
        ("BCGATE__SERVR__LISTEN", "127.0.0.1:0", "unknown field"),
        (
            "BCGATE__UPSTREAM__PAYMENTS_URL",
            "http://payments.example",
            "must be an https:// URL",
        ),
        (
            "BCGATE__UPSTREAM__B2B_URL",
            "https://b2b.example/?x=1",
            "must not have a query",
        ),
        (
            "BCGATE__MINT__RENEW_BEFORE_S",
            "86400",
            "must be less than mint.token_lifetime_s",
        ),
        (
            "BCGATE__MINT__TOKEN_LIFETIME_S",
            "lots",
            "expected an integer",
        ),
    ];
    for (var, value, why) in cases {
        let out = check_with_env(&[(var, value)]);
        let output = combined(&out);
        assert!(!out.status.success(), "{var}: check must fail:\n{output}");
        assert!(output.contains(var), "{var}: named:\n{output}");
        assert!(output.contains(why), "{var}: says why:\n{output}");
        assert!(
            !output.contains(CONFIG_NAME),
            "{var}: the file is not to blame:\n{output}"
        );
    }
    // An override that is fine does not take the blame for the file's error.
    let cfg =
        write_config(&good_config().replace("max_body_bytes = 20971520", "max_body_bytes = \"x\""));
    let path = cfg.path.to_str().expect("utf-8 temp path").to_owned();
    let out = Bcgate::run_cli(
        &["check", "--config", &path],
        &[
            ("BC_TOKEN_ABC123", TOKEN),
            ("BCGATE__SERVER__LISTEN", "127.0.0.1:0"),
        ],
    );
    let output = combined(&out);
    assert!(!out.status.success(), "{output}");
    assert!(output.contains(CONFIG_NAME), "{output}");
    assert!(!output.contains("BCGATE__SERVER__LISTEN"), "{output}");
}

#[test]
fn an_unknown_store_of_a_client_names_the_client_and_the_nearest_store() {
    let good = good_config();
    let typo = good.replace("stores = [\"abc123\"]", "stores = [\"abc124\"]");
    let out = check(&typo);
    let output = combined(&out);
    assert!(!out.status.success(), "{output}");
    assert!(output.contains("clients[0].stores[0]"), "{output}");
    assert!(
        output.contains("inventory-sync"),
        "names the client:\n{output}"
    );
    assert!(
        output.contains("did you mean \"abc123\"?"),
        "suggests the nearest store:\n{output}"
    );
    let default = good.replace("default_store = \"abc123\"", "default_store = \"eux\"");
    let output = combined(&check(&default));
    assert!(
        output.contains("inventory-sync") && output.contains("did you mean \"eu\"?"),
        "{output}"
    );
    // Nothing near: the configured names instead.
    let far = good.replace("stores = [\"abc123\"]", "stores = [\"zzzzzzzzzz\"]");
    let output = combined(&check(&far));
    assert!(
        output.contains("configured: \"abc123\", \"eu\""),
        "{output}"
    );
}

#[test]
fn check_prints_every_hosts_origin_channels_client_ids_and_accounts_never_a_secret() {
    const SECRET: &str = "bc-client-secret-cli-Rk9Ls2Vd";
    const ACCOUNT_TOKEN: &str = "bc-account-token-cli-Mw3Hq8Zt";
    const UUID: &str = "0b4c5d6e-1f2a-4b3c-8d9e-0a1b2c3d4e5f";
    let text = good_config()
        .replace(
            "request_timeout_ms = 60000\n",
            "request_timeout_ms = 60000\npayments_url = \"https://payments.example.test/pay\"\n",
        )
        .replace(
            "scopes = [\"store_v2_products\", \"store_v2_orders_read_only\"]\n",
            &format!(
                "scopes = [\"store_v2_products\", \"store_v2_orders_read_only\"]\n\
                 client_id = \"abc-app-client\"\nclient_secret_env = \"BC_SECRET_ABC123\"\n\
                 channels = [{{ id = 1, origin = \"https://shop.example.com\" }}, \
                 {{ id = 3, origin = \"https://eu.example.com/store\" }}]\n\n\
                 [[accounts]]\nuuid = \"{UUID}\"\ntoken_env = \"BC_ACCOUNT\"\n"
            ),
        )
        .replace(
            "default_store = \"abc123\"\n",
            &format!("default_store = \"abc123\"\naccounts = [\"{UUID}\"]\n"),
        );
    let cfg = write_config(&text);
    let path = cfg.path.to_str().expect("utf-8 temp path").to_owned();
    let out = Bcgate::run_cli(
        &["check", "--config", &path],
        &[
            ("BC_TOKEN_ABC123", TOKEN),
            ("BC_SECRET_ABC123", SECRET),
            ("BC_ACCOUNT", ACCOUNT_TOKEN),
        ],
    );
    let all = combined(&out);
    assert!(out.status.success(), "{all}");
    for line in [
        "upstream: https://api.bigcommerce.com\n",
        "payments: https://payments.example.test/pay\n",
        "b2b:      https://api-b2b.bigcommerce.com\n",
        "  abc123 alias eu: token from env BC_TOKEN_ABC123; token scopes: store_v2_products, store_v2_orders_read_only\n\
         \x20   client_id abc-app-client; client secret from env BC_SECRET_ABC123\n\
         \x20   channel 1: storefront https://shop.example.com\n\
         \x20   channel 3: storefront https://eu.example.com/store\n",
        &format!("accounts:\n  {UUID}: token from env BC_ACCOUNT; used by inventory-sync\n"),
        &format!("; accounts {UUID}\n"),
        "mint:     storefront tokens asked for 86400 s, renewed 3600 s before they expire\n",
    ] {
        assert!(all.contains(line), "missing {line:?} in:\n{all}");
    }
    for secret in [TOKEN, SECRET, ACCOUNT_TOKEN] {
        assert!(!all.contains(secret), "check printed a secret:\n{all}");
    }
}
