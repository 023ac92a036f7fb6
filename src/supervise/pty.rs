//! A pseudo-terminal of the child's own, relayed by vault-run (as `su --pty` and sudo's
//! `use_pty` do): used for `--mask` on a terminal, and always for a `--user` child when
//! vault-run runs on a terminal.
//!
//! Why `--user` needs it: a process that shares root's terminal session can make itself the
//! terminal's foreground group (`TIOCSPGRP` needs no privilege, only the same session), draw a
//! fake prompt and read what root types next, long after vault-run ended, from a grandchild that
//! outlived the child. So the child gets no descriptor of root's terminal (each of stdin, stdout
//! and stderr that is one is replaced by the pty's slave) and a session of its own whose
//! controlling terminal is the pty (or none): `/dev/tty` then opens the pty, never root's
//! terminal. vault-run stays as the relay (raw mode on the real terminal, window size on
//! SIGWINCH, terminal restored, exit status passed through). When vault-run ends the master is
//! closed: the pty hangs up, and what is left of the child's session holds a dead terminal.

use std::io::IsTerminal;
use std::os::fd::{OwnedFd, RawFd};
use std::process::{Command, Stdio};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::termios::Termios;

/// Why a `--user` child on a terminal is supervised (for the log).
pub const USER_REASON: &str =
    "--user on a terminal: the child gets a pseudo-terminal of its own, so it never holds root's terminal";

/// Whether vault-run runs on a terminal: one of stdin, stdout or stderr is one, or it has a
/// controlling terminal (which a child in its session could open as `/dev/tty`).
pub fn on_terminal() -> bool {
    std::io::stdin().is_terminal()
        || std::io::stdout().is_terminal()
        || std::io::stderr().is_terminal()
        || std::fs::File::open("/dev/tty").is_ok()
}

/// Whether a child run as `user` needs a pseudo-terminal of its own.
pub fn needed_for(user: Option<&crate::privilege::RunAs>) -> bool {
    user.is_some_and(|u| u.switch) && on_terminal()
}

/// An opened pseudo-terminal, both ends close-on-exec.
pub struct Pty {
    /// vault-run's end.
    pub master: OwnedFd,
    slave: OwnedFd,
}

/// Opens a pseudo-terminal with vault-run's window size and terminal settings (`termios`).
pub fn open(termios: Option<&Termios>) -> nix::Result<Pty> {
    let ws = super::os::window_size(1).or_else(|| super::os::window_size(0));
    let pty = nix::pty::openpty(ws.as_ref(), termios)?;
    // openpty(3) sets no close-on-exec: the master would reach the child (and any later
    // child), which could then read and write its own terminal's other side.
    for fd in [&pty.master, &pty.slave] {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    }
    Ok(Pty { master: pty.master, slave: pty.slave })
}

impl Pty {
    /// Gives the child the slave for each of its stdin, stdout and stderr that is a terminal in
    /// vault-run; the others stay as they are (or, with `mask`, stdout and stderr go through
    /// pipes). Returns the descriptor (0, 1 or 2) to make the child's controlling terminal, if
    /// any.
    pub fn wire(&self, cmd: &mut Command, mask: bool) -> std::io::Result<Option<RawFd>> {
        let slave = || self.slave.try_clone();
        let mut tty = None;
        if std::io::stdin().is_terminal() {
            cmd.stdin(slave()?);
            tty = Some(0);
        }
        if std::io::stdout().is_terminal() {
            cmd.stdout(slave()?);
            tty = tty.or(Some(1));
        } else if mask {
            cmd.stdout(Stdio::piped());
        }
        if std::io::stderr().is_terminal() {
            cmd.stderr(slave()?);
            tty = tty.or(Some(2));
        } else if mask {
            cmd.stderr(Stdio::piped());
        }
        Ok(tty)
    }
}
