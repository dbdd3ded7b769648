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

use crate::body::ProxyBody;

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
}

/// Who waited for which store's quota, and what the store's window looks
/// like (the `X-Rate-Limit-*` headers of the 429).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaDenial {
    pub client: String,
    pub store: String,
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

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated(_) | Self::StoreTokenRefused(_) => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::StoreUnknown(_) | Self::NoStore { .. } => StatusCode::NOT_FOUND,
            Self::StoreNotAllowed { .. }
            | Self::StoreUninstalled(_)
            | Self::NotProxied { .. }
            | Self::RouteUnknown { .. }
            | Self::ScopeDenied(_) => StatusCode::FORBIDDEN,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } | Self::BodyDeadline { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::HeaderTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::UpstreamUnavailable(_) => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::QuotaExhausted(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable machine-readable code; docs/errors.md has a heading for each.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "unauthenticated",
            Self::BadRequest(_) => "bad_request",
            Self::StoreUnknown(_) | Self::NoStore { .. } => "store_unknown",
            Self::StoreNotAllowed { .. } => "store_not_allowed",
            Self::StoreUninstalled(_) => "store_uninstalled",
            Self::NotProxied { .. } => "not_proxied",
            Self::RouteUnknown { .. } => "route_unknown",
            Self::ScopeDenied(_) => "scope_denied",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::BodyTimeout { .. } | Self::BodyDeadline { .. } => "body_timeout",
            Self::HeadersTooLarge => "headers_too_large",
            Self::HeaderTimeout { .. } => "header_timeout",
            Self::UpstreamUnavailable(_) => "upstream_unavailable",
            Self::StoreTokenRefused(_) => "store_token_refused",
            Self::UpstreamTimeout { .. } => "upstream_timeout",
            Self::QuotaExhausted(_) => "quota_exhausted",
            Self::Overloaded => "overloaded",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "Unauthenticated",
            Self::BadRequest(_) => "Bad request",
            Self::StoreUnknown(_) | Self::NoStore { .. } => "Store unknown",
            Self::StoreNotAllowed { .. } => "Store not allowed",
            Self::StoreUninstalled(_) => "Store uninstalled",
            Self::NotProxied { .. } => "API not proxied",
            Self::RouteUnknown { .. } => "Route unknown",
            Self::ScopeDenied(_) => "Scope not allowed",
            Self::BodyTooLarge { .. } => "Body too large",
            Self::BodyTimeout { .. } | Self::BodyDeadline { .. } => "Body timeout",
            Self::HeadersTooLarge => "Headers too large",
            Self::HeaderTimeout { .. } => "Header timeout",
            Self::UpstreamUnavailable(_) => "Upstream unavailable",
            Self::StoreTokenRefused(_) => "Store token refused",
            Self::UpstreamTimeout { .. } => "Upstream timeout",
            Self::QuotaExhausted(_) => "Quota exhausted",
            Self::Overloaded => "Overloaded",
        }
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
                "{method} {path} is not in bcgate's route table; an operator can map it in [[routes]]"
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
                "store '{}' has no rate-limit quota left for client '{}' (waited {} ms); \
                 retry after {} s",
                d.store,
                d.client,
                d.waited_ms,
                retry_after_s(d.reset_ms)
            ),
            Self::Overloaded => format!(
                "bcgate has as many requests in flight as it takes at once; retry after \
                 {OVERLOADED_RETRY_AFTER_S} s"
            ),
        }
    }

    /// What went wrong on the way to the upstream, for the access log
    /// (secret-free, like [`detail`](Self::detail)).
    pub fn cause(&self) -> Option<&str> {
        match self {
            Self::UpstreamUnavailable(why) => Some(why),
            _ => None,
        }
    }

    /// `type` of the problem: `docs` (`server.error_docs_url`) plus `#<code>`,
    /// so operators who publish docs/errors.md can point it at their copy.
    pub fn type_uri(&self, docs: &str) -> String {
        format!("{docs}#{}", self.code())
    }

    /// [`Self::to_response_in`] with the default `type` base.
    pub fn to_response(&self, request_id: &str) -> Response<ProxyBody> {
        self.to_response_in(request_id, DEFAULT_ERROR_DOCS_URL)
    }

    /// The JSON problem-details response, its `type` under `docs`
    /// ([`Self::type_uri`]); the caller adds `X-Request-Id`.
    pub fn to_response_in(&self, request_id: &str, docs: &str) -> Response<ProxyBody> {
        let required = match self {
            Self::ScopeDenied(d) => Some(d.required.as_slice()),
            _ => None,
        };
        let code = self.code();
        let problem = Problem {
            status: self.status().as_u16(),
            title: self.title(),
            type_: self.type_uri(docs),
            detail: self.detail(),
            code,
            required_scopes: required,
            request_id,
        };
        // Serializing plain strings and numbers cannot fail; fall back to the code alone.
        let json = serde_json::to_vec(&problem)
            .unwrap_or_else(|_| format!("{{\"code\":\"{code}\"}}").into_bytes());
        let mut resp = Response::new(crate::body::full(Bytes::from(json)));
        *resp.status_mut() = self.status();
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
    }

    #[test]
    fn every_code_is_distinct_and_snake_case() {
        let all = [
            ProxyError::Unauthenticated("x"),
            ProxyError::BadRequest("x".into()),
            ProxyError::StoreUnknown("x".into()),
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
            ProxyError::BodyTooLarge { limit: 1 },
            ProxyError::BodyTimeout { after_ms: 1 },
            ProxyError::HeadersTooLarge,
            ProxyError::HeaderTimeout { after_ms: 1 },
            ProxyError::UpstreamUnavailable("x".into()),
            ProxyError::StoreTokenRefused("x".into()),
            ProxyError::UpstreamTimeout { after_ms: 1 },
            ProxyError::QuotaExhausted(Box::new(QuotaDenial {
                client: "a".into(),
                store: "b".into(),
                waited_ms: 1,
                quota: 150,
                window_ms: 30_000,
                reset_ms: 1,
            })),
            ProxyError::Overloaded,
        ];
        let mut codes: Vec<_> = all.iter().map(|e| e.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert!(
            codes
                .iter()
                .all(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'))
        );
    }
}
