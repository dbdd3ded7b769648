//! Rewrite stage: the headers that go upstream and come back.
//!
//! Upstream: every caller credential, hop-by-hop header, header named in
//! `Connection`, method override, forwarding claim and credential choice
//! (`X-Store-Hash`, `X-Bc-Customer-Id`, …) is removed first; only then are
//! the family's credential headers, the upstream `Host` and `X-Request-Id`
//! set, so nothing a caller sends can remove or replace the credential.

use http::{HeaderMap, HeaderName, HeaderValue, header};

use crate::headers::{
    CALLER_CHOICES, CALLER_CREDENTIALS, CALLER_OVERRIDES, HOP_BY_HOP, X_AUTH_TOKEN,
    X_FORWARDED_PREFIX, X_REQUEST_ID,
};

/// Removes hop-by-hop headers and every header `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named = connection_named(headers);
    remove_where(headers, |k, _| is_hop_by_hop(k, &named));
}

/// Turns the caller's headers into the upstream request's headers: `inject`
/// is the family's credential (`X-Auth-Token`, or `Authorization`, with its
/// companions such as `X-Store-Hash`).
pub fn upstream_request(
    headers: &mut HeaderMap,
    host: &HeaderValue,
    inject: &[(HeaderName, HeaderValue)],
    request_id: &HeaderValue,
) {
    let named = connection_named(headers);
    // Host, X-Request-Id and the injected names are replaced below (`insert`
    // drops every value the caller sent), so they need no removal pass of
    // their own.
    remove_where(headers, |k, _| {
        let replaced =
            k == header::HOST || k == X_REQUEST_ID || inject.iter().any(|(name, _)| name == k);
        !replaced
            && (is_hop_by_hop(k, &named)
                || CALLER_CREDENTIALS.contains(k)
                || CALLER_CHOICES.contains(k)
                || CALLER_OVERRIDES.contains(k)
                || k.as_str().starts_with(X_FORWARDED_PREFIX))
    });
    headers.insert(header::HOST, host.clone());
    for (name, value) in inject {
        headers.insert(name.clone(), value.clone());
    }
    headers.insert(X_REQUEST_ID, request_id.clone());
}

/// Cleans the upstream response's headers for the caller: hop-by-hop out,
/// and any header that carries the credential bcgate sent (`secret`: the
/// store's token, or a token bcgate minted; BigCommerce does not echo it,
/// but the caller must never see it if it ever did). Rate-limit headers
/// (`X-Rate-Limit-*`, `X-Retry-After`) are end-to-end and pass untouched.
pub fn downstream_response(headers: &mut HeaderMap, secret: &HeaderValue) {
    let named = connection_named(headers);
    let secret = secret.as_bytes();
    remove_where(headers, |k, v| {
        is_hop_by_hop(k, &named)
            || *k == X_AUTH_TOKEN
            || v.as_bytes().windows(secret.len()).any(|w| w == secret)
    });
}

/// The header names listed in `Connection` (usually none: no allocation).
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        // `keep-alive`, `close` and other hop-by-hop names go anyway; only
        // the rest need a name of their own (usually none: no allocation).
        .filter(|name| {
            !HOP_BY_HOP
                .iter()
                .any(|h| h.as_str().eq_ignore_ascii_case(name))
        })
        .filter(|name| !name.eq_ignore_ascii_case("close"))
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .collect()
}

fn is_hop_by_hop(name: &HeaderName, connection_named: &[HeaderName]) -> bool {
    HOP_BY_HOP.contains(name) || connection_named.contains(name)
}

/// Removes every header (all its values) that `drop` picks, looking at each
/// field once rather than probing the map once per name it might hold.
fn remove_where(headers: &mut HeaderMap, drop: impl Fn(&HeaderName, &HeaderValue) -> bool) {
    let doomed: Vec<HeaderName> = headers
        .iter()
        .filter(|(k, v)| drop(k, v))
        .map(|(k, _)| k.clone())
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::StoreToken;

    fn hv(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    #[test]
    fn connection_cannot_remove_the_injected_token() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            hv("X-Auth-Token, x-request-id, keep-alive"),
        );
        h.append(header::CONNECTION, hv("host"));
        h.insert(X_AUTH_TOKEN, hv("client-key"));
        h.insert("x-forwarded-for", hv("10.0.0.1"));
        h.insert("x-forwarded-host", hv("evil.example"));
        h.insert("forwarded", hv("for=1.2.3.4"));
        h.insert("x-http-method-override", hv("DELETE"));
        h.insert(header::COOKIE, hv("a=b"));
        h.insert(header::AUTHORIZATION, hv("Bearer client-key"));
        h.insert("x-auth-client", hv("cid"));
        h.insert(header::PROXY_AUTHORIZATION, hv("Basic eA=="));
        h.insert(header::TE, hv("trailers"));
        h.insert(header::ACCEPT, hv("application/json"));
        h.insert("x-store-hash", hv("other"));
        h.insert("x-bc-customer-id", hv("7"));
        h.insert("x-bcgate-order-id", hv("9"));
        h.insert("x-bcgate-customer-token", hv("a.b.c"));
        h.insert("authtoken", hv("legacy-b2b-token"));
        let token = StoreToken::new("store-token").expect("token");
        upstream_request(
            &mut h,
            &hv("api.bigcommerce.com"),
            &[(X_AUTH_TOKEN, token.header_value())],
            &hv("rid"),
        );
        assert_eq!(
            h.get_all(X_AUTH_TOKEN).iter().collect::<Vec<_>>(),
            vec!["store-token"]
        );
        assert_eq!(h[header::HOST], "api.bigcommerce.com");
        assert_eq!(h[X_REQUEST_ID], "rid");
        assert_eq!(h[header::ACCEPT], "application/json");
        let left: Vec<_> = h.keys().map(|k| k.as_str().to_string()).collect();
        let mut left_sorted = left.clone();
        left_sorted.sort();
        assert_eq!(
            left_sorted,
            ["accept", "host", "x-auth-token", "x-request-id"],
            "{left:?}"
        );
    }

    #[test]
    fn response_keeps_rate_limit_headers_and_drops_hop_by_hop() {
        let mut h = HeaderMap::new();
        h.insert("x-rate-limit-requests-left", hv("10"));
        h.insert("x-retry-after", hv("5"));
        h.insert(header::CONNECTION, hv("x-secret"));
        h.insert("x-secret", hv("s"));
        h.insert(header::TRANSFER_ENCODING, hv("chunked"));
        h.insert(X_AUTH_TOKEN, hv("store-token"));
        h.insert("x-debug", hv("sent with token=store-token"));
        h.insert(header::CONTENT_TYPE, hv("application/json"));
        downstream_response(&mut h, &hv("store-token"));
        assert!(h.get(X_AUTH_TOKEN).is_none());
        assert!(
            h.get("x-debug").is_none(),
            "a header echoing the token is dropped"
        );
        assert_eq!(h[header::CONTENT_TYPE], "application/json");
        assert_eq!(h["x-rate-limit-requests-left"], "10");
        assert_eq!(h["x-retry-after"], "5");
        assert!(h.get("x-secret").is_none());
        assert!(h.get(header::TRANSFER_ENCODING).is_none());
    }
}
