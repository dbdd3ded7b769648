//! B2B Edition: `/stores/{s}/b2b/v3/io/…` goes to the B2B host's
//! `/api/v3/io/…` with the store's `X-Auth-Token` and `X-Store-Hash`,
//! granted by bcgate's own `b2b:read` / `b2b:modify`.

use bcgate_testkit::mock::B2B_QUOTA;

use super::*;

#[tokio::test]
async fn a_read_goes_to_the_b2b_host_with_the_store_token_and_hash() {
    let fx = fixture();
    // By alias, with a caller's attempts to choose the store or add a credential.
    let resp = fx
        .send(
            fx.req(
                Method::GET,
                "/stores/eu/b2b/v3/io/companies?limit=5",
                &B2B_READ,
            )
            .header("x-store-hash", DEF)
            .header("authtoken", "legacy-b2b-token-of-the-caller")
            .header("cookie", "b2b=1"),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body = resp.json();
    assert_eq!(body["data"]["path"], "/companies");
    assert_eq!(body["data"]["query"], "limit=5");
    assert_eq!(body["data"]["store_hash"], ABC);
    // B2B's rate-limit headers reach the caller.
    assert_eq!(
        resp.header("x-requests-allocated"),
        Some(format!("{B2B_QUOTA} times/60 s").as_str())
    );
    assert_eq!(
        resp.header("x-requests-remaining"),
        Some(format!("{} times", B2B_QUOTA - 1).as_str())
    );
    assert!(resp.header("x-request-window-resets-after").is_some());
    assert!(resp.header("x-requests-window-length").is_some());

    let sent = fx.at_b2b();
    assert_eq!(sent.len(), 1);
    let rec = &sent[0];
    assert_eq!(rec.path, format!("{B2B_PREFIX}/api/v3/io/companies"));
    assert_eq!(rec.query.as_deref(), Some("limit=5"));
    assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);
    assert_eq!(rec.header_all("x-store-hash"), vec![ABC.to_owned()]);
    assert!(!rec.has_header("authorization"));
    assert!(
        !rec.has_header("authtoken"),
        "the caller's legacy B2B token went upstream"
    );

    // By the client's default store, and HEAD as a read.
    let resp = fx
        .send(fx.req(Method::GET, "/b2b/v3/io/companies/7/attachments", &B2B_READ))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["data"]["path"], "/companies/7/attachments");
    // HEAD over HTTP/1.1: the mock answers HEAD over HTTP/2 with a body,
    // which bcgate's upstream client refuses (as it should).
    let resp = fx
        .send(
            support::client_h1(&fx.ca)
                .head(fx.gate.url("/b2b/v3/io/companies/7"))
                .header("x-auth-token", B2B_READ.key),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let sent = fx.at_b2b();
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[2].method, "HEAD");
}

#[tokio::test]
async fn writes_need_b2b_modify() {
    let fx = fixture();
    for (method, path) in [
        (Method::POST, "/companies"),
        (Method::PUT, "/companies/5"),
        (Method::DELETE, "/companies/5"),
    ] {
        let resp = fx
            .send(
                fx.req(
                    method.clone(),
                    &format!("/stores/{ABC}/b2b/v3/io{path}"),
                    &B2B_READ,
                )
                .body("{}"),
            )
            .await;
        let body = assert_problem(&resp, 403, "scope_denied");
        assert!(
            body["required_scopes"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s == "b2b:modify")),
            "{body}"
        );
        let resp = fx
            .send(
                fx.req(
                    method.clone(),
                    &format!("/stores/{ABC}/b2b/v3/io{path}"),
                    &B2B_MODIFY,
                )
                .body("{}"),
            )
            .await;
        assert_eq!(resp.status, 200, "{method} {path}: {}", resp.text());
        assert_eq!(resp.json()["data"]["method"], method.as_str());
    }
    assert_eq!(fx.at_b2b().len(), 3, "only b2b:modify's requests were sent");
    // b2b:modify reads too, on each of its stores with that store's token.
    let resp = fx
        .send(fx.req(
            Method::GET,
            &format!("/stores/{DEF}/b2b/v3/io/companies"),
            &B2B_MODIFY,
        ))
        .await;
    assert_eq!(resp.json()["data"]["store_hash"], DEF);
    let rec = fx.at_b2b().pop().expect("sent");
    assert_eq!(rec.tokens(), vec![T_DEF.to_owned()]);
    // No B2B grant at all.
    for who in [&NOTHING, &PAYER, &SF_CUSTOMER] {
        let resp = fx
            .send(fx.req(
                Method::GET,
                &format!("/stores/{ABC}/b2b/v3/io/companies"),
                who,
            ))
            .await;
        assert_problem(&resp, 403, "scope_denied");
    }
    // b2b:read is no store grant for the api family.
    let resp = fx
        .send(fx.req(
            Method::GET,
            &format!("/stores/{ABC}/v3/customers"),
            &B2B_MODIFY,
        ))
        .await;
    assert_problem(&resp, 403, "scope_denied");
    assert_eq!(fx.at_b2b().len(), 4);
}

#[tokio::test]
async fn a_path_outside_the_b2b_table_is_refused() {
    let fx = fixture();
    for path in [
        "/b2b/v3/io/no-such-resource",
        "/b2b/v3/io",
        "/b2b/v2/io/companies",
        "/b2b/v3/iox/companies",
        "/b2b/companies",
    ] {
        let resp = fx
            .send(fx.req(Method::GET, &format!("/stores/{ABC}{path}"), &B2B_MODIFY))
            .await;
        assert_problem(&resp, 403, "route_unknown");
    }
    // Path tricks are refused before any table is read (sent raw: a client
    // library would resolve the dot segment itself).
    for path in [
        "/b2b/v3/io/companies/../users",
        "/b2b/v3/io/./companies",
        "/b2b/v3/io/companies%2f5",
        "/b2b/v3/io//companies",
    ] {
        let request = format!(
            "GET /stores/{ABC}{path} HTTP/1.1\r\nHost: localhost\r\nX-Auth-Token: {}\r\n\
             Connection: close\r\n\r\n",
            B2B_MODIFY.key
        );
        let resp = tls_exchange(&fx, request.as_bytes());
        assert_eq!(
            resp.status,
            400,
            "{path}: {}",
            String::from_utf8_lossy(&resp.body)
        );
        assert_eq!(resp.json()["code"], "bad_request");
    }
    assert!(fx.mock.requests().is_empty(), "nothing reached any host");
}
