//! Request ids: the `X-Request-Id` a caller sent when it is a sane token,
//! else a fresh one. One generator serves the whole process (it is carried
//! from one config generation to the next), so ids stay unique across reloads.

use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderValue;

use crate::headers::X_REQUEST_ID;

/// Request ids: the caller's when it is a sane token, else a fresh one.
#[derive(Debug)]
pub struct RequestIds {
    prefix: u64,
    counter: AtomicU64,
}

impl RequestIds {
    pub fn new() -> Self {
        let mut seed = [0u8; 8];
        // A fixed prefix only makes ids less unique across restarts; never fatal.
        let _ = getrandom::getrandom(&mut seed);
        Self {
            prefix: u64::from_le_bytes(seed),
            counter: AtomicU64::new(0),
        }
    }

    pub fn for_request(&self, headers: &http::HeaderMap) -> HeaderValue {
        if let Some(v) = headers.get(X_REQUEST_ID)
            && is_valid_request_id(v.as_bytes())
        {
            return v.clone();
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // 32 hex digits: the prefix, then the counter (no `fmt` pass per request).
        let mut id = [0u8; 32];
        hex::encode_to_slice(self.prefix.to_be_bytes(), &mut id[..16])
            .and_then(|()| hex::encode_to_slice(n.to_be_bytes(), &mut id[16..]))
            .ok()
            .and_then(|()| HeaderValue::from_bytes(&id).ok())
            .unwrap_or(HeaderValue::from_static("-"))
    }
}

/// 1–128 characters of `A-Z a-z 0-9 - _ . :`.
pub fn is_valid_request_id(v: &[u8]) -> bool {
    (1..=128).contains(&v.len())
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_caller_id_is_kept_and_anything_else_replaced() {
        let ids = RequestIds::new();
        let mut h = http::HeaderMap::new();
        h.insert(X_REQUEST_ID, HeaderValue::from_static("trace-1.a:b_c"));
        assert_eq!(ids.for_request(&h), "trace-1.a:b_c");
        for bad in ["has space", "semi;colon", ""] {
            h.insert(
                X_REQUEST_ID,
                HeaderValue::from_str(bad).expect("header value"),
            );
            let got = ids.for_request(&h);
            assert_ne!(got, bad);
            assert_eq!(got.len(), 32, "{got:?}");
        }
        let long = "a".repeat(129);
        h.insert(
            X_REQUEST_ID,
            HeaderValue::from_str(&long).expect("header value"),
        );
        assert_eq!(ids.for_request(&h).len(), 32);
    }

    #[test]
    fn fresh_ids_are_distinct_and_share_the_process_prefix() {
        let ids = RequestIds::new();
        let none = http::HeaderMap::new();
        let a = ids.for_request(&none);
        let b = ids.for_request(&none);
        assert_ne!(a, b);
        assert!(is_valid_request_id(a.as_bytes()));
        assert_eq!(a.as_bytes()[..16], b.as_bytes()[..16]);
    }
}
