//! `bcgate dev`: the real binary, its printed keys and `curl` lines, and the
//! requests those lines describe, sent as printed (one to each BigCommerce
//! host besides the api's three); with `--tls`, the CA it writes out,
//! trusted by reqwest and by both SDKs through its printed `export` lines.

use crate::sdk;
use crate::support;

use std::time::Duration;

use support::{Bcgate, assert_problem, plain_client, send};

/// One printed `curl` line, parsed.
#[derive(Debug)]
struct Curl {
    method: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    cacert: Option<String>,
    url: String,
}

/// Splits a shell line into words, honouring single quotes (all the banner uses).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut started) = (false, false);
    for ch in line.chars() {
        match ch {
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quote in {line:?}");
    if started {
        words.push(word);
    }
    words
}

fn parse_curl(line: &str) -> Curl {
    let words = shell_words(line);
    assert_eq!(words.first().map(String::as_str), Some("curl"), "{line}");
    let mut curl = Curl {
        method: "GET".into(),
        headers: Vec::new(),
        body: None,
        cacert: None,
        url: String::new(),
    };
    let mut args = words.into_iter().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{arg} without a value: {line}"))
        };
        match arg.as_str() {
            "-X" => curl.method = value(),
            "-H" => {
                let header = value();
                let (name, v) = header
                    .split_once(": ")
                    .unwrap_or_else(|| panic!("header {header:?} in {line}"));
                curl.headers.push((name.into(), v.into()));
            }
            "-d" => curl.body = Some(value()),
            "--cacert" => curl.cacert = Some(value()),
            url if url.starts_with("http://") || url.starts_with("https://") => {
                curl.url = url.into()
            }
            other => panic!("unexpected curl argument {other:?} in {line}"),
        }
    }
    assert!(!curl.url.is_empty(), "no URL in {line}");
    curl
}

async fn perform(client: &reqwest::Client, curl: &Curl) -> support::Resp {
    let method = http::Method::from_bytes(curl.method.as_bytes()).expect("method");
    let mut req = client.request(method, &curl.url);
    for (name, value) in &curl.headers {
        req = req.header(name, value);
    }
    if let Some(body) = &curl.body {
        req = req.body(body.clone());
    }
    send(req).await
}

fn key_of(curl: &Curl) -> &str {
    curl.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-auth-token"))
        .map(|(_, v)| v.as_str())
        .expect("the curl line sends a key")
}

/// Every run of at least `min` hex digits in `text`.
fn hex_runs(text: &str, min: usize) -> Vec<&str> {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .filter(|run| run.len() >= min)
        .collect()
}

#[tokio::test]
async fn dev_prints_keys_and_curl_lines_that_do_what_they_say() {
    let mut gate = Bcgate::start_dev(&["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"]);
    let out = gate.logs();

    // The store and the clients, as printed.
    let store_line = out
        .lines()
        .find_map(|l| l.strip_prefix("store:"))
        .unwrap_or_else(|| panic!("no store line:\n{out}"));
    let hash = store_line.split_whitespace().next().expect("a store hash");
    assert_eq!(hash, "dev123", "{out}");
    let clients: Vec<(String, String, String)> = out
        .lines()
        .filter_map(|l| l.strip_prefix("client:"))
        .map(|rest| {
            let w: Vec<&str> = rest.split_whitespace().collect();
            assert!(w.len() >= 5 && w[1] == "key" && w[3] == "scopes", "{rest}");
            (w[0].to_owned(), w[2].to_owned(), w[4].to_owned())
        })
        .collect();
    let names: Vec<&str> = clients.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, ["catalog-reader", "catalog-editor", "shop"], "{out}");
    assert_eq!(clients[0].2, "store_v2_products_read_only");
    assert_eq!(clients[1].2, "store_v2_products");
    let (reader_key, editor_key) = (clients[0].1.as_str(), clients[1].1.as_str());
    let shop_key = clients[2].1.as_str();
    assert_ne!(reader_key, editor_key);
    let account = out
        .lines()
        .find_map(|l| l.strip_prefix("account:"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no account line:\n{out}"));

    // The curl lines: the reader's GET, the reader's POST, the editor's
    // POST; then the shop's, one per other host.
    let curls: Vec<Curl> = out
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("curl "))
        .map(parse_curl)
        .collect();
    assert_eq!(curls.len(), 8, "{out}");
    let products = gate.url(&format!("/stores/{hash}/v3/catalog/products"));
    for c in &curls[..3] {
        assert_eq!(
            c.url, products,
            "the curl lines point at the proxy as bound"
        );
    }
    let others = [
        ("POST", format!("/stores/{hash}/payments")),
        ("POST", format!("/stores/{hash}/storefront/graphql")),
        ("POST", format!("/stores/{hash}/storefront/graphql")),
        ("GET", format!("/stores/{hash}/b2b/v3/io/companies")),
        ("POST", format!("/accounts/{account}/graphql")),
    ];
    for (c, (method, path)) in curls[3..].iter().zip(&others) {
        assert_eq!(
            (c.method.as_str(), c.url.as_str()),
            (*method, gate.url(path).as_str())
        );
        assert_eq!(key_of(c), shop_key);
    }
    assert_eq!(
        (curls[0].method.as_str(), key_of(&curls[0])),
        ("GET", reader_key)
    );
    assert_eq!(
        (curls[1].method.as_str(), key_of(&curls[1])),
        ("POST", reader_key)
    );
    assert_eq!(
        (curls[2].method.as_str(), key_of(&curls[2])),
        ("POST", editor_key)
    );

    let http = plain_client();
    let allowed = perform(&http, &curls[0]).await;
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert_eq!(allowed.header("content-type"), Some("application/json"));
    let body = allowed.json();
    assert_eq!(body["data"]["method"], "GET");
    assert_eq!(body["data"]["path"], "/stores/dev123/v3/catalog/products");
    assert_eq!(body["data"]["store_hash"], "dev123");
    assert!(allowed.header("x-rate-limit-requests-left").is_some());

    let denied = perform(&http, &curls[1]).await;
    let problem = assert_problem(&denied, 403, "scope_denied");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("catalog-reader")),
        "{problem}"
    );

    let created = perform(&http, &curls[2]).await;
    assert_eq!(created.status, 200, "{}", created.text());
    assert_eq!(created.json()["data"]["method"], "POST");

    // Every other host answers 2xx, having got the credential it takes.
    let paid = perform(&http, &curls[3]).await;
    assert_eq!(paid.status, 201, "{}", paid.text());
    assert_eq!(
        paid.json()["data"]["order_id"],
        1,
        "the PAT was minted for order 1"
    );
    let private = perform(&http, &curls[4]).await;
    assert_eq!(private.status, 200, "{}", private.text());
    assert_eq!(
        private.json()["data"]["mock"],
        serde_json::json!({"store": "dev123", "channel": 1, "kind": "private",
            "scopes": ["Unauthenticated", "Customer"], "customer_id": null})
    );
    let shopper = perform(&http, &curls[5]).await;
    assert_eq!(shopper.status, 200, "{}", shopper.text());
    assert_eq!(shopper.json()["data"]["mock"]["kind"], "impersonation");
    assert_eq!(shopper.json()["data"]["mock"]["customer_id"], 1);
    let b2b = perform(&http, &curls[6]).await;
    assert_eq!(b2b.status, 200, "{}", b2b.text());
    assert_eq!(
        (
            &b2b.json()["data"]["path"],
            &b2b.json()["data"]["store_hash"]
        ),
        (
            &serde_json::json!("/companies"),
            &serde_json::json!("dev123")
        )
    );
    let accounts = perform(&http, &curls[7]).await;
    assert_eq!(accounts.status, 200, "{}", accounts.text());
    assert_eq!(accounts.json()["data"]["account"]["id"], account);
    // "Also try": naming a customer needs a grant the shop does not hold.
    let mut named = parse_curl(
        out.lines()
            .map(str::trim)
            .filter(|l| l.starts_with("curl "))
            .nth(4)
            .expect("the storefront line"),
    );
    named.headers.push(("X-Bc-Customer-Id".into(), "1".into()));
    assert_problem(&perform(&http, &named).await, 403, "scope_denied");

    // The rest is the real server too: admin, readiness against the mock.
    let admin = gate.admin_addr().expect("an admin line");
    let ready = send(http.get(format!("http://{admin}/readyz"))).await;
    assert_eq!(ready.status, 200, "{}", ready.text());

    // The store and account tokens and the client secret are never
    // printed. Each is 64 hex digits (src/dev/mod.rs); the only runs of 40 or
    // more hex digits in the output are the keys'.
    gate.settle_logs();
    let out = gate.logs();
    for run in hex_runs(&out, 40) {
        assert!(
            [reader_key, editor_key, shop_key]
                .iter()
                .any(|k| k.ends_with(run)),
            "an unexplained secret-looking string ({}…) in the output:\n{out}",
            &run[..8]
        );
    }
    // And the keys appear only where the banner prints them, not in the access log.
    for line in out.lines() {
        let t = line.trim();
        if t.contains(reader_key) || t.contains(editor_key) || t.contains(shop_key) {
            assert!(
                t.starts_with("client:") || t.starts_with("curl "),
                "a key outside the banner: {line}"
            );
        }
    }

    gate.signal("TERM");
    let status = gate
        .wait_exit(Duration::from_secs(15))
        .expect("bcgate dev exits on SIGTERM");
    assert!(status.success(), "{status}");
}

#[test]
fn dev_refuses_a_config_file() {
    let out = Bcgate::run_cli(&["dev", "--config", "bcgate.toml"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--config does not apply"), "{err}");
}

/// `bcgate mock`: the same mock alone (for load benchmarks), its CA written
/// out, the store's token taken from the environment and never printed.
#[tokio::test]
async fn mock_command_serves_the_mock_with_its_ca_and_the_token_from_the_environment() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    const TOKEN: &str = "bc-store-token-mockcmd-Ju7Rt2Lp0";
    let dir = support::process::temp_dir();
    let ca_path = dir.path().join("mock-ca.pem");
    let addr = support::unused_addr();
    let mut cmd = Command::new(support::process::bcgate_exe());
    cmd.args(["mock", "--listen", &addr.to_string(), "--ca-out"])
        .arg(&ca_path)
        .args(["--store", "abc123=MOCK_TOKEN"])
        .env("MOCK_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn bcgate mock");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the listening line");
    assert_eq!(
        line.trim(),
        format!("bcgate: mock BigCommerce listening on https://{addr}")
    );
    let ca = std::fs::read(&ca_path).expect("the CA was written");
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("PEM"))
        .tls_built_in_root_certs(false)
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let url = format!("https://{addr}/stores/abc123/v3/catalog/products");
    let ok = send(http.get(&url).header("X-Auth-Token", TOKEN)).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert!(ok.header("x-rate-limit-requests-left").is_some());
    let wrong = send(http.get(&url).header("X-Auth-Token", "not-the-token")).await;
    assert_eq!(wrong.status, 401);
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "SIGTERM ends it cleanly: {:?}",
        out.status
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains(TOKEN));

    let bad = Bcgate::run_cli(&["mock", "--ca-out", "x.pem", "--store", "abc123"], &[]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("HASH=ENV_VAR"));
}

/// `bcgate dev --tls --ca-out dev-ca.pem`: HTTPS with a certificate from the
/// CA it wrote, which the printed `curl` lines and `export` lines point at,
/// and which reqwest, the python SDK and node-bigcommerce trust (the SDKs
/// running docs/sdks.md's recipes with exactly the printed exports).
#[tokio::test]
async fn dev_tls_writes_its_ca_and_clients_trusting_it_get_through() {
    let mut gate = Bcgate::start_dev(&[
        "--tls",
        "--ca-out",
        "dev-ca.pem",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
    ]);
    assert_eq!(gate.scheme, "https");
    let out = gate.logs();
    let ca_path = gate.dir().join("dev-ca.pem");
    let ca_pem = std::fs::read(&ca_path).expect("--ca-out was written");
    let ca_shown = std::path::absolute(&ca_path)
        .expect("absolute")
        .display()
        .to_string();

    let reader_key = out
        .lines()
        .find_map(|l| l.strip_prefix("client: catalog-reader"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no reader line:\n{out}"))
        .to_owned();
    let curls: Vec<Curl> = out
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("curl "))
        .map(parse_curl)
        .collect();
    assert_eq!(curls.len(), 8, "{out}");
    let products = gate.url("/stores/dev123/v3/catalog/products");
    assert!(products.starts_with("https://"), "{products}");
    for c in &curls[..3] {
        assert_eq!(c.url, products);
    }
    for c in &curls {
        assert!(c.url.starts_with("https://"), "{}", c.url);
        assert_eq!(c.cacert.as_deref(), Some(ca_shown.as_str()), "{out}");
    }

    // reqwest trusting only the written CA: the allowed and the denied line.
    // HTTP/1.1 as curl: an idle HTTP/2 connection would hold bcgate's drain
    // until its deadline, since this runtime is not polled while the test
    // waits for the exit below and so never acknowledges the GOAWAY ping.
    let trusting = reqwest::Client::builder()
        .http1_only()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).expect("PEM"))
        .tls_built_in_root_certs(false)
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let allowed = perform(&trusting, &curls[0]).await;
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert_eq!(
        allowed.json()["data"]["path"],
        "/stores/dev123/v3/catalog/products"
    );
    assert_problem(&perform(&trusting, &curls[1]).await, 403, "scope_denied");
    let storefront = perform(&trusting, &curls[4]).await;
    assert_eq!(storefront.status, 200, "{}", storefront.text());
    // A client trusting another CA is refused: the TLS is real.
    let other = support::client(&support::TestCa::new());
    let refused = support::try_send(other.get(&products)).await;
    assert!(refused.is_err(), "{refused:?}");

    // The printed exports: the SDKs' variables, for this listener and this CA.
    let exports: std::collections::BTreeMap<String, String> =
        sdk::exports(&out).into_iter().collect();
    let addr = gate.addr.to_string();
    let want = [
        ("BC_API_ENDPOINT", addr.as_str()),
        ("REQUESTS_CA_BUNDLE", ca_shown.as_str()),
        ("BCGATE_ADDR", addr.as_str()),
        ("BCGATE_CA_FILE", ca_shown.as_str()),
        ("BC_STORE_HASH", "dev123"),
        ("BCGATE_KEY", reader_key.as_str()),
    ];
    for (name, value) in want {
        assert_eq!(exports.get(name).map(String::as_str), Some(value), "{out}");
    }
    let export_lines: String = out
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("export "))
        .map(|l| format!("{l}\n"))
        .collect();

    if let Some(python) = sdk::required("the python bigcommerce SDK", sdk::python()) {
        let code = format!(
            "{}print(products[\"data\"][\"path\"])\n",
            sdk::recipe("python")
        );
        let script = format!("{export_lines}exec \"$PYTHON\" -c \"$CODE\"\n");
        let run = sdk::run_shell(
            gate.dir(),
            &script,
            &[("PYTHON", &python.display().to_string()), ("CODE", &code)],
        );
        assert!(
            run.status.success(),
            "python recipe against bcgate dev --tls: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&run.stdout).trim(),
            "/stores/dev123/v2/products"
        );
    }
    if let Some(modules) = sdk::required("node-bigcommerce", sdk::node_modules()) {
        let code = format!(
            "(async () => {{\n{}console.log(products.data.path);\n}})().catch((e) => {{ console.error(e); process.exit(1); }});\n",
            sdk::recipe("node")
        );
        let script = format!("{export_lines}exec node -e \"$CODE\"\n");
        let run = sdk::run_shell(
            gate.dir(),
            &script,
            &[
                ("NODE_PATH", &modules.display().to_string()),
                ("CODE", &code),
            ],
        );
        assert!(
            run.status.success(),
            "node recipe against bcgate dev --tls: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&run.stdout).trim(),
            "/stores/dev123/v3/catalog/products"
        );
    }

    gate.signal("TERM");
    let status = gate
        .wait_exit(Duration::from_secs(20))
        .expect("bcgate dev exits on SIGTERM");
    assert!(status.success(), "{status}");
    assert!(ca_path.is_file(), "the CA the user asked for stays");
}

#[test]
fn dev_ca_out_needs_tls() {
    let out = Bcgate::run_cli(&["dev", "--ca-out", "dev-ca.pem"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls"), "{err}");
}
