//! Secret paths (`production/gemini/GEMINI_API_KEY`) and scopes (`secrets:read:production/*`).

use std::fmt;
use std::str::FromStr;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};

/// Characters left as they are in a URL path segment; everything else is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes one path segment or query value.
pub fn encode_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Fewer than two non-empty segments.
    #[error("secret path {0:?} needs a namespace and a key, like production/app/API_KEY")]
    TooShort(String),
    /// An empty segment (`a//b`, a trailing `/`).
    #[error("secret path {0:?} has an empty segment; remove the doubled or trailing '/'")]
    EmptySegment(String),
    /// A `.` or `..` segment: URLs resolve them, so the request would go to another endpoint.
    #[error("secret path {0:?} has a '.' or '..' segment; name the secret without them")]
    DotSegment(String),
    /// Control characters or `*` in a plain path.
    #[error("secret path {0:?} contains a character that is not allowed (control character or '*')")]
    BadChar(String),
}

/// A secret's address: namespace (which may hold `/`) and key, split at the last `/`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretPath {
    // The whole path, kept as one string so scope checks and map lookups need no allocation.
    full: String,
    split: usize,
}

impl SecretPath {
    /// Builds a path from a namespace and a key, checking both.
    pub fn new(namespace: &str, key: &str) -> Result<Self, PathError> {
        format!("{namespace}/{key}").parse()
    }

    /// The namespace (`production/gemini`).
    pub fn namespace(&self) -> &str {
        &self.full[..self.split]
    }

    /// The key (`GEMINI_API_KEY`).
    pub fn key(&self) -> &str {
        &self.full[self.split + 1..]
    }

    /// The whole path (`production/gemini/GEMINI_API_KEY`).
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The URL path under `/v1/secrets/`: each segment percent-encoded, literal `/` between.
    pub fn url_path(&self) -> String {
        self.full.split('/').map(encode_segment).collect::<Vec<_>>().join("/")
    }

    /// The scope that lets `action` act on exactly this secret.
    pub fn scope(&self, action: Action) -> Scope {
        Scope { action, pattern: self.full.clone() }
    }
}

fn check_segments(s: &str, allow_star: bool) -> Result<(), PathError> {
    if s.chars().any(|c| c.is_control() || (!allow_star && c == '*')) {
        return Err(PathError::BadChar(s.to_owned()));
    }
    let segments: Vec<&str> = s.split('/').collect();
    if segments.iter().filter(|p| !p.is_empty()).count() < 2 {
        return Err(PathError::TooShort(s.to_owned()));
    }
    if segments.iter().any(|p| p.is_empty()) {
        return Err(PathError::EmptySegment(s.to_owned()));
    }
    if segments.iter().any(|p| *p == "." || *p == "..") {
        return Err(PathError::DotSegment(s.to_owned()));
    }
    Ok(())
}

impl FromStr for SecretPath {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        check_segments(s, false)?;
        let split = s.rfind('/').expect("checked: two segments");
        Ok(Self { full: s.to_owned(), split })
    }
}

impl fmt::Display for SecretPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl Serialize for SecretPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SecretPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// What a scope allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// `read`
    Read,
    /// `write`
    Write,
    /// `delete`
    Delete,
    /// `*`: every action.
    Any,
}

impl Action {
    /// The wire word.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
            Action::Delete => "delete",
            Action::Any => "*",
        }
    }
}

/// Why a scope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid scope {0:?}: expected secrets:<read|write|delete|*>:<pattern>, like secrets:read:production/*"
)]
pub struct ScopeError(String);

/// `secrets:<action>:<pattern>`, where `*` in the pattern matches any run of characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    action: Action,
    pattern: String,
}

impl Scope {
    /// A scope for `action` on `pattern` (`production/*`, `production/app/KEY`).
    pub fn new(action: Action, pattern: impl Into<String>) -> Self {
        Self { action, pattern: pattern.into() }
    }

    /// The action.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The pattern after `secrets:<action>:`.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether this (granted) scope covers `requested`, by the contract's rule: `*` alone covers
    /// everything, otherwise `*` matches any run of characters over the whole scope string.
    pub fn covers(&self, requested: &Scope) -> bool {
        self.matches(requested.action, &requested.pattern)
    }

    /// Whether this scope, used as a request, reaches the secret at `path` for `action`.
    pub fn reaches(&self, action: Action, path: &SecretPath) -> bool {
        self.matches(action, path.as_str())
    }

    /// `wildcard_match("secrets:<a>:<p>", "secrets:<action>:<pattern>")` without building either
    /// string: a token may hold a thousand scopes, checked on every read.
    fn matches(&self, action: Action, pattern: &str) -> bool {
        match self.action {
            // `secrets:*:*` (and a bare `*`) covers everything.
            Action::Any if self.pattern == "*" => true,
            // The granted action is a literal word: the texts agree up to the second ':' only
            // when the actions are the same word.
            Action::Read | Action::Write | Action::Delete => {
                self.action == action && wildcard_match(&self.pattern, pattern)
            }
            // `secrets:*:<p>`: the star may run across the ':' into the pattern, so match the
            // remainder as strings (rare: agents' allowed scopes, not tokens' exact ones).
            Action::Any => {
                wildcard_match(&format!("*:{}", self.pattern), &format!("{}:{pattern}", action.as_str()))
            }
        }
    }
}

/// A set of granted scopes with the exact ones (no `*`) hashed, so that checking a read against
/// a token scoped to a thousand secrets is one lookup, not a thousand matches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeSet {
    exact: std::collections::HashSet<Scope>,
    wild: Vec<Scope>,
}

impl ScopeSet {
    /// The set of `scopes`.
    pub fn new(scopes: impl IntoIterator<Item = Scope>) -> Self {
        let mut set = Self::default();
        for s in scopes {
            if s.pattern.contains('*') || s.action == Action::Any {
                set.wild.push(s);
            } else {
                set.exact.insert(s);
            }
        }
        set
    }

    /// Whether some scope in the set covers `requested`.
    pub fn covers(&self, requested: &Scope) -> bool {
        self.exact.contains(requested) || self.wild.iter().any(|g| g.covers(requested))
    }

    /// Whether some scope in the set reaches `path` for `action`.
    pub fn reaches(&self, action: Action, path: &SecretPath) -> bool {
        self.exact.contains(&path.scope(action)) || self.wild.iter().any(|g| g.reaches(action, path))
    }

    /// Every scope (exact ones in no particular order).
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.exact.iter().chain(&self.wild)
    }

    /// Number of scopes.
    pub fn len(&self) -> usize {
        self.exact.len() + self.wild.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "*" {
            return Ok(Self { action: Action::Any, pattern: "*".into() });
        }
        let err = || ScopeError(s.chars().take(200).collect());
        let rest = s.strip_prefix("secrets:").ok_or_else(err)?;
        let (action, pattern) = rest.split_once(':').ok_or_else(err)?;
        let action = match action {
            "read" => Action::Read,
            "write" => Action::Write,
            "delete" => Action::Delete,
            "*" => Action::Any,
            _ => return Err(err()),
        };
        if pattern.is_empty() || pattern.chars().any(char::is_control) {
            return Err(err());
        }
        Ok(Self { action, pattern: pattern.to_owned() })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "secrets:{}:{}", self.action.as_str(), self.pattern)
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Matches `text` against `pattern`, where `*` matches any run of characters (`/` included)
/// and the pattern `*` alone matches everything. Linear-time greedy matching with backtracking
/// to the last star only, so hostile patterns cannot blow up.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_last_slash() {
        let p: SecretPath = "production/gemini/GEMINI_API_KEY".parse().unwrap();
        assert_eq!(p.namespace(), "production/gemini");
        assert_eq!(p.key(), "GEMINI_API_KEY");
        assert_eq!(p.to_string(), "production/gemini/GEMINI_API_KEY");
    }

    #[test]
    fn rejects_short_and_empty() {
        assert!(matches!("KEY".parse::<SecretPath>(), Err(PathError::TooShort(_))));
        assert!(matches!("/KEY".parse::<SecretPath>(), Err(PathError::TooShort(_))));
        assert!(matches!("a//b".parse::<SecretPath>(), Err(PathError::EmptySegment(_))));
        assert!(matches!("a/b/".parse::<SecretPath>(), Err(PathError::EmptySegment(_))));
        assert!(matches!("a/*".parse::<SecretPath>(), Err(PathError::BadChar(_))));
    }

    #[test]
    fn url_path_encodes_segments() {
        let p: SecretPath = "prod ns/a b/K%Y".parse().unwrap();
        assert_eq!(p.url_path(), "prod%20ns/a%20b/K%25Y");
    }

    #[test]
    fn scope_matching_follows_contract() {
        let granted: Scope = "secrets:read:production/*".parse().unwrap();
        let p: SecretPath = "production/a/b/KEY".parse().unwrap();
        assert!(granted.reaches(Action::Read, &p));
        assert!(!granted.reaches(Action::Write, &p));
        let all: Scope = "secrets:*:*".parse().unwrap();
        assert!(all.reaches(Action::Delete, &p));
        let star: Scope = "*".parse().unwrap();
        assert!(star.covers(&"secrets:write:x/y".parse().unwrap()));
        let req: Scope = "secrets:read:*".parse().unwrap();
        assert!(!granted.covers(&req));
        let any_action: Scope = "secrets:*:production/*".parse().unwrap();
        assert!(!"secrets:read:production/*".parse::<Scope>().unwrap().covers(&any_action));
    }

    #[test]
    fn wildcard_basics() {
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(wildcard_match("a*", "a"));
        assert!(!wildcard_match("a*c", "abbb"));
        assert!(wildcard_match("*b*", "abc"));
        assert!(!wildcard_match("abc", "abcd"));
        assert!(wildcard_match("a**", "abc"));
    }

    #[test]
    fn scope_parse_errors() {
        for bad in ["", "secrets", "secrets:read", "secrets:list:x", "secrets:read:", "foo:read:x"] {
            assert!(bad.parse::<Scope>().is_err(), "{bad}");
        }
    }
}
