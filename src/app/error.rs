//! What stops a run before the child starts, and the exit code each failure gets.

use std::process::ExitCode;

use crate::backend::FailureKind;
use crate::environment::EnvError;
use crate::exec::ExecError;
use crate::exit::{AUTH, CONFIG, MISSING, SOFTWARE, TEMPORARY, USAGE};
use crate::mapping::MappingError;
use crate::resolve::ResolveError;
use crate::settings::SettingsError;

/// Everything that stops a run before the child starts.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad use of the command line.
    #[error("{0}")]
    Usage(String),
    /// Bad mapping.
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// Bad settings.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// Other configuration problem (unreadable mapping file, …).
    #[error("{0}")]
    Config(String),
    /// A secret could not be had.
    #[error("{first}{}", if *.more > 0 { format!(" (and {} more; `vault-run check` lists them all)", .more) } else { String::new() })]
    Resolve {
        /// The first failure, in mapping order.
        first: ResolveError,
        /// How many more there were.
        more: usize,
    },
    /// The environment could not be built.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// `--user` cannot be honoured.
    #[error(transparent)]
    Privilege(#[from] crate::privilege::PrivilegeError),
    /// The exec failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// Logs the error as one line and returns its exit code.
    pub fn report(&self) -> ExitCode {
        crate::exit::report(self, self.code())
    }

    /// The exit code for this error (see [`crate::exit::TABLE`]).
    pub fn code(&self) -> u8 {
        match self {
            AppError::Usage(_) | AppError::Mapping(MappingError::FlagSyntax { .. }) => USAGE,
            AppError::Mapping(_) | AppError::Settings(_) | AppError::Config(_) | AppError::Env(_) => CONFIG,
            AppError::Privilege(_) => CONFIG,
            AppError::Resolve { first, .. } => code_for(first.kind),
            AppError::Exec(e) => e.exit_code(),
            AppError::Internal(_) => SOFTWARE,
        }
    }
}

/// The exit code of a backend failure of `kind` (a launch's, `check`'s and `secrets`').
pub fn code_for(kind: FailureKind) -> u8 {
    match kind {
        FailureKind::Auth => AUTH,
        FailureKind::Missing => MISSING,
        FailureKind::ApprovalPending | FailureKind::Temporary => TEMPORARY,
        FailureKind::Config => CONFIG,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::NOT_FOUND;

    #[test]
    fn failure_kinds_map_to_documented_codes() {
        let resolve =
            |kind| AppError::Resolve { first: ResolveError { kind, message: String::new() }, more: 0 };
        assert_eq!(resolve(FailureKind::Auth).code(), AUTH);
        assert_eq!(resolve(FailureKind::Missing).code(), MISSING);
        assert_eq!(resolve(FailureKind::Temporary).code(), TEMPORARY);
        assert_eq!(resolve(FailureKind::ApprovalPending).code(), TEMPORARY);
        assert_eq!(resolve(FailureKind::Config).code(), CONFIG);
        assert_eq!(AppError::Exec(ExecError::NotFound("x".into())).code(), NOT_FOUND);
        assert_eq!(AppError::Usage(String::new()).code(), USAGE);
    }
}
