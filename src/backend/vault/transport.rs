//! One call to a Vault/OpenBao cluster, the way Vault's own client makes it: a standby's
//! redirect to the active node is followed with the token re-sent (within the limits below), and
//! what a cluster says while it fails over is retried rather than taken as final.
//!
//! Every attempt starts again at `VAULT_ADDR`, the node the user named: a redirect names the
//! node the standby believes active, which during an election may be the one that just died.
//!
//! | answer | treatment |
//! |---|---|
//! | 307/308 to the same scheme, https or loopback, same `/v1/…` path | followed, at most [`MAX_HOPS`] in a row |
//! | any other redirect | final |
//! | network failure at `VAULT_ADDR`; 412, 500, 502, 503 (sealed), 504 | retried `--retries` times |
//! | 429, 472, 473 (standby/rate-limit codes); a standby that cannot find the active node (500/503); anything retryable from a node a redirect led to | waited out past `--retries`, until shortly before `--deadline` |
//! | 400, 401, 403, 404, 405, 501 and other 4xx | final |

use std::time::{Duration, Instant};

use agentsecretstore::http::{self, Failure, Reply, RetryPolicy};
use reqwest::{Method, Url};

use super::error::VaultError;

/// Redirects followed in a row before the answer is refused (Vault's client follows one; a
/// standby points straight at the active node, so more than a few is a loop).
pub const MAX_HOPS: usize = 3;

/// Longest wait between two attempts while a failover is waited out.
const MAX_FAILOVER_POLL: Duration = Duration::from_secs(1);

/// Longest `Retry-After` waited for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How a failed attempt is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Given up at once.
    Final,
    /// Retried up to `--retries` times.
    Retry,
    /// The cluster is mid-failover or pacing a crowd: waited out past `--retries`, until the
    /// patience runs out (after the server's `Retry-After`, when it sent one).
    WaitOut(Option<Duration>),
}

/// The HTTP side of the Vault backend.
pub struct Transport {
    /// The client (redirects are never followed by it: [`Transport::call`] does).
    pub http: reqwest::Client,
    /// `VAULT_ADDR`, checked, without a trailing `/`.
    pub addr: String,
    /// `--retries` and the backoff.
    pub retry: RetryPolicy,
    /// When waiting out a failover stops (see [`Transport::start_patience`]).
    pub patience_until: std::sync::Mutex<Instant>,
    /// The (from, to) redirects already said at `-v`.
    pub redirects_said: std::sync::Mutex<Vec<(String, String)>>,
}

/// A failed attempt: the error and how it is treated.
struct Failed {
    error: VaultError,
    verdict: Verdict,
}

impl Transport {
    /// Starts a batch under a start-up deadline of `budget` from now: a failover is waited out
    /// until a little before it (a tenth, 0.5 to 5 s), so that the reason (a sealed node, an
    /// unreachable leader) is told rather than the deadline. Each batch (a `--watch` refresh
    /// too) starts its own.
    pub fn start_patience(&self, budget: Duration) {
        let margin = (budget / 10).clamp(Duration::from_millis(500), Duration::from_secs(5));
        *self.patience_until.lock().unwrap_or_else(|e| e.into_inner()) =
            Instant::now() + budget.saturating_sub(margin);
    }

    /// Logs a redirect followed: at info (`-v`) the first time from one node to another, at
    /// debug after that (a thousand reads redirected the same way are one line at `-v`).
    fn say_redirect(&self, status: u16, from: String, to: String) {
        let first = {
            let mut said = self.redirects_said.lock().unwrap_or_else(|e| e.into_inner());
            let pair = (from.clone(), to.clone());
            !said.contains(&pair) && {
                said.push(pair);
                true
            }
        };
        if first {
            tracing::info!(status, %from, %to, "following a Vault/OpenBao redirect (to the node it says is active)");
        } else {
            tracing::debug!(status, %from, %to, "following a Vault/OpenBao redirect");
        }
    }

    fn patience_left(&self, wait: Duration) -> bool {
        Instant::now() + wait < *self.patience_until.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `method` on `/v1/{api_path}`; `build` adds headers and body and is called for every
    /// request sent (retries and redirects re-send the token, as Vault's client does).
    pub async fn call(
        &self,
        method: Method,
        api_path: &str,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<Reply, VaultError> {
        let (mut retried, mut attempts) = (0u32, 0u32);
        loop {
            let failed = match self.attempt(&method, api_path, &build).await {
                Ok(reply) => return Ok(reply),
                Err(f) => f,
            };
            attempts += 1;
            let wait = match failed.verdict {
                Verdict::Final => return Err(failed.error),
                Verdict::Retry => self.retry.backoff(attempts),
                // An election takes seconds: polled about once a second at most, so the launch
                // goes on soon after a new node is active.
                Verdict::WaitOut(None) => self.retry.backoff(attempts).min(MAX_FAILOVER_POLL),
                Verdict::WaitOut(Some(after)) if after > MAX_RETRY_AFTER => return Err(failed.error),
                // Honour the server, plus some jitter so a herd told "1s" does not return as one.
                Verdict::WaitOut(Some(after)) => after + self.retry.backoff(1),
            };
            let waiting_out = matches!(failed.verdict, Verdict::WaitOut(_));
            if retried < self.retry.retries {
                retried += 1;
            } else if !(waiting_out && self.patience_left(wait)) {
                return Err(failed.error);
            }
            tracing::debug!(
                %method, path = api_path, retried, wait_ms = wait.as_millis() as u64, error = %failed.error,
                "retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt from `VAULT_ADDR`, following redirects.
    async fn attempt(
        &self,
        method: &Method,
        api_path: &str,
        build: &impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<Reply, Failed> {
        let mut url = format!("{}/v1/{api_path}", self.addr);
        let mut hops = 0;
        loop {
            let node = origin(&url);
            let failure = match http::exchange(&self.http, method.clone(), &url, build).await {
                Ok(reply) => return Ok(reply),
                Err(f) => f,
            };
            let redirected = hops > 0;
            let shown = if redirected { format!("{node} (where {} redirected)", self.addr) } else { node };
            if let Failure::Status(e) = &failure {
                if e.status.is_redirection() {
                    let final_ = |why: String| Failed {
                        error: VaultError::Redirect { addr: shown.clone(), status: e.status.as_u16(), why },
                        verdict: Verdict::Final,
                    };
                    if hops == MAX_HOPS {
                        return Err(final_(format!("more than {MAX_HOPS} redirects in a row")));
                    }
                    let next = follow(&url, e.status.as_u16(), e.location.as_deref()).map_err(final_)?;
                    self.say_redirect(e.status.as_u16(), origin(&url), origin(next.as_str()));
                    url = next.into();
                    hops += 1;
                    continue;
                }
            }
            let verdict = verdict(&failure, redirected);
            return Err(Failed { error: VaultError::from_failure(failure, &shown), verdict });
        }
    }
}

/// How a failure is treated; `redirected` when a redirect led to the node that failed.
fn verdict(failure: &Failure, redirected: bool) -> Verdict {
    let retryable = match failure {
        Failure::Network { .. } => Verdict::Retry,
        Failure::Invalid { .. } => Verdict::Final,
        Failure::Status(e) if standby_without_leader(e) => return Verdict::WaitOut(None),
        Failure::Status(e) => match e.status.as_u16() {
            429 | 472 | 473 => return Verdict::WaitOut(e.retry_after),
            412 | 500 | 502 | 503 | 504 => Verdict::Retry,
            _ => Verdict::Final,
        },
    };
    // The node the user named answered, and sent us to the node it believes active, which does
    // not answer (yet): a leader that just went away, or one still taking over.
    match retryable {
        Verdict::Retry if redirected => Verdict::WaitOut(None),
        v => v,
    }
}

/// A standby that cannot find the active node, mid-election: Vault's and OpenBao's 500 "local
/// node not active but active cluster node not found" and 503 "no active Vault instance found".
fn standby_without_leader(e: &http::ErrorReply) -> bool {
    if !matches!(e.status.as_u16(), 500 | 503) {
        return false;
    }
    let said = String::from_utf8_lossy(&e.bytes).to_ascii_lowercase();
    said.contains("active cluster node not found") || said.contains("no active vault instance")
}

/// The URL a 307/308 from `current` leads to, or why it is not followed: same scheme (never
/// https → http), https or a loopback host, no credentials in it, and the same `/v1/…` path
/// and query (a Vault standby's redirect keeps them; the token must not go to another
/// endpoint).
fn follow(current: &str, status: u16, location: Option<&str>) -> Result<Url, String> {
    if !matches!(status, 307 | 308) {
        return Err("only 307 and 308 (what Vault and OpenBao send) are followed".into());
    }
    let location = location.ok_or("it has no Location")?;
    let here = Url::parse(current).map_err(|e| e.to_string())?;
    let next = here.join(location).map_err(|e| format!("its Location is not a URL ({e})"))?;
    let shown = http::one_line(origin(next.as_str()).as_str());
    if next.scheme() != here.scheme() {
        return Err(format!("it leads from {} to {shown}, another scheme", here.scheme()));
    }
    if next.scheme() != "https" && !http::is_loopback_url(next.as_str()) {
        return Err(format!("it leads to {shown} over plain http, which is followed only to loopback"));
    }
    if !next.username().is_empty() || next.password().is_some() {
        return Err("its Location carries credentials".into());
    }
    let api = |u: &Url| u.path().find("/v1/").map(|i| u.path()[i..].to_owned());
    if api(&next).is_none() || api(&next) != api(&here) || next.query() != here.query() {
        return Err(format!("it leads to {shown} but to another API path"));
    }
    Ok(next)
}

/// `scheme://host:port` of `url`, for messages and logs (never a path or query).
fn origin(url: &str) -> String {
    Url::parse(url).map(|u| u.origin().ascii_serialization()).unwrap_or_else(|_| http::one_line(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: &str = "http://127.0.0.1:8200/v1/auth/token/create";

    #[test]
    fn followed_redirects() {
        let ok = follow(HERE, 307, Some("http://127.0.0.1:8202/v1/auth/token/create")).unwrap();
        assert_eq!(ok.as_str(), "http://127.0.0.1:8202/v1/auth/token/create");
        assert!(follow(HERE, 308, Some("/v1/auth/token/create")).is_ok(), "relative");
        let https = "https://vault-0.example:8200/v1/secret/data/a";
        assert!(follow(https, 307, Some("https://vault-1.example:8200/v1/secret/data/a")).is_ok());
        assert!(follow("https://lb/vault/v1/x", 307, Some("https://n1:8200/v1/x")).is_ok(), "prefix");
    }

    #[test]
    fn refused_redirects() {
        let refused = |current: &str, status, to: Option<&str>| follow(current, status, to).unwrap_err();
        assert!(refused(HERE, 302, Some(HERE)).contains("only 307 and 308"));
        assert!(refused(HERE, 307, None).contains("no Location"));
        let https = "https://vault-0.example/v1/secret/data/a";
        assert!(
            refused(https, 307, Some("http://vault-1.example/v1/secret/data/a")).contains("another scheme")
        );
        assert!(refused("http://127.0.0.1:1/v1/a", 307, Some("http://10.0.0.9/v1/a"))
            .contains("only to loopback"));
        assert!(
            refused(HERE, 307, Some("http://u:p@127.0.0.1:2/v1/auth/token/create")).contains("credentials")
        );
        assert!(refused(HERE, 307, Some("http://127.0.0.1:2/v1/sys/seal")).contains("another API path"));
        assert!(refused(HERE, 307, Some("http://127.0.0.1:2/elsewhere")).contains("another API path"));
        assert!(
            refused(HERE, 307, Some("http://127.0.0.1:2/v1/auth/token/create?x=1")).contains("another API")
        );
    }

    #[test]
    fn origins_carry_no_path() {
        assert_eq!(origin("http://127.0.0.1:8200/v1/secret/data/a?x=1"), "http://127.0.0.1:8200");
    }
}
