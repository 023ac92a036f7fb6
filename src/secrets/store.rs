//! The connection `vault-run secrets` makes: the launch's settings and agent key, one token for
//! exactly the writes (or the listing, or the delete), approvals shown as a launch shows them.

use std::time::Duration;

use futures_util::stream::{self, StreamExt};

use super::args::WriteSpec;
use super::error::SecretsError;
use crate::backend::ass::AssBackend;
use crate::backend::{BackendError, FailureKind, FetchContext};
use crate::deadline::Deadline;
use crate::inherited::Snapshot;
use crate::mapping::FileSettings;
use crate::settings::{Flags, Settings};
use agentsecretstore::client::{Error as ClientError, WriteOptions};
use agentsecretstore::path::{Action, Scope, SecretPath};
use agentsecretstore::secret::SecretString;
use agentsecretstore::wire::SecretListResponse;

/// Writes in flight at once for an import (a `.env` has tens of keys, not thousands).
const WRITES_IN_FLIGHT: usize = 8;

/// A path as typed on the command line (`namespace/KEY`), checked before any request.
pub fn parse_path(raw: &str) -> Result<SecretPath, SecretsError> {
    raw.parse::<SecretPath>().map_err(|e| SecretsError::Usage(format!("{e}")))
}

/// A client with the launch's settings, and how long a start-up may take.
pub struct Store {
    rt: tokio::runtime::Runtime,
    backend: AssBackend,
    deadline: Duration,
}

impl Store {
    /// Finds the agent key and checks the base URL exactly as a launch does (flags and
    /// environment; no mapping file is read, so none can choose where the key goes).
    pub fn connect(flags: &Flags) -> Result<Self, SecretsError> {
        let env = Snapshot::new(&crate::inherited::capture());
        let settings = Settings::merge(flags, &FileSettings::default(), env)?;
        let backend = AssBackend::new(&settings)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SecretsError::Internal(format!("cannot start the I/O runtime: {e}")))?;
        Ok(Self { rt, backend, deadline: settings.deadline })
    }

    /// A token for exactly `scopes`, waiting for an approval when the store asks for one.
    fn authorize(&self, scopes: &[Scope]) -> Result<(), SecretsError> {
        let deadline = Deadline::new(self.deadline);
        let ctx = FetchContext { deadline: &deadline, events: &crate::app::on_event };
        let out = self.rt.block_on(self.backend.token(scopes, &ctx));
        crate::status_line::stop();
        out.map_err(SecretsError::from)
    }

    /// Writes every `(path, value)` with one token scoped to exactly those writes; returns each
    /// path with its new version, in the order given. The first failure stops nothing already
    /// sent, and is returned with the names written before it.
    pub fn write(
        &self,
        secrets: &[(SecretPath, SecretString)],
        spec: &WriteSpec,
    ) -> Result<Vec<(SecretPath, u64)>, SecretsError> {
        let scopes: Vec<Scope> = secrets.iter().map(|(p, _)| p.scope(Action::Write)).collect();
        self.authorize(&scopes)?;
        let opts = write_options(spec);
        let client = self.backend.client();
        let results: Vec<Result<u64, ClientError>> = self.rt.block_on(
            stream::iter(secrets)
                .map(|(path, value)| {
                    let opts = opts.clone();
                    async move { client.set_secret_with(path, value.clone(), opts).await.map(|w| w.version) }
                })
                .buffered(WRITES_IN_FLIGHT)
                .collect(),
        );
        let mut written = Vec::new();
        let mut failed = Vec::new();
        for ((path, _), r) in secrets.iter().zip(results) {
            match r {
                Ok(version) => written.push((path.clone(), version)),
                Err(e) => failed.push((path.clone(), e)),
            }
        }
        match failed.into_iter().next() {
            None => Ok(written),
            Some((path, e)) => Err(SecretsError::Partial {
                first: call_error(e, "writing", &path.to_string(), self.backend.client().base_url()),
                written: written.into_iter().map(|(p, _)| p).collect(),
            }),
        }
    }

    /// Deletes `path` with a token scoped to exactly that delete.
    pub fn delete(&self, path: &SecretPath) -> Result<(), SecretsError> {
        self.authorize(&[path.scope(Action::Delete)])?;
        self.rt
            .block_on(self.backend.client().delete_secret(path))
            .map_err(|e| SecretsError::Backend(call_error(e, "deleting", &path.to_string(), self.base_url())))
    }

    /// Lists `namespace` (recursively) with a token scoped to exactly that listing.
    pub fn list(&self, namespace: &str) -> Result<SecretListResponse, SecretsError> {
        let ns = namespace.trim_matches('/');
        self.authorize(&[Scope::new(Action::Read, format!("{ns}/*"))])?;
        self.rt
            .block_on(self.backend.client().list_secrets(ns))
            .map_err(|e| SecretsError::Backend(call_error(e, "listing", ns, self.base_url())))
    }

    fn base_url(&self) -> &str {
        self.backend.client().base_url()
    }
}

fn write_options(spec: &WriteSpec) -> WriteOptions {
    let mut opts = WriteOptions::new();
    if let Some(t) = &spec.secret_type {
        opts = opts.secret_type(t.clone());
    }
    if let Some(t) = &spec.access_tier {
        opts = opts.access_tier(t.clone());
    }
    if !spec.meta.is_empty() {
        let map: std::collections::BTreeMap<String, String> = spec.meta.iter().cloned().collect();
        opts = opts.metadata(map);
    }
    opts
}

/// A failed call after the token was issued, explained for a person (never a value).
fn call_error(e: ClientError, doing: &str, what: &str, base_url: &str) -> BackendError {
    let kind = crate::backend::ass::kind_of(&e);
    let message = match &e {
        ClientError::NotFound { .. } => format!("{what}: not found; `vault-run secrets list` shows what exists"),
        ClientError::HumanAuthRequired { message } => {
            let how = if agentsecretstore::client::is_loopback_url(base_url) {
                "on vault-run dev, a human with its admin key (ASS_ADMIN_KEY) can do it through the API".to_owned()
            } else {
                format!("a human can do it in the Agent Secret Store dashboard ({base_url})")
            };
            format!("{doing} {what} needs a human: {message}; an agent may change only what its tier allows; {how}")
        }
        ClientError::Network { message, .. } => format!(
            "{doing} {what}: cannot reach Agent Secret Store at {base_url} ({message}); check --base-url/ASS_BASE_URL and that the server is running"
        ),
        _ => format!("{doing} {what} failed: {e}"),
    };
    BackendError::new(if kind == FailureKind::ApprovalPending { FailureKind::Auth } else { kind }, message)
}
