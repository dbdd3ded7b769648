//! Listeners (HTTPS with h1 and h2, h2c) and config from the environment.

use super::*;

// ---------------------------------------------------------------------------
// Listeners

#[tokio::test]
async fn https_listener_serves_h1_and_h2() {
    let fx = fixture_with(Opts {
        tls: true,
        ..Opts::default()
    });
    for (what, http, version) in [
        ("h2", client(&fx.ca), http::Version::HTTP_2),
        ("http/1.1", client_h1(&fx.ca), http::Version::HTTP_11),
    ] {
        let resp = send(
            http.get(fx.gate.url("/stores/eu/v3/catalog/products"))
                .header("x-auth-token", READER.key)
                .header("x-auth-client", "python-sdk-client-id"),
        )
        .await;
        assert_ok(&resp, what);
        assert_eq!(resp.version, version, "{what}");
        let rec = fx.take_one();
        assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);
        assert!(!rec.has_header("x-auth-client"));
    }
    // By name as well as by IP.
    let url = format!(
        "https://localhost:{}/stores/abc123/v3/catalog/products",
        fx.gate.addr.port()
    );
    if let Ok(resp) = try_send(client(&fx.ca).get(&url).header("x-auth-token", READER.key)).await {
        // localhost may resolve to ::1 where nothing listens; only check a reply.
        assert_ok(&resp, "https://localhost");
    }
    // A client that does not trust the CA fails the handshake.
    let untrusted = client(&TestCa::new());
    assert!(
        try_send(
            untrusted
                .get(fx.gate.url("/stores/abc123/v3/catalog/products"))
                .header("x-auth-token", READER.key)
        )
        .await
        .is_err()
    );
}

#[tokio::test]
async fn h2c_prior_knowledge_is_served() {
    let fx = fixture();
    let resp = send(
        h2c_client()
            .get(fx.gate.url("/stores/abc123/v3/catalog/products"))
            .header("x-auth-token", READER.key),
    )
    .await;
    assert_ok(&resp, "h2c");
    assert_eq!(resp.version, http::Version::HTTP_2);
    let rec = fx.take_one();
    assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);
    assert_eq!(rec.host(), Some(fx.mock_host()));
    // h2c requests carry :authority, never a caller Host upstream.
    let resp = send(
        h2c_client()
            .get(fx.gate.url("/stores/abc123/v3/catalog/products"))
            .header("x-auth-token", READER.key)
            .header("cookie", "a=b"),
    )
    .await;
    assert_ok(&resp, "h2c cookie");
    let rec = fx.take_one();
    assert!(!rec.has_header("cookie"));
}

#[tokio::test]
async fn config_keys_can_be_overridden_from_the_environment() {
    let fx = fixture_with(Opts {
        env: vec![("BCGATE__SERVER__MAX_BODY_BYTES", "1024".to_owned())],
        ..Opts::default()
    });
    let resp = send(
        fx.req(Method::POST, "/stores/abc123/v3/catalog/products", &ADMIN)
            .header("content-type", "application/json")
            .body(vec![b' '; 4096]),
    )
    .await;
    assert_problem(&resp, 413, "body_too_large");
    fx.assert_not_forwarded("env override of max_body_bytes");
    let resp = fx
        .post_json("/stores/abc123/v3/catalog/products", &ADMIN, "{}")
        .await;
    assert_ok(&resp, "small body");
}
