//! The token cache: one scoped token, reused while it covers the next request's scopes and has
//! more than a few seconds left.

use std::time::Duration;

use crate::path::{Scope, ScopeSet};
use crate::secret::Token;
use crate::wire::Timestamp;

/// A token is not reused when it has less than this left: a request started with it could
/// arrive after it expired.
pub const MIN_REMAINING: Duration = Duration::from_secs(10);

/// A token and what it may do.
#[derive(Debug, Clone)]
pub struct CachedToken {
    /// The token.
    pub token: Token,
    /// Its id (safe to log).
    pub token_id: String,
    /// The scopes it was issued for.
    pub scopes: ScopeSet,
    /// When it expires.
    pub expires_at: Timestamp,
}

impl CachedToken {
    /// Whether this token can serve a request needing `required`.
    pub fn serves(&self, required: &[Scope]) -> bool {
        self.expires_at.remaining() > MIN_REMAINING && required.iter().all(|r| self.scopes.covers(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(scopes: &[&str], left: Duration) -> CachedToken {
        CachedToken {
            token: Token::new("t"),
            token_id: "tok".into(),
            scopes: ScopeSet::new(scopes.iter().map(|s| s.parse().unwrap())),
            expires_at: Timestamp::after(left),
        }
    }

    #[test]
    fn reused_only_when_covering_and_fresh() {
        let c = cached(&["secrets:read:prod/*"], Duration::from_secs(600));
        assert!(c.serves(&["secrets:read:prod/a/KEY".parse().unwrap()]));
        assert!(!c.serves(&["secrets:write:prod/a/KEY".parse().unwrap()]));
        let stale = cached(&["secrets:read:prod/*"], Duration::from_secs(3));
        assert!(!stale.serves(&["secrets:read:prod/a/KEY".parse().unwrap()]));
    }
}
