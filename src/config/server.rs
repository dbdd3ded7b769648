//! `[server]`, `[admin]` and `[upstream]`.

use std::time::Duration;

use http::{HeaderValue, Uri};

use super::validate::Validator;
use super::{ConfigError, Server, ServerFile, TlsPaths, Upstream, UpstreamFile};

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
        let key = "upstream.base_url";
        let uri: Uri = u
            .base_url
            .parse()
            .map_err(|_| self.err(key, format!("{:?} is not a URL", u.base_url)))?;
        if uri.scheme() != Some(&http::uri::Scheme::HTTPS) {
            return Err(self.err(
                key,
                "must be an https:// URL: store tokens never travel in clear",
            ));
        }
        if uri.query().is_some() {
            return Err(self.err(key, "must not have a query"));
        }
        // `https://:443/` parses, with an empty host.
        let authority = uri
            .authority()
            .filter(|a| !a.host().is_empty())
            .cloned()
            .ok_or_else(|| self.err(key, "must name a host"))?;
        if authority.as_str().contains('@') {
            return Err(self.err(key, "must not carry user info"));
        }
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|_| self.err(key, "host is not a valid Host header"))?;
        for (k, v) in [
            ("upstream.connect_timeout_ms", u.connect_timeout_ms),
            ("upstream.request_timeout_ms", u.request_timeout_ms),
        ] {
            if v == 0 {
                return Err(self.err(k, "must be greater than 0"));
            }
        }
        Ok(Upstream {
            base_url: u.base_url.clone(),
            scheme: http::uri::Scheme::HTTPS,
            authority,
            base_path: uri.path().trim_end_matches('/').to_string(),
            host,
            ca_file: u
                .ca_file
                .as_ref()
                .map(|p| self.existing("upstream.ca_file", p))
                .transpose()?,
            ca_pem: u.ca_pem.clone(),
            connect_timeout: Duration::from_millis(u.connect_timeout_ms),
            request_timeout: Duration::from_millis(u.request_timeout_ms),
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
