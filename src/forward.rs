//! Forward stage: requests to the configured upstream over rustls (web PKI
//! roots plus `upstream.ca_file`, or roots given in memory), HTTP/1.1 or
//! HTTP/2 by ALPN on [pooled](pool) connections, with connect and request
//! timeouts, no redirect following, and the `Location` rule that keeps
//! callers (and their keys) on bcgate.

pub mod h1;
mod pool;
mod upstreams;

use std::sync::Arc;

use http::{HeaderValue, Request, Response, StatusCode, Uri, header};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::body::{BodyWatch, ProxyBody, millis};
use crate::config::{Origin, Upstream as UpstreamConfig};
use crate::error::ProxyError;

pub use pool::PooledBody;
pub use upstreams::Upstreams;

#[derive(Debug, Clone)]
pub struct UpstreamClient {
    pool: Arc<pool::Pool>,
    cfg: Arc<UpstreamConfig>,
}

impl UpstreamClient {
    pub fn new(cfg: &UpstreamConfig) -> Result<Self, String> {
        let pool = pool::Pool::new(tls_config(cfg)?, &cfg.authority, cfg.connect_timeout)?;
        Ok(Self {
            pool: Arc::new(pool),
            cfg: Arc::new(cfg.clone()),
        })
    }

    /// A client of another origin (another API family's host) with the same
    /// roots and timeouts; a pool of its own.
    pub fn for_origin(cfg: &UpstreamConfig, origin: &Origin) -> Result<Self, String> {
        let mut cfg = cfg.clone();
        cfg.base_url.clone_from(&origin.base_url);
        cfg.scheme = origin.scheme.clone();
        cfg.authority = origin.authority.clone();
        cfg.base_path.clone_from(&origin.base_path);
        cfg.host = origin.host.clone();
        Self::new(&cfg)
    }

    /// The upstream URI for a store's API path and the caller's raw query.
    pub fn uri(
        &self,
        store_hash: &str,
        api_path: &str,
        query: Option<&str>,
    ) -> Result<Uri, ProxyError> {
        self.uri_of(&["/stores/", store_hash, api_path], query)
    }

    /// The upstream URI of the origin's base path followed by `parts`.
    pub fn uri_of(&self, parts: &[&str], query: Option<&str>) -> Result<Uri, ProxyError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut pq = String::with_capacity(self.cfg.base_path.len() + len + 64);
        pq.push_str(&self.cfg.base_path);
        for p in parts {
            pq.push_str(p);
        }
        if let Some(q) = query {
            pq.push('?');
            pq.push_str(q);
        }
        Uri::builder()
            .scheme(self.cfg.scheme.clone())
            .authority(self.cfg.authority.clone())
            .path_and_query(pq)
            .build()
            .map_err(|_| ProxyError::BadRequest("the request target cannot be forwarded".into()))
    }

    /// Whether this client serves `base_url` with `cfg`'s roots and timeouts
    /// (so a reload can keep its warm pool).
    fn same_settings(&self, cfg: &UpstreamConfig, base_url: &str) -> bool {
        self.cfg.base_url == base_url
            && self.cfg.ca_pem == cfg.ca_pem
            && self.cfg.ca_file == cfg.ca_file
            && self.cfg.connect_timeout == cfg.connect_timeout
            && self.cfg.request_timeout == cfg.request_timeout
    }

    pub fn host(&self) -> &HeaderValue {
        &self.cfg.host
    }

    /// `upstream.request_timeout_ms`: how long a request may wait for its answer.
    pub fn request_timeout(&self) -> std::time::Duration {
        self.cfg.request_timeout
    }

    /// Sends the request and waits for the response head within the request timeout.
    pub async fn send(
        &self,
        req: Request<ProxyBody>,
        body_limit: u64,
        body_idle: std::time::Duration,
        watch: &BodyWatch,
    ) -> Result<Response<PooledBody>, ProxyError> {
        let timeout = self.cfg.request_timeout;
        let result = tokio::time::timeout(timeout, self.pool.send(req)).await;
        if let Some(e) = watch.error(body_limit, body_idle) {
            return Err(e);
        }
        match result {
            // Still waiting for the caller's body: the caller's delay, not the upstream's.
            Err(_) if watch.waiting_on_client() => Err(ProxyError::BodyDeadline {
                after_ms: millis(timeout),
            }),
            Err(_) => {
                crate::metrics::upstream_error("timeout");
                Err(ProxyError::UpstreamTimeout {
                    after_ms: millis(timeout),
                })
            }
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => {
                crate::metrics::upstream_error(e.kind());
                Err(ProxyError::UpstreamUnavailable(describe_chain(&e)))
            }
        }
    }

    /// Opens the first upstream connection ahead of the first request, within
    /// `within`; the error says what failed (connect, TLS) and is secret-free.
    pub async fn warm(&self, within: std::time::Duration) -> Result<(), String> {
        match tokio::time::timeout(within, self.pool.warm()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(describe_chain(&e)),
            Err(_) => Err(format!(
                "no connection and TLS handshake with {} within {} ms",
                self.cfg.authority,
                within.as_millis()
            )),
        }
    }

    /// Applies the redirect rule to a response's `Location`: an upstream URL
    /// becomes the same path on bcgate; a redirect anywhere else is refused,
    /// because SDKs follow redirects and would carry the caller's key there.
    pub fn rewrite_location(
        &self,
        status: StatusCode,
        headers: &mut http::HeaderMap,
    ) -> Result<(), ProxyError> {
        self.location_rule(status, headers, true)
    }

    /// The redirect rule of a family whose paths differ on bcgate: a
    /// relative `Location` is left alone, any other redirect is refused, a
    /// `Location` on another answer is dropped.
    pub fn refuse_redirect(
        &self,
        status: StatusCode,
        headers: &mut http::HeaderMap,
    ) -> Result<(), ProxyError> {
        self.location_rule(status, headers, false)
    }

    /// `same_path`: an upstream URL is the same path on bcgate.
    fn location_rule(
        &self,
        status: StatusCode,
        headers: &mut http::HeaderMap,
        same_path: bool,
    ) -> Result<(), ProxyError> {
        let Some(loc) = headers.get(header::LOCATION) else {
            return Ok(());
        };
        let verdict = loc.to_str().ok().map(|l| self.classify_location(l));
        match verdict {
            Some(LocationKind::Relative) => Ok(()),
            Some(LocationKind::Upstream(path)) if same_path => {
                match HeaderValue::from_str(&path) {
                    Ok(v) => headers.insert(header::LOCATION, v),
                    Err(_) => headers.remove(header::LOCATION),
                };
                Ok(())
            }
            _ if status.is_redirection() => {
                crate::metrics::upstream_error("redirect");
                Err(ProxyError::UpstreamUnavailable(if same_path {
                    "the upstream redirected to another host; bcgate does not send callers there"
                        .into()
                } else {
                    "the upstream redirected elsewhere; bcgate does not send callers there".into()
                }))
            }
            _ => {
                headers.remove(header::LOCATION);
                Ok(())
            }
        }
    }

    fn classify_location(&self, loc: &str) -> LocationKind {
        if loc.starts_with('/') && !loc.starts_with("//") && !loc.starts_with("/\\") {
            return LocationKind::Relative;
        }
        let Ok(uri) = loc.parse::<Uri>() else {
            return LocationKind::Elsewhere;
        };
        let same_host = uri.scheme() == Some(&self.cfg.scheme)
            && uri
                .authority()
                .is_some_and(|a| a.as_str().eq_ignore_ascii_case(self.cfg.authority.as_str()));
        if !same_host {
            return LocationKind::Elsewhere;
        }
        let pq = uri.path_and_query().map_or("/", |p| p.as_str());
        let pq = pq.strip_prefix(self.cfg.base_path.as_str()).unwrap_or(pq);
        LocationKind::Upstream(if pq.starts_with('/') {
            pq.to_string()
        } else {
            format!("/{pq}")
        })
    }
}

/// The rustls client config for the upstream: the public web roots plus
/// `upstream.ca_file` (or roots given in memory). The app's login server is
/// trusted with the same roots ([`crate::app`]).
pub fn tls_config(cfg: &UpstreamConfig) -> Result<rustls::ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &cfg.ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|e| format!("upstream.ca_file {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "upstream.ca_file {}: no certificates",
                path.display()
            ));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("upstream.ca_file {}: {e}", path.display()))?;
        }
    }
    if let Some(pem) = &cfg.ca_pem {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("upstream roots: {e}"))?;
        if certs.is_empty() {
            return Err("upstream roots: no certificates".into());
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("upstream roots: {e}"))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tls)
}

enum LocationKind {
    Relative,
    Upstream(String),
    Elsewhere,
}

/// A refused store token as bcgate's own answer: BigCommerce's 401 reads,
/// to the caller, as if its own key were wrong.
pub fn check_token_accepted(status: StatusCode, store: &str) -> Result<(), ProxyError> {
    if status == StatusCode::UNAUTHORIZED {
        Err(ProxyError::StoreTokenRefused(store.to_owned()))
    } else {
        Ok(())
    }
}

/// A send error with what failed (connect, TLS, HTTP) and its innermost
/// cause, for the 502's detail and the access log.
fn describe_chain(e: &pool::SendError) -> String {
    let mut text = e.to_string();
    let inner = describe(e);
    if !text.contains(&inner) {
        text.push_str(": ");
        text.push_str(&inner);
    }
    text
}

/// A short, secret-free account of a client error (its innermost cause).
pub(crate) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        last = s.to_string();
        cur = s.source();
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Origin;
    use std::time::Duration;

    fn upstream() -> UpstreamClient {
        let cfg = UpstreamConfig {
            base_url: "https://api.bigcommerce.com".into(),
            scheme: http::uri::Scheme::HTTPS,
            authority: "api.bigcommerce.com".parse().expect("authority"),
            base_path: String::new(),
            host: HeaderValue::from_static("api.bigcommerce.com"),
            ca_file: None,
            ca_pem: None,
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            payments: Origin::parse("https://payments.bigcommerce.com").expect("origin"),
            b2b: Origin::parse("https://api-b2b.bigcommerce.com").expect("origin"),
        };
        UpstreamClient::new(&cfg).expect("client")
    }

    fn location(u: &UpstreamClient, status: u16, loc: &str) -> Result<Option<String>, ProxyError> {
        let mut h = http::HeaderMap::new();
        h.insert(header::LOCATION, HeaderValue::from_str(loc).expect("value"));
        u.rewrite_location(StatusCode::from_u16(status).expect("status"), &mut h)?;
        Ok(h.get(header::LOCATION)
            .map(|v| v.to_str().expect("ascii").to_string()))
    }

    #[tokio::test]
    async fn location_rules() {
        let u = upstream();
        assert_eq!(
            location(&u, 301, "https://api.bigcommerce.com/stores/abc/v3/x?a=1").expect("ok"),
            Some("/stores/abc/v3/x?a=1".into())
        );
        assert_eq!(
            location(&u, 302, "/stores/abc/v2/y").expect("ok"),
            Some("/stores/abc/v2/y".into())
        );
        for off in [
            "https://evil.example/x",
            "//evil.example/x",
            "http://api.bigcommerce.com/x",
            "https://api.bigcommerce.com.evil.example/x",
        ] {
            assert!(
                matches!(
                    location(&u, 302, off),
                    Err(ProxyError::UpstreamUnavailable(_))
                ),
                "{off}"
            );
        }
        assert_eq!(
            location(&u, 201, "https://evil.example/x").expect("ok"),
            None
        );
    }

    #[tokio::test]
    async fn uri_uses_the_real_hash_and_keeps_the_query() {
        let u = upstream();
        let uri = u
            .uri("abc123", "/v3/catalog/products", Some("limit=5"))
            .expect("uri");
        assert_eq!(
            uri.to_string(),
            "https://api.bigcommerce.com/stores/abc123/v3/catalog/products?limit=5"
        );
    }
}
