//! No store token or client key in logs or bodies.

use super::*;

// ---------------------------------------------------------------------------
// Secrets

#[tokio::test]
async fn no_token_or_key_in_logs_or_bodies() {
    let fx = fixture();
    let mut responses = Vec::new();
    responses.push(
        fx.get(
            "/stores/abc123/v3/catalog/products?secret_q=QSECRET-in-query-9x",
            &ADMIN,
        )
        .await,
    );
    responses.push(fx.get("/stores/def456/v3/catalog/products", &ADMIN).await);
    responses.push(fx.get("/stores/ghi789/v3/catalog/products", &ADMIN).await);
    responses.push(fx.get("/stores/abc123/v3/catalog/products", &READER).await);
    responses.push(
        fx.post_json("/stores/abc123/v3/catalog/products", &READER, "{}")
            .await,
    );
    responses.push(fx.get("/stores/def456/v3/catalog/products", &READER).await);
    responses.push(
        send(
            fx.http
                .get(fx.gate.url("/stores/abc123/v3/catalog/products"))
                .header("x-auth-token", BOGUS_KEY),
        )
        .await,
    );
    responses.push(
        send(
            fx.http
                .get(fx.gate.url("/stores/abc123/v3/catalog/products"))
                .bearer_auth(BOGUS_KEY),
        )
        .await,
    );
    responses.push(
        send(fx.http.get(fx.gate.url(&format!(
            "/stores/abc123/v3/catalog/products?access_token={BOGUS_KEY}"
        ))))
        .await,
    );
    responses.push(
        send(
            fx.req(Method::GET, "/stores/abc123/v3/catalog/products", &ADMIN)
                .header("x-auth-token", READER.key),
        )
        .await,
    );
    responses.push(
        fx.get("/stores/abc123/v3/catalog/products?mock_status=401", &ADMIN)
            .await,
    );
    responses.push(
        fx.post_json("/stores/abc123/graphql", &GQL_READ, "nonsense")
            .await,
    );
    for resp in &responses {
        assert_no_secret_in(resp, &format!("{} response", resp.status));
        assert!(!resp.text().contains(BOGUS_KEY));
    }
    let mut secrets = all_secrets();
    secrets.push("QSECRET-in-query-9x");
    fx.gate.assert_logs_free_of(&secrets);
    // The upstream never saw a caller key.
    for rec in fx.mock.requests() {
        for (name, value) in &rec.headers {
            let value = String::from_utf8_lossy(value);
            for c in CLIENTS {
                assert!(
                    !value.contains(c.key),
                    "a client key reached the upstream in {name}"
                );
            }
        }
        assert!(!String::from_utf8_lossy(&rec.body).contains(BOGUS_KEY));
    }
}
