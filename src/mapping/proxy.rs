//! The agent-safe fields of an entry: `hosts`, `placeholder` and `body`. An entry with `hosts`
//! gives the child a placeholder; vault-run's proxy puts the real value on the wire to those hosts.

use toml::{Spanned, Value};

use super::file::Locator;
use super::{MappingError, Origin};

/// Where (and how) the proxy injects an entry's value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxySpec {
    /// Host names (lower case, no port) whose requests get the real value.
    pub hosts: Vec<String>,
    /// Shape of the placeholder: `{random}` stands for the random part (`None`: random only).
    pub placeholder: Option<String>,
    /// Whether request bodies are rewritten too (headers and the query string always are).
    pub body: bool,
}

/// The marker in a `placeholder` template replaced by the random part.
pub const RANDOM_MARKER: &str = "{random}";

fn schema(origin: Origin, message: String) -> MappingError {
    MappingError::Schema { origin, message }
}

/// Checks a host as written in `hosts`: a DNS name or an IP address, without scheme, port or path.
pub fn check_host(host: &str) -> Result<String, String> {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if h.parse::<std::net::IpAddr>().is_ok() {
        return Ok(h);
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if h.is_empty() || h.len() > 253 || !h.split('.').all(label_ok) {
        return Err(format!(
            "{host:?} is not a host name; write only the name, like \"api.openai.com\" (no scheme, port or path)"
        ));
    }
    Ok(h)
}

/// Reads `hosts = [...]`.
pub(crate) fn hosts(
    loc: &Locator<'_>,
    value: Spanned<Value>,
    entry: &str,
) -> Result<Vec<String>, MappingError> {
    let at = loc.of(&value);
    let bad = || {
        schema(
            at.clone(),
            format!("hosts in entry {entry} must be a list of host names, like [\"api.openai.com\"]"),
        )
    };
    let Value::Array(items) = value.into_inner() else { return Err(bad()) };
    if items.is_empty() {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(h) = item else { return Err(bad()) };
        let h = check_host(&h).map_err(|m| schema(at.clone(), format!("hosts in entry {entry}: {m}")))?;
        if !out.contains(&h) {
            out.push(h);
        }
    }
    Ok(out)
}

/// Checks a `placeholder` template: it must contain `{random}` once, and only characters that
/// survive in a header value unescaped.
pub(crate) fn placeholder(origin: Origin, template: String, entry: &str) -> Result<String, MappingError> {
    if template.matches(RANDOM_MARKER).count() != 1 {
        let message = format!(
            "placeholder in entry {entry} must contain {RANDOM_MARKER} exactly once (e.g. \"sk-{RANDOM_MARKER}\"), so that it is unguessable"
        );
        return Err(schema(origin, message));
    }
    if !template.bytes().all(|b| b.is_ascii_graphic()) {
        let message = format!("placeholder in entry {entry} may hold only printable ASCII without spaces");
        return Err(schema(origin, message));
    }
    Ok(template)
}
