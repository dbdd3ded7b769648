//! The payments host (`payments.bigcommerce.com`): Process Payment, paid with
//! a payment access token minted on the api host for the same store. A PAT
//! pays once, as BigCommerce's do.

use std::sync::Arc;

use http::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::handler::{Req, json};
use super::mint::{MintedKind, Refused};
use super::{BC_ERROR_TYPE, MockBody, State};

/// The `Accept` Process Payment requires.
pub(super) const PAYMENTS_ACCEPT: &str = "application/vnd.bc.v1+json";

/// `rest` is the path under the payments prefix.
pub(super) fn handle(state: &Arc<State>, req: &Req<'_>, rest: &str) -> Response<MockBody> {
    if req.foreign_credential(state, &["x-auth-token"]) {
        return error(
            StatusCode::BAD_REQUEST,
            "X-Auth-Token is not accepted here: Process Payment takes a payment access token.",
        );
    }
    let Some(hash) = rest
        .strip_prefix("/stores/")
        .and_then(|r| r.strip_suffix("/payments"))
        .filter(|h| !h.is_empty() && !h.contains('/'))
    else {
        return error(
            StatusCode::NOT_FOUND,
            "The requested resource was not found.",
        );
    };
    if req.method != Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.");
    }
    let unauthorized = |detail: &str| {
        error_detail(
            StatusCode::UNAUTHORIZED,
            "Valid authentication required",
            detail,
        )
    };
    let Some(pat) = req
        .single("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("PAT "))
        .filter(|t| !t.is_empty())
    else {
        return unauthorized("Authorization must be `PAT <payment access token>`.");
    };
    let now = state.now_unix();
    let mut registry = state.minted.lock().expect("mock token registry poisoned");
    let minted = match registry.check(state, pat, now) {
        Ok(minted) => minted,
        Err(Refused::Expired) => return unauthorized("The payment access token has expired."),
        Err(Refused::Unknown | Refused::Revoked) => {
            return unauthorized("The payment access token is not valid.");
        }
    };
    if minted.kind != MintedKind::Pat || minted.store != hash {
        return unauthorized("The payment access token is not valid for this store.");
    }
    if minted.used {
        return unauthorized("The payment access token has already been used.");
    }
    let accept_ok = req
        .single("accept")
        .is_some_and(|v| v.as_bytes() == PAYMENTS_ACCEPT.as_bytes());
    if !accept_ok {
        return error(
            StatusCode::BAD_REQUEST,
            "Accept must be application/vnd.bc.v1+json.",
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(req.body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "The request body is not valid JSON.",
        );
    };
    let payment = body.get("payment");
    let instrument_ok = payment
        .and_then(|p| p.get("instrument"))
        .and_then(|i| i.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty());
    let method_ok = payment
        .and_then(|p| p.get("payment_method_id"))
        .and_then(Value::as_str)
        .is_some_and(|m| !m.is_empty());
    if !instrument_ok || !method_ok {
        return error_detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Payment request has been rejected due to missing or invalid data",
            "payment.instrument (with a type) and payment.payment_method_id are required.",
        );
    }
    minted.used = true;
    let order_id = minted.order_id;
    drop(registry);
    let transaction = transaction_id();
    json(
        StatusCode::CREATED,
        &json!({
            "data": {
                "id": transaction,
                "status": "success",
                "transaction_type": "purchase",
                // Not in BigCommerce's answer: the order the PAT was minted
                // for, so a test can tell which token paid.
                "order_id": order_id,
            }
        }),
    )
}

fn error(status: StatusCode, title: &str) -> Response<MockBody> {
    json(
        status,
        &json!({"status": status.as_u16(), "title": title, "type": BC_ERROR_TYPE, "errors": {}}),
    )
}

fn error_detail(status: StatusCode, title: &str, detail: &str) -> Response<MockBody> {
    json(
        status,
        &json!({
            "status": status.as_u16(),
            "title": title,
            "detail": detail,
            "type": BC_ERROR_TYPE,
            "errors": {},
        }),
    )
}

/// A transaction id shaped like BigCommerce's (a UUID).
fn transaction_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::getrandom(&mut b).is_err() {
        return "00000000-0000-4000-8000-000000000000".to_owned();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
