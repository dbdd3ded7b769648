//! `[[stores]]`: the configured stores and their tokens.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::validate::Validator;
use super::{ConfigError, Store, StoreFile, Stores, UNREAD};
use crate::policy::Policy;
use crate::secret::StoreToken;

impl Validator<'_> {
    pub(super) fn stores(
        &self,
        policy: &Policy,
        files: &[StoreFile],
    ) -> Result<Stores, ConfigError> {
        let mut stores = Stores::default();
        for (i, s) in files.iter().enumerate() {
            let key = |k: &str| format!("stores[{i}].{k}");
            if !is_store_name(&s.hash) {
                return Err(self.err(key("hash"), "a store hash is lowercase letters and digits"));
            }
            if let Some(a) = &s.alias
                && !is_alias(a)
            {
                return Err(self.err(
                    key("alias"),
                    "an alias is lowercase letters, digits, '-' and '_'",
                ));
            }
            let mut token_file = None;
            let parse = |k: &str, raw: Zeroizing<String>, source: String| {
                let token = StoreToken::new(&raw)
                    .map_err(|e| self.err(key(k), format!("{source}: {e}")))?;
                Ok::<_, ConfigError>((token, source))
            };
            let (token, token_source) = match (&s.token_env, &s.token_file, &s.token) {
                (None, None, Some(token)) => (token.clone(), "memory".to_owned()),
                (Some(var), None, None) if !self.secrets => parse(
                    "token_env",
                    Zeroizing::new(UNREAD.into()),
                    format!("env {var}"),
                )?,
                (None, Some(p), None) if !self.secrets => {
                    let source = format!("file {}", self.resolve(p).display());
                    parse("token_file", Zeroizing::new(UNREAD.into()), source)?
                }
                (Some(var), None, None) => {
                    let raw = std::env::var(var).map_err(|_| {
                        self.err(
                            key("token_env"),
                            format!("environment variable {var} is not set"),
                        )
                    })?;
                    parse("token_env", Zeroizing::new(raw), format!("env {var}"))?
                }
                (None, Some(p), None) => {
                    let full = self.existing(&key("token_file"), p)?;
                    let raw = std::fs::read_to_string(&full).map_err(|e| {
                        self.err(
                            key("token_file"),
                            format!("cannot read {}: {e}", full.display()),
                        )
                    })?;
                    let source = format!("file {}", full.display());
                    token_file = Some(full);
                    parse("token_file", Zeroizing::new(raw), source)?
                }
                _ => {
                    return Err(self.err(
                        key("token_env"),
                        "set exactly one of token_env and token_file",
                    ));
                }
            };
            let grants = s
                .scopes
                .as_ref()
                .map(|names| self.scopes(policy, &key("scopes"), names))
                .transpose()?;
            let store = Arc::new(Store {
                hash: s.hash.clone(),
                alias: s.alias.clone(),
                token,
                token_source,
                token_file,
                scopes: s.scopes.clone(),
                grants,
                label: format!("the token of store '{}'", s.hash),
            });
            for (k, name) in [("hash", Some(&s.hash)), ("alias", s.alias.as_ref())] {
                let Some(name) = name else { continue };
                if stores.by_name.insert(name.clone(), store.clone()).is_some() {
                    return Err(self.err(key(k), format!("{name:?} names another store already")));
                }
            }
            stores.list.push(store);
        }
        Ok(stores)
    }
}

pub(crate) fn is_store_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

pub(super) fn is_alias(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// What a store hash may be; the same rule as `stores[].hash`, so every
/// installed store can be addressed as `/stores/{hash}/…`, with a bound on
/// its length since it comes from BigCommerce, not the operator.
pub fn is_store_hash(s: &str) -> bool {
    s.len() <= 64 && is_store_name(s)
}
