//! Messages with descriptors (`SCM_RIGHTS`) over a `SOCK_SEQPACKET` socketpair: each message
//! arrives whole, so a JSON value needs no framing.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// The largest message (the plan, with every path in it).
const MAX_MESSAGE: usize = 1 << 20;
/// The most descriptors one message carries (the kernel's own limit is 253).
const MAX_FDS: usize = 250;

/// Sends `data` with `fds`.
pub fn send(sock: &OwnedFd, data: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
    let iov = [IoSlice::new(data)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None)?;
    Ok(())
}

/// Receives one message and the descriptors that came with it; an empty message is the peer
/// closing its end.
pub fn recv(sock: &OwnedFd) -> std::io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let (n, fds) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
        let mut fds = Vec::new();
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                // SAFETY: the kernel just installed these descriptors in this process for us.
                fds.extend(raw.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
        (msg.bytes, fds)
    };
    buf.truncate(n);
    Ok((buf, fds))
}
