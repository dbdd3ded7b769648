//! The one error type of the request path: every rejection bcgate makes itself,
//! with its HTTP status, its documented `code` and the problem-details body.
//!
//! Details are written for the person reading an SDK exception. They may name
//! a client, a store hash or a route template; they never carry a key, a token
//! or a raw query string.

use std::fmt;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;

use crate::metrics::Decision::{self, Denied, Rejected, UpstreamFailed};

/// The `type` URI's base when `server.error_docs_url` is not set: a tag URI
/// (RFC 4151) names the problem type without pretending to be a page, so no
/// SDK or person following it meets a 404. Under `.invalid` (a reserved
/// name nobody can register) it can collide with no one's identifiers.
/// `#<code>` is appended, the anchor of the code's heading in docs/errors.md.
pub const DEFAULT_ERROR_DOCS_URL: &str = "tag:bcgate.invalid,2026:errors";

/// Every answer bcgate gives on its own account instead of the upstream's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyError {
    /// No key, an empty key, or a key no client holds.
    Unauthenticated(&'static str),
    /// The request is malformed or tries a trick (paths, duplicate keys, bodies).
    BadRequest(String),
    /// The path names a store bcgate does not know.
    StoreUnknown(String),
    /// The path names no store and the client has no `default_store`.
    NoStore { client: String },
    /// The caller is not allowed the store it named.
    StoreNotAllowed { client: String, store: String },
    /// The store uninstalled the app; its token is gone.
    StoreUninstalled(String),
    /// Storefront, customer-login, current-customer and payments-host APIs.
    NotProxied { method: String, route: String },
    /// Method and path are not in the route table: denied, fail closed.
    RouteUnknown { method: String, path: String },
    /// The caller (or the store's token) lacks every scope that grants the route.
    ScopeDenied(Box<ScopeDenial>),
    /// The request body is larger than `server.max_body_bytes`.
    BodyTooLarge { limit: u64 },
    /// The client stopped sending its body for `server.body_read_timeout_ms`.
    BodyTimeout { after_ms: u64 },
    /// The whole request body did not arrive within `server.body_total_timeout_ms`
    /// (or was still arriving when the upstream's time ran out).
    BodyDeadline { after_ms: u64 },
    /// Header section too large or too many headers.
    HeadersTooLarge,
    /// No complete request head within `server.header_read_timeout_ms`.
    HeaderTimeout { after_ms: u64 },
    /// Upstream refused, TLS failed, or answered with an off-host redirect.
    UpstreamUnavailable(String),
    /// BigCommerce answered 401 to the store token bcgate sent: the caller's
    /// key was fine, the store's token is not.
    StoreTokenRefused(String),
    /// Upstream did not answer within `upstream.request_timeout_ms`.
    UpstreamTimeout { after_ms: u64 },
    /// The store's rate-limit budget had nothing for this request within
    /// `quota.max_wait_ms` (or its queue was full).
    QuotaExhausted(Box<QuotaDenial>),
    /// `server.max_in_flight` requests were already in flight.
    Overloaded,
    /// `X-Bcgate-Customer-Token` is not a current-customer JWT this store signed.
    InvalidCustomerToken(String),
    /// `channel_id` names a channel the store has no storefront origin for.
    ChannelUnknown { store: String, channel: Option<u32> },
    /// The client may not use the account it named (or no such account is configured).
    AccountNotAllowed { client: String, account: String },
    /// BigCommerce did not mint the token bcgate needs (`what`: which kind, and why).
    MintFailed(String),
    /// The store has no client id and client secret configured, so bcgate
    /// cannot sign a customer login link for it.
    StoreClientMissing(String),
}

/// Who waited for which store's quota, and what the store's window looks
/// like (the `X-Rate-Limit-*` headers of the 429, or B2B Edition's own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaDenial {
    pub client: String,
    pub store: String,
    /// The store's B2B Edition budget (its own headers), not the api's.
    pub b2b: bool,
    pub waited_ms: u64,
    pub quota: u64,
    pub window_ms: u64,
    /// Until the store has budget again.
    pub reset_ms: u64,
}

/// Why a scope check failed: who lacked what for which route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeDenial {
    /// `client 'x'` or `the token of store 'abc123'`.
    pub subject: String,
    pub method: String,
    pub route: String,
    /// Any one of these would have granted the request.
    pub required: Vec<String>,
}

#[derive(Serialize)]
struct Problem<'a> {
    status: u16,
    title: &'static str,
    #[serde(rename = "type")]
    type_: String,
    detail: String,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    required_scopes: Option<&'a [String]>,
    request_id: &'a str,
}

/// What every error of one `code` shares: its HTTP status, its code, its
/// problem `title`, and the request metrics' `decision` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorKind {
    pub status: StatusCode,
    /// The stable machine-readable code; docs/errors.md has a heading for each.
    pub code: &'static str,
    pub title: &'static str,
    pub decision: Decision,
}

/// Declares the table: one `ErrorKind` constant per row, and `ALL`.
macro_rules! error_kinds {
    ($($name:ident = $status:ident, $code:literal, $title:literal, $decision:ident;)*) => {
        impl ErrorKind {
            $(pub const $name: Self = Self {
                status: StatusCode::$status,
                code: $code,
                title: $title,
                decision: $decision,
            };)*

            /// Every row, once.
            pub const ALL: &'static [Self] = &[$(Self::$name),*];
        }
    };
}

// The one table of codes: a new code is one line here and one arm in
// `ProxyError::kind` (and a heading in docs/errors.md).
error_kinds! {
    UNAUTHENTICATED      = UNAUTHORIZED,                    "unauthenticated",      "Unauthenticated",      Denied;
    BAD_REQUEST          = BAD_REQUEST,                     "bad_request",          "Bad request",          Rejected;
    STORE_UNKNOWN        = NOT_FOUND,                       "store_unknown",        "Store unknown",        Denied;
    STORE_NOT_ALLOWED    = FORBIDDEN,                       "store_not_allowed",    "Store not allowed",    Denied;
    STORE_UNINSTALLED    = FORBIDDEN,                       "store_uninstalled",    "Store uninstalled",    Denied;
    NOT_PROXIED          = FORBIDDEN,                       "not_proxied",          "API not proxied",      Denied;
    ROUTE_UNKNOWN        = FORBIDDEN,                       "route_unknown",        "Route unknown",        Denied;
    SCOPE_DENIED         = FORBIDDEN,                       "scope_denied",         "Scope not allowed",    Denied;
    BODY_TOO_LARGE       = PAYLOAD_TOO_LARGE,               "body_too_large",       "Body too large",       Rejected;
    BODY_TIMEOUT         = REQUEST_TIMEOUT,                 "body_timeout",         "Body timeout",         Rejected;
    HEADERS_TOO_LARGE    = REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large",    "Headers too large",    Rejected;
    HEADER_TIMEOUT       = REQUEST_TIMEOUT,                 "header_timeout",       "Header timeout",       Rejected;
    UPSTREAM_UNAVAILABLE = BAD_GATEWAY,                     "upstream_unavailable", "Upstream unavailable", UpstreamFailed;
    STORE_TOKEN_REFUSED  = UNAUTHORIZED,                    "store_token_refused",  "Store token refused",  Denied;
    UPSTREAM_TIMEOUT     = GATEWAY_TIMEOUT,                 "upstream_timeout",     "Upstream timeout",     UpstreamFailed;
    QUOTA_EXHAUSTED      = TOO_MANY_REQUESTS,               "quota_exhausted",      "Quota exhausted",      Rejected;
    OVERLOADED           = SERVICE_UNAVAILABLE,             "overloaded",           "Overloaded",           Rejected;
    INVALID_CUSTOMER_TOKEN = UNAUTHORIZED,                  "invalid_customer_token", "Invalid customer token", Denied;
    CHANNEL_UNKNOWN      = FORBIDDEN,                       "channel_unknown",      "Channel unknown",      Denied;
    ACCOUNT_NOT_ALLOWED  = FORBIDDEN,                       "account_not_allowed",  "Account not allowed",  Denied;
    MINT_FAILED          = BAD_GATEWAY,                     "mint_failed",          "Token not minted",     UpstreamFailed;
    STORE_CLIENT_MISSING = FORBIDDEN,                       "store_client_missing", "Store client missing", Denied;
}

impl ProxyError {
    /// This error's row of the table.
    pub fn kind(&self) -> &'static ErrorKind {
        match self {
            Self::Unauthenticated(_) => &ErrorKind::UNAUTHENTICATED,
            Self::BadRequest(_) => &ErrorKind::BAD_REQUEST,
            Self::StoreUnknown(_) | Self::NoStore { .. } => &ErrorKind::STORE_UNKNOWN,
            Self::StoreNotAllowed { .. } => &ErrorKind::STORE_NOT_ALLOWED,
            Self::StoreUninstalled(_) => &ErrorKind::STORE_UNINSTALLED,
            Self::NotProxied { .. } => &ErrorKind::NOT_PROXIED,
            Self::RouteUnknown { .. } => &ErrorKind::ROUTE_UNKNOWN,
            Self::ScopeDenied(_) => &ErrorKind::SCOPE_DENIED,
            Self::BodyTooLarge { .. } => &ErrorKind::BODY_TOO_LARGE,
            Self::BodyTimeout { .. } | Self::BodyDeadline { .. } => &ErrorKind::BODY_TIMEOUT,
            Self::HeadersTooLarge => &ErrorKind::HEADERS_TOO_LARGE,
            Self::HeaderTimeout { .. } => &ErrorKind::HEADER_TIMEOUT,
            Self::UpstreamUnavailable(_) => &ErrorKind::UPSTREAM_UNAVAILABLE,
            Self::StoreTokenRefused(_) => &ErrorKind::STORE_TOKEN_REFUSED,
            Self::UpstreamTimeout { .. } => &ErrorKind::UPSTREAM_TIMEOUT,
            Self::QuotaExhausted(_) => &ErrorKind::QUOTA_EXHAUSTED,
            Self::Overloaded => &ErrorKind::OVERLOADED,
            Self::InvalidCustomerToken(_) => &ErrorKind::INVALID_CUSTOMER_TOKEN,
            Self::ChannelUnknown { .. } => &ErrorKind::CHANNEL_UNKNOWN,
            Self::AccountNotAllowed { .. } => &ErrorKind::ACCOUNT_NOT_ALLOWED,
            Self::MintFailed(_) => &ErrorKind::MINT_FAILED,
            Self::StoreClientMissing(_) => &ErrorKind::STORE_CLIENT_MISSING,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.kind().status
    }

    /// The stable machine-readable code; docs/errors.md has a heading for each.
    pub fn code(&self) -> &'static str {
        self.kind().code
    }

    /// What the request metrics' `decision` label says of a request answered with this error.
    pub fn decision(&self) -> Decision {
        self.kind().decision
    }

    /// One sentence for a human; see the module docs for what it may contain.
    pub fn detail(&self) -> String {
        match self {
            Self::Unauthenticated(why) => {
                format!("{why}; send your bcgate key in X-Auth-Token or Authorization: Bearer")
            }
            Self::BadRequest(why) => why.clone(),
            Self::StoreUnknown(store) => format!("no store '{store}' is configured"),
            Self::NoStore { client } => format!(
                "the path names no store (/stores/{{store}}/…) and client '{client}' has no default_store"
            ),
            Self::StoreNotAllowed { client, store } => {
                format!("client '{client}' is not allowed store '{store}'")
            }
            Self::StoreUninstalled(store) => format!(
                "store '{store}' uninstalled the app; bcgate no longer holds a token for it \
                 (it can be installed again from the store's control panel)"
            ),
            Self::NotProxied { method, route } => format!(
                "{method} {route} is a storefront, customer-login, current-customer or \
                 payments-host API; bcgate never sends it a store token"
            ),
            Self::RouteUnknown { method, path } => format!(
                "{method} {path} is not in bcgate's route tables; an operator can map an \
                 api.bigcommerce.com endpoint in [[routes]]"
            ),
            Self::ScopeDenied(d) => format!(
                "{} lacks {} for {} {}",
                d.subject,
                d.required.join(" or "),
                d.method,
                d.route
            ),
            Self::BodyTooLarge { limit } => {
                format!("the request body is larger than the limit of {limit} bytes")
            }
            Self::BodyTimeout { after_ms } => {
                format!("the request body stalled for {after_ms} ms")
            }
            Self::BodyDeadline { after_ms } => {
                format!("the request body was not complete within {after_ms} ms")
            }
            Self::HeadersTooLarge => "the request headers are too large or too many".into(),
            Self::HeaderTimeout { after_ms } => {
                format!("no complete request head arrived within {after_ms} ms")
            }
            Self::UpstreamUnavailable(why) => {
                format!("the BigCommerce API could not be used: {why}")
            }
            Self::StoreTokenRefused(store) => format!(
                "BigCommerce refused the API token bcgate holds for store '{store}' (401); \
                 your bcgate key was accepted. An operator must replace the store's token \
                 (or the store must install the app again)"
            ),
            Self::UpstreamTimeout { after_ms } => {
                format!("the BigCommerce API did not answer within {after_ms} ms")
            }
            Self::QuotaExhausted(d) => format!(
                "store '{}' has no {}rate-limit quota left for client '{}' (waited {} ms); \
                 retry after {} s",
                d.store,
                if d.b2b { "B2B Edition " } else { "" },
                d.client,
                d.waited_ms,
                retry_after_s(d.reset_ms)
            ),
            Self::Overloaded => format!(
                "bcgate has as many requests in flight as it takes at once; retry after \
                 {OVERLOADED_RETRY_AFTER_S} s"
            ),
            Self::InvalidCustomerToken(why) => {
                format!("the customer token is not a current-customer token of this store: {why}")
            }
            Self::ChannelUnknown {
                store,
                channel: Some(id),
            } => format!("store '{store}' has no storefront origin configured for channel {id}"),
            Self::ChannelUnknown {
                store,
                channel: None,
            } => format!("store '{store}' has no storefront channels configured"),
            Self::AccountNotAllowed { client, account } => {
                format!("client '{client}' is not allowed account '{account}'")
            }
            Self::MintFailed(why) => format!("BigCommerce did not mint {why}"),
            Self::StoreClientMissing(store) => format!(
                "store '{store}' has no client_id and client secret configured; bcgate cannot \
                 sign a customer login link for it"
            ),
        }
    }

    /// What went wrong on the way to the upstream, for the access log
    /// (secret-free, like [`detail`](Self::detail)).
    pub fn cause(&self) -> Option<&str> {
        match self {
            Self::UpstreamUnavailable(why) | Self::MintFailed(why) => Some(why),
            _ => None,
        }
    }

    /// `type` of the problem: `docs` (`server.error_docs_url`) plus `#<code>`,
    /// so operators who publish docs/errors.md can point it at their copy.
    pub fn type_uri(&self, docs: &str) -> String {
        format!("{docs}#{}", self.code())
    }

    /// [`Self::to_response_in`] with the default `type` base.
    pub fn to_response(&self, request_id: &str) -> Response<Bytes> {
        self.to_response_in(request_id, DEFAULT_ERROR_DOCS_URL)
    }

    /// The JSON problem-details response, its `type` under `docs`
    /// ([`Self::type_uri`]); the caller adds `X-Request-Id` and makes the
    /// body its own body type (this module sits below the body types).
    pub fn to_response_in(&self, request_id: &str, docs: &str) -> Response<Bytes> {
        let required = match self {
            Self::ScopeDenied(d) => Some(d.required.as_slice()),
            _ => None,
        };
        let kind = self.kind();
        let code = kind.code;
        let problem = Problem {
            status: kind.status.as_u16(),
            title: kind.title,
            type_: self.type_uri(docs),
            detail: self.detail(),
            code,
            required_scopes: required,
            request_id,
        };
        // Serializing plain strings and numbers cannot fail; fall back to the code alone.
        let json = serde_json::to_vec(&problem)
            .unwrap_or_else(|_| format!("{{\"code\":\"{code}\"}}").into_bytes());
        let mut resp = Response::new(Bytes::from(json));
        *resp.status_mut() = kind.status;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if matches!(self, Self::Unauthenticated(_)) {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(self, Self::StoreTokenRefused(_)) {
            // Told apart from bcgate's own `unauthenticated` 401 without reading the body.
            resp.headers_mut().insert(
                crate::headers::X_BCGATE_UPSTREAM_AUTH,
                HeaderValue::from_static("refused"),
            );
        }
        if matches!(self, Self::Overloaded) {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(OVERLOADED_RETRY_AFTER_S),
            );
        }
        if let Self::QuotaExhausted(d) = self {
            // What BigCommerce's own 429 carries: the SDKs read these.
            let h = resp.headers_mut();
            h.insert(
                crate::headers::X_RETRY_AFTER,
                retry_after_s(d.reset_ms).into(),
            );
            if d.b2b {
                b2b_rate_headers(h, d);
                return resp;
            }
            // Nothing left for this caller, whatever others may still get.
            h.insert(crate::headers::X_RATE_LIMIT_REQUESTS_LEFT, 0.into());
            h.insert(crate::headers::X_RATE_LIMIT_REQUESTS_QUOTA, d.quota.into());
            h.insert(
                crate::headers::X_RATE_LIMIT_TIME_WINDOW_MS,
                d.window_ms.into(),
            );
            h.insert(
                crate::headers::X_RATE_LIMIT_TIME_RESET_MS,
                d.reset_ms.into(),
            );
        }
        resp
    }
}

/// `Retry-After` of an `overloaded` answer: in-flight requests mostly end
/// within a second, and a longer pause would leave capacity idle.
pub const OVERLOADED_RETRY_AFTER_S: u64 = 1;

/// B2B Edition's rate-limit headers, in its own formats (`150 times/60 s`,
/// `0 times`, `12.001 s`), for a 429 of the B2B budget.
fn b2b_rate_headers(h: &mut http::HeaderMap, d: &QuotaDenial) {
    let secs = |ms: u64| ms as f64 / 1000.0;
    let values = [
        (
            crate::headers::X_REQUESTS_ALLOCATED,
            format!("{} times/{} s", d.quota, secs(d.window_ms)),
        ),
        (crate::headers::X_REQUESTS_REMAINING, "0 times".to_owned()),
        (
            crate::headers::X_REQUEST_WINDOW_RESETS_AFTER,
            format!("{} s", secs(d.reset_ms)),
        ),
    ];
    for (name, value) in values {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
}

/// Whole seconds until `reset_ms` has passed, at least 1 (`X-Retry-After`).
fn retry_after_s(reset_ms: u64) -> u64 {
    reset_ms.div_ceil(1000).max(1)
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.detail())
    }
}

impl std::error::Error for ProxyError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_denied_body_has_the_documented_shape() {
        let err = ProxyError::ScopeDenied(Box::new(ScopeDenial {
            subject: "client 'inventory-sync'".into(),
            method: "GET".into(),
            route: "/v2/orders/{order_id}".into(),
            required: vec!["store_v2_orders_read_only".into(), "store_v2_orders".into()],
        }));
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
        let detail = err.detail();
        assert_eq!(
            detail,
            "client 'inventory-sync' lacks store_v2_orders_read_only or store_v2_orders for GET /v2/orders/{order_id}"
        );
        let resp = err.to_response("rid-1");
        assert_eq!(resp.status(), 403);
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }

    #[test]
    fn quota_exhausted_carries_what_the_sdks_read() {
        let err = ProxyError::QuotaExhausted(Box::new(QuotaDenial {
            client: "inventory-sync".into(),
            store: "abc123".into(),
            b2b: false,
            waited_ms: 2_000,
            quota: 150,
            window_ms: 30_000,
            reset_ms: 12_001,
        }));
        let resp = err.to_response("rid-2");
        assert_eq!(resp.status(), 429);
        let h = resp.headers();
        for (name, value) in [
            ("x-retry-after", "13"),
            ("x-rate-limit-requests-left", "0"),
            ("x-rate-limit-requests-quota", "150"),
            ("x-rate-limit-time-window-ms", "30000"),
            ("x-rate-limit-time-reset-ms", "12001"),
        ] {
            assert_eq!(h[name], value, "{name}");
        }
        assert!(
            err.detail().contains("retry after 13 s"),
            "{}",
            err.detail()
        );
        assert!(!h.contains_key("x-requests-remaining"));
    }

    #[test]
    fn a_b2b_quota_exhausted_speaks_b2b_editions_headers() {
        let err = ProxyError::QuotaExhausted(Box::new(QuotaDenial {
            client: "b2b-sync".into(),
            store: "abc123".into(),
            b2b: true,
            waited_ms: 0,
            quota: 150,
            window_ms: 60_000,
            reset_ms: 41_250,
        }));
        let resp = err.to_response("rid-3");
        assert_eq!(resp.status(), 429);
        let h = resp.headers();
        for (name, value) in [
            ("x-retry-after", "42"),
            ("x-requests-allocated", "150 times/60 s"),
            ("x-requests-remaining", "0 times"),
            ("x-request-window-resets-after", "41.25 s"),
        ] {
            assert_eq!(h[name], value, "{name}");
        }
        assert!(!h.contains_key("x-rate-limit-requests-left"));
        assert!(
            err.detail()
                .starts_with("store 'abc123' has no B2B Edition rate-limit quota left"),
            "{}",
            err.detail()
        );
    }

    /// One of every variant. The match below stops compiling when a variant
    /// is added, so this list (and the tests over it) cannot miss one.
    fn every_variant() -> Vec<ProxyError> {
        let all = vec![
            ProxyError::Unauthenticated("x"),
            ProxyError::BadRequest("x".into()),
            ProxyError::StoreUnknown("x".into()),
            ProxyError::NoStore { client: "a".into() },
            ProxyError::StoreNotAllowed {
                client: "a".into(),
                store: "b".into(),
            },
            ProxyError::StoreUninstalled("x".into()),
            ProxyError::NotProxied {
                method: "GET".into(),
                route: "/x".into(),
            },
            ProxyError::RouteUnknown {
                method: "GET".into(),
                path: "/x".into(),
            },
            ProxyError::ScopeDenied(Box::new(ScopeDenial {
                subject: "client 'a'".into(),
                method: "GET".into(),
                route: "/x".into(),
                required: vec!["s".into()],
            })),
            ProxyError::BodyTooLarge { limit: 1 },
            ProxyError::BodyTimeout { after_ms: 1 },
            ProxyError::BodyDeadline { after_ms: 1 },
            ProxyError::HeadersTooLarge,
            ProxyError::HeaderTimeout { after_ms: 1 },
            ProxyError::UpstreamUnavailable("x".into()),
            ProxyError::StoreTokenRefused("x".into()),
            ProxyError::UpstreamTimeout { after_ms: 1 },
            ProxyError::QuotaExhausted(Box::new(QuotaDenial {
                client: "a".into(),
                store: "b".into(),
                b2b: false,
                waited_ms: 1,
                quota: 150,
                window_ms: 30_000,
                reset_ms: 1,
            })),
            ProxyError::Overloaded,
            ProxyError::InvalidCustomerToken("expired".into()),
            ProxyError::ChannelUnknown {
                store: "abc".into(),
                channel: Some(2),
            },
            ProxyError::AccountNotAllowed {
                client: "a".into(),
                account: "u".into(),
            },
            ProxyError::MintFailed("a payment access token (422)".into()),
            ProxyError::StoreClientMissing("abc".into()),
        ];
        for e in &all {
            match e {
                ProxyError::Unauthenticated(_)
                | ProxyError::BadRequest(_)
                | ProxyError::StoreUnknown(_)
                | ProxyError::NoStore { .. }
                | ProxyError::StoreNotAllowed { .. }
                | ProxyError::StoreUninstalled(_)
                | ProxyError::NotProxied { .. }
                | ProxyError::RouteUnknown { .. }
                | ProxyError::ScopeDenied(_)
                | ProxyError::BodyTooLarge { .. }
                | ProxyError::BodyTimeout { .. }
                | ProxyError::BodyDeadline { .. }
                | ProxyError::HeadersTooLarge
                | ProxyError::HeaderTimeout { .. }
                | ProxyError::UpstreamUnavailable(_)
                | ProxyError::StoreTokenRefused(_)
                | ProxyError::UpstreamTimeout { .. }
                | ProxyError::QuotaExhausted(_)
                | ProxyError::Overloaded
                | ProxyError::InvalidCustomerToken(_)
                | ProxyError::ChannelUnknown { .. }
                | ProxyError::AccountNotAllowed { .. }
                | ProxyError::MintFailed(_)
                | ProxyError::StoreClientMissing(_) => {}
            }
        }
        all
    }

    #[test]
    fn every_variant_answers_its_documented_status_code_and_title() {
        // The answers as documented in docs/errors.md; a change here is a
        // change of the public contract.
        let want: [(u16, &str, &str); 24] = [
            (401, "unauthenticated", "Unauthenticated"),
            (400, "bad_request", "Bad request"),
            (404, "store_unknown", "Store unknown"),
            (404, "store_unknown", "Store unknown"),
            (403, "store_not_allowed", "Store not allowed"),
            (403, "store_uninstalled", "Store uninstalled"),
            (403, "not_proxied", "API not proxied"),
            (403, "route_unknown", "Route unknown"),
            (403, "scope_denied", "Scope not allowed"),
            (413, "body_too_large", "Body too large"),
            (408, "body_timeout", "Body timeout"),
            (408, "body_timeout", "Body timeout"),
            (431, "headers_too_large", "Headers too large"),
            (408, "header_timeout", "Header timeout"),
            (502, "upstream_unavailable", "Upstream unavailable"),
            (401, "store_token_refused", "Store token refused"),
            (504, "upstream_timeout", "Upstream timeout"),
            (429, "quota_exhausted", "Quota exhausted"),
            (503, "overloaded", "Overloaded"),
            (401, "invalid_customer_token", "Invalid customer token"),
            (403, "channel_unknown", "Channel unknown"),
            (403, "account_not_allowed", "Account not allowed"),
            (502, "mint_failed", "Token not minted"),
            (403, "store_client_missing", "Store client missing"),
        ];
        let all = every_variant();
        assert_eq!(all.len(), want.len());
        for (e, (status, code, title)) in all.iter().zip(want) {
            assert_eq!(e.status().as_u16(), status, "{e:?}");
            assert_eq!(e.code(), code, "{e:?}");
            let resp = e.to_response_in("rid", "https://docs.example/errors");
            assert_eq!(resp.status().as_u16(), status, "{e:?}");
            let body: serde_json::Value =
                serde_json::from_slice(resp.body()).expect("problem JSON");
            assert_eq!(body["status"], status, "{e:?}");
            assert_eq!(body["code"], code, "{e:?}");
            assert_eq!(body["title"], title, "{e:?}");
            assert_eq!(body["detail"], e.detail().as_str(), "{e:?}");
            assert_eq!(body["type"], format!("https://docs.example/errors#{code}"));
            assert_eq!(body["request_id"], "rid");
        }
    }

    #[test]
    fn the_table_has_one_row_per_code_and_every_row_is_used() {
        let mut codes: Vec<_> = ErrorKind::ALL.iter().map(|k| k.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ErrorKind::ALL.len(), "a code appears twice");
        assert!(
            codes
                .iter()
                .all(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'))
        );
        let used: Vec<&ErrorKind> = every_variant().iter().map(ProxyError::kind).collect();
        for k in ErrorKind::ALL {
            assert!(used.contains(&k), "no variant answers {}", k.code);
        }
        for k in used {
            assert!(ErrorKind::ALL.contains(k), "{} is missing from ALL", k.code);
        }
    }

    #[test]
    fn the_decision_label_follows_the_status_class() {
        // The request metrics' documented classes (docs/observability.md).
        for e in every_variant() {
            let want = match e.status().as_u16() {
                401 | 403 | 404 => Decision::Denied,
                502 | 504 => Decision::UpstreamFailed,
                _ => Decision::Rejected,
            };
            assert_eq!(e.decision(), want, "{e:?}");
        }
    }
}
