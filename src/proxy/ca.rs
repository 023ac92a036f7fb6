//! The per-run certificate authority: made in memory at start, never written anywhere, and
//! the only thing that signs the leaf certificates the child sees for the listed hosts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, GeneralSubtree,
    IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use zeroize::Zeroize;

use super::ProxyError;

/// The run CA and the leaf configurations it has issued, one per host.
pub struct RunCa {
    params: CertificateParams,
    key: KeyPair,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    leaves: Mutex<HashMap<String, Arc<ServerConfig>>>,
}

impl std::fmt::Debug for RunCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunCa").finish_non_exhaustive()
    }
}

fn ca_error(what: &str, e: impl std::fmt::Display) -> ProxyError {
    ProxyError::Ca(format!("{what}: {e}"))
}

impl RunCa {
    /// Makes a fresh CA that may sign only `hosts` (X.509 name constraints), so that even a
    /// stolen run CA key cannot impersonate any other site to the child.
    pub fn new(hosts: &[String]) -> Result<Self, ProxyError> {
        let key = KeyPair::generate().map_err(|e| ca_error("cannot make the run CA key", e))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("vault-run per-run CA {}", super::random_token(8)));
        dn.push(DnType::OrganizationName, "vault-run");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let (dns, ips): (Vec<&String>, Vec<&String>) =
            hosts.iter().partition(|h| h.parse::<std::net::IpAddr>().is_err());
        let mut permitted: Vec<GeneralSubtree> =
            dns.into_iter().map(|h| GeneralSubtree::DnsName(h.clone())).collect();
        for ip in ips {
            let addr: std::net::IpAddr = ip.parse().expect("partitioned on parse");
            permitted.push(GeneralSubtree::IpAddress(rcgen::CidrSubnet::from_addr_prefix(
                addr,
                if addr.is_ipv4() { 32 } else { 128 },
            )));
        }
        params.name_constraints =
            Some(NameConstraints { permitted_subtrees: permitted, excluded_subtrees: vec![] });
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(3650);
        let cert = params.self_signed(&key).map_err(|e| ca_error("cannot sign the run CA", e))?;
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            params,
            key,
            leaves: Mutex::new(HashMap::new()),
        })
    }

    /// The CA certificate (PEM), for the child's bundle.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A TLS server configuration presenting a leaf certificate for `host`, issued once.
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, ProxyError> {
        let mut leaves = self.leaves.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cfg) = leaves.get(host) {
            return Ok(cfg.clone());
        }
        let leaf_key = KeyPair::generate().map_err(|e| ca_error("cannot make a leaf key", e))?;
        let mut params = CertificateParams::new(vec![host.to_owned()])
            .map_err(|e| ca_error(&format!("cannot make a certificate for {host}"), e))?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, host);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        // Under the 398 days some clients allow a leaf.
        params.not_after = now + time::Duration::days(390);
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params
            .signed_by(&leaf_key, &issuer)
            .map_err(|e| ca_error(&format!("cannot sign the certificate for {host}"), e))?;
        let mut key_der = leaf_key.serialize_der();
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der.clone()));
        key_der.zeroize();
        let mut cfg = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| ca_error("TLS versions", e))?
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone(), self.cert_der.clone()], private)
            .map_err(|e| ca_error(&format!("cannot use the certificate for {host}"), e))?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let cfg = Arc::new(cfg);
        leaves.insert(host.to_owned(), cfg.clone());
        Ok(cfg)
    }
}

impl Drop for RunCa {
    fn drop(&mut self) {
        // The serialized key rcgen keeps; ring's own copy of the scalar is beyond our reach.
        self.key.zeroize();
        self.leaves.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}
