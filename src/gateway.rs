//! The live config generation ([`State`]) held behind one atomic pointer. A
//! reload builds a whole new generation and swaps it in; a request takes its
//! snapshot once, at its start, so in-flight requests finish on the config
//! they began with, and a config that fails to load never replaces the one
//! serving.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::state::State;

#[derive(Debug)]
pub struct Gateway {
    state: ArcSwap<State>,
    last_reload_failed: AtomicBool,
}

impl Gateway {
    pub fn new(config: Config) -> Result<Self, String> {
        Ok(Self {
            state: ArcSwap::from_pointee(State::build(config, None)?),
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
