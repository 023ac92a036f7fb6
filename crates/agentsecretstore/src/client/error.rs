//! Client errors: one variant per row of the contract's error table (§5), plus the few the
//! client makes itself (configuration, approval timeout).

use std::time::Duration;

use crate::wire::Timestamp;

/// The underlying cause of an [`Error`], shared so that `Error` stays `Clone`.
pub type ErrorSource = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong talking to Agent Secret Store.
///
/// Messages come from the server (trimmed to one line) or from the client; neither ever holds a
/// secret value, the agent key or a token.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// 400/422 `VALIDATION_ERROR`, or a path/scope the client refused before sending.
    #[error("request rejected as invalid: {message}")]
    Validation {
        /// What was wrong.
        message: String,
    },
    /// 401: the agent key or token was not accepted.
    #[error("not authorised: {message}")]
    Unauthorized {
        /// Server message.
        message: String,
    },
    /// 403 `SCOPE_DENIED`.
    #[error("scope denied: {message}")]
    ScopeDenied {
        /// Server message.
        message: String,
    },
    /// 403 `HUMAN_AUTH_REQUIRED`: a human must do this (e.g. delete a sensitive secret).
    #[error("a human must do this: {message}")]
    HumanAuthRequired {
        /// Server message.
        message: String,
    },
    /// The token needs a human's approval first (a pending 2xx from `POST /v1/tokens`).
    #[error("approval {approval_id} is required before the token is issued")]
    ApprovalRequired {
        /// The approval to wait for.
        approval_id: String,
        /// When the approval request expires.
        expires_at: Option<Timestamp>,
    },
    /// 403 `APPROVAL_DENIED`, or the approval was denied while waiting.
    #[error("approval denied{}{}", approval_id.as_deref().map(|id| format!(" ({id})")).unwrap_or_default(), reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    ApprovalDenied {
        /// The approval, when known.
        approval_id: Option<String>,
        /// The reason given.
        reason: Option<String>,
    },
    /// 410 `APPROVAL_EXPIRED`, or the approval expired while waiting.
    #[error("approval expired before anyone decided{}", approval_id.as_deref().map(|id| format!(" ({id})")).unwrap_or_default())]
    ApprovalExpired {
        /// The approval, when known.
        approval_id: Option<String>,
    },
    /// `wait_for_approval` gave up before the approval was decided.
    #[error("still waiting for approval {approval_id} after {waited:?}")]
    ApprovalTimeout {
        /// The approval still pending.
        approval_id: String,
        /// How long we waited.
        waited: Duration,
    },
    /// 404 `SECRET_NOT_FOUND`.
    #[error("not found: {message}")]
    NotFound {
        /// Server message.
        message: String,
    },
    /// 410 `SECRET_EXPIRED`.
    #[error("secret expired: {message}")]
    SecretExpired {
        /// Server message.
        message: String,
    },
    /// 429 after all retries.
    #[error("rate limited{}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
        /// Server message.
        message: String,
    },
    /// 5xx after all retries (or a 5xx that is not retried).
    #[error("server error {status}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Server message.
        message: String,
    },
    /// Any other 4xx the contract does not name.
    #[error("unexpected HTTP {status}{}: {message}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Http {
        /// HTTP status.
        status: u16,
        /// Upstream code, if any.
        code: Option<String>,
        /// Server message.
        message: String,
    },
    /// Connect, timeout or reset, after all retries.
    #[error("network error: {message}")]
    Network {
        /// What failed, with its causes on one line (never includes credentials).
        message: String,
        /// The transport's error.
        #[source]
        source: Option<ErrorSource>,
    },
    /// A 2xx body that does not parse, lacks fields, is too large, or a redirect.
    #[error("invalid response from server: {message}")]
    InvalidResponse {
        /// What was wrong.
        message: String,
    },
    /// Client configuration: missing agent key, bad base URL, insecure transport.
    #[error("{message}")]
    Config {
        /// What to fix.
        message: String,
    },
}

impl Error {
    /// The upstream error code string (`SECRET_NOT_FOUND`, …), or the client's own.
    pub fn code(&self) -> &str {
        match self {
            Error::Validation { .. } => "VALIDATION_ERROR",
            Error::Unauthorized { .. } => "UNAUTHORIZED",
            Error::ScopeDenied { .. } => "SCOPE_DENIED",
            Error::HumanAuthRequired { .. } => "HUMAN_AUTH_REQUIRED",
            Error::ApprovalRequired { .. } => "APPROVAL_REQUIRED",
            Error::ApprovalDenied { .. } => "APPROVAL_DENIED",
            Error::ApprovalExpired { .. } => "APPROVAL_EXPIRED",
            Error::ApprovalTimeout { .. } => "APPROVAL_TIMEOUT",
            Error::NotFound { .. } => "SECRET_NOT_FOUND",
            Error::SecretExpired { .. } => "SECRET_EXPIRED",
            Error::RateLimited { .. } => "RATE_LIMITED",
            Error::Server { .. } => "SERVER_ERROR",
            Error::Http { code, .. } => code.as_deref().unwrap_or("HTTP_ERROR"),
            Error::Network { .. } => "NETWORK_ERROR",
            Error::InvalidResponse { .. } => "INVALID_RESPONSE",
            Error::Config { .. } => "CONFIG_ERROR",
        }
    }

    /// The HTTP status this error came with (as the contract's table gives it).
    pub fn status(&self) -> Option<u16> {
        Some(match self {
            Error::Validation { .. } => 400,
            Error::Unauthorized { .. } => 401,
            Error::ScopeDenied { .. }
            | Error::HumanAuthRequired { .. }
            | Error::ApprovalRequired { .. }
            | Error::ApprovalDenied { .. } => 403,
            Error::NotFound { .. } => 404,
            Error::ApprovalExpired { .. } | Error::SecretExpired { .. } => 410,
            Error::RateLimited { .. } => 429,
            Error::Server { status, .. } | Error::Http { status, .. } => *status,
            _ => return None,
        })
    }

    /// Whether trying the same call again later can help: network failures, 5xx, rate limits
    /// (after `Retry-After`), and an approval wait that timed out (a human may still decide).
    /// Everything else (validation, auth, scope, human-only operations, denial, not found,
    /// invalid responses, configuration) fails the same way until something changes.
    pub fn is_retryable(&self) -> bool {
        self.is_temporary()
    }

    /// Same as [`Error::is_retryable`] (the name the launcher uses).
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            Error::Network { .. }
                | Error::Server { .. }
                | Error::RateLimited { .. }
                | Error::ApprovalTimeout { .. }
        )
    }

    pub(crate) fn from_status(
        status: u16,
        code: Option<&str>,
        message: String,
        retry_after: Option<Duration>,
    ) -> Self {
        match (status, code) {
            (400 | 422, _) => Error::Validation { message },
            (401, _) => Error::Unauthorized { message },
            (403, Some("HUMAN_AUTH_REQUIRED")) => Error::HumanAuthRequired { message },
            (403, Some("APPROVAL_DENIED")) => {
                Error::ApprovalDenied { approval_id: None, reason: Some(message) }
            }
            (403, Some("APPROVAL_REQUIRED")) => {
                Error::ApprovalRequired { approval_id: String::new(), expires_at: None }
            }
            (403, _) => Error::ScopeDenied { message },
            (404, _) => Error::NotFound { message },
            (410, Some("APPROVAL_EXPIRED")) => Error::ApprovalExpired { approval_id: None },
            (410, _) => Error::SecretExpired { message },
            (429, _) => Error::RateLimited { retry_after, message },
            (500..=599, _) => Error::Server { status, message },
            _ => Error::Http { status, code: code.map(str::to_owned), message },
        }
    }
}

/// Convenience alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::path::ScopeError> for Error {
    fn from(e: crate::path::ScopeError) -> Self {
        Error::Validation { message: e.to_string() }
    }
}

impl From<crate::duration::DurationError> for Error {
    fn from(e: crate::duration::DurationError) -> Self {
        Error::Validation { message: e.to_string() }
    }
}

impl From<crate::path::PathError> for Error {
    fn from(e: crate::path::PathError) -> Self {
        Error::Validation { message: e.to_string() }
    }
}
