//! `[quota]` and `[learn]`.

use std::time::Duration;

use super::token_store::redis_url;
use super::validate::Validator;
use super::{
    Clients, ConfigError, LearnBackend, LearnConfig, LearnFile, Mode, QuotaConfig, QuotaFile,
    TokenStoreBackend, TokenStoreConfig,
};

impl Validator<'_> {
    pub(super) fn quota(&self, q: &QuotaFile) -> Result<QuotaConfig, ConfigError> {
        if q.max_wait_ms > 600_000 {
            return Err(self.err("quota.max_wait_ms", "must be at most 600000 (10 minutes)"));
        }
        if q.max_queue == 0 {
            return Err(self.err("quota.max_queue", "must be greater than 0"));
        }
        if q.retries > 10 {
            return Err(self.err("quota.retries", "must be at most 10"));
        }
        if q.replicas == 0 {
            return Err(self.err("quota.replicas", "must be greater than 0"));
        }
        let redis_url = q
            .redis_url
            .as_deref()
            .map(redis_url)
            .transpose()
            .map_err(|e| self.err("quota.redis_url", e))?;
        Ok(QuotaConfig {
            max_wait: Duration::from_millis(q.max_wait_ms),
            max_queue: q.max_queue,
            retries: q.retries,
            replicas: q.replicas,
            redis_url,
        })
    }

    pub(super) fn learn(
        &self,
        l: Option<&LearnFile>,
        clients: &Clients,
        token_store: Option<&TokenStoreConfig>,
    ) -> Result<Option<LearnConfig>, ConfigError> {
        let Some(l) = l else {
            if let Some(i) = clients.iter().position(|c| c.mode == Mode::Learn) {
                return Err(self.err(
                    format!("clients[{i}].mode"),
                    "learn mode needs a [learn] section (where the observations are kept)",
                ));
            }
            return Ok(None);
        };
        let backend = match (&l.path, token_store.map(|t| &t.backend)) {
            (Some(p), _) if p.file_name().is_none() => {
                return Err(self.err("learn.path", "must name a file"));
            }
            (Some(p), _) => LearnBackend::File(self.resolve(p)),
            (None, Some(TokenStoreBackend::Redis(url))) => LearnBackend::Redis(url.clone()),
            (None, _) => {
                return Err(self.err(
                    "learn.path",
                    "needed, unless [token_store] kind = \"redis\" keeps the observations",
                ));
            }
        };
        if l.max_entries == 0 {
            return Err(self.err("learn.max_entries", "must be greater than 0"));
        }
        if l.flush_interval_ms == 0 {
            return Err(self.err("learn.flush_interval_ms", "must be greater than 0"));
        }
        Ok(Some(LearnConfig {
            backend,
            max_entries: l.max_entries,
            flush_interval: Duration::from_millis(l.flush_interval_ms),
        }))
    }
}
