//! Vault/OpenBao's answers in Vault's terms: the shared HTTP layer hands back statuses and
//! `{"errors": [...]}` bodies, and they are read here, never through Agent Secret Store's error
//! table (a Vault 403 is a token or policy refusal, not the store's `SCOPE_DENIED`).

use agentsecretstore::http::Failure;

/// How a call to Vault/OpenBao failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VaultError {
    /// Connect, timeout or reset, after retries.
    #[error("cannot reach Vault/OpenBao at {addr} ({message}); check VAULT_ADDR (or BAO_ADDR) and that the server is running")]
    Unreachable {
        /// The server's address.
        addr: String,
        /// What failed.
        message: String,
    },
    /// 401/403: the token is unknown or expired, or its policies do not allow the call.
    #[error("permission denied by Vault ({status}: {message})")]
    Denied {
        /// HTTP status.
        status: u16,
        /// Vault's message.
        message: String,
    },
    /// 404: nothing at that path (or the token may not know whether there is).
    #[error("not found")]
    NotFound,
    /// 429 or 5xx after retries.
    #[error("Vault server error {status} at {addr}: {message}")]
    Server {
        /// The node that answered.
        addr: String,
        /// HTTP status.
        status: u16,
        /// Vault's message.
        message: String,
    },
    /// 503 "Vault is sealed", after retries.
    #[error(
        "Vault/OpenBao at {addr} is sealed ({message}); unseal it, or point VAULT_ADDR at an unsealed node"
    )]
    Sealed {
        /// The node that answered.
        addr: String,
        /// Vault's message.
        message: String,
    },
    /// A redirect outside the limits it is followed within.
    #[error("Vault/OpenBao at {addr} answered {status} with a redirect that is not followed: {why}; point VAULT_ADDR at the node it should reach")]
    Redirect {
        /// The node that answered.
        addr: String,
        /// HTTP status.
        status: u16,
        /// Why it is not followed.
        why: String,
    },
    /// Any other 4xx: the request itself was refused.
    #[error("Vault refused the request ({status}: {message})")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Vault's message.
        message: String,
    },
    /// A 2xx that does not parse, or a body over the cap.
    #[error("unexpected answer from Vault: {0}")]
    Invalid(String),
}

impl VaultError {
    /// Maps a failed exchange with the node at `addr` (a 3xx is the transport's to read).
    pub fn from_failure(f: Failure, addr: &str) -> Self {
        match f {
            Failure::Network { message, .. } => VaultError::Unreachable { addr: addr.to_owned(), message },
            Failure::Invalid { message } => VaultError::Invalid(message),
            Failure::Status(reply) => {
                let status = reply.status.as_u16();
                let message = reply.message(errors);
                match status {
                    401 | 403 => VaultError::Denied { status, message },
                    404 => VaultError::NotFound,
                    503 if message.to_ascii_lowercase().contains("sealed") => {
                        VaultError::Sealed { addr: addr.to_owned(), message }
                    }
                    429 | 472 | 473 | 500..=599 => {
                        VaultError::Server { addr: addr.to_owned(), status, message }
                    }
                    _ => VaultError::Rejected { status, message },
                }
            }
        }
    }
}

/// Vault/OpenBao error bodies: `{"errors": ["permission denied"]}`, where an entry may be a
/// Go multierror (`"1 error occurred:\n\t* permission denied\n\n"`): its items are kept.
fn errors(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<String>,
    }
    let e: Errors = serde_json::from_slice(bytes).ok()?;
    let items: Vec<String> = e
        .errors
        .iter()
        .flat_map(|entry| match entry.split_once("occurred:") {
            Some((_, list)) => {
                list.split("\n").filter_map(|l| l.trim().strip_prefix("* ")).map(str::to_owned).collect()
            }
            None => vec![entry.split_whitespace().collect::<Vec<_>>().join(" ")],
        })
        .filter(|s| !s.is_empty())
        .collect();
    (!items.is_empty()).then(|| items.join("; "))
}

#[cfg(test)]
mod tests {
    use super::errors;

    #[test]
    fn vault_error_bodies() {
        let multi = br#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#;
        assert_eq!(errors(multi).as_deref(), Some("permission denied"));
        let two = br#"{"errors":["2 errors occurred:\n\t* a\n\t* b\n\n", "no handler\nfor route"]}"#;
        assert_eq!(errors(two).as_deref(), Some("a; b; no handler for route"));
        assert_eq!(errors(br#"{"errors":[]}"#), None);
        assert_eq!(errors(b"not json"), None);
    }
}
