//! `--env-file FILE`: `.env` files as `op run --env-file` reads them. Each value that is a
//! reference (`ass://…`, `vault://…`) becomes a mapping entry; any other value is a literal
//! passed to the child as it is.
//!
//! The syntax is dotenvy's (quotes, `export`, comments, its `$VAR` substitution). `${VAR}` and
//! `${VAR:-default}` are vault-run's own, as in the mapping file (an unset variable without a
//! default is an error, never an empty string): they are hidden from dotenvy, whose
//! substitution would turn `${APP_ENV:-dev}` into nothing. dotenvy's parse errors quote the
//! offending line, which may hold a secret, so they are rewritten to name the file and line
//! number only.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::expand::{expand, ExpandError, Lookup};
use crate::inherited::InheritedVar;

/// Stands in for `${` while dotenvy parses (a private-use character no env file needs).
const BRACE: &str = "\u{E000}{";

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
        crate::backend::registry::is_env_reference(self.value.as_bytes())
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
    /// `${VAR}` in a literal with VAR unset and no default, or a bad `${…}`.
    #[error("{} ({name}): {message}", path.display())]
    Expand {
        /// The file.
        path: PathBuf,
        /// The variable being set.
        name: String,
        /// What is wrong (names the unset variable, never a value).
        message: String,
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
///
/// `${VAR}` is expanded with `vars` in literals here; references keep it, for the mapping to
/// expand (and report) like every other reference.
pub fn read_all(paths: &[PathBuf], vars: Lookup<'_>) -> Result<Vec<EnvFileVar>, EnvFileError> {
    let mut out: Vec<EnvFileVar> = Vec::new();
    for path in paths {
        for mut var in read(path)? {
            if !var.is_reference() {
                let expanded = expand(&var.value, vars).map_err(|e| EnvFileError::Expand {
                    path: path.clone(),
                    name: var.name.clone(),
                    message: match e {
                        ExpandError::Unset(v) => format!(
                            "${{{v}}} is not set in vault-run's environment; set {v} or write ${{{v}:-default}}"
                        ),
                        ExpandError::Bad(m) => format!("bad ${{…}}: {m}"),
                    },
                })?;
                if let std::borrow::Cow::Owned(v) = expanded {
                    var.value = Zeroizing::new(v);
                }
            }
            out.retain(|v| v.name != var.name);
            out.push(var);
        }
    }
    Ok(out)
}

fn read(path: &Path) -> Result<Vec<EnvFileVar>, EnvFileError> {
    let raw = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|source| EnvFileError::Read { path: path.to_owned(), source })?,
    );
    if raw.contains('\u{E000}') {
        return Err(EnvFileError::Other {
            path: path.to_owned(),
            message: "contains the character U+E000, which vault-run reserves; remove it".to_owned(),
        });
    }
    let text = Zeroizing::new(raw.replace("${", BRACE));
    let mut out = Vec::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((name, mut value)) => {
                let value = Zeroizing::new(if value.contains(BRACE) {
                    let restored = value.replace(BRACE, "${");
                    zeroize::Zeroize::zeroize(&mut value);
                    restored
                } else {
                    value
                });
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
    mut inherited: Vec<InheritedVar>,
    vars: &[EnvFileVar],
    no_override: bool,
) -> Vec<InheritedVar> {
    for v in vars.iter().filter(|v| !v.is_reference()) {
        let name = OsString::from(&v.name);
        let value = || Zeroizing::new(v.value.as_bytes().to_vec());
        if let Some(slot) = inherited.iter_mut().find(|(k, _)| *k == name) {
            if !no_override {
                slot.1 = value();
            }
        } else {
            inherited.push((name, value()));
        }
    }
    inherited
}
