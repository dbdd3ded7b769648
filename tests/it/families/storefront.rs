//! Storefront GraphQL: a channel's origin with a private token carrying the
//! client's storefront scopes, or a customer impersonation token acting as
//! the customer a client names or a verified current-customer JWT names.

use std::time::Duration;

use bcgate_testkit::mock::MintedKind;
use bcgate_testkit::{customer_jwt, customer_jwt_claims, sign_hs256};
use serde_json::json;

use super::*;

/// A current-customer JWT for `customer` of `store`, as its storefront
/// hands one to the app with `client_id` and `secret`.
fn shopper_jwt(store: &str, client_id: &str, secret: &str, customer: u64, ttl_s: i64) -> String {
    let mut claims = customer_jwt_claims(client_id, customer, ttl_s);
    claims["store_hash"] = json!(store);
    claims["sub"] = json!(store);
    sign_hs256(&claims, secret)
}

#[tokio::test]
async fn a_private_token_carries_exactly_the_clients_scopes_and_is_reused() {
    let fx = fixture();
    let resp = fx
        .send(
            fx.storefront(ABC, "", &SF_CUSTOMER)
                .header("cookie", "SHOP_SESSION_TOKEN=caller-session"),
        )
        .await;
    let echo = storefront_echo(&resp);
    assert_eq!(echo["store"], ABC);
    assert_eq!(echo["channel"], 1, "channel 1 without channel_id");
    assert_eq!(echo["kind"], "private");
    assert_eq!(echo["scopes"], json!(["Customer", "B2B"]));
    assert_eq!(echo["customer_id"], Value::Null);

    let minted = fx.mock.minted();
    assert_eq!(minted.len(), 1);
    assert_eq!(minted[0].kind, MintedKind::Private);
    assert_eq!(minted[0].store, ABC);
    assert_eq!(minted[0].channel_ids, vec![1]);
    assert_eq!(minted[0].scopes, vec!["Customer", "B2B"]);
    let lifetime = minted[0].expires_at - minted[0].minted_at;
    assert!(
        (86_395..=86_405).contains(&lifetime),
        "asked to live {lifetime} s"
    );

    let sent = fx.at_storefronts();
    assert_eq!(sent.len(), 1);
    let rec = &sent[0];
    assert_eq!(rec.path, format!("{STOREFRONT_PREFIX}/{ABC}/1/graphql"));
    assert_eq!(rec.body, SF_QUERY.as_bytes());
    assert!(!rec.has_header("x-auth-token"));
    assert!(!rec.has_header("cookie"));

    // The same client again, and by its default store: the cached token.
    let resp = fx.send(fx.storefront(ABC, "", &SF_CUSTOMER)).await;
    assert_eq!(storefront_echo(&resp)["scopes"], json!(["Customer", "B2B"]));
    let resp = fx
        .send(
            fx.req(Method::POST, "/storefront/graphql", &SF_CUSTOMER)
                .body(SF_QUERY),
        )
        .await;
    assert_eq!(storefront_echo(&resp)["store"], ABC);
    assert_eq!(
        fx.mock.stats().private_tokens_minted,
        1,
        "one token, reused"
    );
    let sent = fx.at_storefronts();
    assert_eq!(sent.len(), 3);
    assert!(
        sent.windows(2)
            .all(|w| w[0].header("authorization") == w[1].header("authorization")),
        "every request carried the one cached token"
    );

    // Another client's grants are another token: never shared.
    let resp = fx.send(fx.storefront(ABC, "", &SF_ANON)).await;
    assert_eq!(storefront_echo(&resp)["scopes"], json!(["Unauthenticated"]));
    assert_eq!(fx.mock.stats().private_tokens_minted, 2);
    assert_eq!(fx.mock.minted()[1].scopes, vec!["Unauthenticated"]);

    // The caller's key in Authorization: Bearer identifies it, and is
    // replaced by the minted token.
    let resp = fx
        .send(
            fx.http
                .post(fx.gate.url(&format!("/stores/{ABC}/storefront/graphql")))
                .bearer_auth(SF_ANON.key)
                .body(SF_QUERY),
        )
        .await;
    assert_eq!(storefront_echo(&resp)["kind"], "private");
    assert_eq!(fx.mock.stats().private_tokens_minted, 2);
}

#[tokio::test]
async fn channel_id_chooses_a_configured_channel_only() {
    let fx = fixture();
    let resp = fx.send(fx.storefront(ABC, "?channel_id=2", &SF_ANON)).await;
    let echo = storefront_echo(&resp);
    assert_eq!(
        (echo["store"].clone(), echo["channel"].clone()),
        (json!(ABC), json!(2))
    );
    let resp = fx.send(fx.storefront(ABC, "?channel_id=1", &SF_ANON)).await;
    assert_eq!(storefront_echo(&resp)["channel"], 1);
    let resp = fx.send(fx.storefront(ABC, "?channel_id=2", &SF_ANON)).await;
    assert_eq!(storefront_echo(&resp)["channel"], 2);
    let minted = fx.mock.minted();
    assert_eq!(minted.len(), 2, "one token per channel");
    assert_eq!(minted[0].channel_ids, vec![2]);
    assert_eq!(minted[1].channel_ids, vec![1]);
    let paths: Vec<String> = fx.at_storefronts().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [2, 1, 2].map(|c| format!("{STOREFRONT_PREFIX}/{ABC}/{c}/graphql"))
    );

    let before = fx.mock.requests().len();
    for (store, query) in [
        (ABC, "?channel_id=3"),
        (DEF, "?channel_id=2"),
        (ABC, "?channel_id=4294967295"),
        (JKL, ""),
        (JKL, "?channel_id=1"),
    ] {
        let resp = fx.send(fx.storefront(store, query, &SF_ANON)).await;
        assert_problem(&resp, 403, "channel_unknown");
    }
    for query in [
        "?channel_id=0",
        "?channel_id=-1",
        "?channel_id=two",
        "?channel_id=4294967296",
        "?channel_id=1&channel_id=2",
        "?channel_id=1&origin=https://evil.example",
        "?query=%7B%7D",
    ] {
        let resp = fx.send(fx.storefront(ABC, query, &SF_ANON)).await;
        assert_problem(&resp, 400, "bad_request");
    }
    assert_eq!(fx.mock.requests().len(), before, "nothing minted or sent");
    assert_eq!(fx.mock.stats().private_tokens_minted, 2);
}

#[tokio::test]
async fn clients_without_a_storefront_grant_are_refused() {
    let fx = fixture();
    for who in [&NOTHING, &PAYER, &B2B_MODIFY] {
        let resp = fx.send(fx.storefront(ABC, "", who)).await;
        assert_problem(&resp, 403, "scope_denied");
    }
    // The impersonation grant alone is no private token.
    let resp = fx.send(fx.storefront(ABC, "", &SF_IMP)).await;
    assert_problem(&resp, 403, "scope_denied");
    // A storefront path other than /graphql, and another method.
    let resp = fx
        .send(
            fx.req(
                Method::POST,
                &format!("/stores/{ABC}/storefront/cart"),
                &SF_ANON,
            )
            .body(SF_QUERY),
        )
        .await;
    assert_problem(&resp, 403, "route_unknown");
    let resp = fx
        .send(fx.req(
            Method::GET,
            &format!("/stores/{ABC}/storefront/graphql"),
            &SF_ANON,
        ))
        .await;
    assert_problem(&resp, 403, "route_unknown");
    assert!(fx.mock.requests().is_empty(), "nothing minted or sent");
}

#[tokio::test]
async fn a_token_is_renewed_before_it_expires() {
    // Renewed once it has less than 56 s of its 60 s left: after 4 s (room
    // for a loaded machine between the first two requests).
    let fx = fixture_with(Opts {
        mint: Some((60, 56)),
    });
    let resp = fx.send(fx.storefront(ABC, "", &SF_ANON)).await;
    assert_eq!(storefront_echo(&resp)["kind"], "private");
    let minted = fx.mock.minted();
    let lifetime = minted[0].expires_at - minted[0].minted_at;
    assert!((55..=65).contains(&lifetime), "asked to live {lifetime} s");
    let resp = fx.send(fx.storefront(ABC, "", &SF_ANON)).await;
    assert_eq!(resp.status, 200);
    assert_eq!(fx.mock.stats().private_tokens_minted, 1, "still fresh");

    tokio::time::sleep(Duration::from_millis(4_500)).await;
    for _ in 0..3 {
        let resp = fx.send(fx.storefront(ABC, "", &SF_ANON)).await;
        assert_eq!(storefront_echo(&resp)["kind"], "private");
    }
    let stats = fx.mock.stats();
    assert_eq!(stats.private_tokens_minted, 2, "renewed once");
    assert_eq!(stats.expired_tokens_seen, 0);
    let auths: Vec<Option<String>> = fx
        .at_storefronts()
        .iter()
        .map(|r| r.header("authorization"))
        .collect();
    assert_eq!(auths.len(), 5);
    assert_eq!(auths[0], auths[1]);
    assert_ne!(auths[1], auths[2], "the renewed token was used");
    assert_eq!(auths[2], auths[4]);
    assert_eq!(
        fx.mock.requests().len(),
        7,
        "five storefront requests and two mints, no refusals"
    );
}

#[tokio::test]
async fn a_revoked_token_is_renewed_once_per_request() {
    let fx = fixture();
    let resp = fx.send(fx.storefront(ABC, "", &SF_CUSTOMER)).await;
    assert_eq!(resp.status, 200);
    let cit_resp = fx
        .send(
            fx.storefront(ABC, "", &SF_IMP)
                .header("x-bc-customer-id", "8"),
        )
        .await;
    assert_eq!(storefront_echo(&cit_resp)["customer_id"], 8);

    for round in 1..=2u64 {
        fx.mock.revoke_minted_tokens();
        let before = fx.at_storefronts().len();
        let resp = fx.send(fx.storefront(ABC, "", &SF_CUSTOMER)).await;
        assert_eq!(storefront_echo(&resp)["kind"], "private", "round {round}");
        let resp = fx
            .send(
                fx.storefront(ABC, "", &SF_IMP)
                    .header("x-bc-customer-id", "8"),
            )
            .await;
        assert_eq!(storefront_echo(&resp)["customer_id"], 8, "round {round}");
        let stats = fx.mock.stats();
        assert_eq!(stats.private_tokens_minted, 1 + round, "round {round}");
        assert_eq!(stats.cits_minted, 1 + round, "round {round}");
        let sent = &fx.at_storefronts()[before..];
        assert_eq!(sent.len(), 4, "each request: refused once, then sent again");
        assert_eq!(sent[0].body, sent[1].body, "the same request sent again");
        assert_ne!(
            sent[0].header("authorization"),
            sent[1].header("authorization")
        );
        assert_eq!(sent[3].header("x-bc-customer-id").as_deref(), Some("8"));
        // The renewed token is cached: the next request needs no mint.
        let resp = fx.send(fx.storefront(ABC, "", &SF_CUSTOMER)).await;
        assert_eq!(resp.status, 200);
        assert_eq!(fx.mock.stats().private_tokens_minted, 1 + round);
    }
    assert_eq!(fx.mock.stats().expired_tokens_seen, 0);
}

#[tokio::test]
async fn a_storefront_that_refuses_every_token_gets_one_retry_per_request() {
    let fx = fixture();
    // GHI's channel 1 is configured on a path whose storefront accepts no
    // token minted for channel 1.
    for n in 1..=3u64 {
        let resp = fx.send(fx.storefront(GHI, "", &SF_ANON)).await;
        assert_eq!(
            resp.status,
            401,
            "the storefront's own refusal: {}",
            resp.text()
        );
        assert_eq!(fx.mock.stats().private_tokens_minted, n + 1, "request {n}");
        assert_eq!(
            fx.at_storefronts().len() as u64,
            2 * n,
            "request {n}: sent at most twice"
        );
    }
}

#[tokio::test]
async fn impersonation_needs_its_grant() {
    let fx = fixture();
    let resp = fx
        .send(
            fx.storefront(ABC, "?channel_id=2", &SF_IMP)
                .header("x-bc-customer-id", "42"),
        )
        .await;
    let echo = storefront_echo(&resp);
    assert_eq!(echo["kind"], "impersonation");
    assert_eq!(echo["customer_id"], 42);
    assert_eq!(echo["channel"], 2);
    let minted = fx.mock.minted();
    assert_eq!(minted.len(), 1);
    assert_eq!(minted[0].kind, MintedKind::Impersonation);
    assert_eq!(minted[0].channel_ids, vec![2]);
    let rec = fx.at_storefronts().pop().expect("sent");
    assert_eq!(rec.header_all("x-bc-customer-id"), vec!["42".to_owned()]);

    // One CIT per store and channel, whoever is impersonated.
    let resp = fx
        .send(
            fx.storefront(ABC, "?channel_id=2", &SF_IMP)
                .header("x-bc-customer-id", "43"),
        )
        .await;
    assert_eq!(storefront_echo(&resp)["customer_id"], 43);
    assert_eq!(fx.mock.stats().cits_minted, 1);

    let before = fx.mock.requests().len();
    for who in [&SF_CUSTOMER, &SF_ANON, &NOTHING] {
        let resp = fx
            .send(fx.storefront(ABC, "", who).header("x-bc-customer-id", "42"))
            .await;
        assert_problem(&resp, 403, "scope_denied");
    }
    for bad in ["0", "-1", "4x", "", "1 2"] {
        let resp = fx
            .send(
                fx.storefront(ABC, "", &SF_IMP)
                    .header("x-bc-customer-id", bad),
            )
            .await;
        assert_problem(&resp, 400, "bad_request");
    }
    assert_eq!(fx.mock.requests().len(), before, "nothing minted or sent");
    assert_eq!(fx.mock.stats().cits_minted, 1);
}

#[tokio::test]
async fn a_verified_customer_token_impersonates_its_customer() {
    let fx = fixture();
    let jwt = shopper_jwt(ABC, ABC_CLIENT_ID, ABC_CLIENT_SECRET, 77, 600);
    fx.sent_secret(&jwt);
    let resp = fx
        .send(
            fx.storefront(ABC, "", &SF_CUSTOMER)
                .header("x-bcgate-customer-token", &jwt),
        )
        .await;
    let echo = storefront_echo(&resp);
    assert_eq!(echo["kind"], "impersonation");
    assert_eq!(echo["customer_id"], 77, "the JWT's customer");
    let rec = fx.at_storefronts().pop().expect("sent");
    assert_eq!(rec.header_all("x-bc-customer-id"), vec!["77".to_owned()]);
    assert!(!rec.has_header("x-bcgate-customer-token"));
    // DEF's own client id and secret (read from a file) verify its shoppers.
    let jwt = shopper_jwt(DEF, DEF_CLIENT_ID, DEF_CLIENT_SECRET, 5, 600);
    fx.sent_secret(&jwt);
    let resp = fx
        .send(
            fx.storefront(DEF, "", &SF_CUSTOMER)
                .header("x-bcgate-customer-token", &jwt),
        )
        .await;
    assert_eq!(storefront_echo(&resp)["customer_id"], 5);
    assert_eq!(fx.mock.stats().cits_minted, 2);

    let before = fx.mock.requests().len();
    let none_alg = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut claims = customer_jwt_claims(ABC_CLIENT_ID, 77, 600);
        claims["store_hash"] = json!(ABC);
        format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(claims.to_string())
        )
    };
    let mut string_id = customer_jwt_claims(ABC_CLIENT_ID, 77, 600);
    string_id["store_hash"] = json!(ABC);
    string_id["customer"]["id"] = json!("77");
    let refused = [
        (
            "expired",
            shopper_jwt(ABC, ABC_CLIENT_ID, ABC_CLIENT_SECRET, 77, -120),
        ),
        (
            "wrong secret",
            shopper_jwt(ABC, ABC_CLIENT_ID, DEF_CLIENT_SECRET, 77, 600),
        ),
        (
            "other aud",
            shopper_jwt(ABC, DEF_CLIENT_ID, ABC_CLIENT_SECRET, 77, 600),
        ),
        (
            "other store",
            shopper_jwt(DEF, ABC_CLIENT_ID, ABC_CLIENT_SECRET, 77, 600),
        ),
        // The testkit's default names store "mock".
        (
            "mock store",
            customer_jwt(ABC_CLIENT_ID, ABC_CLIENT_SECRET, 77, 600),
        ),
        ("alg none", none_alg),
        ("string id", sign_hs256(&string_id, ABC_CLIENT_SECRET)),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, jwt) in refused {
        fx.sent_secret(&jwt);
        let resp = fx
            .send(
                fx.storefront(ABC, "", &SF_CUSTOMER)
                    .header("x-bcgate-customer-token", &jwt),
            )
            .await;
        let body = assert_problem(&resp, 401, "invalid_customer_token");
        assert!(
            !body.to_string().contains(&jwt),
            "{what}: the token is echoed"
        );
    }
    // A store without a client id and secret cannot verify one.
    let jwt = shopper_jwt(GHI, ABC_CLIENT_ID, ABC_CLIENT_SECRET, 77, 600);
    fx.sent_secret(&jwt);
    let resp = fx
        .send(
            fx.storefront(GHI, "", &SF_CUSTOMER)
                .header("x-bcgate-customer-token", &jwt),
        )
        .await;
    assert_problem(&resp, 401, "invalid_customer_token");
    // Both ways of naming a customer at once.
    let jwt = shopper_jwt(ABC, ABC_CLIENT_ID, ABC_CLIENT_SECRET, 77, 600);
    let resp = fx
        .send(
            fx.storefront(ABC, "", &SF_IMP)
                .header("x-bcgate-customer-token", &jwt)
                .header("x-bc-customer-id", "1"),
        )
        .await;
    assert_problem(&resp, 400, "bad_request");
    // A valid JWT needs the Customer grant.
    for who in [&SF_IMP, &SF_ANON] {
        let resp = fx
            .send(
                fx.storefront(ABC, "", who)
                    .header("x-bcgate-customer-token", &jwt),
            )
            .await;
        assert_problem(&resp, 403, "scope_denied");
    }
    assert_eq!(fx.mock.requests().len(), before, "nothing minted or sent");
    assert_eq!(fx.mock.stats().cits_minted, 2);
}

#[tokio::test]
async fn concurrent_first_requests_share_one_mint() {
    let fx = fixture();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let req = if i % 2 == 0 {
            fx.storefront(DEF, "", &SF_ANON)
        } else {
            // Over HTTP/1.1 too: another connection each.
            support::client_h1(&fx.ca)
                .post(fx.gate.url(&format!("/stores/{DEF}/storefront/graphql")))
                .header("x-auth-token", SF_ANON.key)
                .body(SF_QUERY)
        };
        set.spawn(support::send(req));
    }
    while let Some(done) = set.join_next().await {
        let resp = fx.keep(done.expect("request task"));
        assert_eq!(storefront_echo(&resp)["store"], DEF);
    }
    assert_eq!(
        fx.mock.stats().private_tokens_minted,
        1,
        "one mint for 20 requests"
    );
    assert_eq!(fx.at_storefronts().len(), 20);

    // The same for impersonation tokens.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20u64 {
        set.spawn(support::send(
            fx.storefront(DEF, "", &SF_IMP)
                .header("x-bc-customer-id", (100 + i).to_string()),
        ));
    }
    while let Some(done) = set.join_next().await {
        let resp = fx.keep(done.expect("request task"));
        assert_eq!(storefront_echo(&resp)["kind"], "impersonation");
    }
    assert_eq!(fx.mock.stats().cits_minted, 1, "one mint for 20 requests");
}
