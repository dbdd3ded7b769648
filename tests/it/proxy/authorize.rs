//! Authorize: scope families and levels, routes that are never forwarded,
//! unmapped routes failing closed.

use super::*;

// ---------------------------------------------------------------------------
// Authorize: scopes

#[tokio::test]
async fn read_only_scope_allows_get_and_head_and_denies_writes() {
    let fx = fixture();
    let resp = fx
        .get("/stores/abc123/v3/catalog/products/7", &READER)
        .await;
    assert_ok(&resp, "GET");
    let resp = send(fx.req(
        Method::HEAD,
        "/stores/abc123/v3/catalog/products/7",
        &READER,
    ))
    .await;
    assert_eq!(resp.status, 200, "HEAD follows GET");
    let recs = fx.mock.requests();
    assert_eq!(
        recs.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(),
        vec!["GET", "HEAD"]
    );
    fx.mock.clear();

    let resp = fx
        .post_json(
            "/stores/abc123/v3/catalog/products",
            &READER,
            r#"{"name":"x"}"#,
        )
        .await;
    let body = assert_scope_denied(&resp, &["store_v2_products"]);
    let scopes = required_scopes(&body);
    assert!(
        !scopes.iter().any(|s| s == "store_v2_products_read_only"),
        "a read-only scope cannot grant POST: {body}"
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("reader"),
        "detail names the client: {body}"
    );
    // (PATCH /v3/catalog/products/{id} is not a BigCommerce route: route_unknown.)
    for method in [Method::PUT, Method::DELETE] {
        let resp = send(
            fx.req(method.clone(), "/v3/catalog/products/7", &READER)
                .header("content-type", "application/json")
                .body("{}"),
        )
        .await;
        assert_scope_denied(&resp, &["store_v2_products"]);
    }
    // Another family entirely
    let resp = fx.get("/stores/abc123/v2/orders", &READER).await;
    assert_scope_denied(&resp, &["store_v2_orders_read_only", "store_v2_orders"]);
    fx.assert_not_forwarded("denied");

    // POST /v3/pricing/products is a read.
    let body = r#"{"channel_id":1,"currency_code":"USD","items":[{"product_id":1}]}"#;
    let resp = fx
        .post_json("/stores/abc123/v3/pricing/products", &READER, body)
        .await;
    assert_ok(&resp, "pricing is a read");
    let rec = fx.take_one();
    assert_eq!(rec.method, "POST");
    assert_eq!(rec.body, body.as_bytes());

    // A modify scope implies its read twin.
    let resp = fx.get("/stores/abc123/v2/orders/1", &ORDERS).await;
    assert_ok(&resp, "modify implies read");
    let resp = send(
        fx.req(Method::PUT, "/stores/abc123/v2/orders/1", &ORDERS)
            .header("content-type", "application/json")
            .body(r#"{"status_id":2}"#),
    )
    .await;
    assert_ok(&resp, "modify");
    assert_eq!(fx.mock.requests().len(), 2);
}

#[tokio::test]
async fn routes_granted_by_either_of_two_families() {
    let fx = fixture();
    for (who, method, path) in [
        (
            &TXN,
            Method::POST,
            "/stores/abc123/v3/orders/1/payment_actions/capture",
        ),
        (
            &TXN,
            Method::POST,
            "/stores/abc123/v3/orders/1/payment_actions/void",
        ),
        (&TXN, Method::GET, "/stores/abc123/v3/orders/1/transactions"),
        (
            &TXN,
            Method::POST,
            "/stores/abc123/v3/orders/1/payment_actions/refunds",
        ),
        (
            &ORDERS,
            Method::POST,
            "/stores/abc123/v3/orders/1/payment_actions/capture",
        ),
        (
            &ORDERS,
            Method::POST,
            "/stores/abc123/v3/orders/1/payment_actions/refund_quotes",
        ),
        (
            &ORDERS,
            Method::GET,
            "/stores/abc123/v3/orders/1/payment_actions/refunds",
        ),
        (
            &TXN,
            Method::GET,
            "/stores/abc123/v3/orders/1/payment_actions/refunds",
        ),
    ] {
        let resp = send(
            fx.req(method.clone(), path, who)
                .header("content-type", "application/json")
                .body("{}"),
        )
        .await;
        assert_ok(&resp, &format!("{} {method} {path}", who.name));
        let rec = fx.take_one();
        assert_eq!(rec.method, method.as_str());
        assert_eq!(rec.path, path);
    }
    // GET transactions names only the Order Transactions family.
    let resp = fx
        .get("/stores/abc123/v3/orders/1/transactions", &ORDERS)
        .await;
    assert_scope_denied(&resp, &["store_v2_transactions"]);
    // Order Transactions does not reach the orders v2 API.
    let resp = fx.get("/stores/abc123/v2/orders/1", &TXN).await;
    assert_scope_denied(&resp, &["store_v2_orders"]);
    // Products read-only reaches neither; both families are named.
    let resp = fx
        .post_json(
            "/stores/abc123/v3/orders/1/payment_actions/capture",
            &READER,
            "{}",
        )
        .await;
    assert_scope_denied(&resp, &["store_v2_orders", "store_v2_transactions"]);
    fx.assert_not_forwarded("any-of denied");
}

#[tokio::test]
async fn cart_settings_are_information_scope_and_cart_ids_are_cart_scope() {
    let fx = fixture();
    let resp = fx.get("/stores/abc123/v3/carts/settings", &INFO).await;
    assert_ok(&resp, "info → carts/settings");
    assert_eq!(fx.take_one().path, "/stores/abc123/v3/carts/settings");
    let cart = "/stores/abc123/v3/carts/5b1e4b8c-0d1a-4a8e-9f3c-2d6f1e0a7b9c";
    let resp = fx.get(cart, &CART).await;
    assert_ok(&resp, "cart → carts/{id}");
    assert_eq!(fx.take_one().path, cart);

    let resp = fx.get(cart, &INFO).await;
    assert_scope_denied(&resp, &["store_cart"]);
    let resp = fx.get("/stores/abc123/v3/carts/settings", &CART).await;
    assert_scope_denied(&resp, &["store_v2_information"]);
    fx.assert_not_forwarded("carts denied");
}

#[tokio::test]
async fn v2_format_suffix_is_the_same_route() {
    let fx = fixture();
    for path in [
        "/stores/abc123/v2/orders.json",
        "/stores/abc123/v2/orders/5.json",
        "/stores/abc123/v2/orders/count.json",
        "/v2/orders.json",
    ] {
        let resp = fx.get(path, &ORDERS).await;
        assert_ok(&resp, path);
        let rec = fx.take_one();
        let expected = if path.starts_with("/stores/") {
            path.to_owned()
        } else {
            format!("/stores/abc123{path}")
        };
        assert_eq!(rec.path, expected, "the upstream sees the authorized path");
    }
    let resp = fx.get("/stores/abc123/v2/orders.json", &READER).await;
    assert_scope_denied(&resp, &["store_v2_orders_read_only"]);
    let resp = fx.get("/stores/abc123/v2/orders/5.xml", &READER).await;
    assert_scope_denied(&resp, &["store_v2_orders_read_only"]);
    fx.assert_not_forwarded("v2 suffix denied");
}

#[tokio::test]
async fn webhooks_need_the_default_scope_listed() {
    let fx = fixture();
    let resp = fx.get("/stores/abc123/v3/hooks", &ADMIN).await;
    assert_ok(&resp, "admin has default");
    fx.take_one();
    let resp = fx.get("/stores/abc123/v3/hooks", &ORDERS).await;
    let body = assert_scope_denied(&resp, &["default"]);
    assert_eq!(required_scopes(&body), vec!["default".to_owned()]);
    fx.assert_not_forwarded("webhooks");
}

#[tokio::test]
async fn a_token_known_to_lack_the_scope_is_not_spent() {
    let fx = fixture();
    // ghi789's token holds only store_v2_products; admin may do orders, but not there.
    let resp = fx.get("/stores/ghi789/v2/orders", &ADMIN).await;
    assert_eq!(resp.status, 403, "{}", resp.text());
    let body = resp.json();
    let code = body["code"].as_str().unwrap_or_default().to_owned();
    assert!(!code.is_empty(), "{body}");
    check_problem_body(&body, 403, &code);
    assert_no_secret_in(&resp, "token lacks scope");
    fx.assert_not_forwarded("store token lacks the scope");
    let resp = fx.get("/stores/ghi789/v3/catalog/products", &ADMIN).await;
    assert_ok(&resp, "store token has products");
    assert_eq!(fx.take_one().tokens(), vec![T_GHI.to_owned()]);
}

#[tokio::test]
async fn storefront_and_customer_apis_are_never_forwarded() {
    let fx = fixture();
    for (method, path) in [
        (Method::GET, "/api/storefront/carts"),
        (Method::POST, "/api/storefront/carts"),
        (Method::GET, "/api/storefront/checkouts/5b1e4b8c"),
        (Method::GET, "/login/token/eyJhbGciOiJIUzI1NiJ9.e30.x"),
        (Method::GET, "/customer/current.jwt?app_client_id=abc"),
    ] {
        let resp = send(
            fx.req(method.clone(), path, &READER)
                .header("content-type", "application/json")
                .body("{}"),
        )
        .await;
        assert_problem(&resp, 403, "not_proxied");
        assert_no_secret_in(&resp, path);
    }
    // With a store prefix too: refused, never forwarded. The customer-login
    // API exists only as GET, so a POST there is not a route at all; the
    // payments host is its own family, whose grant admin does not hold.
    for (path, code) in [
        ("/stores/abc123/api/storefront/carts", "not_proxied"),
        ("/stores/abc123/payments", "scope_denied"),
        ("/stores/abc123/login/token/x", "route_unknown"),
    ] {
        let resp = send(
            fx.req(Method::POST, path, &ADMIN)
                .header("content-type", "application/json")
                .body("{}"),
        )
        .await;
        assert_problem(&resp, 403, code);
    }
    let resp = send(fx.req(Method::GET, "/stores/abc123/login/token/x", &ADMIN)).await;
    assert_problem(&resp, 403, "not_proxied");
    fx.assert_not_forwarded("storefront");
}

#[tokio::test]
async fn unmapped_routes_fail_closed_until_mapped_in_config() {
    let fx = fixture();
    let path = "/stores/abc123/v3/some/new/endpoint/42";
    let resp = fx.get(path, &ADMIN).await;
    assert_problem(&resp, 403, "route_unknown");
    fx.assert_not_forwarded("unmapped");
    drop(fx);

    let fx = fixture_with(Opts {
        extra: r#"
[[routes]]
method = "GET"
path = "/v3/some/new/endpoint/{id}"
scope = "store_v2_products"
"#
        .to_owned(),
        ..Opts::default()
    });
    let resp = fx.get(path, &ADMIN).await;
    assert_ok(&resp, "mapped route");
    let rec = fx.take_one();
    assert_eq!(rec.path, path);
    assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);
    // Only GET was mapped.
    let resp = fx.post_json(path, &ADMIN, "{}").await;
    assert_eq!(resp.status, 403, "{}", resp.text());
    // A client without the scope is denied.
    let resp = fx.get(path, &ORDERS).await;
    assert_scope_denied(&resp, &["store_v2_products"]);
    fx.assert_not_forwarded("mapped route, denied");
}
