//! Where the child finds the CA bundle: a sealed memfd, named by a path that stays valid for
//! the child *and everything it starts*.
//!
//! `/dev/fd/N` names a descriptor of the process that opens it, and most programs close extra
//! descriptors when they start a tool (Python's `subprocess`, Node's `child_process`, Go's
//! `os/exec`): an agent's `curl` would find no bundle and trust nothing. vault-run itself is
//! non-dumpable, so its own `/proc/PID/fd/N` is closed to the user. So a holder keeps the
//! descriptor open: vault-run itself, re-executed through `/proc/self/exe` (a `scratch` or
//! distroless image has no `cat`), as an ordinary (dumpable) process **of the child's user**
//! (`--user` included: `/proc/PID/fd/N` opens only for processes of the holder's uid, so the
//! child can, other users cannot), which ends when vault-run does (its stdin is a pipe whose
//! only writer is vault-run).
//!
//! The holder mode is not a subcommand: it is chosen by `argv == [HOLDER_ARGV0]` alone, reads
//! no environment (it is started with none), no file and no flag, writes one byte when ready
//! and then only waits for end of input. Whoever starts it by hand gets a process that waits.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

/// The holder's whole command line (`argv[0]`, nothing else).
pub const HOLDER_ARGV0: &str = "vault-run: ca-bundle holder";

/// Who the holder runs as: the child's user, when vault-run switches to another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// When this process was started as the holder: becomes it and never returns. Called first
/// thing in `main`, before any argument parsing (the check is one comparison).
pub fn run_if_holder() {
    let mut args = std::env::args_os();
    if args.next().as_deref() != Some(std::ffi::OsStr::new(HOLDER_ARGV0)) || args.next().is_some() {
        return;
    }
    // Dumpable, so that the child's user may open /proc/PID/fd/N even where the exec left the
    // process non-dumpable (a binary the user cannot read).
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
    let _ = std::io::stdout().write_all(b"r");
    let _ = std::io::stdout().flush();
    // SAFETY: closing our own stdout; nothing else uses it from here on.
    unsafe { libc::close(1) };
    let mut buf = [0u8; 64];
    loop {
        match std::io::stdin().read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    std::process::exit(0);
}

/// The bundle and the process holding it open.
pub struct Holder {
    /// Open for as long as the run: the fallback path names it.
    _file: OwnedFd,
    child: Option<Child>,
    path: String,
}

impl Holder {
    /// Puts the certificates of `content` in a sealed memfd and starts the holder as `owner`
    /// (this process's user when `None`); without a holder, the path is `/dev/fd/N`, valid in
    /// the child only (a warning says so).
    pub fn new(content: &[u8], owner: Option<Owner>) -> std::io::Result<Holder> {
        let file = crate::environment::sealed_memfd("ca-bundle", &certificates_only(content))?;
        let n = file.as_raw_fd();
        let (child, path) = match start(owner) {
            Ok(child) => {
                let path = format!("/proc/{}/fd/{n}", child.id());
                // No /proc (or hidepid): the holder is no use; fall back to the inherited descriptor.
                match std::fs::File::open(&path) {
                    Ok(_) => (Some(child), path),
                    Err(e) => {
                        tracing::warn!("cannot open {path} ({e}); the child's SSL_CERT_FILE is /dev/fd/{n}, which programs it starts may not have");
                        stop(child);
                        (None, format!("/dev/fd/{n}"))
                    }
                }
            }
            Err(e) => {
                tracing::warn!(
                    "cannot start vault-run again (/proc/self/exe) to hold the CA bundle ({e}); the child's SSL_CERT_FILE is /dev/fd/{n}, which programs it starts may not have"
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

/// Starts the holder and waits for its "ready" byte (it runs as `owner` from its first
/// instruction: the credentials change between fork and exec).
fn start(owner: Option<Owner>) -> std::io::Result<Child> {
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0(HOLDER_ARGV0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env_clear()
        .current_dir("/")
        // Its own group: a Ctrl-C at the terminal is not for it.
        .process_group(0);
    if let Some(o) = owner {
        // As root, std also drops the supplementary groups (setgroups(0)) before setuid.
        cmd.uid(o.uid).gid(o.gid);
    }
    let mut child = cmd.spawn()?;
    let mut ready = [0u8; 1];
    let got = child.stdout.take().map(|mut s| s.read(&mut ready));
    if !matches!(got, Some(Ok(1))) || ready != *b"r" {
        stop(child);
        return Err(std::io::Error::other("the holder did not start"));
    }
    Ok(child)
}

/// Closing its stdin ends it; wait so that it does not stay a zombie.
fn stop(mut c: Child) {
    drop(c.stdin.take());
    let _ = c.kill();
    let _ = c.wait();
}

/// Only the `CERTIFICATE` blocks of a PEM text, verbatim: whatever file the bundle was made
/// from (an `SSL_CERT_FILE` read by root), nothing else in it (a key) reaches the child.
fn certificates_only(content: &[u8]) -> Vec<u8> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let mut out = Vec::with_capacity(content.len());
    let mut rest = content;
    while let Some(b) = find(rest, BEGIN) {
        let Some(e) = find(&rest[b..], END) else { break };
        out.extend_from_slice(&rest[b..b + e + END.len()]);
        out.push(b'\n');
        rest = &rest[b + e + END.len()..];
    }
    out
}

impl Drop for Holder {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            stop(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_certificate_blocks_are_kept() {
        let text = b"junk\n-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n\
            -----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n\
            # comment\n-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\
            -----BEGIN CERTIFICATE-----\nunterminated";
        let kept = String::from_utf8(certificates_only(text)).unwrap();
        assert_eq!(
            kept,
            "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n\
             -----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n"
        );
        assert!(
            certificates_only(b"-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n").is_empty()
        );
    }
}
