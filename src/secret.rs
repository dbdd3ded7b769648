//! The one type every secret bcgate holds is kept in: store tokens, the
//! app's client secret, the token store's key and Redis passwords (inside
//! Redis URLs, which are shown through [`redact_url`]).
//!
//! A [`Secret`] cannot be printed (`Debug` and `Display` say `[REDACTED]`)
//! and does not outlive its use: the one buffer holding it is zeroed when
//! the last copy is dropped (on reload or exit). A store token's header
//! value shares that buffer and is marked sensitive (never HPACK-indexed,
//! shown as `Sensitive` by `Debug`). Copies the HTTP stack makes while
//! writing a request are outside its reach; see SECURITY.md.

use std::fmt;

use bytes::Bytes;
use http::HeaderValue;
use zeroize::Zeroizing;

/// A secret value. Cloning shares the buffer; the last drop wipes it.
#[derive(Clone)]
pub struct Secret {
    bytes: Bytes,
    /// The same bytes as a header value, for a secret made by [`Secret::new`].
    header: Option<HeaderValue>,
}

/// A store's `X-Auth-Token`: a [`Secret`] made by [`Secret::new`], so it
/// has a header value.
pub type StoreToken = Secret;

/// Why a string cannot be a token; says nothing about the string itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Empty,
    NotAHeaderValue,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "the token is empty",
            Self::NotAHeaderValue => "the token contains characters not allowed in an HTTP header",
        })
    }
}

impl std::error::Error for TokenError {}

impl Secret {
    /// A token sent as a header value (a store's `X-Auth-Token`). Trims
    /// surrounding whitespace (files usually end in a newline).
    pub fn new(raw: &str) -> Result<Self, TokenError> {
        let text = Self::text(raw)?;
        // The header value shares the buffer (no copy), so zeroing it on
        // drop wipes the only long-lived copy bcgate keeps.
        let mut value = HeaderValue::from_maybe_shared(text.bytes.clone())
            .map_err(|_| TokenError::NotAHeaderValue)?;
        value.set_sensitive(true);
        Ok(Self {
            header: Some(value),
            ..text
        })
    }

    /// A text secret without a header form (the app's client secret),
    /// surrounding whitespace trimmed.
    pub fn text(raw: &str) -> Result<Self, TokenError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(TokenError::Empty);
        }
        Ok(Self::bytes(Zeroizing::new(trimmed.as_bytes().to_vec())))
    }

    /// Raw bytes (the token store's key), kept as given.
    pub fn bytes(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self {
            bytes: Bytes::from_owner(Wiped(bytes)),
            header: None,
        }
    }

    /// The header value to send upstream. Only a secret made by
    /// [`Secret::new`] has one; any other gives an empty value, which no
    /// upstream accepts as a token.
    pub fn header_value(&self) -> HeaderValue {
        self.header
            .clone()
            .unwrap_or_else(|| HeaderValue::from_static(""))
    }

    /// The secret's bytes, for the few uses that need them (a cipher key).
    pub fn expose_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The secret as text (a form field of the app's code exchange, the HMAC
    /// key of signed payloads); empty for bytes that are not UTF-8, which
    /// [`Secret::new`] and [`Secret::text`] never make.
    pub fn expose(&self) -> &str {
        std::str::from_utf8(&self.bytes).unwrap_or_default()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for Secret {}

/// Bytes that are zeroed when dropped.
struct Wiped(Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for Wiped {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// A Redis URL with its password (and user) left out, for logs, errors and
/// `Debug`: `redis://:pw@host/0` is shown as `redis://host/0`.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
            format!("{scheme}://{rest}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_token() {
        let t = StoreToken::new("  supersecret-token-value\n").expect("valid");
        assert!(!format!("{t:?} {t}").contains("supersecret"));
        assert!(t.header_value().is_sensitive());
        assert_eq!(t.header_value(), "supersecret-token-value");
        assert!(!format!("{:?}", t.header_value()).contains("supersecret"));
    }

    #[test]
    fn rejects_empty_and_control_characters() {
        assert_eq!(StoreToken::new(" \n"), Err(TokenError::Empty));
        assert_eq!(StoreToken::new("a\u{1}b"), Err(TokenError::NotAHeaderValue));
        assert_eq!(Secret::text("\t"), Err(TokenError::Empty));
    }

    #[test]
    fn every_kind_of_secret_is_redacted() {
        let text = Secret::text(" client-secret-value\n").expect("text");
        assert_eq!(text.expose(), "client-secret-value");
        let key = Secret::bytes(Zeroizing::new(b"raw-key-bytes".to_vec()));
        assert_eq!(key.expose_bytes(), b"raw-key-bytes");
        for s in [&text, &key] {
            let shown = format!("{s:?} {s} {:?}", Some(s));
            assert!(
                !shown.contains("secret-value") && !shown.contains("raw-key"),
                "{shown}"
            );
        }
        assert_eq!(key.header_value(), "", "a key has no header form");
    }

    #[test]
    fn redis_urls_lose_their_password() {
        assert_eq!(
            redact_url("redis://:hunter2@db:6379/0"),
            "redis://db:6379/0"
        );
        assert_eq!(redact_url("redis://u:p@w@db/1"), "redis://db/1");
        assert_eq!(redact_url("redis://db/1"), "redis://db/1");
    }
}
