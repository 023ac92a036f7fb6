//! A TCP listener whose connections a handler can kill, so that the `drop_*` fault knobs close
//! the socket without any HTTP response (a client sees a connection error, not a status).
//!
//! Each accepted stream shares a flag with its [`ConnInfo`] (which handlers get through
//! `ConnectInfo`); once the flag is set, every write fails, hyper gives up on the connection
//! and the socket is closed before a single response byte was sent.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::stats::Stats;

/// The peer of a connection, and the switch that drops it.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// Remote address.
    pub peer: SocketAddr,
    kill: Arc<AtomicBool>,
}

impl ConnInfo {
    /// Makes the connection fail instead of sending the response.
    pub fn drop_connection(&self) {
        self.kill.store(true, Ordering::SeqCst);
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for ConnInfo {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A [`TcpListener`] handing out [`KillableStream`]s, counting them in the stats.
#[derive(Debug)]
pub struct KillableListener(pub TcpListener, pub Arc<Mutex<Stats>>);

/// Wraps an accepted stream (the TLS server's accept loop uses it too).
pub fn killable(inner: TcpStream, peer: SocketAddr) -> (KillableStream, ConnInfo) {
    let kill = Arc::new(AtomicBool::new(false));
    (KillableStream { inner, kill: kill.clone() }, ConnInfo { peer, kill })
}

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = ConnInfo;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((inner, peer)) => {
                    let _ = inner.set_nodelay(true);
                    self.1.lock().unwrap_or_else(|e| e.into_inner()).connections_accepted += 1;
                    return killable(inner, peer);
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(ConnInfo { peer: self.0.local_addr()?, kill: Arc::default() })
    }
}

/// A TCP stream that fails every operation once its connection was marked for dropping.
#[derive(Debug)]
pub struct KillableStream {
    inner: TcpStream,
    kill: Arc<AtomicBool>,
}

impl KillableStream {
    fn killed(&self) -> bool {
        self.kill.load(Ordering::SeqCst)
    }
}

fn dropped() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "connection dropped by fault injection")
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.killed() {
            return Poll::Ready(Err(dropped()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.killed() {
            return Poll::Ready(Err(dropped()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.killed() {
            return Poll::Ready(Err(dropped()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
