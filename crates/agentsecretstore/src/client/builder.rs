//! [`AgentVaultBuilder`]: the client's settings (key, base URL, TTL, retries, CA, approvals) and
//! the checks made once when it is built.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use super::transport::RetryPolicy;

use super::args::IntoTtl;
use super::{AgentVault, Error, Inner, Result, DEFAULT_BASE_URL};
use crate::duration::HumanDuration;
use crate::secret::AgentKey;

/// Called with the approval id when a read waits for a human (see
/// [`AgentVaultBuilder::on_approval`]).
pub type ApprovalCallback = Arc<dyn Fn(&str) + Send + Sync>;

/// Builds an [`AgentVault`].
///
/// ```no_run
/// # fn demo() -> agentsecretstore::Result<()> {
/// use std::time::Duration;
/// let vault = agentsecretstore::AgentVault::builder()
///     .agent_key("ass_…")
///     .base_url("http://127.0.0.1:8200")
///     .wait_for_approvals(Duration::from_secs(600))
///     .on_approval(|id| eprintln!("waiting for approval {id}"))
///     .build()?;
/// # let _ = vault; Ok(()) }
/// ```
#[derive(Clone)]
pub struct AgentVaultBuilder {
    agent_key: Option<AgentKey>,
    base_url: String,
    default_ttl: HumanDuration,
    timeout: Duration,
    retry: RetryPolicy,
    allow_insecure_http: bool,
    approval_poll_interval: Duration,
    approval_wait: Option<Duration>,
    on_approval: Option<ApprovalCallback>,
    ca_certificates: Vec<Vec<u8>>,
}

impl std::fmt::Debug for AgentVaultBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentVaultBuilder")
            .field("agent_key", &self.agent_key)
            .field("base_url", &self.base_url)
            .field("default_ttl", &self.default_ttl)
            .field("timeout", &self.timeout)
            .field("approval_wait", &self.approval_wait)
            .field("ca_certificates", &self.ca_certificates.len())
            .finish_non_exhaustive()
    }
}

impl Default for AgentVaultBuilder {
    fn default() -> Self {
        Self {
            agent_key: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            default_ttl: HumanDuration::from_secs(3600),
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            allow_insecure_http: false,
            approval_poll_interval: Duration::from_secs(2),
            approval_wait: None,
            on_approval: None,
            ca_certificates: Vec::new(),
        }
    }
}

impl AgentVaultBuilder {
    /// A builder with the agent key from `ASS_AGENT_KEY` and, when set, the base URL from
    /// `ASS_BASE_URL` and a private CA from `ASS_CACERT` (a PEM file).
    ///
    /// # Errors
    /// [`Error::Config`] when `ASS_AGENT_KEY` is not set or `ASS_CACERT` cannot be read.
    pub fn from_env() -> Result<Self> {
        let key = std::env::var("ASS_AGENT_KEY").map_err(|_| Error::Config {
            message: "ASS_AGENT_KEY is not set; export the agent key (ass_…)".into(),
        })?;
        let mut b = Self::default().agent_key(AgentKey::new(key));
        if let Ok(url) = std::env::var("ASS_BASE_URL") {
            b = b.base_url(url);
        }
        b.ca_certificate_from_env()
    }

    /// Trusts a private CA (PEM, one or more certificates) besides the platform's roots and the
    /// bundled Mozilla roots. Checked by [`build`](Self::build).
    pub fn ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificates.push(pem.into());
        self
    }

    /// Opt-in: when a read needs a human's approval, wait up to `timeout` for it (polling at
    /// [`approval_poll_interval`](Self::approval_poll_interval)) and go on, instead of failing
    /// with [`Error::ApprovalRequired`]. The client prints nothing; see
    /// [`on_approval`](Self::on_approval).
    pub fn wait_for_approvals(mut self, timeout: Duration) -> Self {
        self.approval_wait = Some(timeout);
        self
    }

    /// Called with the approval id when an automatic approval wait starts (for example to tell
    /// the user whom to ask).
    pub fn on_approval(mut self, callback: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.on_approval = Some(Arc::new(callback));
        self
    }

    /// [`AgentVaultBuilder::ca_certificate`] from the file named by `ASS_CACERT`, when set.
    pub fn ca_certificate_from_env(self) -> Result<Self> {
        let Some(path) = std::env::var_os("ASS_CACERT").filter(|p| !p.is_empty()) else {
            return Ok(self);
        };
        let pem = std::fs::read(&path).map_err(|e| Error::Config {
            message: format!(
                "ASS_CACERT={}: cannot read the CA certificate ({e}); point it at a PEM file or unset it",
                std::path::Path::new(&path).display()
            ),
        })?;
        Ok(self.ca_certificate(pem))
    }

    /// The agent key (`ass_…`).
    pub fn agent_key(mut self, key: impl Into<AgentKey>) -> Self {
        self.agent_key = Some(key.into());
        self
    }

    /// Base URL without `/v1` (default `https://api.agentsecretstore.com`).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// TTL of tokens the client requests by itself (default 1h): a [`Duration`], a
    /// [`HumanDuration`] or text like `"15m"`.
    ///
    /// # Panics
    /// When given text that is not a duration; parse it first (`"15m".parse::<HumanDuration>()?`)
    /// to handle the error.
    pub fn default_ttl(mut self, ttl: impl IntoTtl) -> Self {
        match ttl.into_ttl() {
            Ok(Some(t)) => self.default_ttl = t,
            Ok(None) => {}
            Err(e) => panic!("AgentVaultBuilder::default_ttl: {e}"),
        }
        self
    }

    /// Per-request timeout (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Retries after the first attempt (default 3).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retry.retries = retries;
        self
    }

    /// How long 429 answers may be waited out after the retries are used up (default 30 s).
    pub fn rate_limit_patience(mut self, patience: Duration) -> Self {
        self.retry.rate_limit_patience = patience;
        self
    }

    /// Full retry policy (backoff base and cap too).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How often `wait_for_approval` polls (default 2 s).
    pub fn approval_poll_interval(mut self, every: Duration) -> Self {
        self.approval_poll_interval = every;
        self
    }

    /// Allows credentials over plain `http://` to a non-loopback host. Off by default: anyone on
    /// the path could read the agent key.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Checks the settings and builds the client.
    ///
    /// # Errors
    /// [`Error::Config`] for a missing or empty agent key, a bad base URL (plain `http://` is
    /// only for loopback unless allowed), or a CA certificate that is not PEM.
    pub fn build(self) -> Result<AgentVault> {
        let agent_key = self.agent_key.ok_or_else(|| Error::Config {
            message: "no agent key: set ASS_AGENT_KEY or pass one to the builder".into(),
        })?;
        if agent_key.expose().trim().is_empty() {
            return Err(Error::Config { message: "the agent key is empty".into() });
        }
        let base_url = check_base_url(&self.base_url, self.allow_insecure_http)?;
        let mut ca_certificates = Vec::new();
        if !base_url.starts_with("http://") {
            for pem in &self.ca_certificates {
                let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| Error::Config {
                    message: format!("the CA certificate (ASS_CACERT) is not valid PEM: {e}"),
                })?;
                if certs.is_empty() {
                    return Err(Error::Config {
                        message: "the CA certificate (ASS_CACERT) holds no PEM certificate".into(),
                    });
                }
                ca_certificates.extend(certs);
            }
        }
        let http = crate::http::build_client(crate::http::ClientOptions {
            base_url: &base_url,
            timeout: self.timeout,
            user_agent: concat!("agentsecretstore-rust/", env!("CARGO_PKG_VERSION")),
            ca_certificates,
        })
        .map_err(|e| Error::Config { message: format!("cannot build HTTP client: {e}") })?;
        Ok(AgentVault {
            inner: Arc::new(Inner {
                http,
                base_url,
                agent_key,
                default_ttl: self.default_ttl,
                retry: self.retry,
                approval_poll_interval: self.approval_poll_interval,
                approval_wait: self.approval_wait,
                on_approval: self.on_approval,
                tokens: Mutex::new(Vec::new()),
                http2: AtomicBool::new(false),
            }),
        })
    }
}

/// Validates a base URL: http(s), a host, no credentials, and plain http only to loopback
/// unless `allow_insecure` is set. Returns it without a trailing `/`.
pub fn check_base_url(raw: &str, allow_insecure: bool) -> Result<String> {
    crate::http::check_base_url(raw, allow_insecure).map_err(|e| Error::Config { message: e.0 })
}
