//! Supervise mode: vault-run stays as the child's parent for what exec cannot do: keep the
//! secrets out of its own environment while staying, forward signals, reap zombies as PID 1,
//! mask the child's output, restart or signal the child when secrets rotate, notify systemd.
//!
//! One thread (vault-run's main thread) owns the child: every signal vault-run handles is
//! blocked and taken with `sigtimedwait`, so signals, child exits and timers are handled in
//! one loop, with no async-signal-safety concerns. Helper threads only copy output and fetch.

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::environment::ChildEnv;
use crate::exec::CoreLimit;
use crate::exec::ExecError;
use agentsecretstore::duration::HumanDuration;
use agentsecretstore::secret::SecretString;

mod child;
mod os;
mod output;
pub mod pty;
pub mod signals;
mod watch;

use child::{Change, Child, Ending, Spawner, Wiring};
use os::Placement;
pub use signals::Signal;
use signals::{Disposition, Received};

/// How to supervise, from the command line (the flags are `cli`'s; this is what they mean).
#[derive(Debug, Clone)]
pub struct Policy {
    /// `--supervise`: stay as the child's parent even with nothing else asking for it.
    pub supervise: bool,
    /// `--mask`: pass the child's output through, replacing every injected value.
    pub mask: bool,
    /// `--watch`: fetch again every `watch_interval` and apply changes.
    pub watch: bool,
    /// How often `--watch` fetches.
    pub watch_interval: HumanDuration,
    /// Signal that stops the child for a restart.
    pub restart_signal: Signal,
    /// On a change, only send this signal instead of restarting.
    pub reload_signal: Option<Signal>,
    /// How long a restart waits for the child to exit before SIGKILL.
    pub kill_timeout: HumanDuration,
    /// Random delay, up to this, before a restart or reload.
    pub splay: HumanDuration,
    /// Send READY=1 to systemd once the child is started.
    pub notify_ready: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            supervise: false,
            mask: false,
            watch: false,
            watch_interval: HumanDuration::from_secs(30),
            restart_signal: Signal::TERM,
            reload_signal: None,
            kill_timeout: HumanDuration::from_secs(10),
            splay: HumanDuration::from_secs(0),
            notify_ready: false,
        }
    }
}

impl Policy {
    /// Why supervise mode is needed, or `None` for a plain exec.
    pub fn reason(&self) -> Option<&'static str> {
        if self.supervise {
            Some("--supervise")
        } else if self.mask {
            Some("--mask needs vault-run to stay (the child's output goes through it)")
        } else if self.watch {
            Some("--watch needs vault-run to stay (it restarts the child on a change)")
        } else if self.notify_ready {
            Some("--notify-ready needs vault-run to stay (it sends READY=1 once the child is started)")
        } else {
            None
        }
    }
}

/// What the child is started with.
pub struct Launch {
    /// Its environment.
    pub env: ChildEnv,
    /// The injected (name, value) pairs, for masking and change detection.
    pub secrets: Vec<(String, SecretString)>,
    /// `--user`: whom the child runs as.
    pub user: Option<std::sync::Arc<crate::privilege::RunAs>>,
    /// `--sandbox`: the namespaces the child enters.
    pub sandbox: Option<std::sync::Arc<crate::sandbox::Entry>>,
}

/// Fetches again for `--watch`: `Ok(None)` when nothing changed, `Ok(Some)` with the new launch
/// when something did, `Err` when the fetch failed (keep the running child). Runs on a thread
/// of its own.
pub type Refresh = Box<dyn FnMut() -> Result<Option<Launch>, SuperviseError> + Send>;

/// What goes wrong while supervising.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    /// The child could not be started.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// A `--watch` fetch failed (the running child is kept).
    #[error(transparent)]
    Fetch(Box<dyn std::error::Error + Send + Sync>),
    /// The `--watch` thread ended.
    #[error("internal error: the watch thread ended")]
    WatchEnded,
}

/// How long vault-run waits for the child's last output after it exited.
const DRAIN: Duration = Duration::from_secs(2);

/// Runs `command` as a supervised child; returns vault-run's exit code (or dies of the signal
/// that killed the child).
pub fn run(
    command: &[OsString],
    first: Launch,
    args: &Policy,
    core: &CoreLimit,
    refresh: Option<Refresh>,
) -> ExitCode {
    // Before any thread of ours exists: nothing else reads the environment now.
    let wiped = os::wipe_environ(|name, value| {
        crate::backend::registry::is_credential_var(name) || crate::backend::registry::is_env_reference(value)
    });
    if !wiped.is_empty() {
        tracing::debug!(variables = ?wiped, "removed from vault-run's own environment");
    }
    let mask = os::take_signals();
    let pid1 = nix::unistd::getpid().as_raw() == 1;
    if !pid1 {
        // Orphaned grandchildren are re-parented to vault-run (not to init), which reaps them.
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            tracing::debug!(error = %e, "cannot become a subreaper");
        }
    }
    let placement = if child::on_terminal() { Placement::SharedGroup } else { Placement::OwnGroup };
    let wiring = match (args.mask, std::io::IsTerminal::is_terminal(&std::io::stdout())) {
        _ if pty::needed_for(first.user.as_deref()) => Wiring::Pty,
        (false, _) => Wiring::Inherit,
        (true, false) => Wiring::Pipes,
        (true, true) => Wiring::Pty,
    };
    let master = Arc::new(Mutex::new(None));
    let raw = if wiring == Wiring::Pty { output::RawMode::enter() } else { None };
    if raw.is_some() {
        output::copy_stdin(master.clone());
    }
    tracing::debug!(?placement, ?wiring, pid1, "supervising");
    let mut spawner = Spawner {
        placement,
        wiring,
        core: *core,
        mask,
        secrets: Vec::new(),
        pumps: output::Pumps::default(),
        master,
        raw,
        masking: args.mask,
    };
    let child = match spawner.spawn(command, first) {
        Ok(c) => c,
        Err(e) => {
            drop(spawner.raw.take());
            return crate::exit::report(&e, e.exit_code());
        }
    };
    if args.notify_ready {
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            tracing::warn!("--notify-ready: NOTIFY_SOCKET is not set; not notifying");
        }
        crate::notify::notify("READY=1");
    }
    let watcher = refresh.map(|r| watch::Watcher::start(r, args.watch_interval.get()));
    let mut sup = Supervisor { command, args, spawner, child, phase: Phase::Running, watcher };
    let end = sup.run();
    sup.spawner.pumps.drain(DRAIN);
    drop(sup.spawner.raw.take());
    match end {
        End::Child(Ending::Exited(code)) => {
            tracing::info!(code, "child exited");
            ExitCode::from(code as u8)
        }
        End::Child(Ending::Killed(signal)) => {
            tracing::info!(%signal, "child killed by a signal; vault-run ends the same way");
            os::die_by(signal);
            ExitCode::from(128 + signal as u8)
        }
        End::Failed(code) => ExitCode::from(code),
    }
}

/// How supervision ended.
enum End {
    /// The child ended (on its own, or as asked by a forwarded signal).
    Child(Ending),
    /// A restart could not start the new child (exit code).
    Failed(u8),
}

/// Where the child stands with respect to `--watch` changes.
enum Phase {
    /// Running; nothing to do.
    Running,
    /// A change waits out its random `--splay` delay.
    Splay {
        /// When to apply it.
        at: Instant,
        /// What to do then.
        change: Pending,
    },
    /// The restart signal was sent; waiting for the child to exit (SIGKILL at `kill_at`), then
    /// start `next` (`None`: a terminating signal arrived meanwhile, so just end).
    Stopping { kill_at: Option<Instant>, next: Option<Launch> },
}

/// A change to apply.
enum Pending {
    /// Send the reload signal.
    Reload,
    /// Restart with this launch.
    Restart(Launch),
}

struct Supervisor<'a> {
    command: &'a [OsString],
    args: &'a Policy,
    spawner: Spawner,
    child: Child,
    phase: Phase,
    watcher: Option<watch::Watcher>,
}

impl Supervisor<'_> {
    fn run(&mut self) -> End {
        let set = os::handled_set();
        loop {
            let now = Instant::now();
            let mut wake = now + Duration::from_secs(3600);
            if let Some(w) = &self.watcher {
                wake = wake.min(w.wake_at(now));
            }
            match &self.phase {
                Phase::Splay { at, .. } => wake = wake.min(*at),
                Phase::Stopping { kill_at: Some(k), .. } => wake = wake.min(*k),
                _ => {}
            }
            if let Some(received) = os::wait_signal(&set, wake.saturating_duration_since(now)) {
                if let Some(end) = self.on_signal(received) {
                    return end;
                }
            }
            self.on_time(Instant::now());
        }
    }

    fn on_signal(&mut self, r: Received) -> Option<End> {
        tracing::debug!(signal = %r.signal, code = r.code, from = r.pid, "signal");
        let forward = match signals::disposition(r.signal)? {
            Disposition::Child => return self.on_child(),
            Disposition::Forward => true,
            Disposition::OwnWrites => !r.sent_by_kernel(),
            Disposition::Terminal => {
                if r.signal == nix::sys::signal::Signal::SIGWINCH && self.spawner.wiring == Wiring::Pty {
                    self.spawner.resize();
                    false
                } else {
                    // The terminal signalled its whole foreground group, the child included.
                    !(self.child.placement == Placement::SharedGroup && r.sent_by_kernel())
                }
            }
        };
        if forward {
            self.child.signal(r.signal);
            if signals::ends(r.signal) {
                match &mut self.phase {
                    Phase::Stopping { next, .. } if next.is_some() => {
                        tracing::info!("restart abandoned: {} asks the child to end", r.signal);
                        *next = None;
                    }
                    Phase::Splay { .. } => self.phase = Phase::Running,
                    _ => {}
                }
            }
        }
        None
    }

    fn on_child(&mut self) -> Option<End> {
        match child::reap(self.child.pid)? {
            Change::Stopped => {
                self.stopped();
                None
            }
            Change::Ended(ending) => {
                let Phase::Stopping { next, .. } = std::mem::replace(&mut self.phase, Phase::Running) else {
                    return Some(End::Child(ending));
                };
                let Some(next) = next else { return Some(End::Child(ending)) };
                tracing::info!(?ending, "child stopped for the restart; starting it again");
                match self.spawner.spawn(self.command, next) {
                    Ok(c) => {
                        self.child = c;
                        crate::notify::notify("STATUS=restarted with changed secrets");
                        None
                    }
                    Err(e) => Some(End::Failed(e.exit_code())),
                }
            }
        }
    }

    /// The child was stopped from its terminal (Ctrl-Z): stop too, so the shell sees the job
    /// stopped, and continue it when continued.
    fn stopped(&mut self) {
        match self.child.placement {
            Placement::SharedGroup => os::stop_self(),
            Placement::OwnSession { .. } => {
                if let Some(raw) = &self.spawner.raw {
                    raw.suspend();
                    os::stop_self();
                    raw.resume();
                    self.spawner.resize();
                    self.child.signal(nix::sys::signal::Signal::SIGCONT);
                }
            }
            Placement::OwnGroup => {}
        }
    }

    fn on_time(&mut self, now: Instant) {
        let may_fetch = !matches!(self.phase, Phase::Stopping { .. });
        if let Some(fetched) = self.watcher.as_mut().and_then(|w| w.poll(now, may_fetch)) {
            match fetched {
                Ok(None) => tracing::debug!("watch: no change"),
                Ok(Some(launch)) => self.changed(launch, now),
                Err(e) => tracing::warn!(
                    "watch: fetch failed, keeping the running child; trying again in {}: {e}",
                    self.args.watch_interval
                ),
            }
        }
        if let Phase::Splay { at, .. } = &self.phase {
            if now >= *at {
                let Phase::Splay { change, .. } = std::mem::replace(&mut self.phase, Phase::Running) else {
                    unreachable!()
                };
                self.apply(change, now);
            }
        }
        if let Phase::Stopping { kill_at, .. } = &mut self.phase {
            if kill_at.is_some_and(|k| now >= k) {
                *kill_at = None;
                tracing::warn!(
                    "the child did not exit within --kill-timeout {}; sending SIGKILL",
                    self.args.kill_timeout
                );
                self.child.signal(nix::sys::signal::Signal::SIGKILL);
            }
        }
    }

    /// The mapped secrets changed: schedule a reload or a restart after the splay.
    fn changed(&mut self, launch: Launch, now: Instant) {
        tracing::info!("watch: secrets changed");
        self.spawner.remember(&launch.secrets);
        let change =
            if self.args.reload_signal.is_some() { Pending::Reload } else { Pending::Restart(launch) };
        match &mut self.phase {
            // Already waiting: keep the time, take the newest launch.
            Phase::Splay { change: pending, .. } => *pending = change,
            _ => {
                let splay = self.args.splay.get();
                let delay = if splay.is_zero() {
                    Duration::ZERO
                } else {
                    Duration::from_millis(rand::random_range(0..=splay.as_millis() as u64))
                };
                if !delay.is_zero() {
                    tracing::info!("watch: applying the change in {}", HumanDuration::from(delay));
                }
                self.phase = Phase::Splay { at: now + delay, change };
            }
        }
    }

    fn apply(&mut self, change: Pending, now: Instant) {
        match change {
            Pending::Reload => {
                let signal = self.args.reload_signal.unwrap_or(Signal::TERM).nix();
                tracing::info!(%signal, "watch: signalling the child to reload");
                self.child.signal(signal);
            }
            Pending::Restart(launch) => {
                let signal = self.args.restart_signal.nix();
                tracing::info!(%signal, "watch: restarting the child");
                crate::notify::notify("STATUS=restarting the child: secrets changed");
                self.child.signal(signal);
                self.phase =
                    Phase::Stopping { kill_at: Some(now + self.args.kill_timeout.get()), next: Some(launch) };
            }
        }
    }
}
