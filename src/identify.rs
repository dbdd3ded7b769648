//! Identify the caller: its bcgate key, from `X-Auth-Token` (what every
//! BigCommerce SDK sends) or `Authorization: Bearer`, looked up by SHA-256;
//! or the connection itself — a unix-socket peer's uid, an mTLS
//! certificate's subject — where a client is configured for it. Keys are
//! never read from the query string, kept, or printed.

use std::sync::Arc;

use http::{HeaderMap, header};
use sha2::{Digest, Sha256};

use crate::config::{Client, Clients};
use crate::error::ProxyError;
use crate::headers::X_AUTH_TOKEN;

/// Who the connection says the caller is, fixed when it was accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// The uid of a unix-socket peer.
    pub uid: Option<u32>,
    /// The normalized subject of a verified mTLS client certificate.
    pub tls_subject: Option<String>,
}

/// The client a request belongs to. A connection identity that maps to a
/// client is enough on its own; a key sent beside it must name the same
/// client. More than one key in a request is a 400 even when they are
/// equal: the caller is confused about who it is.
pub fn identify<'a>(
    headers: &HeaderMap,
    peer: &Peer,
    clients: &'a Clients,
) -> Result<&'a Arc<Client>, ProxyError> {
    let by_peer = peer.uid.and_then(|uid| clients.by_uid(uid)).or_else(|| {
        peer.tls_subject
            .as_deref()
            .and_then(|s| clients.by_subject(s))
    });
    match (by_key(headers, clients)?, by_peer) {
        (Some(k), Some(p)) if !Arc::ptr_eq(k, p) => Err(ProxyError::BadRequest(format!(
            "the key names another client than the connection ({}); send no key, or {}'s own",
            p.label, p.label
        ))),
        (Some(c), _) | (None, Some(c)) => Ok(c),
        (None, None) => Err(ProxyError::Unauthenticated("no bcgate key was sent")),
    }
}

/// The client of the request's key, `None` when it sent no key.
fn by_key<'a>(
    headers: &HeaderMap,
    clients: &'a Clients,
) -> Result<Option<&'a Arc<Client>>, ProxyError> {
    let mut keys = headers.get_all(X_AUTH_TOKEN).iter().map(|v| v.as_bytes());
    let bearer = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| bearer_key(v.as_bytes()));
    let mut all = keys.by_ref().chain(bearer);
    let key = match (all.next(), all.next()) {
        (None, _) => return Ok(None),
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
        .map(Some)
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

/// A new random client key: `bcg_` and 64 hex digits (32 random bytes).
pub fn new_key() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(format!("bcg_{}", hex::encode(bytes)))
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
