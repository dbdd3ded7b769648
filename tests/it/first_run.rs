//! What an operator and a caller see on a first run: the startup lines (what
//! was loaded, where to send a request, an unreachable upstream), the cause
//! of a 502 in the access log, every stdout line as JSON with
//! `--log-format json`, and an upstream 401 told apart from a bad caller key.

use crate::support;

use std::time::Duration;

use support::{
    Bcgate, MockBigCommerce, TestCa, assert_problem, base_config, key_sha256, plain_client,
    ready_check, send, unused_addr,
};

const STORE: &str = "abc123";
const TOKEN: &str = "bc-store-token-firstrun-Pw3Nz8Qk1Lr5";
const KEY: &str = "bcg-key-firstrun-Tb6Ym2Hc9Vx4Jd7";
const PATH: &str = "/stores/abc123/v3/catalog/products";
const WAIT: Duration = Duration::from_secs(10);

fn config(upstream: &str) -> String {
    format!(
        "{}\n[[stores]]\nhash = \"{STORE}\"\nalias = \"main\"\ntoken_env = \"BC_TOKEN_ABC123\"\n\n\
         [[clients]]\nname = \"inventory-sync\"\nkey_sha256 = \"{}\"\nstores = [\"{STORE}\"]\n\
         scopes = [\"store_v2_products_read_only\"]\n",
        base_config(upstream, 5_000),
        key_sha256(KEY)
    )
}

fn start(ca: &TestCa, upstream: &str, env: &[(&str, &str)]) -> Bcgate {
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    let mut all = vec![("BC_TOKEN_ABC123", TOKEN)];
    all.extend_from_slice(env);
    Bcgate::start_in(dir, &config(upstream), &all)
}

async fn get(gate: &Bcgate, query: &str) -> support::Resp {
    send(
        plain_client()
            .get(gate.url(&format!("{PATH}{query}")))
            .header("x-auth-token", KEY),
    )
    .await
}

/// The access-log line of the request that got `code`.
fn access_line(gate: &Bcgate, code: &str) -> String {
    let needle = format!("code={code}");
    assert!(gate.wait_for_log(&needle, WAIT), "{}", gate.logs());
    gate.logs()
        .lines()
        .find(|l| l.contains("bcgate::access") && l.contains(&needle))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no access line with {needle}:\n{}", gate.logs()))
}

#[test]
fn startup_names_the_config_stores_and_clients_and_where_to_send_a_request() {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    let gate = start(&ca, &mock.base_url(), &[]);
    assert!(
        gate.wait_for_log("next:", WAIT),
        "a line says what to do next:\n{}",
        gate.logs()
    );
    gate.settle_logs();
    let logs = gate.logs();
    let loaded = logs
        .lines()
        .find(|l| l.contains("config loaded"))
        .unwrap_or_else(|| panic!("no config line:\n{logs}"));
    let path = gate.config_path().display().to_string();
    for needle in [
        path.as_str(),
        "1 store,",
        "1 client",
        "abc123 (main)",
        "inventory-sync",
    ] {
        assert!(loaded.contains(needle), "{needle:?} in {loaded}");
    }
    let next = logs
        .lines()
        .find(|l| l.contains("next:"))
        .expect("next line");
    let admin = gate.admin_addr().expect("admin address");
    assert!(
        next.contains(&gate.url("/stores/main/v3/catalog/products")),
        "{next}"
    );
    assert!(next.contains("X-Auth-Token"), "{next}");
    assert!(next.contains(&format!("http://{admin}/readyz")), "{next}");
    assert!(
        !logs.contains("cannot be reached"),
        "the mock is up: no warning\n{logs}"
    );
    gate.assert_logs_free_of(&[TOKEN, KEY]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_is_warned_at_start_and_its_502_is_logged_with_the_cause() {
    let ca = TestCa::new();
    let down = unused_addr();
    let gate = start(&ca, &format!("https://{down}"), &[]);
    assert!(
        gate.wait_for_log("the upstream cannot be reached", WAIT),
        "a warning at start:\n{}",
        gate.logs()
    );
    let warning = gate
        .logs()
        .lines()
        .find(|l| l.contains("the upstream cannot be reached"))
        .map(str::to_owned)
        .expect("warning line");
    assert!(warning.contains(" WARN "), "{warning}");
    assert!(
        warning.contains(&down.to_string()),
        "names where: {warning}"
    );
    assert!(warning.contains("refused"), "says why: {warning}");

    let resp = get(&gate, "").await;
    let body = assert_problem(&resp, 502, "upstream_unavailable");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("connect"), "{detail}");
    let line = access_line(&gate, "upstream_unavailable");
    assert!(
        line.contains("cause=") && line.contains("cannot connect to the upstream"),
        "the access line says why: {line}"
    );
    assert!(line.contains("refused"), "{line}");
    gate.assert_logs_free_of(&[TOKEN, KEY]);
}

#[test]
fn an_upstream_certificate_bcgate_does_not_trust_is_warned_at_start() {
    let trusted = TestCa::new();
    let other = TestCa::new();
    let mock = MockBigCommerce::start(&other, &[(STORE, TOKEN)]);
    let gate = start(&trusted, &mock.base_url(), &[]);
    assert!(
        gate.wait_for_log("the upstream cannot be reached", WAIT),
        "{}",
        gate.logs()
    );
    let logs = gate.logs();
    let warning = logs
        .lines()
        .find(|l| l.contains("the upstream cannot be reached"))
        .expect("warning line");
    assert!(
        warning.contains("TLS with the upstream failed") && warning.contains("certificate"),
        "says it is the certificate: {warning}"
    );
    assert_eq!(mock.requests().len(), 0, "no request was sent");
    gate.assert_logs_free_of(&[TOKEN, KEY]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_json_logs_every_line_on_stdout_is_json() {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    let mut gate = start(
        &ca,
        &mock.base_url(),
        &[("BCGATE_LOG_FORMAT", "json"), ("BCGATE_LOG", "debug")],
    );
    assert_eq!(get(&gate, "").await.status, 200);
    assert_eq!(get(&gate, "?mock_status=500").await.status, 500);
    let _ = ready_check(&gate, "upstream");
    gate.signal("TERM");
    let status = gate.wait_exit(Duration::from_secs(20));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    gate.settle_logs();
    let stdout = gate.stdout();
    let mut listening = Vec::new();
    let mut access = 0;
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n--- stdout ---\n{stdout}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        if let Some(name) = v["listener"].as_str() {
            listening.push(name.to_owned());
            assert!(
                v["url"].as_str().is_some_and(|u| u.starts_with("http://")),
                "{line}"
            );
        }
        if v["target"] == "bcgate::access" {
            access += 1;
        }
    }
    assert_eq!(listening, ["admin", "proxy"], "{stdout}");
    assert_eq!(access, 2, "{stdout}");
    assert!(stdout.contains("config loaded"), "{stdout}");
    assert!(stdout.contains("shutting down"), "{stdout}");
    gate.assert_logs_free_of(&[TOKEN, KEY]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_401_says_the_store_token_was_refused_not_the_callers_key() {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    let gate = start(&ca, &mock.base_url(), &[]);
    let name = format!("store {STORE} token health");

    let resp = get(&gate, "?mock_status=401").await;
    let body = assert_problem(&resp, 401, "store_token_refused");
    assert_eq!(resp.header("x-bcgate-upstream-auth"), Some("refused"));
    assert!(
        resp.header("www-authenticate").is_none(),
        "not the caller's credentials"
    );
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("store 'abc123'") && detail.contains("your bcgate key was accepted"),
        "{detail}"
    );
    assert_eq!(mock.requests().len(), 1, "it did reach the upstream");

    // bcgate's own 401 for a bad key stays unmarked.
    let bad = send(
        plain_client()
            .get(gate.url(PATH))
            .header("x-auth-token", "bcg-not-a-key"),
    )
    .await;
    assert_problem(&bad, 401, "unauthenticated");
    assert!(bad.header("x-bcgate-upstream-auth").is_none());

    // /readyz: the failure shows as a failure, without taking the replica out.
    let (status, check) = ready_check(&gate, &name);
    assert_eq!(
        status, 200,
        "a refused token does not make the replica unready"
    );
    let check = check.expect("token health check");
    assert_eq!(check["ok"], false, "{check}");
    assert_eq!(check["affects_ready"], false, "{check}");
    assert!(check["detail"].to_string().contains("401"), "{check}");
    let (_, upstream) = ready_check(&gate, "upstream");
    let upstream = upstream.expect("upstream check");
    assert_eq!(upstream["ok"], true);
    assert!(upstream.get("affects_ready").is_none(), "{upstream}");

    let line = access_line(&gate, "store_token_refused");
    assert!(line.contains("status=401"), "{line}");

    assert_eq!(get(&gate, "").await.status, 200);
    assert_eq!(ready_check(&gate, &name).1, None, "healthy again");
    gate.assert_logs_free_of(&[TOKEN, KEY]);
}

/// `/readyz` checks every secret read from a file like a store's token: a
/// store's client secret and an account's token too, each by name, and
/// never shows one.
#[test]
fn readyz_checks_client_secret_and_account_token_files_by_name() {
    const SECRET: &str = "bc-client-secret-firstrun-Jq2Wm7";
    const ACCOUNT_TOKEN: &str = "bc-account-token-firstrun-Xv5Pb1";
    const UUID: &str = "0b4c5d6e-1f2a-4b3c-8d9e-0a1b2c3d4e5f";
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    std::fs::write(dir.path().join("client.secret"), SECRET).expect("secret file");
    std::fs::write(dir.path().join("account.token"), ACCOUNT_TOKEN).expect("token file");
    let text = config(&mock.base_url()).replace(
        "token_env = \"BC_TOKEN_ABC123\"\n",
        &format!(
            "token_env = \"BC_TOKEN_ABC123\"\nclient_id = \"app-client\"\n\
             client_secret_file = \"client.secret\"\n\n\
             [[accounts]]\nuuid = \"{UUID}\"\ntoken_file = \"account.token\"\n"
        ),
    );
    let gate = Bcgate::start_in(dir, &text, &[("BC_TOKEN_ABC123", TOKEN)]);
    let secret_check = "store abc123 client secret";
    let account_check = format!("account {UUID} token");
    for name in [secret_check, account_check.as_str()] {
        let (status, check) = ready_check(&gate, name);
        assert_eq!(status, 200);
        assert_eq!(check.expect(name)["ok"], true);
    }
    for (file, name) in [
        ("client.secret", secret_check),
        ("account.token", account_check.as_str()),
    ] {
        std::fs::remove_file(gate.dir().join(file)).expect("remove");
        let (status, check) = ready_check(&gate, name);
        assert_eq!(status, 503, "{name}");
        let check = check.expect(name);
        assert_eq!(check["ok"], false, "{check}");
        assert!(
            check["detail"].as_str().is_some_and(|d| d.contains(file)),
            "{check}"
        );
        let text = check.to_string();
        assert!(!text.contains(SECRET) && !text.contains(ACCOUNT_TOKEN));
    }
    gate.assert_logs_free_of(&[TOKEN, SECRET, ACCOUNT_TOKEN]);
}
