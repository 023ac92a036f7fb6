//! A CA of the test's own and a leaf it signs for some host names: what every local HTTPS
//! stand-in (a listed host, a vendor's API) serves, trusted by vault-run through `--upstream-ca`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The CA's certificate and the leaf it signed, with the leaf's key.
pub struct TestCa {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The leaf certificate.
    pub leaf: rcgen::Certificate,
    /// The leaf's key.
    pub leaf_key: rcgen::KeyPair,
}

impl TestCa {
    /// A CA named `name` (a name of its own: with rcgen's default one, OpenSSL and curl would
    /// take the leaf for self-signed) and a leaf for `hosts`.
    pub fn new(name: &str, hosts: &[&str]) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let ca_pem = params.self_signed(&ca_key).unwrap().pem();
        let issuer = rcgen::Issuer::new(params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
        let leaf = rcgen::CertificateParams::new(names).unwrap().signed_by(&leaf_key, &issuer).unwrap();
        Self { ca_pem, leaf, leaf_key }
    }

    /// Writes the CA certificate to `path`; the path.
    pub fn write_ca(&self, path: &Path) -> PathBuf {
        std::fs::write(path, &self.ca_pem).unwrap();
        path.to_owned()
    }

    /// A TLS server configuration serving the leaf (ring, safe defaults, no ALPN set).
    pub fn server_config(&self) -> rustls::ServerConfig {
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(self.leaf_key.serialize_der().into());
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![self.leaf.der().clone()], key)
            .unwrap()
    }
}
