//! One upstream client per API family's origin (and per storefront origin),
//! and the upstream URI a decision goes to. The decision's family fixes the
//! origin; nothing the caller sends chooses it.

use std::collections::HashMap;
use std::sync::Arc;

use http::Uri;

use super::UpstreamClient;
use crate::config::{Store, Stores, Upstream as UpstreamConfig};
use crate::decide::{Credential, Decision};
use crate::error::ProxyError;
use crate::family::{B2B_UPSTREAM_PREFIX, Family, PAYMENTS_PATH, STOREFRONT_UPSTREAM_PATH};

/// The clients of one config generation; each keeps its pool across a
/// reload that leaves its origin unchanged.
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub api: UpstreamClient,
    pub payments: UpstreamClient,
    pub b2b: UpstreamClient,
    /// Keyed by the origin's URL as configured.
    storefronts: Arc<HashMap<String, UpstreamClient>>,
}

impl Upstreams {
    pub fn new(
        cfg: &UpstreamConfig,
        stores: &Stores,
        previous: Option<&Upstreams>,
    ) -> Result<Self, String> {
        // A `ca_file` may have new contents, so with one every client is new.
        let keep = |old: Option<&UpstreamClient>, base_url: &str| {
            old.filter(|o| cfg.ca_file.is_none() && o.same_settings(cfg, base_url))
                .cloned()
        };
        let api = match keep(previous.map(|p| &p.api), &cfg.base_url) {
            Some(c) => c,
            None => UpstreamClient::new(cfg)?,
        };
        let payments = match keep(previous.map(|p| &p.payments), &cfg.payments.base_url) {
            Some(c) => c,
            None => UpstreamClient::for_origin(cfg, &cfg.payments)?,
        };
        let b2b = match keep(previous.map(|p| &p.b2b), &cfg.b2b.base_url) {
            Some(c) => c,
            None => UpstreamClient::for_origin(cfg, &cfg.b2b)?,
        };
        let mut storefronts = HashMap::new();
        for channel in stores.iter().flat_map(|s| s.channels.iter()) {
            let url = &channel.origin.base_url;
            if storefronts.contains_key(url) {
                continue;
            }
            let old = previous.and_then(|p| p.storefronts.get(url));
            let client = match keep(old, url) {
                Some(c) => c,
                None => UpstreamClient::for_origin(cfg, &channel.origin)?,
            };
            storefronts.insert(url.clone(), client);
        }
        Ok(Self {
            api,
            payments,
            b2b,
            storefronts: Arc::new(storefronts),
        })
    }

    /// The client and URI a decided request goes to; `query` is the
    /// caller's, kept where the family's API takes one.
    pub fn target(
        &self,
        d: &Decision<'_, '_>,
        query: Option<&str>,
    ) -> Result<(&UpstreamClient, Uri), ProxyError> {
        let store = || d.store.as_deref().ok_or_else(no_store);
        match d.family {
            Family::Api => {
                let uri = self.api.uri(&store()?.hash, d.api_path, query)?;
                Ok((&self.api, uri))
            }
            Family::B2b => {
                let (_, rest) = crate::family::of_store_path(d.api_path);
                let uri = self.b2b.uri_of(&[B2B_UPSTREAM_PREFIX, rest], query)?;
                Ok((&self.b2b, uri))
            }
            Family::Payments => {
                let uri = self
                    .payments
                    .uri_of(&["/stores/", &store()?.hash, PAYMENTS_PATH], None)?;
                Ok((&self.payments, uri))
            }
            Family::Storefront => {
                let client = self.storefront(store()?, &d.credential)?;
                Ok((client, client.uri_of(&[STOREFRONT_UPSTREAM_PATH], None)?))
            }
            Family::Account => match &d.credential {
                Credential::Account(a) => {
                    let uri = self
                        .api
                        .uri_of(&["/accounts/", &a.uuid, d.api_path], query)?;
                    Ok((&self.api, uri))
                }
                _ => Err(no_store()),
            },
            // Answered by bcgate before anything is forwarded.
            Family::Local => Err(ProxyError::BadRequest(
                "bcgate answers this endpoint itself".into(),
            )),
        }
    }

    /// The client of the channel's storefront origin.
    fn storefront(
        &self,
        store: &Store,
        credential: &Credential,
    ) -> Result<&UpstreamClient, ProxyError> {
        let channel = match credential {
            Credential::Private { channel, .. }
            | Credential::Impersonation { channel, .. }
            | Credential::ProvenCustomer { channel } => *channel,
            _ => return Err(no_store()),
        };
        store
            .channel(Some(channel))
            .and_then(|c| self.storefronts.get(&c.origin.base_url))
            .ok_or_else(|| ProxyError::ChannelUnknown {
                store: store.hash.clone(),
                channel: Some(channel),
            })
    }
}

fn no_store() -> ProxyError {
    ProxyError::BadRequest("the request names no store".into())
}
