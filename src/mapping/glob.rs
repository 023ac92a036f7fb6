//! Glob references: an Agent Secret Store pattern (`production/stripe/*`) or every field of one
//! Vault secret (`vault://secret/app/db#*`). The later stage lists and expands them.

use std::fmt;

use glob::{MatchOptions, Pattern};

use super::reference::{check_vault_path, split_scheme, ReferenceError, Scheme};
use crate::path::{Action, Scope, SecretPath};

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

/// What a glob entry expands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GlobRef {
    /// Every Agent Secret Store secret matching the pattern; the variable takes the secret's key.
    Ass(AssGlob),
    /// Every field of the Vault secret at `path` (mount included); the variable takes the field name.
    VaultFields {
        /// Everything between `vault://` and `#*`.
        path: String,
    },
}

impl fmt::Display for GlobRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GlobRef::Ass(g) => f.write_str(&g.pattern),
            GlobRef::VaultFields { path } => write!(f, "vault://{path}#*"),
        }
    }
}

/// Parses a glob entry's reference: an Agent Secret Store pattern (plain or `ass://`) or
/// `vault://MOUNT/PATH#*`. A reference to a single secret is refused.
pub fn parse_glob_reference(s: &str) -> Result<GlobRef, ReferenceError> {
    match split_scheme(s)? {
        Scheme::Ass(pattern) if pattern.split('/').any(has_meta) => Ok(GlobRef::Ass(AssGlob::new(pattern)?)),
        Scheme::Vault { path, field: Some("*") } => {
            check_vault_path(s, path)?;
            Ok(GlobRef::VaultFields { path: path.to_owned() })
        }
        _ => Err(ReferenceError::NotPattern(s.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ass_glob(s: &str) -> AssGlob {
        match parse_glob_reference(s).unwrap() {
            GlobRef::Ass(g) => g,
            other => panic!("{other:?}"),
        }
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
        assert_eq!(GlobRef::Ass(g).to_string(), "prod/app/[AB]*");
    }

    #[test]
    fn vault_fields() {
        let g = parse_glob_reference("vault://secret/app/db#*").unwrap();
        assert_eq!(g, GlobRef::VaultFields { path: "secret/app/db".into() });
        assert_eq!(g.to_string(), "vault://secret/app/db#*");
    }

    #[test]
    fn errors() {
        for single in ["production/stripe/KEY", "vault://secret/app/db#password", "vault://secret/app/db"] {
            assert_eq!(
                parse_glob_reference(single),
                Err(ReferenceError::NotPattern(single.into())),
                "{single}"
            );
        }
        let reason = |s: &str| match parse_glob_reference(s) {
            Err(ReferenceError::BadPattern { reason, .. }) => reason,
            other => panic!("{s}: {other:?}"),
        };
        assert!(reason("*/KEY_*").contains("literal first segment"), "{}", reason("*/KEY_*"));
        assert!(reason("production/*/KEY").contains("last segment"));
        assert!(reason("*").contains("namespace and a key"));
        assert!(reason("a//*").contains("empty segments"));
        assert!(reason("a/[*").starts_with("is invalid"));
        assert_eq!(
            parse_glob_reference("production/*/KEY").unwrap_err().to_string(),
            "glob pattern \"production/*/KEY\" needs a wildcard in its last segment, since each secret's key names its variable"
        );
        assert!(matches!(parse_glob_reference("vault://a/*#*"), Err(ReferenceError::Vault { .. })));
        assert!(matches!(parse_glob_reference("x://a/*"), Err(ReferenceError::UnknownScheme(_))));
    }
}
