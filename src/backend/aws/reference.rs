//! `aws-sm://NAME[?version-stage=STAGE][#KEY]` (one secret, or one key of a JSON secret) and
//! `aws-sm://PREFIX/*` (every secret whose name matches, by name prefix on the server).

use glob::{MatchOptions, Pattern};

use crate::backend::reference::{ReferenceError, Syntax};

/// How the mapping checks this backend's references.
pub const SYNTAX: Syntax = Syntax { single, glob };

/// `*` does not cross `/`, as in Agent Secret Store patterns.
const MATCH: MatchOptions =
    MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: false };

/// One secret, as checked.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretRef {
    /// The secret's name or ARN.
    pub id: String,
    /// `?version-stage=`: a staging label (`AWSPREVIOUS`); `None` reads `AWSCURRENT`.
    pub stage: Option<String>,
    /// `#KEY`: a key of the JSON object the secret holds.
    pub key: Option<String>,
}

/// Name and ARN characters Secrets Manager allows (`:` for ARNs).
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 2048 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-:".contains(&b))
}

/// Parses the rest of a single reference; `whole` is for messages.
pub fn parse(whole: &str, rest: &str) -> Result<SecretRef, ReferenceError> {
    let invalid = |reason| Err(ReferenceError::Invalid { reference: whole.to_owned(), reason });
    if rest.contains('*') {
        return Err(ReferenceError::Pattern(whole.to_owned()));
    }
    let (before_key, key) = match rest.split_once('#') {
        Some((b, k)) => (b, Some(k)),
        None => (rest, None),
    };
    let (id, query) = match before_key.split_once('?') {
        Some((id, q)) => (id, Some(q)),
        None => (before_key, None),
    };
    if !valid_id(id) {
        return invalid("needs a secret name (letters, digits and /_+=.@-) or ARN, like aws-sm://prod/db#password");
    }
    let stage = match query {
        None => None,
        Some(q) => match q.strip_prefix("version-stage=") {
            Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+=.@-".contains(&b)) => {
                Some(s.to_owned())
            }
            _ => return invalid("has a query other than ?version-stage=LABEL (like ?version-stage=AWSPREVIOUS)"),
        },
    };
    let key = match key {
        None => None,
        Some(k) if !k.is_empty() && !k.chars().any(char::is_control) => Some(k.to_owned()),
        Some(_) => return invalid("has an empty #KEY (or one with a control character); name the JSON key to read"),
    };
    Ok(SecretRef { id: id.to_owned(), stage, key })
}

impl SecretRef {
    /// The form the mapping keeps (and `check` shows).
    pub fn canonical(&self) -> String {
        let mut s = self.id.clone();
        if let Some(stage) = &self.stage {
            s.push_str("?version-stage=");
            s.push_str(stage);
        }
        if let Some(key) = &self.key {
            s.push('#');
            s.push_str(key);
        }
        s
    }
}

/// A glob: the literal name prefix the server filters by, and the pattern the names must match.
#[derive(Clone, Debug)]
pub struct SecretGlob {
    /// Everything before the first wildcard.
    pub prefix: String,
    compiled: Pattern,
}

impl SecretGlob {
    /// Checks `pattern` (without `aws-sm://`): a literal prefix, and wildcards only in the last
    /// `/` segment, whose matching text names the variable.
    pub fn new(whole: &str, pattern: &str) -> Result<Self, ReferenceError> {
        let bad = |reason: &str| ReferenceError::BadPattern { pattern: whole.to_owned(), reason: reason.to_owned() };
        if pattern.contains(['?', '#']) {
            return Err(bad("cannot use ?version-stage or #KEY; a glob reads every matching secret whole"));
        }
        let Some(meta) = pattern.find(['*', '[']) else { return Err(ReferenceError::NotPattern(whole.to_owned())) };
        let prefix = &pattern[..meta];
        if prefix.is_empty() {
            return Err(bad("needs a name prefix before the '*' (like aws-sm://prod/app/*): the server lists by prefix"));
        }
        if pattern[meta..].contains('/') {
            return Err(bad("may only have wildcards in its last segment (like aws-sm://prod/app/*)"));
        }
        if !valid_id(&pattern.replace(['*', '[', ']', '!'], "")) {
            return Err(bad("has characters a secret name cannot have"));
        }
        let compiled = Pattern::new(pattern).map_err(|e| bad(&format!("is not a valid pattern: {}", e.msg)))?;
        Ok(Self { prefix: prefix.to_owned(), compiled })
    }

    /// The variable key for a secret's name when it matches: its last segment.
    pub fn key_of<'n>(&self, name: &'n str) -> Option<&'n str> {
        self.compiled.matches_with(name, MATCH).then(|| name.rsplit('/').next().unwrap_or(name))
    }
}

fn single(whole: &str, rest: &str) -> Result<String, ReferenceError> {
    Ok(parse(whole, rest)?.canonical())
}

fn glob(whole: &str, rest: &str) -> Result<String, ReferenceError> {
    SecretGlob::new(whole, rest)?;
    Ok(rest.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singles() {
        let p = |r: &str| parse(&format!("aws-sm://{r}"), r);
        assert_eq!(p("prod/db").unwrap(), SecretRef { id: "prod/db".into(), stage: None, key: None });
        let r = p("prod/db?version-stage=AWSPREVIOUS#password").unwrap();
        assert_eq!((r.stage.as_deref(), r.key.as_deref()), (Some("AWSPREVIOUS"), Some("password")));
        assert_eq!(r.canonical(), "prod/db?version-stage=AWSPREVIOUS#password");
        assert!(p("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf").is_ok());
        assert!(matches!(p("prod/*"), Err(ReferenceError::Pattern(_))));
        for bad in ["", "a b", "db#", "db?stage=x", "db?version-stage=", "db?version-stage=a/b"] {
            assert!(matches!(p(bad), Err(ReferenceError::Invalid { .. })), "{bad}");
        }
    }

    #[test]
    fn globs() {
        let g = SecretGlob::new("aws-sm://prod/app/*", "prod/app/*").unwrap();
        assert_eq!(g.prefix, "prod/app/");
        assert_eq!(g.key_of("prod/app/API_KEY"), Some("API_KEY"));
        assert_eq!(g.key_of("prod/app/x/Y"), None);
        assert_eq!(g.key_of("prod/other/Y"), None);
        let k = |p: &str| SecretGlob::new(p, p).map(|_| ()).unwrap_err();
        assert!(matches!(k("prod/db"), ReferenceError::NotPattern(_)));
        assert!(matches!(k("*"), ReferenceError::BadPattern { .. }));
        assert!(matches!(k("prod/*/KEY"), ReferenceError::BadPattern { .. }));
        assert!(matches!(k("prod/*#key"), ReferenceError::BadPattern { .. }));
    }
}
