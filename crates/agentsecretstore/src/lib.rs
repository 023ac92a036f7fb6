//! `agentsecretstore`: the Rust SDK for Agent Secret Store.
//!
//! An agent holds an agent key (`ass_…`); the client exchanges it for short-lived scoped tokens
//! and reads or writes secrets with them. [`AgentVault`] is async (tokio);
//! [`blocking::AgentVault`] (cargo feature `blocking`, on by default) is its synchronous twin.
//!
//! ```no_run
//! # async fn demo() -> Result<(), agentsecretstore::Error> {
//! let vault = agentsecretstore::AgentVault::from_env()?;
//! let key = vault.get_secret("production/gemini/GEMINI_API_KEY").await?;
//! // `key` zeroizes on drop and prints as [REDACTED].
//! # let _ = key;
//! # Ok(()) }
//! ```

#[cfg(feature = "blocking")]
pub mod blocking;
pub mod client;
pub mod duration;
pub mod path;
pub mod secret;
pub mod wire;

pub use client::{
    AgentVault, AgentVaultBuilder, ApprovalCallback, Error, ErrorSource, ImportOptions, IntoMetadata,
    IntoTtl, Result, RetryPolicy, ToScope, ToSecretPath, TokenOptions, WriteOptions, DEFAULT_BASE_URL,
};
pub use duration::{DurationError, HumanDuration};
pub use path::{Action, PathError, Scope, ScopeError, ScopeSet, SecretPath};
pub use secret::{AgentKey, SecretString, Token};
pub use wire::{
    AccessTier, ApprovalState, ApprovalStatus, Health, ImportResponse, Metadata, SecretListItem,
    SecretListResponse, SecretResponse, SecretType, SecretWriteResponse, Timestamp, TokenResponse,
};
