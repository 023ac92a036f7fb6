//! Command-line interface: argument parsing and dispatch to the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Launch a process with secrets in its environment.
#[derive(Debug, Parser)]
#[command(name = "vault-run", version, about)]
pub struct Cli {
    /// Subcommand.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an in-memory Agent Secret Store for local development and tests.
    Dev(crate::dev_server::DevArgs),
}

/// Parses the arguments and runs; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Dev(args)) => crate::dev_server::main(args),
        None => ExitCode::from(64),
    }
}
