//! References as the mapping keeps them: a scheme and the rest, checked by the backend that owns
//! the scheme (its [`Syntax`] in the registry), which alone knows what the rest means.

use std::fmt;

use agentsecretstore::path::PathError;

/// The scheme of a reference written without one (`production/app/KEY`).
pub const DEFAULT_SCHEME: &str = "ass";

/// Why a reference was refused. References are addresses, not values, so messages quote them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Nothing there.
    #[error("empty reference; write a secret path like production/app/API_KEY, {}", examples())]
    Empty,
    /// `foo://…`.
    #[error("unknown scheme \"{0}://\"; use a plain path, {hint}", hint = examples())]
    UnknownScheme(String),
    /// A bad Agent Secret Store path.
    #[error(transparent)]
    Path(#[from] PathError),
    /// A pattern where one secret is needed.
    #[error("{0:?} is a pattern; only a glob entry, whose name has one '*' (like STRIPE_*), can use one")]
    Pattern(String),
    /// A single secret where a glob entry needs a pattern.
    #[error("{0:?} names a single secret, but the name has a '*'; use a pattern like {hint}", hint = glob_examples())]
    NotPattern(String),
    /// A glob pattern that cannot be used.
    #[error("glob pattern {pattern:?} {reason}")]
    BadPattern {
        /// The pattern as written.
        pattern: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A reference its backend cannot read.
    #[error("{reference:?} {reason}")]
    Invalid {
        /// The reference as written.
        reference: String,
        /// What is wrong and how to fix it.
        reason: &'static str,
    },
}

/// One secret: a registered scheme and the rest, in the form its backend checked and keeps.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    scheme: &'static str,
    rest: String,
}

/// A pattern standing for every secret (or field) it matches: a scheme and the rest.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GlobRef {
    scheme: &'static str,
    rest: String,
}

macro_rules! scheme_and_rest {
    ($t:ty) => {
        impl $t {
            /// The backend's scheme (`ass`, `vault`, `file`).
            pub fn scheme(&self) -> &'static str {
                self.scheme
            }

            /// Everything after `SCHEME://`, as the backend's parser left it.
            pub fn rest(&self) -> &str {
                &self.rest
            }
        }

        impl fmt::Display for $t {
            /// As the user would write it; the default scheme is not shown.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if self.scheme == DEFAULT_SCHEME {
                    f.write_str(&self.rest)
                } else {
                    write!(f, "{}://{}", self.scheme, self.rest)
                }
            }
        }
    };
}
scheme_and_rest!(Reference);
scheme_and_rest!(GlobRef);

/// How a backend reads its references: it checks the rest and answers the form to keep.
#[derive(Clone, Copy)]
pub struct Syntax {
    /// Checks a single-secret reference: `whole` as written (for messages), `rest` after the
    /// scheme. A pattern must be refused with [`ReferenceError::Pattern`].
    pub single: fn(whole: &str, rest: &str) -> Result<String, ReferenceError>,
    /// Checks a glob entry's pattern; a reference to one secret is [`ReferenceError::NotPattern`].
    pub glob: fn(whole: &str, rest: &str) -> Result<String, ReferenceError>,
}

impl Syntax {
    /// Checks `rest` as a single reference of `scheme`.
    pub fn parse_single(
        &self,
        scheme: &'static str,
        whole: &str,
        rest: &str,
    ) -> Result<Reference, ReferenceError> {
        (self.single)(whole, rest).map(|rest| Reference { scheme, rest })
    }

    /// Checks `rest` as a glob of `scheme`.
    pub fn parse_glob(
        &self,
        scheme: &'static str,
        whole: &str,
        rest: &str,
    ) -> Result<GlobRef, ReferenceError> {
        (self.glob)(whole, rest).map(|rest| GlobRef { scheme, rest })
    }
}

/// The backends' reference examples for messages: `ass://PATH or vault://MOUNT/PATH#FIELD`.
pub fn examples() -> String {
    or_list(super::REGISTRY.iter().filter_map(|r| r.example).map(str::to_owned))
}

/// The backends' glob examples for messages: `production/stripe/* or vault://MOUNT/PATH#*`.
pub fn glob_examples() -> String {
    or_list(super::REGISTRY.iter().filter_map(|r| r.glob_example).map(str::to_owned))
}

/// `a`, `a or b`, `a, b or c`.
pub(super) fn or_list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// Splits off the scheme: `None` when there is none (the default scheme's plain path). Text
/// before `://` that is not scheme-like (`a/b://c`) is no scheme either.
pub fn split_scheme(s: &str) -> Result<(Option<&str>, &str), ReferenceError> {
    if s.is_empty() {
        return Err(ReferenceError::Empty);
    }
    let Some((scheme, rest)) = s.split_once("://") else { return Ok((None, s)) };
    let scheme_like = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    if !scheme_like {
        return Ok((None, s));
    }
    Ok((Some(scheme), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_start_with_the_first_backends() {
        let (singles, globs) = (examples(), glob_examples());
        assert!(
            singles.starts_with("ass://PATH") && singles.contains("vault://MOUNT/PATH#FIELD"),
            "{singles}"
        );
        assert!(
            globs.starts_with("production/stripe/*") && globs.contains("vault://MOUNT/PATH#*"),
            "{globs}"
        );
    }

    #[test]
    fn lists_read_as_prose() {
        assert_eq!(or_list(["a".to_owned()].into_iter()), "a");
        assert_eq!(or_list(["a", "b", "c"].map(str::to_owned).into_iter()), "a, b or c");
    }
}
