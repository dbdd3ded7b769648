//! The properties that cut across families, each tried the way a caller
//! would try to break it: minted tokens never leave bcgate, a token is only
//! ever sent for the store and channel it was minted for, the caller never
//! chooses the origin, and each host gets only its own credential.

use bcgate_testkit::customer_jwt_claims;
use bcgate_testkit::sign_hs256;
use serde_json::json;

use super::*;

/// One request of every family and kind of minted token, and the ways a
/// token is renewed or refused.
async fn exercise_every_family(fx: &Fx) {
    let ok = |resp: &Resp, what: &str| {
        assert!(
            resp.status == 200 || resp.status == 201,
            "{what}: {} {}",
            resp.status,
            resp.text()
        );
    };
    for order in ["501", "502"] {
        let resp = fx.send(fx.pay(ABC, &PAYER, Some(order), CARD_BODY)).await;
        ok(&resp, "payment");
    }
    let resp = fx.send(fx.pay(DEF, &PAYER, Some("503"), CARD_BODY)).await;
    ok(&resp, "payment on def");
    for (store, query, who) in [
        (ABC, "", &SF_ANON),
        (ABC, "?channel_id=2", &SF_ANON),
        (ABC, "", &SF_CUSTOMER),
        (DEF, "", &SF_CUSTOMER),
    ] {
        let resp = fx.send(fx.storefront(store, query, who)).await;
        ok(&resp, "private token");
    }
    let resp = fx
        .send(
            fx.storefront(ABC, "", &SF_IMP)
                .header("x-bc-customer-id", "31"),
        )
        .await;
    ok(&resp, "impersonation");
    let mut claims = customer_jwt_claims(ABC_CLIENT_ID, 32, 600);
    claims["store_hash"] = json!(ABC);
    let jwt = sign_hs256(&claims, ABC_CLIENT_SECRET);
    fx.sent_secret(&jwt);
    let resp = fx
        .send(
            fx.storefront(ABC, "?channel_id=2", &SF_CUSTOMER)
                .header("x-bcgate-customer-token", &jwt),
        )
        .await;
    ok(&resp, "proven customer");
    // Refused tokens and their renewals.
    fx.mock.revoke_minted_tokens();
    let resp = fx.send(fx.storefront(ABC, "", &SF_ANON)).await;
    ok(&resp, "after revocation");
    let resp = fx.send(fx.storefront(GHI, "", &SF_ANON)).await;
    assert_eq!(resp.status, 401, "a storefront refusing every token");
    // A failed mint.
    fx.mock.fail_mints(Some(422));
    let resp = fx.send(fx.pay(ABC, &PAYER, Some("504"), CARD_BODY)).await;
    assert_problem(&resp, 502, "mint_failed");
    fx.mock.fail_mints(None);
    let resp = fx
        .send(fx.req(
            Method::GET,
            &format!("/stores/{ABC}/b2b/v3/io/companies"),
            &B2B_MODIFY,
        ))
        .await;
    ok(&resp, "b2b");
    let resp = fx
        .send(
            fx.req(
                Method::POST,
                &format!("/accounts/{ACC_A}/graphql"),
                &ACCT_READ,
            )
            .body(r#"{"query":"{ account { id } }"}"#),
        )
        .await;
    ok(&resp, "account");
}

#[tokio::test]
async fn minted_tokens_never_leave_bcgate() {
    let fx = fixture();
    exercise_every_family(&fx).await;
    let tokens = fx.minted_tokens();
    // Every token the mock minted was sent to its host, so all are known here.
    assert_eq!(
        tokens.len(),
        fx.mock.minted().len(),
        "every minted token was seen"
    );
    assert!(tokens.len() >= 12, "{} tokens", tokens.len());
    let mut forms: Vec<String> = tokens.iter().flat_map(|t| secret_forms(t)).collect();
    // A token's signature alone would identify it too.
    forms.extend(
        tokens
            .iter()
            .filter_map(|t| t.rsplit('.').next().map(str::to_owned)),
    );
    for resp in fx.seen.lock().expect("seen").iter() {
        let text = resp.text();
        let headers = format!("{:?}", resp.headers);
        for form in &forms {
            assert!(
                !text.contains(form.as_str()) && !headers.contains(form.as_str()),
                "a minted token is in a {} response",
                resp.status
            );
        }
    }
    let refs: Vec<&str> = forms.iter().map(String::as_str).collect();
    fx.gate.assert_logs_free_of(&refs);
    let logs = fx.gate.logs();
    assert!(
        logs.contains("bcgate::mint") && logs.contains("DEBUG"),
        "debug logging was on, mints included:\n{logs}"
    );
    let metrics = fx.metrics();
    assert!(metrics.contains("family=\"storefront\""), "{metrics}");
    for form in &forms {
        assert!(
            !metrics.contains(form.as_str()),
            "a minted token is in /metrics"
        );
    }
}

#[tokio::test]
async fn a_token_is_only_sent_for_its_store_and_channel() {
    let fx = fixture();
    // Interleaved, so a cache keyed too coarsely would hand one store's (or
    // channel's) token to another: the mock answers 401 to that.
    for _ in 0..3 {
        for (store, query, who) in [
            (ABC, "", &SF_ANON),
            (DEF, "", &SF_ANON),
            (ABC, "?channel_id=2", &SF_ANON),
            (ABC, "?channel_id=1", &SF_CUSTOMER),
            (DEF, "?channel_id=1", &SF_CUSTOMER),
        ] {
            let resp = fx.send(fx.storefront(store, query, who)).await;
            let echo = storefront_echo(&resp);
            assert_eq!(echo["store"], store);
        }
        for (store, customer) in [(ABC, "1"), (DEF, "2")] {
            let resp = fx
                .send(
                    fx.storefront(store, "", &SF_IMP)
                        .header("x-bc-customer-id", customer),
                )
                .await;
            assert_eq!(storefront_echo(&resp)["store"], store);
        }
        for store in [ABC, DEF] {
            let resp = fx.send(fx.pay(store, &PAYER, Some("600"), CARD_BODY)).await;
            assert_eq!(resp.status, 201, "{}", resp.text());
        }
    }
    // No host refused a token: none was sent anywhere it does not belong.
    let storefronts = fx.at_storefronts();
    assert_eq!(storefronts.len(), 21, "no retries: no refusals");
    assert_eq!(fx.at_payments().len(), 6);
    // One token per store, channel, kind and scope set.
    let mut counts = std::collections::BTreeMap::new();
    for m in fx.mock.minted() {
        if m.kind == bcgate_testkit::mock::MintedKind::Pat {
            continue;
        }
        *counts
            .entry((
                m.store.clone(),
                m.kind.as_str(),
                m.channel_ids.clone(),
                m.scopes.clone(),
            ))
            .or_insert(0) += 1;
    }
    let expected = [
        (ABC, "impersonation", vec![1], vec![]),
        (ABC, "private", vec![1], vec!["Customer", "B2B"]),
        (ABC, "private", vec![1], vec!["Unauthenticated"]),
        (ABC, "private", vec![2], vec!["Unauthenticated"]),
        (DEF, "impersonation", vec![1], vec![]),
        (DEF, "private", vec![1], vec!["Customer", "B2B"]),
        (DEF, "private", vec![1], vec!["Unauthenticated"]),
    ];
    let got: Vec<_> = counts.iter().collect();
    assert_eq!(got.len(), expected.len(), "{got:?}");
    for (store, kind, channels, scopes) in expected {
        let key = (
            store.to_owned(),
            kind,
            channels,
            scopes.into_iter().map(str::to_owned).collect::<Vec<_>>(),
        );
        assert_eq!(counts.get(&key), Some(&1), "{key:?} in {got:?}");
    }
    let stats = fx.mock.stats();
    assert_eq!(stats.pats_minted, 6, "a PAT per payment");
    assert_eq!(stats.expired_tokens_seen, 0);
}

#[tokio::test]
async fn the_caller_cannot_choose_the_origin() {
    let fx = fixture();
    let mock = fx.mock.addr.to_string();
    let body = SF_QUERY;
    // Absolute-form targets naming another host, for every family.
    for target in [
        format!("https://evil.example/stores/{ABC}/storefront/graphql"),
        format!(
            "https://evil.example:{}/stores/{ABC}/payments",
            fx.gate.addr.port()
        ),
        format!("https://attacker.test/stores/{ABC}/b2b/v3/io/companies"),
        format!(
            "https://127.0.0.2:{}/accounts/{ACC_A}/graphql",
            fx.gate.addr.port()
        ),
    ] {
        let request = format!(
            "POST {target} HTTP/1.1\r\nHost: evil.example\r\nX-Auth-Token: {}\r\n\
             X-Bcgate-Order-Id: 5\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            SF_ANON.key,
            body.len()
        );
        let resp = tls_exchange(&fx, request.as_bytes());
        assert_eq!(
            resp.status,
            400,
            "{target}: {}",
            String::from_utf8_lossy(&resp.body)
        );
        assert_eq!(resp.json()["code"], "bad_request");
    }
    assert!(
        fx.mock.requests().is_empty(),
        "an absolute-form target reached a host"
    );

    // A Host header (and forwarding claims) naming another host change nothing.
    let cases: [(&str, &TestClient, &str, String); 4] = [
        (
            "POST",
            &SF_ANON,
            "",
            format!("/stores/{ABC}/storefront/graphql"),
        ),
        (
            "POST",
            &PAYER,
            "X-Bcgate-Order-Id: 77\r\n",
            format!("/stores/{ABC}/payments"),
        ),
        (
            "GET",
            &B2B_MODIFY,
            "",
            format!("/stores/{ABC}/b2b/v3/io/companies"),
        ),
        ("POST", &ACCT_READ, "", format!("/accounts/{ACC_A}/graphql")),
    ];
    for (method, who, extra, path) in &cases {
        let payload: &[u8] = if path.ends_with("/payments") {
            CARD_BODY
        } else {
            body.as_bytes()
        };
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: evil.example\r\nX-Auth-Token: {}\r\n{extra}\
             X-Forwarded-Host: evil.example\r\nForwarded: host=evil.example;proto=https\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            who.key,
            payload.len()
        )
        .into_bytes();
        request.extend_from_slice(payload);
        let resp = tls_exchange(&fx, &request);
        assert!(
            resp.status == 200 || resp.status == 201,
            "{method} {path}: {} {}",
            resp.status,
            String::from_utf8_lossy(&resp.body)
        );
    }
    let hosts: Vec<(String, Option<String>)> = fx
        .mock
        .requests()
        .into_iter()
        .filter(|r| {
            !r.path.contains("/v3/payments/access_tokens")
                && !r.path.contains("/v3/storefront/api-token")
        })
        .map(|r| (r.path.clone(), r.host()))
        .collect();
    assert_eq!(
        hosts,
        vec![
            (
                format!("{STOREFRONT_PREFIX}/{ABC}/1/graphql"),
                Some(mock.clone())
            ),
            (
                format!("{PAYMENTS_PREFIX}/stores/{ABC}/payments"),
                Some(mock.clone())
            ),
            (
                format!("{B2B_PREFIX}/api/v3/io/companies"),
                Some(mock.clone())
            ),
            (format!("/accounts/{ACC_A}/graphql"), Some(mock.clone())),
        ]
    );
    for rec in fx.mock.requests() {
        assert!(!rec.has_header("x-forwarded-host") && !rec.has_header("forwarded"));
    }

    // A channel the store does not configure, even the one whose number
    // the operator's origin happens to use.
    let before = fx.mock.requests().len();
    for (store, channel) in [(GHI, 9), (ABC, 3), (DEF, 2)] {
        let resp = fx
            .send(fx.storefront(store, &format!("?channel_id={channel}"), &SF_ANON))
            .await;
        assert_problem(&resp, 403, "channel_unknown");
    }
    assert_eq!(fx.mock.requests().len(), before, "nothing minted or sent");
}

#[tokio::test]
async fn each_host_gets_only_its_own_credential() {
    let fx = fixture();
    // Every credential a caller could add, on every family, over HTTP/2 and
    // HTTP/1.1; the fixture's drop checks what each host got.
    let jwt = {
        let mut claims = customer_jwt_claims(ABC_CLIENT_ID, 9, 600);
        claims["store_hash"] = json!(ABC);
        sign_hs256(&claims, ABC_CLIENT_SECRET)
    };
    fx.sent_secret(&jwt);
    let add = |req: reqwest::RequestBuilder| {
        req.header("authorization", "PAT caller-pat")
            .header("cookie", "SHOP_TOKEN=caller")
            .header("authtoken", "caller-legacy-b2b")
            .header("x-store-hash", DEF)
            .header("x-auth-client", "caller-client-id")
            .header("proxy-authorization", "Basic Y2FsbGVyOnB3")
    };
    for http in [fx.http.clone(), support::client_h1(&fx.ca)] {
        let key = |who: &TestClient| who.key;
        let url = |p: &str| fx.gate.url(p);
        let requests = [
            add(http.post(url(&format!("/stores/{ABC}/payments"))))
                .header("x-auth-token", key(&PAYER))
                .header("x-bcgate-order-id", "808")
                .header("x-bc-customer-id", "5")
                .body(CARD_BODY),
            add(http.post(url(&format!("/stores/{ABC}/storefront/graphql"))))
                .header("x-auth-token", key(&SF_CUSTOMER))
                .body(SF_QUERY),
            add(http.post(url(&format!("/stores/{ABC}/storefront/graphql"))))
                .header("x-auth-token", key(&SF_CUSTOMER))
                .header("x-bcgate-customer-token", &jwt)
                .body(SF_QUERY),
            add(http.get(url(&format!("/stores/{ABC}/b2b/v3/io/companies"))))
                .header("x-auth-token", key(&B2B_MODIFY))
                .header("x-bc-customer-id", "5"),
            add(http.post(url(&format!("/accounts/{ACC_A}/graphql"))))
                .header("x-auth-token", key(&ACCT_READ))
                .body(r#"{"query":"{ account { id } }"}"#),
        ];
        for req in requests {
            let resp = fx.send(req).await;
            assert!(
                resp.status == 200 || resp.status == 201,
                "{} {}",
                resp.status,
                resp.text()
            );
        }
    }
    // The B2B host and storefronts answer 400 to a foreign credential, so
    // every success above is one already; the drop checks the rest too.
    assert_eq!(fx.mock.stats().foreign_credentials, 0);
    for rec in fx.at_b2b() {
        assert_eq!(rec.header_all("x-store-hash"), vec![ABC.to_owned()]);
    }
    for rec in fx.at_payments().iter().chain(fx.at_storefronts().iter()) {
        let auth = rec.header("authorization").unwrap_or_default();
        assert!(
            !auth.contains("caller"),
            "the caller's Authorization went upstream"
        );
    }
    assert!(
        fx.mock
            .requests()
            .iter()
            .all(|r| !r.has_header("x-auth-client") && !r.has_header("proxy-authorization")),
        "a caller credential went upstream"
    );
}
