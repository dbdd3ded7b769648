//! Payments: `POST /stores/{s}/payments` with `X-Bcgate-Order-Id` goes to the
//! payments host with a payment access token minted for that order.

use super::*;

#[tokio::test]
async fn a_payment_goes_to_the_payments_host_with_a_fresh_pat_per_request() {
    let fx = fixture();
    let resp = fx
        .send(
            fx.pay(ABC, &PAYER, Some("4242"), CARD_BODY)
                .header("cookie", "session=caller-cookie")
                // A caller's own PAT never replaces bcgate's.
                .header("authorization", "PAT caller-chosen-pat"),
        )
        .await;
    assert_eq!(resp.status, 201, "{}", resp.text());
    let body = resp.json();
    assert_eq!(body["data"]["status"], "success");
    assert_eq!(
        body["data"]["order_id"], 4242,
        "the PAT was minted for the order"
    );

    let paid = fx.at_payments();
    assert_eq!(paid.len(), 1);
    let rec = &paid[0];
    assert_eq!(rec.path, format!("{PAYMENTS_PREFIX}/stores/{ABC}/payments"));
    assert_eq!(rec.method, "POST");
    assert!(
        !rec.has_header("x-auth-token"),
        "no store token at the payments host"
    );
    let auth = rec.header_all("authorization");
    assert_eq!(auth.len(), 1);
    assert!(auth[0].starts_with("PAT ") && auth[0] != "PAT caller-chosen-pat");
    assert_eq!(
        rec.header("accept").as_deref(),
        Some("application/vnd.bc.v1+json")
    );
    assert_eq!(rec.body, CARD_BODY, "the card body arrives byte-exact");
    assert!(rec.body_complete);
    let first_pat = auth[0].clone();
    assert_eq!(minted_claims(&first_pat[4..])["order_id"], 4242);

    // The PAT went to the payments host only, and back to nobody.
    let text = resp.text();
    let headers = format!("{:?}", resp.headers);
    assert!(!text.contains(&first_pat[4..]) && !headers.contains(&first_pat[4..]));

    let minted = fx.mock.minted();
    assert_eq!(minted.len(), 1);
    assert_eq!(minted[0].store, ABC);
    assert_eq!(minted[0].order_id, Some(4242));
    assert!(minted[0].used, "the minted PAT paid");

    // The next payment (the mock's PATs pay once) gets a PAT of its own.
    let resp = fx.send(fx.pay(ABC, &PAYER, Some("4243"), CARD_BODY)).await;
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(resp.json()["data"]["order_id"], 4243);
    assert_eq!(fx.mock.stats().pats_minted, 2);
    let paid = fx.at_payments();
    assert_eq!(paid.len(), 2);
    assert_ne!(
        paid[1].header("authorization").as_deref(),
        Some(first_pat.as_str())
    );
    // Another store: a PAT minted with that store's token.
    let resp = fx.send(fx.pay(DEF, &PAYER, Some("9"), CARD_BODY)).await;
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(fx.mock.minted()[2].store, DEF);

    // The access log knows the family, not the body.
    fx.gate.settle_logs();
    let logs = fx.gate.logs();
    assert!(logs.contains("family=payments"), "{logs}");
    assert!(
        !logs.contains(CARD_NUMBER),
        "the card number is in a log line"
    );
    assert!(
        !logs.contains(CARDHOLDER),
        "the cardholder is in a log line"
    );
}

#[tokio::test]
async fn a_payment_without_a_good_order_id_mints_nothing() {
    let fx = fixture();
    let resp = fx.send(fx.pay(ABC, &PAYER, None, CARD_BODY)).await;
    let body = assert_problem(&resp, 400, "bad_request");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("X-Bcgate-Order-Id"),
        "{body}"
    );
    for bad in [
        "0",
        "-4",
        "+4",
        "4x",
        "4 2",
        "0x10",
        "",
        "99999999999999999999",
        "4.0",
    ] {
        let resp = fx.send(fx.pay(ABC, &PAYER, Some(bad), CARD_BODY)).await;
        assert_problem(&resp, 400, "bad_request");
    }
    assert_eq!(fx.mock.stats().pats_minted, 0);
    assert!(fx.mock.requests().is_empty(), "nothing reached any host");
}

#[tokio::test]
async fn a_client_without_the_grant_cannot_pay() {
    let fx = fixture();
    for who in [&NOTHING, &SF_ANON, &B2B_MODIFY, &ACCT_WRITE] {
        let resp = fx.send(fx.pay(ABC, who, Some("77"), CARD_BODY)).await;
        let body = assert_problem(&resp, 403, "scope_denied");
        assert!(
            body["required_scopes"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s == "store_payments_access_token_create")),
            "{body}"
        );
    }
    // Only POST is a payment; the payments host has no other route on bcgate.
    let resp = fx
        .send(
            fx.req(Method::GET, &format!("/stores/{ABC}/payments"), &PAYER)
                .header("x-bcgate-order-id", "77"),
        )
        .await;
    assert_problem(&resp, 403, "route_unknown");
    let resp = fx
        .send(
            fx.req(
                Method::POST,
                &format!("/stores/{ABC}/payments/refunds"),
                &PAYER,
            )
            .header("x-bcgate-order-id", "77")
            .body(CARD_BODY),
        )
        .await;
    assert_problem(&resp, 403, "route_unknown");
    // A store the client may not use.
    let resp = fx.send(fx.pay(GHI, &PAYER, Some("77"), CARD_BODY)).await;
    assert_problem(&resp, 403, "store_not_allowed");
    assert_eq!(fx.mock.stats().pats_minted, 0);
    assert!(fx.mock.requests().is_empty(), "nothing reached any host");
}

#[tokio::test]
async fn a_refused_mint_sends_nothing_to_the_payments_host() {
    let fx = fixture();
    fx.mock.fail_mints(Some(403));
    let resp = fx.send(fx.pay(ABC, &PAYER, Some("12"), CARD_BODY)).await;
    let body = assert_problem(&resp, 502, "mint_failed");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("payment access token")
            && detail.contains("store_payments_access_token_create"),
        "{body}"
    );
    fx.mock.fail_mints(Some(500));
    let resp = fx.send(fx.pay(ABC, &PAYER, Some("12"), CARD_BODY)).await;
    assert_problem(&resp, 502, "mint_failed");
    // BigCommerce refusing the store's own token is said as that.
    fx.mock.fail_mints(Some(401));
    let resp = fx.send(fx.pay(ABC, &PAYER, Some("12"), CARD_BODY)).await;
    assert_problem(&resp, 401, "store_token_refused");
    assert_eq!(fx.mock.stats().pats_minted, 0);
    assert!(
        fx.at_payments().is_empty(),
        "nothing reached the payments host"
    );
    assert_eq!(
        fx.mock.requests().len(),
        3,
        "one mint request per payment, no retry"
    );

    fx.mock.fail_mints(None);
    let resp = fx.send(fx.pay(ABC, &PAYER, Some("12"), CARD_BODY)).await;
    assert_eq!(resp.status, 201, "{}", resp.text());
    fx.gate.settle_logs();
    let logs = fx.gate.logs();
    assert!(!logs.contains(CARD_NUMBER) && !logs.contains(CARDHOLDER));
}
