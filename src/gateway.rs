//! The live state every request reads — validated config, upstream client,
//! TLS acceptor — held behind one atomic pointer. A reload builds a whole new
//! [`State`] and swaps it in; a request takes its snapshot once, at its
//! start, so in-flight requests finish on the config they began with, and a
//! config that fails to load never replaces the one serving.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use tokio_rustls::TlsAcceptor;

use crate::app::{Installs, Login};
use crate::config::Config;
use crate::forward::Upstream;
use crate::learn::Learner;
use crate::proxy::RequestIds;

/// One consistent generation of everything a request needs.
pub struct State {
    pub config: Arc<Config>,
    pub upstream: Upstream,
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
        // Keep the warm connection pool unless the upstream changed; a
        // `ca_file` may have new contents, so it always rebuilds.
        let upstream = match previous {
            Some(p)
                if p.config.upstream == config.upstream && config.upstream.ca_file.is_none() =>
            {
                p.upstream.clone()
            }
            _ => Upstream::new(&config.upstream)?,
        };
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
        Ok(Self {
            config: Arc::new(config),
            upstream,
            tls,
            metrics: crate::metrics::Handles::default(),
            installs,
            login,
            app_tls,
            quota,
            learn,
        })
    }
}

#[derive(Debug)]
pub struct Gateway {
    state: ArcSwap<State>,
    pub(crate) request_ids: RequestIds,
    last_reload_failed: AtomicBool,
}

impl Gateway {
    pub fn new(config: Config) -> Result<Self, String> {
        Ok(Self {
            state: ArcSwap::from_pointee(State::build(config, None)?),
            request_ids: RequestIds::new(),
            last_reload_failed: AtomicBool::new(false),
        })
    }

    /// The current generation; hold it for the whole request.
    pub fn state(&self) -> Arc<State> {
        self.state.load_full()
    }

    /// Loads `path` again (token files re-read) and swaps it in if it is
    /// valid. Listener addresses cannot change without a restart: a new
    /// `server.listen` or `admin.listen` is refused.
    pub fn reload(&self, path: &Path) -> Result<(), String> {
        let result = self.try_reload(path);
        self.last_reload_failed
            .store(result.is_err(), Ordering::Relaxed);
        crate::metrics::config_reload(result.is_ok());
        match &result {
            Ok(()) => tracing::info!(config = %path.display(), "config reloaded"),
            Err(e) => tracing::error!(
                config = %path.display(),
                error = %e,
                "config reload refused; the previous config keeps serving"
            ),
        }
        result
    }

    fn try_reload(&self, path: &Path) -> Result<(), String> {
        let config = Config::load(path).map_err(|e| e.to_string())?;
        let current = self.state();
        let old = &current.config;
        if config.server.listen != old.server.listen {
            return Err(format!(
                "server.listen changed ({} → {}); restart bcgate to move it",
                old.server.listen, config.server.listen
            ));
        }
        if config.admin != old.admin {
            return Err("admin.listen changed; restart bcgate to move it".into());
        }
        if config.server.tls.is_some() != old.server.tls.is_some() {
            return Err("server.tls was turned on or off; restart bcgate for that".into());
        }
        if config.learn != old.learn {
            return Err(
                "[learn] (or the Redis keeping its observations) changed; restart bcgate for that"
                    .into(),
            );
        }
        match (&config.app, &old.app) {
            (Some(new), Some(was)) => {
                if new.listen != was.listen {
                    return Err("app.listen changed; restart bcgate to move it".into());
                }
                if new.tls.is_some() != was.tls.is_some() {
                    return Err("app.tls was turned on or off; restart bcgate for that".into());
                }
            }
            (None, None) => {}
            _ => return Err("[app] was added or removed; restart bcgate for that".into()),
        }
        let next = State::build(config, Some(&current))?;
        self.state.store(Arc::new(next));
        Ok(())
    }

    /// Whether the most recent reload was refused (shown by `/readyz`).
    pub fn last_reload_failed(&self) -> bool {
        self.last_reload_failed.load(Ordering::Relaxed)
    }
}
