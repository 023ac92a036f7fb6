//! What a run (or `check`) was asked to do: the command line's meaning in plain values, built
//! once by `cli`.

use std::path::PathBuf;

use crate::logging::LogConfig;
use crate::proxy::ProxyConfig;
use crate::settings;
use crate::supervise;

/// What a run (or `check`) was asked to do, in plain values.
#[derive(Debug, Clone, Default)]
pub struct RunConfig {
    /// `-f` / `VAULT_RUN_FILE`: the mapping file (else the nearest `vault-run.toml`).
    pub file: Option<PathBuf>,
    /// `-e NAME=REF` entries.
    pub env: Vec<String>,
    /// `--env-file` files, in order.
    pub env_file: Vec<PathBuf>,
    /// `--no-env-refs`: inherited references are not entries.
    pub no_env_refs: bool,
    /// Settings given as flags (they win over the mapping file's).
    pub settings: settings::Flags,
    /// `--pristine`: the child gets only the secrets and `keep`.
    pub pristine: bool,
    /// `--keep` names.
    pub keep: Vec<String>,
    /// `--no-override`: a variable already set is left alone.
    pub no_override: bool,
    /// `--keep-agent-key`: the credential variables reach the child.
    pub keep_agent_key: bool,
    /// `--keep-credentials-directory`.
    pub keep_credentials_directory: bool,
    /// `--user USER[:GROUP]`.
    pub user: Option<String>,
    /// `--allow-name` names.
    pub allow_name: Vec<String>,
    /// vault-run's own log lines.
    pub log: LogConfig,
    /// Supervise mode.
    pub supervise: supervise::Policy,
    /// Agent-safe mode.
    pub proxy: ProxyConfig,
    /// `--sandbox`: agent-safe mode enforced by the kernel.
    pub sandbox: bool,
    /// `--allow-host` entries, with their ports (the sandbox forwards those).
    pub allow_host: Vec<crate::mapping::HostPort>,
}
