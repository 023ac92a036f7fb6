//! Single-secret references: a plain path or `ass://PATH` (Agent Secret Store),
//! `vault://MOUNT/PATH#FIELD` (a field of a Vault/OpenBao KV secret), `file:///PATH` (a private
//! file). The scheme picks the registered backend, which checks the rest.

use crate::backend::reference::{split_scheme, DEFAULT_SCHEME};
use crate::backend::{registration, Reference, ReferenceError, Registration};

/// The backend a reference's scheme names (none: the default scheme's plain path).
/// Splits `s` into the backend registered for its scheme and the rest of the reference.
pub(crate) fn backend_and_rest(s: &str) -> Result<(&'static Registration, &str), ReferenceError> {
    let (scheme, rest) = split_scheme(s)?;
    Ok((backend_of(scheme)?, rest))
}

pub(crate) fn backend_of(scheme: Option<&str>) -> Result<&'static Registration, ReferenceError> {
    let scheme = scheme.unwrap_or(DEFAULT_SCHEME);
    registration(scheme).ok_or_else(|| ReferenceError::UnknownScheme(scheme.chars().take(40).collect()))
}

/// Parses a single-secret reference: `production/app/KEY`, `ass://production/app/KEY`,
/// `vault://secret/app/db#password` or `file:///run/secrets/db`. Patterns (`*`, `#*`) are
/// refused: see [`parse_glob_reference`](super::parse_glob_reference).
pub fn parse_reference(s: &str) -> Result<Reference, ReferenceError> {
    let (backend, rest) = backend_and_rest(s)?;
    backend.syntax.parse_single(backend.scheme, s, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::backend::vault::reference::{parse as vault, VaultRef};
    use agentsecretstore::path::PathError;

    fn ass(s: &str) -> Reference {
        let r = parse_reference(s).unwrap();
        assert_eq!(r.scheme(), "ass");
        r
    }

    #[test]
    fn plain_and_ass_paths() {
        assert_eq!(
            parse_reference("production/gemini/GEMINI_API_KEY").unwrap(),
            ass("production/gemini/GEMINI_API_KEY")
        );
        assert_eq!(parse_reference("ass://production/gemini/KEY").unwrap(), ass("production/gemini/KEY"));
        assert_eq!(parse_reference("ASS://a/b").unwrap(), ass("a/b"));
        let p = crate::backend::ass::reference::path(ass("ass://a/b/c").rest()).unwrap();
        assert_eq!((p.namespace(), p.key()), ("a/b", "c"));
        assert_eq!(parse_reference("ass://a/b").unwrap().to_string(), "a/b");
    }

    #[test]
    fn vault_references() {
        let r = parse_reference("vault://secret/app/db#password").unwrap();
        assert_eq!((r.scheme(), r.rest()), ("vault", "secret/app/db#password"));
        assert_eq!(
            vault(&r.to_string(), r.rest()).unwrap(),
            VaultRef { path: "secret/app/db".into(), field: "password".into() }
        );
        assert_eq!(r.to_string(), "vault://secret/app/db#password");
        // Only the first '#' splits: a field may hold '#'.
        let r = parse_reference("vault://kv/x#a#b").unwrap();
        let v = vault(&r.to_string(), r.rest()).unwrap();
        assert_eq!((v.path.as_str(), v.field.as_str()), ("kv/x", "a#b"));
    }

    #[test]
    fn errors() {
        assert_eq!(parse_reference(""), Err(ReferenceError::Empty));
        assert_eq!(parse_reference("foo://a/b"), Err(ReferenceError::UnknownScheme("foo".into())));
        assert_eq!(
            parse_reference("foo://a/b").unwrap_err().to_string(),
            format!("unknown scheme \"foo://\"; use a plain path, {}", crate::backend::reference::examples())
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
            assert!(matches!(parse_reference(bad), Err(ReferenceError::Invalid { .. })), "{bad}");
        }
    }
}
