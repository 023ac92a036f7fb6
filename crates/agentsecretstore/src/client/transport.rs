//! Agent Secret Store's side of an HTTP exchange: the shared [`crate::http`] layer does the
//! retries, the body cap and the redirect refusal; this maps the store's statuses and error
//! bodies (contract §5) to [`Error`].

use reqwest::Method;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use super::error::{Error, Result};
use crate::http::{self, Failure};
use crate::wire::ErrorBody;

pub use crate::http::{describe_json_error, one_line, parse_retry_after, RetryPolicy, MAX_BODY};

/// A body read in full into a buffer that is wiped when dropped.
pub struct Body {
    /// HTTP status.
    pub status: reqwest::StatusCode,
    /// The protocol the answer came over (HTTP/2 when ALPN chose it).
    pub version: reqwest::Version,
    /// The bytes.
    pub bytes: Zeroizing<Vec<u8>>,
}

impl Body {
    /// Parses the body as JSON, mapping failures to `InvalidResponse`.
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T> {
        serde_json::from_slice(&self.bytes)
            .map_err(|e| Error::InvalidResponse { message: format!("{what}: {}", describe_json_error(&e)) })
    }
}

/// Sends the request built by `build` (called once per attempt) and returns a 2xx body, or the
/// store's error after retries.
pub async fn send(
    client: &reqwest::Client,
    policy: &RetryPolicy,
    method: Method,
    url: &str,
    build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> Result<Body> {
    match http::send(client, policy, method, url, build).await {
        Ok(r) => Ok(Body { status: r.status, version: r.version, bytes: r.bytes }),
        Err(f) => Err(error(f)),
    }
}

fn error(f: Failure) -> Error {
    match f {
        Failure::Network { message, source } => {
            Error::Network { message, source: Some(std::sync::Arc::new(source)) }
        }
        Failure::Invalid { message } => Error::InvalidResponse { message },
        Failure::Status(reply) => {
            let parsed: ErrorBody = serde_json::from_slice(&reply.bytes).unwrap_or_default();
            let message = reply.message(|_| parsed.message());
            Error::from_status(reply.status.as_u16(), parsed.code(), message, reply.retry_after)
        }
    }
}
