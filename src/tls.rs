//! The listener's TLS: the acceptor built from `server.tls` (ALPN h2 and
//! http/1.1; with `client_ca`, every client must present a certificate that
//! CA signed), and the subject of a verified client certificate, which
//! `clients.*.tls_subject` may name instead of a key.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

pub use crate::config::normalize_subject;
use crate::config::{TlsPaths, normalize_subject_parts};

/// Reads the certificate, key and client CA now (so a reload picks up rotated files).
pub fn acceptor(paths: &TlsPaths) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&paths.cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("server.tls.cert {}: {e}", paths.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&paths.key)
        .map_err(|e| format!("server.tls.key {}: {e}", paths.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &paths.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("server.tls.client_ca {}: {e}", ca.display()))?
            {
                roots
                    .add(cert)
                    .map_err(|e| format!("server.tls.client_ca: {e}"))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("server.tls.client_ca: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("server.tls: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// The subject of the certificate a client presented (already verified by
/// rustls against `client_ca`), in the form [`normalize_subject`] gives.
pub fn peer_subject(conn: &rustls::ServerConnection) -> Option<String> {
    let leaf = conn.peer_certificates()?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let mut parts = Vec::new();
    for attr in cert.subject().iter_attributes() {
        let name = x509_parser::objects::oid2abbrev(
            attr.attr_type(),
            x509_parser::objects::oid_registry(),
        )
        .map_or_else(|_| attr.attr_type().to_id_string(), str::to_owned);
        // A subject attribute that is not a string cannot be named in config.
        let value = attr.as_str().ok()?;
        parts.push(format!("{name}={value}"));
    }
    Some(normalize_subject_parts(parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_compare_whatever_the_order_and_spacing() {
        assert_eq!(
            normalize_subject("CN=inventory-sync, O=Acme").expect("ok"),
            normalize_subject("o=Acme,cn=inventory-sync").expect("ok")
        );
        assert_ne!(
            normalize_subject("CN=inventory-sync").expect("ok"),
            normalize_subject("CN=Inventory-sync").expect("ok"),
            "values are case-sensitive"
        );
        for bad in ["", "CN", "CN=", "=x", "CN=a,,O=b"] {
            assert!(normalize_subject(bad).is_err(), "{bad:?}");
        }
    }
}
