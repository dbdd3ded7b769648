//! One config generation: everything a request needs — validated config,
//! upstream client, TLS acceptors, metric handles, installed stores, quota,
//! learn recorder — built together from one config and never changed after.
//! The `Live` (a layer above) holds the current one and swaps in the next on
//! a reload; what must outlive a generation (pools, quota windows, installed
//! stores, the learn recorder, request ids) is carried over from `previous`.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

use crate::app::{Callbacks, Installs, Login};
use crate::config::Config;
use crate::forward::Upstreams;
use crate::learn::Learner;
use crate::request_id::RequestIds;

/// One consistent generation of everything a request needs.
pub struct State {
    pub config: Arc<Config>,
    /// One client per API family's origin.
    pub upstreams: Upstreams,
    /// Tokens bcgate minted (storefront), kept across reloads.
    pub mint: crate::mint::Mint,
    pub tls: Option<TlsAcceptor>,
    /// Metric handles for this generation's clients, stores and routes.
    pub metrics: crate::metrics::Handles,
    /// The installed stores (`[token_store]`), kept across reloads.
    pub installs: Option<Arc<Installs>>,
    /// The code-exchange client and the app listener's TLS (`[app]`).
    pub login: Option<Login>,
    pub app_tls: Option<TlsAcceptor>,
    /// The quota governor; its per-store state is kept across reloads.
    pub quota: crate::quota::Governor,
    /// Learn-mode observations (`[learn]`), kept across reloads.
    pub learn: Arc<Learner>,
    /// The request-id generator, kept across reloads.
    pub request_ids: Arc<RequestIds>,
    /// BigCommerce's clock offset per store (customer login links), kept across reloads.
    pub clocks: crate::answer::Clocks,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("config", &self.config.path)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl State {
    pub fn build(config: Config, previous: Option<&State>) -> Result<Self, String> {
        // Warm connection pools are kept for origins that did not change.
        let upstreams = Upstreams::new(
            &config.upstream,
            &config.stores,
            previous.map(|p| &p.upstreams),
        )?;
        let mint = previous.map_or_else(crate::mint::Mint::default, |p| p.mint.clone());
        // Tokens minted with a store token the reload replaced (or removed)
        // go with it.
        for old in previous.iter().flat_map(|p| p.config.stores.iter()) {
            let same = config
                .stores
                .get(&old.hash)
                .is_some_and(|new| new.token.header_value() == old.token.header_value());
            if !same {
                mint.forget_store(&old.hash);
            }
        }
        let tls = config
            .server
            .tls
            .as_ref()
            .map(crate::tls::acceptor)
            .transpose()?;
        let installs = config
            .token_store
            .as_ref()
            .map(|ts| Installs::open(ts, previous.and_then(|p| p.installs.as_ref())))
            .transpose()?;
        let login = config
            .app
            .as_ref()
            .map(|_| Login::new(&config.upstream))
            .transpose()?;
        let app_tls = config
            .app
            .as_ref()
            .and_then(|a| a.tls.as_ref())
            .map(crate::tls::acceptor)
            .transpose()
            .map_err(|e| e.replacen("server.tls", "app.tls", 1))?;
        let quota = crate::quota::Governor::next(
            config.quota.as_ref(),
            config.upstream.request_timeout,
            previous.map(|p| &p.quota),
        )?;
        let learn = match (previous, &config.learn) {
            (Some(p), _) => p.learn.clone(),
            (None, Some(l)) => Arc::new(Learner::open(l)?),
            (None, None) => Arc::new(Learner::disabled()),
        };
        let request_ids = previous.map_or_else(Arc::default, |p| p.request_ids.clone());
        let clocks = previous.map_or_else(Default::default, |p| p.clocks.clone());
        Ok(Self {
            config: Arc::new(config),
            upstreams,
            mint,
            tls,
            metrics: crate::metrics::Handles::default(),
            installs,
            login,
            app_tls,
            quota,
            learn,
            request_ids,
            clocks,
        })
    }
}

impl State {
    /// What the app callbacks read of this generation.
    pub fn callbacks(&self) -> Callbacks {
        Callbacks {
            config: self.config.clone(),
            installs: self.installs.clone(),
            login: self.login.clone(),
        }
    }
}
