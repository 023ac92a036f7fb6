//! The blocking twin of [`crate::client::AgentVault`], for code without an async runtime.
//! Same methods, same errors; each call runs on a private single-threaded runtime.
//! Calling it from inside an async runtime panics with a message saying so: use the async
//! [`crate::AgentVault`] there.

use std::time::Duration;

use std::sync::Arc;

use crate::client::{
    self, ImportOptions, IntoTtl, Result, ToScope, ToSecretPath, TokenOptions, WriteOptions,
};
use crate::secret::{AgentKey, SecretString};
use crate::wire::{
    ApprovalStatus, Health, ImportResponse, SecretListResponse, SecretResponse, SecretWriteResponse,
    TokenResponse,
};

/// Blocking client for Agent Secret Store. Cheap to clone; clones share the token cache and
/// the runtime.
///
/// ```no_run
/// # fn demo() -> agentsecretstore::Result<()> {
/// let vault = agentsecretstore::blocking::AgentVault::from_env()?;
/// let key = vault.get_secret("production/gemini/GEMINI_API_KEY")?;
/// # let _ = key; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AgentVault {
    inner: client::AgentVault,
    rt: Arc<tokio::runtime::Runtime>,
}

/// Builds a blocking [`AgentVault`]; the same settings as the async builder.
#[derive(Debug, Clone, Default)]
pub struct AgentVaultBuilder(client::AgentVaultBuilder);

impl AgentVaultBuilder {
    /// The agent key (`ass_…`).
    pub fn agent_key(self, key: impl Into<AgentKey>) -> Self {
        Self(self.0.agent_key(key))
    }
    /// Base URL without `/v1`.
    pub fn base_url(self, url: impl Into<String>) -> Self {
        Self(self.0.base_url(url))
    }
    /// TTL of tokens the client requests by itself.
    pub fn default_ttl(self, ttl: impl IntoTtl) -> Self {
        Self(self.0.default_ttl(ttl))
    }
    /// Per-request timeout.
    pub fn timeout(self, timeout: Duration) -> Self {
        Self(self.0.timeout(timeout))
    }
    /// Retries after the first attempt.
    pub fn retries(self, retries: u32) -> Self {
        Self(self.0.retries(retries))
    }
    /// Full retry policy.
    pub fn retry_policy(self, policy: client::RetryPolicy) -> Self {
        Self(self.0.retry_policy(policy))
    }
    /// How often `wait_for_approval` polls.
    pub fn approval_poll_interval(self, every: Duration) -> Self {
        Self(self.0.approval_poll_interval(every))
    }
    /// Allows plain `http://` to a non-loopback host.
    pub fn allow_insecure_http(self, allow: bool) -> Self {
        Self(self.0.allow_insecure_http(allow))
    }
    /// Trusts a private CA (PEM) besides the platform's and the bundled roots.
    pub fn ca_certificate(self, pem: impl Into<Vec<u8>>) -> Self {
        Self(self.0.ca_certificate(pem))
    }
    /// Opt-in: a read that needs an approval waits up to `timeout` for it, then goes on.
    pub fn wait_for_approvals(self, timeout: Duration) -> Self {
        Self(self.0.wait_for_approvals(timeout))
    }
    /// Called with the approval id when an automatic approval wait starts.
    pub fn on_approval(self, callback: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self(self.0.on_approval(callback))
    }

    /// Checks the settings and builds the client.
    ///
    /// # Errors
    /// As [`client::AgentVaultBuilder::build`], and [`client::Error::Config`] when the I/O
    /// runtime cannot start.
    pub fn build(self) -> Result<AgentVault> {
        // The runtime must exist before reqwest's client is built inside it.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| client::Error::Config { message: format!("cannot start the I/O runtime: {e}") })?;
        let inner = {
            let _guard = rt.enter();
            self.0.build()?
        };
        Ok(AgentVault { inner, rt: Arc::new(rt) })
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
        AgentVaultBuilder(client::AgentVaultBuilder::from_env()?).build()
    }

    /// Runs `fut` to completion on the private runtime. Inside an async runtime that would
    /// deadlock or panic deep in tokio; say what to do instead.
    fn block_on<F: std::future::Future>(&self, fut: F) -> F::Output {
        if tokio::runtime::Handle::try_current().is_ok() {
            panic!(
                "agentsecretstore::blocking::AgentVault was called from inside an async runtime; \
                 use the async agentsecretstore::AgentVault there (or call from spawn_blocking)"
            );
        }
        self.rt.block_on(fut)
    }

    /// The async client underneath.
    pub fn as_async(&self) -> &client::AgentVault {
        &self.inner
    }

    /// See [`client::AgentVault::request_token`].
    ///
    /// # Errors
    /// As the async method.
    pub fn request_token<S: ToScope>(
        &self,
        scopes: impl IntoIterator<Item = S>,
        ttl: impl IntoTtl,
    ) -> Result<TokenResponse> {
        self.block_on(self.inner.request_token(scopes, ttl))
    }
    /// See [`client::AgentVault::request_token_with`].
    ///
    /// # Errors
    /// As the async method.
    pub fn request_token_with<S: ToScope>(
        &self,
        scopes: impl IntoIterator<Item = S>,
        opts: TokenOptions,
    ) -> Result<TokenResponse> {
        self.block_on(self.inner.request_token_with(scopes, opts))
    }
    /// See [`client::AgentVault::get_secret`].
    ///
    /// # Errors
    /// As the async method.
    pub fn get_secret(&self, path: impl ToSecretPath) -> Result<SecretString> {
        self.block_on(self.inner.get_secret(path))
    }
    /// See [`client::AgentVault::get_secret_with_metadata`].
    ///
    /// # Errors
    /// As the async method.
    pub fn get_secret_with_metadata(&self, path: impl ToSecretPath) -> Result<SecretResponse> {
        self.block_on(self.inner.get_secret_with_metadata(path))
    }
    /// See [`client::AgentVault::set_secret`].
    ///
    /// # Errors
    /// As the async method.
    pub fn set_secret(
        &self,
        path: impl ToSecretPath,
        value: impl Into<SecretString>,
    ) -> Result<SecretWriteResponse> {
        self.block_on(self.inner.set_secret(path, value))
    }
    /// See [`client::AgentVault::set_secret_with`].
    ///
    /// # Errors
    /// As the async method.
    pub fn set_secret_with(
        &self,
        path: impl ToSecretPath,
        value: impl Into<SecretString>,
        opts: WriteOptions,
    ) -> Result<SecretWriteResponse> {
        self.block_on(self.inner.set_secret_with(path, value, opts))
    }
    /// See [`client::AgentVault::delete_secret`].
    ///
    /// # Errors
    /// As the async method.
    pub fn delete_secret(&self, path: impl ToSecretPath) -> Result<()> {
        self.block_on(self.inner.delete_secret(path))
    }
    /// See [`client::AgentVault::list_secrets`].
    ///
    /// # Errors
    /// As the async method.
    pub fn list_secrets(&self, namespace: &str) -> Result<SecretListResponse> {
        self.block_on(self.inner.list_secrets(namespace))
    }
    /// See [`client::AgentVault::import_env`].
    ///
    /// # Errors
    /// As the async method.
    pub fn import_env(
        &self,
        content: impl Into<SecretString>,
        namespace: &str,
        opts: ImportOptions,
    ) -> Result<ImportResponse> {
        self.block_on(self.inner.import_env(content, namespace, opts))
    }
    /// See [`client::AgentVault::approval_status`].
    ///
    /// # Errors
    /// As the async method.
    pub fn approval_status(&self, approval_id: &str) -> Result<ApprovalStatus> {
        self.block_on(self.inner.approval_status(approval_id))
    }
    /// See [`client::AgentVault::wait_for_approval`].
    ///
    /// # Errors
    /// As the async method.
    pub fn wait_for_approval(&self, approval_id: &str, timeout: Duration) -> Result<ApprovalStatus> {
        self.block_on(self.inner.wait_for_approval(approval_id, timeout))
    }
    /// See [`client::AgentVault::health`].
    ///
    /// # Errors
    /// As the async method.
    pub fn health(&self) -> Result<Health> {
        self.block_on(self.inner.health())
    }
}
