//! Reload and drain.

use super::*;

// ---------------------------------------------------------------- reload

#[test]
fn reload_with_a_good_file_serves_a_new_client_on_the_same_connection() {
    let alpha = client(
        "alpha",
        &key_identity(KEY_A),
        r#"["store_v2_products_read_only"]"#,
    );
    let fx = start(TCP, &alpha, TestCa::new());
    let gate = &fx.gate;
    let mut conn = TcpStream::connect(gate.addr).expect("connect");
    let path = "/v3/catalog/products";
    let before = get_on(&mut conn, path, KEY_B);
    assert_eq!(before.status, 401, "bravo is not configured yet");

    // The file watch picks up an atomic replace.
    let bravo = client("bravo", &key_identity(KEY_B), r#"["store_v2_products"]"#);
    gate.rewrite_config(&config(
        &fx.mock.base_url(),
        TCP,
        &format!("{alpha}{bravo}"),
    ));
    wait_for_metric(
        gate,
        "bcgate_config_reloads_total",
        &[("result", "ok")],
        1.0,
    );
    let after = get_on(&mut conn, path, KEY_B);
    assert_eq!(after.status, 200, "{}", after.body_text());
    let still = get_on(&mut conn, path, KEY_A);
    assert_eq!(still.status, 200);

    // SIGHUP reloads even when nothing changed on disk.
    gate.signal("HUP");
    wait_for_metric(
        gate,
        "bcgate_config_reloads_total",
        &[("result", "ok")],
        2.0,
    );

    // Token rotation: a new token file is re-read, and used from then on.
    std::fs::write(gate.dir().join("abc123.token"), TOKEN_ROTATED).expect("rotate token");
    wait_for_metric(
        gate,
        "bcgate_config_reloads_total",
        &[("result", "ok")],
        3.0,
    );
    fx.mock.clear();
    let rotated = get_on(&mut conn, path, KEY_A);
    // The mock still knows only the old token, as BigCommerce would until
    // the rotation reached it: its 401 passes through.
    assert_eq!(rotated.status, 401, "{}", rotated.body_text());
    assert_eq!(fx.mock.only_request().tokens(), [TOKEN_ROTATED]);
}

#[test]
fn reload_with_a_bad_file_keeps_the_old_config_and_counts_the_failure() {
    let alpha = client(
        "alpha",
        &key_identity(KEY_A),
        r#"["store_v2_products_read_only"]"#,
    );
    let fx = start(TCP, &alpha, TestCa::new());
    let gate = &fx.gate;
    let mut conn = TcpStream::connect(gate.addr).expect("connect");
    let path = "/v3/catalog/products";

    // A misspelt scope: the whole file is refused, bravo never appears.
    let bravo = client("bravo", &key_identity(KEY_B), r#"["store_v2_product"]"#);
    gate.rewrite_config(&config(
        &fx.mock.base_url(),
        TCP,
        &format!("{alpha}{bravo}"),
    ));
    let text = wait_for_metric(
        gate,
        "bcgate_config_reloads_total",
        &[("result", "error")],
        1.0,
    );
    assert_eq!(
        metric(&text, "bcgate_config_reloads_total", &[("result", "ok")]),
        0.0
    );
    assert!(gate.wait_for_log("config reload refused", WAIT));
    assert!(
        gate.logs().contains("clients[1].scopes[0]"),
        "the error names the key:\n{}",
        gate.logs()
    );
    let old = get_on(&mut conn, path, KEY_A);
    assert_eq!(old.status, 200, "the old config keeps serving");
    let new = get_on(&mut conn, path, KEY_B);
    assert_eq!(new.status, 401);
    let (_, ready) = admin_get(gate, "/readyz");
    assert!(ready.contains("the last reload was refused"), "{ready}");

    // So is a file that moves the listener (it cannot move without a restart).
    let moved = config(&fx.mock.base_url(), r#"listen = "127.0.0.1:1""#, &alpha);
    gate.rewrite_config(&moved);
    wait_for_metric(
        gate,
        "bcgate_config_reloads_total",
        &[("result", "error")],
        2.0,
    );

    // Fixing the file is a change like any other.
    let bravo = client("bravo", &key_identity(KEY_B), r#"["store_v2_products"]"#);
    gate.rewrite_config(&config(
        &fx.mock.base_url(),
        TCP,
        &format!("{alpha}{bravo}"),
    ));
    wait_for_metric(
        gate,
        "bcgate_config_reloads_total",
        &[("result", "ok")],
        1.0,
    );
    let fixed = get_on(&mut conn, path, KEY_B);
    assert_eq!(fixed.status, 200);
}

// ---------------------------------------------------------------- drain

#[test]
fn sigterm_lets_a_slow_in_flight_request_finish_then_exits_zero() {
    drains_a_slow_request(None);
}

/// On one CPU bcgate runs its tasks on the main thread (no runtime workers),
/// and serving, reloading and draining work the same.
#[test]
fn on_one_cpu_it_runs_without_worker_threads_and_still_reloads_and_drains() {
    drains_a_slow_request(Some(0));
}

fn drains_a_slow_request(cpu: Option<u32>) {
    let alpha = client(
        "alpha",
        &key_identity(KEY_A),
        r#"["store_v2_products_read_only"]"#,
    );
    let server = format!("{TCP}\ndrain_timeout_ms = 10000");
    let mut fx = start_on(cpu, &server, &alpha, TestCa::new());
    let addr = fx.gate.addr;
    if cpu.is_some() {
        let names = fx.gate.thread_names();
        assert!(
            !names.iter().any(|n| n.starts_with("tokio-rt")),
            "no runtime worker threads on one CPU: {names:?}"
        );
        let resp = support::raw_exchange(
            addr,
            get_request("/v3/catalog/products", Some(KEY_A)).as_bytes(),
            false,
        )
        .expect("a request on one CPU");
        assert_eq!(resp.status, 200, "{}", resp.body_text());
        // A reload is read by the watcher thread and applied on the runtime's one thread.
        let beta = client(
            "beta",
            &key_identity(KEY_B),
            r#"["store_v2_products_read_only"]"#,
        );
        fx.gate.rewrite_config(&config(
            &fx.mock.base_url(),
            &server,
            &format!("{alpha}\n{beta}"),
        ));
        fx.gate.signal("HUP");
        assert!(
            fx.gate.wait_for_log("config reloaded", WAIT),
            "{}",
            fx.gate.logs()
        );
        let resp = support::raw_exchange(
            addr,
            get_request("/v3/catalog/products", Some(KEY_B)).as_bytes(),
            false,
        )
        .expect("a request from the reloaded client");
        assert_eq!(resp.status, 200, "{}", resp.body_text());
    }
    let before = fx.mock.wait_for_stats(WAIT, |_| true).handlers_started;
    let slow = std::thread::spawn(move || {
        let req = get_request("/v3/catalog/products?mock_delay_ms=1500", Some(KEY_A))
            .replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
        support::raw_exchange(addr, req.as_bytes(), false)
    });
    let stats = fx
        .mock
        .wait_for_stats(WAIT, |s| s.handlers_started > before);
    assert_eq!(
        stats.handlers_started,
        before + 1,
        "the slow request reached the mock"
    );
    let signalled = Instant::now();
    fx.gate.signal("TERM");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        TcpStream::connect(addr).is_err(),
        "no new connections are accepted while draining"
    );
    let resp = slow
        .join()
        .expect("thread")
        .expect("the in-flight request completed");
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    let status = fx
        .gate
        .wait_exit(WAIT)
        .expect("bcgate exits after draining");
    assert!(status.success(), "exit status {status}");
    assert!(
        signalled.elapsed() >= Duration::from_millis(1000),
        "it waited for the request"
    );
    assert!(fx.gate.logs().contains("draining"), "{}", fx.gate.logs());
}
