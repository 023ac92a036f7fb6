//! The blocking twin of [`crate::client::AgentVault`], for code without an async runtime.
//! Same methods, same errors; each call runs on a private single-threaded runtime.
//! Do not call it from inside an async runtime (tokio panics on nested `block_on`).

use std::time::Duration;

use crate::client::{self, Result, ToSecretPath, TokenOptions, WriteOptions};
use crate::duration::HumanDuration;
use crate::path::Scope;
use crate::secret::{AgentKey, SecretString};
use crate::wire::{
    ApprovalStatus, Health, ImportResponse, SecretListResponse, SecretResponse, SecretWriteResponse,
    TokenResponse,
};

/// Blocking client for Agent Secret Store.
#[derive(Debug)]
pub struct AgentVault {
    inner: client::AgentVault,
    rt: tokio::runtime::Runtime,
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
    pub fn default_ttl(self, ttl: HumanDuration) -> Self {
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
    /// Checks the settings and builds the client.
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
        Ok(AgentVault { inner, rt })
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

    /// The async client underneath.
    pub fn as_async(&self) -> &client::AgentVault {
        &self.inner
    }

    /// See [`client::AgentVault::request_token`].
    pub fn request_token(&self, scopes: &[Scope], ttl: Option<HumanDuration>) -> Result<TokenResponse> {
        self.rt.block_on(self.inner.request_token(scopes, ttl))
    }
    /// See [`client::AgentVault::request_token_with`].
    pub fn request_token_with(&self, scopes: &[Scope], opts: TokenOptions) -> Result<TokenResponse> {
        self.rt.block_on(self.inner.request_token_with(scopes, opts))
    }
    /// See [`client::AgentVault::get_secret`].
    pub fn get_secret(&self, path: impl ToSecretPath) -> Result<SecretString> {
        self.rt.block_on(self.inner.get_secret(path))
    }
    /// See [`client::AgentVault::get_secret_with_metadata`].
    pub fn get_secret_with_metadata(&self, path: impl ToSecretPath) -> Result<SecretResponse> {
        self.rt.block_on(self.inner.get_secret_with_metadata(path))
    }
    /// See [`client::AgentVault::set_secret`].
    pub fn set_secret(
        &self,
        path: impl ToSecretPath,
        value: impl Into<SecretString>,
        opts: WriteOptions,
    ) -> Result<SecretWriteResponse> {
        self.rt.block_on(self.inner.set_secret(path, value, opts))
    }
    /// See [`client::AgentVault::delete_secret`].
    pub fn delete_secret(&self, path: impl ToSecretPath) -> Result<()> {
        self.rt.block_on(self.inner.delete_secret(path))
    }
    /// See [`client::AgentVault::list_secrets`].
    pub fn list_secrets(&self, namespace: &str) -> Result<SecretListResponse> {
        self.rt.block_on(self.inner.list_secrets(namespace))
    }
    /// See [`client::AgentVault::import_env`].
    pub fn import_env(
        &self,
        content: impl Into<SecretString>,
        namespace: &str,
        opts: WriteOptions,
    ) -> Result<ImportResponse> {
        self.rt.block_on(self.inner.import_env(content, namespace, opts))
    }
    /// See [`client::AgentVault::approval_status`].
    pub fn approval_status(&self, approval_id: &str) -> Result<ApprovalStatus> {
        self.rt.block_on(self.inner.approval_status(approval_id))
    }
    /// See [`client::AgentVault::wait_for_approval`].
    pub fn wait_for_approval(&self, approval_id: &str, timeout: Duration) -> Result<ApprovalStatus> {
        self.rt.block_on(self.inner.wait_for_approval(approval_id, timeout))
    }
    /// See [`client::AgentVault::health`].
    pub fn health(&self) -> Result<Health> {
        self.rt.block_on(self.inner.health())
    }
}
