//! Rewrite: caller credentials, forwarding and hop-by-hop headers are
//! stripped (requests and responses), the store token injected.

use super::*;

// ---------------------------------------------------------------------------
// Rewrite

#[tokio::test]
async fn caller_credentials_and_forwarding_headers_are_stripped() {
    let fx = fixture();
    let resp = send(
        fx.req(Method::GET, "/stores/abc123/v3/catalog/products", &ADMIN)
            .header("x-auth-client", "sdk-client-id-123")
            .header("proxy-authorization", "Basic cHJveHk6c2VjcmV0")
            .header("cookie", "SHOP_SESSION=cookie-value-77; other=1")
            .header("x-http-method-override", "DELETE")
            .header("x-forwarded-for", "10.9.8.7")
            .header("x-forwarded-host", "forwarded-host.example")
            .header("x-forwarded-proto", "gopher")
            .header(
                "forwarded",
                "for=10.9.8.7;host=forwarded-host.example;proto=gopher",
            )
            .header("x-custom-kept", "kept-value")
            .header("accept", "application/json"),
    )
    .await;
    assert_ok(&resp, "credentials stripped");
    let rec = fx.take_one();
    assert_eq!(rec.method, "GET", "X-HTTP-Method-Override must not apply");
    assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);
    for name in [
        "authorization",
        "x-auth-client",
        "proxy-authorization",
        "cookie",
        "x-http-method-override",
        "x-forwarded-host",
        "x-forwarded-proto",
    ] {
        assert!(!rec.has_header(name), "{name} must be stripped: {rec:#?}");
    }
    for (name, value) in &rec.headers {
        let value = String::from_utf8_lossy(value);
        for caller_value in [
            "10.9.8.7",
            "forwarded-host.example",
            "gopher",
            "cookie-value-77",
            "sdk-client-id-123",
            ADMIN.key,
        ] {
            assert!(
                !value.contains(caller_value),
                "caller-sent {caller_value:?} reached the upstream in {name}"
            );
        }
    }
    assert_eq!(rec.header("x-custom-kept").as_deref(), Some("kept-value"));

    // The same with the key as a Bearer token.
    let resp = send(
        fx.http
            .get(fx.gate.url("/stores/abc123/v3/catalog/products"))
            .bearer_auth(ADMIN.key)
            .header("x-auth-client", "sdk-client-id-123")
            .header("cookie", "a=b"),
    )
    .await;
    assert_ok(&resp, "bearer");
    let rec = fx.take_one();
    assert!(!rec.has_header("authorization"));
    assert!(!rec.has_header("x-auth-client"));
    assert!(!rec.has_header("cookie"));
    assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);

    // X-HTTP-Method-Override cannot lift a read-only client to a write.
    let resp = send(
        fx.req(Method::GET, "/stores/abc123/v3/catalog/products/1", &READER)
            .header("x-http-method-override", "DELETE"),
    )
    .await;
    assert_ok(&resp, "override ignored");
    let rec = fx.take_one();
    assert_eq!(rec.method, "GET");
    assert!(!rec.has_header("x-http-method-override"));
}

#[tokio::test]
async fn hop_by_hop_headers_and_connection_tokens_cannot_touch_the_injected_token() {
    let fx = fixture();
    // Key as Bearer; Connection names X-Auth-Token (the header bcgate injects).
    let req = format!(
        "GET /stores/abc123/v3/catalog/products HTTP/1.1\r\n\
         Host: api.bigcommerce.com\r\n\
         Authorization: Bearer {key}\r\n\
         Connection: keep-alive, X-Auth-Token, X-Drop-Me\r\n\
         Keep-Alive: timeout=5\r\n\
         TE: trailers\r\n\
         X-Drop-Me: dropped-value\r\n\
         X-Keep-Me: kept\r\n\
         \r\n",
        key = ADMIN.key
    );
    let resp = raw_request(fx.gate.addr, req.as_bytes());
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    let rec = fx.take_one();
    assert_eq!(rec.tokens(), vec![T_ABC.to_owned()], "{rec:#?}");
    for name in [
        "x-drop-me",
        "keep-alive",
        "te",
        "connection",
        "upgrade",
        "transfer-encoding",
    ] {
        assert!(
            !rec.has_header(name),
            "{name} must not be forwarded: {rec:#?}"
        );
    }
    assert_eq!(rec.header("x-keep-me").as_deref(), Some("kept"));
    assert_eq!(rec.host(), Some(fx.mock_host()));

    // Key in X-Auth-Token and Connection naming it: the key identifies the
    // caller before any stripping, and the upstream gets exactly the store token.
    let req = format!(
        "GET /stores/abc123/v3/catalog/products HTTP/1.1\r\n\
         Host: api.bigcommerce.com\r\n\
         X-Auth-Token: {key}\r\n\
         Connection: close, X-Auth-Token\r\n\
         \r\n",
        key = ADMIN.key
    );
    let resp = raw_request(fx.gate.addr, req.as_bytes());
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert_eq!(fx.mock.requests().len(), 1);
    for rec in fx.mock.requests() {
        assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);
    }
    fx.mock.clear();

    // A caller-sent second X-Auth-Token-like header value never reaches the upstream.
    let req = format!(
        "GET /stores/abc123/v3/catalog/products HTTP/1.1\r\n\
         Host: api.bigcommerce.com\r\n\
         Authorization: Bearer {key}\r\n\
         x-auth-token : {other}\r\n\
         Connection: close\r\n\
         \r\n",
        key = ADMIN.key,
        other = T_DEF
    );
    if let Ok(resp) = raw_exchange(fx.gate.addr, req.as_bytes(), false) {
        assert_ne!(resp.status, 200, "whitespace before colon must be refused");
    }
    for rec in fx.mock.requests() {
        assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);
    }
}

// ---------------------------------------------------------------------------
// More forwarding details

#[tokio::test]
async fn response_hop_by_hop_headers_are_removed() {
    let fx = fixture_with(Opts {
        mock_h1: true,
        ..Opts::default()
    });
    for (what, http) in [("h1", plain_client()), ("h2c", h2c_client())] {
        let resp = send(
            http.get(fx.gate.url("/stores/abc123/v3/catalog/products?mock_hop=1"))
                .header("x-auth-token", ADMIN.key),
        )
        .await;
        assert_ok(&resp, what);
        for name in ["x-mock-hop", "keep-alive", "proxy-authenticate"] {
            assert!(
                resp.header(name).is_none(),
                "{what}: response hop-by-hop header {name} must be removed"
            );
        }
        if let Some(conn) = resp.header("connection") {
            assert!(
                !conn.to_ascii_lowercase().contains("x-mock-hop"),
                "{what}: upstream Connection header forwarded: {conn}"
            );
        }
        assert_eq!(resp.header("x-mock-kept"), Some("kept-value"), "{what}");
        assert!(
            resp.header("x-rate-limit-requests-left").is_some(),
            "{what}"
        );
        assert_eq!(fx.take_one().version, http::Version::HTTP_11);
    }
}
