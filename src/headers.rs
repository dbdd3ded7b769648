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

/// B2B Edition's retired credential (a B2B token of its own): a caller's is
/// never passed on, and bcgate never sends one.
pub const AUTHTOKEN: HeaderName = HeaderName::from_static("authtoken");
/// B2B Edition's companion of `X-Auth-Token`: the store the token is for.
pub const X_STORE_HASH: HeaderName = HeaderName::from_static("x-store-hash");
/// The storefront customer a customer impersonation token acts as.
pub const X_BC_CUSTOMER_ID: HeaderName = HeaderName::from_static("x-bc-customer-id");
/// The order a payment is for (bcgate mints the payment access token for it).
pub const X_BCGATE_ORDER_ID: HeaderName = HeaderName::from_static("x-bcgate-order-id");
/// A shopper's current-customer JWT: bcgate verifies it and impersonates that customer.
pub const X_BCGATE_CUSTOMER_TOKEN: HeaderName = HeaderName::from_static("x-bcgate-customer-token");
/// The media type the payments host answers with.
pub const PAYMENTS_ACCEPT: &str = "application/vnd.bc.v1+json";

/// Credentials a caller may send; none of them ever reaches the upstream.
pub const CALLER_CREDENTIALS: [HeaderName; 7] = [
    header::AUTHORIZATION,
    X_AUTH_TOKEN,
    X_AUTH_CLIENT,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
    X_BCGATE_CUSTOMER_TOKEN,
    AUTHTOKEN,
];

/// Headers that pick what bcgate's credential acts on (a store, a customer,
/// an order): read by the decision, never passed on as the caller sent them.
pub const CALLER_CHOICES: [HeaderName; 3] = [X_STORE_HASH, X_BC_CUSTOMER_ID, X_BCGATE_ORDER_ID];

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

/// B2B Edition's own rate-limit headers (its budget is not the api host's):
/// `150 times/60 s`, `12 times`, `0.397 s`.
pub const X_REQUESTS_ALLOCATED: HeaderName = HeaderName::from_static("x-requests-allocated");
pub const X_REQUESTS_REMAINING: HeaderName = HeaderName::from_static("x-requests-remaining");
pub const X_REQUEST_WINDOW_RESETS_AFTER: HeaderName =
    HeaderName::from_static("x-request-window-resets-after");

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
