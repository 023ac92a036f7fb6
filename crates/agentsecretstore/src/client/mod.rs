//! The Agent Secret Store client: the official SDKs' surface in Rust idiom.
//!
//! ```no_run
//! # async fn demo() -> Result<(), agentsecretstore::Error> {
//! let vault = agentsecretstore::AgentVault::from_env()?;
//! let key = vault.get_secret("production/gemini/GEMINI_API_KEY").await?;
//! // `key` zeroizes on drop and prints as [REDACTED].
//! # Ok(()) }
//! ```

mod error;
mod token;
pub mod transport;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use tokio::sync::Mutex;

pub use crate::http::is_loopback_url;
pub use error::{Error, ErrorSource, Result};
pub use token::CachedToken;
pub use transport::RetryPolicy;

use crate::duration::HumanDuration;
use crate::path::{encode_segment, Action, Scope, ScopeSet, SecretPath};
use crate::secret::{AgentKey, SecretString, Token};
use crate::wire::{
    AccessTier, ApprovalState, ApprovalStatus, Health, ImportRequest, ImportResponse, Metadata,
    SecretListResponse, SecretResponse, SecretType, SecretWriteRequest, SecretWriteResponse, Timestamp,
    TokenReply, TokenRequest, TokenResponse,
};

/// The hosted service.
pub const DEFAULT_BASE_URL: &str = "https://api.agentsecretstore.com";

/// Anything that names a secret: `&str`, `String` or a parsed [`SecretPath`].
pub trait ToSecretPath {
    /// Parses or borrows the path.
    fn to_secret_path(&self) -> std::result::Result<SecretPath, crate::path::PathError>;
}

impl ToSecretPath for str {
    fn to_secret_path(&self) -> std::result::Result<SecretPath, crate::path::PathError> {
        self.parse()
    }
}

impl ToSecretPath for String {
    fn to_secret_path(&self) -> std::result::Result<SecretPath, crate::path::PathError> {
        self.parse()
    }
}

impl ToSecretPath for SecretPath {
    fn to_secret_path(&self) -> std::result::Result<SecretPath, crate::path::PathError> {
        Ok(self.clone())
    }
}

impl<T: ToSecretPath + ?Sized> ToSecretPath for &T {
    fn to_secret_path(&self) -> std::result::Result<SecretPath, crate::path::PathError> {
        (**self).to_secret_path()
    }
}

/// Anything that names scopes: a parsed [`Scope`] or a scope string
/// (`"secrets:read:production/*"`), owned or borrowed.
pub trait ToScope {
    /// Parses or clones the scope.
    ///
    /// # Errors
    /// [`Error::Validation`] when the string is not a scope.
    fn to_scope(&self) -> Result<Scope>;
}

impl ToScope for Scope {
    fn to_scope(&self) -> Result<Scope> {
        Ok(self.clone())
    }
}

impl ToScope for str {
    fn to_scope(&self) -> Result<Scope> {
        Ok(self.parse::<Scope>()?)
    }
}

impl ToScope for String {
    fn to_scope(&self) -> Result<Scope> {
        self.as_str().to_scope()
    }
}

impl<T: ToScope + ?Sized> ToScope for &T {
    fn to_scope(&self) -> Result<Scope> {
        (**self).to_scope()
    }
}

fn to_scopes<S: ToScope>(scopes: impl IntoIterator<Item = S>) -> Result<Vec<Scope>> {
    scopes.into_iter().map(|s| s.to_scope()).collect()
}

/// A lifetime given as a [`Duration`], a [`HumanDuration`], or text like `"5m"` / `"1h"`;
/// `None` (of `Option<HumanDuration>`) means "the default".
pub trait IntoTtl {
    /// The lifetime, or `None` for the default.
    ///
    /// # Errors
    /// [`Error::Validation`] when the text is not a duration.
    fn into_ttl(self) -> Result<Option<HumanDuration>>;
}

impl IntoTtl for Option<HumanDuration> {
    fn into_ttl(self) -> Result<Option<HumanDuration>> {
        Ok(self)
    }
}

impl IntoTtl for HumanDuration {
    fn into_ttl(self) -> Result<Option<HumanDuration>> {
        Ok(Some(self))
    }
}

impl IntoTtl for Duration {
    fn into_ttl(self) -> Result<Option<HumanDuration>> {
        Ok(Some(HumanDuration(self)))
    }
}

impl IntoTtl for &str {
    fn into_ttl(self) -> Result<Option<HumanDuration>> {
        Ok(Some(self.parse::<HumanDuration>()?))
    }
}

impl IntoTtl for String {
    fn into_ttl(self) -> Result<Option<HumanDuration>> {
        self.as_str().into_ttl()
    }
}

/// Metadata from a JSON object ([`serde_json::Value`] or [`Metadata`]) or a map of strings.
pub trait IntoMetadata {
    /// The metadata as JSON; anything but an object (or `null`, read as empty) is refused
    /// when the write is sent.
    fn into_metadata(self) -> serde_json::Value;
}

impl IntoMetadata for serde_json::Value {
    fn into_metadata(self) -> serde_json::Value {
        self
    }
}

impl IntoMetadata for Metadata {
    fn into_metadata(self) -> serde_json::Value {
        serde_json::Value::Object(self)
    }
}

impl<K: Into<String>, V: Into<serde_json::Value>> IntoMetadata for std::collections::HashMap<K, V> {
    fn into_metadata(self) -> serde_json::Value {
        serde_json::Value::Object(self.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl<K: Into<String>, V: Into<serde_json::Value>> IntoMetadata for std::collections::BTreeMap<K, V> {
    fn into_metadata(self) -> serde_json::Value {
        serde_json::Value::Object(self.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

fn metadata_object(m: Option<serde_json::Value>) -> Result<Option<Metadata>> {
    match m {
        None => Ok(None),
        Some(serde_json::Value::Null) => Ok(Some(Metadata::new())),
        Some(serde_json::Value::Object(o)) => Ok(Some(o)),
        Some(other) => Err(Error::Validation {
            message: format!("metadata must be a JSON object, not {}", json_kind(&other)),
        }),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Options for [`AgentVault::set_secret_with`]: type, tier, metadata, lifetime.
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
    /// [`Error::Validation`] when the text is not a duration.
    pub fn ttl(mut self, ttl: impl IntoTtl) -> Result<Self> {
        self.ttl = ttl.into_ttl()?;
        Ok(self)
    }
}

/// Options for [`AgentVault::import_env`]: applied to every imported secret.
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

/// Options for [`AgentVault::request_token_with`].
#[derive(Debug, Clone, Default)]
pub struct TokenOptions {
    /// Token lifetime; the client's default TTL when `None`.
    pub ttl: Option<HumanDuration>,
    /// How many requests the token may serve.
    pub max_uses: Option<u64>,
    /// Client addresses allowed to use it.
    pub ip_allowlist: Option<Vec<String>>,
}

/// Called with the approval id when a read waits for a human (see
/// [`AgentVaultBuilder::on_approval`]).
pub type ApprovalCallback = Arc<dyn Fn(&str) + Send + Sync>;

/// Builds an [`AgentVault`].
///
/// ```no_run
/// # fn demo() -> agentsecretstore::Result<()> {
/// use std::time::Duration;
/// let vault = agentsecretstore::AgentVault::builder()
///     .agent_key("ass_…")
///     .base_url("http://127.0.0.1:8200")
///     .wait_for_approvals(Duration::from_secs(600))
///     .on_approval(|id| eprintln!("waiting for approval {id}"))
///     .build()?;
/// # let _ = vault; Ok(()) }
/// ```
#[derive(Clone)]
pub struct AgentVaultBuilder {
    agent_key: Option<AgentKey>,
    base_url: String,
    default_ttl: HumanDuration,
    timeout: Duration,
    retry: RetryPolicy,
    allow_insecure_http: bool,
    approval_poll_interval: Duration,
    approval_wait: Option<Duration>,
    on_approval: Option<ApprovalCallback>,
    ca_certificates: Vec<Vec<u8>>,
}

impl std::fmt::Debug for AgentVaultBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentVaultBuilder")
            .field("agent_key", &self.agent_key)
            .field("base_url", &self.base_url)
            .field("default_ttl", &self.default_ttl)
            .field("timeout", &self.timeout)
            .field("approval_wait", &self.approval_wait)
            .field("ca_certificates", &self.ca_certificates.len())
            .finish_non_exhaustive()
    }
}

impl Default for AgentVaultBuilder {
    fn default() -> Self {
        Self {
            agent_key: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            default_ttl: HumanDuration::from_secs(3600),
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            allow_insecure_http: false,
            approval_poll_interval: Duration::from_secs(2),
            approval_wait: None,
            on_approval: None,
            ca_certificates: Vec::new(),
        }
    }
}

impl AgentVaultBuilder {
    /// A builder with the agent key from `ASS_AGENT_KEY` and, when set, the base URL from
    /// `ASS_BASE_URL` and a private CA from `ASS_CACERT` (a PEM file).
    ///
    /// # Errors
    /// [`Error::Config`] when `ASS_AGENT_KEY` is not set or `ASS_CACERT` cannot be read.
    pub fn from_env() -> Result<Self> {
        let key = std::env::var("ASS_AGENT_KEY").map_err(|_| Error::Config {
            message: "ASS_AGENT_KEY is not set; export the agent key (ass_…)".into(),
        })?;
        let mut b = Self::default().agent_key(AgentKey::new(key));
        if let Ok(url) = std::env::var("ASS_BASE_URL") {
            b = b.base_url(url);
        }
        b.ca_certificate_from_env()
    }

    /// Trusts a private CA (PEM, one or more certificates) besides the platform's roots and the
    /// bundled Mozilla roots. Checked by [`build`](Self::build).
    pub fn ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificates.push(pem.into());
        self
    }

    /// Opt-in: when a read needs a human's approval, wait up to `timeout` for it (polling at
    /// [`approval_poll_interval`](Self::approval_poll_interval)) and go on, instead of failing
    /// with [`Error::ApprovalRequired`]. The client prints nothing; see
    /// [`on_approval`](Self::on_approval).
    pub fn wait_for_approvals(mut self, timeout: Duration) -> Self {
        self.approval_wait = Some(timeout);
        self
    }

    /// Called with the approval id when an automatic approval wait starts (for example to tell
    /// the user whom to ask).
    pub fn on_approval(mut self, callback: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.on_approval = Some(Arc::new(callback));
        self
    }

    /// [`AgentVaultBuilder::ca_certificate`] from the file named by `ASS_CACERT`, when set.
    pub fn ca_certificate_from_env(self) -> Result<Self> {
        let Some(path) = std::env::var_os("ASS_CACERT").filter(|p| !p.is_empty()) else {
            return Ok(self);
        };
        let pem = std::fs::read(&path).map_err(|e| Error::Config {
            message: format!(
                "ASS_CACERT={}: cannot read the CA certificate ({e}); point it at a PEM file or unset it",
                std::path::Path::new(&path).display()
            ),
        })?;
        Ok(self.ca_certificate(pem))
    }

    /// The agent key (`ass_…`).
    pub fn agent_key(mut self, key: impl Into<AgentKey>) -> Self {
        self.agent_key = Some(key.into());
        self
    }

    /// Base URL without `/v1` (default `https://api.agentsecretstore.com`).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// TTL of tokens the client requests by itself (default 1h): a [`Duration`], a
    /// [`HumanDuration`] or text like `"15m"`.
    ///
    /// # Panics
    /// When given text that is not a duration; parse it first (`"15m".parse::<HumanDuration>()?`)
    /// to handle the error.
    pub fn default_ttl(mut self, ttl: impl IntoTtl) -> Self {
        match ttl.into_ttl() {
            Ok(Some(t)) => self.default_ttl = t,
            Ok(None) => {}
            Err(e) => panic!("AgentVaultBuilder::default_ttl: {e}"),
        }
        self
    }

    /// Per-request timeout (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Retries after the first attempt (default 3).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retry.retries = retries;
        self
    }

    /// How long 429 answers may be waited out after the retries are used up (default 30 s).
    pub fn rate_limit_patience(mut self, patience: Duration) -> Self {
        self.retry.rate_limit_patience = patience;
        self
    }

    /// Full retry policy (backoff base and cap too).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How often `wait_for_approval` polls (default 2 s).
    pub fn approval_poll_interval(mut self, every: Duration) -> Self {
        self.approval_poll_interval = every;
        self
    }

    /// Allows credentials over plain `http://` to a non-loopback host. Off by default: anyone on
    /// the path could read the agent key.
    pub fn allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// Checks the settings and builds the client.
    ///
    /// # Errors
    /// [`Error::Config`] for a missing or empty agent key, a bad base URL (plain `http://` is
    /// only for loopback unless allowed), or a CA certificate that is not PEM.
    pub fn build(self) -> Result<AgentVault> {
        let agent_key = self.agent_key.ok_or_else(|| Error::Config {
            message: "no agent key: set ASS_AGENT_KEY or pass one to the builder".into(),
        })?;
        if agent_key.expose().trim().is_empty() {
            return Err(Error::Config { message: "the agent key is empty".into() });
        }
        let base_url = check_base_url(&self.base_url, self.allow_insecure_http)?;
        let mut ca_certificates = Vec::new();
        if !base_url.starts_with("http://") {
            for pem in &self.ca_certificates {
                let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| Error::Config {
                    message: format!("the CA certificate (ASS_CACERT) is not valid PEM: {e}"),
                })?;
                if certs.is_empty() {
                    return Err(Error::Config {
                        message: "the CA certificate (ASS_CACERT) holds no PEM certificate".into(),
                    });
                }
                ca_certificates.extend(certs);
            }
        }
        let http = crate::http::build_client(crate::http::ClientOptions {
            base_url: &base_url,
            timeout: self.timeout,
            user_agent: concat!("agentsecretstore-rust/", env!("CARGO_PKG_VERSION")),
            ca_certificates,
        })
        .map_err(|e| Error::Config { message: format!("cannot build HTTP client: {e}") })?;
        Ok(AgentVault {
            inner: Arc::new(Inner {
                http,
                base_url,
                agent_key,
                default_ttl: self.default_ttl,
                retry: self.retry,
                approval_poll_interval: self.approval_poll_interval,
                approval_wait: self.approval_wait,
                on_approval: self.on_approval,
                tokens: Mutex::new(Vec::new()),
                http2: AtomicBool::new(false),
            }),
        })
    }
}

/// Validates a base URL: http(s), a host, no credentials, and plain http only to loopback
/// unless `allow_insecure` is set. Returns it without a trailing `/`.
pub fn check_base_url(raw: &str, allow_insecure: bool) -> Result<String> {
    crate::http::check_base_url(raw, allow_insecure).map_err(|e| Error::Config { message: e.0 })
}

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

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.inner.base_url)
    }

    /// Trades the agent key for a token with exactly `scopes` (parsed [`Scope`]s or strings
    /// like `"secrets:read:production/*"`), for `ttl` (`None` for the client's default, a
    /// [`Duration`], or text like `"5m"`). The token is cached for later calls.
    ///
    /// ```no_run
    /// # async fn demo(vault: agentsecretstore::AgentVault) -> agentsecretstore::Result<()> {
    /// let token = vault.request_token(["secrets:read:production/*"], "5m").await?;
    /// println!("{} until {}", token.token_id, token.expires_at);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Validation`] for a scope or duration that does not parse, or no scope;
    /// [`Error::ApprovalRequired`] when a human must approve first; the server's errors
    /// ([`Error::Unauthorized`], [`Error::ScopeDenied`], …).
    pub async fn request_token<S: ToScope>(
        &self,
        scopes: impl IntoIterator<Item = S>,
        ttl: impl IntoTtl,
    ) -> Result<TokenResponse> {
        let ttl = ttl.into_ttl()?;
        self.request_token_with(scopes, TokenOptions { ttl, ..TokenOptions::default() }).await
    }

    /// Trades the agent key for a token, with every option of `POST /v1/tokens`. A pending
    /// approval comes back as [`Error::ApprovalRequired`]. The token is cached for later calls.
    ///
    /// # Errors
    /// As [`request_token`](Self::request_token).
    pub async fn request_token_with<S: ToScope>(
        &self,
        scopes: impl IntoIterator<Item = S>,
        opts: TokenOptions,
    ) -> Result<TokenResponse> {
        let scopes = to_scopes(scopes)?;
        let mut cache = self.inner.tokens.lock().await;
        let issued = self.fetch_token(&scopes, &opts).await?;
        remember(&mut cache, &issued, &scopes);
        Ok(issued)
    }

    async fn fetch_token(&self, scopes: &[Scope], opts: &TokenOptions) -> Result<TokenResponse> {
        if scopes.is_empty() {
            return Err(Error::Validation { message: "a token needs at least one scope".into() });
        }
        let body = TokenRequest {
            scopes: scopes.iter().map(Scope::to_string).collect(),
            ttl: Some(opts.ttl.unwrap_or(self.inner.default_ttl)),
            max_uses: opts.max_uses,
            ip_allowlist: opts.ip_allowlist.clone(),
        };
        let key = &self.inner.agent_key;
        let resp = transport::send(
            &self.inner.http,
            &self.inner.retry,
            Method::POST,
            &self.url("/v1/tokens"),
            |r| r.bearer_auth(key.expose()).json(&body),
        )
        .await?;
        self.inner.http2.store(resp.version == reqwest::Version::HTTP_2, Ordering::Relaxed);
        let reply: TokenReply = resp.json("token response")?;
        if reply.requires_approval {
            let approval_id =
                reply.approval_id.filter(|id| is_plain_id(id)).ok_or_else(|| Error::InvalidResponse {
                    message: "approval required but the response has no usable approval_id (1 to 128 letters, digits, '_', '-', '.')".into(),
                })?;
            return Err(Error::ApprovalRequired { approval_id, expires_at: reply.expires_at });
        }
        match reply.token {
            Some(token) if !token.expose().is_empty() => {
                // Logged: a made-up id must not forge log lines.
                let token_id = reply.token_id.filter(|id| is_plain_id(id)).unwrap_or_default();
                // The seed SDK's TokenResponse makes expires_at optional: without it, the token
                // lives as long as we asked for.
                let ttl = body.ttl.unwrap_or(self.inner.default_ttl);
                let expires_at = reply.expires_at.unwrap_or_else(|| Timestamp::after(ttl.into()));
                tracing::debug!(token_id = %token_id, scopes = scopes.len(), "token issued");
                Ok(TokenResponse { token, token_id, expires_at })
            }
            _ => Err(Error::InvalidResponse { message: "token response lacks a token".into() }),
        }
    }

    /// A token covering `required`: a cached one when one still serves, else a new one for
    /// exactly these scopes (waiting for an approval first when the builder asked for that).
    async fn ensure_token(&self, required: &[Scope]) -> Result<Token> {
        let mut cache = self.inner.tokens.lock().await;
        if let Some(cached) = cache.iter().find(|c| c.serves(required)) {
            return Ok(cached.token.clone());
        }
        let opts = TokenOptions::default();
        let issued = match self.fetch_token(required, &opts).await {
            Err(Error::ApprovalRequired { approval_id, .. }) if self.inner.approval_wait.is_some() => {
                if let Some(callback) = &self.inner.on_approval {
                    callback(&approval_id);
                }
                let timeout = self.inner.approval_wait.unwrap_or_default();
                self.wait_for_approval(&approval_id, timeout).await?;
                self.fetch_token(required, &opts).await?
            }
            other => other?,
        };
        remember(&mut cache, &issued, required);
        Ok(issued.token)
    }

    /// Whether the server answered the last token request over HTTP/2: requests then share one
    /// connection, so many more may be in flight than over HTTP/1.1.
    pub fn uses_http2(&self) -> bool {
        self.inner.http2.load(Ordering::Relaxed)
    }

    /// Whether a cached token covers `scopes` with more than a few seconds left.
    pub async fn has_token_for(&self, scopes: &[Scope]) -> bool {
        self.inner.tokens.lock().await.iter().any(|c| c.serves(scopes))
    }

    async fn forget_token(&self, token: &Token) {
        self.inner.tokens.lock().await.retain(|c| &c.token != token);
    }

    /// Sends a `/v1/secrets…` request with a token covering `scope`. A 401 on a cached token
    /// (expired or used up server-side) gets one retry with a fresh token.
    async fn with_token(
        &self,
        scope: Scope,
        method: Method,
        path: &str,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<transport::Body> {
        let required = [scope];
        let url = self.url(path);
        let mut refreshed = false;
        loop {
            let token = self.ensure_token(&required).await?;
            let out = transport::send(&self.inner.http, &self.inner.retry, method.clone(), &url, |r| {
                build(r.bearer_auth(token.expose()))
            })
            .await;
            match out {
                Err(Error::Unauthorized { .. }) if !refreshed => {
                    self.forget_token(&token).await;
                    refreshed = true;
                }
                other => return other,
            }
        }
    }

    /// Reads a secret's value.
    pub async fn get_secret(&self, path: impl ToSecretPath) -> Result<SecretString> {
        Ok(self.get_secret_with_metadata(path).await?.value)
    }

    /// Reads a secret with its version, type, tier and metadata.
    pub async fn get_secret_with_metadata(&self, path: impl ToSecretPath) -> Result<SecretResponse> {
        let path = path.to_secret_path()?;
        let url = format!("/v1/secrets/{}", path.url_path());
        let body = self.with_token(path.scope(Action::Read), Method::GET, &url, |r| r).await?;
        let mut secret: SecretResponse = body.json("secret response")?;
        // The seed SDK's shape has no namespace/key: they are the path we asked for.
        if secret.namespace.is_empty() {
            secret.namespace = path.namespace().to_owned();
        }
        if secret.key.is_empty() {
            secret.key = path.key().to_owned();
        }
        Ok(secret)
    }

    /// Writes a secret with the server's defaults (a new version when it exists; an existing
    /// secret keeps its type, tier and metadata).
    ///
    /// # Errors
    /// [`Error::Validation`] for a bad path; [`Error::HumanAuthRequired`] when overwriting a
    /// sensitive or critical secret without an approved token; the server's errors.
    pub async fn set_secret(
        &self,
        path: impl ToSecretPath,
        value: impl Into<SecretString>,
    ) -> Result<SecretWriteResponse> {
        self.set_secret_with(path, value, WriteOptions::default()).await
    }

    /// Writes a secret with a type, tier, metadata or lifetime.
    ///
    /// ```no_run
    /// # async fn demo(vault: agentsecretstore::AgentVault) -> agentsecretstore::Result<()> {
    /// use agentsecretstore::{AccessTier, WriteOptions};
    /// let opts = WriteOptions::new()
    ///     .access_tier(AccessTier::Sensitive)
    ///     .metadata(serde_json::json!({"owner": "payments"}));
    /// let written = vault.set_secret_with("production/stripe/SECRET_KEY", "sk_live_…", opts).await?;
    /// println!("version {}", written.version);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`set_secret`](Self::set_secret), and [`Error::Validation`] for metadata that is not
    /// a JSON object.
    pub async fn set_secret_with(
        &self,
        path: impl ToSecretPath,
        value: impl Into<SecretString>,
        opts: WriteOptions,
    ) -> Result<SecretWriteResponse> {
        let path = path.to_secret_path()?;
        let body = SecretWriteRequest {
            value: value.into(),
            secret_type: opts.secret_type,
            access_tier: opts.access_tier,
            metadata: metadata_object(opts.metadata)?,
            ttl: opts.ttl,
        };
        let url = format!("/v1/secrets/{}", path.url_path());
        let resp = self.with_token(path.scope(Action::Write), Method::PUT, &url, |r| r.json(&body)).await?;
        let mut written: SecretWriteResponse = resp.json("write response")?;
        if written.namespace.is_empty() {
            written.namespace = path.namespace().to_owned();
        }
        if written.key.is_empty() {
            written.key = path.key().to_owned();
        }
        Ok(written)
    }

    /// Deletes a secret. Sensitive and critical secrets answer [`Error::HumanAuthRequired`].
    pub async fn delete_secret(&self, path: impl ToSecretPath) -> Result<()> {
        let path = path.to_secret_path()?;
        let url = format!("/v1/secrets/{}", path.url_path());
        self.with_token(path.scope(Action::Delete), Method::DELETE, &url, |r| r).await?;
        Ok(())
    }

    /// Lists every secret at or below `namespace` (values are never listed).
    pub async fn list_secrets(&self, namespace: &str) -> Result<SecretListResponse> {
        let namespace = check_namespace(namespace)?;
        let url = format!("/v1/secrets?namespace={}", encode_segment(namespace));
        let scope = Scope::new(Action::Read, format!("{namespace}/*"));
        let body = self.with_token(scope, Method::GET, &url, |r| r).await?;
        let mut list: SecretListResponse = body.json("list response")?;
        // Servers that leave out the item's namespace list one namespace: the one asked for.
        if list.namespace.is_empty() {
            namespace.clone_into(&mut list.namespace);
        }
        for item in list.items.iter_mut().filter(|i| i.namespace.is_empty()) {
            namespace.clone_into(&mut item.namespace);
        }
        if list.total == 0 {
            list.total = list.items.len() as u64;
        }
        Ok(list)
    }

    /// Imports a `.env` file's content into `namespace`.
    ///
    /// # Errors
    /// [`Error::Validation`] for a bad namespace, metadata or `.env` key;
    /// [`Error::HumanAuthRequired`] when a key overwrites a sensitive or critical secret; the
    /// server's errors.
    pub async fn import_env(
        &self,
        content: impl Into<SecretString>,
        namespace: &str,
        opts: ImportOptions,
    ) -> Result<ImportResponse> {
        let namespace = check_namespace(namespace)?;
        let body = ImportRequest {
            namespace: namespace.to_owned(),
            content: content.into(),
            secret_type: opts.secret_type,
            access_tier: opts.access_tier,
            metadata: metadata_object(opts.metadata)?,
        };
        let scope = Scope::new(Action::Write, format!("{namespace}/*"));
        let resp = self.with_token(scope, Method::POST, "/v1/secrets/import", |r| r.json(&body)).await?;
        let mut imported: ImportResponse = resp.json("import response")?;
        if imported.namespace.is_empty() {
            namespace.clone_into(&mut imported.namespace);
        }
        if imported.imported_count == 0 {
            imported.imported_count = imported.imported.len() as u64;
        }
        Ok(imported)
    }

    /// The status of an approval (agent key).
    pub async fn approval_status(&self, approval_id: &str) -> Result<ApprovalStatus> {
        if approval_id.is_empty() || approval_id.contains('/') {
            return Err(Error::Validation { message: format!("invalid approval id {approval_id:?}") });
        }
        let url = self.url(&format!("/v1/approvals/agent/{}", encode_segment(approval_id)));
        let key = &self.inner.agent_key;
        let body = transport::send(&self.inner.http, &self.inner.retry, Method::GET, &url, |r| {
            r.bearer_auth(key.expose())
        })
        .await?;
        body.json("approval status")
    }

    /// Polls an approval until it is approved (returns its status), denied, expired, or
    /// `timeout` passes. A zero timeout checks once.
    pub async fn wait_for_approval(&self, approval_id: &str, timeout: Duration) -> Result<ApprovalStatus> {
        let started = Instant::now();
        loop {
            let status = self.approval_status(approval_id).await?;
            match status.status {
                ApprovalState::Approved => return Ok(status),
                ApprovalState::Denied => {
                    return Err(Error::ApprovalDenied {
                        approval_id: Some(approval_id.to_owned()),
                        reason: status.reason.as_deref().map(transport::one_line),
                    })
                }
                ApprovalState::Expired => {
                    return Err(Error::ApprovalExpired { approval_id: Some(approval_id.to_owned()) })
                }
                // A status word this SDK does not know is not a decision: keep waiting.
                _ => {}
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(Error::ApprovalTimeout { approval_id: approval_id.to_owned(), waited });
            }
            tokio::time::sleep(self.inner.approval_poll_interval.min(timeout - waited)).await;
        }
    }

    /// `GET /v1/health`.
    pub async fn health(&self) -> Result<Health> {
        let body =
            transport::send(&self.inner.http, &self.inner.retry, Method::GET, &self.url("/v1/health"), |r| r)
                .await?;
        body.json("health")
    }
}

fn check_namespace(namespace: &str) -> Result<&str> {
    let ns = namespace.trim_matches('/');
    if ns.is_empty()
        || ns.split('/').any(str::is_empty)
        || ns.contains('*')
        || ns.chars().any(char::is_control)
    {
        return Err(Error::Validation { message: format!("invalid namespace {namespace:?}") });
    }
    Ok(ns)
}

/// An id the server hands out (`apr_…`, `tok_…`) that is safe to print in a log line and to
/// send to systemd (`STATUS=`): a hostile server's id with a newline could forge either.
fn is_plain_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

fn remember(cache: &mut Vec<CachedToken>, issued: &TokenResponse, scopes: &[Scope]) {
    let scopes = ScopeSet::new(scopes.iter().cloned());
    // Drop the expired and the one this replaces; the rest stay for the paths they serve.
    cache.retain(|c| !c.expires_at.is_past() && c.scopes != scopes);
    cache.push(CachedToken {
        token: issued.token.clone(),
        token_id: issued.token_id.clone(),
        scopes,
        expires_at: issued.expires_at,
    });
}

#[cfg(test)]
mod tests {
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
