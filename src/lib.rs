//! `vault-run`: launch a process with secrets from Agent Secret Store (or Vault/OpenBao) in its
//! environment. The library holds everything; the binary only wires the CLI to it.

pub mod duration;
pub mod path;
pub mod secret;
pub mod wire;
pub mod cli;
pub mod dev_server;
