//! Agent Secret Store patterns (`production/stripe/*`): the backend lists the namespace and
//! keeps the matches.

use glob::{MatchOptions, Pattern};

use crate::backend::reference::ReferenceError;
use agentsecretstore::path::{Action, Scope, SecretPath};

/// `*` does not cross `/`, so `production/*` does not reach `production/a/KEY`.
const MATCH: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// Characters that make a segment a pattern in `glob::Pattern` syntax.
fn has_meta(segment: &str) -> bool {
    segment.contains(['*', '?', '['])
}

/// An Agent Secret Store pattern, compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssGlob {
    pattern: String,
    compiled: Pattern,
    prefix: String,
}

impl AssGlob {
    /// Checks and compiles `pattern` (without `ass://`): whole segments, a literal first segment
    /// (the namespace to list), and a wildcard in the last segment, since the secret's key names
    /// the variable and a literal key would give every match the same name.
    pub fn new(pattern: &str) -> Result<Self, ReferenceError> {
        let bad = |reason: &str| ReferenceError::BadPattern {
            pattern: pattern.to_owned(),
            reason: reason.to_owned(),
        };
        if pattern.chars().any(char::is_control) {
            return Err(bad("contains a control character"));
        }
        let segments: Vec<&str> = pattern.split('/').collect();
        if segments.len() < 2 || segments.iter().any(|s| s.is_empty()) {
            return Err(bad(
                "needs a namespace and a key pattern without empty segments, like production/stripe/*",
            ));
        }
        if !has_meta(segments[segments.len() - 1]) {
            return Err(bad(
                "needs a wildcard in its last segment, since each secret's key names its variable",
            ));
        }
        let literal: Vec<&str> =
            segments[..segments.len() - 1].iter().copied().take_while(|s| !has_meta(s)).collect();
        if literal.is_empty() {
            return Err(bad("needs a literal first segment (the namespace to list), like production/*"));
        }
        let compiled = Pattern::new(pattern).map_err(|e| bad(&format!("is invalid: {}", e.msg)))?;
        Ok(Self { pattern: pattern.to_owned(), compiled, prefix: literal.join("/") })
    }

    /// The pattern as written, without `ass://`.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The namespace to list: the longest run of whole literal segments before the first
    /// wildcard (`production/stripe` for `production/stripe/*`, `production` for `production/*/KEY_*`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The scope pattern that covers every possible match: `<prefix>/*`.
    pub fn scope_pattern(&self) -> String {
        format!("{}/*", self.prefix)
    }

    /// `secrets:read:<prefix>/*`.
    pub fn scope(&self) -> Scope {
        Scope::new(Action::Read, self.scope_pattern())
    }

    /// Whether `path` matches (`*` and `?` do not cross `/`).
    pub fn matches(&self, path: &SecretPath) -> bool {
        self.compiled.matches_with(&path.to_string(), MATCH)
    }
}

/// Whether a pattern has a wildcard anywhere (a glob) or names one secret.
pub(crate) fn is_pattern(pattern: &str) -> bool {
    pattern.split('/').any(has_meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::mapping::parse_glob_reference;

    /// Through the mapping's parser, as a glob entry's pattern gets here.
    fn ass_glob(s: &str) -> AssGlob {
        let g = parse_glob_reference(s).unwrap();
        assert_eq!(g.scheme(), "ass", "{s}");
        AssGlob::new(g.rest()).unwrap()
    }

    fn path(s: &str) -> SecretPath {
        s.parse().unwrap()
    }

    #[test]
    fn ass_glob_prefix_scope_and_matching() {
        let g = ass_glob("production/stripe/*");
        assert_eq!(g.prefix(), "production/stripe");
        assert_eq!(g.scope_pattern(), "production/stripe/*");
        assert_eq!(g.scope().to_string(), "secrets:read:production/stripe/*");
        assert!(g.matches(&path("production/stripe/SECRET_KEY")));
        assert!(!g.matches(&path("production/stripe/sub/KEY")));
        assert!(!g.matches(&path("production/stripey/KEY")));

        let g = ass_glob("ass://production/*/KEY_*");
        assert_eq!(g.prefix(), "production");
        assert_eq!(g.pattern(), "production/*/KEY_*");
        assert!(g.matches(&path("production/a/KEY_1")));
        assert!(!g.matches(&path("production/a/b/KEY_1")));

        let g = ass_glob("prod/app/API_?");
        assert!(g.matches(&path("prod/app/API_1")) && !g.matches(&path("prod/app/API_12")));
        let g = ass_glob("prod/app/[AB]*");
        assert!(g.matches(&path("prod/app/BX")) && !g.matches(&path("prod/app/CX")));
        assert_eq!(g.pattern(), "prod/app/[AB]*");
        assert_eq!(parse_glob_reference("prod/app/[AB]*").unwrap().to_string(), "prod/app/[AB]*");
    }
}
