//! The proxy server: HTTP/1.1 on loopback for the child, `CONNECT` intercepted (listed hosts)
//! or tunnelled (others), and plain `http://` forwarded.
use std::convert::Infallible;
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use super::forward::intercept;
use super::guard::{self, Slot, Slots};
use super::inject::Swap;
use super::message::{authority, empty, status, strip_hop_by_hop, substitute, too_large, Body, Failure};
use super::scrub::BoxError;
use super::Shared;

/// How long the proxy waits for a TCP connection to a host.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Said once per interval when accepting fails (out of descriptors).
static ACCEPT_FAILED: guard::RateLimitedLog = guard::RateLimitedLog::new("accepting a connection failed");

/// Said once per interval when the connection cap closes connections without the password.
static EVICTIONS: guard::RateLimitedLog = guard::RateLimitedLog::new(
    "connection cap reached: closing the oldest connections that sent no password",
);

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
    let slots = Slots::for_this_process();
    let mut ticks = tokio::time::interval(guard::LOG_INTERVAL);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticks.tick() => {
                shared.refused.tick();
                EVICTIONS.tick();
                ACCEPT_FAILED.tick();
            }
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let Some((slot, closed)) = slots.take() else {
                        // Every slot holds a connection that sent the password: the child's own.
                        EVICTIONS.note();
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    tokio::spawn(connection(shared.clone(), tcp, slot, closed));
                    if slots.crowded() {
                        // Let the connections closed to make room go before taking more.
                        tokio::task::yield_now().await;
                    }
                }
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    ACCEPT_FAILED.note_with(&e);
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Serves one connection of the child's until it ends, the cap closes it, or it has sent no
/// request with the password within [`guard::PROVE_WITHIN`].
async fn connection(
    shared: Arc<Shared>,
    tcp: TcpStream,
    slot: Slot,
    closed: tokio::sync::oneshot::Receiver<()>,
) {
    let slot = Arc::new(slot);
    let svc_slot = slot.clone();
    let svc = service_fn(move |req| {
        let (s, slot) = (shared.clone(), svc_slot.clone());
        async move { Ok::<_, Infallible>(handle(s, slot, req).await) }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).with_upgrades();
    let evicted = async {
        if closed.await.is_err() {
            // Proven: never closed to make room.
            std::future::pending::<()>().await;
        }
        EVICTIONS.note();
    };
    let deadline = async {
        tokio::time::sleep(guard::PROVE_WITHIN).await;
        if slot.proven() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = conn => if let Err(e) = r {
            tracing::debug!("proxy: client connection ended: {e}");
        },
        () = evicted => {}
        () = deadline => tracing::debug!("proxy: closed a connection that sent no request with the password in time"),
    }
}

async fn handle(shared: Arc<Shared>, slot: Arc<Slot>, req: Request<Incoming>) -> Response<Body> {
    if !shared.authorized(req.headers().get(header::PROXY_AUTHORIZATION)) {
        shared.refused.note();
        let mut r = status(StatusCode::PROXY_AUTHENTICATION_REQUIRED, "proxy authentication required".into());
        r.headers_mut()
            .insert(header::PROXY_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"vault-run\""));
        // No second try on this connection: whoever does not know the password gets one answer.
        r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    slot.prove();
    if req.method() == Method::CONNECT {
        return connect(shared, slot, req).await;
    }
    plain(shared, req).await
}

/// Host (lower case, IPv6 without brackets) and port of an authority; `Err` for a port that is
/// written but not one (`:0`, `:65536`, `:x`), which must not fall back to the default.
fn host_port(uri: &Uri, default_port: u16) -> Result<(String, u16), String> {
    let auth = uri.authority().ok_or("no host")?;
    let host =
        auth.host().trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase();
    let text = auth.as_str();
    let after = text.rfind(auth.host()).map_or("", |i| &text[i + auth.host().len()..]);
    let port = match after.strip_prefix(':') {
        None if after.is_empty() => default_port,
        Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| format!("{p:?} is not a port"))?,
        None => return Err(format!("{text:?} is not host:port")),
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    Ok((host, port))
}

/// The 403 for a host:port kept out by `--deny-other-hosts` (or by `--user`): neither listed
/// nor allowed; `what` names the refused request in the log.
fn refusal(shared: &Shared, host: &str, port: u16, default_port: u16, what: &str) -> Option<Response<Body>> {
    if shared.listed(host, port, default_port) || shared.may_pass(host, port, default_port) {
        return None;
    }
    let why = if shared.deny_other {
        "--deny-other-hosts"
    } else {
        "under --user the proxy reaches only listed hosts and --allow-host"
    };
    tracing::warn!(host, port, "proxy: {what} refused ({why}; 403)");
    Some(status(
        StatusCode::FORBIDDEN,
        format!("{} is not an allowed host ({why})", authority(host, port, 0)),
    ))
}

async fn connect(shared: Arc<Shared>, slot: Arc<Slot>, req: Request<Incoming>) -> Response<Body> {
    let (host, port) = match host_port(req.uri(), 443) {
        Ok(hp) => hp,
        Err(e) => return status(StatusCode::BAD_REQUEST, format!("CONNECT needs host:port: {e}")),
    };
    let listed = shared.listed(&host, port, 443);
    if let Some(refused) = refusal(&shared, &host, port, 443, "CONNECT") {
        return refused;
    }
    if listed {
        tracing::debug!(host, port, "proxy: CONNECT intercepted");
        tokio::spawn(async move {
            let _slot = slot;
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
        let _slot = slot;
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

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A plain `http://` request (absolute form): forwarded; values are injected only for a listed
/// loopback host, since anywhere else the value would cross the network in clear text.
pub(super) async fn plain(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    if req.uri().scheme_str() != Some("http") {
        return status(StatusCode::BAD_REQUEST, "expected CONNECT or an absolute http:// URL".into());
    }
    let (host, port) = match host_port(req.uri(), 80) {
        Ok(hp) => hp,
        Err(e) => return status(StatusCode::BAD_REQUEST, format!("the URL needs a host and port: {e}")),
    };
    let listed = shared.listed(&host, port, 80);
    if let Some(refused) = refusal(&shared, &host, port, 80, "request") {
        return refused;
    }
    let swaps: Arc<[Swap]> =
        if listed && is_loopback(&host) { shared.swaps(&host, port, 80).into() } else { Arc::new([]) };
    if listed && swaps.is_empty() {
        tracing::warn!(
            host,
            "proxy: plain http:// to a listed host that is not loopback: forwarded without the value"
        );
    }
    match forward_plain(&shared, req, &host, port, swaps).await {
        Ok(r) => r,
        Err(Failure::TooLarge) => too_large(),
        Err(Failure::Other(e)) => status(StatusCode::BAD_GATEWAY, format!("cannot reach {host}:{port}: {e}")),
    }
}

async fn forward_plain(
    shared: &Shared,
    req: Request<Incoming>,
    host: &str,
    port: u16,
    swaps: Arc<[Swap]>,
) -> Result<Response<Body>, Failure> {
    let (mut parts, body) = req.into_parts();
    let body = substitute(&mut parts, body, &swaps).await?;
    let method = parts.method.clone();
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
    if swaps.is_empty() {
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        return Ok(Response::from_parts(parts, body.map_err(BoxError::from).boxed()));
    }
    Ok(shared.scrubbed(resp, &method, swaps))
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
