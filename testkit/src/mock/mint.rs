//! The api host's token minting (payment access tokens, private storefront
//! tokens, customer impersonation tokens) and BigCommerce's clock
//! (`/v2/time`), plus the registry of minted tokens that the payments host
//! and the storefronts check a presented token against.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::{Method, Response, StatusCode};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

use super::handler::{RateInfo, Req, error, error_with};
use super::{MockBody, PAT_LIFETIME_S, State};

/// The scopes a private token may carry.
pub(super) const PRIVATE_SCOPES: [&str; 3] = ["Unauthenticated", "Customer", "B2B"];

/// What kind of token was minted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MintedKind {
    /// A payment access token (`Authorization: PAT …` at the payments host).
    Pat,
    /// A private storefront token (`Authorization: Bearer …` at a storefront).
    Private,
    /// A customer impersonation token (`Bearer …` plus `X-Bc-Customer-Id`).
    Impersonation,
}

impl MintedKind {
    /// The name a storefront answer reports (`"private"`, `"impersonation"`).
    pub fn as_str(self) -> &'static str {
        match self {
            MintedKind::Pat => "pat",
            MintedKind::Private => "private",
            MintedKind::Impersonation => "impersonation",
        }
    }
}

/// One minted token as the mock's registry holds it, without the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minted {
    /// The store hash it was minted for.
    pub store: String,
    pub kind: MintedKind,
    /// The order of a payment access token.
    pub order_id: Option<u64>,
    /// The channels of a storefront token (empty for a payment access token).
    pub channel_ids: Vec<u32>,
    /// The scopes of a private token, as asked for (empty otherwise).
    pub scopes: Vec<String>,
    /// BigCommerce's clock when it was minted (Unix seconds).
    pub minted_at: i64,
    /// When it stops working (Unix seconds, BigCommerce's clock).
    pub expires_at: i64,
    /// Set by [`MockBigCommerce::revoke_minted_tokens`](super::MockBigCommerce::revoke_minted_tokens).
    pub revoked: bool,
    /// A payment access token that already paid (each pays once).
    pub used: bool,
}

/// Why a presented token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    Unknown,
    Expired,
    Revoked,
}

/// Every token minted so far, by token.
#[derive(Default)]
pub(super) struct Registry {
    tokens: Vec<Minted>,
    index: HashMap<String, usize>,
}

impl Registry {
    fn insert(&mut self, token: String, minted: Minted) {
        self.index.insert(token, self.tokens.len());
        self.tokens.push(minted);
    }

    /// The token's record if it still works at `now`; an expired one is
    /// counted in the stats.
    pub(super) fn check(
        &mut self,
        state: &State,
        token: &str,
        now: i64,
    ) -> Result<&mut Minted, Refused> {
        let i = *self.index.get(token).ok_or(Refused::Unknown)?;
        let minted = self.tokens.get_mut(i).ok_or(Refused::Unknown)?;
        if minted.expires_at <= now {
            state
                .counters
                .expired_tokens_seen
                .fetch_add(1, Ordering::SeqCst);
            return Err(Refused::Expired);
        }
        if minted.revoked {
            return Err(Refused::Revoked);
        }
        Ok(minted)
    }

    pub(super) fn revoke_all(&mut self) {
        for minted in &mut self.tokens {
            minted.revoked = true;
        }
    }

    pub(super) fn list(&self) -> Vec<Minted> {
        self.tokens.clone()
    }
}

/// The answer of the api host's minting and clock endpoints; `None` when
/// `rest` (the path after `/stores/{hash}`) is none of them.
pub(super) fn handle(
    state: &Arc<State>,
    req: &Req<'_>,
    hash: &str,
    rest: &str,
    rate: &RateInfo,
) -> Option<Response<MockBody>> {
    let kind = match rest {
        "/v2/time" => {
            if req.method != Method::GET && req.method != Method::HEAD {
                return Some(error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "Method not allowed.",
                    rate,
                ));
            }
            let mut resp = super::handler::json(StatusCode::OK, &json!({"time": state.now_unix()}));
            rate.apply(&mut resp);
            return Some(resp);
        }
        "/v3/payments/access_tokens" => MintedKind::Pat,
        "/v3/storefront/api-token-private" => MintedKind::Private,
        "/v3/storefront/api-token-customer-impersonation" => MintedKind::Impersonation,
        _ => return None,
    };
    if req.method != Method::POST {
        return Some(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed.",
            rate,
        ));
    }
    let failure = state.mint_failure.load(Ordering::SeqCst);
    if let Some(status) = StatusCode::from_u16(failure).ok().filter(|_| failure != 0) {
        return Some(error(
            status,
            status.canonical_reason().unwrap_or("Mock mint failure"),
            rate,
        ));
    }
    let now = state.now_unix();
    let asked = match parse(kind, req.body, now) {
        Ok(asked) => asked,
        Err(errors) => {
            return Some(error_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid JSON request body - missing or invalid data.",
                errors,
                rate,
            ));
        }
    };
    let minted = Minted {
        store: hash.to_owned(),
        kind,
        order_id: asked.order_id,
        channel_ids: asked.channel_ids,
        scopes: asked.scopes,
        minted_at: now,
        expires_at: asked.expires_at,
        revoked: false,
        used: false,
    };
    let Some(token) = sign(state, &minted) else {
        return Some(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The mock could not make a token.",
            rate,
        ));
    };
    let (counter, data, status) = match kind {
        // Create Payment Access Token answers 201; the storefront token endpoints 200.
        MintedKind::Pat => (
            &state.counters.pats_minted,
            json!({"id": token}),
            StatusCode::CREATED,
        ),
        MintedKind::Private => (
            &state.counters.private_tokens_minted,
            json!({"token": token}),
            StatusCode::OK,
        ),
        MintedKind::Impersonation => (
            &state.counters.cits_minted,
            json!({"token": token}),
            StatusCode::OK,
        ),
    };
    state
        .minted
        .lock()
        .expect("mock token registry poisoned")
        .insert(token, minted);
    counter.fetch_add(1, Ordering::SeqCst);
    let mut resp = super::handler::json(status, &json!({"data": data, "meta": {}}));
    rate.apply(&mut resp);
    Some(resp)
}

/// What a valid mint request asks for.
struct Asked {
    order_id: Option<u64>,
    channel_ids: Vec<u32>,
    scopes: Vec<String>,
    expires_at: i64,
}

/// Reads a mint request's body as BigCommerce does; `Err` carries the
/// `errors` object of the 422 (field → message).
fn parse(kind: MintedKind, body: &[u8], now: i64) -> Result<Asked, Value> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return Err(json!({"body": "must be a JSON object"}));
    };
    if kind == MintedKind::Pat {
        let order_id = body
            .get("order")
            .and_then(|o| o.get("id"))
            .and_then(Value::as_u64)
            .filter(|id| *id > 0)
            .ok_or_else(|| json!({"order.id": "is required and must be a positive integer"}))?;
        return Ok(Asked {
            order_id: Some(order_id),
            channel_ids: Vec::new(),
            scopes: Vec::new(),
            expires_at: now + PAT_LIFETIME_S,
        });
    }
    let channel = |v: &Value| {
        v.as_u64()
            .filter(|id| *id >= 1)
            .and_then(|id| u32::try_from(id).ok())
    };
    let channel_ids = match (body.get("channel_ids"), body.get("channel_id")) {
        (Some(Value::Array(ids)), None) if !ids.is_empty() => ids
            .iter()
            .map(channel)
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(|| json!({"channel_ids": "must be positive integers"}))?,
        (None, Some(id)) => {
            vec![channel(id).ok_or_else(|| json!({"channel_id": "must be a positive integer"}))?]
        }
        _ => {
            return Err(
                json!({"channel_ids": "exactly one of channel_ids (non-empty) or channel_id is required"}),
            );
        }
    };
    let expires_at = body.get("expires_at").and_then(Value::as_i64).ok_or_else(
        || json!({"expires_at": "is required and must be a Unix timestamp in seconds"}),
    )?;
    if expires_at <= now {
        return Err(json!({"expires_at": "must be in the future"}));
    }
    let scopes = if kind == MintedKind::Private {
        let scopes = body
            .get("scopes")
            .and_then(Value::as_array)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| json!({"scopes": "is required and must not be empty"}))?;
        scopes
            .iter()
            .map(|s| {
                s.as_str()
                    .filter(|s| PRIVATE_SCOPES.contains(s))
                    .map(str::to_owned)
            })
            .collect::<Option<Vec<String>>>()
            .ok_or_else(
                || json!({"scopes": "each must be one of Unauthenticated, Customer, B2B"}),
            )?
    } else {
        Vec::new()
    };
    Ok(Asked {
        order_id: None,
        channel_ids,
        scopes,
        expires_at,
    })
}

/// A fresh token for `minted`: a JWT signed with the mock's own key, as
/// BigCommerce's tokens are JWTs, made unique by a random `jti`.
fn sign(state: &State, minted: &Minted) -> Option<String> {
    let mut jti = [0u8; 16];
    getrandom::getrandom(&mut jti).ok()?;
    let jti: String = jti.iter().map(|b| format!("{b:02x}")).collect();
    let claims = json!({
        "iss": if minted.kind == MintedKind::Pat { "payments.bigcommerce.com" } else { "bc" },
        "sub": minted.store,
        "iat": minted.minted_at,
        "nbf": minted.minted_at,
        "exp": minted.expires_at,
        "jti": jti,
        "data": {
            "store_hash": minted.store,
            "kind": minted.kind.as_str(),
            "order_id": minted.order_id,
            "channel_ids": minted.channel_ids,
            "scopes": minted.scopes,
        },
    });
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(&state.signing_key),
    )
    .ok()
}
