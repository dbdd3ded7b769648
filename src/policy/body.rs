//! Facts policy needs from inside a request: the GraphQL operation kind and
//! a script's `visibility`. Pure functions over bytes already read (bounded).
//!
//! JSON is parsed strictly: a duplicate key anywhere is an error, so no
//! second `visibility` or `query` can say something other than the one checked.

use std::fmt;

use graphql_parser::query::{Definition, OperationDefinition, parse_query};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// What a GraphQL request does, as far as scopes care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphqlKind {
    Query,
    Mutation,
}

/// Why a body cannot be judged; becomes a 400 `bad_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError(pub String);

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad<T>(msg: impl Into<String>) -> Result<T, BodyError> {
    Err(BodyError(msg.into()))
}

/// Parses JSON, rejecting duplicate object keys at any depth.
pub fn parse_strict_json(bytes: &[u8]) -> Result<Value, BodyError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let StrictValue(v) = StrictValue::deserialize(&mut de)
        .map_err(|e| BodyError(format!("the JSON body is invalid: {e}")))?;
    de.end()
        .map_err(|e| BodyError(format!("the JSON body is invalid: {e}")))?;
    Ok(v)
}

struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Script `visibility` values that do not need Checkout Content.
const NON_CHECKOUT_VISIBILITY: [&str; 2] = ["storefront", "order_confirmation"];

/// Whether a script create (`is_update == false`) or update needs Checkout
/// Content. A create without `visibility` gets BigCommerce's default
/// (`storefront`); an update without it might keep `checkout`, so it needs it.
/// Any value other than the known non-checkout ones needs it (fail closed).
pub fn script_needs_checkout_content(body: &[u8], is_update: bool) -> Result<bool, BodyError> {
    let value = parse_strict_json(body)?;
    let Value::Object(obj) = value else {
        return bad("a script body must be a JSON object");
    };
    match obj.get("visibility") {
        None => Ok(is_update),
        Some(Value::String(v)) => Ok(!NON_CHECKOUT_VISIBILITY.contains(&v.as_str())),
        Some(_) => bad("the script's visibility must be a string"),
    }
}

/// The kind of a GraphQL POST body (`application/json`, single or batched,
/// or `application/graphql`). A batch is a mutation if any member is.
pub fn graphql_post_kind(body: &[u8], is_graphql_media: bool) -> Result<GraphqlKind, BodyError> {
    if is_graphql_media {
        let doc = std::str::from_utf8(body)
            .map_err(|_| BodyError("the GraphQL document is not UTF-8".into()))?;
        return document_kind(doc, None);
    }
    match parse_strict_json(body)? {
        Value::Object(obj) => request_kind(&obj),
        Value::Array(items) => {
            if items.is_empty() {
                return bad("an empty GraphQL batch");
            }
            let mut kind = GraphqlKind::Query;
            for item in &items {
                let Value::Object(obj) = item else {
                    return bad("every member of a GraphQL batch must be an object");
                };
                if request_kind(obj)? == GraphqlKind::Mutation {
                    kind = GraphqlKind::Mutation;
                }
            }
            Ok(kind)
        }
        _ => bad("a GraphQL body must be an object or an array of objects"),
    }
}

/// The kind of a `GET …/graphql?query=…`; only queries may travel in a GET.
pub fn graphql_get_kind(query_string: &str) -> Result<GraphqlKind, BodyError> {
    let mut query = None;
    let mut op_name = None;
    for (k, v) in form_urlencoded::parse(query_string.as_bytes()) {
        let slot = match k.as_ref() {
            "query" => &mut query,
            "operationName" => &mut op_name,
            _ => continue,
        };
        if slot.replace(v).is_some() {
            return bad(format!("the query parameter {k} appears twice"));
        }
    }
    let Some(doc) = query else {
        return bad(
            "a GraphQL request needs a query document (persisted queries are not supported)",
        );
    };
    let kind = document_kind(&doc, op_name.as_deref())?;
    if kind == GraphqlKind::Mutation {
        return bad("a GraphQL GET may only carry a query; send mutations with POST");
    }
    Ok(kind)
}

fn request_kind(obj: &Map<String, Value>) -> Result<GraphqlKind, BodyError> {
    let doc = match obj.get("query") {
        Some(Value::String(d)) => d,
        None | Some(Value::Null) => {
            return bad(
                "a GraphQL request needs a query document (persisted queries are not supported)",
            );
        }
        Some(_) => return bad("the GraphQL query must be a string"),
    };
    let op_name = match obj.get("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) => Some(n.as_str()),
        Some(_) => return bad("operationName must be a string"),
    };
    document_kind(doc, op_name)
}

/// Parses a document. The chosen operation must exist (by `operationName`
/// when several are present); the kind is a mutation if any operation in the
/// document is one, so no reading of the document can hide a write.
fn document_kind(doc: &str, op_name: Option<&str>) -> Result<GraphqlKind, BodyError> {
    let parsed = parse_query::<&str>(doc)
        .map_err(|e| BodyError(format!("the GraphQL document does not parse: {e}")))?;
    let mut names = Vec::new();
    let mut kind = GraphqlKind::Query;
    for def in &parsed.definitions {
        let Definition::Operation(op) = def else {
            continue;
        };
        let name = match op {
            OperationDefinition::SelectionSet(_) => None,
            OperationDefinition::Query(q) => q.name,
            OperationDefinition::Mutation(m) => {
                kind = GraphqlKind::Mutation;
                m.name
            }
            OperationDefinition::Subscription(_) => {
                return bad("GraphQL subscriptions are not supported through bcgate");
            }
        };
        names.push(name);
    }
    match (op_name, names.len()) {
        (_, 0) => bad("the GraphQL document has no operation"),
        (None, 1) => Ok(kind),
        (None, _) => bad("the GraphQL document has several operations and no operationName"),
        (Some(wanted), _) if names.contains(&Some(wanted)) => Ok(kind),
        (Some(_), _) => bad("operationName names no operation in the document"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_errors_at_any_depth() {
        assert!(parse_strict_json(br#"{"a":1,"a":2}"#).is_err());
        assert!(parse_strict_json(br#"{"a":{"b":1,"b":1}}"#).is_err());
        assert!(parse_strict_json(br#"[{"b":1},{"b":1}]"#).is_ok());
        assert!(parse_strict_json(br#"{"a":1} x"#).is_err());
    }

    #[test]
    fn script_visibility_rules() {
        let post = |b: &str| script_needs_checkout_content(b.as_bytes(), false);
        let put = |b: &str| script_needs_checkout_content(b.as_bytes(), true);
        assert_eq!(post(r#"{"name":"x","visibility":"storefront"}"#), Ok(false));
        assert_eq!(post(r#"{"visibility":"order_confirmation"}"#), Ok(false));
        assert_eq!(post(r#"{"visibility":"checkout"}"#), Ok(true));
        assert_eq!(post(r#"{"visibility":"all_pages"}"#), Ok(true));
        assert_eq!(
            post(r#"{"visibility":"ALL_PAGES"}"#),
            Ok(true),
            "unknown values fail closed"
        );
        assert_eq!(post(r#"{"name":"x"}"#), Ok(false));
        assert_eq!(put(r#"{"name":"x"}"#), Ok(true));
        assert_eq!(put(r#"{"visibility":"storefront"}"#), Ok(false));
        assert!(post(r#"{"visibility":"storefront","visibility":"checkout"}"#).is_err());
        assert!(post(r#"{"visibility":1}"#).is_err());
        assert!(post(r#"["visibility"]"#).is_err());
        assert!(post("not json").is_err());
    }

    #[test]
    fn graphql_post_kinds() {
        let json = |b: &str| graphql_post_kind(b.as_bytes(), false);
        assert_eq!(
            json(r#"{"query":"{ store { name } }"}"#),
            Ok(GraphqlKind::Query)
        );
        assert_eq!(json(r#"{"query":"query Q { a }"}"#), Ok(GraphqlKind::Query));
        assert_eq!(
            json(r#"{"query":"mutation M { a }"}"#),
            Ok(GraphqlKind::Mutation)
        );
        assert_eq!(
            json(r#"{"query":"query A { a } mutation B { b }","operationName":"A"}"#),
            Ok(GraphqlKind::Mutation),
            "a document holding a mutation counts as one"
        );
        assert!(json(r#"{"query":"query A { a } query B { b }"}"#).is_err());
        assert!(json(r#"{"query":"query A { a }","operationName":"Z"}"#).is_err());
        assert!(json(r#"{"query":"subscription S { a }"}"#).is_err());
        assert!(json(r#"{"query":"{ a"}"#).is_err());
        assert!(json(r#"{"extensions":{"persistedQuery":{}}}"#).is_err());
        assert!(json(r#"{"query":"{ a }","query":"mutation { b }"}"#).is_err());
        assert_eq!(
            json(r#"[{"query":"{ a }"},{"query":"mutation { b }"}]"#),
            Ok(GraphqlKind::Mutation)
        );
        assert_eq!(
            json(r#"[{"query":"{ a }"},{"query":"{ b }"}]"#),
            Ok(GraphqlKind::Query)
        );
        assert!(json("[]").is_err());
        assert!(json(r#"[{"query":"{ a }"}, 1]"#).is_err());
        assert_eq!(
            graphql_post_kind(b"mutation { a }", true),
            Ok(GraphqlKind::Mutation)
        );
        assert_eq!(graphql_post_kind(b"{ a }", true), Ok(GraphqlKind::Query));
    }

    #[test]
    fn graphql_get_carries_only_queries() {
        assert_eq!(graphql_get_kind("query=%7B+a+%7D"), Ok(GraphqlKind::Query));
        assert!(graphql_get_kind("query=mutation+%7B+a+%7D").is_err());
        assert!(graphql_get_kind("query=%7Ba%7D&query=mutation+%7Bb%7D").is_err());
        assert!(graphql_get_kind("").is_err());
    }
}
