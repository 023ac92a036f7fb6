//! A TCP listener whose connections a handler can kill, so that the `drop_*` fault knobs close
//! the socket without any HTTP response (a client sees a connection error, not a status).
//!
//! Each accepted stream shares a flag with its [`ConnInfo`] (which handlers get through
//! `ConnectInfo`); once the flag is set, every write fails, hyper gives up on the connection
//! and the socket is closed before a single response byte was sent.
//!
//! The listener also bounds what a client can hold: at most `max_connections` open at once
//! (more wait in the kernel's backlog), and a request head must arrive within `header_timeout`
//! of its first byte (or of the connection, or of the last response, for the next request), so
//! a slow or silent client cannot keep a connection forever. While a connection waits for a
//! slot, keep-alive connections idle between requests are closed to make room (as nginx
//! does): a client that opens a connection per request in flight (the JS SDK reading 1,000
//! secrets at once) would otherwise wait for its own idle connections to time out.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::futures::OwnedNotified;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::stats::Stats;

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

/// A [`TcpListener`] handing out [`KillableStream`]s.
#[derive(Debug)]
pub struct KillableListener {
    listener: TcpListener,
    stats: Arc<Mutex<Stats>>,
    slots: Arc<Semaphore>,
    header_timeout: Duration,
    pressure: Arc<Pressure>,
}

/// Set while the listener waits for a slot; idle keep-alive connections then close.
#[derive(Debug, Default)]
struct Pressure {
    on: AtomicBool,
    notify: Arc<Notify>,
}

impl KillableListener {
    /// At most `max_connections` open at once; request heads within `header_timeout`; each
    /// accepted connection counted in `stats`.
    pub fn new(
        listener: TcpListener,
        stats: Arc<Mutex<Stats>>,
        max_connections: usize,
        header_timeout: Duration,
    ) -> Self {
        Self {
            listener,
            stats,
            slots: Arc::new(Semaphore::new(max_connections.max(1))),
            header_timeout,
            pressure: Arc::default(),
        }
    }

    /// A free slot; when there is none, idle keep-alive connections are asked to close until
    /// one is.
    async fn slot(&self) -> OwnedSemaphorePermit {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return slot;
        }
        // The flag before the notification: a stream that registers after the notification
        // still sees the flag (see `KillableStream::shed`).
        self.pressure.on.store(true, Ordering::SeqCst);
        self.pressure.notify.notify_waiters();
        let slot = self.slots.clone().acquire_owned().await;
        self.pressure.on.store(false, Ordering::SeqCst);
        slot.unwrap_or_else(|_| unreachable!("the semaphore is never closed"))
    }
}

/// Wraps a stream the TLS server accepted. Its bytes are encrypted, so no head timer watches
/// them: the TLS handshake has its own timeout there.
pub fn killable(inner: TcpStream, peer: SocketAddr) -> (KillableStream, ConnInfo) {
    let kill = Arc::new(AtomicBool::new(false));
    let stream = KillableStream { inner, kill: kill.clone(), head: None, shed: None, _slot: None };
    (stream, ConnInfo { peer, kill })
}

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = ConnInfo;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            // Wait for a free slot before accepting: the permit lives as long as the stream.
            let slot = self.slot().await;
            match self.listener.accept().await {
                Ok((inner, peer)) => {
                    let _ = inner.set_nodelay(true);
                    self.stats.lock().unwrap_or_else(|e| e.into_inner()).connections_accepted += 1;
                    let kill = Arc::new(AtomicBool::new(false));
                    let head = HeadTimer::new(self.header_timeout);
                    let shed = Shed {
                        notified: Box::pin(self.pressure.notify.clone().notified_owned()),
                        pressure: self.pressure.clone(),
                    };
                    let stream = KillableStream {
                        inner,
                        kill: kill.clone(),
                        head: Some(head),
                        shed: Some(shed),
                        _slot: Some(slot),
                    };
                    return (stream, ConnInfo { peer, kill });
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
        Ok(ConnInfo { peer: self.listener.local_addr()?, kill: Arc::default() })
    }
}

/// Watches for the end of each request head (`\r\n\r\n`) and times out one that takes longer
/// than the limit. Bodies and the server's own processing time are not limited.
#[derive(Debug)]
struct HeadTimer {
    limit: Duration,
    /// Reading a head (or waiting for one): fails when this fires.
    sleep: Option<Pin<Box<Sleep>>>,
    /// The head's last three bytes so far, to find a terminator split across reads.
    tail: [u8; 3],
    /// A response was written and no byte of the next request has come: idle in keep-alive.
    idle: bool,
}

impl HeadTimer {
    fn new(limit: Duration) -> Self {
        Self { limit, sleep: Some(Box::pin(tokio::time::sleep(limit))), tail: [0; 3], idle: false }
    }

    /// Bytes of the request arrived.
    fn read(&mut self, bytes: &[u8]) {
        if self.sleep.is_none() || bytes.is_empty() {
            return;
        }
        self.idle = false;
        let mut window = self.tail.to_vec();
        window.extend_from_slice(bytes);
        if window.windows(4).any(|w| w == b"\r\n\r\n") {
            self.sleep = None;
        } else {
            let n = window.len();
            self.tail.copy_from_slice(&window[n - 3..]);
        }
    }

    /// A response is being written: the next request's head is timed from now.
    fn wrote(&mut self) {
        self.idle = true;
        if self.sleep.is_none() {
            self.sleep = Some(Box::pin(tokio::time::sleep(self.limit)));
            self.tail = [0; 3];
        } else if let Some(s) = self.sleep.as_mut() {
            s.as_mut().reset(Instant::now() + self.limit);
        }
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.sleep.as_mut().is_some_and(|s| s.as_mut().poll(cx).is_ready())
    }
}

/// A TCP stream that fails every operation once its connection was marked for dropping, or
/// when a request head is too slow.
#[derive(Debug)]
pub struct KillableStream {
    inner: TcpStream,
    kill: Arc<AtomicBool>,
    head: Option<HeadTimer>,
    shed: Option<Shed>,
    _slot: Option<OwnedSemaphorePermit>,
}

/// A stream's side of [`Pressure`].
#[derive(Debug)]
struct Shed {
    pressure: Arc<Pressure>,
    notified: Pin<Box<OwnedNotified>>,
}

impl KillableStream {
    fn killed(&self) -> bool {
        self.kill.load(Ordering::SeqCst)
    }

    /// Whether to end this connection now, while its read waits: it is idle between
    /// requests and another connection waits for its slot. Registers for the next call.
    fn shed(&mut self, cx: &mut Context<'_>) -> bool {
        let (Some(head), Some(shed)) = (self.head.as_ref(), self.shed.as_mut()) else {
            return false;
        };
        if !head.idle {
            return false;
        }
        // Registered (polled) before the flag is read: see `KillableListener::slot`.
        if shed.notified.as_mut().poll(cx).is_ready() {
            shed.notified = Box::pin(shed.pressure.notify.clone().notified_owned());
            let _ = shed.notified.as_mut().poll(cx);
        }
        shed.pressure.on.load(Ordering::SeqCst)
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
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Some(head) = this.head.as_mut() {
                    head.read(&buf.filled()[before..]);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.head.as_mut().is_some_and(|h| h.expired(cx)) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "request head not received in time")))
            }
            // An end of stream, to hyper: the connection closes cleanly between requests.
            Poll::Pending if this.shed(cx) => Poll::Ready(Ok(())),
            other => other,
        }
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.killed() {
            return Poll::Ready(Err(dropped()));
        }
        let this = &mut *self;
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            if let Some(head) = this.head.as_mut() {
                head.wrote();
                // hyper does not read again after a response (its last read is still pending
                // on the socket), so the new timer and the pressure signal are armed with this
                // task's waker here: when either fires, hyper polls the read that acts on it.
                let expired = head.expired(cx);
                if this.shed(cx) || expired {
                    cx.waker().wake_by_ref();
                }
            }
        }
        written
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
