//! Run settings: flags and environment win over the mapping file's `[store]` table, which wins
//! over the defaults.

use std::ffi::OsString;
use std::time::Duration;

use crate::backend::registry::{self, Destination, OptionSpec, OptionValues};
use crate::backend::ReadsInFlight;
use crate::inherited::Snapshot;
use crate::mapping::{FileSettings, Tuning};

/// The settings given on the command line (or by their environment variables): `None` where
/// not given, so the mapping file or the default applies.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--ttl`, `--timeout`, `--retries`, `--concurrency`, `--deadline`, `--approval-timeout`.
    pub tuning: Tuning,
    /// `--allow-insecure-http`.
    pub allow_insecure_http: bool,
    /// The backends' own flags (`--base-url`, `--agent-key-file`, …) and their variables.
    pub options: OptionValues,
}

/// Everything a run needs to know besides the mapping: the backends' options, which
/// [`Settings::merge`] fills in.
pub type Settings = crate::backend::Options;

/// Where a credential may be sent (`spec` declares a [`Destination`]). The rule: whoever
/// supplies the credential (flag, environment, systemd unit) decides where it goes; a mapping
/// file alone never does, since a repository can ship one and harvest the credential of whoever
/// runs `vault-run` in it.
///
/// - flag or its variable set: it wins; a differing file value gets one warning;
/// - only the file names a destination other than the default: refused (exit 78);
/// - the file names the default, or nothing: the default.
fn credential_destination(
    spec: &OptionSpec,
    key: &str,
    to: &Destination,
    flag: Option<&str>,
    file: Option<&str>,
) -> Result<Option<String>, SettingsError> {
    let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
    let given = match spec.env {
        Some(env) => format!("--{}/{env}", spec.flag),
        None => format!("--{}", spec.flag),
    };
    match (flag, file) {
        (Some(flag), Some(file)) => {
            if !same(flag, file) {
                tracing::warn!("the mapping file's {key} {file} is ignored; {given} ({flag}) is used");
            }
            Ok(Some(flag.to_owned()))
        }
        (Some(flag), None) => Ok(Some(flag.to_owned())),
        (None, Some(file)) if !same(file, to.default) => {
            let set = match spec.env {
                Some(env) => format!("set {env}={file} (or --{})", spec.flag),
                None => format!("set --{} {file}", spec.flag),
            };
            Err(SettingsError(format!(
                "the mapping file sets {key} = {file:?}, but a mapping file alone cannot choose where {} is sent; {set} to use it",
                to.credential
            )))
        }
        (None, _) => Ok(None),
    }
}

/// The backends' options: each flag (or its variable) given wins over the file's `[store]` key.
fn backend_options(flags: &OptionValues, file: &OptionValues) -> Result<OptionValues, SettingsError> {
    let mut out = OptionValues::default();
    for spec in registry::options() {
        let (flag, from_file) = (flags.get(spec), file.get(spec));
        let chosen = match spec.store.as_ref().and_then(|s| Some((s.key, s.credential_destination.as_ref()?)))
        {
            Some((key, to)) => {
                let text = |v: Option<&std::ffi::OsStr>| v.map(|v| v.to_string_lossy().into_owned());
                let (flag, from_file) = (text(flag), text(from_file));
                credential_destination(spec, key, to, flag.as_deref(), from_file.as_deref())?
                    .map(OsString::from)
            }
            None => flag.or(from_file).map(OsString::from),
        };
        if let Some(value) = chosen {
            out.set(spec, value);
        }
    }
    Ok(out)
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
        let backend = backend_options(&flags.options, &file.options)?;
        let (flag, file) = (&flags.tuning, &file.tuning);
        let s = Settings {
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
            backend,
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
