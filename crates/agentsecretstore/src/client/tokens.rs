//! Scoped tokens: trading the agent key for one, the approval it may wait for, and the cache
//! that lets concurrent calls share a token.

use std::sync::atomic::Ordering;

use reqwest::Method;

use super::token::CachedToken;
use super::transport::{self};

use super::args::{to_scopes, IntoTtl, ToScope};
use super::options::TokenOptions;
use super::{AgentVault, Error, Result};
use crate::path::{Scope, ScopeSet};
use crate::secret::Token;
use crate::wire::{Timestamp, TokenReply, TokenRequest, TokenResponse};

impl AgentVault {
    /// Trades the agent key for a token with exactly `scopes` (parsed [`Scope`]s or strings
    /// like `"secrets:read:production/*"`), for `ttl` (`None` for the client's default, a
    /// [`Duration`](std::time::Duration), or text like `"5m"`). The token is cached for later calls.
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

    pub(super) async fn fetch_token(&self, scopes: &[Scope], opts: &TokenOptions) -> Result<TokenResponse> {
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
    pub(super) async fn ensure_token(&self, required: &[Scope]) -> Result<Token> {
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

    pub(super) async fn forget_token(&self, token: &Token) {
        self.inner.tokens.lock().await.retain(|c| &c.token != token);
    }

    /// Sends a `/v1/secrets…` request with a token covering `scope`. A 401 on a cached token
    /// (expired or used up server-side) gets one retry with a fresh token.
    pub(super) async fn with_token(
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
}

/// An id the server hands out (`apr_…`, `tok_…`) that is safe to print in a log line and to
/// send to systemd (`STATUS=`): a hostile server's id with a newline could forge either.
pub(super) fn is_plain_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

pub(super) fn remember(cache: &mut Vec<CachedToken>, issued: &TokenResponse, scopes: &[Scope]) {
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
