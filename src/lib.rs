//! `vault-run`: launch a process with secrets from Agent Secret Store (or Vault/OpenBao) in its
//! environment. The library holds everything; the binary only wires the CLI to it.
//!
//! Its public surface is what `main.rs`, the integration tests and the fuzz targets use; every
//! module is private to the crate (README, "Layout", says which does what).

mod app;
mod backend;
mod backend_args;
mod check_report;
mod cli;
mod completions;
mod deadline;
#[cfg(feature = "dev-server")]
mod dev_admin;
mod discover;
mod envfile;
mod environment;
mod exec;
mod exit;
mod expand;
mod files;
mod inherited;
mod logging;
mod mapping;
mod mask;
mod notify;
mod privilege;
mod proxy;
mod resolve;
mod sandbox;
mod secrets;
mod settings;
mod status_line;
mod supervise;
mod tty_guard;
mod users;

pub use cli::main;
pub use proxy::holder::run_if_holder;

/// The parsers that the fuzz targets and the property tests drive directly.
pub mod parsers {
    pub use crate::backend::vault::kv;
    pub use crate::expand::{expand, expand_placeholders};
    pub use crate::mapping::{
        parse_glob_reference, parse_reference, AssGlob, Mapping, Template, TemplatePart,
    };
}
