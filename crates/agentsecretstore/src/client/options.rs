//! Options of the write, import and token calls.

use super::args::{IntoMetadata, IntoTtl};
use super::Result;
use crate::duration::HumanDuration;
use crate::wire::{AccessTier, SecretType};

/// Options for [`AgentVault::set_secret_with`](crate::AgentVault::set_secret_with): type, tier, metadata, lifetime.
///
/// ```
/// use agentsecretstore::{AccessTier, WriteOptions};
/// let opts = WriteOptions::new()
///     .access_tier(AccessTier::Sensitive)
///     .metadata(serde_json::json!({"owner": "payments"}))
///     .ttl("30d")?;
/// # let _ = opts;
/// # Ok::<(), agentsecretstore::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Kind of secret (server default `custom`).
    pub secret_type: Option<SecretType>,
    /// Tier (server default `standard`).
    pub access_tier: Option<AccessTier>,
    /// Metadata: a JSON object.
    pub metadata: Option<serde_json::Value>,
    /// Secret lifetime.
    pub ttl: Option<HumanDuration>,
}

impl WriteOptions {
    /// No options: the server's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the kind of secret.
    pub fn secret_type(mut self, t: SecretType) -> Self {
        self.secret_type = Some(t);
        self
    }

    /// Sets the tier. Creating a sensitive or critical secret needs no approval; overwriting
    /// one follows its tier.
    pub fn access_tier(mut self, tier: AccessTier) -> Self {
        self.access_tier = Some(tier);
        self
    }

    /// Sets the metadata, from a JSON object or a map.
    pub fn metadata(mut self, m: impl IntoMetadata) -> Self {
        self.metadata = Some(m.into_metadata());
        self
    }

    /// Sets the secret's lifetime (`"30d"`, `Duration::from_secs(60)`, …).
    ///
    /// # Errors
    /// [`Error::Validation`](super::Error::Validation) when the text is not a duration.
    pub fn ttl(mut self, ttl: impl IntoTtl) -> Result<Self> {
        self.ttl = ttl.into_ttl()?;
        Ok(self)
    }
}

/// Options for [`AgentVault::import_env`](crate::AgentVault::import_env): applied to every imported secret.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Kind of every imported secret.
    pub secret_type: Option<SecretType>,
    /// Tier of every imported secret.
    pub access_tier: Option<AccessTier>,
    /// Metadata of every imported secret: a JSON object.
    pub metadata: Option<serde_json::Value>,
}

impl ImportOptions {
    /// No options: the server's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the kind of every imported secret.
    pub fn secret_type(mut self, t: SecretType) -> Self {
        self.secret_type = Some(t);
        self
    }

    /// Sets the tier of every imported secret.
    pub fn access_tier(mut self, tier: AccessTier) -> Self {
        self.access_tier = Some(tier);
        self
    }

    /// Sets the metadata of every imported secret.
    pub fn metadata(mut self, m: impl IntoMetadata) -> Self {
        self.metadata = Some(m.into_metadata());
        self
    }
}

/// Options for [`AgentVault::request_token_with`](crate::AgentVault::request_token_with).
#[derive(Debug, Clone, Default)]
pub struct TokenOptions {
    /// Token lifetime; the client's default TTL when `None`.
    pub ttl: Option<HumanDuration>,
    /// How many requests the token may serve.
    pub max_uses: Option<u64>,
    /// Client addresses allowed to use it.
    pub ip_allowlist: Option<Vec<String>>,
}
