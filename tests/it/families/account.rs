//! Account-level GraphQL: `POST /accounts/{uuid}/graphql` with the
//! account's own token, for the accounts a client lists.

use super::*;

const QUERY: &str = r#"{"query":"query { account { id } }"}"#;
const MUTATION: &str =
    r#"{"query":"mutation { user { addUser(input: {email: \"a@example.com\"}) { id } } }"}"#;

fn account_gql(fx: &Fx, uuid: &str, who: &TestClient, body: &str) -> reqwest::RequestBuilder {
    fx.req(Method::POST, &format!("/accounts/{uuid}/graphql"), who)
        .header("content-type", "application/json")
        .body(body.to_owned())
}

#[tokio::test]
async fn a_query_with_a_read_scope_goes_with_the_accounts_token() {
    let fx = fixture();
    let resp = fx.send(account_gql(&fx, ACC_A, &ACCT_READ, QUERY)).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["data"]["account"]["id"], ACC_A);
    let rec = fx.mock.only_request();
    assert_eq!(rec.path, format!("/accounts/{ACC_A}/graphql"));
    assert_eq!(rec.tokens(), vec![T_ACC_A.to_owned()]);
    assert_eq!(rec.body, QUERY.as_bytes());

    // A mutation needs a modify-level account scope.
    let resp = fx.send(account_gql(&fx, ACC_A, &ACCT_READ, MUTATION)).await;
    assert_problem(&resp, 403, "scope_denied");
    let resp = fx
        .send(account_gql(&fx, ACC_A, &ACCT_WRITE, MUTATION))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    // Each account with its own token (B's is read from a file).
    let resp = fx.send(account_gql(&fx, ACC_B, &ACCT_WRITE, QUERY)).await;
    assert_eq!(resp.json()["data"]["account"]["id"], ACC_B);
    let sent = fx.mock.requests();
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[2].tokens(), vec![T_ACC_B.to_owned()]);
}

#[tokio::test]
async fn accounts_outside_the_clients_list_are_refused() {
    let fx = fixture();
    for (uuid, who) in [
        (ACC_B, &ACCT_READ),
        (ACC_UNKNOWN, &ACCT_READ),
        (ACC_UNKNOWN, &ACCT_WRITE),
        (ACC_A, &NOTHING),
        (ACC_A, &PAYER),
        // Another spelling of a listed account is another account.
        ("0B6A4F2E-3C1D-4E5F-8A9B-0C1D2E3F4A5B", &ACCT_READ),
    ] {
        let resp = fx.send(account_gql(&fx, uuid, who, QUERY)).await;
        let body = assert_problem(&resp, 403, "account_not_allowed");
        assert!(
            !body.to_string().contains(T_ACC_A) && !body.to_string().contains(T_ACC_B),
            "{body}"
        );
    }
    // Only /graphql exists under an account.
    for path in [
        format!("/accounts/{ACC_A}/graphql/x"),
        format!("/accounts/{ACC_A}"),
        format!("/accounts/{ACC_A}/v3/users"),
    ] {
        let resp = fx
            .send(fx.req(Method::POST, &path, &ACCT_READ).body(QUERY))
            .await;
        assert_problem(&resp, 403, "route_unknown");
    }
    // An account path under a store is the store's api path, never an account's.
    let resp = fx
        .send(
            fx.req(
                Method::POST,
                &format!("/stores/{ABC}/accounts/{ACC_A}/graphql"),
                &ACCT_READ,
            )
            .body(QUERY),
        )
        .await;
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert!(fx.mock.requests().is_empty(), "nothing reached any host");
}
