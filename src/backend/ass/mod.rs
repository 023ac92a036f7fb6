//! The Agent Secret Store backend: one token scoped to exactly the paths and globs of the
//! mapping, an approval wait when a human must agree, then every read concurrently.

pub mod glob;
pub mod key;
pub mod reference;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use self::glob::AssGlob;
use super::registry::{Destination, OptionSpec, Registration, StoreKey, ValueKind};
use super::{
    Backend, BackendError, Event, FailureKind, FetchContext, FetchFuture, Fetched, GlobRef, Options,
    ReadsInFlight, Reference, SecretValue, Tier, Wanted,
};
use agentsecretstore::client::{AgentVault, Error as ClientError, DEFAULT_BASE_URL};
use agentsecretstore::duration::HumanDuration;
use agentsecretstore::path::{Action, Scope, SecretPath};
use agentsecretstore::wire::AccessTier;

/// Variables holding the agent key; never passed to the child (unless `--keep-agent-key`).
pub const CREDENTIAL_VARS: &[&str] = &["ASS_AGENT_KEY", "ASS_AGENT_KEY_FILE", "ASS_ADMIN_KEY"];

/// `--agent-key-file` / `ASS_AGENT_KEY_FILE`.
pub const AGENT_KEY_FILE: OptionSpec = OptionSpec {
    flag: "agent-key-file",
    value_name: "PATH",
    help: "File holding the agent key (used when ASS_AGENT_KEY is not set)",
    env: Some("ASS_AGENT_KEY_FILE"),
    store: None,
    kind: ValueKind::Path,
};

/// `--base-url` / `ASS_BASE_URL` / `[store] base_url`: where the agent key is sent.
pub const BASE_URL: OptionSpec = OptionSpec {
    flag: "base-url",
    value_name: "URL",
    help: "Agent Secret Store base URL [default: https://api.agentsecretstore.com]",
    env: Some("ASS_BASE_URL"),
    store: Some(StoreKey {
        key: "base_url",
        expected: "a string like \"https://api.agentsecretstore.com\"",
        credential_destination: Some(Destination { default: DEFAULT_BASE_URL, credential: "the agent key" }),
    }),
    kind: ValueKind::Text,
};

/// Plain paths and `ass://PATH`, read with the agent key.
pub const REGISTRATION: Registration = Registration {
    scheme: super::reference::DEFAULT_SCHEME,
    syntax: reference::SYNTAX,
    make: AssBackend::boxed,
    credential_vars: CREDENTIAL_VARS,
    options: &[AGENT_KEY_FILE, BASE_URL],
    example: Some("ass://PATH"),
    glob_example: Some("production/stripe/*"),
    env_refs: true,
};

/// Reads from Agent Secret Store.
pub struct AssBackend {
    client: AgentVault,
    /// Where the agent key came from, to name it (never the key) when it is refused.
    key_source: key::KeySource,
    ttl: HumanDuration,
    concurrency: ReadsInFlight,
    approval_timeout: Duration,
}

impl AssBackend {
    /// Builds the backend: finds the agent key and checks the base URL.
    pub fn new(settings: &Options) -> Result<Self, BackendError> {
        let (agent_key, source) = key::load(settings.backend.path(&AGENT_KEY_FILE), &settings.env)?;
        tracing::debug!(source = ?source, "agent key found");
        let source = source.clone();
        let key_source = source;
        let client = AgentVault::builder()
            .agent_key(agent_key)
            .base_url(settings.backend.text(&BASE_URL).unwrap_or(DEFAULT_BASE_URL))
            .default_ttl(settings.ttl)
            .timeout(settings.timeout)
            .retries(settings.retries)
            .rate_limit_patience(settings.deadline)
            .allow_insecure_http(settings.allow_insecure_http)
            .ca_certificate_from_env()
            .and_then(|b| b.build())
            .map_err(|e| BackendError::new(FailureKind::Config, e.to_string()))?;
        Ok(Self {
            client,
            key_source,
            ttl: settings.ttl,
            concurrency: settings.concurrency,
            approval_timeout: settings.approval_timeout,
        })
    }

    /// [`AssBackend::new`], boxed for the registry.
    pub fn boxed(settings: &Options) -> Result<Box<dyn Backend>, BackendError> {
        Ok(Box::new(Self::new(settings)?))
    }

    /// The SDK client: `vault-run secrets` writes, lists and deletes with the token that
    /// [`token`](Self::token) got for exactly those calls.
    pub fn client(&self) -> &AgentVault {
        &self.client
    }

    /// Gets a token for exactly `scopes` (cached in the client), waiting for a human's approval
    /// when one is needed, and reporting the wait through `ctx.events`.
    pub async fn token(&self, scopes: &[Scope], ctx: &FetchContext<'_>) -> Result<(), BackendError> {
        // Fetching again (--watch) reuses the token, and its approval, while it lasts.
        if self.client.has_token_for(scopes).await {
            return Ok(());
        }
        let first = match self.client.request_token(scopes, Some(self.ttl)).await {
            // An earlier run's approval for exactly these scopes ended unused (it expired, or a
            // human denied it): the store says so once; say it and ask anew.
            Err(e @ (ClientError::ApprovalExpired { .. } | ClientError::ApprovalDenied { .. })) => {
                tracing::warn!("an earlier approval for {} ended: {e}; asking anew", describe(scopes));
                self.client.request_token(scopes, Some(self.ttl)).await
            }
            other => other,
        };
        let approval_id = match first {
            Ok(t) => {
                tracing::info!(token_id = %t.token_id, scopes = scopes.len(), "scoped token issued");
                return Ok(());
            }
            Err(ClientError::ApprovalRequired { approval_id, .. }) => approval_id,
            Err(e) => return Err(self.token_error(e, scopes)),
        };
        let what = describe(scopes);
        let how = self.how_to_approve(&approval_id);
        (ctx.events)(Event::ApprovalPending {
            approval_id: approval_id.clone(),
            what: what.clone(),
            wait: self.approval_timeout,
            how: how.clone(),
        });
        if self.approval_timeout.is_zero() {
            return Err(BackendError::new(
                FailureKind::ApprovalPending,
                format!("approval {approval_id} is required for {what}; {how}, then run again (or set --approval-timeout to wait)"),
            )
            .with_reason(format!("approval {approval_id} pending")));
        }
        {
            let _paused = ctx.deadline.pause();
            self.client.wait_for_approval(&approval_id, self.approval_timeout).await.map_err(
                |e| match e {
                    ClientError::ApprovalTimeout { .. } => BackendError::new(
                        FailureKind::ApprovalPending,
                        format!(
                            "approval {approval_id} for {what} was not decided within --approval-timeout {}; {how}, then run again",
                            HumanDuration::from(self.approval_timeout)
                        ),
                    )
                    .with_reason(format!("approval {approval_id} pending")),
                    other => self.token_error(other, scopes),
                },
            )?;
        }
        (ctx.events)(Event::Approved { approval_id: approval_id.clone() });
        match self.client.request_token(scopes, Some(self.ttl)).await {
            Ok(_) => Ok(()),
            Err(ClientError::ApprovalRequired { approval_id: again, .. }) => Err(BackendError::new(
                FailureKind::Auth,
                format!("approval {approval_id} was granted but the server asks again ({again}); run again"),
            )),
            Err(e) => Err(self.token_error(e, scopes)),
        }
    }

    /// How a human approves `id`: the service's dashboard, or on a local server (`vault-run
    /// dev`) the admin API call.
    fn how_to_approve(&self, id: &str) -> String {
        let url = self.client.base_url();
        if agentsecretstore::client::is_loopback_url(url) {
            format!(
                "approve it in the dashboard, or on vault-run dev with its admin key in ASS_ADMIN_KEY: ASS_BASE_URL={url} vault-run dev approve {id}"
            )
        } else {
            format!("approve it in the Agent Secret Store dashboard ({url}), approvals page, id {id}")
        }
    }

    /// A failed token request, explained by its likely cause: the server cannot be reached, is
    /// not an Agent Secret Store at all, or refused the agent key (named by its source).
    fn token_error(&self, e: ClientError, scopes: &[Scope]) -> BackendError {
        let url = self.client.base_url();
        let answer = match &e {
            // An untrusted certificate will not fix itself: a configuration error (78), not a
            // temporary one that systemd would restart forever.
            ClientError::Network { message, .. } if is_trust_failure(message) => {
                return BackendError::new(
                    FailureKind::Config,
                    format!(
                        "cannot reach Agent Secret Store at {url}: its TLS certificate is not trusted ({message}); for a private CA (vault-run dev --tls prints one) set ASS_CACERT=PATH to the CA's PEM file"
                    ),
                )
                .with_reason("certificate not trusted");
            }
            ClientError::Network { message, .. } if message.contains("invalid HTTP version") => {
                return BackendError::new(
                    FailureKind::Config,
                    format!(
                        "{url} did not answer in HTTP ({message}); the server may speak https: check the scheme of the base URL (--base-url, ASS_BASE_URL)"
                    ),
                )
                .with_reason("not HTTP");
            }
            ClientError::Network { message, .. } => {
                return BackendError::new(
                    FailureKind::Temporary,
                    format!(
                        "cannot reach Agent Secret Store at {url} ({message}); check the base URL (--base-url, ASS_BASE_URL or [store] base_url) and that the server is running"
                    ),
                )
                .with_reason("unreachable");
            }
            ClientError::Unauthorized { .. } => {
                return BackendError::new(
                    FailureKind::Auth,
                    format!(
                        "token request failed: {e}; the agent key from {} was refused by {url}: check that it is this server's key",
                        self.key_source.describe()
                    ),
                )
                .with_reason("agent key refused");
            }
            // The token route exists on every Agent Secret Store: a 404 (or another bare status
            // the contract does not have) means the URL points somewhere else.
            ClientError::NotFound { .. }
            | ClientError::Http { code: None, .. }
            | ClientError::Server { status: 501, .. } => {
                format!("POST /v1/tokens answered HTTP {}", e.status().unwrap_or_default())
            }
            // serde_json's message when the first byte is not JSON at all (HTML, text); a JSON
            // body of the wrong shape stays an invalid response (75), as do redirects and caps.
            ClientError::InvalidResponse { message }
                if message.contains("expected value at line 1")
                    || message.contains("expected ident at line 1") =>
            {
                "POST /v1/tokens answered with something that is not JSON".to_owned()
            }
            _ => return token_error(e, scopes),
        };
        BackendError::new(
            FailureKind::Config,
            format!(
                "{url} does not look like an Agent Secret Store ({answer}); check the base URL (--base-url, ASS_BASE_URL or [store] base_url)"
            ),
        )
        .with_reason("not an Agent Secret Store")
    }

    /// Lists each glob's namespace and keeps the matching, unexpired secrets.
    async fn expand(&self, globs: &[(GlobRef, AssGlob)]) -> Vec<Result<Vec<SecretPath>, BackendError>> {
        let lists = globs.iter().map(|(_, glob)| async move {
            let listing = self.client.list_secrets(glob.prefix()).await.map_err(|e| read_error(e, glob.pattern()))?;
            let mut paths: Vec<SecretPath> = listing
                .items
                .iter()
                .filter(|item| {
                    if item.expired {
                        tracing::warn!(namespace = %item.namespace, key = %item.key, "skipping expired secret matched by a glob");
                    }
                    !item.expired
                })
                .filter_map(|item| SecretPath::new(&item.namespace, &item.key).ok())
                .filter(|p| glob.matches(p))
                .collect();
            paths.sort();
            paths.dedup();
            Ok(paths)
        });
        futures_util::future::join_all(lists).await
    }

    /// Reads in flight for `reads` reads, by the protocol the server chose and the token's
    /// `round_trip` (see [`ReadsInFlight::choose`]).
    fn in_flight(&self, reads: usize, round_trip: Duration) -> usize {
        let http2 = self.client.uses_http2();
        let in_flight = self.concurrency.choose(reads, http2, round_trip);
        tracing::debug!(reads, in_flight, http2, ?round_trip, "reading");
        in_flight
    }

    /// Reads `paths`, each holding a permit of `limit` while in flight; answers by path.
    ///
    /// A read is started only once it holds its permit, so no more reads exist at once than
    /// are in flight (1,000 reads spawned up front, each waiting for a permit, held 2 MiB).
    async fn read_all(
        &self,
        paths: Vec<SecretPath>,
        limit: Arc<Semaphore>,
    ) -> HashMap<SecretPath, Result<SecretValue, BackendError>> {
        let mut set = JoinSet::new();
        let mut out = HashMap::new();
        let mut keep = |joined: Result<_, tokio::task::JoinError>| match joined {
            Ok((path, r)) => {
                out.insert(path, r);
            }
            Err(e) => tracing::error!(error = %e, "read task failed"),
        };
        for path in paths {
            let permit = limit.clone().acquire_owned().await.expect("the read pool is never closed");
            let client = self.client.clone();
            set.spawn(async move {
                let _permit = permit;
                let out = client
                    .get_secret_with_metadata(&path)
                    .await
                    .map(|r| SecretValue {
                        value: r.value,
                        version: Some(r.version),
                        tier: Some(tier(r.access_tier)),
                    })
                    .map_err(|e| read_error(e, &path.to_string()));
                (path, out)
            });
            while let Some(joined) = set.try_join_next() {
                keep(joined);
            }
        }
        while let Some(joined) = set.join_next().await {
            keep(joined);
        }
        out
    }
}

impl Backend for AssBackend {
    fn fetch<'a>(&'a self, wanted: &'a Wanted, ctx: &'a FetchContext<'a>) -> FetchFuture<'a> {
        Box::pin(async move {
            // A reference that does not parse (the mapping checked them all) is answered with
            // its error rather than failing the batch.
            let mut singles: HashMap<Reference, Result<SecretValue, BackendError>> = HashMap::new();
            let mut paths: Vec<(Reference, SecretPath)> = Vec::new();
            for r in &wanted.singles {
                match reference::path(r.rest()) {
                    Ok(p) => paths.push((r.clone(), p)),
                    Err(e) => {
                        singles.insert(
                            r.clone(),
                            Err(BackendError::new(FailureKind::Config, format!("{r}: {e}"))),
                        );
                    }
                }
            }
            let mut globs: HashMap<GlobRef, Result<Vec<(String, SecretValue)>, BackendError>> =
                HashMap::new();
            let mut patterns: Vec<(GlobRef, AssGlob)> = Vec::new();
            for g in &wanted.globs {
                match AssGlob::new(g.rest()) {
                    Ok(a) => patterns.push((g.clone(), a)),
                    Err(e) => {
                        globs.insert(g.clone(), Err(BackendError::new(FailureKind::Config, e.to_string())));
                    }
                }
            }
            let mut scopes: BTreeSet<Scope> = paths.iter().map(|(_, p)| p.scope(Action::Read)).collect();
            scopes.extend(patterns.iter().map(|(_, a)| a.scope()));
            let scopes: Vec<Scope> = scopes.into_iter().collect();
            if scopes.is_empty() {
                return Ok(Fetched { singles, globs });
            }
            let asked = std::time::Instant::now();
            self.token(&scopes, ctx).await?;

            // One bounded pool for every read. The singles need no listing: they are read while
            // the globs are listed; the matches once the listings are in. Until then a glob
            // counts as one read; its matches widen the pool.
            let round_trip = asked.elapsed();
            let in_flight = self.in_flight(paths.len() + patterns.len(), round_trip);
            let limit = Arc::new(Semaphore::new(in_flight));
            let globbed = async {
                let expanded = self.expand(&patterns).await;
                let matched: Vec<SecretPath> = expanded.iter().flatten().flatten().cloned().collect();
                if !patterns.is_empty() {
                    let wider = self.in_flight(paths.len() + matched.len(), round_trip);
                    limit.add_permits(wider.saturating_sub(in_flight));
                }
                let values = self.read_all(matched, limit.clone()).await;
                (expanded, values)
            };
            let single_paths = paths.iter().map(|(_, p)| p.clone()).collect();
            let (mut read, (expanded, mut values)) =
                futures_util::future::join(self.read_all(single_paths, limit.clone()), globbed).await;
            for (r, p) in paths {
                singles.insert(r, answer(&mut read, &p));
            }
            for ((g, _), listed) in patterns.into_iter().zip(expanded) {
                let matches = listed.and_then(|paths| {
                    paths.iter().map(|p| answer(&mut values, p).map(|v| (p.key().to_owned(), v))).collect()
                });
                globs.insert(g, matches);
            }
            Ok(Fetched { singles, globs })
        })
    }
}

/// The store's access tier, ranked as the SDK orders it (an unknown one above `critical`).
fn tier(t: AccessTier) -> Tier {
    let rank = match t {
        AccessTier::Standard => 0,
        AccessTier::Sensitive => 1,
        AccessTier::Critical => 2,
        _ => 3,
    };
    Tier::new(rank, t.to_string())
}

/// The value read for `path`; a read whose task died has none.
fn answer(
    read: &mut HashMap<SecretPath, Result<SecretValue, BackendError>>,
    path: &SecretPath,
) -> Result<SecretValue, BackendError> {
    match read.get(path) {
        Some(r) => r.clone(),
        None => Err(BackendError::new(FailureKind::Temporary, format!("{path}: read task failed"))),
    }
}

fn describe(scopes: &[Scope]) -> String {
    let shown: Vec<&str> = scopes.iter().take(5).map(Scope::pattern).collect();
    let more = scopes.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Whether a connection failed because the server's certificate is not trusted (rustls' words).
fn is_trust_failure(message: &str) -> bool {
    ["invalid peer certificate", "UnknownIssuer", "certificate verify failed", "BadSignature"]
        .iter()
        .any(|m| message.contains(m))
}

/// The failure kind (and so the exit code) of a client error.
pub fn kind_of(e: &ClientError) -> FailureKind {
    match e {
        ClientError::Unauthorized { .. }
        | ClientError::ScopeDenied { .. }
        | ClientError::HumanAuthRequired { .. }
        | ClientError::ApprovalDenied { .. }
        | ClientError::ApprovalExpired { .. } => FailureKind::Auth,
        ClientError::ApprovalRequired { .. } | ClientError::ApprovalTimeout { .. } => {
            FailureKind::ApprovalPending
        }
        ClientError::NotFound { .. } | ClientError::SecretExpired { .. } => FailureKind::Missing,
        ClientError::Validation { .. } | ClientError::Config { .. } => FailureKind::Config,
        _ => FailureKind::Temporary,
    }
}

fn token_error(e: ClientError, scopes: &[Scope]) -> BackendError {
    let kind = kind_of(&e);
    let hint = match &e {
        ClientError::Unauthorized { .. } => {
            "; check the agent key (ASS_AGENT_KEY) and the base URL".to_owned()
        }
        ClientError::ScopeDenied { .. } => {
            let action = scopes.first().map_or("read", |s| s.action().as_str());
            format!("; the agent's allowed scopes must cover secrets:{action} on {}", describe(scopes))
        }
        ClientError::ApprovalDenied { .. } | ClientError::ApprovalExpired { .. } => String::new(),
        _ if kind == FailureKind::Temporary => "; try again later".to_owned(),
        _ => String::new(),
    };
    let out = BackendError::new(kind, format!("token request failed: {e}{hint}"));
    match &e {
        ClientError::ScopeDenied { .. } => out.with_reason("denied (scope)"),
        ClientError::ApprovalDenied { .. } => out.with_reason("approval denied"),
        ClientError::ApprovalExpired { .. } => out.with_reason("approval expired"),
        ClientError::RateLimited { .. } => out.with_reason("rate limited"),
        ClientError::Server { .. } => out.with_reason("server error"),
        _ => out,
    }
}

fn read_error(e: ClientError, what: &str) -> BackendError {
    let kind = kind_of(&e);
    let message = match &e {
        ClientError::NotFound { .. } => format!("secret {what} not found"),
        ClientError::SecretExpired { .. } => format!("secret {what} has expired"),
        _ => format!("reading {what} failed: {e}"),
    };
    let out = BackendError::new(kind, message);
    match &e {
        ClientError::SecretExpired { .. } => out.with_reason("expired"),
        ClientError::Network { .. } => out.with_reason("unreachable"),
        ClientError::ScopeDenied { .. } => out.with_reason("denied (scope)"),
        _ => out,
    }
}
