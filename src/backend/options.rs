//! What the backends are built from: plain values, so that the backends depend on no
//! command-line or settings code. The run's settings are these options (`crate::settings`
//! merges them from flags, the mapping file and the defaults).

use std::path::PathBuf;
use std::time::Duration;

use crate::client::DEFAULT_BASE_URL;
use crate::duration::HumanDuration;
use crate::inherited::Snapshot;

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
    /// Reads in flight at once once the server chose HTTP/2, where they share one connection:
    /// `--concurrency` when given, else far more than over HTTP/1.1.
    pub concurrency_http2: usize,
    /// Start-up bound, approval waiting excluded: also how long a rate limit may be waited out.
    pub deadline: Duration,
    /// How long to wait for an approval (zero: fail at once).
    pub approval_timeout: Duration,
    /// Plain http to non-loopback hosts allowed.
    pub allow_insecure_http: bool,
    /// `--agent-key-file` / `ASS_AGENT_KEY_FILE`.
    pub agent_key_file: Option<PathBuf>,
    /// `--vault-token-file`.
    pub vault_token_file: Option<PathBuf>,
    /// The environment the run started with: backends read their addresses and credentials
    /// here, not from the process (which supervise mode wipes).
    pub env: Snapshot,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            ttl: HumanDuration::from_secs(300),
            timeout: Duration::from_secs(30),
            retries: 3,
            concurrency: 16,
            concurrency_http2: 256,
            deadline: Duration::from_secs(120),
            approval_timeout: Duration::from_secs(600),
            allow_insecure_http: false,
            agent_key_file: None,
            vault_token_file: None,
            env: Snapshot::default(),
        }
    }
}
