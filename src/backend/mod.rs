//! Backends: where secrets come from. Each one sits behind the small [`Backend`] trait, declares
//! itself in a [`Registration`] (see [`registry`]) and is named once in [`REGISTRY`]; adding one
//! is a folder here plus its name in the `backends!` line.

mod options;
pub mod private_file;
pub mod reference;
pub mod registry;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::deadline::Deadline;
use agentsecretstore::secret::SecretString;
pub use options::{Options, ReadsInFlight};
pub use reference::{GlobRef, Reference, ReferenceError};
pub use registry::{constructor, credential_vars, registration, Registration};

/// A boxed future, so that backends can live in a registry as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What [`Backend::fetch`] returns.
pub type FetchFuture<'a> = BoxFuture<'a, Result<Fetched, BackendError>>;

/// What made a fetch fail; the exit code follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Credentials refused, scope denied, approval denied or expired (exit 77).
    Auth,
    /// A human's approval is still outstanding (exit 75 once the wait runs out).
    ApprovalPending,
    /// The secret, field or path does not exist or has expired (exit 69).
    Missing,
    /// Network, 5xx, rate limit, sealed server, deadline (exit 75).
    Temporary,
    /// Our configuration or request is wrong (exit 78).
    Config,
}

/// A failed fetch: what kind, and a message that names no secret value or credential.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    /// The kind, for the exit code and the `check` table.
    pub kind: FailureKind,
    /// What failed and what to do.
    pub message: String,
    /// A few words for the `check` table (`no agent key`, `unreachable`); when `None`, the
    /// table says what the kind implies.
    pub reason: Option<String>,
    /// The whole batch failed (no key, the token refused, the server unreachable): the message
    /// is about no entry in particular, so none is named in front of it.
    pub whole_batch: bool,
}

impl BackendError {
    /// A new error.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), reason: None, whole_batch: false }
    }

    /// The same error with a short reason for the `check` table.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The short reason: the one given, or what the kind implies.
    pub fn short_reason(&self) -> String {
        if let Some(r) = &self.reason {
            return r.clone();
        }
        match self.kind {
            FailureKind::Auth => "denied",
            FailureKind::ApprovalPending => "approval pending",
            FailureKind::Missing => "not found",
            FailureKind::Temporary => "temporary failure",
            FailureKind::Config => "configuration error",
        }
        .to_owned()
    }
}

/// How closely a backend guards a secret (the store's access tier), for `check`. Ordered by
/// rank, so that a template reports its most guarded part.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tier {
    rank: u8,
    name: String,
}

impl Tier {
    /// A tier named `name`; a higher `rank` is more guarded.
    pub fn new(rank: u8, name: impl Into<String>) -> Self {
        Self { rank, name: name.into() }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A fetched value with what is known about it.
#[derive(Debug, Clone)]
pub struct SecretValue {
    /// The value.
    pub value: SecretString,
    /// Version, when the backend has versions.
    pub version: Option<u64>,
    /// How closely it is guarded, when the backend has such a notion.
    pub tier: Option<Tier>,
}

/// Everything one backend must fetch in a run.
#[derive(Debug, Default, Clone)]
pub struct Wanted {
    /// Single secrets (deduplicated).
    pub singles: Vec<Reference>,
    /// Glob references.
    pub globs: Vec<GlobRef>,
}

/// What one backend fetched, keyed by the wanted references; a reference without an answer is
/// reported as the backend's fault, never guessed.
#[derive(Debug, Default)]
pub struct Fetched {
    /// One result per wanted single.
    pub singles: HashMap<Reference, Result<SecretValue, BackendError>>,
    /// Per wanted glob: the matches as (key, value), in a stable order.
    pub globs: HashMap<GlobRef, Result<Vec<(String, SecretValue)>, BackendError>>,
}

/// Something a backend reports while it works (for logs and systemd `STATUS=`).
#[derive(Debug, Clone)]
pub enum Event {
    /// A human must approve before the secrets can be read.
    ApprovalPending {
        /// The approval id to approve.
        approval_id: String,
        /// What it is for (paths or scopes, never values).
        what: String,
        /// How long vault-run will wait.
        wait: Duration,
        /// How a human approves it (where, or the command).
        how: String,
    },
    /// The approval came through.
    Approved {
        /// The approval id.
        approval_id: String,
    },
}

/// What a backend may use while fetching.
pub struct FetchContext<'a> {
    /// The start-up deadline (pause it while waiting for a human).
    pub deadline: &'a Deadline,
    /// Reports progress.
    pub events: &'a (dyn Fn(Event) + Send + Sync),
}

/// A source of secrets.
pub trait Backend: Send + Sync {
    /// Fetches everything wanted, in one batch so the backend can use one token or login and
    /// run its reads concurrently. A failure of the whole batch (login, token) is an `Err`;
    /// failures of single items go into [`Fetched`].
    fn fetch<'a>(&'a self, wanted: &'a Wanted, ctx: &'a FetchContext<'a>) -> FetchFuture<'a>;

    /// Releases what the batch acquired (e.g. revokes a child token) before the exec.
    fn finish(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// Declares every backend module and lists it in [`REGISTRY`]: adding a backend is its folder
/// (which exports a `REGISTRATION`) plus its name here.
macro_rules! backends {
    ($($backend:ident),* $(,)?) => {
        $(pub mod $backend;)*

        /// Every backend, in the order messages and `--help` list them.
        pub const REGISTRY: &[Registration] = &[$($backend::REGISTRATION),*];
    };
}
backends!(ass, vault, file, aws);
