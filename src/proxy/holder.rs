//! Where the child finds the CA bundle: a sealed memfd, named by a path that stays valid for
//! the child *and everything it starts*.
//!
//! `/dev/fd/N` names a descriptor of the process that opens it, and most programs close extra
//! descriptors when they start a tool (Python's `subprocess`, Node's `child_process`, Go's
//! `os/exec`): an agent's `curl` would find no bundle and trust nothing. vault-run itself is
//! non-dumpable, so its own `/proc/PID/fd/N` is closed to the user. So a `cat` with nothing to
//! read holds the descriptor: an ordinary (dumpable) process of the same user, whose
//! `/proc/PID/fd/N` any process of the user can open, and which ends when vault-run does (its
//! stdin is a pipe whose only writer is vault-run).

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

/// The bundle and the process holding it open.
pub struct Holder {
    /// Open for as long as the run: the fallback path names it.
    _file: OwnedFd,
    child: Option<Child>,
    path: String,
}

impl Holder {
    /// Puts `content` in a sealed memfd and starts the holder; without a holder (no `cat`),
    /// the path is `/dev/fd/N`, valid in the child only (a warning says so).
    pub fn new(content: &[u8]) -> std::io::Result<Holder> {
        let file = crate::environment::sealed_memfd("ca-bundle", content)?;
        let n = file.as_raw_fd();
        let spawned = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env_clear()
            // Its own group: a Ctrl-C at the terminal is not for it.
            .process_group(0)
            .spawn();
        let (child, path) = match spawned {
            Ok(mut child) => {
                let path = format!("/proc/{}/fd/{n}", child.id());
                // No /proc (or hidepid): the holder is no use; fall back to the inherited descriptor.
                match std::fs::File::open(&path) {
                    Ok(_) => (Some(child), path),
                    Err(e) => {
                        tracing::warn!("cannot open {path} ({e}); the child's SSL_CERT_FILE is /dev/fd/{n}, which programs it starts may not have");
                        drop(child.stdin.take());
                        let _ = child.kill();
                        let _ = child.wait();
                        (None, format!("/dev/fd/{n}"))
                    }
                }
            }
            Err(e) => {
                tracing::warn!(
                    "cannot start `cat` to hold the CA bundle ({e}); the child's SSL_CERT_FILE is /dev/fd/{n}, which programs it starts may not have"
                );
                (None, format!("/dev/fd/{n}"))
            }
        };
        if child.is_some() {
            // The holder has its copy; the child reads it through the holder.
            nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))?;
        }
        Ok(Holder { _file: file, child, path })
    }

    /// The bundle's path for the child's variables.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Closing its stdin ends it; wait so that it does not stay a zombie.
            drop(c.stdin.take());
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
