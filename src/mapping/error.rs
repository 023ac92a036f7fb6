//! Where an entry came from ([`Origin`]) and everything that can be wrong with a mapping
//! ([`MappingError`]). Messages say what, where and how to fix it, and never hold a value that
//! could be secret (defaults, template text, inherited variables that are not references).

use std::fmt;
use std::path::PathBuf;

use super::name::NameError;
use super::template::TemplateError;
use crate::backend::ReferenceError;

/// Where an entry (or a problem) is, for messages.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A place in the mapping file; line and column are 1-based, the column in characters.
    File {
        /// The file as the user named it.
        path: PathBuf,
        /// Line.
        line: usize,
        /// Column.
        column: usize,
    },
    /// The `index`-th `-e` flag, counting from 1.
    Flag {
        /// Which `-e`.
        index: usize,
    },
    /// An inherited variable whose whole value is a reference.
    EnvRef {
        /// The variable.
        name: String,
    },
    /// A `NAME=ref` line of an `--env-file`.
    EnvFile {
        /// The file as the user named it (boxed: keeps every error small).
        path: Box<std::path::Path>,
        /// The variable.
        name: Box<str>,
    },
}

impl fmt::Display for Origin {
    /// `vault-run.toml:7:1`, `-e #2`, `environment variable FOO`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line, column } => write!(f, "{}:{line}:{column}", path.display()),
            Origin::Flag { index } => write!(f, "-e #{index}"),
            Origin::EnvRef { name } => write!(f, "environment variable {name}"),
            Origin::EnvFile { path, name } => write!(f, "{} ({name})", path.display()),
        }
    }
}

/// `NAME: ` before a message, unless the origin already names the variable.
fn subject(origin: &Origin, name: &str) -> String {
    match origin {
        Origin::EnvRef { name: n } if n == name => String::new(),
        Origin::EnvFile { name: n, .. } if **n == *name => String::new(),
        _ => format!("{name}: "),
    }
}

/// Why the mapping (file, `-e` flags, environment references) cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// The file is not valid TOML (toml's message, on one line).
    #[error("{origin}: {message}")]
    Toml {
        /// Where toml stopped.
        origin: Origin,
        /// What it said.
        message: String,
    },
    /// A `-e` flag that is not `NAME=REF` at all: a usage error, not a mapping one.
    #[error("{origin}: expected NAME=REF, like -e API_KEY=production/app/API_KEY")]
    FlagSyntax {
        /// Which flag.
        origin: Origin,
    },
    /// A field, table, flag or combination of options that is not allowed.
    #[error("{origin}: {message}")]
    Schema {
        /// Where.
        origin: Origin,
        /// What and how to fix it.
        message: String,
    },
    /// A bad reference (or glob pattern).
    #[error("{origin}: {}{source}", subject(.origin, .name))]
    Reference {
        /// Where the reference is.
        origin: Origin,
        /// The entry's name or glob key.
        name: String,
        /// Why.
        source: ReferenceError,
    },
    /// A bad template; the origin points at the problem inside the string when it can.
    #[error("{origin}: {name}: {source}")]
    Template {
        /// Where.
        origin: Origin,
        /// The entry's name.
        name: String,
        /// Why.
        source: TemplateError,
    },
    /// A bad or refused variable name.
    #[error("{origin}: {source}")]
    Name {
        /// Where.
        origin: Origin,
        /// Why.
        source: NameError,
    },
    /// `${VAR}` names a variable that is not set, and no `${VAR:-default}` was given.
    #[error("{origin}: {}${{{var}}} is not set in vault-run's environment; set {var} or write ${{{var}:-default}}", subject(.origin, .name))]
    Unset {
        /// Where the reference is.
        origin: Origin,
        /// The entry (or `[store]` field).
        name: String,
        /// The unset variable.
        var: String,
    },
    /// `${VAR}` names a credential vault-run keeps from the child.
    #[error("{origin}: {}{message}", subject(.origin, .name))]
    Refused {
        /// Where the reference is.
        origin: Origin,
        /// The entry (or `[store]` field).
        name: String,
        /// Which variable, and why (never its value).
        message: String,
    },
    /// `${` without a closing `}`, or an empty or invalid name inside.
    #[error("{origin}: {}bad ${{…}}: {message}", subject(.origin, .name))]
    Expansion {
        /// Where the reference is.
        origin: Origin,
        /// The entry (or `[store]` field).
        name: String,
        /// What is wrong.
        message: String,
    },
    /// Two entries set the same variable (or use the same glob key).
    #[error("{origin}: {name} is also set by {first}; keep only one of them (or narrow the glob)")]
    Duplicate {
        /// The variable or glob key.
        name: String,
        /// The entry seen first.
        first: Origin,
        /// The entry seen second.
        origin: Origin,
    },
}

impl MappingError {
    /// Where the problem is.
    pub fn origin(&self) -> &Origin {
        match self {
            MappingError::Toml { origin, .. }
            | MappingError::FlagSyntax { origin }
            | MappingError::Schema { origin, .. }
            | MappingError::Reference { origin, .. }
            | MappingError::Template { origin, .. }
            | MappingError::Name { origin, .. }
            | MappingError::Unset { origin, .. }
            | MappingError::Refused { origin, .. }
            | MappingError::Expansion { origin, .. }
            | MappingError::Duplicate { origin, .. } => origin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_display() {
        let file = Origin::File { path: "vault-run.toml".into(), line: 7, column: 1 };
        assert_eq!(file.to_string(), "vault-run.toml:7:1");
        assert_eq!(Origin::Flag { index: 2 }.to_string(), "-e #2");
        assert_eq!(Origin::EnvRef { name: "FOO".into() }.to_string(), "environment variable FOO");
    }

    #[test]
    fn reference_error_does_not_repeat_env_name() {
        let e = MappingError::Reference {
            origin: Origin::EnvRef { name: "FOO".into() },
            name: "FOO".into(),
            source: ReferenceError::Empty,
        };
        assert!(e.to_string().starts_with("environment variable FOO: empty reference"), "{e}");
        let e = MappingError::Reference {
            origin: Origin::Flag { index: 1 },
            name: "FOO".into(),
            source: ReferenceError::Empty,
        };
        assert!(e.to_string().starts_with("-e #1: FOO: empty reference"), "{e}");
    }
}
