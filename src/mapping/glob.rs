//! Glob references: an Agent Secret Store pattern (`production/stripe/*`) or every field of one
//! Vault secret (`vault://secret/app/db#*`). The scheme's backend checks and later expands them.

use super::reference::backend_and_rest;
use crate::backend::{GlobRef, ReferenceError};

/// Parses a glob entry's reference: an Agent Secret Store pattern (plain or `ass://`) or
/// `vault://MOUNT/PATH#*`. A reference to a single secret is refused.
pub fn parse_glob_reference(s: &str) -> Result<GlobRef, ReferenceError> {
    let (backend, rest) = backend_and_rest(s)?;
    backend.syntax.parse_glob(backend.scheme, s, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_fields() {
        let g = parse_glob_reference("vault://secret/app/db#*").unwrap();
        assert_eq!((g.scheme(), g.rest()), ("vault", "secret/app/db#*"));
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
        assert!(matches!(parse_glob_reference("vault://a/*#*"), Err(ReferenceError::Invalid { .. })));
        assert!(matches!(parse_glob_reference("x://a/*"), Err(ReferenceError::UnknownScheme(_))));
    }
}
