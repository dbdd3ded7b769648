//! A store channel's storefront origin: its GraphQL Storefront API, called
//! server to server with a private token or a customer impersonation token
//! minted on the api host. The answer says what the token carried (store,
//! channel, kind, scopes, customer), never the token. Its customer login
//! access point is [`super::login`].

use std::sync::Arc;

use http::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::handler::{Req, json};
use super::mint::{MintedKind, Refused};
use super::{MockBody, State};

/// `rest` is the path under the storefront prefix: `/{hash}/{channel}/graphql`.
pub(super) fn handle(state: &Arc<State>, req: &Req<'_>, rest: &str) -> Response<MockBody> {
    if req.foreign_credential(state, &["x-auth-token"]) {
        return error(
            StatusCode::BAD_REQUEST,
            "X-Auth-Token is not accepted by the GraphQL Storefront API.",
        );
    }
    if let Some((hash, channel, jwt)) = login_path(rest) {
        return super::login::handle(state, req, hash, channel, jwt);
    }
    let mut parts = rest.split('/');
    let (Some(""), Some(hash), Some(channel), Some("graphql"), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return error(StatusCode::NOT_FOUND, "Not found.");
    };
    let Ok(channel) = channel.parse::<u32>() else {
        return error(StatusCode::NOT_FOUND, "Not found.");
    };
    if req.method != Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.");
    }
    let Some(token) = req
        .single("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| !t.is_empty())
    else {
        return error(
            StatusCode::UNAUTHORIZED,
            "Authorization must be `Bearer <token>`.",
        );
    };
    let now = state.now_unix();
    let minted = {
        let mut registry = state.minted.lock().expect("mock token registry poisoned");
        match registry.check(state, token, now) {
            Ok(minted) => minted.clone(),
            Err(Refused::Expired) => {
                return error(StatusCode::UNAUTHORIZED, "The token has expired.");
            }
            Err(Refused::Unknown | Refused::Revoked) => {
                return error(StatusCode::UNAUTHORIZED, "The token is not valid.");
            }
        }
    };
    if minted.kind == MintedKind::Pat
        || minted.store != hash
        || !minted.channel_ids.contains(&channel)
    {
        return error(
            StatusCode::UNAUTHORIZED,
            "The token is not valid for this storefront.",
        );
    }
    let customer = req.headers.get_all("x-bc-customer-id").iter().count();
    let customer_id = match minted.kind {
        MintedKind::Impersonation => {
            let id = req
                .single("x-bc-customer-id")
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok());
            let Some(id) = id else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "A customer impersonation token needs one numeric X-Bc-Customer-Id.",
                );
            };
            Some(id)
        }
        _ if customer > 0 => {
            return error(
                StatusCode::BAD_REQUEST,
                "X-Bc-Customer-Id needs a customer impersonation token.",
            );
        }
        _ => None,
    };
    let is_query = serde_json::from_slice::<Value>(req.body)
        .ok()
        .and_then(|b| b.get("query").and_then(Value::as_str).map(str::to_owned))
        .is_some();
    if !is_query {
        return error(
            StatusCode::BAD_REQUEST,
            "The body must be a JSON object with a `query` string.",
        );
    }
    json(
        StatusCode::OK,
        &json!({
            "data": {
                "mock": {
                    "store": hash,
                    "channel": channel,
                    "kind": minted.kind.as_str(),
                    "scopes": minted.scopes,
                    "customer_id": customer_id,
                }
            }
        }),
    )
}

/// `/{hash}/{channel}/login/token/{jwt}`: the customer login access point.
fn login_path(rest: &str) -> Option<(&str, u32, &str)> {
    let mut parts = rest.split('/');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some(""), Some(hash), Some(channel), Some("login"), Some("token"), Some(jwt), None) => {
            Some((hash, channel.parse().ok()?, jwt))
        }
        _ => None,
    }
}

/// A GraphQL-shaped error answer.
fn error(status: StatusCode, message: &str) -> Response<MockBody> {
    json(status, &json!({"errors": [{"message": message}]}))
}
