//! Bodies that decide the scope: script visibility and GraphQL operations.

use super::*;

#[tokio::test]
async fn scripts_visibility_decides_the_checkout_content_scope() {
    let fx = fixture();
    let scripts = "/stores/abc123/v3/content/scripts";
    let one = "/stores/abc123/v3/content/scripts/095be615-a8ad-4c33-8e9c-c7612fbf6c9f";

    let storefront =
        r#"{"name":"a","kind":"src","src":"https://cdn.example/a.js","visibility":"storefront"}"#;
    let resp = fx.post_json(scripts, &CONTENT, storefront).await;
    assert_ok(&resp, "storefront script with Content");
    let rec = fx.take_one();
    assert_eq!(rec.body, storefront.as_bytes(), "body forwarded byte-exact");

    for vis in ["checkout", "all_pages"] {
        let body = format!(
            r#"{{"name":"a","kind":"src","src":"https://cdn.example/a.js","visibility":"{vis}"}}"#
        );
        let resp = fx.post_json(scripts, &CONTENT, &body).await;
        assert_scope_denied(&resp, &["store_content_checkout"]);
        let resp = fx.post_json(scripts, &ADMIN, &body).await;
        assert_ok(&resp, &format!("{vis} with Checkout Content"));
        assert_eq!(fx.take_one().body, body.as_bytes());
    }

    // PUT without visibility: bcgate cannot know the current one.
    let resp = send(
        fx.req(Method::PUT, one, &CONTENT)
            .header("content-type", "application/json")
            .body(r#"{"name":"renamed"}"#),
    )
    .await;
    assert_scope_denied(&resp, &["store_content_checkout"]);
    let resp = send(
        fx.req(Method::PUT, one, &CONTENT)
            .header("content-type", "application/json")
            .body(r#"{"name":"renamed","visibility":"storefront"}"#),
    )
    .await;
    assert_ok(&resp, "PUT storefront with Content");
    fx.take_one();
    let resp = send(
        fx.req(Method::PUT, one, &ADMIN)
            .header("content-type", "application/json")
            .body(r#"{"name":"renamed"}"#),
    )
    .await;
    assert_ok(&resp, "PUT without visibility, with Checkout Content");
    fx.take_one();

    // Bodies bcgate cannot judge are 400, whoever sends them.
    for (what, body, encoding) in [
        (
            "duplicate visibility",
            r#"{"name":"a","visibility":"storefront","visibility":"checkout"}"#,
            None,
        ),
        ("unparsable", r#"{"name":"a","visibility":"#, None),
        ("compressed", "\u{1f}\u{8b}\u{8}\u{0}garbage", Some("gzip")),
    ] {
        for who in [&CONTENT, &ADMIN] {
            let mut req = fx
                .req(Method::POST, scripts, who)
                .header("content-type", "application/json")
                .body(body.to_owned());
            if let Some(enc) = encoding {
                req = req.header("content-encoding", enc);
            }
            let resp = send(req).await;
            assert_problem(&resp, 400, "bad_request");
            assert!(
                !resp.text().contains(who.key),
                "{what}: key echoed in the error"
            );
        }
    }
    fx.assert_not_forwarded("script bodies refused");

    let resp = fx.get(scripts, &CONTENT).await;
    assert_ok(&resp, "list scripts");
}

#[tokio::test]
async fn graphql_queries_mutations_and_garbage() {
    let fx = fixture();
    let gql = "/stores/abc123/graphql";
    let query = r#"{"query":"query { store { settings { storeProfile { storeName } } } }"}"#;
    let shorthand = r#"{"query":"{ store { settings { storeProfile { storeName } } } }"}"#;
    let mutation = r#"{"query":"mutation { channel { createChannel(input: {name: \"x\"}) { channel { id } } } }"}"#;

    for (who, body) in [
        (&GQL_READ, query),
        (&GQL_READ, shorthand),
        (&ADMIN, query),
        (&ADMIN, mutation),
    ] {
        let resp = fx.post_json(gql, who, body).await;
        assert_ok(&resp, &format!("{} {body}", who.name));
        let rec = fx.take_one();
        assert_eq!(rec.path, gql);
        assert_eq!(
            rec.body,
            body.as_bytes(),
            "GraphQL body forwarded byte-exact"
        );
        assert_eq!(rec.tokens(), vec![T_ABC.to_owned()]);
    }
    // application/graphql
    let resp = send(
        fx.req(Method::POST, gql, &GQL_READ)
            .header("content-type", "application/graphql")
            .body("query { store { settings { storeProfile { storeName } } } }"),
    )
    .await;
    assert_ok(&resp, "application/graphql");
    fx.take_one();

    // GET ?query= may carry a query only.
    let get_query = format!(
        "{gql}?query=%7B%20store%20%7B%20settings%20%7B%20storeProfile%20%7B%20storeName%20%7D%20%7D%20%7D%20%7D"
    );
    let resp = fx.get(&get_query, &GQL_READ).await;
    assert_ok(&resp, "GET ?query=");
    assert_eq!(fx.take_one().method, "GET");
    let get_mutation = format!(
        "{gql}?query=mutation%20%7B%20channel%20%7B%20createChannel(input%3A%20%7Bname%3A%20%22x%22%7D)%20%7B%20channel%20%7B%20id%20%7D%20%7D%20%7D%20%7D"
    );
    let resp = fx.get(&get_mutation, &ADMIN).await;
    assert_problem(&resp, 400, "bad_request");
    fx.assert_not_forwarded("GET mutation");

    let resp = fx.post_json(gql, &GQL_READ, mutation).await;
    assert_scope_denied(&resp, &["bcgate:graphql_write"]);
    let resp = fx.post_json(gql, &READER, query).await;
    assert_scope_denied(&resp, &["bcgate:graphql_read"]);
    let batch = format!("[{query},{mutation}]");
    let resp = fx.post_json(gql, &GQL_READ, &batch).await;
    assert_scope_denied(&resp, &["bcgate:graphql_write"]);

    for (what, body) in [
        ("garbage document", r#"{"query":"this is { not graphql"}"#),
        ("not JSON", "hello there"),
        (
            "persisted query without document",
            r#"{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"abc"}}}"#,
        ),
        (
            "two operations, no operationName",
            r#"{"query":"query A { store { id } } query B { store { id } }"}"#,
        ),
    ] {
        let resp = fx.post_json(gql, &ADMIN, body).await;
        assert_eq!(resp.status, 400, "{what}: {}", resp.text());
        assert_problem(&resp, 400, "bad_request");
    }
    let resp = fx
        .post_json(
            gql,
            &ADMIN,
            r#"{"query":"subscription { orderCreated { id } }"}"#,
        )
        .await;
    assert_problem(&resp, 400, "bad_request");
    fx.assert_not_forwarded("graphql refused");
}
