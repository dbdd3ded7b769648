//! The B2B Edition host (`api-b2b.bigcommerce.com`): `/api/v3/io/...` with
//! the store's `X-Auth-Token` and `X-Store-Hash`, B2B's response shape
//! (`code`, `data`, `meta.message`) and its rate-limit headers, counting down
//! per store and never refusing.

use std::sync::Arc;

use http::{HeaderValue, Response, StatusCode};
use serde_json::json;

use super::handler::{Req, json};
use super::{B2B_QUOTA, B2B_WINDOW_S, MockBody, State};

/// `rest` is the path under the B2B prefix.
pub(super) fn handle(state: &Arc<State>, req: &Req<'_>, rest: &str) -> Response<MockBody> {
    let store = req
        .single("x-store-hash")
        .and_then(|v| v.to_str().ok())
        .filter(|h| state.stores.contains_key(*h))
        .map(str::to_owned);
    let rate = count(state, store.as_deref().unwrap_or("_"));
    let mut resp = answer(state, req, rest, store.as_deref());
    rate.apply(&mut resp);
    resp
}

fn answer(state: &State, req: &Req<'_>, rest: &str, store: Option<&str>) -> Response<MockBody> {
    // The retired `authToken` is a B2B credential bcgate never sends either.
    if req.foreign_credential(state, &["authorization", "authtoken"]) {
        return error(
            StatusCode::BAD_REQUEST,
            "Only X-Auth-Token and X-Store-Hash are accepted here.",
        );
    }
    let Some(path) = rest
        .strip_prefix("/api/v3/io")
        .filter(|p| p.starts_with('/') && p.len() > 1)
    else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    let token_ok = store
        .and_then(|h| state.stores.get(h))
        .zip(req.single("x-auth-token"))
        .is_some_and(|(expected, got)| got.as_bytes() == expected.as_bytes());
    let Some(hash) = store.filter(|_| token_ok) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "Invalid X-Auth-Token or X-Store-Hash.",
        );
    };
    json(
        StatusCode::OK,
        &json!({
            "code": 200,
            "data": {
                "method": req.method.as_str(),
                "path": path,
                "query": req.query,
                "store_hash": hash,
            },
            "meta": {"message": "SUCCESS"},
        }),
    )
}

/// B2B's error shape.
fn error(status: StatusCode, message: &str) -> Response<MockBody> {
    json(
        status,
        &json!({"code": status.as_u16(), "data": {}, "meta": {"message": message}}),
    )
}

struct B2bRate {
    used: u32,
    reset_ms: u64,
}

/// Counts one request of `store` in the current window.
fn count(state: &State, store: &str) -> B2bRate {
    let window_ms = B2B_WINDOW_S * 1000;
    let elapsed_ms = state.started.elapsed().as_millis() as u64;
    let window = elapsed_ms / window_ms;
    let mut windows = state.b2b_windows.lock().expect("mock b2b rates poisoned");
    let entry = windows.entry(store.to_owned()).or_insert((window, 0));
    if entry.0 != window {
        *entry = (window, 0);
    }
    entry.1 = entry.1.saturating_add(1);
    B2bRate {
        used: entry.1,
        reset_ms: window_ms - elapsed_ms % window_ms,
    }
}

impl B2bRate {
    fn apply(&self, resp: &mut Response<MockBody>) {
        let remaining = B2B_QUOTA.saturating_sub(self.used);
        let values = [
            (
                "x-requests-allocated",
                format!("{B2B_QUOTA} times/{B2B_WINDOW_S} s"),
            ),
            ("x-requests-window-length", format!("{} times", self.used)),
            ("x-requests-remaining", format!("{remaining} times")),
            (
                "x-request-window-resets-after",
                format!("{} s", self.reset_ms as f64 / 1000.0),
            ),
        ];
        for (name, value) in values {
            if let Ok(value) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, value);
            }
        }
    }
}
