//! The proxy server: HTTP/1.1 on loopback for the child, `CONNECT` intercepted (listed hosts)
//! or tunnelled (others), and plain `http://` forwarded.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::inject::{self, Swap};
use super::Shared;

/// Any error on the way; only ever logged or turned into a status line.
pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(super) type Body = BoxBody<Bytes, BoxError>;

/// How long the proxy waits for a TCP connection to a host.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The largest request body buffered for `body = true` substitution.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// Accepts the child's connections until `stop` fires.
pub(super) async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("proxy: cannot listen: {e}; the child's requests through it will fail");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| {
                            let s = shared.clone();
                            async move { Ok::<_, Infallible>(handle(s, req).await) }
                        });
                        let conn = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tcp), svc)
                            .with_upgrades();
                        if let Err(e) = conn.await {
                            tracing::debug!("proxy: client connection ended: {e}");
                        }
                    });
                }
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!("proxy: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into()).map_err(|never| match never {}).boxed()
}

pub(super) fn status(code: StatusCode, message: String) -> Response<Body> {
    let mut r = Response::new(full(format!("vault-run proxy: {message}\n")));
    *r.status_mut() = code;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    if !shared.authorized(req.headers().get(header::PROXY_AUTHORIZATION)) {
        tracing::warn!(method = %req.method(), "proxy: request without the proxy password refused (407)");
        let mut r = status(StatusCode::PROXY_AUTHENTICATION_REQUIRED, "proxy authentication required".into());
        r.headers_mut()
            .insert(header::PROXY_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"vault-run\""));
        return r;
    }
    if req.method() == Method::CONNECT {
        return connect(shared, req).await;
    }
    plain(shared, req).await
}

/// Host (lower case, IPv6 without brackets) and port of an authority.
fn host_port(uri: &Uri, default_port: u16) -> Option<(String, u16)> {
    let auth = uri.authority()?;
    let host =
        auth.host().trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase();
    Some((host, auth.port_u16().unwrap_or(default_port)))
}

/// The 403 for a host that `--deny-other-hosts` keeps out (neither listed nor allowed); `what`
/// names the refused request in the log.
fn refusal(shared: &Shared, host: &str, listed: bool, what: &str) -> Option<Response<Body>> {
    if listed || shared.may_pass(host) {
        return None;
    }
    tracing::warn!(host, "proxy: {what} refused by --deny-other-hosts (403)");
    Some(status(StatusCode::FORBIDDEN, format!("{host} is not an allowed host (--deny-other-hosts)")))
}

async fn connect(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let Some((host, port)) = host_port(req.uri(), 443) else {
        return status(StatusCode::BAD_REQUEST, "CONNECT needs host:port".into());
    };
    let listed = shared.listed(&host);
    if let Some(refused) = refusal(&shared, &host, listed, "CONNECT") {
        return refused;
    }
    if listed {
        tracing::debug!(host, port, "proxy: CONNECT intercepted");
        tokio::spawn(async move {
            match hyper::upgrade::on(req).await {
                Ok(up) => {
                    if let Err(e) = intercept(shared, TokioIo::new(up), host.clone(), port).await {
                        tracing::debug!(host, "proxy: intercepted connection ended: {e}");
                    }
                }
                Err(e) => tracing::debug!(host, "proxy: CONNECT upgrade failed: {e}"),
            }
        });
        return Response::new(empty());
    }
    // Unlisted: a blind tunnel. Connect first so that a dead host is a 502, not a hang-up.
    let upstream = match shared.dial(&host, port).await {
        Ok(s) => s,
        Err(e) => return status(StatusCode::BAD_GATEWAY, format!("cannot connect to {host}:{port}: {e}")),
    };
    tracing::debug!(host, port, "proxy: CONNECT tunnelled untouched");
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(up) => {
                let mut client = TokioIo::new(up);
                let mut upstream = upstream;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
            Err(e) => tracing::debug!(host, "proxy: CONNECT upgrade failed: {e}"),
        }
    });
    Response::new(empty())
}

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
            Err(Failure::TooLarge) => status(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body over {} MiB cannot be rewritten (body = true)", MAX_BODY >> 20),
            ),
            Err(Failure::Other(e)) => {
                tracing::warn!(host = self.host, "proxy: upstream request failed: {e}");
                status(StatusCode::BAD_GATEWAY, format!("cannot reach {}: {e}", self.host))
            }
        }
    }

    async fn try_forward(&self, mut req: Request<Incoming>) -> Result<Response<Body>, Failure> {
        let swaps = self.shared.swaps(&self.host);
        let upgrade = upgrade_of(req.headers());
        let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        inject::headers(&mut parts.headers, &swaps, true);
        if let Some(uri) = inject::query(&parts.uri, &swaps) {
            parts.uri = uri;
        }
        let body = request_body(&mut parts.headers, body, &swaps).await?;
        if let (Some(protocol), Some(client_upgrade)) = (upgrade, client_upgrade) {
            return self.upgrade(parts, body, protocol, client_upgrade, &swaps).await;
        }
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
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        inject::headers(&mut parts.headers, &swaps, false);
        Ok(Response::from_parts(parts, body.map_err(BoxError::from).boxed()))
    }

    /// An HTTP/1.1 upgrade (WebSocket): the handshake substituted like any request, on a
    /// connection of its own; after `101` the bytes are spliced both ways untouched.
    async fn upgrade(
        &self,
        mut parts: http::request::Parts,
        body: Body,
        protocol: HeaderValue,
        client_upgrade: hyper::upgrade::OnUpgrade,
        swaps: &[Swap],
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
        }
        inject::headers(&mut parts.headers, swaps, false);
        Ok(Response::from_parts(parts, body.map_err(BoxError::from).boxed()))
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

enum Failure {
    TooLarge,
    Other(BoxError),
}

impl Failure {
    fn other(e: impl Into<BoxError>) -> Self {
        Failure::Other(e.into())
    }
}

/// The request body: streamed as is, or (when an entry for this host has `body = true`)
/// buffered, substituted and sent with its new length.
async fn request_body(headers: &mut HeaderMap, body: Incoming, swaps: &[Swap]) -> Result<Body, Failure> {
    if !swaps.iter().any(|s| s.body) {
        return Ok(body.map_err(BoxError::from).boxed());
    }
    let collected = match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(Failure::TooLarge),
        Err(e) => return Err(Failure::Other(e)),
    };
    let Some(replaced) = inject::body(&collected, swaps) else {
        return Ok(full(collected));
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(replaced.len()));
    Ok(full(Bytes::copy_from_slice(&replaced)))
}

/// The protocol an HTTP/1.1 request asks to switch to (`Connection: upgrade` + `Upgrade`).
fn upgrade_of(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| headers.get(header::UPGRADE).cloned()).flatten()
}

/// Removes the headers that describe one hop, not the message (RFC 9110 §7.6.1).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in [
        header::CONNECTION,
        HeaderName::from_static("proxy-connection"),
        HeaderName::from_static("keep-alive"),
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::TRAILER,
    ] {
        headers.remove(n);
    }
    // HTTP/2 allows only `te: trailers` (gRPC needs it); anything else is hop-by-hop.
    if headers.get(header::TE).is_some_and(|v| v != "trailers") {
        headers.remove(header::TE);
    }
}

/// `host[:port]` for a Host header or URL (IPv6 in brackets), the port left out when default.
fn authority(host: &str, port: u16, default_port: u16) -> String {
    let host = if host.contains(':') { format!("[{host}]") } else { host.to_owned() };
    if port == default_port {
        host
    } else {
        format!("{host}:{port}")
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A plain `http://` request (absolute form): forwarded; values are injected only for a listed
/// loopback host, since anywhere else the value would cross the network in clear text.
pub(super) async fn plain(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    if req.uri().scheme_str() != Some("http") {
        return status(StatusCode::BAD_REQUEST, "expected CONNECT or an absolute http:// URL".into());
    }
    let Some((host, port)) = host_port(req.uri(), 80) else {
        return status(StatusCode::BAD_REQUEST, "the URL has no host".into());
    };
    let listed = shared.listed(&host);
    if let Some(refused) = refusal(&shared, &host, listed, "request") {
        return refused;
    }
    let swaps = if listed && is_loopback(&host) { shared.swaps(&host) } else { Vec::new() };
    if listed && swaps.is_empty() {
        tracing::warn!(
            host,
            "proxy: plain http:// to a listed host that is not loopback: forwarded without the value"
        );
    }
    match forward_plain(&shared, req, &host, port, &swaps).await {
        Ok(r) => r,
        Err(Failure::TooLarge) => {
            status(StatusCode::PAYLOAD_TOO_LARGE, "request body too large to rewrite".into())
        }
        Err(Failure::Other(e)) => status(StatusCode::BAD_GATEWAY, format!("cannot reach {host}:{port}: {e}")),
    }
}

async fn forward_plain(
    shared: &Shared,
    req: Request<Incoming>,
    host: &str,
    port: u16,
    swaps: &[Swap],
) -> Result<Response<Body>, Failure> {
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    inject::headers(&mut parts.headers, swaps, true);
    if let Some(uri) = inject::query(&parts.uri, swaps) {
        parts.uri = uri;
    }
    let body = request_body(&mut parts.headers, body, swaps).await?;
    // The URL's host, whatever Host the child wrote (see `Upstream::try_forward`).
    let authority = authority(host, port, 80);
    parts.headers.insert(header::HOST, HeaderValue::from_str(&authority).map_err(Failure::other)?);
    parts.uri = parts.uri.path_and_query().map_or("/", |p| p.as_str()).parse().map_err(Failure::other)?;
    parts.version = Version::HTTP_11;
    let tcp = shared.dial(host, port).await.map_err(Failure::other)?;
    let (mut s, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(Failure::other)?;
    tokio::spawn(conn);
    let resp = s.send_request(Request::from_parts(parts, body)).await.map_err(Failure::other)?;
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    inject::headers(&mut parts.headers, swaps, false);
    Ok(Response::from_parts(parts, body.map_err(BoxError::from).boxed()))
}

/// Connects to `host:port`, or to the `--resolve` address pinned for it.
pub(super) async fn dial(pins: &[super::Pin], host: &str, port: u16) -> std::io::Result<TcpStream> {
    let connect = async {
        match pins.iter().find(|p| p.host == host && p.port == port) {
            Some(p) => TcpStream::connect(p.addr).await,
            None => TcpStream::connect((host, port)).await,
        }
    };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}
