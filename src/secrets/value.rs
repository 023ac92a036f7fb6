//! A secret's value for `secrets set`: read from standard input, never from argv (which every
//! local user can read in `/proc/PID/cmdline`). On a terminal it is typed without echo.

use std::io::{BufRead, IsTerminal, Read};

use zeroize::Zeroizing;

use super::error::SecretsError;
use agentsecretstore::path::SecretPath;
use agentsecretstore::secret::SecretString;

/// The most a value may hold (a certificate chain fits; a runaway pipe does not).
const MAX_VALUE: u64 = 1 << 20;

/// Reads the value for `path`: one line typed without echo on a terminal, else all of
/// standard input with one trailing newline (`\n` or `\r\n`) dropped.
pub fn read(path: &SecretPath) -> Result<SecretString, SecretsError> {
    let stdin = std::io::stdin();
    let mut buf = Zeroizing::new(Vec::new());
    if stdin.is_terminal() {
        eprint!("Value for {path} (typing is not shown; Enter ends it): ");
        let echo = EchoOff::new(&stdin)?;
        let mut line = Zeroizing::new(String::new());
        let read = stdin.lock().take(MAX_VALUE + 1).read_line(&mut line);
        drop(echo);
        eprintln!();
        read.map_err(|e| SecretsError::Usage(format!("cannot read the value from the terminal: {e}")))?;
        buf.extend_from_slice(line.as_bytes());
    } else {
        stdin
            .lock()
            .take(MAX_VALUE + 1)
            .read_to_end(&mut buf)
            .map_err(|e| SecretsError::Usage(format!("cannot read the value from standard input: {e}")))?;
    }
    if buf.len() as u64 > MAX_VALUE {
        return Err(SecretsError::Usage(format!("the value on standard input is over {MAX_VALUE} bytes")));
    }
    let end = trimmed_len(&buf);
    buf.truncate(end);
    if buf.is_empty() {
        return Err(SecretsError::Usage(format!(
            "no value for {path} on standard input; pipe it in (printf %s \"$VALUE\" | vault-run secrets set {path}) or type it when asked"
        )));
    }
    SecretString::from_utf8(std::mem::take(&mut *buf))
        .map_err(|_| SecretsError::Usage(format!("the value for {path} is not UTF-8 text")))
}

/// The length without one trailing newline.
fn trimmed_len(b: &[u8]) -> usize {
    if b.ends_with(b"\r\n") {
        b.len() - 2
    } else if b.ends_with(b"\n") {
        b.len() - 1
    } else {
        b.len()
    }
}

/// The terminal's settings before the echo went off: what the signal handler puts back.
static SAVED: std::sync::OnceLock<libc::termios> = std::sync::OnceLock::new();

/// Ctrl-C (or SIGTERM, SIGHUP) while the echo is off: put the terminal back, then die of the
/// signal as usual (a shell left without echo is the classic bug of password prompts).
extern "C" fn restore_and_die(signal: libc::c_int) {
    if let Some(t) = SAVED.get() {
        // SAFETY: tcsetattr, signal and raise are async-signal-safe; `t` is a plain struct.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, t);
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }
}

const RESTORING: [nix::sys::signal::Signal; 3] =
    [nix::sys::signal::Signal::SIGINT, nix::sys::signal::Signal::SIGTERM, nix::sys::signal::Signal::SIGHUP];

/// The terminal's echo, off until dropped (or until a signal, which restores it first).
struct EchoOff {
    saved: nix::sys::termios::Termios,
}

impl EchoOff {
    fn new(stdin: &std::io::Stdin) -> Result<Self, SecretsError> {
        use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet};
        use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
        let fail = |e: nix::Error| SecretsError::Usage(format!("cannot turn the terminal's echo off: {e}"));
        let saved = tcgetattr(stdin).map_err(fail)?;
        let _ = SAVED.set(saved.clone().into());
        let handler = SigAction::new(SigHandler::Handler(restore_and_die), SaFlags::empty(), SigSet::empty());
        for signal in RESTORING {
            // SAFETY: the handler calls only async-signal-safe functions.
            let _ = unsafe { sigaction(signal, &handler) };
        }
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(stdin, SetArg::TCSAFLUSH, &quiet).map_err(fail)?;
        Ok(Self { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        use nix::sys::signal::{signal, SigHandler};
        let _ =
            nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, &self.saved);
        for s in RESTORING {
            // SAFETY: back to the default disposition.
            let _ = unsafe { signal(s, SigHandler::SigDfl) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::trimmed_len;

    #[test]
    fn one_trailing_newline_is_dropped() {
        assert_eq!(trimmed_len(b"abc\n"), 3);
        assert_eq!(trimmed_len(b"abc\r\n"), 3);
        assert_eq!(trimmed_len(b"abc\n\n"), 4);
        assert_eq!(trimmed_len(b"abc"), 3);
        assert_eq!(trimmed_len(b" a b "), 5);
    }
}
