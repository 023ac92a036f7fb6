//! Run settings: flags and environment win over the mapping file's `[store]` table, which wins
//! over the defaults.

use std::path::PathBuf;
use std::time::Duration;

use crate::backend::ReadsInFlight;
use crate::client::DEFAULT_BASE_URL;
use crate::inherited::Snapshot;
use crate::mapping::{FileSettings, Tuning};

/// The settings given on the command line (or by their environment variables): `None` where
/// not given, so the mapping file or the default applies.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--base-url` (`ASS_BASE_URL`), `--ttl`, `--timeout`, `--retries`, `--concurrency`,
    /// `--deadline`, `--approval-timeout`.
    pub tuning: Tuning,
    /// `--allow-insecure-http`.
    pub allow_insecure_http: bool,
    /// `--agent-key-file` / `ASS_AGENT_KEY_FILE`.
    pub agent_key_file: Option<PathBuf>,
    /// `--vault-token-file`.
    pub vault_token_file: Option<PathBuf>,
}

/// Everything a run needs to know besides the mapping: the backends' options, which
/// [`Settings::merge`] fills in.
pub type Settings = crate::backend::Options;

/// Where the agent key may be sent. The rule: whoever supplies the credential (flag,
/// environment, systemd unit) decides where it goes; a mapping file alone never does, since a
/// repository can ship one and harvest the key of whoever runs `vault-run` in it.
///
/// - flag or `ASS_BASE_URL` set: it wins; a differing file URL gets one warning;
/// - only the file names a URL other than the default service: refused (exit 78);
/// - the file names the default URL, or nothing: the default.
fn credential_destination(flag: Option<&str>, file: Option<&str>) -> Result<Option<String>, SettingsError> {
    let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
    match (flag, file) {
        (Some(flag), Some(file)) => {
            if !same(flag, file) {
                tracing::warn!(
                    "the mapping file's base_url {file} is ignored; --base-url/ASS_BASE_URL ({flag}) is used"
                );
            }
            Ok(Some(flag.to_owned()))
        }
        (Some(flag), None) => Ok(Some(flag.to_owned())),
        (None, Some(file)) if !same(file, DEFAULT_BASE_URL) => Err(SettingsError(format!(
            "the mapping file sets base_url = {file:?}, but a mapping file alone cannot choose where the agent key is sent; set ASS_BASE_URL={file} (or --base-url) to use it"
        ))),
        (None, _) => Ok(None),
    }
}

/// A setting out of range.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

impl Settings {
    /// Merges flags (and their environment variables) over the file over the defaults; `env`
    /// is the environment the run started with.
    pub fn merge(flags: &Flags, file: &FileSettings, env: Snapshot) -> Result<Self, SettingsError> {
        let d = Settings::default();
        // Each flag given wins over the file.
        let (flag, file) = (&flags.tuning, &file.tuning);
        let base_url = credential_destination(flag.base_url.as_deref(), file.base_url.as_deref())?;
        let s = Settings {
            base_url: base_url.unwrap_or(d.base_url),
            ttl: flag.ttl.or(file.ttl).unwrap_or(d.ttl),
            timeout: flag.timeout.or(file.timeout).map(Duration::from).unwrap_or(d.timeout),
            retries: flag.retries.or(file.retries).unwrap_or(d.retries),
            concurrency: flag.concurrency.or(file.concurrency).map_or(d.concurrency, ReadsInFlight::Exactly),
            deadline: flag.deadline.or(file.deadline).map(Duration::from).unwrap_or(d.deadline),
            approval_timeout: flag
                .approval_timeout
                .or(file.approval_timeout)
                .map(Duration::from)
                .unwrap_or(d.approval_timeout),
            allow_insecure_http: flags.allow_insecure_http,
            agent_key_file: flags.agent_key_file.clone(),
            vault_token_file: flags.vault_token_file.clone(),
            env,
        };
        if s.ttl.is_zero() {
            return Err(SettingsError("--ttl must be more than 0 (e.g. 5m)".into()));
        }
        if s.timeout.is_zero() {
            return Err(SettingsError("--timeout must be more than 0 (e.g. 30s)".into()));
        }
        if s.deadline.is_zero() {
            return Err(SettingsError("--deadline must be more than 0 (e.g. 2m)".into()));
        }
        if s.concurrency == ReadsInFlight::Exactly(0) {
            return Err(SettingsError("--concurrency must be at least 1".into()));
        }
        Ok(s)
    }
}
