//! Every `unsafe` OS call of supervise mode, each with why it is needed and why it is sound.
//! The rest of the module works with the safe functions here.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use nix::sys::signal::{pthread_sigmask, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;

use super::signals::{Received, HANDLED};
use crate::exec::CoreLimit;

/// The thread that waits for signals (vault-run's main thread), and vault-run's pid.
static WAITER: AtomicI32 = AtomicI32::new(0);
static SUPERVISOR: AtomicI32 = AtomicI32::new(0);

/// The set of signals the supervisor waits for.
pub fn handled_set() -> SigSet {
    let mut set = SigSet::empty();
    for (s, _) in HANDLED {
        set.add(*s);
    }
    set
}

/// Blocks the handled signals in the calling (main) thread, so they stay pending until
/// [`wait_signal`] takes them, and threads spawned afterwards inherit the block. Installs a relay
/// handler for threads that existed before (the I/O runtime's helpers) and may still have
/// them unblocked: without it a SIGTERM delivered to such a thread would kill vault-run with
/// the default action instead of reaching the child. Returns the mask to restore in the child.
pub fn take_signals() -> SigSet {
    WAITER.store(nix::unistd::gettid().as_raw(), Ordering::SeqCst);
    SUPERVISOR.store(nix::unistd::getpid().as_raw(), Ordering::SeqCst);
    let mut old = SigSet::empty();
    if let Err(e) = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&handled_set()), Some(&mut old)) {
        tracing::warn!(error = %e, "cannot block signals");
    }
    let action = SigAction::new(
        SigHandler::SigAction(relay),
        SaFlags::SA_SIGINFO | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for (s, _) in HANDLED {
        // SAFETY: `relay` only makes async-signal-safe system calls and saves errno.
        if let Err(e) = unsafe { nix::sys::signal::sigaction(*s, &action) } {
            tracing::warn!(signal = %s, error = %e, "cannot install a signal handler");
        }
    }
    old
}

/// Runs in a thread that had a handled signal unblocked: queues it, with its original siginfo,
/// to the waiting thread, where it is blocked and [`wait_signal`] takes it. In a child between
/// fork and exec (its mask already cleared) it does what the default action would have done.
extern "C" fn relay(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: errno is thread-local and restored below; getpid, signal, raise and
    // rt_tgsigqueueinfo are async-signal-safe; `info` is the kernel's siginfo for this delivery.
    unsafe {
        let errno = *libc::__errno_location();
        if libc::getpid() != SUPERVISOR.load(Ordering::Relaxed) {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
            *libc::__errno_location() = errno;
            return;
        }
        let code = (*info).si_code;
        // A SIGPIPE the kernel raised for this thread's own write: the write fails with EPIPE.
        if !(sig == libc::SIGPIPE && code > 0) {
            let waiter = WAITER.load(Ordering::Relaxed);
            libc::syscall(libc::SYS_rt_tgsigqueueinfo, libc::getpid(), waiter, sig, info);
        }
        *libc::__errno_location() = errno;
    }
}

/// Waits up to `timeout` for one of `set`; `None` on timeout.
pub fn wait_signal(set: &SigSet, timeout: Duration) -> Option<Received> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: a zeroed siginfo_t is a valid value (plain C struct), filled by the kernel.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: all three pointers are valid for the call.
    let n = unsafe { libc::sigtimedwait(set.as_ref(), &mut info, &ts) };
    if n < 0 {
        return None;
    }
    // SAFETY: si_pid is meaningful for kill/sigqueue/SIGCHLD and zero otherwise.
    let pid = unsafe { info.si_pid() };
    Some(Received { signal: Signal::try_from(n).ok()?, code: info.si_code, pid })
}

/// Dies of `signal` as the child did: default action, unblocked, raised. Returns only when the
/// signal did not end the process (PID 1 ignores signals without a handler).
pub fn die_by(signal: Signal) {
    // SAFETY: SIG_DFL installs no handler code.
    let _ = unsafe { nix::sys::signal::signal(signal, SigHandler::SigDfl) };
    let mut set = SigSet::empty();
    set.add(signal);
    let _ = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    let _ = nix::sys::signal::raise(signal);
    // A blocked-then-unblocked signal is delivered before raise returns; give a process-wide
    // delivery a moment, then report that it did not kill us.
    std::thread::sleep(Duration::from_millis(20));
}

/// How the child is placed among sessions and process groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// In vault-run's own process group, which is a terminal's foreground group: the terminal
    /// signals both, and job control (Ctrl-Z, `fg`) keeps working.
    SharedGroup,
    /// In a process group of its own (no terminal): signals go to the whole group.
    OwnGroup,
    /// In a session of its own with a pseudo-terminal as controlling terminal; `tty` is the
    /// descriptor number of the terminal in the child (after stdio is set up), `None` for a
    /// session without a controlling terminal.
    OwnSession {
        /// A descriptor (0, 1 or 2) that is the pseudo-terminal in the child.
        tty: Option<RawFd>,
    },
}

/// Prepares `cmd` to run under the supervisor: placement, `PR_SET_PDEATHSIG`, core limit and
/// signal mask as vault-run got them.
pub fn prepare_child(cmd: &mut Command, placement: Placement, core: CoreLimit, mask: SigSet) {
    use std::os::unix::process::CommandExt;
    if placement == Placement::OwnGroup {
        cmd.process_group(0);
    }
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs between fork and exec, so it only makes async-signal-safe
    // system calls (setsid, ioctl, prctl, getppid, setrlimit, sigprocmask) and allocates
    // nothing (from_raw_os_error does not allocate).
    unsafe {
        cmd.pre_exec(move || {
            if let Placement::OwnSession { tty } = placement {
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
                if let Some(tty) = tty {
                    if libc::ioctl(tty, libc::TIOCSCTTY, 0) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
            }
            // The child must never outlive vault-run (which would leave it unsupervised with
            // the secrets); the fork is made by the main thread, which lives until exit.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            // vault-run may have died before the line above: then nothing would kill us.
            if libc::getppid() != parent.as_raw() {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            core.restore();
            // std cleared the mask; give the child the one vault-run was started with.
            if libc::sigprocmask(libc::SIG_SETMASK, mask.as_ref(), std::ptr::null_mut()) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// What the child is exec'd with, in vault-run's own buffers: the environment's strings are
/// wiped when this is dropped, after the spawn (std's `Command::envs` would copy every value into
/// strings of its own, freed unwiped).
pub struct ExecBlock {
    program: CString,
    argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
}

impl ExecBlock {
    /// `program` run as `argv` with exactly `envp` (`NAME=value` strings, wiped on drop).
    pub fn new(program: CString, argv: Vec<CString>, envp: Vec<CString>) -> Self {
        let ptrs = |v: &[CString]| v.iter().map(|s| s.as_ptr()).chain([std::ptr::null()]).collect();
        let (argv_ptrs, envp_ptrs) = (ptrs(&argv), ptrs(&envp));
        Self { program, argv, argv_ptrs, envp, envp_ptrs }
    }
}

impl Drop for ExecBlock {
    fn drop(&mut self) {
        self.envp_ptrs.clear();
        crate::environment::wipe_cstrings(std::mem::take(&mut self.envp));
    }
}

/// Makes the child `execve` from `block` itself, as the last step between fork and exec, so
/// that std's exec (with its environment copy, empty after `env_clear`) never runs. A failed
/// `execve` returns its errno, which `spawn` reports as its error. Call it after every other
/// `pre_exec` hook, and keep `block` alive until `spawn` has returned.
pub fn exec_with(cmd: &mut Command, block: &ExecBlock) {
    use std::os::unix::process::CommandExt;
    debug_assert_eq!(block.argv.len() + 1, block.argv_ptrs.len());
    // Addresses, not pointers, so that the closure is Send; they point into `block`'s heap
    // buffers, which the caller keeps alive (and unmoved on the heap) across the spawn.
    let program = block.program.as_ptr() as usize;
    let argv = block.argv_ptrs.as_ptr() as usize;
    let envp = block.envp_ptrs.as_ptr() as usize;
    // SAFETY: runs between fork and exec in the child, whose copy of the parent's memory holds
    // `block` intact (the parent keeps it alive until spawn returns); execve is async-signal-safe
    // and the NULL-terminated arrays were built before the fork, so nothing is allocated here.
    unsafe {
        cmd.pre_exec(move || {
            libc::execve(
                program as *const libc::c_char,
                argv as *const *const libc::c_char,
                envp as *const *const libc::c_char,
            );
            Err(io::Error::last_os_error())
        });
    }
}

/// Whether vault-run's stdout and stderr are the same open file (same device and inode: one
/// pipe, one log file, one terminal).
pub fn stdout_is_stderr() -> bool {
    match (nix::sys::stat::fstat(std::io::stdout().as_fd()), nix::sys::stat::fstat(std::io::stderr().as_fd()))
    {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

/// Sends `signal` to the child, or to its whole group.
pub fn send(pid: Pid, group: bool, signal: Signal) -> nix::Result<()> {
    if group {
        nix::sys::signal::killpg(pid, signal)
    } else {
        nix::sys::signal::kill(pid, signal)
    }
}

/// Stops vault-run itself (the child was stopped from the terminal: the shell must see the job
/// stopped too). Returns when continued.
pub fn stop_self() {
    let _ = nix::sys::signal::kill(nix::unistd::getpid(), Signal::SIGSTOP);
}

/// Overwrites, in vault-run's initial environment block, the values of the variables `wipe`
/// selects, then removes them from the environment. `/proc/PID/environ` shows the bytes of that
/// block (not the current environment), so removing a variable alone would leave the agent key
/// readable there. Call before spawning threads. Returns the names wiped.
pub fn wipe_environ(wipe: impl Fn(&[u8], &[u8]) -> bool) -> Vec<String> {
    extern "C" {
        static mut environ: *const *mut libc::c_char;
    }
    let mut names = Vec::new();
    // SAFETY: `environ` is a NULL-terminated array of pointers to NUL-terminated strings in
    // writable memory (the initial stack block, or heap strings from setenv). No other thread
    // reads the environment now (vault-run's helper threads are idle; ours start later), and we
    // only overwrite bytes after the '=' in place, never past the NUL.
    unsafe {
        let mut p = std::ptr::addr_of!(environ).read();
        if p.is_null() {
            return names;
        }
        while !(*p).is_null() {
            let s = *p;
            let bytes = std::slice::from_raw_parts_mut(s.cast::<u8>(), libc::strlen(s));
            if let Some(eq) = bytes.iter().position(|&b| b == b'=') {
                let (name, value) = bytes.split_at_mut(eq);
                if wipe(name, &value[1..]) {
                    names.push(String::from_utf8_lossy(name).into_owned());
                    value[1..].fill(0);
                }
            }
            p = p.add(1);
        }
    }
    for n in &names {
        std::env::remove_var(n);
    }
    names
}

/// The window size of terminal `from`.
pub fn window_size(from: RawFd) -> Option<libc::winsize> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one winsize into the valid pointer.
    let r = unsafe { libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) };
    (r == 0).then_some(ws)
}

/// Sets the window size of terminal `to` (the kernel then sends SIGWINCH to its foreground
/// group).
pub fn set_window_size(to: &impl AsRawFd, ws: &libc::winsize) {
    // SAFETY: TIOCSWINSZ reads one winsize from the valid pointer.
    unsafe { libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, ws) };
}
