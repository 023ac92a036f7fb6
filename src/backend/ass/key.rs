//! Finding the agent key: `ASS_AGENT_KEY`, then `--agent-key-file` (`ASS_AGENT_KEY_FILE`), then
//! systemd's `$CREDENTIALS_DIRECTORY/ass-agent-key`. Never from an argument value, which any
//! local user could read in `/proc/PID/cmdline`.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::backend::{BackendError, FailureKind};
use crate::secret::AgentKey;

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

/// Loads the agent key, first found wins.
pub fn load(key_file: Option<&Path>) -> Result<(AgentKey, KeySource), BackendError> {
    if let Some(v) = std::env::var_os("ASS_AGENT_KEY") {
        let v = Zeroizing::new(v.into_string().map_err(|_| config("ASS_AGENT_KEY is not valid UTF-8"))?);
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
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let path = Path::new(&dir).join("ass-agent-key");
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
    let mut f = std::fs::File::open(path).map_err(|e| {
        config(format!("cannot open agent key file {shown}: {e}; check the path and permissions"))
    })?;
    if let Ok(meta) = f.metadata() {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %shown, "agent key file is readable by others; chmod 600 it");
        }
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(256));
    f.by_ref()
        .take(64 * 1024)
        .read_to_end(&mut buf)
        .map_err(|e| config(format!("cannot read agent key file {shown}: {e}")))?;
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
