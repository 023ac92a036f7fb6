//! Transparent capture (`--sandbox`): listeners on the child's `:443` and `:80`, for clients
//! that never heard of proxies. TLS is routed by the name in its ClientHello (SNI): a listed
//! host gets the same interception as a `CONNECT` to it, another one a blind tunnel to the real
//! host (or nothing, under `--deny-other-hosts`). Plain HTTP is routed by its `Host` header,
//! like an absolute-form proxy request. No proxy password: only the sandboxed child can reach
//! these sockets, which live in its network namespace.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header;
use http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::Shared;
use super::{forward, message, server};

/// The port a captured TLS connection was made to (and is tunnelled or intercepted on).
const HTTPS: u16 = 443;
/// How long a client has to send its whole ClientHello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest ClientHello read before giving up on it.
const MAX_HELLO: usize = 64 * 1024;

/// Serves the capture listeners in the proxy's runtime (until it shuts down).
pub(super) fn spawn(tls: Vec<std::net::TcpListener>, http: Vec<std::net::TcpListener>, shared: &Arc<Shared>) {
    for (listener, is_tls) in tls.into_iter().map(|l| (l, true)).chain(http.into_iter().map(|l| (l, false))) {
        let shared = shared.clone();
        tokio::spawn(async move {
            let listener = match listener
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpListener::from_std(listener))
            {
                Ok(l) => l,
                Err(e) => return tracing::error!("proxy: cannot serve a capture socket: {e}"),
            };
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let shared = shared.clone();
                if is_tls {
                    tokio::spawn(tls_connection(tcp, shared));
                } else {
                    tokio::spawn(http_connection(tcp, shared));
                }
            }
        });
    }
}

async fn tls_connection(mut tcp: TcpStream, shared: Arc<Shared>) {
    let Some((hello, name)) = read_hello(&mut tcp).await else {
        return tracing::debug!("proxy capture: no TLS ClientHello; closed");
    };
    let Some(host) = name else {
        if loud() {
            tracing::warn!(
                "proxy capture: a TLS connection without a server name (SNI) cannot be routed; closed"
            );
        }
        return;
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if shared.listed(&host, HTTPS, HTTPS) {
        tracing::debug!(host, "proxy capture: TLS intercepted");
        if let Err(e) =
            forward::intercept(shared, Prefixed { head: hello, at: 0, inner: tcp }, host.clone(), HTTPS).await
        {
            tracing::debug!(host, "proxy capture: intercepted connection ended: {e}");
        }
        return;
    }
    if !shared.may_pass(&host, HTTPS, HTTPS) {
        if loud() {
            tracing::warn!(host, "proxy capture: TLS to a host --deny-other-hosts keeps out; closed");
        }
        return;
    }
    let mut upstream = match shared.dial(&host, HTTPS).await {
        Ok(u) => u,
        Err(e) => return tracing::debug!(host, "proxy capture: cannot connect: {e}"),
    };
    tracing::debug!(host, "proxy capture: TLS tunnelled untouched");
    if upstream.write_all(&hello).await.is_ok() {
        let _ = tokio::io::copy_bidirectional(&mut tcp, &mut upstream).await;
    }
}

/// Whether a refusal may be logged now: one warning a second at most, so that a child cannot
/// flood vault-run's log by connecting in a loop.
fn loud() -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    LAST.swap(now, Ordering::Relaxed) != now
}

/// Reads until a whole ClientHello is in: the bytes read, and the server name in it.
async fn read_hello(tcp: &mut TcpStream) -> Option<(Vec<u8>, Option<String>)> {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(HELLO_TIMEOUT, tcp.read(&mut chunk)).await.ok()?.ok()?;
        if n == 0 || seen.len() + n > MAX_HELLO {
            return None;
        }
        seen.extend_from_slice(&chunk[..n]);
        acceptor.read_tls(&mut &chunk[..n]).ok()?;
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                let name = accepted.client_hello().server_name().map(str::to_owned);
                return Some((seen, name));
            }
            Ok(None) => {}
            Err(_) => return None,
        }
    }
}

async fn http_connection(tcp: TcpStream, shared: Arc<Shared>) {
    let svc = service_fn(move |mut req: Request<Incoming>| {
        let shared = shared.clone();
        async move {
            let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_owned);
            let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
            let absolute = host.and_then(|h| format!("http://{h}{path}").parse().ok());
            let Some(uri) = absolute else {
                return Ok::<_, Infallible>(message::status(
                    StatusCode::BAD_REQUEST,
                    "a captured plain-HTTP request needs a Host header".into(),
                ));
            };
            *req.uri_mut() = uri;
            Ok(server::plain(shared, req).await)
        }
    });
    if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await
    {
        tracing::debug!("proxy capture: plain-HTTP connection ended: {e}");
    }
}

/// The TCP stream with the ClientHello already read put back in front.
struct Prefixed {
    head: Vec<u8>,
    at: usize,
    inner: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.at < self.head.len() {
            let n = buf.remaining().min(self.head.len() - self.at);
            let at = self.at;
            buf.put_slice(&self.head[at..at + n]);
            self.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
