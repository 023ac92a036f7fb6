//! vault-run's exit codes (sysexits.h values, as the README documents), written once: the
//! constants, their meanings for `--help` and the README, and the one way a failure is reported.
//! Imports nothing of the crate: every layer may name a code.

use std::process::ExitCode;

/// Bad command line (EX_USAGE).
pub const USAGE: u8 = 64;
/// Required secret not found or expired (EX_UNAVAILABLE).
pub const MISSING: u8 = 69;
/// Internal error (EX_SOFTWARE).
pub const SOFTWARE: u8 = 70;
/// Output could not be written (EX_IOERR): `completions` or `man` to a broken stdout.
pub const IO: u8 = 74;
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
    (IO, "the output (completions, man page) could not be written"),
    (TEMPORARY, "temporary: network, 5xx, rate limited after retries, deadline, approval timeout"),
    (AUTH, "auth: key or token refused, scope denied, approval denied or expired"),
    (CONFIG, "mapping or configuration error"),
    (NOT_EXECUTABLE, "the command was found but could not be executed"),
    (NOT_FOUND, "the command was not found"),
];

/// Clap's `--help` footer, written from [`TABLE`]: the codes with their meanings, in order.
pub fn help_text() -> String {
    let mut text = String::from("Exit codes: the child's own, or vault-run's:");
    for (code, meaning) in TABLE {
        text.push_str(&format!("\n  {code:>3}  {meaning}"));
    }
    text
}

/// Logs a failure as one line and returns its exit code.
pub fn report(e: &dyn std::fmt::Display, code: u8) -> ExitCode {
    tracing::error!("{e} (exit {code})");
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's exit-code table must list every code vault-run uses.
    #[test]
    fn readme_documents_every_exit_code() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        for (code, meaning) in TABLE {
            let row = format!("| {code} | {meaning} |");
            assert!(readme.contains(&row), "README's exit-code table lacks {row}");
        }
    }

    #[test]
    fn help_text_lists_every_code() {
        let help = help_text();
        for (code, meaning) in TABLE {
            assert!(help.contains(&format!("{code:>3}  {meaning}")), "--help lacks {code}");
        }
    }
}
