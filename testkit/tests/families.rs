//! The mock's hosts besides the api family's REST paths: minting and
//! BigCommerce's clock, the payments host, storefront origins, the B2B
//! Edition host and account GraphQL. Each rule is tried with the right
//! credential and with the wrong ones.

use bcgate_testkit::ca::DevCa;
use bcgate_testkit::mock::{B2B_QUOTA, MintedKind, MockBigCommerce, PAT_LIFETIME_S};
use serde_json::{Value, json};

const HASH_A: &str = "abc123";
const TOKEN_A: &str = "mock-token-aaaa";
const HASH_B: &str = "def456";
const TOKEN_B: &str = "mock-token-bbbb";
const ACCOUNT: &str = "0b6a4f2e-3c1d-4e5f-8a9b-0c1d2e3f4a5b";
const ACCOUNT_TOKEN: &str = "mock-account-token";
const PAYMENTS_ACCEPT: &str = "application/vnd.bc.v1+json";

struct Fx {
    _ca: DevCa,
    mock: MockBigCommerce,
    http: reqwest::Client,
}

fn start() -> Fx {
    let ca = DevCa::new();
    let mock = MockBigCommerce::start(&ca, &[(HASH_A, TOKEN_A), (HASH_B, TOKEN_B)]);
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(ca.client_config(&[b"h2", b"http/1.1"]))
        .tls_built_in_root_certs(false)
        .no_proxy()
        .build()
        .expect("test client");
    Fx {
        _ca: ca,
        mock,
        http,
    }
}

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn send(req: reqwest::RequestBuilder) -> Resp {
    let resp = req.send().await.expect("request to the mock");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("response body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

impl Fx {
    fn post_json(&self, path: &str, token: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(self.mock.url(path))
            .header("x-auth-token", token)
            .header("accept", "application/json")
            .json(body)
    }

    async fn mint_pat(&self, hash: &str, token: &str, order: u64) -> String {
        let resp = send(self.post_json(
            &format!("/stores/{hash}/v3/payments/access_tokens"),
            token,
            &json!({"order": {"id": order}}),
        ))
        .await;
        assert_eq!(resp.status, 201, "{}", resp.body);
        resp.body["data"]["id"]
            .as_str()
            .expect("a PAT in data.id")
            .to_owned()
    }

    async fn mint_private(&self, hash: &str, channels: &[u32], scopes: &[&str]) -> String {
        let token = if hash == HASH_A { TOKEN_A } else { TOKEN_B };
        let resp = send(self.post_json(
            &format!("/stores/{hash}/v3/storefront/api-token-private"),
            token,
            &json!({"channel_ids": channels, "expires_at": now() + 86_400, "scopes": scopes}),
        ))
        .await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        resp.body["data"]["token"]
            .as_str()
            .expect("a token in data.token")
            .to_owned()
    }

    async fn mint_cit(&self, hash: &str, channels: &[u32]) -> String {
        let token = if hash == HASH_A { TOKEN_A } else { TOKEN_B };
        let resp = send(self.post_json(
            &format!("/stores/{hash}/v3/storefront/api-token-customer-impersonation"),
            token,
            &json!({"channel_ids": channels, "expires_at": now() + 86_400}),
        ))
        .await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        resp.body["data"]["token"]
            .as_str()
            .expect("a token in data.token")
            .to_owned()
    }

    fn pay(&self, hash: &str, authorization: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/stores/{hash}/payments", self.mock.payments_url()))
            .header("authorization", authorization)
            .header("accept", PAYMENTS_ACCEPT)
            .json(&json!({
                "payment": {
                    "instrument": {"type": "stored_card", "token": "abc", "verification_value": "123"},
                    "payment_method_id": "stripe.card",
                }
            }))
    }

    fn graphql(&self, hash: &str, channel: u32, token: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!(
                "{}/graphql",
                self.mock.storefront_origin(hash, channel)
            ))
            .header("authorization", format!("Bearer {token}"))
            .json(&json!({"query": "{ site { settings { storeName } } }"}))
    }

    fn b2b(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}/api/v3/io{path}", self.mock.b2b_url()))
    }
}

#[tokio::test]
async fn helper_urls_are_path_prefixes_of_the_one_listener() {
    let fx = start();
    let base = fx.mock.base_url();
    assert_eq!(fx.mock.payments_url(), format!("{base}/payments-host"));
    assert_eq!(fx.mock.b2b_url(), format!("{base}/b2b-host"));
    assert_eq!(
        fx.mock.storefront_origin(HASH_A, 7),
        format!("{base}/storefront/{HASH_A}/7")
    );
}

#[tokio::test]
async fn bigcommerce_clock_follows_the_offset_and_needs_the_token() {
    let fx = start();
    let time = |token: &str| {
        fx.http
            .get(fx.mock.url(&format!("/stores/{HASH_A}/v2/time")))
            .header("x-auth-token", token.to_owned())
    };
    let resp = send(time(TOKEN_A)).await;
    assert_eq!(resp.status, 200);
    let t = resp.body["time"].as_i64().expect("time is a number");
    assert!((t - now()).abs() <= 2, "mock time {t} vs now {}", now());
    assert!(resp.header("x-rate-limit-requests-left").is_some());

    fx.mock.set_clock_offset(-7200);
    let t = send(time(TOKEN_A)).await.body["time"]
        .as_i64()
        .expect("time");
    assert!((t - (now() - 7200)).abs() <= 2);
    assert!((fx.mock.bc_time() - t).abs() <= 2);

    assert_eq!(
        send(time(TOKEN_B)).await.status,
        401,
        "another store's token"
    );
    assert_eq!(
        send(
            fx.http
                .get(fx.mock.url(&format!("/stores/{HASH_A}/v2/time")))
        )
        .await
        .status,
        401
    );
}

#[tokio::test]
async fn pat_minting_validates_and_records_without_the_token() {
    let fx = start();
    let pat = fx.mint_pat(HASH_A, TOKEN_A, 215).await;
    let pat2 = fx.mint_pat(HASH_A, TOKEN_A, 215).await;
    assert_ne!(pat, pat2, "each minted token is fresh");
    assert_eq!(fx.mock.stats().pats_minted, 2);

    let minted = fx.mock.minted();
    assert_eq!(minted.len(), 2);
    assert_eq!(minted[0].store, HASH_A);
    assert_eq!(minted[0].kind, MintedKind::Pat);
    assert_eq!(minted[0].order_id, Some(215));
    assert!((minted[0].expires_at - (now() + PAT_LIFETIME_S)).abs() <= 2);
    let shown = format!("{minted:?}");
    assert!(
        !shown.contains(&pat) && !shown.contains(&pat2),
        "the registry never shows a token"
    );

    let path = format!("/stores/{HASH_A}/v3/payments/access_tokens");
    for bad in [
        json!({}),
        json!({"order": {}}),
        json!({"order": {"id": "215"}}),
        json!({"order": {"id": 0}}),
        json!({"order": {"id": -3}}),
        json!([1, 2]),
    ] {
        let resp = send(fx.post_json(&path, TOKEN_A, &bad)).await;
        assert_eq!(resp.status, 422, "{bad}: {}", resp.body);
        assert_eq!(resp.body["status"], 422);
        assert!(
            resp.body["errors"]
                .as_object()
                .is_some_and(|e| !e.is_empty())
        );
    }
    let resp = send(
        fx.http
            .post(fx.mock.url(&path))
            .header("x-auth-token", TOKEN_A)
            .body("{not json"),
    )
    .await;
    assert_eq!(resp.status, 422);
    let resp = send(fx.post_json(&path, TOKEN_B, &json!({"order": {"id": 1}}))).await;
    assert_eq!(resp.status, 401, "another store's token mints nothing");
    let resp = send(fx.post_json(&path, "nope", &json!({"order": {"id": 1}}))).await;
    assert_eq!(resp.status, 401);
    let resp = send(
        fx.http
            .get(fx.mock.url(&path))
            .header("x-auth-token", TOKEN_A),
    )
    .await;
    assert_eq!(resp.status, 405);
    assert_eq!(fx.mock.stats().pats_minted, 2, "no refused request minted");
}

#[tokio::test]
async fn a_pat_pays_once_for_its_store_only() {
    let fx = start();
    let pat = fx.mint_pat(HASH_A, TOKEN_A, 4242).await;

    // Wrong store first: it must not use the PAT up.
    let resp = send(fx.pay(HASH_B, &format!("PAT {pat}"))).await;
    assert_eq!(resp.status, 401, "{}", resp.body);

    let resp = send(fx.pay(HASH_A, &format!("PAT {pat}"))).await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(resp.body["data"]["status"], "success");
    assert_eq!(resp.body["data"]["transaction_type"], "purchase");
    assert_eq!(resp.body["data"]["order_id"], 4242);
    assert!(
        resp.body["data"]["id"]
            .as_str()
            .is_some_and(|id| id.len() == 36)
    );
    assert!(!resp.body.to_string().contains(&pat));

    let rec = fx.mock.requests().pop().expect("recorded");
    assert_eq!(rec.path, format!("/payments-host/stores/{HASH_A}/payments"));
    assert_eq!(rec.header("accept").as_deref(), Some(PAYMENTS_ACCEPT));
    let body: Value = serde_json::from_slice(&rec.body).expect("recorded body");
    assert_eq!(body["payment"]["payment_method_id"], "stripe.card");

    let resp = send(fx.pay(HASH_A, &format!("PAT {pat}"))).await;
    assert_eq!(resp.status, 401, "a PAT pays once: {}", resp.body);
    assert!(fx.mock.minted()[0].used);
}

#[tokio::test]
async fn payments_refuse_wrong_credentials() {
    let fx = start();
    let pat = fx.mint_pat(HASH_A, TOKEN_A, 7).await;
    let auth = format!("PAT {pat}");

    let resp = send(fx.pay(HASH_A, &auth).header("x-auth-token", TOKEN_A)).await;
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert_eq!(fx.mock.stats().foreign_credentials, 1);

    for wrong in [
        format!("Bearer {pat}"),
        format!("PAT{pat}"),
        "PAT ".to_owned(),
        "PAT not-a-minted-token".to_owned(),
    ] {
        let resp = send(fx.pay(HASH_A, &wrong)).await;
        assert_eq!(resp.status, 401, "{}", resp.body);
        assert_eq!(resp.body["status"], 401);
    }
    let resp = send(fx.pay(HASH_A, &auth).header("authorization", auth.clone())).await;
    assert_eq!(resp.status, 401, "two Authorization headers");

    // A storefront token is no PAT.
    let private = fx.mint_private(HASH_A, &[1], &["Unauthenticated"]).await;
    let resp = send(fx.pay(HASH_A, &format!("PAT {private}"))).await;
    assert_eq!(resp.status, 401);

    let resp = send(
        fx.http
            .post(format!(
                "{}/stores/{HASH_A}/payments",
                fx.mock.payments_url()
            ))
            .header("authorization", &auth)
            .header("accept", "application/json")
            .json(&json!({"payment": {"instrument": {"type": "card"}, "payment_method_id": "x"}})),
    )
    .await;
    assert_eq!(resp.status, 400, "the vnd Accept is required");

    let resp = send(
        fx.http
            .post(format!(
                "{}/stores/{HASH_A}/payments",
                fx.mock.payments_url()
            ))
            .header("authorization", &auth)
            .header("accept", PAYMENTS_ACCEPT)
            .json(&json!({"payment": {"instrument": {"type": "card"}}})),
    )
    .await;
    assert_eq!(resp.status, 422, "{}", resp.body);

    let resp = send(
        fx.http
            .get(format!(
                "{}/stores/{HASH_A}/payments",
                fx.mock.payments_url()
            ))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(resp.status, 405);
    let resp = send(
        fx.http
            .post(format!(
                "{}/stores/{HASH_A}/elsewhere",
                fx.mock.payments_url()
            ))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(resp.status, 404);

    // Still unused after all that: it pays now.
    assert_eq!(send(fx.pay(HASH_A, &auth)).await.status, 201);
}

#[tokio::test]
async fn expired_and_revoked_pats_are_refused() {
    let fx = start();
    let expiring = fx.mint_pat(HASH_A, TOKEN_A, 1).await;
    let revoked = fx.mint_pat(HASH_A, TOKEN_A, 2).await;
    fx.mock.revoke_minted_tokens();
    let resp = send(fx.pay(HASH_A, &format!("PAT {revoked}"))).await;
    assert_eq!(resp.status, 401);
    assert_eq!(fx.mock.stats().expired_tokens_seen, 0);

    let fresh = fx.mint_pat(HASH_A, TOKEN_A, 3).await;
    fx.mock.set_clock_offset(PAT_LIFETIME_S + 1);
    let resp = send(fx.pay(HASH_A, &format!("PAT {expiring}"))).await;
    assert_eq!(resp.status, 401);
    let resp = send(fx.pay(HASH_A, &format!("PAT {fresh}"))).await;
    assert_eq!(resp.status, 401, "an hour later every PAT has expired");
    assert_eq!(fx.mock.stats().expired_tokens_seen, 2);
}

#[tokio::test]
async fn storefront_token_minting_validates_the_body() {
    let fx = start();
    let private = format!("/stores/{HASH_A}/v3/storefront/api-token-private");
    let cit = format!("/stores/{HASH_A}/v3/storefront/api-token-customer-impersonation");
    let later = now() + 3600;
    for (path, bad) in [
        (&private, json!({"channel_ids": [1], "expires_at": later})),
        (
            &private,
            json!({"channel_ids": [1], "expires_at": later, "scopes": []}),
        ),
        (
            &private,
            json!({"channel_ids": [1], "expires_at": later, "scopes": ["Admin"]}),
        ),
        (
            &private,
            json!({"channel_ids": [1], "expires_at": later, "scopes": ["customer"]}),
        ),
        (
            &private,
            json!({"channel_ids": [1], "expires_at": now() - 5, "scopes": ["Customer"]}),
        ),
        (
            &private,
            json!({"channel_ids": [1], "scopes": ["Customer"]}),
        ),
        (
            &private,
            json!({"expires_at": later, "scopes": ["Customer"]}),
        ),
        (
            &private,
            json!({"channel_ids": [], "expires_at": later, "scopes": ["Customer"]}),
        ),
        (
            &private,
            json!({"channel_ids": [0], "expires_at": later, "scopes": ["Customer"]}),
        ),
        (
            &private,
            json!({"channel_ids": [1], "channel_id": 1, "expires_at": later, "scopes": ["B2B"]}),
        ),
        (&cit, json!({"channel_ids": [1]})),
        (&cit, json!({"channel_ids": [1], "expires_at": now()})),
        (&cit, json!({"expires_at": later})),
        (&cit, json!({"channel_ids": ["1"], "expires_at": later})),
    ] {
        let resp = send(fx.post_json(path, TOKEN_A, &bad)).await;
        assert_eq!(resp.status, 422, "{path} {bad}: {}", resp.body);
    }
    assert_eq!(fx.mock.stats().private_tokens_minted, 0);
    assert_eq!(fx.mock.stats().cits_minted, 0);

    // The single-channel form, and BigCommerce's clock rather than ours.
    fx.mock.set_clock_offset(-86_400);
    let resp = send(fx.post_json(
        &private,
        TOKEN_A,
        &json!({"channel_id": 2, "expires_at": now() - 3600, "scopes": ["Unauthenticated", "B2B"]}),
    ))
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(
        resp.body["data"]["token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert!(resp.body["meta"].is_object());
    let resp = send(fx.post_json(
        &cit,
        TOKEN_B,
        &json!({"channel_ids": [1], "expires_at": now()}),
    ))
    .await;
    assert_eq!(resp.status, 401, "store A's endpoint with store B's token");
    let resp = send(fx.post_json(
        &cit,
        TOKEN_A,
        &json!({"channel_ids": [1, 5], "expires_at": now()}),
    ))
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);

    let stats = fx.mock.stats();
    assert_eq!((stats.private_tokens_minted, stats.cits_minted), (1, 1));
    let minted = fx.mock.minted();
    assert_eq!(minted[0].kind, MintedKind::Private);
    assert_eq!(minted[0].channel_ids, vec![2]);
    assert_eq!(minted[0].scopes, vec!["Unauthenticated", "B2B"]);
    assert_eq!(minted[1].kind, MintedKind::Impersonation);
    assert_eq!(minted[1].channel_ids, vec![1, 5]);
    assert!(minted[1].scopes.is_empty());
}

#[tokio::test]
async fn storefront_answers_what_the_token_carried() {
    let fx = start();
    let private = fx
        .mint_private(HASH_A, &[1, 2], &["Unauthenticated", "Customer"])
        .await;
    for channel in [1, 2] {
        let resp = send(fx.graphql(HASH_A, channel, &private)).await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        let mock = &resp.body["data"]["mock"];
        assert_eq!(mock["store"], HASH_A);
        assert_eq!(mock["channel"], channel);
        assert_eq!(mock["kind"], "private");
        assert_eq!(mock["scopes"], json!(["Unauthenticated", "Customer"]));
        assert_eq!(mock["customer_id"], Value::Null);
        assert!(!resp.body.to_string().contains(&private));
    }
    let cit = fx.mint_cit(HASH_A, &[1]).await;
    let resp = send(fx.graphql(HASH_A, 1, &cit).header("x-bc-customer-id", "42")).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let mock = &resp.body["data"]["mock"];
    assert_eq!(mock["kind"], "impersonation");
    assert_eq!(mock["customer_id"], 42);
    assert_eq!(mock["scopes"], json!([]));
    let rec = fx.mock.requests().pop().expect("recorded");
    assert_eq!(rec.path, format!("/storefront/{HASH_A}/1/graphql"));
    assert_eq!(rec.header("x-bc-customer-id").as_deref(), Some("42"));
}

#[tokio::test]
async fn storefront_refuses_wrong_tokens() {
    let fx = start();
    let private = fx.mint_private(HASH_A, &[1], &["Customer"]).await;
    let cit = fx.mint_cit(HASH_A, &[1]).await;
    let pat = fx.mint_pat(HASH_A, TOKEN_A, 9).await;
    let b_token = fx.mint_private(HASH_B, &[1], &["Customer"]).await;

    let status = |r: Resp| r.status;
    assert_eq!(
        status(send(fx.graphql(HASH_A, 2, &private)).await),
        401,
        "another channel"
    );
    assert_eq!(
        status(send(fx.graphql(HASH_B, 1, &private)).await),
        401,
        "another store"
    );
    assert_eq!(
        status(send(fx.graphql(HASH_A, 1, &b_token)).await),
        401,
        "another store's token"
    );
    assert_eq!(
        status(send(fx.graphql(HASH_A, 1, &pat)).await),
        401,
        "a PAT"
    );
    assert_eq!(status(send(fx.graphql(HASH_A, 1, "made-up")).await), 401);
    let resp = send(
        fx.http
            .post(format!("{}/graphql", fx.mock.storefront_origin(HASH_A, 1)))
            .json(&json!({"query": "{ site { id } }"})),
    )
    .await;
    assert_eq!(resp.status, 401, "no Authorization");
    assert!(resp.body["errors"][0]["message"].is_string());
    let resp = send(
        fx.graphql(HASH_A, 1, &private)
            .header("authorization", format!("Bearer {private}")),
    )
    .await;
    assert_eq!(resp.status, 401, "two Authorization headers");

    // Customer id rules.
    let resp = send(
        fx.graphql(HASH_A, 1, &private)
            .header("x-bc-customer-id", "42"),
    )
    .await;
    assert_eq!(resp.status, 400, "a private token impersonates nobody");
    assert_eq!(
        status(send(fx.graphql(HASH_A, 1, &cit)).await),
        400,
        "a CIT needs a customer"
    );
    for bad in ["", "4x2", "-1", "4 2", "+42"] {
        let resp = send(fx.graphql(HASH_A, 1, &cit).header("x-bc-customer-id", bad)).await;
        assert_eq!(resp.status, 400, "customer id {bad:?}");
    }

    // Another host's credential.
    let resp = send(
        fx.graphql(HASH_A, 1, &private)
            .header("x-auth-token", TOKEN_A),
    )
    .await;
    assert_eq!(resp.status, 400);
    assert_eq!(fx.mock.stats().foreign_credentials, 1);

    // Method, path and body shape.
    let resp = send(
        fx.http
            .get(format!("{}/graphql", fx.mock.storefront_origin(HASH_A, 1)))
            .header("authorization", format!("Bearer {private}")),
    )
    .await;
    assert_eq!(resp.status, 405);
    let resp = send(
        fx.http
            .post(fx.mock.url(&format!("/storefront/{HASH_A}/one/graphql")))
            .header("authorization", format!("Bearer {private}")),
    )
    .await;
    assert_eq!(resp.status, 404);
    let resp = send(
        fx.http
            .post(format!("{}/graphql", fx.mock.storefront_origin(HASH_A, 1)))
            .header("authorization", format!("Bearer {private}"))
            .body("query { site }"),
    )
    .await;
    assert_eq!(resp.status, 400, "the body is GraphQL-over-JSON");

    // The right token still works after all of that.
    assert_eq!(status(send(fx.graphql(HASH_A, 1, &private)).await), 200);
}

#[tokio::test]
async fn storefront_tokens_expire_and_are_revoked() {
    let fx = start();
    let private = fx.mint_private(HASH_A, &[1], &["Customer"]).await;
    let cit = fx.mint_cit(HASH_A, &[1]).await;
    assert_eq!(send(fx.graphql(HASH_A, 1, &private)).await.status, 200);

    fx.mock.revoke_minted_tokens();
    assert_eq!(send(fx.graphql(HASH_A, 1, &private)).await.status, 401);
    let resp = send(fx.graphql(HASH_A, 1, &cit).header("x-bc-customer-id", "5")).await;
    assert_eq!(resp.status, 401);
    assert!(fx.mock.minted().iter().all(|m| m.revoked));
    assert_eq!(
        fx.mock.stats().expired_tokens_seen,
        0,
        "revoked is not expired"
    );

    // A token minted after the revocation works: what a renewal gets.
    let renewed = fx.mint_private(HASH_A, &[1], &["Customer"]).await;
    assert_eq!(send(fx.graphql(HASH_A, 1, &renewed)).await.status, 200);

    // A day later (BigCommerce's clock) it has expired.
    fx.mock.set_clock_offset(86_400);
    let resp = send(fx.graphql(HASH_A, 1, &renewed)).await;
    assert_eq!(resp.status, 401);
    assert_eq!(fx.mock.stats().expired_tokens_seen, 1);
}

#[tokio::test]
async fn b2b_host_needs_the_store_token_and_hash() {
    let fx = start();
    let resp = send(
        fx.b2b("/companies?limit=1")
            .header("x-auth-token", TOKEN_A)
            .header("x-store-hash", HASH_A),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.body["code"], 200);
    assert_eq!(resp.body["meta"]["message"], "SUCCESS");
    assert_eq!(resp.body["data"]["path"], "/companies");
    assert_eq!(resp.body["data"]["method"], "GET");
    assert_eq!(resp.body["data"]["query"], "limit=1");
    assert_eq!(resp.body["data"]["store_hash"], HASH_A);
    assert_eq!(
        resp.header("x-requests-allocated"),
        Some(format!("{B2B_QUOTA} times/60 s").as_str())
    );
    assert_eq!(
        resp.header("x-requests-remaining"),
        Some(format!("{} times", B2B_QUOTA - 1).as_str())
    );
    assert_eq!(resp.header("x-requests-window-length"), Some("1 times"));
    let reset = resp
        .header("x-request-window-resets-after")
        .and_then(|v| v.strip_suffix(" s"))
        .and_then(|v| v.parse::<f64>().ok())
        .expect("reset in seconds");
    assert!(reset > 0.0 && reset <= 60.0, "{reset}");

    let resp = send(
        fx.http
            .put(format!("{}/api/v3/io/companies/5", fx.mock.b2b_url()))
            .header("x-auth-token", TOKEN_A)
            .header("x-store-hash", HASH_A)
            .body("{}"),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body["data"]["method"], "PUT");
    assert_eq!(
        resp.header("x-requests-remaining"),
        Some(format!("{} times", B2B_QUOTA - 2).as_str()),
        "counting down per store"
    );
    let rec = fx.mock.requests().pop().expect("recorded");
    assert_eq!(rec.path, "/b2b-host/api/v3/io/companies/5");
    assert_eq!(rec.header("x-store-hash").as_deref(), Some(HASH_A));

    let check_401 = |resp: &Resp| {
        assert_eq!(resp.status, 401, "{}", resp.body);
        assert_eq!(resp.body["code"], 401);
        assert!(resp.body["data"].is_object());
        assert!(resp.body["meta"]["message"].is_string());
    };
    check_401(&send(fx.b2b("/companies").header("x-auth-token", TOKEN_A)).await);
    check_401(&send(fx.b2b("/companies").header("x-store-hash", HASH_A)).await);
    check_401(
        &send(
            fx.b2b("/companies")
                .header("x-auth-token", TOKEN_A)
                .header("x-store-hash", HASH_B),
        )
        .await,
    );
    check_401(
        &send(
            fx.b2b("/companies")
                .header("x-auth-token", TOKEN_A)
                .header("x-store-hash", "zzz999"),
        )
        .await,
    );
    check_401(
        &send(
            fx.b2b("/companies")
                .header("x-auth-token", TOKEN_A)
                .header("x-auth-token", TOKEN_A)
                .header("x-store-hash", HASH_A),
        )
        .await,
    );

    for foreign in ["authorization", "authtoken"] {
        let resp = send(
            fx.b2b("/companies")
                .header("x-auth-token", TOKEN_A)
                .header("x-store-hash", HASH_A)
                .header(foreign, "Bearer something"),
        )
        .await;
        assert_eq!(resp.status, 400, "{foreign}");
        assert_eq!(resp.body["code"], 400);
    }
    assert_eq!(fx.mock.stats().foreign_credentials, 2);

    let resp = send(
        fx.http
            .get(format!("{}/api/v2/io/companies", fx.mock.b2b_url()))
            .header("x-auth-token", TOKEN_A)
            .header("x-store-hash", HASH_A),
    )
    .await;
    assert_eq!(resp.status, 404);
}

#[tokio::test]
async fn account_graphql_needs_the_account_token() {
    let fx = start();
    fx.mock.add_account(ACCOUNT, ACCOUNT_TOKEN);
    let path = format!("/accounts/{ACCOUNT}/graphql");
    let q = json!({"query": "{ account { id } }"});
    let resp = send(fx.post_json(&path, ACCOUNT_TOKEN, &q)).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.body["data"]["account"]["id"], ACCOUNT);

    assert_eq!(
        send(fx.post_json(&path, TOKEN_A, &q)).await.status,
        401,
        "a store token"
    );
    assert_eq!(
        send(fx.http.post(fx.mock.url(&path)).json(&q)).await.status,
        401,
        "no token"
    );
    let other = "/accounts/11111111-2222-4333-8444-555555555555/graphql";
    assert_eq!(
        send(fx.post_json(other, ACCOUNT_TOKEN, &q)).await.status,
        404
    );
    let resp = send(
        fx.http
            .get(fx.mock.url(&path))
            .header("x-auth-token", ACCOUNT_TOKEN),
    )
    .await;
    assert_eq!(resp.status, 405);

    // The store paths still answer as before.
    let resp = send(
        fx.http
            .get(
                fx.mock
                    .url(&format!("/stores/{HASH_A}/v3/catalog/products")),
            )
            .header("x-auth-token", TOKEN_A),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body["data"]["store_hash"], HASH_A);
}

#[tokio::test]
async fn mint_failures_on_demand() {
    let fx = start();
    fx.mock.fail_mints(Some(503));
    let path = format!("/stores/{HASH_A}/v3/payments/access_tokens");
    let resp = send(fx.post_json(&path, TOKEN_A, &json!({"order": {"id": 1}}))).await;
    assert_eq!(resp.status, 503);
    assert_eq!(resp.body["status"], 503);
    let resp = send(fx.post_json(&path, "nope", &json!({"order": {"id": 1}}))).await;
    assert_eq!(resp.status, 401, "the token is checked first");
    assert_eq!(fx.mock.stats().pats_minted, 0);
    fx.mock.fail_mints(None);
    fx.mint_pat(HASH_A, TOKEN_A, 1).await;
    assert_eq!(fx.mock.stats().pats_minted, 1);
}
