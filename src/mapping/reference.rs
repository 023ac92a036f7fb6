//! Single-secret references: a plain path or `ass://PATH` (Agent Secret Store), or
//! `vault://MOUNT/PATH#FIELD` (a field of a Vault/OpenBao KV secret).

use std::fmt;
use std::str::FromStr;

use crate::path::{PathError, SecretPath};

/// Why a reference was refused. References are addresses, not values, so messages quote them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Nothing there.
    #[error("empty reference; write a secret path like production/app/API_KEY, ass://PATH or vault://MOUNT/PATH#FIELD")]
    Empty,
    /// `foo://…`.
    #[error("unknown scheme \"{0}://\"; use a plain path, ass://PATH or vault://MOUNT/PATH#FIELD")]
    UnknownScheme(String),
    /// A bad Agent Secret Store path.
    #[error(transparent)]
    Path(#[from] PathError),
    /// A pattern where one secret is needed.
    #[error("{0:?} is a pattern; only a glob entry, whose name has one '*' (like STRIPE_*), can use one")]
    Pattern(String),
    /// A single secret where a glob entry needs a pattern.
    #[error(
        "{0:?} names a single secret, but the name has a '*'; use a pattern like production/stripe/* or vault://MOUNT/PATH#*"
    )]
    NotPattern(String),
    /// A glob pattern that cannot be used.
    #[error("glob pattern {pattern:?} {reason}")]
    BadPattern {
        /// The pattern as written.
        pattern: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A malformed `vault://` reference.
    #[error("{reference:?} {reason}")]
    Vault {
        /// The reference as written.
        reference: String,
        /// What is wrong and how to fix it.
        reason: &'static str,
    },
}

/// A field of a Vault/OpenBao KV secret: `vault://secret/app/db#password`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VaultRef {
    /// Everything between `vault://` and `#`, mount included: the backend finds the mount.
    pub path: String,
    /// The field.
    pub field: String,
}

/// One secret.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reference {
    /// An Agent Secret Store secret.
    Ass(SecretPath),
    /// A field of a Vault/OpenBao KV secret.
    Vault(VaultRef),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Ass(p) => write!(f, "{p}"),
            Reference::Vault(v) => write!(f, "vault://{}#{}", v.path, v.field),
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_reference(s)
    }
}

/// Where a reference points, before the part after the scheme is checked.
pub(crate) enum Scheme<'a> {
    /// Plain path or `ass://`: the rest.
    Ass(&'a str),
    /// `vault://`: the path and the field (after the first `#`), if any.
    Vault { path: &'a str, field: Option<&'a str> },
}

/// Splits off the scheme. Only `ass` and `vault` (in any case) are known; text before `://` that
/// is not scheme-like (`a/b://c`) is left to the path check.
pub(crate) fn split_scheme(s: &str) -> Result<Scheme<'_>, ReferenceError> {
    if s.is_empty() {
        return Err(ReferenceError::Empty);
    }
    let Some((scheme, rest)) = s.split_once("://") else { return Ok(Scheme::Ass(s)) };
    let scheme_like = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    if !scheme_like {
        return Ok(Scheme::Ass(s));
    }
    if scheme.eq_ignore_ascii_case("ass") {
        Ok(Scheme::Ass(rest))
    } else if scheme.eq_ignore_ascii_case("vault") {
        let (path, field) = match rest.split_once('#') {
            Some((p, f)) => (p, Some(f)),
            None => (rest, None),
        };
        Ok(Scheme::Vault { path, field })
    } else {
        Err(ReferenceError::UnknownScheme(scheme.chars().take(40).collect()))
    }
}

/// Checks the path part of a `vault://` reference: `MOUNT/PATH`, no empty segment, no `*`.
pub(crate) fn check_vault_path(whole: &str, path: &str) -> Result<(), ReferenceError> {
    let err = |reason| Err(ReferenceError::Vault { reference: whole.to_owned(), reason });
    if path.contains('*') {
        return err("has '*' in its path; only #* (every field of one secret) is supported");
    }
    if path.chars().any(char::is_control) {
        return err("contains a control character");
    }
    // URLs resolve `.` and `..`: the token would be sent to another API path than the KV read.
    if path.split('/').any(|p| p == "." || p == "..") {
        return err(
            "has a '.' or '..' segment, which would reach another API path; name the secret without them",
        );
    }
    if path.split('/').count() < 2 || path.split('/').any(str::is_empty) {
        return err(
            "needs a path of the form MOUNT/PATH without empty segments, like vault://secret/app/db#password",
        );
    }
    Ok(())
}

/// Parses a single-secret reference: `production/app/KEY`, `ass://production/app/KEY` or
/// `vault://secret/app/db#password`. Patterns (`*`, `#*`) are refused: see
/// [`parse_glob_reference`](super::parse_glob_reference).
pub fn parse_reference(s: &str) -> Result<Reference, ReferenceError> {
    match split_scheme(s)? {
        Scheme::Ass(path) => {
            if path.contains('*') {
                return Err(ReferenceError::Pattern(s.to_owned()));
            }
            Ok(Reference::Ass(path.parse()?))
        }
        Scheme::Vault { path, field } => {
            check_vault_path(s, path)?;
            let reason = match field {
                Some("*") => return Err(ReferenceError::Pattern(s.to_owned())),
                Some(f) if !f.is_empty() && !f.chars().any(char::is_control) => {
                    return Ok(Reference::Vault(VaultRef { path: path.to_owned(), field: f.to_owned() }))
                }
                Some(f) if !f.is_empty() => "has a control character in its field",
                _ => "needs a #FIELD naming the field to read, like vault://secret/app/db#password",
            };
            Err(ReferenceError::Vault { reference: s.to_owned(), reason })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ass(s: &str) -> Reference {
        Reference::Ass(s.parse().unwrap())
    }

    #[test]
    fn plain_and_ass_paths() {
        assert_eq!(
            parse_reference("production/gemini/GEMINI_API_KEY").unwrap(),
            ass("production/gemini/GEMINI_API_KEY")
        );
        assert_eq!(parse_reference("ass://production/gemini/KEY").unwrap(), ass("production/gemini/KEY"));
        assert_eq!(parse_reference("ASS://a/b").unwrap(), ass("a/b"));
        let Reference::Ass(p) = parse_reference("ass://a/b/c").unwrap() else { panic!() };
        assert_eq!((p.namespace(), p.key()), ("a/b", "c"));
        assert_eq!(parse_reference("ass://a/b").unwrap().to_string(), "a/b");
    }

    #[test]
    fn vault_references() {
        let r = parse_reference("vault://secret/app/db#password").unwrap();
        assert_eq!(r, Reference::Vault(VaultRef { path: "secret/app/db".into(), field: "password".into() }));
        assert_eq!(r.to_string(), "vault://secret/app/db#password");
        // Only the first '#' splits: a field may hold '#'.
        let Reference::Vault(v) = parse_reference("vault://kv/x#a#b").unwrap() else { panic!() };
        assert_eq!((v.path.as_str(), v.field.as_str()), ("kv/x", "a#b"));
    }

    #[test]
    fn errors() {
        assert_eq!(parse_reference(""), Err(ReferenceError::Empty));
        assert_eq!(parse_reference("foo://a/b"), Err(ReferenceError::UnknownScheme("foo".into())));
        assert_eq!(
            parse_reference("foo://a/b").unwrap_err().to_string(),
            "unknown scheme \"foo://\"; use a plain path, ass://PATH or vault://MOUNT/PATH#FIELD"
        );
        assert!(matches!(parse_reference("KEY"), Err(ReferenceError::Path(PathError::TooShort(_)))));
        assert!(matches!(parse_reference("ass://"), Err(ReferenceError::Path(PathError::TooShort(_)))));
        assert!(matches!(parse_reference("a/b://c"), Err(ReferenceError::Path(PathError::EmptySegment(_)))));
        assert_eq!(parse_reference("a/*"), Err(ReferenceError::Pattern("a/*".into())));
        assert_eq!(parse_reference("vault://a/b#*"), Err(ReferenceError::Pattern("vault://a/b#*".into())));
        assert_eq!(
            parse_reference("vault://secret/app/db").unwrap_err().to_string(),
            "\"vault://secret/app/db\" needs a #FIELD naming the field to read, like vault://secret/app/db#password"
        );
        for bad in [
            "vault://a/b#",
            "vault://secret#x",
            "vault://#x",
            "vault:///a#x",
            "vault://a//b#x",
            "vault://a/*#x",
        ] {
            assert!(matches!(parse_reference(bad), Err(ReferenceError::Vault { .. })), "{bad}");
        }
    }
}
