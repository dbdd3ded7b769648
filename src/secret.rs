//! A store token that cannot be printed and does not outlive its use: its
//! `Debug` and `Display` say `[REDACTED]`, its header value is marked
//! sensitive (never HPACK-indexed, shown as `Sensitive` by `Debug`), and the
//! one buffer holding it is zeroed when the last copy is dropped (on reload
//! or exit). Copies the HTTP stack makes while writing a request are outside
//! its reach; see SECURITY.md.

use std::fmt;

use bytes::Bytes;
use http::HeaderValue;
use zeroize::Zeroizing;

/// A store's `X-Auth-Token`, ready to insert into an upstream request.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreToken(HeaderValue);

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

impl StoreToken {
    /// Trims surrounding whitespace (files usually end in a newline).
    pub fn new(raw: &str) -> Result<Self, TokenError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(TokenError::Empty);
        }
        // The header value shares this buffer (no copy), so zeroing it on
        // drop wipes the only long-lived copy bcgate keeps.
        let owner = Wiped(Zeroizing::new(trimmed.as_bytes().to_vec()));
        let mut value = HeaderValue::from_maybe_shared(Bytes::from_owner(owner))
            .map_err(|_| TokenError::NotAHeaderValue)?;
        value.set_sensitive(true);
        Ok(Self(value))
    }

    /// The header value to send upstream; the only way to reach the token.
    pub fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }
}

/// Bytes that are zeroed when dropped.
struct Wiped(Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for Wiped {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for StoreToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreToken([REDACTED])")
    }
}

impl fmt::Display for StoreToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
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
    }
}
