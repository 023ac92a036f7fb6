//! What the backends are built from: plain values, so that the backends depend on no
//! command-line or settings code (the caller fills this in from its own settings).

use std::path::PathBuf;
use std::time::Duration;

use crate::duration::HumanDuration;

/// The options of every registered backend; each reads only its own.
#[derive(Debug, Clone)]
pub struct Options {
    /// Agent Secret Store base URL.
    pub base_url: String,
    /// Lifetime of the store's scoped token and of a Vault child token.
    pub ttl: HumanDuration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries per request.
    pub retries: u32,
    /// Reads in flight at once over HTTP/1.1 (one connection each).
    pub concurrency: usize,
    /// Reads in flight at once over HTTP/2, where they share one connection.
    pub concurrency_http2: usize,
    /// Start-up bound: how long a rate limit may be waited out.
    pub deadline: Duration,
    /// How long to wait for an approval (zero: fail at once).
    pub approval_timeout: Duration,
    /// Plain http to non-loopback hosts allowed.
    pub allow_insecure_http: bool,
    /// The agent key file, when given.
    pub agent_key_file: Option<PathBuf>,
    /// The Vault token file, when given.
    pub vault_token_file: Option<PathBuf>,
}
