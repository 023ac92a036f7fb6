//! The Agent Secret Store client: the official SDKs' surface in Rust idiom.
//!
//! ```no_run
//! # async fn demo() -> Result<(), agentsecretstore::Error> {
//! let vault = agentsecretstore::AgentVault::from_env()?;
//! let key = vault.get_secret("production/gemini/GEMINI_API_KEY").await?;
//! // `key` zeroizes on drop and prints as [REDACTED].
//! # Ok(()) }
//! ```

mod approvals;
mod args;
mod builder;
mod error;
mod options;
mod secrets;
mod token;
mod tokens;
pub mod transport;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use tokio::sync::Mutex;

pub use crate::http::is_loopback_url;
pub use error::{Error, ErrorSource, Result};
pub use token::CachedToken;
pub use transport::RetryPolicy;

pub use args::{IntoMetadata, IntoTtl, ToScope, ToSecretPath};
pub use builder::{check_base_url, AgentVaultBuilder, ApprovalCallback};
pub use options::{ImportOptions, TokenOptions, WriteOptions};

use crate::duration::HumanDuration;
use crate::secret::AgentKey;
use crate::wire::Health;

/// The hosted service.
pub const DEFAULT_BASE_URL: &str = "https://api.agentsecretstore.com";

/// Async client for Agent Secret Store. Cheap to clone; clones share the token cache.
#[derive(Clone)]
pub struct AgentVault {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    agent_key: AgentKey,
    default_ttl: HumanDuration,
    retry: RetryPolicy,
    approval_poll_interval: Duration,
    approval_wait: Option<Duration>,
    on_approval: Option<ApprovalCallback>,
    // Every valid token, one per scope set. A tokio mutex held across the token request:
    // concurrent callers wait for one token instead of each asking for their own.
    tokens: Mutex<Vec<CachedToken>>,
    // Whether the last token answer came over HTTP/2, i.e. later requests share its connection.
    http2: AtomicBool,
}

impl std::fmt::Debug for AgentVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentVault")
            .field("base_url", &self.inner.base_url)
            .field("agent_key", &self.inner.agent_key)
            .finish_non_exhaustive()
    }
}

impl AgentVault {
    /// A builder with the SDK defaults.
    pub fn builder() -> AgentVaultBuilder {
        AgentVaultBuilder::default()
    }

    /// A client for `agent_key` at the default base URL.
    pub fn new(agent_key: impl Into<AgentKey>) -> Result<Self> {
        Self::builder().agent_key(agent_key).build()
    }

    /// A client from `ASS_AGENT_KEY` and `ASS_BASE_URL`.
    pub fn from_env() -> Result<Self> {
        AgentVaultBuilder::from_env()?.build()
    }

    /// The base URL in use.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.inner.base_url)
    }

    /// `GET /v1/health`.
    pub async fn health(&self) -> Result<Health> {
        let body =
            transport::send(&self.inner.http, &self.inner.retry, Method::GET, &self.url("/v1/health"), |r| r)
                .await?;
        body.json("health")
    }
}

#[cfg(test)]
mod tests {
    use super::secrets::check_namespace;
    use super::*;

    #[test]
    fn base_url_rules() {
        assert_eq!(check_base_url("https://api.example.com/", false).unwrap(), "https://api.example.com");
        assert!(check_base_url("http://127.0.0.1:8080", false).is_ok());
        assert!(check_base_url("http://localhost:8080", false).is_ok());
        assert!(check_base_url("http://[::1]:8080", false).is_ok());
        assert!(check_base_url("http://example.com", false).is_err());
        assert!(check_base_url("http://example.com", true).is_ok());
        assert!(check_base_url("ftp://example.com", true).is_err());
        assert!(check_base_url("https://u:p@example.com", false).is_err());
        assert!(check_base_url("not a url", false).is_err());
    }

    #[test]
    fn builder_requires_key() {
        assert!(matches!(AgentVault::builder().build(), Err(Error::Config { .. })));
        let v = AgentVault::new(AgentKey::new("ass_secretkey")).unwrap();
        assert!(!format!("{v:?}").contains("secretkey"));
    }

    #[test]
    fn namespaces() {
        assert_eq!(check_namespace("prod/").unwrap(), "prod");
        assert!(check_namespace("").is_err());
        assert!(check_namespace("a//b").is_err());
    }
}
