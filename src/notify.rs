//! systemd notifications (`sd_notify`): `STATUS=` while waiting for an approval, `READY=1` in
//! supervise mode. A no-op when `NOTIFY_SOCKET` is not set.

use std::os::unix::net::UnixDatagram;

/// Sends `state` (e.g. `STATUS=waiting for approval apr_1`) to systemd, if it is listening.
pub fn notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let Ok(sock) = UnixDatagram::unbound() else { return };
    let bytes = socket.as_encoded_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|addr| sock.send_to_addr(state.as_bytes(), &addr))
    } else {
        sock.send_to(state.as_bytes(), std::path::Path::new(&socket))
    };
    if let Err(e) = sent {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}
