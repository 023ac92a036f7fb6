//! `vault-run dev`: an in-memory Agent Secret Store for local use and for every test.
//! (Being built; see the Foundation issue.)

/// Options of `vault-run dev`.
#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
}

/// Runs the dev server until SIGINT/SIGTERM. Returns the process exit code.
pub fn main(_args: DevArgs) -> std::process::ExitCode {
    std::process::ExitCode::from(70)
}
