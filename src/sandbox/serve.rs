//! Serving the sandbox's resolver and its `--allow-host` forwards, from vault-run's own
//! network namespace, in a thread of its own.

use std::net::{TcpListener, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::dns::Names;
use crate::mapping::HostPort;

/// How long a forwarded connection waits for the host's side to accept.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A TCP resolver client gets this long per message.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Starts the thread (signals blocked in it: the supervisor's `sigtimedwait` takes them all).
pub fn start(
    udp: Option<UdpSocket>,
    tcp: Option<TcpListener>,
    forwards: Vec<(TcpListener, HostPort)>,
    names: Names,
) -> std::io::Result<()> {
    let names = Arc::new(names);
    let previous =
        nix::sys::signal::SigSet::all().thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)?;
    let spawned = std::thread::Builder::new().name("vault-run-sandbox".into()).spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!("sandbox: cannot start its runtime: {e}; the child's names will not resolve");
                return;
            }
        };
        rt.block_on(async move {
            if let Some(u) = udp {
                tokio::spawn(udp_loop(u, names.clone()));
            }
            if let Some(t) = tcp {
                tokio::spawn(tcp_loop(t, names.clone()));
            }
            for (l, to) in forwards {
                tokio::spawn(forward_loop(l, to));
            }
            std::future::pending::<()>().await;
        });
    });
    let _ = previous.thread_set_mask();
    spawned.map(drop)
}

async fn udp_loop(socket: UdpSocket, names: Arc<Names>) {
    let socket = match socket.set_nonblocking(true).and_then(|()| tokio::net::UdpSocket::from_std(socket)) {
        Ok(s) => s,
        Err(e) => return tracing::error!("sandbox resolver: {e}"),
    };
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else { continue };
        if let Some(reply) = super::dns::answer(&buf[..n], &names) {
            let _ = socket.send_to(&reply, from).await;
        }
    }
}

async fn tcp_loop(listener: TcpListener, names: Arc<Names>) {
    let Some(listener) = nonblocking(listener) else { return };
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let names = names.clone();
        tokio::spawn(async move {
            // Each message is preceded by its length (RFC 1035 §4.2.2).
            while let Ok(Ok(len)) = tokio::time::timeout(TCP_IDLE, conn.read_u16()).await {
                let mut msg = vec![0u8; usize::from(len)];
                if conn.read_exact(&mut msg).await.is_err() {
                    break;
                }
                let Some(reply) = super::dns::answer(&msg, &names) else { break };
                let Ok(len) = u16::try_from(reply.len()) else { break };
                if conn.write_u16(len).await.is_err() || conn.write_all(&reply).await.is_err() {
                    break;
                }
            }
        });
    }
}

fn nonblocking(listener: TcpListener) -> Option<tokio::net::TcpListener> {
    match listener.set_nonblocking(true).and_then(|()| tokio::net::TcpListener::from_std(listener)) {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::error!("sandbox: cannot serve a socket: {e}");
            None
        }
    }
}

/// `--allow-host HOST:PORT`: each connection inside goes, byte for byte, to the host's HOST:PORT.
async fn forward_loop(listener: TcpListener, to: HostPort) {
    let Some(listener) = nonblocking(listener) else { return };
    let port = to.port.unwrap_or_default();
    let host = Arc::new(to.host);
    loop {
        let Ok((mut inside, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let host = host.clone();
        tokio::spawn(async move {
            let dial = tokio::net::TcpStream::connect((host.as_str(), port));
            match tokio::time::timeout(CONNECT_TIMEOUT, dial).await {
                Ok(Ok(mut outside)) => {
                    let _ = inside.set_nodelay(true);
                    let _ = outside.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut inside, &mut outside).await;
                }
                Ok(Err(e)) => tracing::warn!(host = %host, port, "sandbox: --allow-host forward failed: {e}"),
                Err(_) => tracing::warn!(host = %host, port, "sandbox: --allow-host forward timed out"),
            }
        });
    }
}
