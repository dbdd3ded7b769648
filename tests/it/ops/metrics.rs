//! Metrics and readiness on the admin listener.

use super::*;

// ---------------------------------------------------------------- metrics

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_metric_moves_when_its_event_happens() {
    let clients = client(
        "alpha",
        &key_identity(KEY_A),
        r#"["store_v2_products_read_only"]"#,
    );
    let fx = start(TCP, &clients, TestCa::new());
    let gate = &fx.gate;
    let http = plain_client();
    let before = metrics(gate);
    assert_eq!(metric(&before, "bcgate_requests_total", &[]), 0.0);

    // Forwarded: counted by client, store, route template, decision and
    // status; latency histograms; the store's remaining quota.
    let ok = send(
        http.get(gate.url("/v3/catalog/products?limit=1"))
            .header("X-Auth-Token", KEY_A),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let left: f64 = ok
        .header("x-rate-limit-requests-left")
        .expect("mock sends X-Rate-Limit-Requests-Left")
        .parse()
        .expect("number");
    let text = metrics(gate);
    for name in [
        "bcgate_requests_total",
        "bcgate_request_duration_seconds",
        "bcgate_upstream_duration_seconds",
        "bcgate_store_rate_limit_requests_left",
        "bcgate_open_connections",
    ] {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} is described:\n{text}"
        );
    }
    let forwarded = [
        ("client", "alpha"),
        ("store", STORE),
        ("route", "/v3/catalog/products"),
        ("decision", "forwarded"),
        ("status", "200"),
    ];
    assert_eq!(
        metric(&text, "bcgate_requests_total", &forwarded),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "bcgate_request_duration_seconds_count",
            &[("decision", "forwarded")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "bcgate_upstream_duration_seconds_count",
            &[("store", STORE)]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "bcgate_store_rate_limit_requests_left",
            &[("store", STORE)]
        ),
        left,
        "{text}"
    );
    // The keep-alive connection the client still holds is open.
    assert_eq!(
        metric(&text, "bcgate_open_connections", &[("listener", "proxy")]),
        1.0,
        "{text}"
    );

    // Denials by code, and the decision label.
    let denied = send(
        http.post(gate.url("/v3/catalog/products"))
            .header("X-Auth-Token", KEY_A)
            .body("{}"),
    )
    .await;
    assert_eq!(denied.status, 403);
    let unknown = send(
        http.get(gate.url("/v3/catalog/products"))
            .header("X-Auth-Token", KEY_B),
    )
    .await;
    assert_eq!(unknown.status, 401);
    let bad = send(
        http.get(gate.url("/v3/catalog/products/%2e%2e"))
            .header("X-Auth-Token", KEY_A),
    )
    .await;
    assert_eq!(bad.status, 400);
    let text = metrics(gate);
    assert_eq!(
        metric(&text, "bcgate_denials_total", &[("code", "scope_denied")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "bcgate_denials_total",
            &[("code", "unauthenticated")]
        ),
        1.0
    );
    assert_eq!(
        metric(&text, "bcgate_denials_total", &[("code", "bad_request")]),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "bcgate_requests_total",
            &[
                ("client", "alpha"),
                ("route", "/v3/catalog/products"),
                ("decision", "denied"),
                ("status", "403")
            ]
        ),
        1.0,
        "{text}"
    );
    // An unidentified caller and an unmatched path are labelled "-", never the raw path.
    assert_eq!(
        metric(
            &text,
            "bcgate_requests_total",
            &[("client", "-"), ("decision", "denied"), ("status", "401")]
        ),
        1.0,
        "{text}"
    );
    assert!(
        !text.contains("%2e"),
        "a raw path leaked into a label:\n{text}"
    );

    // Upstream errors by kind: a timeout (the mock sleeps past request_timeout_ms).
    let slow = send(
        http.get(gate.url("/v3/catalog/products?mock_delay_ms=4000"))
            .header("X-Auth-Token", KEY_A),
    )
    .await;
    assert_eq!(slow.status, 504, "{}", slow.text());
    let text = metrics(gate);
    assert_eq!(
        metric(
            &text,
            "bcgate_upstream_errors_total",
            &[("kind", "timeout")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "bcgate_requests_total",
            &[("decision", "upstream_failed"), ("status", "504")]
        ),
        1.0
    );

    // The connection gauge falls when the caller goes away.
    drop(http);
    wait_for_metric(
        gate,
        "bcgate_open_connections",
        &[("listener", "proxy")],
        0.0,
    );

    for secret in [TOKEN, KEY_A, KEY_B] {
        assert!(!text.contains(secret), "a secret is in /metrics");
    }
    assert_eq!(
        fx.mock.requests().len(),
        2,
        "only the two authorized requests reached the mock"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_one_access_line_per_request_without_secrets() {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    std::fs::write(dir.path().join("abc123.token"), TOKEN).expect("token");
    let clients = client(
        "alpha",
        &key_identity(KEY_A),
        r#"["store_v2_products_read_only"]"#,
    );
    let gate = Bcgate::start_in(
        dir,
        &config(&mock.base_url(), TCP, &clients),
        &[("BCGATE_LOG_FORMAT", "json")],
    );
    let http = plain_client();
    let resp = send(
        http.get(gate.url("/v3/catalog/products?limit=1&secret_query=1"))
            .header("X-Auth-Token", KEY_A)
            .header("X-Request-Id", "ops-json-1"),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert!(gate.wait_for_log("ops-json-1", WAIT));
    let line = gate
        .logs()
        .lines()
        .find(|l| l.contains("ops-json-1"))
        .map(str::to_owned)
        .expect("access line");
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["target"], "bcgate::access", "{line}");
    assert_eq!(v["client"], "alpha");
    assert_eq!(v["store"], STORE);
    assert_eq!(v["method"], "GET");
    assert_eq!(v["route"], "/v3/catalog/products");
    assert_eq!(v["status"], 200);
    assert_eq!(v["decision"], "forwarded");
    assert!(
        v["latency_ms"].as_f64().is_some() && v["upstream_ms"].as_f64().is_some(),
        "{line}"
    );
    assert!(
        !line.contains("secret_query"),
        "the raw query is not logged: {line}"
    );
    gate.assert_logs_free_of(&[TOKEN, KEY_A]);
}

// ---------------------------------------------------------------- readiness

#[test]
fn readyz_reports_each_check_and_goes_unready_when_a_token_file_disappears() {
    let clients = client(
        "alpha",
        &key_identity(KEY_A),
        r#"["store_v2_products_read_only"]"#,
    );
    let fx = start(TCP, &clients, TestCa::new());
    let (status, body) = admin_get(&fx.gate, "/readyz");
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(report["ready"], true);
    let names: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["config", "store abc123 token", "upstream"]);
    assert_eq!(admin_get(&fx.gate, "/healthz").0, 200);

    std::fs::remove_file(fx.gate.dir().join("abc123.token")).expect("remove token file");
    let (status, body) = admin_get(&fx.gate, "/readyz");
    assert_eq!(status, 503, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(report["ready"], false);
    let token_check = &report["checks"][1];
    assert_eq!(token_check["ok"], false, "{body}");
    assert!(
        token_check["detail"]
            .as_str()
            .is_some_and(|d| d.contains("abc123.token"))
    );
    assert!(!body.contains(TOKEN));
    // Alive all the same.
    assert_eq!(admin_get(&fx.gate, "/healthz").0, 200);
}

#[test]
fn readyz_is_unready_while_the_upstream_refuses_connections() {
    let ca = TestCa::new();
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    std::fs::write(dir.path().join("abc123.token"), TOKEN).expect("token");
    let dead = format!("https://{}", support::unused_addr());
    let clients = client(
        "alpha",
        &key_identity(KEY_A),
        r#"["store_v2_products_read_only"]"#,
    );
    let gate = Bcgate::start_in(dir, &config(&dead, TCP, &clients), &[]);
    let (status, body) = admin_get(&gate, "/readyz");
    assert_eq!(status, 503, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(report["checks"][2]["name"], "upstream");
    assert_eq!(report["checks"][2]["ok"], false, "{body}");
}
