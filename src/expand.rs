//! Profiles through variables: `${VAR}` and `${VAR:-default}` in references, template
//! placeholders and `[store]` strings, taken from vault-run's own environment
//! (`"production/${APP_ENV:-dev}/db/PASSWORD"`).
//!
//! Only the braced forms are expanded: a bare `$` is left alone, so a path that happens to hold
//! one keeps working, and `$${` writes a literal `${`. As in the shell, `:-` also applies when the
//! variable is set but empty.

use std::borrow::Cow;

/// Looks a variable up in vault-run's environment.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Why a string could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// `${VAR}` with VAR unset and no default.
    #[error("${{{0}}} is not set")]
    Unset(String),
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
        if crate::backend::registry::is_credential_var(name.as_bytes()) {
            // It would put the credential in a reference (sent to a server, quoted in errors)
            // or, through an env file, in the child's environment.
            return Err(ExpandError::Bad(format!(
                "${{{name}}} holds a backend's credential and is never expanded; name a secret instead"
            )));
        }
        match (lookup(name), default) {
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

    fn env(name: &str) -> Option<String> {
        match name {
            "APP_ENV" => Some("prod".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
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
    }

    #[test]
    fn credential_variables_are_never_expanded() {
        let all = |_: &str| Some("sekrit".to_owned());
        for name in crate::backend::credential_vars() {
            let e = expand(&format!("a/${{{name}:-x}}/b"), &all).unwrap_err();
            assert!(matches!(&e, ExpandError::Bad(m) if m.contains(name) && !m.contains("sekrit")), "{e}");
        }
        assert_eq!(expand("${APP_ENV}", &all).unwrap(), "sekrit");
    }

    #[test]
    fn templates_expand_inside_placeholders_only() {
        let t = "user=${USER} pw={{ ass://${APP_ENV}/db/PW }}";
        assert_eq!(expand_placeholders(t, &env).unwrap(), "user=${USER} pw={{ ass://prod/db/PW }}");
    }
}
