//! `[server]`, `[admin]` and `[upstream]`, and the rule for every origin
//! bcgate sends credentials to.

use std::time::Duration;

use super::validate::Validator;
use super::{
    ConfigError, Origin, OriginError, Server, ServerFile, TlsPaths, Upstream, UpstreamFile,
};

impl Validator<'_> {
    pub(super) fn server(&self, s: &ServerFile) -> Result<Server, ConfigError> {
        let listen = self.listen("server.listen", &s.listen)?;
        let tls = match &s.tls {
            None => None,
            Some(t) => Some(TlsPaths {
                cert: self.existing("server.tls.cert", &t.cert)?,
                key: self.existing("server.tls.key", &t.key)?,
                client_ca: t
                    .client_ca
                    .as_ref()
                    .map(|p| self.existing("server.tls.client_ca", p))
                    .transpose()?,
            }),
        };
        if s.max_body_bytes == 0 {
            return Err(self.err("server.max_body_bytes", "must be greater than 0"));
        }
        for (k, v) in [
            ("server.header_read_timeout_ms", s.header_read_timeout_ms),
            ("server.body_read_timeout_ms", s.body_read_timeout_ms),
            ("server.drain_timeout_ms", s.drain_timeout_ms),
            ("server.body_total_timeout_ms", s.body_total_timeout_ms),
            ("server.max_connections", s.max_connections),
            ("server.listen_backlog", u64::from(s.listen_backlog)),
            ("server.max_in_flight", s.max_in_flight),
        ] {
            if v == 0 {
                return Err(self.err(k, "must be greater than 0"));
            }
        }
        if let Err(why) = check_error_docs_url(&s.error_docs_url) {
            return Err(self.err("server.error_docs_url", why));
        }
        if s.body_total_timeout_ms < s.body_read_timeout_ms {
            return Err(self.err(
                "server.body_total_timeout_ms",
                "must be at least server.body_read_timeout_ms",
            ));
        }
        Ok(Server {
            listen,
            tls,
            error_docs_url: s.error_docs_url.clone(),
            max_body_bytes: s.max_body_bytes,
            header_read_timeout: Duration::from_millis(s.header_read_timeout_ms),
            body_read_timeout: Duration::from_millis(s.body_read_timeout_ms),
            drain_timeout: Duration::from_millis(s.drain_timeout_ms),
            body_total_timeout: Duration::from_millis(s.body_total_timeout_ms),
            max_connections: usize::try_from(s.max_connections).unwrap_or(usize::MAX),
            listen_backlog: s.listen_backlog,
            max_in_flight: usize::try_from(s.max_in_flight).unwrap_or(usize::MAX),
        })
    }

    pub(super) fn upstream(&self, u: &UpstreamFile) -> Result<Upstream, ConfigError> {
        let api = self.origin("upstream.base_url", &u.base_url, "store tokens")?;
        let payments = self.origin("upstream.payments_url", &u.payments_url, "payment tokens")?;
        let b2b = self.origin("upstream.b2b_url", &u.b2b_url, "store tokens")?;
        for (k, v) in [
            ("upstream.connect_timeout_ms", u.connect_timeout_ms),
            ("upstream.request_timeout_ms", u.request_timeout_ms),
        ] {
            if v == 0 {
                return Err(self.err(k, "must be greater than 0"));
            }
        }
        Ok(Upstream {
            base_url: api.base_url,
            scheme: api.scheme,
            authority: api.authority,
            base_path: api.base_path,
            host: api.host,
            ca_file: u
                .ca_file
                .as_ref()
                .map(|p| self.existing("upstream.ca_file", p))
                .transpose()?,
            ca_pem: u.ca_pem.clone(),
            connect_timeout: Duration::from_millis(u.connect_timeout_ms),
            request_timeout: Duration::from_millis(u.request_timeout_ms),
            payments,
            b2b,
        })
    }

    /// [`Origin::parse`], its error on `key`; `carried` names what would
    /// travel in clear over plain http.
    pub(super) fn origin(
        &self,
        key: &str,
        url: &str,
        carried: &str,
    ) -> Result<Origin, ConfigError> {
        Origin::parse(url).map_err(|e| {
            let msg = match e {
                OriginError::NotAUrl => format!("{url:?} {e}"),
                OriginError::NotHttps => format!("{e}: {carried} never travel in clear"),
                _ => e.to_string(),
            };
            self.err(key, msg)
        })
    }
}

/// `server.error_docs_url`: an absolute URI without a fragment (bcgate adds
/// `#<code>`), of characters a JSON string and an SDK's exception text carry
/// unchanged.
fn check_error_docs_url(url: &str) -> Result<(), &'static str> {
    let Some((scheme, rest)) = url.split_once(':') else {
        return Err("must be an absolute URI (https://…/errors.html, or a tag: URI)");
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok || rest.is_empty() {
        return Err("must be an absolute URI (https://…/errors.html, or a tag: URI)");
    }
    if url.contains('#') {
        return Err("must not have a fragment: bcgate appends #<code>");
    }
    if url.len() > 2048
        || !url
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?[]@!$&'()*+,;=%".contains(&b))
    {
        return Err("must be at most 2048 URI characters (percent-encode anything else)");
    }
    Ok(())
}
