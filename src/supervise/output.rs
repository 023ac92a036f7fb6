//! The child's output when vault-run stands in its path (`--mask`): pipes or a pseudo-terminal,
//! read by one thread per stream, redacted and written to vault-run's own stdout/stderr.

#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

use crate::mask::Redactor;
use agentsecretstore::secret::SecretString;

/// How long a partial line (or the possible start of a secret) is held back without new input
/// before it is written anyway. A secret written more slowly than this, byte by byte, is not
/// recognised once its first bytes are out.
pub const PARTIAL_LINE_PAUSE: Duration = Duration::from_millis(50);

/// Where a pump writes.
#[derive(Debug, Clone, Copy)]
pub enum Sink {
    /// vault-run's stdout.
    Stdout,
    /// vault-run's stderr.
    Stderr,
}

impl Sink {
    /// Writes all of `bytes` straight to the descriptor: one `write` per chunk in the common
    /// case (std's line-buffered stdout would split every chunk at its last newline).
    fn write(self, mut bytes: &[u8]) -> bool {
        let stdout = std::io::stdout();
        let stderr = std::io::stderr();
        let fd = match self {
            Sink::Stdout => stdout.as_fd(),
            Sink::Stderr => stderr.as_fd(),
        };
        while !bytes.is_empty() {
            match nix::unistd::write(fd, bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return false,
            }
        }
        true
    }
}

/// The output pumps of every child generation, so vault-run can wait for the last bytes.
pub struct Pumps {
    done_tx: Sender<()>,
    done_rx: Receiver<()>,
    live: usize,
}

impl Default for Pumps {
    fn default() -> Self {
        let (done_tx, done_rx) = channel();
        Self { done_tx, done_rx, live: 0 }
    }
}

impl Pumps {
    /// Copies `source` to `sink` until EOF, masking `secrets`.
    pub fn start(&mut self, source: impl Into<OwnedFd>, sink: Sink, secrets: &[(String, SecretString)]) {
        let source = File::from(source.into());
        let redactor = Redactor::new(secrets);
        let done = self.done_tx.clone();
        self.live += 1;
        std::thread::spawn(move || {
            pump(source, sink, redactor);
            let _ = done.send(());
        });
    }

    /// Waits until every pump reached EOF, or `limit` passed (a grandchild may keep a pipe open).
    pub fn drain(&mut self, limit: Duration) {
        let until = Instant::now() + limit;
        while self.live > 0 {
            let left = until.saturating_duration_since(Instant::now());
            if self.done_rx.recv_timeout(left).is_err() {
                tracing::debug!(pumps = self.live, "output still open after the child exited; not waiting");
                return;
            }
            self.live -= 1;
        }
    }
}

/// Bytes read at once: large reads keep the syscall count (and so the cost of masking) low.
const CHUNK: usize = 256 * 1024;

/// One stream: read what is there, redact, write at once; flush a held tail after a pause.
fn pump(source: File, sink: Sink, mut redactor: Redactor) {
    // A bigger pipe lets a fast child run ahead of us; not a pipe (a terminal): no matter.
    let _ = nix::fcntl::fcntl(&source, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
    let mut buf = vec![0u8; CHUNK];
    let mut out = Vec::with_capacity(CHUNK + 1024);
    loop {
        // Only a held-back tail needs a timed wait: with nothing pending, block in read.
        if redactor.pending() > 0 {
            let wait = PollTimeout::try_from(PARTIAL_LINE_PAUSE).unwrap_or(PollTimeout::NONE);
            let mut fds = [PollFd::new(source.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, wait) {
                Ok(0) => {
                    redactor.flush(&mut out);
                    if !sink.write(&out) {
                        return;
                    }
                    out.clear();
                    continue;
                }
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
        match (&source).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => redactor.feed(&buf[..n], &mut out),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // EIO: the pseudo-terminal's last slave descriptor was closed.
            Err(_) => break,
        }
        if !sink.write(&out) {
            // Our own output is gone: close the pipe so the child sees EPIPE, as it would have.
            return;
        }
        out.clear();
    }
    redactor.flush(&mut out);
    sink.write(&out);
}

/// The current pseudo-terminal master, shared with the stdin copier and SIGWINCH handling.
pub type MasterSlot = Arc<Mutex<Option<File>>>;

/// Copies vault-run's stdin (a terminal in raw mode) to the current pseudo-terminal master.
pub fn copy_stdin(slot: MasterSlot) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let stdin = std::io::stdin();
        loop {
            let n = match stdin.lock().read(&mut buf) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            let master = slot.lock().ok().and_then(|m| m.as_ref().and_then(|f| f.try_clone().ok()));
            if let Some(mut m) = master {
                let _ = m.write_all(&buf[..n]);
            }
        }
    });
}

/// vault-run's own terminal (stdin) in raw mode while a child runs on a pseudo-terminal: every
/// key goes to the child's terminal, which does its own line editing and signals. Restored on
/// drop and around a job-control stop.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts stdin in raw mode, when it is a terminal.
    pub fn enter() -> Option<Self> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let saved = tcgetattr(stdin.as_fd()).ok()?;
        let me = Self { saved };
        me.resume();
        Some(me)
    }

    /// The terminal settings vault-run found.
    pub fn saved(&self) -> &Termios {
        &self.saved
    }

    /// Back to the saved settings (before vault-run stops or exits).
    pub fn suspend(&self) {
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSADRAIN, &self.saved);
    }

    /// Raw again (after being continued).
    pub fn resume(&self) {
        let mut raw = self.saved.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSADRAIN, &raw);
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        self.suspend();
    }
}
