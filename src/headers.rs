//! Every header name the request path reads, strips or writes, in one place.

use http::header::{self, HeaderName};

pub const X_AUTH_TOKEN: HeaderName = HeaderName::from_static("x-auth-token");
pub const X_AUTH_CLIENT: HeaderName = HeaderName::from_static("x-auth-client");
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
pub const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
pub const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
/// `refused` on the answer to a request whose store token BigCommerce refused.
pub const X_BCGATE_UPSTREAM_AUTH: HeaderName = HeaderName::from_static("x-bcgate-upstream-auth");

/// Credentials a caller may send; none of them ever reaches the upstream.
pub const CALLER_CREDENTIALS: [HeaderName; 5] = [
    header::AUTHORIZATION,
    X_AUTH_TOKEN,
    X_AUTH_CLIENT,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
];

/// Hop-by-hop headers (RFC 9110 §7.6.1 and the legacy ones proxies still see).
pub const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::EXPECT,
];

/// Headers that would let a caller change the method or claim another origin.
pub const CALLER_OVERRIDES: [HeaderName; 4] = [
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
    FORWARDED,
];

/// Prefix of the `X-Forwarded-*` family, all dropped.
pub const X_FORWARDED_PREFIX: &str = "x-forwarded-";

/// How many requests the store has left in its current window (BigCommerce).
pub const X_RATE_LIMIT_REQUESTS_LEFT: HeaderName =
    HeaderName::from_static("x-rate-limit-requests-left");

/// The rest of BigCommerce's rate-limit headers, for bcgate's own 429 (`quota_exhausted`).
pub const X_RATE_LIMIT_REQUESTS_QUOTA: HeaderName =
    HeaderName::from_static("x-rate-limit-requests-quota");
pub const X_RATE_LIMIT_TIME_WINDOW_MS: HeaderName =
    HeaderName::from_static("x-rate-limit-time-window-ms");
pub const X_RATE_LIMIT_TIME_RESET_MS: HeaderName =
    HeaderName::from_static("x-rate-limit-time-reset-ms");
pub const X_RETRY_AFTER: HeaderName = HeaderName::from_static("x-retry-after");

/// Non-standard names on (nearly) every BigCommerce answer: the HTTP/1.1
/// client matches these before parsing a name, so they cost no allocation.
pub const FREQUENT_RESPONSE_NAMES: [HeaderName; 6] = [
    X_RATE_LIMIT_REQUESTS_QUOTA,
    X_RATE_LIMIT_REQUESTS_LEFT,
    X_RATE_LIMIT_TIME_WINDOW_MS,
    X_RATE_LIMIT_TIME_RESET_MS,
    X_RETRY_AFTER,
    X_REQUEST_ID,
];
