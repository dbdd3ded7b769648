//! Identity by unix socket peer uid and by mTLS subject.

use super::*;

// ---------------------------------------------------------------- identity

fn current_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("Uid line")
}

#[test]
fn unix_socket_peer_uid_identifies_a_client_without_a_key() {
    let uid = current_uid();
    let by_uid = client(
        "by-uid",
        &format!("unix_uid = {uid}"),
        r#"["store_v2_products_read_only"]"#,
    );
    let by_key = client(
        "by-key",
        &key_identity(KEY_B),
        r#"["store_v2_products_read_only"]"#,
    );
    let fx = start(
        r#"listen = "unix:bcgate.sock""#,
        &format!("{by_uid}{by_key}"),
        TestCa::new(),
    );
    let sock = fx.gate.unix.clone().expect("a unix listener");

    let (status, body) = unix_get(&sock, "/v3/catalog/products", None);
    assert_eq!(status, 200, "{body}");
    let rec = fx.mock.only_request();
    assert_eq!(rec.tokens(), [TOKEN]);
    assert!(
        fx.gate.wait_for_log("client=by-uid ", WAIT),
        "{}",
        fx.gate.logs()
    );

    // The uid grants only by-uid's scopes.
    let (status, _) = unix_get(&sock, "/v2/orders", None);
    assert_eq!(status, 403);
    // A key naming another client on the same connection is a conflict.
    let (status, body) = unix_get(&sock, "/v3/catalog/products", Some(KEY_B));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("another client"), "{body}");
    // An unknown key is not rescued by the uid.
    let (status, _) = unix_get(&sock, "/v3/catalog/products", Some(KEY_A));
    assert_eq!(status, 401);
}

#[test]
fn unix_uid_of_nobody_in_config_does_not_identify_this_process() {
    let other = current_uid().wrapping_add(4242);
    let by_uid = client(
        "someone-else",
        &format!("unix_uid = {other}"),
        r#"["store_v2_products_read_only"]"#,
    );
    let fx = start(r#"listen = "unix:bcgate.sock""#, &by_uid, TestCa::new());
    let sock = fx.gate.unix.clone().expect("a unix listener");
    let (status, body) = unix_get(&sock, "/v3/catalog/products", None);
    assert_eq!(status, 401, "{body}");
    assert!(fx.mock.requests().is_empty());
}

/// An HTTPS client presenting a certificate for `cn` signed by `ca`.
fn mtls_client(ca: &TestCa, cn: Option<&str>) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.ca_der())).expect("root");
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(ring_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let mut tls = match cn {
        Some(cn) => {
            let leaf = ca.issue_leaf(&[cn]);
            builder
                .with_client_auth_cert(
                    vec![CertificateDer::from(leaf.cert_der)],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der)),
                )
                .expect("client cert")
        }
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .no_proxy()
        .timeout(WAIT)
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_certificate_subject_identifies_a_client_without_a_key() {
    let ca = TestCa::new();
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    ca.write_leaf(dir.path(), "server", &["127.0.0.1", "localhost"]);
    std::fs::write(dir.path().join("abc123.token"), TOKEN).expect("token");
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    let tls = r#"listen = "127.0.0.1:0"
tls = { cert = "server.pem", key = "server.key", client_ca = "ca.pem" }"#;
    let clients = format!(
        "{}{}",
        client(
            "inventory-sync",
            r#"tls_subject = "CN=inventory-sync""#,
            r#"["store_v2_products_read_only"]"#
        ),
        client(
            "by-key",
            &key_identity(KEY_B),
            r#"["store_v2_orders_read_only"]"#
        )
    );
    let gate = Bcgate::start_in(dir, &config(&mock.base_url(), tls, &clients), &[]);
    assert_eq!(gate.scheme, "https");
    let url = gate.url("/v3/catalog/products");

    let inventory = mtls_client(&ca, Some("inventory-sync"));
    let resp = send(inventory.get(&url)).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(mock.only_request().tokens(), [TOKEN]);
    let denied = send(inventory.get(gate.url("/v2/orders"))).await;
    assert_eq!(
        denied.status, 403,
        "the certificate grants only its client's scopes"
    );

    // A valid certificate no client names: a key still identifies the caller.
    let stranger = mtls_client(&ca, Some("stranger"));
    assert_eq!(send(stranger.get(&url)).await.status, 401);
    let keyed = send(
        stranger
            .get(gate.url("/v2/orders"))
            .header("X-Auth-Token", KEY_B),
    )
    .await;
    assert_eq!(keyed.status, 200, "{}", keyed.text());
    // A certificate naming a client plus another client's key: refused.
    let both = send(inventory.get(&url).header("X-Auth-Token", KEY_B)).await;
    assert_eq!(both.status, 400, "{}", both.text());

    // No certificate: the handshake itself is refused.
    let anonymous = mtls_client(&ca, None);
    assert!(
        anonymous.get(&url).send().await.is_err(),
        "client_ca makes a certificate mandatory"
    );
    // A certificate from another CA with the right subject: refused too.
    let other_ca = TestCa::new();
    let forged = mtls_client_with_roots(&other_ca, &ca, "inventory-sync");
    assert!(
        forged.get(&url).send().await.is_err(),
        "only client_ca's certificates count"
    );
    gate.assert_logs_free_of(&[TOKEN, KEY_B]);
}

/// A client trusting `server_ca` that presents a certificate for `cn` signed by `signer`.
fn mtls_client_with_roots(signer: &TestCa, server_ca: &TestCa, cn: &str) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(server_ca.ca_der()))
        .expect("root");
    let leaf = signer.issue_leaf(&[cn]);
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(ring_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from(leaf.cert_der)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der)),
        )
        .expect("client cert");
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .no_proxy()
        .timeout(WAIT)
        .build()
        .expect("client")
}

#[test]
fn healthcheck_command_exits_zero_only_on_a_200() {
    let alpha = client(
        "alpha",
        &key_identity(KEY_A),
        r#"["store_v2_products_read_only"]"#,
    );
    let fx = start(TCP, &alpha, TestCa::new());
    let admin = fx.gate.admin_addr().expect("admin address");
    let ok = Bcgate::run_cli(&["healthcheck", &format!("http://{admin}/healthz")], &[]);
    assert!(ok.status.success(), "{ok:?}");
    let not_found = Bcgate::run_cli(&["healthcheck", &format!("http://{admin}/nope")], &[]);
    assert!(!not_found.status.success());
    assert!(String::from_utf8_lossy(&not_found.stderr).contains("404"));
    let refused = Bcgate::run_cli(
        &[
            "healthcheck",
            &format!("http://{}/healthz", support::unused_addr()),
        ],
        &[],
    );
    assert!(!refused.status.success());
}

#[test]
fn an_in_flight_request_finishes_on_the_config_it_started_with() {
    let alpha = client(
        "alpha",
        &key_identity(KEY_A),
        r#"["store_v2_products_read_only"]"#,
    );
    let bravo = client(
        "bravo",
        &key_identity(KEY_B),
        r#"["store_v2_products_read_only"]"#,
    );
    let fx = start(TCP, &format!("{alpha}{bravo}"), TestCa::new());
    let addr = fx.gate.addr;
    let slow = std::thread::spawn(move || {
        let req = get_request("/v3/catalog/products?mock_delay_ms=1500", Some(KEY_A))
            .replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
        support::raw_exchange(addr, req.as_bytes(), false)
    });
    let stats = fx.mock.wait_for_stats(WAIT, |s| s.handlers_started >= 1);
    assert_eq!(stats.handlers_started, 1, "the slow request is upstream");
    // alpha is removed while its request is in flight.
    fx.gate
        .rewrite_config(&config(&fx.mock.base_url(), TCP, &bravo));
    wait_for_metric(
        &fx.gate,
        "bcgate_config_reloads_total",
        &[("result", "ok")],
        1.0,
    );
    let gone = support::raw_request(
        addr,
        get_request("/v3/catalog/products", Some(KEY_A)).as_bytes(),
    );
    assert_eq!(gone.status, 401, "new requests see the new config");
    let resp = slow
        .join()
        .expect("thread")
        .expect("the in-flight request completed");
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert!(
        fx.gate.wait_for_log("client=alpha store=abc123", WAIT),
        "its access line still names alpha:\n{}",
        fx.gate.logs()
    );
}
