//! The seed file (`vault-run dev --seed FILE`, TOML): secrets, agents and a fixed admin key.
//!
//! ```toml
//! [admin]
//! key = "ass_admin_fixed"
//!
//! [[agent]]
//! name = "ci"
//! key = "ass_fixed_ci_key"              # optional: random when absent
//! allowed_scopes = ["secrets:*:*"]      # optional: this is the default
//!
//! [[secret]]
//! path = "production/db/PASSWORD"
//! value = "…"
//! secret_type = "db_credential"         # optional, default custom
//! access_tier = "sensitive"             # optional, default standard
//! metadata = { owner = "team-a" }       # optional
//! ttl = "1h"                            # optional: expires that long after start
//! ```
//!
//! Errors name the entry and, where TOML gives one, the line and column. They never quote a
//! value: TOML's own error display shows the offending source line, which may be a secret.

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::duration::HumanDuration;
use crate::path::{Scope, SecretPath};
use crate::secret::{AdminKey, AgentKey, SecretString};
use crate::wire::{AccessTier, Metadata, SecretType, SecretWriteRequest};

use super::error::sanitize_serde_message;

/// A parsed, checked seed.
#[derive(Clone, Debug, Default)]
pub struct Seed {
    /// Secrets to create at start.
    pub secrets: Vec<SeedSecret>,
    /// Agents; the first one's key is the printed `ASS_AGENT_KEY`.
    pub agents: Vec<SeedAgent>,
    /// A fixed admin key.
    pub admin_key: Option<AdminKey>,
}

/// One `[[secret]]`.
#[derive(Clone, Debug)]
pub struct SeedSecret {
    /// Where.
    pub path: SecretPath,
    /// What (value, type, tier, metadata, ttl).
    pub write: SecretWriteRequest,
}

/// One `[[agent]]`.
#[derive(Clone, Debug)]
pub struct SeedAgent {
    /// Display name.
    pub name: String,
    /// A fixed key, or random.
    pub key: Option<AgentKey>,
    /// Scope patterns it may ask for.
    pub allowed_scopes: Vec<Scope>,
}

/// A seed that could not be used; one line, no values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("seed {origin}: {message}")]
pub struct SeedError {
    origin: String,
    message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    secret: Vec<Spanned<RawSecret>>,
    #[serde(default)]
    agent: Vec<Spanned<RawAgent>>,
    #[serde(default)]
    admin: Option<RawAdmin>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecret {
    path: String,
    value: SecretString,
    #[serde(default)]
    secret_type: Option<SecretType>,
    #[serde(default)]
    access_tier: Option<AccessTier>,
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    ttl: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    name: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    allowed_scopes: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    key: String,
}

/// Only the entries' extents, to say which entry a type error is in.
#[derive(Deserialize)]
struct Extents {
    #[serde(default)]
    secret: Vec<Spanned<toml::Value>>,
    #[serde(default)]
    agent: Vec<Spanned<toml::Value>>,
}

/// `line L, column C` of a byte offset.
fn position(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}")
}

impl Seed {
    /// Reads and checks a seed file.
    pub fn from_file(path: &Path) -> Result<Self, SeedError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| SeedError { origin: origin.clone(), message: format!("cannot read it: {e}") })?;
        Self::parse(&text, &origin)
    }

    /// Parses and checks seed text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, SeedError> {
        let fail =
            |message: String| SeedError { origin: origin.to_owned(), message: message.replace('\n', " ") };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let message = sanitize_serde_message(e.message());
            match e.span() {
                Some(span) => {
                    let entry = entry_at(text, &span).map(|n| format!(" ({n})")).unwrap_or_default();
                    fail(format!("{}{entry}: {message}", position(text, span.start)))
                }
                None => fail(message),
            }
        })?;
        let mut seed = Seed::default();
        for (i, s) in raw.secret.into_iter().enumerate() {
            let pos = position(text, s.span().start);
            let at = |msg: String| fail(format!("{pos} ([[secret]] #{}): {msg}", i + 1));
            let s = s.into_inner();
            let path: SecretPath = s.path.parse().map_err(|e| at(format!("path: {e}")))?;
            if seed.secrets.iter().any(|o: &SeedSecret| o.path == path) {
                return Err(at(format!("path {path} is seeded twice")));
            }
            if s.ttl.is_some_and(HumanDuration::is_zero) {
                return Err(at("ttl must be greater than zero".into()));
            }
            crate::state::check_known_kinds(s.secret_type.as_ref(), s.access_tier.as_ref()).map_err(at)?;
            let write = SecretWriteRequest {
                value: s.value,
                secret_type: s.secret_type,
                access_tier: s.access_tier,
                metadata: s.metadata,
                ttl: s.ttl,
            };
            seed.secrets.push(SeedSecret { path, write });
        }
        for (i, a) in raw.agent.into_iter().enumerate() {
            let pos = position(text, a.span().start);
            let at = |msg: String| fail(format!("{pos} ([[agent]] #{}): {msg}", i + 1));
            let a = a.into_inner();
            if a.name.trim().is_empty() {
                return Err(at("name must not be empty".into()));
            }
            let key = match a.key {
                None => None,
                Some(k) if !k.starts_with("ass_") || k.starts_with("ass_admin_") || k.len() < 8 => {
                    return Err(at(
                        "key must start with ass_ (and not ass_admin_) and be at least 8 characters".into(),
                    ))
                }
                Some(k) if k.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                    return Err(at("key must not contain spaces or control characters".into()))
                }
                Some(k) if seed.agents.iter().any(|o| o.key.as_ref().is_some_and(|ok| ok.expose() == k)) => {
                    return Err(at("key is already used by another agent".into()))
                }
                Some(k) => Some(AgentKey::new(k)),
            };
            let scopes = a.allowed_scopes.unwrap_or_else(|| vec!["secrets:*:*".into()]);
            let allowed_scopes = scopes
                .iter()
                .map(|s| s.parse::<Scope>().map_err(|e| at(format!("allowed_scopes: {e}"))))
                .collect::<Result<Vec<_>, _>>()?;
            seed.agents.push(SeedAgent { name: a.name.trim().to_owned(), key, allowed_scopes });
        }
        if let Some(admin) = raw.admin {
            let k = admin.key;
            if !k.starts_with("ass_admin_")
                || k.len() <= "ass_admin_".len()
                || k.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(fail("[admin] key must start with ass_admin_ and have no spaces".into()));
            }
            if seed.agents.iter().any(|a| a.key.as_ref().is_some_and(|ak| ak.expose() == k)) {
                return Err(fail("[admin] key is also an agent's key".into()));
            }
            seed.admin_key = Some(AdminKey::new(k));
        }
        Ok(seed)
    }
}

/// Which `[[secret]]`/`[[agent]]` entry a byte range falls in, if the file parses that far.
fn entry_at(text: &str, span: &Range<usize>) -> Option<String> {
    let extents: Extents = toml::from_str(text).ok()?;
    let find = |list: &[Spanned<toml::Value>], table: &str| {
        list.iter().enumerate().find(|(_, e)| e.span().start <= span.start && span.start < e.span().end).map(
            |(i, e)| match e.get_ref().get("path").and_then(toml::Value::as_str) {
                Some(p) => format!("[[{table}]] #{}, path {p:?}", i + 1),
                None => format!("[[{table}]] #{}", i + 1),
            },
        )
    };
    find(&extents.secret, "secret").or_else(|| find(&extents.agent, "agent"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_seed() {
        let text = r#"
[admin]
key = "ass_admin_fixed"

[[agent]]
name = "ci"
key = "ass_fixed_ci"
allowed_scopes = ["secrets:read:production/*"]

[[agent]]
name = "other"

[[secret]]
path = "production/db/PASSWORD"
value = "pw-value"
secret_type = "db_credential"
access_tier = "sensitive"
metadata = { owner = "team-a" }
ttl = "1h"
"#;
        let s = Seed::parse(text, "t.toml").unwrap();
        assert_eq!(s.admin_key.unwrap().expose(), "ass_admin_fixed");
        assert_eq!(s.agents.len(), 2);
        assert_eq!(s.agents[0].key.as_ref().unwrap().expose(), "ass_fixed_ci");
        assert_eq!(s.agents[1].allowed_scopes[0].to_string(), "secrets:*:*");
        let sec = &s.secrets[0];
        assert_eq!(sec.path.namespace(), "production/db");
        assert_eq!(sec.write.access_tier, Some(AccessTier::Sensitive));
        assert_eq!(sec.write.metadata.as_ref().unwrap()["owner"], "team-a");
        assert_eq!(sec.write.ttl, Some(HumanDuration::from_secs(3600)));
    }

    #[test]
    fn errors_name_the_entry_and_never_the_value() {
        let text = "[[secret]]\npath = \"a/B\"\nvalue = \"ok-value\"\n\n[[secret]]\npath = \"a/C\"\nvalue = 424242\n";
        let e = Seed::parse(text, "s.toml").unwrap_err().to_string();
        assert!(e.contains("line 7"), "{e}");
        assert!(e.contains("[[secret]] #2"), "{e}");
        assert!(!e.contains("424242"), "{e}");

        let e =
            Seed::parse("[[secret]]\npath = \"NOSLASH\"\nvalue = \"v\"\n", "s.toml").unwrap_err().to_string();
        assert!(e.contains("[[secret]] #1") && e.contains("path"), "{e}");
        let e = Seed::parse("[[secret]]\npath = \"a/b\"\nvaule = \"v\"\n", "s.toml").unwrap_err().to_string();
        assert!(e.contains("vaule") && e.contains("line 3"), "{e}");
        let e = Seed::parse("[[agent]]\nname = \"x\"\nallowed_scopes = [\"bad\"]\n", "s.toml").unwrap_err();
        assert!(e.to_string().contains("[[agent]] #1"), "{e}");
        let e = Seed::parse("[admin]\nkey = \"nope\"\n", "s.toml").unwrap_err();
        assert!(e.to_string().contains("[admin]"), "{e}");
        let e = Seed::parse("[[secret]\n", "s.toml").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        let e =
            Seed::parse("[[secret]]\npath = \"a/b\"\nvalue = \"v\"\nttl = \"soon\"\n", "s.toml").unwrap_err();
        assert!(e.to_string().contains("ttl") || e.to_string().contains("duration"), "{e}");
    }
}
