//! Identify the caller: its bcgate key, from `X-Auth-Token` (what every
//! BigCommerce SDK sends) or `Authorization: Bearer`, looked up by SHA-256.
//! Keys are never read from the query string, kept, or printed.

use std::sync::Arc;

use http::{HeaderMap, header};
use sha2::{Digest, Sha256};

use crate::config::{Client, Clients};
use crate::error::ProxyError;
use crate::headers::X_AUTH_TOKEN;

/// The client a request's key belongs to. More than one key in a request is
/// a 400 even when they are equal: the caller is confused about who it is.
pub fn identify<'a>(
    headers: &HeaderMap,
    clients: &'a Clients,
) -> Result<&'a Arc<Client>, ProxyError> {
    let mut keys = headers.get_all(X_AUTH_TOKEN).iter().map(|v| v.as_bytes());
    let bearer = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| bearer_key(v.as_bytes()));
    let mut all = keys.by_ref().chain(bearer);
    let key = match (all.next(), all.next()) {
        (None, _) => return Err(ProxyError::Unauthenticated("no bcgate key was sent")),
        (Some(_), Some(_)) => {
            return Err(ProxyError::BadRequest(
                "the request carries more than one key (X-Auth-Token and/or Authorization: Bearer); send exactly one".into(),
            ));
        }
        (Some(k), None) => k.trim_ascii(),
    };
    if key.is_empty() {
        return Err(ProxyError::Unauthenticated("the bcgate key is empty"));
    }
    let digest: [u8; 32] = Sha256::digest(key).into();
    clients
        .by_digest(&digest)
        .ok_or(ProxyError::Unauthenticated("the bcgate key is not known"))
}

/// The credential of an `Authorization: Bearer <key>` value (scheme is case-insensitive).
fn bearer_key(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii_start();
    let (scheme, rest) = value.split_at_checked(6)?;
    (scheme.eq_ignore_ascii_case(b"bearer") && rest.first() == Some(&b' '))
        .then(|| rest.trim_ascii())
}

/// The hex SHA-256 of a key, as `key_sha256` holds it.
pub fn key_sha256(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_space() {
        assert_eq!(bearer_key(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_key(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer_key(b"Bearerabc"), None);
        assert_eq!(bearer_key(b"Basic abc"), None);
        assert_eq!(bearer_key(b"Bear"), None);
    }

    #[test]
    fn key_digest_matches_the_documented_example() {
        assert_eq!(
            key_sha256("test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }
}
