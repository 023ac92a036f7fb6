//! The one place where failures become exit codes (sysexits.h values, as the README documents).

use std::process::ExitCode;

use crate::backend::FailureKind;
use crate::environment::EnvError;
use crate::exec::ExecError;
use crate::mapping::MappingError;
use crate::resolve::ResolveError;
use crate::settings::SettingsError;

/// Bad command line (EX_USAGE).
pub const USAGE: u8 = 64;
/// Required secret not found or expired (EX_UNAVAILABLE).
pub const MISSING: u8 = 69;
/// Internal error (EX_SOFTWARE).
pub const SOFTWARE: u8 = 70;
/// Temporary: network, 5xx, rate limit, deadline, approval timeout (EX_TEMPFAIL).
pub const TEMPORARY: u8 = 75;
/// Auth, scope, approval denied or expired (EX_NOPERM).
pub const AUTH: u8 = 77;
/// Mapping or configuration error (EX_CONFIG).
pub const CONFIG: u8 = 78;
/// Command found but not executable.
pub const NOT_EXECUTABLE: u8 = 126;
/// Command not found.
pub const NOT_FOUND: u8 = 127;

/// Every code vault-run itself exits with, and its meaning; the README's table is checked
/// against this by a test.
pub const TABLE: &[(u8, &str)] = &[
    (USAGE, "usage: bad flags or arguments"),
    (MISSING, "a required secret was not found or has expired"),
    (SOFTWARE, "internal error (a bug: please report it)"),
    (TEMPORARY, "temporary: network, 5xx, rate limited after retries, deadline, approval timeout"),
    (AUTH, "auth: key or token refused, scope denied, approval denied or expired"),
    (CONFIG, "mapping or configuration error"),
    (NOT_EXECUTABLE, "the command was found but could not be executed"),
    (NOT_FOUND, "the command was not found"),
];

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

/// The exit code for an error.
pub fn code(e: &AppError) -> u8 {
    match e {
        AppError::Usage(_) | AppError::Mapping(MappingError::FlagSyntax { .. }) => USAGE,
        AppError::Mapping(_) | AppError::Settings(_) | AppError::Config(_) | AppError::Env(_) => CONFIG,
        AppError::Privilege(_) => CONFIG,
        AppError::Resolve { first, .. } => match first.kind {
            FailureKind::Auth => AUTH,
            FailureKind::Missing => MISSING,
            FailureKind::ApprovalPending | FailureKind::Temporary => TEMPORARY,
            FailureKind::Config => CONFIG,
        },
        AppError::Exec(ExecError::NotFound(_)) => NOT_FOUND,
        AppError::Exec(ExecError::Nul) => USAGE,
        AppError::Exec(_) => NOT_EXECUTABLE,
        AppError::Internal(_) => SOFTWARE,
    }
}

/// Logs the error as one line and returns its exit code.
pub fn report(e: &AppError) -> ExitCode {
    let code = code(e);
    tracing::error!("{e} (exit {code})");
    ExitCode::from(code)
}

/// Prints a clap error (help and version go to stdout with exit 0) and maps it to 64.
pub fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                ExitCode::from(USAGE)
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            let _ = e.print();
            ExitCode::from(USAGE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's exit-code table must list every code vault-run uses.
    #[test]
    fn readme_documents_every_exit_code() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        for (code, _) in TABLE {
            let row = format!("| {code} |");
            assert!(readme.contains(&row), "README's exit-code table lacks {code}");
        }
    }

    #[test]
    fn failure_kinds_map_to_documented_codes() {
        let resolve =
            |kind| AppError::Resolve { first: ResolveError { kind, message: String::new() }, more: 0 };
        assert_eq!(code(&resolve(FailureKind::Auth)), AUTH);
        assert_eq!(code(&resolve(FailureKind::Missing)), MISSING);
        assert_eq!(code(&resolve(FailureKind::Temporary)), TEMPORARY);
        assert_eq!(code(&resolve(FailureKind::ApprovalPending)), TEMPORARY);
        assert_eq!(code(&resolve(FailureKind::Config)), CONFIG);
        assert_eq!(code(&AppError::Exec(ExecError::NotFound("x".into()))), NOT_FOUND);
        assert_eq!(code(&AppError::Usage(String::new())), USAGE);
    }
}
