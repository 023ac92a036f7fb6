//! `vault-run secrets set|import|list|rm`: the write side of the store, through the same SDK
//! client, credential sources, base URL rules, TLS, retries, approvals and exit codes as a
//! launch. Each command asks for a token scoped to exactly the calls it makes.

pub mod args;
mod error;
mod import;
mod list;
mod store;
mod value;

use std::process::ExitCode;

pub use self::args::{Action, SecretsArgs, SecretsConfig};
pub use self::error::SecretsError;
use self::store::Store;

/// Runs one `secrets` command; returns the process exit code.
pub fn main(config: SecretsConfig) -> ExitCode {
    let _core_limit = crate::exec::lock_down();
    crate::logging::init(config.log);
    crate::status_line::enable(config.log.status_line());
    let quiet = config.log.quiet;
    let result = match &config.action {
        Action::Set { value_on_argv: true, .. } => Err(SecretsError::Usage(
            "a secret's value goes on standard input, never on the command line (other users see argv in ps, and shells keep it in history): printf %s \"$VALUE\" | vault-run secrets set PATH".into(),
        )),
        Action::Set { path, write, .. } => set(&config, path, write, quiet),
        Action::Import { file, namespace, print_mapping, write } => {
            import::run(&config.flags, file, namespace, *print_mapping, write, quiet)
        }
        Action::List { namespace, format } => list::run(&config.flags, namespace.as_deref(), *format),
        Action::Rm { path } => rm(&config, path, quiet),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

/// `secrets set PATH`: the value from standard input, one write, the new version on stdout.
fn set(config: &SecretsConfig, path: &str, write: &args::WriteSpec, quiet: bool) -> Result<(), SecretsError> {
    let path = store::parse_path(path)?;
    // Read before connecting: a mistyped key or URL is reported after the value is typed, but
    // no token (and no approval) is asked for a value that never came.
    let value = value::read(&path)?;
    let store = Store::connect(&config.flags)?;
    let written = store.write(&[(path.clone(), value)], write)?;
    let (_, version) = &written[0];
    println!("{path} version {version}");
    if !quiet {
        eprintln!("vault-run: wrote {path} (version {version}); its value was not printed");
    }
    Ok(())
}

/// `secrets rm PATH`.
fn rm(config: &SecretsConfig, path: &str, quiet: bool) -> Result<(), SecretsError> {
    let path = store::parse_path(path)?;
    let store = Store::connect(&config.flags)?;
    store.delete(&path)?;
    if !quiet {
        eprintln!("vault-run: deleted {path}");
    }
    Ok(())
}
