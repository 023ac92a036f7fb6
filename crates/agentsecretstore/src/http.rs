//! The HTTP layer shared by this crate's Agent Secret Store client and the `vault-run`
//! launcher's Vault/OpenBao backend: the client builder (timeouts, no redirects, no proxy for a
//! loopback server, private CAs), the insecure-http rule, and one exchange with retries
//! (network failures, 429 honouring `Retry-After`, 502/503/504; capped, jittered exponential
//! backoff) and a capped body.
//!
//! It knows HTTP, not any server's API: a non-2xx answer comes back as a [`Failure::Status`]
//! holding the raw error body, and each caller maps statuses and error bodies in its own terms
//! (a Vault 403 is a policy refusal, not the store's `SCOPE_DENIED`).

use std::time::Duration;

use rand::Rng;
use reqwest::{Method, StatusCode};
use zeroize::Zeroizing;

/// Largest body we read. Secrets are small; a listing of thousands of items still fits.
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// Longest `Retry-After` we are willing to sleep through before giving up.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Longest connect attempt: a server that does not answer the handshake within this is down,
/// whatever the overall request timeout allows for a slow answer.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// First backoff step.
    pub base: Duration,
    /// Largest backoff step.
    pub cap: Duration,
    /// How long, in all, 429 answers may be waited out once `retries` are used up. A
    /// `Retry-After` is the server pacing a crowd, not a failure: a fleet started at once
    /// should queue up rather than give up (the launcher sets this to its deadline).
    pub rate_limit_patience: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 3,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
            rate_limit_patience: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Backoff before retry number `attempt` (1-based): "equal jitter", half fixed and half
    /// random, so that a fleet started at once spreads out instead of retrying in lockstep.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let step = exp.min(self.cap);
        let half = step / 2;
        half + jitter(half)
    }
}

fn jitter(max: Duration) -> Duration {
    if max.is_zero() {
        return max;
    }
    Duration::from_micros(rand::rng().random_range(0..=max.as_micros() as u64))
}

/// Why a base URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UrlError(pub String);

/// Validates a base URL: http(s), a host, no credentials, and plain http only to loopback
/// unless `allow_insecure` is set. Returns it without a trailing `/`.
pub fn check_base_url(raw: &str, allow_insecure: bool) -> Result<String, UrlError> {
    let bad = |why: &str| UrlError(format!("base URL {raw:?} {why}"));
    let trimmed = raw.trim();
    if !trimmed.contains("://") {
        return Err(bad(&format!(
            "has no scheme; write it with one: http://{trimmed} (a loopback address, like vault-run dev's) or https://{trimmed}"
        )));
    }
    let url = reqwest::Url::parse(trimmed).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError("base URL must not carry credentials".into()));
    }
    let host = url.host().ok_or_else(|| bad("has no host"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure || is_loopback(&host) => {}
        "http" => {
            return Err(bad(
                "uses plain http:// to a non-loopback host, which would expose the credentials sent to it (agent key, tokens); use https:// (or --allow-insecure-http to accept the risk)",
            ))
        }
        _ => return Err(bad("must start with https:// (or http:// for a loopback address)")),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    let path = url.path().trim_end_matches('/');
    if path.ends_with("/v1") {
        let fixed = url.as_str().trim_end_matches('/').trim_end_matches("/v1").to_owned();
        return Err(bad(&format!(
            "ends in /v1, but every request path already starts with /v1; drop it: {fixed}"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Whether `url` (already checked by [`check_base_url`]) names a loopback host; such a server is
/// always reached directly, never through a proxy from the environment.
pub fn is_loopback_url(url: &str) -> bool {
    reqwest::Url::parse(url).ok().is_some_and(|u| u.host().is_some_and(|h| is_loopback(&h)))
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// What the HTTP client is built for.
#[derive(Debug, Clone)]
pub struct ClientOptions<'a> {
    /// The checked base URL (see [`check_base_url`]).
    pub base_url: &'a str,
    /// Whole-request timeout; the connect timeout is the smaller of this and 10 s.
    pub timeout: Duration,
    /// `User-Agent`.
    pub user_agent: &'static str,
    /// CA certificates to trust besides the built-in roots, as parsed PEM.
    pub ca_certificates: Vec<reqwest::Certificate>,
}

/// How long an idle connection is kept for reuse.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds the client both servers are spoken to with: the same timeouts, redirects never
/// followed (credentials are never sent on), a loopback server dialled directly, and the
/// given CAs.
pub fn build_client(opts: ClientOptions<'_>) -> Result<reqwest::Client, reqwest::Error> {
    let mut http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(opts.timeout)
        .connect_timeout(opts.timeout.min(MAX_CONNECT_TIMEOUT))
        // Below the idle timeouts servers close kept-alive connections after (the dev server:
        // 10 s; proxies: 60 s and up), so that a long-lived client (`--watch`, the proxy)
        // never reuses one the server is closing at that moment.
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .user_agent(opts.user_agent);
    if is_loopback_url(opts.base_url) {
        // HTTP_PROXY/ALL_PROXY would carry the credential in clear to another host (and could
        // not reach our loopback anyway): a loopback server is always dialled directly.
        http = http.no_proxy();
    }
    if opts.base_url.starts_with("http://") {
        // Redirects are never followed, so TLS is never used: loading the built-in roots would
        // only slow every start down.
        http = http.tls_built_in_root_certs(false);
    } else {
        let system = system_roots();
        http = http.tls_built_in_native_certs(system).tls_built_in_webpki_certs(!system);
        for cert in opts.ca_certificates {
            http = http.add_root_certificate(cert);
        }
    }
    http.build()
}

/// Whether the machine has root certificates of its own (`SSL_CERT_FILE`, `SSL_CERT_DIR`, or
/// the usual bundle paths, as `rustls-native-certs` finds them): those are trusted then, and
/// otherwise the bundled Mozilla roots (`webpki-roots`), so that the static binary in a
/// `scratch` image still verifies a public server. Probed once per process; said at `-v`.
fn system_roots() -> bool {
    static SYSTEM: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SYSTEM.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs().certs.len();
        if found > 0 {
            tracing::info!("TLS: trusting the system's {found} root certificates");
        } else {
            tracing::info!(
                "TLS: no system root certificates found; trusting the bundled Mozilla roots (webpki-roots)"
            );
        }
        found > 0
    })
}

/// A 2xx answer, its body read in full into a buffer that is wiped when dropped.
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// The protocol the answer came over (HTTP/2 when ALPN chose it).
    pub version: reqwest::Version,
    /// The bytes.
    pub bytes: Zeroizing<Vec<u8>>,
}

/// A non-2xx answer: the caller maps it in its server's terms.
pub struct ErrorReply {
    /// HTTP status.
    pub status: StatusCode,
    /// The server's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
    /// The error body, wiped when dropped.
    pub bytes: Zeroizing<Vec<u8>>,
    /// The `Location` of a 3xx answer (only [`exchange`] hands those back).
    pub location: Option<String>,
    /// The credentials the request carried, to keep out of the server's message.
    sent: Vec<Zeroizing<String>>,
}

impl ErrorReply {
    /// The server's message, taken from the body by `extract`, on one line and with any
    /// credential the request carried replaced by `[REDACTED]` (a gateway or a server answering
    /// "invalid key ass_…" would otherwise put the key on stderr); the status's reason when
    /// `extract` finds nothing.
    pub fn message(&self, extract: impl FnOnce(&[u8]) -> Option<String>) -> String {
        extract(&self.bytes)
            .map(|m| one_line(&self.sent.iter().fold(m, |m, c| m.replace(c.as_str(), "[REDACTED]"))))
            .unwrap_or_else(|| self.status.canonical_reason().unwrap_or("request failed").to_owned())
    }
}

/// Why an exchange failed, after retries.
pub enum Failure {
    /// Connect, timeout or reset.
    Network {
        /// What failed, with its causes on one line (never includes credentials).
        message: String,
        /// The transport's error.
        source: reqwest::Error,
    },
    /// A body over [`MAX_BODY`], or a redirect (never followed).
    Invalid {
        /// What was wrong.
        message: String,
    },
    /// A non-2xx answer (a 3xx only from [`exchange`]).
    Status(ErrorReply),
}

impl Failure {
    /// What was retried, by name, for the debug log; the launcher's live status line starts
    /// its rate-limit countdown on `RATE_LIMITED`.
    fn code(&self) -> &'static str {
        match self {
            Failure::Network { .. } => "NETWORK_ERROR",
            Failure::Invalid { .. } => "INVALID_RESPONSE",
            Failure::Status(e) if e.status == StatusCode::TOO_MANY_REQUESTS => "RATE_LIMITED",
            Failure::Status(e) if e.status.is_server_error() => "SERVER_ERROR",
            Failure::Status(_) => "HTTP_ERROR",
        }
    }
}

/// Sends the request built by `build` (called once per attempt) and returns a 2xx reply, or
/// the failure after retries.
pub async fn send(
    client: &reqwest::Client,
    policy: &RetryPolicy,
    method: Method,
    url: &str,
    build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> Result<Reply, Failure> {
    let mut attempt = 0u32;
    let mut rate_limited_for = Duration::ZERO;
    loop {
        let outcome = once(client, method.clone(), url, &build).await;
        let (wait, rate_limited) = match &outcome {
            Ok(_) => return outcome,
            Err(Failure::Network { .. }) => (policy.backoff(attempt + 1), false),
            Err(Failure::Status(e)) if e.status == StatusCode::TOO_MANY_REQUESTS => match e.retry_after {
                Some(after) if after > MAX_RETRY_AFTER => return outcome,
                // Honour the server, plus jitter so a herd told "1s" does not return as one.
                Some(after) => (after + jitter(policy.base.max(after / 2)), true),
                None => (policy.backoff(attempt + 1), true),
            },
            Err(Failure::Status(e)) if (502..=504).contains(&e.status.as_u16()) => {
                (policy.backoff(attempt + 1), false)
            }
            Err(_) => return outcome,
        };
        if attempt < policy.retries {
            attempt += 1;
        } else if rate_limited && rate_limited_for + wait <= policy.rate_limit_patience {
            rate_limited_for += wait;
        } else {
            return outcome;
        }
        tracing::debug!(
            %method, path = path_of(url), attempt, wait_ms = wait.as_millis() as u64,
            error = outcome.as_ref().err().map(Failure::code).unwrap_or_default(),
            "retrying"
        );
        tokio::time::sleep(wait).await;
    }
}

async fn once(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    build: &impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> Result<Reply, Failure> {
    match exchange(client, method, url, build).await {
        Err(Failure::Status(e)) if e.status.is_redirection() => Err(Failure::Invalid {
            message: format!(
                "server answered {} redirecting to {}; redirects are not followed so credentials are never sent on; set the base URL to the final address",
                e.status,
                e.location.as_deref().map(one_line).unwrap_or_else(|| "nowhere".into())
            ),
        }),
        other => other,
    }
}

/// One exchange, no retries, and a 3xx answer handed back as a [`Failure::Status`] with its
/// `Location`, for a caller that follows redirects under its own rules (the Vault backend's,
/// as Vault's own client does; the store's client never does, through [`send`]).
pub async fn exchange(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    build: &impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> Result<Reply, Failure> {
    let started = std::time::Instant::now();
    let request = build(client.request(method.clone(), url)).build().map_err(network)?;
    // Every header the caller marked sensitive (`HeaderValue::set_sensitive`; `bearer_auth` does)
    // holds a credential, and so do these two whatever the marking.
    let sent: Vec<Zeroizing<String>> = request
        .headers()
        .iter()
        .filter(|(name, v)| {
            v.is_sensitive() || *name == reqwest::header::AUTHORIZATION || name.as_str() == "x-vault-token"
        })
        .filter_map(|(_, v)| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim())
        .filter(|v| !v.is_empty())
        .map(|v| Zeroizing::new(v.to_owned()))
        .collect();
    let resp = client.execute(request).await.map_err(network)?;
    let status = resp.status();
    let version = resp.version();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let location =
        resp.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let bytes = read_capped(resp).await?;
    tracing::debug!(
        %method, path = path_of(url), status = status.as_u16(),
        ms = started.elapsed().as_millis() as u64, "request"
    );
    if status.is_success() {
        return Ok(Reply { status, version, bytes });
    }
    Err(Failure::Status(ErrorReply { status, retry_after, bytes, location, sent }))
}

async fn read_capped(mut resp: reqwest::Response) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let too_big = || Failure::Invalid {
        message: format!("response body larger than {} MiB; refusing to read it", MAX_BODY >> 20),
    };
    let hint = resp.content_length().unwrap_or(0) as usize;
    if hint > MAX_BODY {
        return Err(too_big());
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(hint.max(1024)));
    while let Some(chunk) = resp.chunk().await.map_err(network)? {
        if buf.len() + chunk.len() > MAX_BODY {
            return Err(too_big());
        }
        if buf.len() + chunk.len() > buf.capacity() {
            // Grow by hand so the old allocation is wiped instead of freed with secrets in it.
            let mut bigger =
                Zeroizing::new(Vec::with_capacity((buf.len() + chunk.len()).max(buf.capacity() * 2)));
            bigger.extend_from_slice(&buf);
            buf = bigger;
        }
        buf.extend_from_slice(&chunk);
        if let Ok(mut owned) = chunk.try_into_mut() {
            owned.fill(0);
        }
    }
    Ok(buf)
}

fn network(e: reqwest::Error) -> Failure {
    // reqwest's Display names the URL (a path, never a credential) and the cause chain.
    let mut message = if e.is_timeout() {
        "request timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else if e.is_body() || e.is_decode() {
        "connection failed while reading the response".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&one_line(&s.to_string()));
        source = s.source();
    }
    Failure::Network { message, source: e }
}

/// Parses `Retry-After`: delta-seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

/// A JSON decoding error without any of the content: serde's own message quotes what it found
/// (``invalid type: integer `987654321012`, expected a string``), and in a response that may be
/// a secret. Kept: the kind of problem, what was expected (our schema's words), the position.
pub fn describe_json_error(e: &serde_json::Error) -> String {
    let full = e.to_string();
    // "missing field `value`" and "duplicate field `value`" name our schema's fields only.
    let kind = if full.starts_with("missing field") || full.starts_with("duplicate field") {
        full.split(" at line ").next().unwrap_or_default().to_owned()
    } else {
        let cut = full.find([':', '`', '"', '\'']).unwrap_or(full.len());
        let mut kind = full[..cut].trim_end_matches([' ', ',']).to_owned();
        if e.classify() == serde_json::error::Category::Data {
            if let Some(i) = full.find(", expected ") {
                let expected = &full[i..];
                kind.push_str(expected.split(" at line ").next().unwrap_or_default());
            }
        }
        kind
    };
    one_line(&format!("{kind} at line {} column {}", e.line(), e.column()))
}

/// Trims a message to one printable line of bounded length.
pub fn one_line(s: &str) -> String {
    let mut out: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).take(300).collect();
    if s.chars().count() > 300 {
        out.push('…');
    }
    out
}

fn path_of(url: &str) -> &str {
    url.find("/v1/").map(|i| &url[i..]).unwrap_or(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        let future = std::time::SystemTime::now() + Duration::from_secs(5);
        let d = parse_retry_after(&httpdate::fmt_http_date(future)).unwrap();
        assert!(d <= Duration::from_secs(5) && d >= Duration::from_secs(3), "{d:?}");
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let p = RetryPolicy::default();
        for attempt in 1..30 {
            let d = p.backoff(attempt);
            assert!(d <= p.cap, "{d:?}");
            let floor = (p.base.saturating_mul(1 << (attempt - 1).min(16))).min(p.cap) / 2;
            assert!(d >= floor);
        }
    }

    #[test]
    fn json_errors_keep_the_kind_and_position_but_none_of_the_content() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct S {
            value: String,
        }
        for body in [r#"{"value": 987654321012}"#, r#"{"value": ["canary-in-array"]}"#, r#"{"value": "x""#] {
            let e = serde_json::from_str::<S>(body).unwrap_err();
            let ours = describe_json_error(&e);
            for canary in ["987654321012", "canary-in-array"] {
                assert!(!ours.contains(canary), "{ours}");
            }
            assert!(ours.contains("line 1 column"), "{ours}");
        }
        let e = serde_json::from_str::<S>(r#"{"value": 987654321012}"#).unwrap_err();
        // serde's own message quotes the value: the reason this function exists.
        assert!(e.to_string().contains("987654321012"));
        assert_eq!(describe_json_error(&e), "invalid type, expected a string at line 1 column 22");
        let e = serde_json::from_str::<S>("{}").unwrap_err();
        assert_eq!(describe_json_error(&e), "missing field `value` at line 1 column 2");
    }

    #[test]
    fn one_line_strips_controls() {
        assert_eq!(one_line("a\nb\tc"), "a b c");
        assert_eq!(one_line(&"x".repeat(400)).chars().count(), 301);
    }
}
