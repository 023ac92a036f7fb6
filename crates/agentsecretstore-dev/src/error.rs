//! The one error type of the dev server's handlers, rendered as the contract's JSON error body.
//!
//! Messages are built from paths, scope strings, ids and field names only: never a secret value,
//! a key or a token, because clients log them and the request log may too.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::wire::{ErrorBody, ErrorObject};

/// Everything a handler can answer instead of success (contract §5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400 `VALIDATION_ERROR`: bad body, path, scope, duration…
    #[error("{0}")]
    Validation(String),
    /// 401 `UNAUTHORIZED`: missing, unknown, expired or exhausted credential.
    #[error("{0}")]
    Unauthorized(String),
    /// 403 `SCOPE_DENIED`.
    #[error("{0}")]
    ScopeDenied(String),
    /// 403 `HUMAN_AUTH_REQUIRED`: sensitive/critical writes and deletes.
    #[error("{0}")]
    HumanAuthRequired(String),
    /// 403 `APPROVAL_DENIED`.
    #[error("{0}")]
    ApprovalDenied(String),
    /// 410 `APPROVAL_EXPIRED`.
    #[error("{0}")]
    ApprovalExpired(String),
    /// 404 `SECRET_NOT_FOUND`.
    #[error("{0}")]
    SecretNotFound(String),
    /// 410 `SECRET_EXPIRED`.
    #[error("{0}")]
    SecretExpired(String),
    /// 404 `NOT_FOUND`: unknown route, approval or agent.
    #[error("{0}")]
    NotFound(String),
    /// 405 `METHOD_NOT_ALLOWED`.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// 409 `APPROVAL_ALREADY_DECIDED`: approving or denying twice.
    #[error("{0}")]
    AlreadyDecided(String),
    /// 429 `RATE_LIMITED`, with the `Retry-After` header value.
    #[error("rate limited; retry after the time in the Retry-After header")]
    RateLimited {
        /// Seconds or an HTTP date.
        retry_after: String,
    },
    /// Any status injected by the fault knobs.
    #[error("injected fault ({reason})")]
    Injected {
        /// The status to answer.
        status: StatusCode,
        /// `Retry-After`, for injected 429s.
        retry_after: Option<String>,
        /// Which knob fired.
        reason: &'static str,
    },
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::ScopeDenied(_) | ApiError::HumanAuthRequired(_) | ApiError::ApprovalDenied(_) => {
                StatusCode::FORBIDDEN
            }
            ApiError::ApprovalExpired(_) | ApiError::SecretExpired(_) => StatusCode::GONE,
            ApiError::SecretNotFound(_) | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::AlreadyDecided(_) => StatusCode::CONFLICT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Injected { status, .. } => *status,
        }
    }

    /// The upstream error code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "VALIDATION_ERROR",
            ApiError::Unauthorized(_) => "UNAUTHORIZED",
            ApiError::ScopeDenied(_) => "SCOPE_DENIED",
            ApiError::HumanAuthRequired(_) => "HUMAN_AUTH_REQUIRED",
            ApiError::ApprovalDenied(_) => "APPROVAL_DENIED",
            ApiError::ApprovalExpired(_) => "APPROVAL_EXPIRED",
            ApiError::SecretNotFound(_) => "SECRET_NOT_FOUND",
            ApiError::SecretExpired(_) => "SECRET_EXPIRED",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ApiError::AlreadyDecided(_) => "APPROVAL_ALREADY_DECIDED",
            ApiError::RateLimited { .. } => "RATE_LIMITED",
            ApiError::Injected { status, .. } => match status.as_u16() {
                429 => "RATE_LIMITED",
                401 => "UNAUTHORIZED",
                400 | 422 => "VALIDATION_ERROR",
                503 => "SERVICE_UNAVAILABLE",
                s if s >= 500 => "INTERNAL_ERROR",
                _ => "INJECTED_FAULT",
            },
        }
    }

    /// The JSON error body.
    pub fn body(&self) -> ErrorBody {
        let message = self.to_string();
        ErrorBody {
            error: Some(ErrorObject { code: Some(self.code().to_owned()), message: Some(message.clone()) }),
            detail: Some(serde_json::Value::String(message)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status(), axum::Json(self.body())).into_response();
        let retry_after = match &self {
            ApiError::RateLimited { retry_after } => Some(retry_after.as_str()),
            ApiError::Injected { retry_after, .. } => retry_after.as_deref(),
            _ => None,
        };
        if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// Rewrites a serde (JSON or TOML) error message so that it cannot echo a value: serde's
/// "invalid type: string \"…\"" and "invalid value: integer `…`" quote what they got, which for
/// the `value` field is the secret itself. Everything else (field names, variants) is kept.
pub fn sanitize_serde_message(msg: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            // "string \"abc\", expected a u64" → "string, expected a u64".
            let kind = rest.split([' ', ',']).next().unwrap_or("value");
            let expected = rest.find(", expected").map(|i| &rest[i..]).unwrap_or("");
            return format!("{prefix}{kind}{expected}");
        }
    }
    msg.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizer_drops_quoted_values() {
        let m =
            sanitize_serde_message("invalid type: integer `12345`, expected a string at line 1 column 14");
        assert_eq!(m, "invalid type: integer, expected a string at line 1 column 14");
        assert!(!m.contains("12345"));
        let m = sanitize_serde_message("invalid type: string \"s3cr3t\", expected u64");
        assert!(!m.contains("s3cr3t"), "{m}");
        assert_eq!(sanitize_serde_message("missing field `value`"), "missing field `value`");
    }

    #[test]
    fn codes_and_statuses() {
        let e = ApiError::ScopeDenied("no".into());
        assert_eq!((e.status().as_u16(), e.code()), (403, "SCOPE_DENIED"));
        let body = serde_json::to_value(e.body()).unwrap();
        assert_eq!(body["error"]["code"], "SCOPE_DENIED");
        assert_eq!(body["detail"], "no");
        let e = ApiError::Injected { status: StatusCode::TOO_MANY_REQUESTS, retry_after: None, reason: "x" };
        assert_eq!(e.code(), "RATE_LIMITED");
    }
}
