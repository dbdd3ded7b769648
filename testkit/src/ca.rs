//! A certificate authority made at run time, and the rustls configs built
//! from it: the mock BigCommerce's certificate is signed by one, and the
//! integration tests sign every certificate they need with one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A throwaway CA that lives only in memory. Every `DevCa::new()` is a
/// different one, so a certificate from one CA is untrusted by a client of
/// another (handy for TLS-failure tests).
pub struct DevCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa").finish_non_exhaustive()
    }
}

/// A leaf certificate and its key, both PEM and DER.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

impl Default for DevCa {
    fn default() -> Self {
        Self::new()
    }
}

impl DevCa {
    pub fn new() -> Self {
        let mut params =
            CertificateParams::new(Vec::<String>::new()).expect("empty SAN list is valid");
        params
            .distinguished_name
            .push(DnType::CommonName, "bcgate dev CA");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "bcgate dev");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("generate CA key");
        let cert = params.self_signed(&key).expect("self-sign CA");
        DevCa { cert, key }
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    /// Issue a server/client certificate for `sans` (IP addresses such as
    /// `127.0.0.1` become IP SANs, everything else DNS SANs). The first SAN
    /// is also the subject CN. Returns `(cert_pem, key_pem)`.
    pub fn issue(&self, sans: &[&str]) -> (String, String) {
        let leaf = self.issue_leaf(sans);
        (leaf.cert_pem, leaf.key_pem)
    }

    /// Like [`issue`](Self::issue) but with DER forms too.
    pub fn issue_leaf(&self, sans: &[&str]) -> Leaf {
        let names: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("valid SANs");
        if let Some(first) = sans.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().expect("generate leaf key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign leaf certificate");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }

    /// Write the CA certificate as `dir/ca.pem` and return the path.
    pub fn write_to(&self, dir: &Path) -> PathBuf {
        self.write_ca_as(dir, "ca.pem")
    }

    /// Write the CA certificate as `dir/name` and return the path.
    pub fn write_ca_as(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, self.ca_pem()).expect("write CA pem");
        path
    }

    /// Issue a leaf for `sans` and write it as `dir/{stem}.pem` + `dir/{stem}.key`.
    /// Returns `(cert_path, key_path)`.
    pub fn write_leaf(&self, dir: &Path, stem: &str, sans: &[&str]) -> (PathBuf, PathBuf) {
        let (cert, key) = self.issue(sans);
        let cert_path = dir.join(format!("{stem}.pem"));
        let key_path = dir.join(format!("{stem}.key"));
        std::fs::write(&cert_path, cert).expect("write leaf cert");
        std::fs::write(&key_path, key).expect("write leaf key");
        (cert_path, key_path)
    }

    /// A rustls server config (ring provider, explicitly) serving a fresh leaf
    /// for `sans`, with the given ALPN protocols.
    pub fn server_config(&self, sans: &[&str], alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
        let leaf = self.issue_leaf(sans);
        let chain = vec![CertificateDer::from(leaf.cert_der)];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der));
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(ring_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("valid server cert/key");
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// A rustls client config (ring provider, explicitly) that trusts only this CA.
    pub fn client_config(&self, alpn: &[&[u8]]) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca_der()))
            .expect("add the CA to a root store");
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(ring_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }
}

/// The one crypto provider the CA's configs use; never the process default.
pub fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}
