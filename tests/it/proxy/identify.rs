//! Identify the caller and find the store: keys, aliases, the default store,
//! stores a client may not use.

use super::*;

// ---------------------------------------------------------------------------
// Identify and find the store

#[tokio::test]
async fn injects_the_token_of_the_store_named_by_hash_or_alias() {
    let fx = fixture();
    for (path, hash, token) in [
        ("/stores/abc123/v3/catalog/products", ABC, T_ABC),
        ("/stores/eu/v3/catalog/products", ABC, T_ABC),
        ("/stores/def456/v3/catalog/products", DEF, T_DEF),
        ("/stores/us/v3/catalog/products", DEF, T_DEF),
        ("/stores/ghi789/v3/catalog/products", GHI, T_GHI),
    ] {
        let resp = fx.get(path, &ADMIN).await;
        assert_ok(&resp, path);
        assert_eq!(resp.json()["data"]["store_hash"], hash, "{path}");
        let rec = fx.take_one();
        assert_eq!(rec.path, format!("/stores/{hash}/v3/catalog/products"));
        assert_eq!(rec.tokens(), vec![token.to_owned()], "{path}");
        assert_eq!(rec.host(), Some(fx.mock_host()), "{path}: upstream Host");
    }
}

#[tokio::test]
async fn host_header_from_the_caller_never_chooses_the_destination() {
    let fx = fixture();
    // SDKs send Host: api.bigcommerce.com; accepted, and replaced upstream.
    for host in ["api.bigcommerce.com", "evil.example:8443"] {
        let resp = send(
            fx.req(Method::GET, "/stores/abc123/v3/catalog/products", &ADMIN)
                .header("host", host),
        )
        .await;
        assert_ok(&resp, host);
        let rec = fx.take_one();
        assert_eq!(rec.host(), Some(fx.mock_host()));
        assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);
    }
}

#[tokio::test]
async fn default_store_serves_paths_without_a_store_prefix() {
    let fx = fixture();
    let resp = fx.get("/v3/catalog/products?limit=5", &READER).await;
    assert_ok(&resp, "reader default store");
    let rec = fx.take_one();
    assert_eq!(rec.uri, "/stores/abc123/v3/catalog/products?limit=5");
    assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);

    // admin has no default_store
    let resp = fx.get("/v3/catalog/products", &ADMIN).await;
    assert_problem(&resp, 404, "store_unknown");
    // unknown store / alias
    let resp = fx.get("/stores/zzz999/v3/catalog/products", &ADMIN).await;
    assert_problem(&resp, 404, "store_unknown");
    let resp = fx.get("/stores/nowhere/v3/catalog/products", &READER).await;
    assert_eq!(resp.status / 100, 4, "{}", resp.text());
    fx.assert_not_forwarded("unknown store");
}

#[tokio::test]
async fn unauthenticated_requests_get_401() {
    let fx = fixture();
    let path = "/stores/abc123/v3/catalog/products";
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        ("no key", fx.http.get(fx.gate.url(path))),
        (
            "unknown X-Auth-Token",
            fx.http
                .get(fx.gate.url(path))
                .header("x-auth-token", BOGUS_KEY),
        ),
        (
            "unknown Bearer",
            fx.http.get(fx.gate.url(path)).bearer_auth(BOGUS_KEY),
        ),
        (
            "store token as key",
            fx.http.get(fx.gate.url(path)).header("x-auth-token", T_ABC),
        ),
        (
            "key in query access_token",
            fx.http
                .get(fx.gate.url(&format!("{path}?access_token={}", ADMIN.key))),
        ),
        (
            "key in query X-Auth-Token",
            fx.http
                .get(fx.gate.url(&format!("{path}?X-Auth-Token={}", ADMIN.key))),
        ),
        (
            "key in query key",
            fx.http
                .get(fx.gate.url(&format!("{path}?key={}", ADMIN.key))),
        ),
        (
            "empty bearer",
            fx.http
                .get(fx.gate.url(path))
                .header("authorization", "Bearer "),
        ),
    ];
    for (what, req) in cases {
        let resp = send(req).await;
        let body = assert_problem(&resp, 401, "unauthenticated");
        assert_no_secret_in(&resp, what);
        assert!(
            !body.to_string().contains(BOGUS_KEY),
            "{what}: key echoed in body"
        );
    }
    fx.assert_not_forwarded("unauthenticated");
}

#[tokio::test]
async fn a_request_with_two_keys_is_a_bad_request() {
    let fx = fixture();
    let url = fx.gate.url("/stores/abc123/v3/catalog/products");
    let cases = vec![
        (
            "two X-Auth-Token (same key)",
            fx.http
                .get(&url)
                .header("x-auth-token", ADMIN.key)
                .header("x-auth-token", ADMIN.key),
        ),
        (
            "two X-Auth-Token (different keys)",
            fx.http
                .get(&url)
                .header("x-auth-token", READER.key)
                .header("x-auth-token", ADMIN.key),
        ),
        (
            "X-Auth-Token plus Bearer (same key)",
            fx.http
                .get(&url)
                .header("x-auth-token", ADMIN.key)
                .bearer_auth(ADMIN.key),
        ),
        (
            "X-Auth-Token plus Bearer (different keys)",
            fx.http
                .get(&url)
                .header("x-auth-token", READER.key)
                .bearer_auth(ADMIN.key),
        ),
    ];
    for (what, req) in cases {
        let resp = send(req).await;
        assert_problem(&resp, 400, "bad_request");
        assert_no_secret_in(&resp, what);
    }
    fx.assert_not_forwarded("two keys");
}

#[tokio::test]
async fn bearer_key_works_like_x_auth_token() {
    let fx = fixture();
    let resp = send(
        fx.http
            .get(fx.gate.url("/stores/abc123/v3/catalog/products"))
            .bearer_auth(READER.key),
    )
    .await;
    assert_ok(&resp, "bearer");
    let rec = fx.take_one();
    assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);
    assert!(!rec.has_header("authorization"));
}

#[tokio::test]
async fn store_not_allowed_and_store_unknown() {
    let fx = fixture();
    for (who, path) in [
        (&READER, "/stores/def456/v3/catalog/products"),
        (&READER, "/stores/us/v3/catalog/products"),
        (&READER, "/stores/ghi789/v3/catalog/products"),
        (&US_ONLY, "/stores/abc123/v3/catalog/products"),
        (&US_ONLY, "/stores/eu/v3/catalog/products"),
    ] {
        let resp = fx.get(path, who).await;
        let body = assert_problem(&resp, 403, "store_not_allowed");
        assert_no_secret_in(&resp, path);
        assert!(!body.to_string().contains(T_DEF));
    }
    fx.assert_not_forwarded("store not allowed");

    let resp = fx.get("/stores/zzz999/v3/catalog/products", &ADMIN).await;
    assert_problem(&resp, 404, "store_unknown");
    fx.assert_not_forwarded("store unknown");

    // Allowed by alias in the client's list, reached by hash and by alias.
    for path in [
        "/stores/def456/v3/catalog/products",
        "/stores/us/v3/catalog/products",
    ] {
        let resp = fx.get(path, &US_ONLY).await;
        assert_ok(&resp, path);
        let rec = fx.take_one();
        assert_eq!(rec.tokens(), vec![T_DEF.to_owned()]);
    }
}
