//! HTTPS for `vault-run dev --tls`: a private CA and a server certificate for `localhost`,
//! `127.0.0.1` and `::1`, made at start and never written anywhere but the CA's public PEM;
//! HTTP/2 and HTTP/1.1 offered by ALPN.
//!
//! `axum::serve` has no TLS, so this is its own accept loop: every connection's handshake runs
//! in its own task (a slow or distant client never holds up the next accept), then hyper-util's
//! auto builder serves whichever protocol the client chose.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::conn;
use super::stats::Stats;
use super::DevServerError;

/// A handshake that has not finished by then is a client gone quiet; its task ends.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The certificates of one server run.
pub struct TlsMaterial {
    /// The CA certificate, PEM: what clients trust (`ASS_CACERT`, `NODE_EXTRA_CA_CERTS`).
    pub ca_pem: String,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial").finish_non_exhaustive()
    }
}

/// Makes a fresh CA and a server certificate signed by it. A CA of its own rather than one
/// self-signed leaf: every TLS stack (rustls, Node's OpenSSL) accepts a CA as a trust anchor,
/// not all accept a leaf.
pub fn generate() -> Result<TlsMaterial, DevServerError> {
    let fail = |e: rcgen::Error| DevServerError::Config(format!("cannot make the TLS certificate: {e}"));
    let ca_key = KeyPair::generate().map_err(fail)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(DnType::CommonName, "vault-run dev CA (this run only)");
    ca.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca.self_signed(&ca_key).map_err(fail)?;

    let leaf_key = KeyPair::generate().map_err(fail)?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).map_err(fail)?;
    leaf.subject_alt_names.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    leaf.subject_alt_names.push(SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    leaf.distinguished_name.push(DnType::CommonName, "vault-run dev server");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let issuer = rcgen::Issuer::from_params(&ca, &ca_key);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(fail)?;

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(vec![leaf_cert.der().clone()], key))
        .map_err(|e| DevServerError::Config(format!("cannot configure TLS: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsMaterial { ca_pem: ca_cert.pem(), acceptor: TlsAcceptor::from(Arc::new(config)) })
}

/// Accepts until `stop` resolves, then lets the connections finish their requests in flight.
pub async fn serve(
    listener: TcpListener,
    tls: TlsMaterial,
    app: Router,
    stats: Arc<Mutex<Stats>>,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        count(&stats, |s| s.connections_accepted += 1);
        let (stream, info) = conn::killable(tcp, peer);
        let (acceptor, stats, watcher) = (tls.acceptor.clone(), stats.clone(), graceful.watcher());
        let app = app.clone().layer(axum::Extension(ConnectInfo(info)));
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return tracing::debug!(%peer, "TLS handshake failed: {e}"),
                Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
            };
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            count(&stats, |s| {
                s.tls_handshakes += 1;
                s.http2_connections += u64::from(h2);
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

fn count(stats: &Mutex<Stats>, f: impl FnOnce(&mut Stats)) {
    f(&mut stats.lock().unwrap_or_else(|e| e.into_inner()));
}
