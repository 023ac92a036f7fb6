//! An intercepted `CONNECT` to a listed host: the child's TLS terminated with a run-CA
//! certificate, each request substituted and forwarded over the proxy's own verified TLS
//! connection to the host (HTTP/2 when it offers it), the answer scrubbed on the way back.

use std::convert::Infallible;
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::inject::{self, Swap};
use super::message::{authority, status, strip_hop_by_hop, substitute, too_large, upgrade_of, Body, Failure};
use super::scrub::{BoxError, Scrubbed};
use super::Shared;

/// Terminates the child's TLS with a run-CA certificate for `host` and serves its requests
/// (HTTP/1.1 or HTTP/2) by forwarding them, substituted, to the real host. `io` is a `CONNECT`
/// tunnel, or a connection the sandbox's capture took.
pub(super) async fn intercept<I>(shared: Arc<Shared>, io: I, host: String, port: u16) -> Result<(), BoxError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let cfg = shared.server_config(&host)?;
    let tls = TlsAcceptor::from(cfg).accept(io).await?;
    let upstream = Arc::new(Upstream { shared, host, port, slot: tokio::sync::Mutex::new(None) });
    let svc = service_fn(move |req| {
        let u = upstream.clone();
        async move { Ok::<_, Infallible>(u.forward(req).await) }
    });
    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(TokioIo::new(tls), svc)
        .await
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Body>),
    H2(hyper::client::conn::http2::SendRequest<Body>),
}

/// The real host behind one intercepted connection, with a reusable upstream connection.
struct Upstream {
    shared: Arc<Shared>,
    host: String,
    port: u16,
    /// An idle HTTP/1.1 sender, or the shared HTTP/2 one.
    slot: tokio::sync::Mutex<Option<Sender>>,
}

impl Upstream {
    /// A verified TLS connection to the host, with `config`'s ALPN offer.
    async fn tls(
        &self,
        config: &Arc<rustls::ClientConfig>,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Failure> {
        let tcp = self.shared.dial(&self.host, self.port).await.map_err(Failure::other)?;
        let name = ServerName::try_from(self.host.clone()).map_err(Failure::other)?;
        TlsConnector::from(config.clone()).connect(name, tcp).await.map_err(Failure::other)
    }

    async fn forward(&self, req: Request<Incoming>) -> Response<Body> {
        let method = req.method().clone();
        match self.try_forward(req).await {
            Ok(r) => {
                tracing::debug!(host = self.host, %method, status = r.status().as_u16(), "proxy: request forwarded");
                r
            }
            Err(Failure::TooLarge) => too_large(),
            Err(Failure::Other(e)) => {
                tracing::warn!(host = self.host, "proxy: upstream request failed: {e}");
                status(StatusCode::BAD_GATEWAY, format!("cannot reach {}: {e}", self.host))
            }
        }
    }

    async fn try_forward(&self, mut req: Request<Incoming>) -> Result<Response<Body>, Failure> {
        let swaps: Arc<[Swap]> = self.shared.swaps(&self.host, self.port, 443).into();
        let upgrade = upgrade_of(req.headers());
        let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        let body = substitute(&mut parts, body, &swaps).await?;
        if let (Some(protocol), Some(client_upgrade)) = (upgrade, client_upgrade) {
            return self.upgrade(parts, body, protocol, client_upgrade, swaps).await;
        }
        let method = parts.method.clone();
        let sender = self.sender().await?;
        let authority = authority(&self.host, self.port, 443);
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let resp = match sender {
            Sender::H2(mut s) => {
                parts.version = Version::HTTP_2;
                parts.uri = format!("https://{authority}{path}").parse().map_err(Failure::other)?;
                parts.headers.remove(header::HOST);
                s.send_request(Request::from_parts(parts, body)).await.map_err(Failure::other)?
            }
            Sender::H1(mut s) => {
                parts.version = Version::HTTP_11;
                parts.uri = path.parse().map_err(Failure::other)?;
                // Always the tunnel's host: behind a shared front end, a Host of the child's
                // choosing would route the value to another site.
                parts
                    .headers
                    .insert(header::HOST, HeaderValue::from_str(&authority).map_err(Failure::other)?);
                let resp = s.send_request(Request::from_parts(parts, body)).await.map_err(Failure::other)?;
                // Back in the slot for the next request (which waits until this body is done).
                let mut slot = self.slot.lock().await;
                if slot.is_none() {
                    *slot = Some(Sender::H1(s));
                }
                resp
            }
        };
        Ok(self.shared.scrubbed(resp, &method, swaps))
    }

    /// An HTTP/1.1 upgrade (WebSocket): the handshake substituted like any request, on a
    /// connection of its own; after `101` the bytes are spliced both ways untouched.
    async fn upgrade(
        &self,
        mut parts: http::request::Parts,
        body: Body,
        protocol: HeaderValue,
        client_upgrade: hyper::upgrade::OnUpgrade,
        swaps: Arc<[Swap]>,
    ) -> Result<Response<Body>, Failure> {
        let tls = self.tls(&self.shared.upstream_h1).await?;
        let (mut s, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(Failure::other)?;
        tokio::spawn(conn.with_upgrades());
        let authority = authority(&self.host, self.port, 443);
        parts.version = Version::HTTP_11;
        parts.uri = parts.uri.path_and_query().map_or("/", |p| p.as_str()).parse().map_err(Failure::other)?;
        parts.headers.insert(header::HOST, HeaderValue::from_str(&authority).map_err(Failure::other)?);
        parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, protocol);
        let mut resp = s.send_request(Request::from_parts(parts, body)).await.map_err(Failure::other)?;
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let upstream_upgrade = hyper::upgrade::on(&mut resp);
            let host = self.host.clone();
            tokio::spawn(async move {
                match tokio::try_join!(client_upgrade, upstream_upgrade) {
                    Ok((client, upstream)) => {
                        let _ = tokio::io::copy_bidirectional(
                            &mut TokioIo::new(client),
                            &mut TokioIo::new(upstream),
                        )
                        .await;
                    }
                    Err(e) => tracing::debug!(host, "proxy: upgrade failed: {e}"),
                }
            });
        }
        let (mut parts, body) = resp.into_parts();
        let switching = parts.status == StatusCode::SWITCHING_PROTOCOLS;
        let (connection, upgrade) =
            (parts.headers.remove(header::CONNECTION), parts.headers.remove(header::UPGRADE));
        strip_hop_by_hop(&mut parts.headers);
        if switching {
            // These two belong to the switch the child asked for.
            parts.headers.extend(connection.map(|v| (header::CONNECTION, v)));
            parts.headers.extend(upgrade.map(|v| (header::UPGRADE, v)));
        } else {
            // A refused switch is an ordinary answer, its body scrubbed (its length may change).
            parts.headers.remove(header::CONTENT_LENGTH);
        }
        let scrubber = self.shared.scrubber();
        inject::scrub_headers(&mut parts.headers, &swaps, &scrubber);
        // After a switch the bytes are the protocol's own (not scrubbed, README says so);
        // a refused switch is an ordinary answer.
        let body = Scrubbed::new(body, &scrubber, swaps);
        Ok(Response::from_parts(parts, body.boxed()))
    }

    /// The HTTP/2 sender (shared), an idle HTTP/1.1 one, or a new connection.
    async fn sender(&self) -> Result<Sender, Failure> {
        {
            let mut slot = self.slot.lock().await;
            match slot.take() {
                Some(Sender::H2(s)) if !s.is_closed() => {
                    *slot = Some(Sender::H2(s.clone()));
                    return Ok(Sender::H2(s));
                }
                Some(Sender::H1(mut s)) if !s.is_closed() => {
                    drop(slot);
                    if s.ready().await.is_ok() {
                        return Ok(Sender::H1(s));
                    }
                }
                _ => {}
            }
        }
        let tls = self.tls(&self.shared.upstream).await?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(tls);
        if h2 {
            let (s, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(Failure::other)?;
            tokio::spawn(conn);
            *self.slot.lock().await = Some(Sender::H2(s.clone()));
            Ok(Sender::H2(s))
        } else {
            let (s, conn) = hyper::client::conn::http1::handshake(io).await.map_err(Failure::other)?;
            tokio::spawn(conn);
            Ok(Sender::H1(s))
        }
    }
}
