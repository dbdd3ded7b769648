//! The requests that ask BigCommerce for a token and the reading of its
//! answers: pure functions from parameters to an `http::Request` and from a
//! status and body to a [`Secret`] or the error the caller answers with.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, Uri, header};
use serde::Deserialize;
use zeroize::Zeroize;

use crate::error::ProxyError;
use crate::secret::{Secret, StoreToken};

/// Which token a mint asks for; names it in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MintKind {
    /// A payment access token for one order.
    PaymentAccessToken,
    /// A storefront private token for one channel and scope set.
    PrivateToken,
    /// A customer impersonation token for one channel.
    ImpersonationToken,
}

impl MintKind {
    /// The kind with its article, as error details say it.
    pub fn what(self) -> &'static str {
        match self {
            Self::PaymentAccessToken => "a payment access token",
            Self::PrivateToken => "a storefront private token",
            Self::ImpersonationToken => "a customer impersonation token",
        }
    }

    /// The endpoint's path below `/stores/{hash}` on the api origin.
    pub fn path(self) -> &'static str {
        match self {
            Self::PaymentAccessToken => "/v3/payments/access_tokens",
            Self::PrivateToken => "/v3/storefront/api-token-private",
            Self::ImpersonationToken => "/v3/storefront/api-token-customer-impersonation",
        }
    }

    /// The store token's scope this endpoint needs: said on a 403, which
    /// is how BigCommerce answers a store token without it.
    fn needed_scope(self) -> &'static str {
        match self {
            Self::PaymentAccessToken => "store_payments_access_token_create",
            Self::PrivateToken => "store_storefront_api",
            Self::ImpersonationToken => "store_storefront_api_customer_impersonation",
        }
    }
}

impl fmt::Display for MintKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what())
    }
}

/// The scopes of a storefront private token: any of `Unauthenticated`,
/// `Customer` and `B2B`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StorefrontScopes(u8);

impl StorefrontScopes {
    const UNAUTHENTICATED: u8 = 1;
    const CUSTOMER: u8 = 2;
    const B2B: u8 = 4;
    /// BigCommerce's names, in the order they are sent.
    const NAMES: [(u8, &'static str); 3] = [
        (Self::UNAUTHENTICATED, "Unauthenticated"),
        (Self::CUSTOMER, "Customer"),
        (Self::B2B, "B2B"),
    ];

    pub fn new(unauthenticated: bool, customer: bool, b2b: bool) -> Self {
        let mut bits = 0;
        for (on, bit) in [
            (unauthenticated, Self::UNAUTHENTICATED),
            (customer, Self::CUSTOMER),
            (b2b, Self::B2B),
        ] {
            if on {
                bits |= bit;
            }
        }
        Self(bits)
    }

    /// The token scopes a client's grants allow: `storefront:Unauthenticated`,
    /// `storefront:Customer` and `storefront:B2B` each give theirs; every
    /// other grant (`storefront:impersonate` included) gives none.
    pub fn from_grants<'a>(grants: impl IntoIterator<Item = &'a str>) -> Self {
        let mut bits = 0;
        for grant in grants {
            let Some(name) = grant.strip_prefix("storefront:") else {
                continue;
            };
            if let Some((bit, _)) = Self::NAMES.iter().find(|(_, n)| *n == name) {
                bits |= bit;
            }
        }
        Self(bits)
    }

    /// BigCommerce's scope names, always in the order Unauthenticated,
    /// Customer, B2B.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .filter(|(bit, _)| self.0 & bit != 0)
            .map(|(_, n)| *n)
            .collect()
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn unauthenticated(self) -> bool {
        self.0 & Self::UNAUTHENTICATED != 0
    }

    pub fn customer(self) -> bool {
        self.0 & Self::CUSTOMER != 0
    }

    pub fn b2b(self) -> bool {
        self.0 & Self::B2B != 0
    }
}

impl fmt::Debug for StorefrontScopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

/// Seconds since the Unix epoch by this host's clock (0 before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `expires_at` to ask for: `lifetime` from now, in Unix seconds.
pub fn expires_at(lifetime: Duration) -> u64 {
    unix_now().saturating_add(lifetime.as_secs())
}

/// Create a payment access token for `order`.
pub fn pat_request(store_token: &StoreToken, order: u64) -> Request<Bytes> {
    let body = serde_json::json!({ "order": { "id": order } });
    json_post(MintKind::PaymentAccessToken, store_token, &body)
}

/// Create a storefront private token for one channel with `scopes`,
/// expiring at `expires_at` (Unix seconds).
pub fn private_token_request(
    store_token: &StoreToken,
    channel: u32,
    scopes: StorefrontScopes,
    expires_at: u64,
) -> Request<Bytes> {
    let body = serde_json::json!({
        "channel_ids": [channel],
        "expires_at": expires_at,
        "scopes": scopes.names(),
    });
    json_post(MintKind::PrivateToken, store_token, &body)
}

/// Create a customer impersonation token for one channel, expiring at
/// `expires_at` (Unix seconds).
pub fn impersonation_token_request(
    store_token: &StoreToken,
    channel: u32,
    expires_at: u64,
) -> Request<Bytes> {
    let body = serde_json::json!({
        "channel_ids": [channel],
        "expires_at": expires_at,
    });
    json_post(MintKind::ImpersonationToken, store_token, &body)
}

/// A POST of `body` to `kind`'s endpoint; the URI is the path below
/// `/stores/{hash}` (the transport puts the origin and store in front).
fn json_post(kind: MintKind, store_token: &StoreToken, body: &serde_json::Value) -> Request<Bytes> {
    let mut req = Request::new(Bytes::from(body.to_string()));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = Uri::from_static(kind.path());
    let h = req.headers_mut();
    h.insert(crate::headers::X_AUTH_TOKEN, store_token.header_value());
    let json = HeaderValue::from_static("application/json");
    h.insert(header::CONTENT_TYPE, json.clone());
    h.insert(header::ACCEPT, json);
    req
}

#[derive(Deserialize)]
struct Answer {
    data: AnswerData,
}

#[derive(Deserialize)]
struct AnswerData {
    /// A storefront token's field.
    #[serde(default)]
    token: Option<String>,
    /// A payment access token's field.
    #[serde(default)]
    id: Option<String>,
}

/// The token in BigCommerce's answer to a mint of `kind` for `store_hash`.
/// A 401 means the store's own token was refused; any other failure is
/// `mint_failed` naming the kind and status, never the body (which may
/// carry a token) or a token.
pub fn parse_answer(
    kind: MintKind,
    store_hash: &str,
    status: StatusCode,
    body: &[u8],
) -> Result<Secret, ProxyError> {
    if status == StatusCode::UNAUTHORIZED {
        return Err(ProxyError::StoreTokenRefused(store_hash.to_owned()));
    }
    if !status.is_success() {
        let code = status.as_u16();
        let hint = match status {
            StatusCode::FORBIDDEN => format!(
                " (the store's API token lacks the scope {})",
                kind.needed_scope()
            ),
            _ => String::new(),
        };
        return Err(ProxyError::MintFailed(format!(
            "{}: BigCommerce answered {code}{hint}",
            kind.what()
        )));
    }
    let no_token = || {
        ProxyError::MintFailed(format!(
            "{}: BigCommerce's answer carried no usable token",
            kind.what()
        ))
    };
    let answer: Answer = serde_json::from_slice(body).map_err(|_| no_token())?;
    let AnswerData { token, id } = answer.data;
    let (mut wanted, mut other) = match kind {
        MintKind::PaymentAccessToken => (id, token),
        MintKind::PrivateToken | MintKind::ImpersonationToken => (token, id),
    };
    if let Some(o) = other.as_mut() {
        o.zeroize();
    }
    let mut raw = wanted.take().ok_or_else(no_token)?;
    let secret = Secret::new(&raw);
    raw.zeroize();
    secret.map_err(|_| no_token())
}
