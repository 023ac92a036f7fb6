//! Secrets Manager's JSON API as this backend calls it: signed `POST /` requests, the answers
//! it reads, and its errors in our [`FailureKind`]s.

use reqwest::header::HeaderValue;
use reqwest::Method;
use serde::Deserialize;

use super::config::Credentials;
use super::sigv4::{self, Signer};
use crate::backend::{BackendError, FailureKind};
use agentsecretstore::secret::SecretString;
use agentsecretstore::http::{self, Failure, RetryPolicy};

/// One secret's value as `GetSecretValue` and `BatchGetSecretValue` return it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretValue {
    /// The name.
    pub name: String,
    /// The ARN.
    #[serde(rename = "ARN")]
    pub arn: Option<String>,
    /// Text secrets.
    pub secret_string: Option<SecretString>,
    /// Binary secrets (base64): not usable in an environment.
    pub secret_binary: Option<SecretString>,
}

/// `BatchGetSecretValue`'s answer.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Batch {
    /// The values read.
    #[serde(default)]
    pub secret_values: Vec<SecretValue>,
    /// Per-secret failures.
    #[serde(default)]
    pub errors: Vec<BatchError>,
    /// More to read.
    pub next_token: Option<String>,
}

/// One secret a batch could not read.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchError {
    /// The id as asked.
    pub secret_id: String,
    /// `ResourceNotFoundException`, `AccessDeniedException`, …
    pub error_code: String,
    /// What the service said.
    pub message: Option<String>,
}

/// A client for one endpoint, signing with one set of credentials.
pub struct Api {
    pub(super) http: reqwest::Client,
    pub(super) endpoint: String,
    pub(super) host: String,
    pub(super) region: String,
    pub(super) credentials: Credentials,
    pub(super) retry: RetryPolicy,
}

/// Our kind for a Secrets Manager error code.
pub fn kind_of(code: &str, status: u16) -> FailureKind {
    match code {
        "ResourceNotFoundException" => FailureKind::Missing,
        "AccessDeniedException" | "AccessDenied" | "UnrecognizedClientException" | "InvalidClientTokenId"
        | "InvalidSignatureException" | "SignatureDoesNotMatch" | "IncompleteSignature" | "ExpiredTokenException"
        | "MissingAuthenticationToken" | "DecryptionFailure" => FailureKind::Auth,
        "ThrottlingException" | "InternalServiceError" | "InternalFailure" | "ServiceUnavailable" => {
            FailureKind::Temporary
        }
        _ => match status {
            401 | 403 => FailureKind::Auth,
            404 => FailureKind::Missing,
            s if s == 429 || s >= 500 => FailureKind::Temporary,
            _ => FailureKind::Config,
        },
    }
}

/// The error code and message of an error body: JSON (`__type`, `message`) or, from some
/// front ends, XML (`<Code>`, `<Message>`).
fn code_and_message(bytes: &[u8]) -> (String, Option<String>) {
    #[derive(Deserialize)]
    struct Json {
        #[serde(rename = "__type")]
        kind: Option<String>,
        #[serde(alias = "Message")]
        message: Option<String>,
    }
    if let Ok(j) = serde_json::from_slice::<Json>(bytes) {
        // `com.amazonaws…#ResourceNotFoundException`, or the bare name.
        let code = j.kind.unwrap_or_default().rsplit('#').next().unwrap_or_default().to_owned();
        return (code, j.message);
    }
    let text = String::from_utf8_lossy(bytes);
    let tag = |t: &str| {
        let start = text.find(&format!("<{t}>"))? + t.len() + 2;
        let end = text[start..].find(&format!("</{t}>"))? + start;
        Some(text[start..end].to_owned())
    };
    (tag("Code").unwrap_or_default(), tag("Message"))
}

impl Api {
    /// Calls `operation` with `body`; `what` names the secret(s) for messages.
    pub async fn call(&self, operation: &str, body: &serde_json::Value, what: &str) -> Result<http::Reply, BackendError> {
        let payload = serde_json::to_vec(body).expect("a JSON value serializes");
        let date = sigv4::amz_date(time::OffsetDateTime::now_utc());
        let target = format!("secretsmanager.{operation}");
        let token = self.credentials.session_token.as_ref().map(SecretString::expose);
        let mut headers = vec![
            ("content-type", "application/x-amz-json-1.1"),
            ("host", self.host.as_str()),
            ("x-amz-date", date.as_str()),
            ("x-amz-target", target.as_str()),
        ];
        if let Some(t) = token {
            headers.push(("x-amz-security-token", t));
        }
        let signer = Signer {
            access_key_id: &self.credentials.access_key_id,
            secret_access_key: self.credentials.secret_access_key.expose(),
            region: &self.region,
            service: "secretsmanager",
        };
        let request = sigv4::Request { method: "POST", path: "/", query: "", headers: &headers, payload: &payload };
        let authorization = signer.authorization(&request, &date);
        let url = format!("{}/", self.endpoint);
        let sent = http::send(&self.http, &self.retry, Method::POST, &url, |r| {
            let mut r = r
                .header("content-type", "application/x-amz-json-1.1")
                .header("x-amz-date", &date)
                .header("x-amz-target", &target)
                .header("authorization", &authorization)
                .body(payload.clone());
            if let Some(mut t) = token.and_then(|t| HeaderValue::from_str(t).ok()) {
                // Marked sensitive: kept out of any server message quoted back to the user.
                t.set_sensitive(true);
                r = r.header("x-amz-security-token", t);
            }
            r
        })
        .await;
        sent.map_err(|f| self.failure(f, operation, what))
    }

    fn failure(&self, f: Failure, operation: &str, what: &str) -> BackendError {
        match f {
            Failure::Network { message, .. } => BackendError::new(
                FailureKind::Temporary,
                format!(
                    "cannot reach AWS Secrets Manager at {} ({message}); check AWS_REGION and AWS_ENDPOINT_URL_SECRETS_MANAGER/AWS_ENDPOINT_URL",
                    self.endpoint
                ),
            )
            .with_reason("unreachable"),
            Failure::Invalid { message } => {
                BackendError::new(FailureKind::Temporary, format!("{what}: unexpected answer from AWS: {message}"))
            }
            Failure::Status(reply) => {
                let status = reply.status.as_u16();
                let (code, _) = code_and_message(&reply.bytes);
                let message = reply.message(|b| code_and_message(b).1);
                let kind = kind_of(&code, status);
                let hint = match kind {
                    FailureKind::Auth => format!(
                        "; check the credentials ({}) and that they may call secretsmanager:{operation}",
                        self.credentials.source
                    ),
                    FailureKind::Missing => "; check the name (and region)".to_owned(),
                    _ => String::new(),
                };
                let code = if code.is_empty() { status.to_string() } else { code };
                BackendError::new(kind, format!("{what}: AWS Secrets Manager answered {code}: {message}{hint}"))
            }
        }
    }
}

/// A 2xx body as `T`.
pub fn parse<T: serde::de::DeserializeOwned>(reply: &http::Reply, what: &str) -> Result<T, BackendError> {
    serde_json::from_slice(&reply.bytes).map_err(|e| {
        BackendError::new(
            FailureKind::Temporary,
            format!("{what}: unexpected answer from AWS: {}", http::describe_json_error(&e)),
        )
    })
}
