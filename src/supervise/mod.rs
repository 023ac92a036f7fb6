//! Supervise mode: vault-run stays as the child's parent for what exec cannot do (forwarding
//! signals as PID 1, reaping, masking output, restarting on rotation). Being built.

use std::ffi::OsString;
use std::process::ExitCode;

use crate::environment::ChildEnv;
use crate::exec::CoreLimit;
use crate::exit::AppError;
use crate::secret::SecretString;

/// Supervise-mode flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SuperviseArgs {
    /// Fork and stay as the child's supervisor instead of exec'ing.
    #[arg(long)]
    pub supervise: bool,
    /// Poll the mapped secrets and restart (or signal) the child when they change.
    #[arg(long)]
    pub watch: bool,
}

impl SuperviseArgs {
    /// Why supervise mode is needed, or `None` for a plain exec.
    pub fn reason(&self) -> Option<&'static str> {
        if self.supervise {
            Some("--supervise")
        } else if self.watch {
            Some("--watch needs vault-run to stay")
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
}

/// Fetches again for `--watch`: `Ok(None)` when nothing changed, `Ok(Some)` with the new launch
/// when something did, `Err` when the fetch failed (keep the running child).
pub type Refresh = Box<dyn FnMut() -> Result<Option<Launch>, AppError>>;

/// Runs `command` as a supervised child; returns vault-run's exit code.
pub fn run(
    _command: &[OsString],
    _first: Launch,
    _args: &SuperviseArgs,
    _core: &CoreLimit,
    _refresh: Option<Refresh>,
) -> ExitCode {
    ExitCode::from(crate::exit::SOFTWARE)
}
