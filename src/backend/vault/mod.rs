//! The Vault/OpenBao backend: `vault://MOUNT/PATH#FIELD` references read from KV v1 or v2.
//!
//! Least privilege in time: vault-run logs in (or takes the given token), creates a child
//! token with `--ttl` and a use count covering the reads, reads with it, and revokes it before
//! the exec. A parent token that may not create tokens is used directly, with one warning.

pub mod auth;
pub mod error;
pub mod kv;
pub mod reference;
pub mod transport;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use futures_util::StreamExt;
use reqwest::Method;
use serde::Deserialize;

use super::registry::{OptionSpec, Registration, ValueKind};
use super::{
    Backend, BackendError, BoxFuture, FailureKind, FetchContext, FetchFuture, Fetched, GlobRef, Options,
    ReadsInFlight, Reference, SecretValue, Wanted,
};
use agentsecretstore::duration::HumanDuration;
use agentsecretstore::path::encode_segment;
use agentsecretstore::secret::Token;
use agentsecretstore::http::{self, RetryPolicy};
use auth::Credential;
use error::VaultError;
use reference::VaultRef;
use transport::Transport;

/// `--vault-token-file`.
pub const TOKEN_FILE: OptionSpec = OptionSpec {
    flag: "vault-token-file",
    value_name: "PATH",
    help: "File holding the Vault/OpenBao token (used when VAULT_TOKEN/BAO_TOKEN are not set)",
    env: None,
    store: None,
    kind: ValueKind::Path,
};

/// `vault://MOUNT/PATH#FIELD`, read from `VAULT_ADDR` with a Vault token or AppRole.
pub const REGISTRATION: Registration = Registration {
    scheme: "vault",
    syntax: reference::SYNTAX,
    make: VaultBackend::boxed,
    credential_vars: auth::CREDENTIAL_VARS,
    options: &[TOKEN_FILE],
    example: Some("vault://MOUNT/PATH#FIELD"),
    glob_example: Some("vault://MOUNT/PATH#*"),
    env_refs: true,
};

/// Reads from Vault or OpenBao.
pub struct VaultBackend {
    transport: Transport,
    namespace: Option<String>,
    credential: Credential,
    ttl: HumanDuration,
    concurrency: ReadsInFlight,
    /// Whether the server answered over HTTP/2 (ALPN over TLS): reads then share a connection.
    http2: AtomicBool,
    /// Tokens to revoke in `finish`.
    to_revoke: Mutex<Vec<Token>>,
}

#[derive(Deserialize)]
struct AuthReply {
    auth: AuthData,
}

#[derive(Deserialize)]
struct AuthData {
    client_token: Token,
}

impl VaultBackend {
    /// Builds the backend from `VAULT_ADDR`/`BAO_ADDR`, `VAULT_NAMESPACE`, `VAULT_CACERT` and
    /// the credential variables.
    pub fn new(settings: &Options) -> Result<Self, BackendError> {
        let config = |m: String| BackendError::new(FailureKind::Config, m);
        let var = |names: &[&str]| {
            names.iter().find_map(|n| settings.env.var(n).filter(|v| !v.is_empty()).map(str::to_owned))
        };
        let addr = var(&["VAULT_ADDR", "BAO_ADDR"]).ok_or_else(|| {
            config("vault:// references need VAULT_ADDR (or BAO_ADDR) set to the server's address".into())
        })?;
        let addr = http::check_base_url(&addr, settings.allow_insecure_http)
            .map_err(|e| config(format!("VAULT_ADDR: {e}")))?;
        let mut ca_certificates = Vec::new();
        if let Some(ca) = var(&["VAULT_CACERT", "BAO_CACERT"]) {
            // A regular file (a FIFO would block for ever, `/dev/zero` never end), at most 4 MiB.
            let pem = crate::files::read_regular(std::path::Path::new(&ca), "VAULT_CACERT", 4 << 20)
                .map_err(|e| config(e.to_string()))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| config(format!("VAULT_CACERT {ca} is not a PEM certificate: {e}")))?;
            ca_certificates.push(cert);
        }
        let http = http::build_client(http::ClientOptions {
            base_url: &addr,
            timeout: settings.timeout,
            user_agent: concat!("vault-run/", env!("CARGO_PKG_VERSION")),
            ca_certificates,
        })
        .map_err(|e| config(format!("cannot build HTTP client: {e}")))?;
        let transport = Transport {
            http,
            addr,
            retry: RetryPolicy { retries: settings.retries, ..RetryPolicy::default() },
            patience_until: Mutex::new(Instant::now()),
            redirects_said: Mutex::new(Vec::new()),
        };
        transport.start_patience(settings.deadline);
        Ok(Self {
            transport,
            namespace: var(&["VAULT_NAMESPACE", "BAO_NAMESPACE"]),
            credential: auth::discover(settings.backend.path(&TOKEN_FILE), &settings.env)?,
            ttl: settings.ttl,
            concurrency: settings.concurrency,
            http2: AtomicBool::new(false),
            to_revoke: Mutex::new(Vec::new()),
        })
    }

    /// [`VaultBackend::new`], boxed for the registry.
    pub fn boxed(settings: &Options) -> Result<Box<dyn Backend>, BackendError> {
        Ok(Box::new(Self::new(settings)?))
    }

    async fn call(
        &self,
        method: Method,
        api_path: &str,
        token: Option<&Token>,
        body: Option<&serde_json::Value>,
    ) -> Result<http::Reply, VaultError> {
        let reply = self
            .transport
            .call(method, api_path, |mut r| {
                if let Some(t) = token {
                    r = r.header("X-Vault-Token", t.expose());
                }
                if let Some(ns) = &self.namespace {
                    r = r.header("X-Vault-Namespace", ns);
                }
                if let Some(b) = body {
                    r = r.json(b);
                }
                r
            })
            .await?;
        self.http2.store(reply.version == reqwest::Version::HTTP_2, Ordering::Relaxed);
        Ok(reply)
    }

    /// The token to start from: the given one, or an AppRole login (revoked in `finish`).
    async fn parent_token(&self) -> Result<Token, BackendError> {
        match &self.credential {
            Credential::Token(t, source) => {
                tracing::debug!(source, "using Vault token");
                Ok(t.clone())
            }
            Credential::AppRole { role_id, secret_id } => {
                let body = serde_json::json!({ "role_id": role_id, "secret_id": secret_id.expose() });
                let reply = self
                    .call(Method::POST, "auth/approle/login", None, Some(&body))
                    .await
                    .map_err(|e| error(e, "AppRole login", "check VAULT_ROLE_ID and VAULT_SECRET_ID"))?;
                let auth: AuthReply = json(&reply).map_err(|e| error(e, "AppRole login", ""))?;
                self.revoke_later(auth.auth.client_token.clone());
                tracing::info!("logged in to Vault with AppRole");
                Ok(auth.auth.client_token)
            }
        }
    }

    fn revoke_later(&self, t: Token) {
        self.to_revoke.lock().unwrap_or_else(|e| e.into_inner()).push(t);
    }

    /// A child token for `uses` requests; the parent itself when it may not create tokens.
    async fn child_token(&self, parent: &Token, uses: usize) -> Result<Token, BackendError> {
        let body = serde_json::json!({
            "ttl": self.ttl.to_string(),
            "explicit_max_ttl": self.ttl.to_string(),
            "num_uses": uses,
            "renewable": false,
            "display_name": "vault-run",
        });
        match self.call(Method::POST, "auth/token/create", Some(parent), Some(&body)).await {
            Ok(reply) => {
                let auth: AuthReply = json(&reply).map_err(|e| error(e, "child token", ""))?;
                self.revoke_later(auth.auth.client_token.clone());
                tracing::debug!(uses, ttl = %self.ttl, "created a Vault child token");
                Ok(auth.auth.client_token)
            }
            Err(VaultError::Denied { .. }) | Err(VaultError::Rejected { .. }) => {
                tracing::warn!(
                    "the Vault token may not create child tokens; reading with it directly (grant it auth/token/create for least privilege)"
                );
                Ok(parent.clone())
            }
            Err(e) => Err(error(e, "creating a child token", "")),
        }
    }

    async fn mount_of(&self, token: &Token, path: &str) -> Result<kv::Mount, BackendError> {
        let api = format!("sys/internal/ui/mounts/{}", encode_path(path));
        let reply = self.call(Method::GET, &api, Some(token), None).await.map_err(|e| {
            error(e, &format!("vault://{path}"), "check the mount exists and the token may read it")
        })?;
        let info: kv::MountInfo = json(&reply).map_err(|e| error(e, "mount lookup", ""))?;
        info.into_mount().map_err(|m| BackendError::new(FailureKind::Config, format!("vault://{path}: {m}")))
    }

    async fn read(&self, token: &Token, mount: &kv::Mount, path: &str) -> Result<kv::KvSecret, BackendError> {
        let api = encode_path(&kv::read_path(mount, path));
        let shown = format!("vault://{path}");
        let reply =
            self.call(Method::GET, &api, Some(token), None).await.map_err(|e| error(e, &shown, ""))?;
        match kv::parse(mount.version, &reply.bytes) {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(BackendError::new(
                FailureKind::Missing,
                format!("{shown} has no current version (deleted)"),
            )),
            Err(e) => Err(BackendError::new(
                FailureKind::Temporary,
                format!("{shown}: unexpected answer: {}", http::describe_json_error(&e)),
            )),
        }
    }
}

fn encode_path(p: &str) -> String {
    p.split('/').map(encode_segment).collect::<Vec<_>>().join("/")
}

/// A 2xx body as `T`.
fn json<T: serde::de::DeserializeOwned>(reply: &http::Reply) -> Result<T, VaultError> {
    serde_json::from_slice(&reply.bytes).map_err(|e| VaultError::Invalid(http::describe_json_error(&e)))
}

fn error(e: VaultError, what: &str, hint: &str) -> BackendError {
    let kind = match &e {
        VaultError::Denied { .. } => FailureKind::Auth,
        VaultError::NotFound => FailureKind::Missing,
        VaultError::Rejected { status: 400 | 422, .. } => FailureKind::Config,
        _ => FailureKind::Temporary,
    };
    let hint = if hint.is_empty() { String::new() } else { format!("; {hint}") };
    let reason = match &e {
        VaultError::Unreachable { .. } => Some("unreachable"),
        VaultError::Sealed { .. } => Some("sealed"),
        VaultError::Denied { status: 401, .. } => Some("token refused"),
        _ => None,
    };
    let detail = e.to_string();
    let out = BackendError::new(kind, format!("{what}: {detail}{hint}"));
    match reason {
        Some(r) => out.with_reason(r),
        None => out,
    }
}

impl Backend for VaultBackend {
    fn fetch<'a>(&'a self, wanted: &'a Wanted, ctx: &'a FetchContext<'a>) -> FetchFuture<'a> {
        Box::pin(async move {
            self.transport.start_patience(ctx.deadline.budget());
            // The mapping checked every reference; one that does not parse is answered with its
            // error. Each distinct secret path is read once, whatever fields are wanted from it.
            let bad = |e: super::ReferenceError| BackendError::new(FailureKind::Config, e.to_string());
            let singles: Vec<(&Reference, Result<VaultRef, BackendError>)> = wanted
                .singles
                .iter()
                .map(|r| (r, reference::parse(&r.to_string(), r.rest()).map_err(bad)))
                .collect();
            let globs: Vec<(&GlobRef, Result<&str, BackendError>)> = wanted
                .globs
                .iter()
                .map(|g| (g, reference::parse_fields(&g.to_string(), g.rest()).map_err(bad)))
                .collect();
            let mut paths: Vec<&str> =
                singles.iter().filter_map(|(_, v)| v.as_ref().ok()).map(|v| v.path.as_str()).collect();
            paths.extend(globs.iter().filter_map(|(_, p)| p.as_ref().ok().copied()));
            paths.sort_unstable();
            paths.dedup();

            let parent = self.parent_token().await?;
            let lookups = async {
                let mut mounts: Vec<kv::Mount> = Vec::new();
                let mut mount_for: HashMap<&str, Result<kv::Mount, BackendError>> = HashMap::new();
                // A server that could not answer one lookup, after retries, is not asked again
                // for the others (a node that is down would cost every path its retries).
                let mut down: Option<BackendError> = None;
                for p in &paths {
                    let known = mounts.iter().find(|m| p.starts_with(m.path.as_str())).cloned();
                    let m = match (known, &down) {
                        (Some(m), _) => Ok(m),
                        (None, Some(e)) => Err(e.clone()),
                        (None, None) => self.mount_of(&parent, p).await,
                    };
                    match &m {
                        Ok(m) => mounts.push(m.clone()),
                        Err(e) if e.kind == FailureKind::Temporary => down = Some(e.clone()),
                        Err(_) => {}
                    }
                    mount_for.insert(p, m);
                }
                mount_for
            };
            // The child token does not depend on the mounts, so it is made while they are
            // looked up (a round trip saved). One use per read, one for the revoke; a path
            // whose mount lookup fails leaves its use unspent, and the token is revoked anyway.
            let asked = std::time::Instant::now();
            let (mount_for, token) =
                futures_util::future::join(lookups, self.child_token(&parent, paths.len() + 1)).await;
            let token = token?;

            let (http2, round_trip) = (self.http2.load(Ordering::Relaxed), asked.elapsed());
            let in_flight = self.concurrency.choose(paths.len(), http2, round_trip);
            tracing::debug!(reads = paths.len(), in_flight, http2, ?round_trip, "reading");
            // Only the reads in flight exist at once (a future per read, made up front, is
            // kilobytes each at N = 1000).
            let mut secrets: BTreeMap<&str, Result<kv::KvSecret, BackendError>> = BTreeMap::new();
            let mut pending = futures_util::stream::FuturesUnordered::new();
            for p in &paths {
                if pending.len() >= in_flight {
                    secrets.extend(pending.next().await);
                }
                let (token, mount) = (&token, &mount_for[p]);
                pending.push(async move {
                    let out = match mount {
                        Ok(m) => self.read(token, m, p).await,
                        Err(e) => Err(e.clone()),
                    };
                    (*p, out)
                });
            }
            while let Some(read) = pending.next().await {
                secrets.insert(read.0, read.1);
            }

            let value = |secret: &kv::KvSecret, field: &kv::Field| SecretValue {
                value: field.0.clone(),
                version: secret.version,
                tier: None,
            };
            let singles = singles
                .iter()
                .map(|(r, v)| {
                    let answer = v.as_ref().map_err(Clone::clone).and_then(|v| {
                        let secret = secrets[v.path.as_str()].as_ref().map_err(Clone::clone)?;
                        let field = secret.fields.get(&v.field).ok_or_else(|| {
                            BackendError::new(
                                FailureKind::Missing,
                                format!(
                                    "vault://{} has no field {:?}; check the #field part",
                                    v.path, v.field
                                ),
                            )
                        })?;
                        Ok(value(secret, field))
                    });
                    ((*r).clone(), answer)
                })
                .collect();
            let globs = globs
                .into_iter()
                .map(|(g, path)| {
                    let answer = path.and_then(|path| {
                        let secret = secrets[path].as_ref().map_err(Clone::clone)?;
                        Ok(secret.fields.iter().map(|(k, f)| (k.clone(), value(secret, f))).collect())
                    });
                    (g.clone(), answer)
                })
                .collect();
            Ok(Fetched { singles, globs })
        })
    }

    fn finish(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let tokens: Vec<Token> =
                std::mem::take(&mut *self.to_revoke.lock().unwrap_or_else(|e| e.into_inner()));
            // Newest first: the child before the AppRole login token it may descend from.
            for t in tokens.iter().rev() {
                match self.call(Method::POST, "auth/token/revoke-self", Some(t), None).await {
                    Ok(_) => tracing::debug!("revoked a Vault token"),
                    // A child whose uses ran out is already gone: 403 here is success.
                    Err(VaultError::Denied { .. }) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "could not revoke a Vault token; it expires with its TTL")
                    }
                }
            }
        })
    }
}
