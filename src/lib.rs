//! `vault-run`: launch a process with secrets from Agent Secret Store (or Vault/OpenBao) in its
//! environment. The library holds everything; the binary only wires the CLI to it.

pub mod cli;
pub mod mapping;

// The SDK's modules under their old in-crate names: the launcher's code keeps reading
// `crate::secret::SecretString` and friends.
pub(crate) use agentsecretstore::{client, duration, path, secret, wire};
#[cfg(feature = "dev-server")]
pub(crate) use agentsecretstore_dev as dev_server;
pub mod app;
pub mod backend;
pub mod backend_args;
pub mod check_report;
pub mod completions;
pub mod deadline;
pub mod dev_admin;
pub mod discover;
pub mod envfile;
pub mod environment;
pub mod exec;
pub mod exit;
pub mod expand;
pub mod files;
pub mod inherited;
pub mod logging;
pub mod mask;
pub mod notify;
pub mod privilege;
pub mod proxy;
pub mod resolve;
pub mod sandbox;
pub mod secrets;
pub mod settings;
pub mod status_line;
pub mod supervise;
pub mod tty_guard;
pub mod users;
