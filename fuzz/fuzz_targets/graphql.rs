//! The GraphQL classifier: `graphql_post_kind` (JSON single/batched and
//! `application/graphql`) and `graphql_get_kind` (the query string).
//!
//! Invariants: whatever bcgate calls a Query holds no mutation (nor
//! subscription) operation, read two ways: by graphql-parser directly (the
//! parser bcgate uses) and by apollo-parser (an independent one, when it
//! reads the document without errors); a Mutation holds one; a GET is never
//! a Mutation.
#![no_main]

use bcgate::policy::GraphqlKind;
use bcgate::policy::body::{graphql_get_kind, graphql_post_kind};
use graphql_parser::query::{Definition, OperationDefinition, parse_query};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // application/graphql: the body is the document.
    if let Ok(kind) = graphql_post_kind(data, true) {
        let doc = std::str::from_utf8(data).expect("an accepted document is UTF-8");
        assert_kind(doc, kind);
    }
    // application/json: {"query": …} or a batch of them.
    if let Ok(kind) = graphql_post_kind(data, false) {
        let docs = json_documents(data);
        assert!(!docs.is_empty(), "accepted a JSON body without a document");
        match kind {
            GraphqlKind::Query => docs.iter().for_each(|d| assert_kind(d, kind)),
            GraphqlKind::Mutation => assert!(
                docs.iter().any(|d| has_mutation(d)),
                "a Mutation batch with no mutation"
            ),
        }
    }
    // GET …/graphql?query=…
    if let Ok(qs) = std::str::from_utf8(data)
        && let Ok(kind) = graphql_get_kind(qs)
    {
        assert_eq!(kind, GraphqlKind::Query, "a GET carried a mutation");
        let docs: Vec<String> = form_urlencoded::parse(qs.as_bytes())
            .filter(|(k, _)| k == "query")
            .map(|(_, v)| v.into_owned())
            .collect();
        assert_eq!(docs.len(), 1, "a GET with {} query documents", docs.len());
        assert_kind(&docs[0], kind);
    }
});

/// The `query` strings of a JSON body (an object or a batch), as serde_json
/// reads it (last duplicate wins; bcgate refuses duplicates altogether).
fn json_documents(data: &[u8]) -> Vec<String> {
    let value: Value = serde_json::from_slice(data).expect("bcgate accepted invalid JSON");
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    items
        .into_iter()
        .map(|item| {
            item.get("query")
                .and_then(Value::as_str)
                .expect("an accepted member has a query string")
                .to_owned()
        })
        .collect()
}

fn has_mutation(doc: &str) -> bool {
    let parsed = parse_query::<&str>(doc).expect("an accepted document parses");
    parsed
        .definitions
        .iter()
        .any(|d| matches!(d, Definition::Operation(OperationDefinition::Mutation(_))))
}

fn assert_kind(doc: &str, kind: GraphqlKind) {
    let parsed = parse_query::<&str>(doc).expect("an accepted document parses");
    let mut mutation = false;
    for def in &parsed.definitions {
        match def {
            Definition::Operation(OperationDefinition::Mutation(_)) => mutation = true,
            Definition::Operation(OperationDefinition::Subscription(_)) => {
                panic!("a subscription was accepted: {doc:?}")
            }
            _ => {}
        }
    }
    assert_eq!(
        mutation,
        kind == GraphqlKind::Mutation,
        "{kind:?} for {doc:?}"
    );
    // A second parser: if it reads the document cleanly, it must agree.
    let tree = apollo_parser::Parser::new(doc).recursion_limit(200).parse();
    if tree.errors().len() == 0 {
        let mut apollo_mutation = false;
        for def in tree.document().definitions() {
            if let apollo_parser::cst::Definition::OperationDefinition(op) = def
                && let Some(t) = op.operation_type()
            {
                assert!(
                    t.subscription_token().is_none(),
                    "apollo-parser sees a subscription in {doc:?}"
                );
                apollo_mutation |= t.mutation_token().is_some();
            }
        }
        assert_eq!(
            apollo_mutation, mutation,
            "graphql-parser and apollo-parser disagree on {doc:?}"
        );
    }
}
