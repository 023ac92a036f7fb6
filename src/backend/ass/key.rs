//! Finding the agent key: `ASS_AGENT_KEY`, then `--agent-key-file` (`ASS_AGENT_KEY_FILE`), then
//! systemd's `$CREDENTIALS_DIRECTORY/ass-agent-key`. Never from an argument value, which any
//! local user could read in `/proc/PID/cmdline`.

use std::path::{Path, PathBuf};

use crate::backend::{BackendError, FailureKind};
use crate::inherited::Snapshot;
use crate::secret::AgentKey;

/// The systemd credential name holding the agent key, in `$CREDENTIALS_DIRECTORY`.
pub const SYSTEMD_CREDENTIAL: &str = "ass-agent-key";

/// Where the key was found (for `-v` logs; the key itself is never logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `ASS_AGENT_KEY`.
    Env,
    /// A file.
    File(PathBuf),
}

impl KeySource {
    /// Names the source (a variable or a file; never the key) for messages.
    pub fn describe(&self) -> String {
        match self {
            KeySource::Env => "ASS_AGENT_KEY".to_owned(),
            KeySource::File(path) => format!("file {}", path.display()),
        }
    }
}

/// Loads the agent key, first found wins; `env` is the environment the run started with.
pub fn load(key_file: Option<&Path>, env: &Snapshot) -> Result<(AgentKey, KeySource), BackendError> {
    if let Some(v) = env.var_os("ASS_AGENT_KEY") {
        let v = v.to_str().ok_or_else(|| config("ASS_AGENT_KEY is not valid UTF-8"))?;
        let key = v.trim();
        if key.is_empty() {
            return Err(config(
                "ASS_AGENT_KEY is set but empty; set it to the agent key (ass_…) or unset it",
            ));
        }
        return Ok((AgentKey::new(key), KeySource::Env));
    }
    if let Some(path) = key_file {
        return read_key_file(path).map(|k| (k, KeySource::File(path.to_owned())));
    }
    if let Some(dir) = env.var_os("CREDENTIALS_DIRECTORY") {
        let path = Path::new(dir).join(SYSTEMD_CREDENTIAL);
        if path.exists() {
            return read_key_file(&path).map(|k| (k, KeySource::File(path)));
        }
    }
    Err(config(
        "no agent key: set ASS_AGENT_KEY, or --agent-key-file PATH (ASS_AGENT_KEY_FILE), or a systemd credential ass-agent-key",
    )
    .with_reason("no agent key"))
}

fn read_key_file(path: &Path) -> Result<AgentKey, BackendError> {
    let shown = path.display();
    let buf = crate::backend::private_file::read(path, "agent key")?;
    let text =
        std::str::from_utf8(&buf).map_err(|_| config(format!("agent key file {shown} is not UTF-8")))?;
    let key = text.trim();
    if key.is_empty() {
        return Err(config(format!("agent key file {shown} is empty; write the agent key (ass_…) into it")));
    }
    Ok(AgentKey::new(key))
}

fn config(message: impl Into<String>) -> BackendError {
    BackendError::new(FailureKind::Config, message)
}
