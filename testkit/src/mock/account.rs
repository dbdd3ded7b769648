//! The api host's account-level GraphQL (`/accounts/{uuid}/graphql`), called
//! with the account's own token ([`MockBigCommerce::add_account`](super::MockBigCommerce::add_account)).

use std::sync::Arc;

use http::{Method, Response, StatusCode};
use serde_json::json;

use super::handler::{RateInfo, Req, error, json};
use super::{MockBody, State};

/// The account uuid of an `/accounts/{uuid}/graphql` path.
pub(super) fn graphql_path(path: &str) -> Option<&str> {
    let uuid = path.strip_prefix("/accounts/")?.strip_suffix("/graphql")?;
    (!uuid.is_empty() && !uuid.contains('/')).then_some(uuid)
}

pub(super) fn handle(
    state: &Arc<State>,
    req: &Req<'_>,
    uuid: &str,
    rate: &RateInfo,
) -> Response<MockBody> {
    let expected = state
        .accounts
        .lock()
        .expect("mock accounts poisoned")
        .get(uuid)
        .cloned();
    let Some(expected) = expected else {
        return error(StatusCode::NOT_FOUND, "Account not found.", rate);
    };
    let token_ok = req
        .single("x-auth-token")
        .is_some_and(|t| t.as_bytes() == expected.as_bytes());
    if !token_ok {
        return error(
            StatusCode::UNAUTHORIZED,
            "You are not authorized to access this resource.",
            rate,
        );
    }
    if req.method != Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.", rate);
    }
    let mut resp = json(StatusCode::OK, &json!({"data": {"account": {"id": uuid}}}));
    rate.apply(&mut resp);
    resp
}
