//! What stops a `vault-run secrets` command, and its exit code (the same table as a launch).

use std::process::ExitCode;

use crate::backend::BackendError;
use crate::exit::{CONFIG, IO, SOFTWARE, USAGE};
use crate::settings::SettingsError;
use agentsecretstore::path::SecretPath;

/// Everything that stops a `secrets` command.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// Bad use of the command line or of standard input (exit 64).
    #[error("{0}")]
    Usage(String),
    /// A bad file or setting (exit 78).
    #[error("{0}")]
    Config(String),
    /// Bad settings (exit 78).
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The store refused or could not be reached; the kind decides the code.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Some writes of an import failed: the first failure, and what was written anyway.
    #[error("{first}{}", written_note(.written))]
    Partial {
        /// The first failure.
        first: BackendError,
        /// The secrets written before or beside it.
        written: Vec<SecretPath>,
    },
    /// Standard output could not be written (exit 74).
    #[error("cannot write to stdout: {0}")]
    Output(std::io::Error),
    /// A bug (exit 70).
    #[error("internal error: {0}")]
    Internal(String),
}

fn written_note(written: &[SecretPath]) -> String {
    if written.is_empty() {
        " (nothing was written)".to_owned()
    } else {
        let names: Vec<String> = written.iter().map(ToString::to_string).collect();
        format!(" ({} written anyway: {}; run again to write the rest)", names.len(), names.join(", "))
    }
}

impl SecretsError {
    /// The exit code (see [`crate::exit::TABLE`]).
    pub fn code(&self) -> u8 {
        match self {
            SecretsError::Usage(_) => USAGE,
            SecretsError::Config(_) | SecretsError::Settings(_) => CONFIG,
            SecretsError::Backend(e) | SecretsError::Partial { first: e, .. } => crate::app::code_for(e.kind),
            SecretsError::Output(_) => IO,
            SecretsError::Internal(_) => SOFTWARE,
        }
    }

    /// Logs the error as one line and returns its exit code.
    pub fn report(&self) -> ExitCode {
        crate::exit::report(self, self.code())
    }
}
