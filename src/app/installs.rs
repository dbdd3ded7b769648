//! The stores that installed the app, as the proxy sees them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use crate::config::{Store, TokenStoreConfig};
use crate::error::ProxyError;
use crate::policy::Policy;
use crate::token_store::{Installed, OpenTokenStore, TokenStore};

/// The stores that installed the app: the token store, plus the stores that
/// uninstalled it while this process ran (so their requests say
/// `store_uninstalled`, not `store_unknown`). Shared by every config
/// generation that keeps the same `[token_store]`.
pub struct Installs {
    config: TokenStoreConfig,
    store: TokenStore,
    /// File backend only; the Redis backend keeps its own, which also
    /// learns of uninstalls through other replicas.
    uninstalled: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Installs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installs")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Installs {
    /// Opens the token store; a reload with the same `[token_store]` keeps
    /// `previous` and reads its file again (`bcgate tokens delete`).
    pub fn open(
        cfg: &TokenStoreConfig,
        previous: Option<&Arc<Installs>>,
    ) -> Result<Arc<Self>, String> {
        if let Some(p) = previous
            && p.config == *cfg
        {
            p.store.reread()?;
            return Ok(p.clone());
        }
        Ok(Arc::new(Self {
            config: cfg.clone(),
            store: cfg.open()?,
            uninstalled: Mutex::new(HashSet::new()),
        }))
    }

    pub fn store(&self) -> &TokenStore {
        &self.store
    }

    fn is_gone(&self, hash: &str) -> bool {
        match &self.store {
            TokenStore::Redis(r) => r.removed(hash),
            TokenStore::File(_) => self
                .uninstalled
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(hash),
        }
    }

    /// The installed store `hash` as the proxy uses it; `store_uninstalled`
    /// if it uninstalled the app since bcgate started.
    ///
    /// The uninstalled mark is asked first: it is set before the file is
    /// rewritten (and kept if that fails), and cleared only after a
    /// re-install is written.
    pub fn lookup(&self, hash: &str, policy: &Policy) -> Result<Option<Arc<Store>>, ProxyError> {
        if self.is_gone(hash) {
            return Err(ProxyError::StoreUninstalled(hash.to_owned()));
        }
        Ok(self
            .store
            .get(hash)
            .map(|inst| Arc::new(as_store(&inst, policy))))
    }

    pub(super) async fn put(self: &Arc<Self>, installed: Installed) -> Result<(), String> {
        let me = self.clone();
        let hash = installed.hash.clone();
        tokio::task::spawn_blocking(move || me.store.put(installed))
            .await
            .map_err(|e| format!("the write was interrupted: {e}"))??;
        // (The Redis backend clears its own mark in `put`.)
        self.uninstalled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&hash);
        Ok(())
    }

    pub(super) async fn delete(self: &Arc<Self>, hash: &str) -> Result<bool, String> {
        // Marked first: from this moment the proxy refuses the store, even
        // while the file is being rewritten.
        match &self.store {
            TokenStore::Redis(r) => r.mark_removed(hash),
            TokenStore::File(_) => {
                self.uninstalled
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(hash.to_owned());
            }
        }
        let me = self.clone();
        let h = hash.to_owned();
        tokio::task::spawn_blocking(move || me.store.delete(&h))
            .await
            .map_err(|e| format!("the write was interrupted: {e}"))?
    }
}

/// An installed store in the form the proxy uses for configured ones; its
/// granted scopes are known, so the early `scope_denied` check applies.
pub fn as_store(inst: &Installed, policy: &Policy) -> Store {
    let known = inst
        .scopes
        .iter()
        .map(String::as_str)
        .filter(|s| policy.scopes.get(s).is_some());
    Store {
        hash: inst.hash.clone(),
        alias: None,
        token: inst.token.clone(),
        token_source: "installed".into(),
        token_file: None,
        scopes: Some(inst.scopes.clone()),
        grants: policy.scopes.grants(known).ok(),
        label: format!("the token of store '{}'", inst.hash),
        // An installed store signs with the app's client secret
        // (`Config::store_client`), and has no storefront channels.
        client_id: None,
        client_secret: None,
        client_secret_source: None,
        client_secret_file: None,
        channels: Vec::new(),
    }
}
