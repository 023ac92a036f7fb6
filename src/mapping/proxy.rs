//! The agent-safe fields of an entry: `hosts`, `placeholder`, `inject` (and the older `body`). An
//! entry with `hosts` gives the child a placeholder; vault-run's proxy puts the real value on the
//! wire to those hosts, in the parts of the request `inject` names.

use toml::{Spanned, Value};

use super::file::Locator;
use super::{MappingError, Origin};

/// Where (and how) the proxy injects an entry's value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxySpec {
    /// Hosts and ports whose requests get the real value.
    pub hosts: Vec<HostPort>,
    /// Shape of the placeholder: `{random}` stands for the random part (`None`: random only).
    pub placeholder: Option<String>,
    /// The parts of a request the value may go into.
    pub inject: Inject,
}

/// A listed host: a name (or IP address) and a port. Without a port it means the scheme's own:
/// 443 for `https` (`CONNECT`), 80 for plain `http`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Lower case, no trailing dot, IPv6 without brackets.
    pub host: String,
    /// `None`: the scheme's default port.
    pub port: Option<u16>,
}

impl HostPort {
    /// Whether a request to `host:port` is this one; `default_port` is the request scheme's.
    pub fn matches(&self, host: &str, port: u16, default_port: u16) -> bool {
        self.host == host && self.port.unwrap_or(default_port) == port
    }

    /// Parses `host` or `host:port` (`[v6]:port` for an IPv6 address with a port).
    pub fn parse(s: &str) -> Result<HostPort, String> {
        let bad_port =
            || format!("{s:?}: the port must be a number from 1 to 65535, like \"localhost:4000\"");
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let Some((v6, after)) = rest.split_once(']') else { return Err(not_a_host(s)) };
            match after.strip_prefix(':') {
                Some(p) => (v6, Some(p)),
                None if after.is_empty() => (v6, None),
                None => return Err(bad_port()),
            }
        } else if let Some((h, p)) = s.split_once(':').filter(|(h, p)| !h.contains(':') && !p.contains(':')) {
            // Not a bare IPv6 address: a name (or IPv4) and what should be a port.
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(not_a_host(s));
            }
            (h, Some(p))
        } else {
            (s, None)
        };
        let port = match port {
            Some(p) => Some(p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(bad_port)?),
            None => None,
        };
        Ok(HostPort { host: check_host(host)?, port })
    }
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        match self.port {
            Some(p) => write!(f, "{host}:{p}"),
            None => f.write_str(&host),
        }
    }
}

/// `inject = [...]`: the parts of a request to a listed host where the placeholder is replaced
/// by the value. Anywhere else the placeholder goes through as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inject {
    /// Request header values (any header holding the placeholder).
    pub header: bool,
    /// The query string (the value percent-encoded).
    pub query: bool,
    /// The request body.
    pub body: bool,
}

impl Default for Inject {
    /// `["header"]`: an upstream that reflects a query parameter or stores a body cannot hand
    /// the value back unless the entry asked for it there.
    fn default() -> Self {
        Inject { header: true, query: false, body: false }
    }
}

impl Inject {
    /// The parts, in the order `inject` lists them: `header, query, body`.
    pub fn names(&self) -> Vec<&'static str> {
        [(self.header, "header"), (self.query, "query"), (self.body, "body")]
            .into_iter()
            .filter_map(|(on, n)| on.then_some(n))
            .collect()
    }
}

/// The names `inject` accepts.
const INJECT_PARTS: &str = "\"header\", \"query\", \"body\"";

/// The marker in a `placeholder` template replaced by the random part.
pub const RANDOM_MARKER: &str = "{random}";

fn schema(origin: Origin, message: String) -> MappingError {
    MappingError::Schema { origin, message }
}

/// Checks a host name as written in `hosts` (after its port is split off) and `--resolve`: a
/// DNS name or an IP address, without scheme or path.
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
        return Err(not_a_host(host));
    }
    Ok(h)
}

fn not_a_host(host: &str) -> String {
    format!(
        "{host:?} is not a host name; write only the name and maybe a port, like \"api.openai.com\" or \"localhost:4000\" (no scheme or path)"
    )
}

/// Reads `hosts = [...]`: `host` or `host:port` each.
pub(crate) fn hosts(
    loc: &Locator<'_>,
    value: Spanned<Value>,
    entry: &str,
) -> Result<Vec<HostPort>, MappingError> {
    let at = loc.of(&value);
    let bad = || {
        schema(
            at.clone(),
            format!("hosts in entry {entry} must be a list of host names, like [\"api.openai.com\", \"localhost:4000\"]"),
        )
    };
    let Value::Array(items) = value.into_inner() else { return Err(bad()) };
    if items.is_empty() {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(h) = item else { return Err(bad()) };
        let h =
            HostPort::parse(&h).map_err(|m| schema(at.clone(), format!("hosts in entry {entry}: {m}")))?;
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

/// Reads `inject = [...]`: a non-empty list of `"header"`, `"query"`, `"body"`.
pub(crate) fn inject(loc: &Locator<'_>, value: Spanned<Value>, entry: &str) -> Result<Inject, MappingError> {
    let at = loc.of(&value);
    let bad = |what: String| {
        schema(at.clone(), format!("inject in entry {entry} {what}; write a list of {INJECT_PARTS}, like inject = [\"header\", \"query\"]"))
    };
    let Value::Array(items) = value.into_inner() else { return Err(bad("must be a list".into())) };
    if items.is_empty() {
        return Err(bad("is empty (the value would go nowhere)".into()));
    }
    let mut out = Inject { header: false, query: false, body: false };
    for item in items {
        match item.as_str() {
            Some("header") => out.header = true,
            Some("query") => out.query = true,
            Some("body") => out.body = true,
            Some(other) => return Err(bad(format!("names {other:?}, which is not a part of a request"))),
            None => return Err(bad(format!("holds {item}, not a string"))),
        }
    }
    Ok(out)
}

/// `inject` with the older `body = true` folded in: alone it means `["header", "body"]` (what it
/// added to the headers before `inject` existed, minus the query, now opt-in); next to `inject`
/// it would say the same thing twice, possibly differently, so it is refused.
pub(crate) fn with_body_flag(
    inject: Option<(Inject, Origin)>,
    body: Option<(bool, Origin)>,
    entry: &str,
) -> Result<Inject, MappingError> {
    match (inject, body) {
        (Some(_), Some((_, at))) => Err(schema(
            at,
            format!("entry {entry}: body and inject both say where the value goes; remove body and list \"body\" in inject"),
        )),
        (Some((i, _)), None) => Ok(i),
        (None, Some((true, _))) => Ok(Inject { body: true, ..Inject::default() }),
        (None, _) => Ok(Inject::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        let hp = |s: &str| HostPort::parse(s);
        assert_eq!(hp("API.test").unwrap(), HostPort { host: "api.test".into(), port: None });
        assert_eq!(hp("localhost:4000").unwrap(), HostPort { host: "localhost".into(), port: Some(4000) });
        assert_eq!(hp("[::1]:8080").unwrap(), HostPort { host: "::1".into(), port: Some(8080) });
        assert_eq!(hp("::1").unwrap(), HostPort { host: "::1".into(), port: None });
        assert_eq!(hp("[::1]").unwrap(), HostPort { host: "::1".into(), port: None });
        for bad in ["h:0", "h:65536", "h:x", "h:", "https://h", "h/x", "[::1]x"] {
            assert!(hp(bad).is_err(), "{bad}");
        }
        let l = hp("localhost").unwrap();
        assert!(l.matches("localhost", 80, 80) && l.matches("localhost", 443, 443));
        assert!(!l.matches("localhost", 4000, 80));
        assert!(hp("localhost:4000").unwrap().matches("localhost", 4000, 80));
        assert_eq!(hp("[::1]:8080").unwrap().to_string(), "[::1]:8080");
    }
}
