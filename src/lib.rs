//! `vault-run`: launch a process with secrets from Agent Secret Store (or Vault/OpenBao) in its
//! environment. The library holds everything; the binary only wires the CLI to it.

pub mod blocking;
pub mod cli;
pub mod client;
pub mod dev_server;
pub mod duration;
pub mod mapping;
pub mod path;
pub mod secret;
pub mod wire;

pub use client::AgentVault;
pub mod app;
pub mod backend;
pub mod deadline;
pub mod environment;
pub mod exec;
pub mod exit;
pub mod logging;
pub mod mask;
pub mod notify;
pub mod proxy;
pub mod resolve;
pub mod settings;
pub mod supervise;
