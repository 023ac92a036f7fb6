//! `Authorization: Bearer …` parsing and the three credentials: agent key (only `POST /v1/tokens`
//! and approval polling), scoped token (only `/v1/secrets…`), admin key (everything).

use std::net::IpAddr;

use axum::http::{header, HeaderMap};

use crate::wire::Timestamp;

use super::error::ApiError;
use super::state::{Access, Caller, Store};

/// The bearer credential of a request, if it has one.
pub fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let missing = || {
        ApiError::Unauthorized("missing credential: send Authorization: Bearer <agent key or token>".into())
    };
    let value = headers.get(header::AUTHORIZATION).ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    let (scheme, cred) = value.trim().split_once(' ').ok_or_else(missing)?;
    let cred = cred.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || cred.is_empty() {
        return Err(missing());
    }
    Ok(cred)
}

/// Who is calling, by their bearer credential.
pub fn caller(store: &Store, headers: &HeaderMap) -> Result<Caller, ApiError> {
    Ok(store.identify(bearer(headers)?))
}

/// For `/v1/secrets…`: the admin key, or a live token (spending one of its uses). An agent key
/// here is refused with a hint; `on_agent_key` lets the caller count that for the stats.
pub fn secrets_access(
    store: &mut Store,
    headers: &HeaderMap,
    peer: IpAddr,
    now: Timestamp,
    on_agent_key: impl FnOnce(),
) -> Result<Access, ApiError> {
    match caller(store, headers)? {
        Caller::Admin => Ok(Access::Admin),
        Caller::Token(id) => store.use_token(&id, peer, now),
        Caller::Agent(_) => {
            on_agent_key();
            Err(ApiError::Unauthorized(
                "an agent key cannot read secrets: exchange it for a scoped token at POST /v1/tokens first"
                    .into(),
            ))
        }
        Caller::Unknown => Err(unknown()),
    }
}

/// For `POST /v1/tokens`: the agent's id.
pub fn agent_only(store: &Store, headers: &HeaderMap) -> Result<String, ApiError> {
    match caller(store, headers)? {
        Caller::Agent(id) => Ok(id),
        Caller::Token(_) => Err(ApiError::Unauthorized(
            "a scoped token cannot request tokens: use the agent key (ASS_AGENT_KEY)".into(),
        )),
        Caller::Admin => Err(ApiError::Unauthorized(
            "the admin key needs no token: call /v1/secrets directly, or use an agent key here".into(),
        )),
        Caller::Unknown => Err(unknown()),
    }
}

/// For approval polling: `Some(agent id)`, or `None` for the admin key (sees every approval).
pub fn agent_or_admin(store: &Store, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match caller(store, headers)? {
        Caller::Agent(id) => Ok(Some(id)),
        Caller::Admin => Ok(None),
        Caller::Token(_) => {
            Err(ApiError::Unauthorized("approval status needs the agent key, not a token".into()))
        }
        Caller::Unknown => Err(unknown()),
    }
}

/// For admin routes.
pub fn admin_only(store: &Store, headers: &HeaderMap) -> Result<(), ApiError> {
    match caller(store, headers)? {
        Caller::Admin => Ok(()),
        Caller::Unknown => Err(unknown()),
        _ => Err(ApiError::Unauthorized("this dev-server route needs the admin key (ASS_ADMIN_KEY)".into())),
    }
}

fn unknown() -> ApiError {
    ApiError::Unauthorized("unknown, revoked or malformed credential".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_forms() {
        let mut h = HeaderMap::new();
        assert!(bearer(&h).is_err());
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer  abc "));
        assert_eq!(bearer(&h).unwrap(), "abc");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer abc"));
        assert_eq!(bearer(&h).unwrap(), "abc");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(bearer(&h).is_err());
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer"));
        assert!(bearer(&h).is_err());
    }
}
