//! Process hygiene and the exec: the core-dump and non-dumpable lock-down, the hint for a
//! mistyped subcommand, and the `execve` of exec mode with the zeroizing environment block,
//! all through nix's safe wrappers. The launcher's `unsafe` calls are elsewhere, each beside its
//! reason: supervise mode's in `supervise/os.rs`; the sandbox's (`clone`, `setns`, `SCM_RIGHTS`)
//! in `sandbox/helper.rs`, `sandbox/enter.rs` and `sandbox/fdpass.rs`; the CA holder's in
//! `proxy/holder.rs` and its allocator tuning in `proxy/mod.rs`; the terminal restored on a
//! signal during the no-echo read in `secrets/value.rs`; one each in `privilege.rs`,
//! `status_line.rs` and `tty_guard.rs`.

use std::ffi::{CString, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::sys::resource::{getrlimit, setrlimit, Resource};

use crate::environment::{wipe_cstrings, ChildEnv};

/// The core-dump limit vault-run started with, restored for the child.
#[derive(Debug, Clone, Copy)]
pub struct CoreLimit {
    soft: u64,
    hard: u64,
}

/// Turns core dumps off while vault-run holds secrets: a crash must not write them to disk,
/// and `PR_SET_DUMPABLE=0` also keeps other same-uid processes from ptrace-attaching or
/// reading `/proc/PID/mem`. Returns the old limit so the child gets it back.
pub fn lock_down() -> CoreLimit {
    let (soft, hard) = getrlimit(Resource::RLIMIT_CORE).unwrap_or((0, 0));
    if let Err(e) = setrlimit(Resource::RLIMIT_CORE, 0, hard) {
        tracing::warn!(error = %e, "could not turn core dumps off");
    }
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!(error = %e, "could not mark the process non-dumpable");
    }
    CoreLimit { soft, hard }
}

impl CoreLimit {
    /// Gives the process its original core limit back (just before the exec; the dumpable flag
    /// is reset by `execve` itself).
    pub fn restore(&self) {
        let _ = setrlimit(Resource::RLIMIT_CORE, self.soft, self.hard);
    }
}

/// A failed exec.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Not on `PATH` / no such file (exit 127).
    #[error("command not found: {0}; check the name and PATH{hint}", hint = subcommand_hint(.0))]
    NotFound(String),
    /// Found but not executable (exit 126).
    #[error("command not executable: {0}: {1}")]
    NotExecutable(String, Errno),
    /// A command or argument holds a NUL byte (exit 64).
    #[error("command line argument contains a NUL byte")]
    Nul,
    /// Anything else (exit 126).
    #[error("cannot execute {0}: {1}")]
    Other(String, Errno),
}

impl ExecError {
    /// The one classification of a failed exec (or spawn) by its errno: missing (127), not
    /// executable (126), or anything else (126).
    pub fn from_errno(shown: String, errno: Errno) -> Self {
        match errno {
            Errno::ENOENT | Errno::ENOTDIR => ExecError::NotFound(shown),
            Errno::EACCES | Errno::ENOEXEC | Errno::EISDIR | Errno::EPERM => {
                ExecError::NotExecutable(shown, errno)
            }
            other => ExecError::Other(shown, other),
        }
    }

    /// The exit code vault-run ends with for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            ExecError::NotFound(_) => crate::exit::NOT_FOUND,
            ExecError::Nul => crate::exit::USAGE,
            ExecError::NotExecutable(..) | ExecError::Other(..) => crate::exit::NOT_EXECUTABLE,
        }
    }
}

/// vault-run's subcommands: a command of one of these names (or close to one) that is not on
/// `PATH` was most likely meant as the subcommand.
const SUBCOMMANDS: &[&str] = &["check", "dev", "secrets", "completions", "man"];

/// `vault-run -v check` runs a command named `check`: options go after a subcommand. A typo
/// (`chekc`) or a `secrets` action without `secrets` (`vault-run import .env`) gets the name.
fn subcommand_hint(command: &str) -> String {
    match command {
        "dev" if !cfg!(feature = "dev-server") => {
            " (this vault-run was built without the dev server: cargo feature dev-server)".to_owned()
        }
        c if SUBCOMMANDS.contains(&c) => format!(
            "; did you mean the subcommand? Put vault-run's options after it: vault-run {command} [OPTIONS]"
        ),
        "import" | "set" | "list" | "ls" | "rm" => {
            format!("; did you mean `vault-run secrets {command}`?")
        }
        c => match SUBCOMMANDS.iter().find(|s| close(c, s)) {
            Some(s) => format!("; did you mean `vault-run {s}`?"),
            None => String::new(),
        },
    }
}

/// Whether `a` is one or two edits (insert, delete, substitute, swap) from `b`.
fn close(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 2 || a.len() < 3 {
        return false;
    }
    // Optimal string alignment distance: Levenshtein plus adjacent swaps.
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()] <= 2
}

/// Finds `command` as the exec will (`PATH` for a bare name), before anything is fetched: a
/// typo must fail at once, not after the secrets are fetched and a human's one-time approval
/// is spent. Not found is 127; found but not executable (no `x` for us, a directory) is 126.
pub fn resolve(command: &[OsString]) -> Result<(), ExecError> {
    use nix::unistd::{access, AccessFlags};
    let Some(name) = command.first() else { return Err(ExecError::NotFound(String::new())) };
    let shown = name.to_string_lossy().into_owned();
    if command.iter().any(|a| a.as_bytes().contains(&0)) {
        return Err(ExecError::Nul);
    }
    let candidates: Vec<std::path::PathBuf> = if name.as_bytes().contains(&b'/') {
        vec![name.into()]
    } else if name.is_empty() {
        Vec::new()
    } else {
        let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        std::env::split_paths(&path).map(|dir| dir.join(name)).collect()
    };
    let mut refused = None;
    for c in candidates {
        match (std::fs::metadata(&c), access(&c, AccessFlags::X_OK)) {
            (Ok(meta), Ok(())) if meta.is_file() => return Ok(()),
            (Ok(meta), _) if meta.is_dir() => refused = refused.or(Some(Errno::EISDIR)),
            (Ok(_), _) => refused = refused.or(Some(Errno::EACCES)),
            (Err(_), _) => {}
        }
    }
    Err(match refused {
        Some(errno) => ExecError::NotExecutable(shown, errno),
        None => ExecError::NotFound(shown),
    })
}

/// Replaces this process with `command` (looked up on `PATH`), `env` as its environment. Only
/// returns on failure, after wiping the environment block.
pub fn exec(
    command: &[OsString],
    env: ChildEnv,
    core: &CoreLimit,
    user: Option<&crate::privilege::RunAs>,
) -> ExecError {
    let shown = command.first().map(|c| c.to_string_lossy().into_owned()).unwrap_or_default();
    let args: Result<Vec<CString>, _> = command.iter().map(|a| CString::new(a.as_bytes())).collect();
    let Ok(args) = args else { return ExecError::Nul };
    let envp = env.to_cstrings();
    if let Some(user) = user {
        if let Err(errno) = user.switch_now() {
            wipe_cstrings(envp);
            return ExecError::Other(format!("{shown} (switching to user {})", user.name), errno);
        }
    }
    core.restore();
    let _ = std::io::stderr().flush();
    // execvpe searches vault-run's own PATH, so --pristine does not break the lookup.
    let errno = match nix::unistd::execvpe(&args[0], &args, &envp) {
        Err(errno) => errno,
        Ok(never) => match never {},
    };
    wipe_cstrings(envp);
    drop(env);
    ExecError::from_errno(shown, errno)
}

/// Total bytes the command line takes in `execve`'s budget.
pub fn argv_bytes(command: &[OsString]) -> usize {
    command.iter().map(|a| a.len() + 1 + std::mem::size_of::<usize>()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_of_a_subcommand_get_its_name() {
        assert!(subcommand_hint("chekc").contains("vault-run check"));
        assert!(subcommand_hint("secret").contains("vault-run secrets"));
        assert!(subcommand_hint("import").contains("vault-run secrets import"));
        assert_eq!(subcommand_hint("python3"), "");
        assert_eq!(subcommand_hint("ls2"), "");
        assert!(!close("de", "dev"), "too short to guess");
    }
}
