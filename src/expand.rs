//! Profiles through variables: `${VAR}` and `${VAR:-default}` in references, template
//! placeholders and `[store]` strings, taken from vault-run's own environment
//! (`"production/${APP_ENV:-dev}/db/PASSWORD"`).
//!
//! Only the braced forms are expanded: a bare `$` is left alone, so a path that happens to hold
//! one keeps working, and `$${` writes a literal `${`. As in the shell, `:-` also applies when the
//! variable is set but empty.

use std::borrow::Cow;

/// Looks a variable up in vault-run's environment: `Ok(None)` when it is unset, [`Refused`] for
/// a variable no expansion may read.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Result<Option<String>, Refused>;

/// A variable expansion must never read: a credential vault-run removes from the child (agent
/// key, Vault token, …). Its value would otherwise reach the child through an env file, or an
/// error line, `check`'s table and a server's request log through a reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

/// Why a string could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// `${VAR}` with VAR unset and no default.
    #[error("${{{0}}} is not set")]
    Unset(String),
    /// `${VAR}` names a variable expansion may not read (see [`Refused`]).
    #[error("refusing to expand ${{{0}}}: vault-run keeps {0} (a credential) from the child, and from every reference and message; write the value out, or use a variable of your own")]
    Refused(String),
    /// Syntax.
    #[error("{0}")]
    Bad(String),
}

/// Expands `${VAR}` and `${VAR:-default}` in `s`.
pub fn expand<'s>(s: &'s str, lookup: Lookup<'_>) -> Result<Cow<'s, str>, ExpandError> {
    if !s.contains("${") {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('$') {
            // `$${`: a literal `${`.
            out.push_str(&rest[..i - 1]);
            out.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let body_start = i + 2;
        let Some(len) = rest[body_start..].find('}') else {
            return Err(ExpandError::Bad("${ without a closing }".to_owned()));
        };
        let body = &rest[body_start..body_start + len];
        let (name, default) = match body.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(ExpandError::Bad(format!(
                "{:?} is not a variable name; write ${{NAME}} or ${{NAME:-default}}",
                name.chars().take(40).collect::<String>()
            )));
        }
        let value = lookup(name).map_err(|Refused| ExpandError::Refused(name.to_owned()))?;
        match (value, default) {
            (Some(v), Some(_)) if !v.is_empty() => out.push_str(&v),
            (Some(v), None) => out.push_str(&v),
            (_, Some(d)) => out.push_str(d),
            (None, None) => return Err(ExpandError::Unset(name.to_owned())),
        }
        rest = &rest[body_start + len + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// Expands only inside a template's `{{ … }}` placeholders: the literal text around them is
/// copied as written (it may be a shell snippet with its own `${…}`).
pub fn expand_placeholders<'s>(s: &'s str, lookup: Lookup<'_>) -> Result<Cow<'s, str>, ExpandError> {
    if !s.contains("${") {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open..].find("}}").map(|c| open + c) else { break };
        out.push_str(&rest[..open + 2]);
        out.push_str(&expand(&rest[open + 2..close], lookup)?);
        out.push_str("}}");
        rest = &rest[close + 2..];
    }
    // An unclosed placeholder is left for the template parser to report.
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Result<Option<String>, Refused> {
        match name {
            "APP_ENV" => Ok(Some("prod".into())),
            "EMPTY" => Ok(Some(String::new())),
            "ASS_AGENT_KEY" => Err(Refused),
            _ => Ok(None),
        }
    }

    #[test]
    fn forms() {
        let x = |s| expand(s, &env).map(|c| c.into_owned());
        assert_eq!(x("a/${APP_ENV}/b").unwrap(), "a/prod/b");
        assert_eq!(x("a/${NOPE:-dev}/b").unwrap(), "a/dev/b");
        assert_eq!(x("a/${APP_ENV:-dev}").unwrap(), "a/prod");
        assert_eq!(x("${EMPTY:-dflt}").unwrap(), "dflt");
        assert_eq!(x("${EMPTY}x").unwrap(), "x");
        assert_eq!(x("cost$5 $${LIT}").unwrap(), "cost$5 ${LIT}");
        assert_eq!(x("${NOPE}"), Err(ExpandError::Unset("NOPE".into())));
        assert!(matches!(x("${OPEN"), Err(ExpandError::Bad(_))));
        assert!(matches!(x("${1X}"), Err(ExpandError::Bad(_))));
        // A refused variable is refused with or without a default.
        assert_eq!(x("a/${ASS_AGENT_KEY:-x}"), Err(ExpandError::Refused("ASS_AGENT_KEY".into())));
    }

    #[test]
    fn templates_expand_inside_placeholders_only() {
        let t = "user=${USER} pw={{ ass://${APP_ENV}/db/PW }}";
        assert_eq!(expand_placeholders(t, &env).unwrap(), "user=${USER} pw={{ ass://prod/db/PW }}");
    }
}
