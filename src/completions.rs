//! `vault-run completions SHELL` and `vault-run man`: generated from the clap definitions, so
//! they never drift from the flags.

use std::io::Write;
use std::process::ExitCode;

/// A shell to complete in.
pub use clap_complete::Shell;

/// Prints the completion script for `shell` (of the command line `cmd`) on stdout.
pub fn completions(shell: Shell, mut cmd: clap::Command) -> ExitCode {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "vault-run", &mut out);
    write_out(&out)
}

/// Prints the man page (roff) of the command line `cmd` on stdout.
pub fn man(cmd: clap::Command) -> ExitCode {
    let mut out = Vec::new();
    if let Err(e) = clap_mangen::Man::new(cmd).render(&mut out) {
        eprintln!("vault-run: error: cannot render the man page: {e} (exit {})", crate::exit::SOFTWARE);
        return ExitCode::from(crate::exit::SOFTWARE);
    }
    write_out(&out)
}

fn write_out(bytes: &[u8]) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`vault-run man | head`) is not worth a complaint.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vault-run: error: cannot write to stdout: {e} (exit {})", crate::exit::IO);
            ExitCode::from(crate::exit::IO)
        }
    }
}
