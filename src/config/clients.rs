//! `[[clients]]`: who may call, with which scopes, to which stores and accounts.

use std::collections::HashSet;
use std::sync::Arc;

use super::validate::Validator;
use super::{Accounts, Client, ClientFile, Clients, ConfigError, Mode, Stores, is_store_hash};
use crate::policy::{Policy, StoreAllow};

impl Validator<'_> {
    pub(super) fn clients(
        &self,
        policy: &Policy,
        stores: &Stores,
        accounts: &Accounts,
        installable: bool,
        files: &[ClientFile],
    ) -> Result<Clients, ConfigError> {
        let mut clients = Clients::default();
        let mut names = HashSet::new();
        for (i, c) in files.iter().enumerate() {
            let key = |k: &str| format!("clients[{i}].{k}");
            if c.name.is_empty() || c.name.chars().any(|ch| ch.is_control() || ch == '\'') {
                return Err(self.err(
                    key("name"),
                    "a client name is non-empty text without quotes",
                ));
            }
            if !names.insert(c.name.clone()) {
                return Err(self.err(key("name"), format!("client {:?} is defined twice", c.name)));
            }
            let digest = c
                .key_sha256
                .as_ref()
                .map(|hexed| {
                    let mut digest = [0u8; 32];
                    hex::decode_to_slice(hexed, &mut digest)
                        .map(|()| digest)
                        .map_err(|_| {
                            self.err(
                            key("key_sha256"),
                            "must be 64 hex digits (the SHA-256 of the key; see `bcgate keygen`)",
                        )
                        })
                })
                .transpose()?;
            let subject = c
                .tls_subject
                .as_deref()
                .map(|t| normalize_subject(t).map_err(|e| self.err(key("tls_subject"), e)))
                .transpose()?;
            if digest.is_none() && c.unix_uid.is_none() && subject.is_none() {
                return Err(self.err(
                    key("key_sha256"),
                    "a client needs key_sha256, unix_uid or tls_subject to be identified by",
                ));
            }
            let allow = if c.stores.iter().any(|s| s == "*") {
                if c.stores.len() != 1 {
                    return Err(self.err(key("stores"), "\"*\" must stand alone"));
                }
                StoreAllow::All
            } else {
                let mut hashes = Vec::new();
                for (j, s) in c.stores.iter().enumerate() {
                    hashes.push(self.store_ref(
                        stores,
                        installable,
                        &format!("clients[{i}].stores[{j}]"),
                        &c.name,
                        s,
                    )?);
                }
                StoreAllow::Only(hashes)
            };
            let default_store = match &c.default_store {
                None => None,
                Some(s) => {
                    let hash =
                        self.store_ref(stores, installable, &key("default_store"), &c.name, s)?;
                    if !allow.allows(&hash) {
                        return Err(self.err(
                            key("default_store"),
                            format!("{s:?} is not in this client's stores"),
                        ));
                    }
                    Some(hash)
                }
            };
            let grants = self.scopes(policy, &key("scopes"), &c.scopes)?;
            let quota_weight = c.quota_weight.unwrap_or(1);
            if !(1..=1000).contains(&quota_weight) {
                return Err(self.err(key("quota_weight"), "must be from 1 to 1000"));
            }
            if let Some(share) = c.quota_max_share
                && !(share > 0.0 && share <= 1.0)
            {
                return Err(self.err(
                    key("quota_max_share"),
                    "must be a fraction greater than 0 and at most 1",
                ));
            }
            let mode = match c.mode.as_deref() {
                None | Some("enforce") => Mode::Enforce,
                Some("learn") => Mode::Learn,
                Some(other) => {
                    return Err(self.err(
                        key("mode"),
                        format!("{other:?} is not a mode (\"enforce\" or \"learn\")"),
                    ));
                }
            };
            let mut seen = HashSet::new();
            for (j, uuid) in c.accounts.iter().enumerate() {
                let k = format!("clients[{i}].accounts[{j}]");
                if accounts.get(uuid).is_none() {
                    return Err(self.err(
                        k,
                        format!(
                            "client {:?}: no account {uuid:?} is configured{}",
                            c.name,
                            configured_accounts(accounts)
                        ),
                    ));
                }
                if !seen.insert(uuid) {
                    return Err(self.err(k, format!("{uuid:?} is listed twice")));
                }
            }
            let mut identity = String::new();
            if let Some(uid) = c.unix_uid {
                identity.push_str(&format!("; unix uid {uid}"));
            }
            if let Some(subject) = &c.tls_subject {
                identity.push_str(&format!("; tls subject {subject}"));
            }
            let client = Arc::new(Client {
                name: c.name.clone(),
                label: format!("client '{}'", c.name),
                stores: allow,
                default_store,
                scopes: c.scopes.clone(),
                grants,
                mode,
                identity,
                quota_weight,
                quota_max_share: c.quota_max_share,
                accounts: c.accounts.clone(),
            });
            if let Some(digest) = digest
                && clients.by_digest.insert(digest, client.clone()).is_some()
            {
                return Err(self.err(key("key_sha256"), "another client has the same key"));
            }
            if let Some(uid) = c.unix_uid
                && clients.by_uid.insert(uid, client.clone()).is_some()
            {
                return Err(self.err(key("unix_uid"), "another client has the same unix_uid"));
            }
            if let Some(subject) = subject
                && clients.by_subject.insert(subject, client.clone()).is_some()
            {
                return Err(self.err(
                    key("tls_subject"),
                    "another client has the same tls_subject",
                ));
            }
            clients.list.push(client);
        }
        Ok(clients)
    }

    /// The hash a client's `stores` entry or `default_store` means: a
    /// configured hash or alias, or — with a `[token_store]` — the hash of a
    /// store that may install the app later. An unknown name is reported
    /// with the client it belongs to and the nearest configured store.
    pub(super) fn store_ref(
        &self,
        stores: &Stores,
        installable: bool,
        key: &str,
        client: &str,
        name: &str,
    ) -> Result<String, ConfigError> {
        if let Some(store) = stores.get(name) {
            return Ok(store.hash.clone());
        }
        if !installable {
            return Err(self.err(
                key,
                format!(
                    "client {client:?}: no store {name:?} is configured{}",
                    nearest_store(stores, name)
                ),
            ));
        }
        if !is_store_hash(name) {
            return Err(self.err(
                key,
                format!(
                    "client {client:?}: no store {name:?} is configured, and it is not a store hash \
                     (lowercase letters and digits) an installed store could have{}",
                    nearest_store(stores, name)
                ),
            ));
        }
        Ok(name.to_owned())
    }
}

/// ` (did you mean "abc123"?)` for the configured hash or alias nearest to
/// `name`, else the configured names, so a typo is fixed without opening
/// the `[[stores]]` section.
fn nearest_store(stores: &Stores, name: &str) -> String {
    let mut names: Vec<&str> = stores.by_name.keys().map(String::as_str).collect();
    if names.is_empty() {
        return " (there are no [[stores]])".into();
    }
    names.sort_unstable();
    let lower = name.to_ascii_lowercase();
    let near = names
        .iter()
        .map(|n| (crate::policy::scopes::edit_distance(n, &lower), *n))
        .filter(|(d, n)| *d <= 3 && *d < n.len().max(name.len()))
        .min();
    match near {
        Some((_, n)) => format!(" (did you mean {n:?}?)"),
        None => {
            let shown: Vec<String> = names.iter().take(8).map(|n| format!("{n:?}")).collect();
            let more = if names.len() > shown.len() {
                ", …"
            } else {
                ""
            };
            format!(" (configured: {}{more})", shown.join(", "))
        }
    }
}

/// ` (configured: "…")` for the `[[accounts]]` uuids, or that there are none.
fn configured_accounts(accounts: &Accounts) -> String {
    let mut uuids: Vec<String> = accounts.iter().map(|a| format!("{:?}", a.uuid)).collect();
    if uuids.is_empty() {
        return " (there are no [[accounts]])".into();
    }
    uuids.sort_unstable();
    format!(" (configured: {})", uuids.join(", "))
}

/// `tls_subject` as written in config (`"CN=inventory-sync, O=Acme"`) in a
/// form that compares equal to a certificate's subject however its
/// attributes are ordered: `type=value` pairs, type upper-cased, sorted,
/// joined by `,`. Values may not contain `,` (no escaping is supported).
pub fn normalize_subject(text: &str) -> Result<String, String> {
    let mut parts = Vec::new();
    for part in text.split(',') {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not TYPE=value"))?;
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() || value.is_empty() {
            return Err(format!("{part:?} is not TYPE=value"));
        }
        parts.push(format!("{name}={value}"));
    }
    Ok(normalize_subject_parts(parts))
}

/// `type=value` pairs (a certificate's, or the config's) in the one form
/// both are compared in.
pub fn normalize_subject_parts(parts: Vec<String>) -> String {
    let mut parts: Vec<String> = parts
        .into_iter()
        .map(|p| match p.split_once('=') {
            Some((n, v)) => format!("{}={}", n.to_ascii_uppercase(), v),
            None => p,
        })
        .collect();
    parts.sort();
    parts.join(",")
}
