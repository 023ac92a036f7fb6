//! Starting the child (environment, placement, stdio) and collecting its state changes.

#![forbid(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::io::IsTerminal;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::os::{self, Placement};
use super::output::{MasterSlot, Pumps, RawMode, Sink};
use super::Launch;
use crate::exec::{CoreLimit, ExecError};
use agentsecretstore::secret::SecretString;

/// How the child's stdio is wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wiring {
    /// The child has vault-run's stdin, stdout and stderr.
    Inherit,
    /// stdout and stderr through pipes, masked.
    Pipes,
    /// A pseudo-terminal of the child's own (see [`super::pty`]): masked on a terminal, and
    /// for a `--user` child on a terminal.
    Pty,
}

/// Everything that stays the same from one child to the next.
pub struct Spawner {
    /// Placement when not on a pseudo-terminal.
    pub placement: Placement,
    /// How stdio is wired.
    pub wiring: Wiring,
    /// vault-run's original core limit.
    pub core: CoreLimit,
    /// vault-run's original signal mask.
    pub mask: SigSet,
    /// Every value injected so far (old values stay masked after a rotation).
    pub secrets: Vec<(String, SecretString)>,
    /// The output pumps.
    pub pumps: Pumps,
    /// The current pseudo-terminal master.
    pub master: MasterSlot,
    /// vault-run's terminal in raw mode (pseudo-terminal wiring, stdin a terminal).
    pub raw: Option<RawMode>,
    /// `--mask`: output goes through the redactor (otherwise a pseudo-terminal, for `--user`,
    /// is relayed as it is).
    pub masking: bool,
}

/// A started child.
#[derive(Debug, Clone, Copy)]
pub struct Child {
    /// Its pid.
    pub pid: Pid,
    /// Where it was placed.
    pub placement: Placement,
}

impl Child {
    /// Sends `signal` to the child, or its process group when it has one of its own.
    pub fn signal(&self, signal: Signal) {
        let group = self.placement != Placement::SharedGroup;
        if let Err(e) = os::send(self.pid, group, signal) {
            tracing::debug!(signal = %signal, error = %e, "could not signal the child");
        }
    }
}

impl Spawner {
    /// Adds the launch's values to those masked.
    pub fn remember(&mut self, secrets: &[(String, SecretString)]) {
        for s in secrets {
            if !self.secrets.contains(s) {
                self.secrets.push(s.clone());
            }
        }
    }

    /// Starts `command` with `launch`'s environment. The launch (and its memfds) is dropped once
    /// the child has them: they close with the child.
    pub fn spawn(&mut self, command: &[OsString], launch: Launch) -> Result<Child, ExecError> {
        let shown = command.first().map(|c| c.to_string_lossy().into_owned()).unwrap_or_default();
        if command.iter().any(|a| a.as_bytes().contains(&0)) {
            return Err(ExecError::Nul);
        }
        let program =
            lookup(&command[0], launch.user.as_deref()).ok_or_else(|| ExecError::NotFound(shown.clone()))?;
        if self.masking {
            self.remember(&launch.secrets);
        }
        let cstring = |s: &std::ffi::OsStr| std::ffi::CString::new(s.as_bytes()).map_err(|_| ExecError::Nul);
        let argv = command.iter().map(|a| cstring(a)).collect::<Result<Vec<_>, _>>()?;
        // The child's environment goes from vault-run's zeroizing block straight to execve (see
        // os::exec_with); std's own copy stays empty.
        let block = os::ExecBlock::new(cstring(program.as_os_str())?, argv, launch.env.to_cstrings());
        let mut cmd = Command::new(&program);
        cmd.arg0(&command[0]).args(&command[1..]).env_clear();
        let mut placement = self.placement;
        let mut master = None;
        let mut shared = None;
        match self.wiring {
            Wiring::Inherit => {}
            Wiring::Pipes if os::stdout_is_stderr() => {
                // One destination: one pipe and one redactor, so a secret split between the
                // child's stdout and stderr is seen whole, in the order it was written.
                let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                    .map_err(|e| ExecError::Other(shown.clone(), e))?;
                cmd.stdout(write.try_clone().map_err(|e| other(&shown, &e))?).stderr(write);
                shared = Some(read);
            }
            Wiring::Pipes => {
                cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
            Wiring::Pty => {
                let pty = super::pty::open(self.raw.as_ref().map(RawMode::saved))
                    .map_err(|e| ExecError::Other(shown.clone(), e))?;
                let tty = pty.wire(&mut cmd, self.masking).map_err(|e| other(&shown, &e))?;
                placement = Placement::OwnSession { tty };
                master = Some(pty.master);
            }
        }
        // First the sandbox (joining its namespaces needs the privileges --user gives up).
        if let Some(sandbox) = &launch.sandbox {
            sandbox.apply_to(&mut cmd);
        }
        // Before prepare_child: switching users clears the parent-death signal it sets.
        if let Some(user) = &launch.user {
            user.apply_to(&mut cmd);
        }
        if let Some(sandbox) = &launch.sandbox {
            sandbox.lock_after(&mut cmd);
        }
        os::prepare_child(&mut cmd, placement, self.core, self.mask);
        os::exec_with(&mut cmd, &block);
        let spawned = cmd.spawn().map_err(|e| classify(&shown, &e));
        // The slave descriptors (in `cmd`) and the memfds (in `launch`) now belong to the child;
        // the environment's strings are wiped.
        drop(cmd);
        drop(block);
        drop(launch);
        let mut spawned = spawned?;
        if let Some(both) = shared {
            self.pumps.start(both, Sink::Stdout, &self.secrets);
        }
        if let Some(out) = spawned.stdout.take() {
            self.pumps.start(out, Sink::Stdout, &self.secrets);
        }
        if let Some(err) = spawned.stderr.take() {
            self.pumps.start(err, Sink::Stderr, &self.secrets);
        }
        if let Some(m) = master {
            let file = std::fs::File::from(m);
            if let Ok(mut slot) = self.master.lock() {
                *slot = file.try_clone().ok();
            }
            self.pumps.start(file, Sink::Stdout, &self.secrets);
        }
        let pid = Pid::from_raw(spawned.id() as i32);
        tracing::info!(pid = pid.as_raw(), "child started");
        // Dropping std's handle neither waits nor kills: the supervisor reaps with waitpid.
        drop(spawned);
        Ok(Child { pid, placement })
    }

    /// Keeps the pseudo-terminal's size in step with vault-run's terminal.
    pub fn resize(&self) {
        let Some(ws) = os::window_size(1).or_else(|| os::window_size(0)) else { return };
        if let Ok(slot) = self.master.lock() {
            if let Some(m) = slot.as_ref() {
                os::set_window_size(m, &ws);
            }
        }
    }
}

/// How the main child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal.
    Killed(Signal),
}

/// A state change of the main child, seen while reaping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// It ended.
    Ended(Ending),
    /// It was stopped by job control (SIGTSTP, SIGTTIN, SIGTTOU).
    Stopped,
}

/// Reaps every child that changed state (the main one, and orphans re-parented to vault-run as
/// PID 1 or subreaper); returns what happened to `main`, if anything.
pub fn reap(main: Pid) -> Option<Change> {
    let mut seen = None;
    loop {
        let flags = WaitPidFlag::WNOHANG | WaitPidFlag::WUNTRACED;
        match waitpid(None, Some(flags)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => {
                seen = Some(Change::Ended(Ending::Exited(code)));
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == main => {
                seen = Some(Change::Ended(Ending::Killed(sig)));
            }
            Ok(WaitStatus::Stopped(pid, Signal::SIGTSTP | Signal::SIGTTIN | Signal::SIGTTOU))
                if pid == main =>
            {
                seen = seen.or(Some(Change::Stopped));
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return seen,
            Ok(other) => tracing::trace!(status = ?other, "reaped"),
        }
    }
}

/// Finds `name` on vault-run's own `PATH` as `execvp` would (so `--pristine` does not break
/// the lookup); a name with a `/` is used as it is. A file found but not executable is returned
/// too, so that the spawn reports "not executable".
fn lookup(name: &OsStr, user: Option<&crate::privilege::RunAs>) -> Option<PathBuf> {
    if name.as_bytes().contains(&b'/') {
        return Some(PathBuf::from(name));
    }
    if name.is_empty() {
        return None;
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut found = None;
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        let Ok(meta) = std::fs::metadata(&candidate) else { continue };
        if meta.is_file()
            && meta.permissions().mode() & 0o111 != 0
            && user.map_or(true, |u| u.may_execute(&candidate))
        {
            return Some(candidate);
        }
        found = found.or(Some(candidate));
    }
    found
}

fn classify(shown: &str, e: &std::io::Error) -> ExecError {
    ExecError::from_errno(shown.to_owned(), Errno::from_raw(e.raw_os_error().unwrap_or(0)))
}

fn other(shown: &str, e: &std::io::Error) -> ExecError {
    ExecError::Other(shown.to_owned(), Errno::from_raw(e.raw_os_error().unwrap_or(0)))
}

/// Whether vault-run runs on a terminal (stdin, stdout or stderr): the child then stays in
/// vault-run's process group, so the terminal's job control and signals treat them as one job.
pub fn on_terminal() -> bool {
    std::io::stdin().is_terminal() || std::io::stdout().is_terminal() || std::io::stderr().is_terminal()
}
