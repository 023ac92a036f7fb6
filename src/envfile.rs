//! `--env-file FILE`: `.env` files as `op run --env-file` reads them. Each value that is a
//! reference (`ass://…`, `vault://…`) becomes a mapping entry; any other value is a literal
//! passed to the child as it is.
//!
//! The syntax is dotenvy's (quotes, `export`, comments, its own `$VAR` substitution in unquoted
//! and double-quoted values). dotenvy's parse errors quote the offending line, which may hold a
//! secret, so they are rewritten to name the file and line number only.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// One `NAME=value` of an env file.
pub struct EnvFileVar {
    /// The file it came from.
    pub path: PathBuf,
    /// Variable name.
    pub name: String,
    /// The value: a reference or a literal. Wiped when dropped (a literal may be sensitive).
    pub value: Zeroizing<String>,
}

impl std::fmt::Debug for EnvFileVar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvFileVar").field("path", &self.path).field("name", &self.name).finish()
    }
}

impl EnvFileVar {
    /// Whether the value is a secret reference (resolved) rather than a literal (passed through).
    pub fn is_reference(&self) -> bool {
        self.value.starts_with("ass://") || self.value.starts_with("vault://")
    }
}

/// An env file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    /// Not readable.
    #[error("cannot read env file {}: {source}; check --env-file", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Bad syntax.
    #[error("{}:{line}: cannot parse this line as NAME=value (dotenv syntax); fix or quote it", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line, 0 when unknown.
        line: usize,
    },
    /// Bad substitution or other parse problem.
    #[error("{}: {message}", path.display())]
    Other {
        /// The file.
        path: PathBuf,
        /// dotenvy's message (one that quotes no line).
        message: String,
    },
}

/// Reads every file in order; a later file's name wins over an earlier one's.
pub fn read_all(paths: &[PathBuf]) -> Result<Vec<EnvFileVar>, EnvFileError> {
    let mut out: Vec<EnvFileVar> = Vec::new();
    for path in paths {
        for var in read(path)? {
            out.retain(|v| v.name != var.name);
            out.push(var);
        }
    }
    Ok(out)
}

fn read(path: &Path) -> Result<Vec<EnvFileVar>, EnvFileError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|source| EnvFileError::Read { path: path.to_owned(), source })?,
    );
    let mut out = Vec::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((name, value)) => {
                let value = Zeroizing::new(value);
                out.retain(|v: &EnvFileVar| v.name != name);
                out.push(EnvFileVar { path: path.to_owned(), name, value });
            }
            Err(dotenvy::Error::LineParse(mut bad, _)) => {
                let line = text.lines().position(|l| l.contains(bad.as_str())).map_or(0, |i| i + 1);
                zeroize::Zeroize::zeroize(&mut bad);
                return Err(EnvFileError::Syntax { path: path.to_owned(), line });
            }
            Err(dotenvy::Error::Io(source)) => {
                return Err(EnvFileError::Read { path: path.to_owned(), source })
            }
            Err(_) => {
                return Err(EnvFileError::Other {
                    path: path.to_owned(),
                    message: "cannot parse the file as dotenv".to_owned(),
                })
            }
        }
    }
    Ok(out)
}

/// The inherited environment with the env files' literals set over it (or, with
/// `no_override`, under it: an inherited variable keeps its value).
pub fn with_literals(
    mut inherited: Vec<(OsString, OsString)>,
    vars: &[EnvFileVar],
    no_override: bool,
) -> Vec<(OsString, OsString)> {
    for v in vars.iter().filter(|v| !v.is_reference()) {
        let name = OsString::from(&v.name);
        if let Some(slot) = inherited.iter_mut().find(|(k, _)| *k == name) {
            if !no_override {
                slot.1 = OsString::from(v.value.as_str());
            }
        } else {
            inherited.push((name, OsString::from(v.value.as_str())));
        }
    }
    inherited
}
