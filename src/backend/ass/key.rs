//! Finding the agent key: `ASS_AGENT_KEY`, then `--agent-key-file` (`ASS_AGENT_KEY_FILE`), then
//! systemd's `$CREDENTIALS_DIRECTORY/ass-agent-key`. Never from an argument value, which any
//! local user could read in `/proc/PID/cmdline`.

use std::path::{Path, PathBuf};

use crate::backend::{BackendError, FailureKind};
use crate::inherited::Snapshot;
use agentsecretstore::secret::AgentKey;

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
        "no agent key: export ASS_AGENT_KEY=ass_… (a variable set but not exported is not seen), or give --agent-key-file PATH (ASS_AGENT_KEY_FILE), or a systemd credential ass-agent-key",
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The key is looked up in the snapshot handed down, never in the process (which supervise
    /// mode wipes).
    #[test]
    fn key_comes_from_the_snapshot() {
        let (key, source) = load(None, &Snapshot::of(&[("ASS_AGENT_KEY", " ass_from_snapshot\n")])).unwrap();
        assert_eq!((key.expose(), source), ("ass_from_snapshot", KeySource::Env));
        let empty = load(None, &Snapshot::of(&[("ASS_AGENT_KEY", "  ")])).unwrap_err();
        assert!(empty.to_string().contains("ASS_AGENT_KEY is set but empty"));
        let dir = tempfile::tempdir().unwrap();
        let none = load(None, &Snapshot::of(&[("CREDENTIALS_DIRECTORY", dir.path().to_str().unwrap())]));
        assert!(none.unwrap_err().to_string().contains("no agent key"));
    }
}
