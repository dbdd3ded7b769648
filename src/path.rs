//! The path stage: check that the request path is canonical, then split it into
//! the store it names and the API path after it. Pure.
//!
//! bcgate never normalizes a path: anything a normalizer would change (dot
//! segments in any encoding, encoded `/` or `\`, encoded unreserved
//! characters, `//`, `;` parameters, control bytes, invalid UTF-8) is
//! rejected, so the bytes that are authorized are the bytes sent upstream.

use std::sync::Arc;

use crate::config::{Store, Stores};
use crate::error::ProxyError;

/// Where a request goes.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub store: Arc<Store>,
    /// The API path after `/stores/{store}` (or the whole path for the
    /// default store), starting with `/`, exactly as the caller sent it.
    pub api_path: &'a str,
}

const STORES_PREFIX: &str = "stores";

fn bad(msg: impl Into<String>) -> ProxyError {
    ProxyError::BadRequest(msg.into())
}

/// Rejects every path shape BigCommerce never needs (module docs).
pub fn check_canonical(path: &str) -> Result<(), ProxyError> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(bad("the path must start with '/'"));
    };
    if rest.is_empty() {
        return Err(bad("the path is empty"));
    }
    for seg in rest.as_bytes().split(|&b| b == b'/') {
        check_segment(seg)?;
    }
    Ok(())
}

fn check_segment(bytes: &[u8]) -> Result<(), ProxyError> {
    if bytes.is_empty() {
        return Err(bad(
            "the path has an empty segment ('//' or a trailing '/')",
        ));
    }
    if bytes == b"." || bytes == b".." {
        return Err(bad("the path has a '.' or '..' segment"));
    }
    let mut escaped = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| bad("the path has a malformed percent-escape"))?;
                if hex.is_ascii_alphanumeric() || b"-._~".contains(&hex) {
                    return Err(bad(
                        "the path percent-encodes a character that needs no encoding",
                    ));
                }
                if matches!(hex, b'/' | b'\\' | b'%' | b';') || hex.is_ascii_control() {
                    return Err(bad(
                        "the path has an encoded '/', '\\', '%', ';' or control byte",
                    ));
                }
                escaped = true;
                i += 3;
            }
            b';' => return Err(bad("the path has ';' parameters")),
            // Never in a parsed path; refused so no check relies on the parser.
            b'?' | b'#' => return Err(bad("the path has a raw '?' or '#'")),
            b'\\' => return Err(bad("the path has a '\\'")),
            _ if b.is_ascii_control() || !b.is_ascii() => {
                return Err(bad("the path has a control or non-ASCII byte"));
            }
            _ => i += 1,
        }
    }
    if !escaped {
        // Printable ASCII only (checked above): nothing to decode.
        return Ok(());
    }
    match percent_encoding::percent_decode(bytes).decode_utf8() {
        Err(_) => Err(bad("the path decodes to invalid UTF-8")),
        // C1 controls (U+0080–U+009F, e.g. NEL) are line breaks to some parsers.
        Ok(decoded) if decoded.chars().any(char::is_control) => {
            Err(bad("the path has an encoded control character"))
        }
        Ok(_) => Ok(()),
    }
}

/// The store segment of `/stores/{name}/…` and the API path after it, or
/// `None` and the whole path when the path does not start with `/stores/`.
/// The path must already be canonical.
pub fn split_store(path: &str) -> (Option<&str>, &str) {
    let rest = path.strip_prefix('/').unwrap_or(path);
    let (first, after_first) = rest.split_once('/').unwrap_or((rest, ""));
    if first != STORES_PREFIX {
        return (None, path);
    }
    match after_first.split_once('/') {
        Some((name, _)) => (Some(name), &after_first[name.len()..]),
        None => (Some(after_first), ""),
    }
}

/// Finds the store: `/stores/{hash|alias}/…`, or the caller's default store
/// for any other path; `None` when the path names no store and there is no
/// default. The path must already be canonical.
pub fn target<'a>(
    path: &'a str,
    stores: &Stores,
    default_store: Option<&str>,
) -> Result<Option<Target<'a>>, ProxyError> {
    target_with(path, stores, default_store, &|_| Ok(None))
}

/// Asked for a store name the config does not know; see [`target_with`].
pub type InstalledLookup<'a> = dyn Fn(&str) -> Result<Option<Arc<Store>>, ProxyError> + Sync + 'a;

/// [`target`], with `installed` asked for a name the config does not know
/// (the stores that installed the app; the config wins on conflict). It
/// answers `Ok(None)` for a store it does not know either, or an error
/// (`store_uninstalled`).
pub fn target_with<'a>(
    path: &'a str,
    stores: &Stores,
    default_store: Option<&str>,
    installed: &InstalledLookup<'_>,
) -> Result<Option<Target<'a>>, ProxyError> {
    if let (Some(name), api) = split_store(path) {
        let store = match stores.get(name) {
            Some(s) => Arc::clone(s),
            None => match installed(name)? {
                Some(s) => s,
                None if stores.matches_ignoring_case(name) => {
                    return Err(bad("store names are case-sensitive"));
                }
                None => return Err(ProxyError::StoreUnknown(truncate(name))),
            },
        };
        return Ok(Some(Target {
            store,
            api_path: api,
        }));
    }
    let rest = path.strip_prefix('/').unwrap_or(path);
    let first = rest.split('/').next().unwrap_or(rest);
    if first.eq_ignore_ascii_case(STORES_PREFIX) {
        return Err(bad("the /stores/ prefix is case-sensitive"));
    }
    let Some(hash) = default_store else {
        return Ok(None);
    };
    let default = match stores.get(hash) {
        Some(s) => Arc::clone(s),
        None => installed(hash)?.ok_or_else(|| ProxyError::StoreUnknown(truncate(hash)))?,
    };
    Ok(Some(Target {
        store: default,
        api_path: path,
    }))
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths_pass() {
        for p in [
            "/stores/abc123/v3/catalog/products",
            "/v2/orders.json",
            "/stores/abc/v3/marketing/email-templates/a%20b",
            "/stores/abc/v3/x/caf%C3%A9",
            "/stores/abc/v3/x/a:b@c,d=e+f",
        ] {
            assert!(check_canonical(p).is_ok(), "{p}");
        }
    }

    #[test]
    fn path_tricks_are_rejected() {
        for p in [
            "",
            "/",
            "relative",
            "/stores/abc/../def/v3/x",
            "/stores/abc/./v3",
            "/stores/abc/%2e%2e/def",
            "/stores/abc/%2E%2e/def",
            "/stores/abc/.%2e/def",
            "/stores/abc%2fdef/v3",
            "/stores/abc%2Fdef/v3",
            "/stores/abc/v3%5cx",
            "/stores/abc//v3/x",
            "/stores/abc/v3/x/",
            "/stores/abc;x=1/v3",
            "/stores/abc/v3/x%00",
            "/stores/abc/v3/x%0a",
            "/stores/abc/v3/x%7f",
            "/stores/abc/v3/x%c2%85",
            "/stores/abc/v3/s%c2%8e",
            "/stores/abc/v3/x%c2%9f",
            "/stores/abc/v3/%c0%ae%c0%ae/x",
            "/stores/abc/v3/%ff",
            "/stores/abc/%76%33/x",
            "/stores/abc/v3/x%",
            "/stores/abc/v3/x%2",
            "/stores/abc/v3/x%zz",
            "/stores/abc/v3/x%252e",
            "/stores/abc/v3\\x",
            "/store#s/b2/acroducts?limit&=2",
            "/stores/abc/v3/x?y",
        ] {
            assert!(
                matches!(check_canonical(p), Err(ProxyError::BadRequest(_))),
                "{p:?} should be rejected"
            );
        }
    }
}
