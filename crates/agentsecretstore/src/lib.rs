//! `agentsecretstore`: the Rust SDK for Agent Secret Store.
//!
//! An agent holds an agent key (`ass_…`); the client trades it for short-lived scoped tokens
//! (cached, one per scope set, while valid) and reads or writes secrets with them.
//! [`AgentVault`] is async (tokio); [`blocking::AgentVault`] (cargo feature `blocking`, on by
//! default) is its synchronous twin. TLS is rustls with the platform's roots and the bundled
//! Mozilla roots, plus a private CA from `ASS_CACERT` or
//! [`AgentVaultBuilder::ca_certificate`]; no OpenSSL.
//!
//! # Quick start
//!
//! ```toml
//! [dependencies]
//! # from a clone of the vault-run repository: cargo add agentsecretstore --path ../vault-run/crates/agentsecretstore
//! agentsecretstore = { path = "../vault-run/crates/agentsecretstore" }
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! ```
//!
//! ```no_run
//! use agentsecretstore::{AccessTier, AgentVault, Error, WriteOptions};
//!
//! # async fn demo() -> agentsecretstore::Result<()> {
//! // ASS_AGENT_KEY, and ASS_BASE_URL for anything but the hosted service.
//! let vault = AgentVault::from_env()?;
//!
//! // Read: the value zeroizes on drop and prints as [REDACTED].
//! let key = vault.get_secret("production/gemini/GEMINI_API_KEY").await?;
//! let full = vault.get_secret_with_metadata("production/db/PASSWORD").await?;
//! println!("{} chars; db password version {}", key.expose().len(), full.version);
//!
//! // Write: plain, or with type, tier, metadata, lifetime.
//! vault.set_secret("staging/app/FLAGS", "beta").await?;
//! let opts = WriteOptions::new()
//!     .access_tier(AccessTier::Sensitive)
//!     .metadata(serde_json::json!({"owner": "payments"}));
//! vault.set_secret_with("staging/payments/STRIPE_KEY", "sk_test_…", opts).await?;
//!
//! // Errors: one type, a stable code, and whether retrying can help.
//! match vault.get_secret("production/app/MISSING").await {
//!     Err(Error::NotFound { .. }) => println!("no such secret"),
//!     Err(Error::ApprovalRequired { approval_id, .. }) => println!("ask a human to approve {approval_id}"),
//!     Err(e) if e.is_retryable() => println!("try again later: {e}"),
//!     other => { other?; }
//! }
//! # Ok(()) }
//! ```
//!
//! Reads that need a human's approval fail with [`Error::ApprovalRequired`] unless the client
//! was built with [`AgentVaultBuilder::wait_for_approvals`]. The examples in `examples/` are
//! the seed SDK's, one for one; run them against `vault-run dev`
//! (`cargo run -p agentsecretstore --example quickstart`).

#![warn(missing_docs)]

#[cfg(feature = "blocking")]
pub mod blocking;
pub mod client;
pub mod duration;
pub mod http;
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
