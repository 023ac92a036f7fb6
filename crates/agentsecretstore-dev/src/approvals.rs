//! Token issuance and approvals (contract §4): which tier a token request needs, the approval
//! that stands in for a human's agreement, and its life (pending → approved/denied/expired,
//! used once, denial or expiry reported once).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use crate::path::{Scope, ScopeSet};
use crate::secret::Token;
use crate::wire::{AccessTier, ApprovalState, ApprovalStatus, Timestamp, TokenReply, TokenRequest};

use super::approval::{Approval, Decision};
use super::error::ApiError;
use super::state::{add, random_hex, Store, TokenRecord};

/// Token lifetime when the request names none.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Longest token lifetime the dev server grants.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// Most scopes one token request may name (a real mapping names a few dozen).
pub const MAX_SCOPES: usize = 1024;
/// Most approvals one agent may have pending at once: each one is kept until it expires.
pub const MAX_PENDING_PER_AGENT: usize = 32;

/// A new approval, for the log line that tells a human how to approve it.
#[derive(Clone, Debug)]
pub struct NewApproval {
    /// Its id.
    pub id: String,
    /// The asking agent's name.
    pub agent_name: String,
    /// The scopes, joined.
    pub scopes: String,
    /// The tier.
    pub tier: AccessTier,
}

/// What `POST /v1/tokens` answers when it does not fail.
#[derive(Debug)]
pub enum TokenOutcome {
    /// 200 with a token.
    Issued {
        /// The body.
        reply: TokenReply,
        /// The approval it consumed, if any.
        approval_id: Option<String>,
    },
    /// 202: a human must approve first.
    Pending {
        /// The body.
        reply: TokenReply,
        /// Set when this request created the approval (rather than found a pending one).
        created: Option<NewApproval>,
    },
}

/// A token request after validation.
struct Validated {
    scopes: Vec<Scope>,
    ttl: Duration,
    max_uses: Option<u64>,
    ip_allowlist: Option<Vec<IpAddr>>,
}

fn validate(req: TokenRequest) -> Result<Validated, ApiError> {
    if req.scopes.is_empty() {
        return Err(ApiError::Validation("scopes must list at least one scope".into()));
    }
    if req.scopes.len() > MAX_SCOPES {
        return Err(ApiError::Validation(format!(
            "{} scopes requested; the dev server takes at most {MAX_SCOPES} per token (use a pattern like ns/*)",
            req.scopes.len()
        )));
    }
    let mut scopes = Vec::with_capacity(req.scopes.len());
    for s in &req.scopes {
        scopes.push(s.parse::<Scope>().map_err(|e| ApiError::Validation(e.to_string()))?);
    }
    let ttl = req.ttl.map(|d| d.get()).unwrap_or(DEFAULT_TOKEN_TTL);
    if ttl.is_zero() {
        return Err(ApiError::Validation("ttl must be greater than zero".into()));
    }
    if ttl > MAX_TOKEN_TTL {
        return Err(ApiError::Validation(format!(
            "ttl {} is above the dev server's maximum of 24h",
            crate::duration::HumanDuration(ttl)
        )));
    }
    if req.max_uses == Some(0) {
        return Err(ApiError::Validation("max_uses must be at least 1".into()));
    }
    let ip_allowlist = match req.ip_allowlist {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|ip| {
                    ip.trim().parse::<IpAddr>().map_err(|_| {
                        ApiError::Validation(format!("ip_allowlist entry {ip:?} is not an IP address"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(Validated { scopes, ttl, max_uses: req.max_uses, ip_allowlist })
}

impl Store {
    /// `POST /v1/tokens` for agent `agent_id`.
    pub fn request_token(
        &mut self,
        agent_id: &str,
        req: TokenRequest,
        now: Timestamp,
    ) -> Result<TokenOutcome, ApiError> {
        let v = validate(req)?;
        self.prune_approvals(now);
        let agent = self.agent(agent_id).ok_or_else(|| ApiError::Unauthorized("unknown agent".into()))?;
        if let Some(s) = v.scopes.iter().find(|s| !agent.allowed_scopes.iter().any(|a| a.covers(s))) {
            return Err(ApiError::ScopeDenied(format!(
                "scope {s} is outside the allowed scopes of agent {:?}",
                agent.name
            )));
        }
        let agent_name = agent.name.clone();
        let tier = self.required_tier(&v.scopes);
        if tier == AccessTier::Standard {
            return Ok(self.issue(v, AccessTier::Standard, None, now));
        }
        let set: BTreeSet<Scope> = v.scopes.iter().cloned().collect();
        let latest = self.approvals.iter_mut().rev().find(|a| a.agent_id == agent_id && a.scopes == set);
        if let Some(a) = latest {
            match a.decision {
                Decision::Approved if !a.used && !a.expired(now) && a.tier >= tier => {
                    a.used = true;
                    let (granted, id) = (a.tier.clone(), a.id.clone());
                    return Ok(self.issue(v, granted, Some(id), now));
                }
                Decision::Pending if !a.expired(now) => {
                    return Ok(TokenOutcome::Pending { reply: pending_reply(a), created: None });
                }
                Decision::Denied if !a.reported => {
                    a.reported = true;
                    let why = a.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
                    return Err(ApiError::ApprovalDenied(format!("approval {} was denied{why}", a.id)));
                }
                Decision::Pending | Decision::Approved if !a.reported && !a.used && a.expired(now) => {
                    a.reported = true;
                    return Err(ApiError::ApprovalExpired(format!(
                        "approval {} expired at {} before it was used; request the token again to ask anew",
                        a.id, a.expires_at
                    )));
                }
                _ => {}
            }
        }
        let pending = self
            .approvals
            .iter()
            .filter(|a| a.agent_id == agent_id && a.state(now) == ApprovalState::Pending);
        if pending.count() >= MAX_PENDING_PER_AGENT {
            return Err(ApiError::RateLimited {
                retry_after: self.approval_ttl.as_secs().max(1).to_string(),
            });
        }
        let expires_at = add(now, self.approval_ttl).unwrap_or(now);
        let a = Approval {
            id: format!("apr_{}", random_hex(8)),
            agent_id: agent_id.to_owned(),
            scopes: set,
            tier: tier.clone(),
            created_at: now,
            expires_at,
            decision: Decision::Pending,
            reason: None,
            used: false,
            reported: false,
        };
        let created = NewApproval {
            id: a.id.clone(),
            agent_name,
            scopes: a.scopes.iter().map(Scope::to_string).collect::<Vec<_>>().join(" "),
            tier,
        };
        let reply = pending_reply(&a);
        self.approvals.push(a);
        Ok(TokenOutcome::Pending { reply, created: Some(created) })
    }

    /// Forgets approvals nobody can use or needs to hear about any more: used ones, and any
    /// whose expiry is one approval lifetime past (long enough for a waiting client to see it
    /// expire, or be told of its denial, by polling or by asking again). Without this, every
    /// request for a sensitive scope set would be kept for ever.
    fn prune_approvals(&mut self, now: Timestamp) {
        let grace = time::Duration::try_from(self.approval_ttl).unwrap_or(time::Duration::HOUR);
        self.approvals.retain(|a| !a.used && now.0 < a.expires_at.0 + grace);
    }

    fn issue(
        &mut self,
        v: Validated,
        tier: AccessTier,
        approval_id: Option<String>,
        now: Timestamp,
    ) -> TokenOutcome {
        // Tokens that died over an hour ago are forgotten.
        let horizon = add(now, Duration::ZERO).map(|t| Timestamp(t.0 - time::Duration::hours(1)));
        let expires_at = add(now, v.ttl).unwrap_or(now);
        let token = Token::new(format!("asst_{}", random_hex(32)));
        let id = format!("tok_{}", random_hex(8));
        let record = TokenRecord {
            id: id.clone(),
            token: token.clone(),
            scopes: std::sync::Arc::new(ScopeSet::new(v.scopes)),
            tier,
            expires_at,
            max_uses: v.max_uses,
            uses: 0,
            ip_allowlist: v.ip_allowlist,
        };
        self.add_token(record, horizon);
        let reply = TokenReply {
            token: Some(token),
            token_id: Some(id),
            expires_at: Some(expires_at),
            requires_approval: false,
            approval_id: None,
        };
        TokenOutcome::Issued { reply, approval_id }
    }

    /// `GET /v1/approvals/agent/{id}`: only the asking agent (or the admin, `asker = None`) sees it.
    pub fn approval_status(
        &self,
        id: &str,
        asker: Option<&str>,
        now: Timestamp,
    ) -> Result<ApprovalStatus, ApiError> {
        self.approvals
            .iter()
            .find(|a| a.id == id && asker.map_or(true, |who| who == a.agent_id))
            .map(|a| a.status(now))
            .ok_or_else(|| ApiError::NotFound(format!("approval {id} not found")))
    }

    /// Approves or denies; an expired approval answers 410, a decided one 409.
    pub fn decide(
        &mut self,
        id: &str,
        approve: bool,
        reason: Option<String>,
        now: Timestamp,
    ) -> Result<ApprovalStatus, ApiError> {
        let a = self
            .approvals
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or_else(|| ApiError::NotFound(format!("approval {id} not found")))?;
        if a.decision != Decision::Pending {
            return Err(ApiError::AlreadyDecided(format!(
                "approval {id} was already {}",
                if a.decision == Decision::Approved { "approved" } else { "denied" }
            )));
        }
        if a.expired(now) {
            return Err(ApiError::ApprovalExpired(format!("approval {id} expired at {}", a.expires_at)));
        }
        a.decision = if approve { Decision::Approved } else { Decision::Denied };
        a.reason = reason.filter(|r| !r.trim().is_empty());
        Ok(a.status(now))
    }

    /// Every approval (optionally only those in `state`), oldest first, with the agent's name.
    pub fn approvals(&self, state: Option<ApprovalState>, now: Timestamp) -> Vec<serde_json::Value> {
        self.approvals
            .iter()
            .filter(|a| state.as_ref().map_or(true, |s| a.state(now) == *s))
            .map(|a| {
                let mut v = serde_json::to_value(a.status(now)).unwrap_or_default();
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("agent_id".into(), a.agent_id.clone().into());
                    let name = self.agent(&a.agent_id).map(|g| g.name.clone()).unwrap_or_default();
                    obj.insert("agent_name".into(), name.into());
                    obj.insert("created_at".into(), a.created_at.to_string().into());
                    obj.insert("used".into(), a.used.into());
                }
                v
            })
            .collect()
    }
}

fn pending_reply(a: &Approval) -> TokenReply {
    TokenReply {
        token: None,
        token_id: None,
        expires_at: Some(a.expires_at),
        requires_approval: true,
        approval_id: Some(a.id.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{new_admin_key, Access};
    use crate::wire::SecretWriteRequest;

    fn ts(secs: i64) -> Timestamp {
        Timestamp(time::OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap())
    }

    fn setup() -> (Store, String) {
        let mut s = Store::new(new_admin_key(), Duration::from_secs(60));
        let id = s.add_agent("bot", None, vec!["secrets:*:*".parse().unwrap()]).unwrap().id.clone();
        let w = |tier| SecretWriteRequest {
            value: "v".into(),
            secret_type: None,
            access_tier: Some(tier),
            metadata: None,
            ttl: None,
        };
        s.put(&Access::Admin, &"p/STD".parse().unwrap(), w(AccessTier::Standard), ts(0)).unwrap();
        s.put(&Access::Admin, &"p/SEN".parse().unwrap(), w(AccessTier::Sensitive), ts(0)).unwrap();
        (s, id)
    }

    fn req(scopes: &[&str]) -> TokenRequest {
        TokenRequest {
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ttl: None,
            max_uses: None,
            ip_allowlist: None,
        }
    }

    fn pending_id(o: TokenOutcome) -> String {
        match o {
            TokenOutcome::Pending { reply, .. } => reply.approval_id.unwrap(),
            other => panic!("expected pending, got {other:?}"),
        }
    }

    #[test]
    fn standard_needs_no_approval() {
        let (mut s, agent) = setup();
        let o = s.request_token(&agent, req(&["secrets:read:p/STD", "secrets:delete:p/*"]), ts(0)).unwrap();
        assert!(matches!(o, TokenOutcome::Issued { approval_id: None, .. }));
    }

    #[test]
    fn validation_and_allowed_scopes() {
        let (mut s, agent) = setup();
        assert!(matches!(s.request_token(&agent, req(&[]), ts(0)), Err(ApiError::Validation(_))));
        assert!(matches!(s.request_token(&agent, req(&["nope"]), ts(0)), Err(ApiError::Validation(_))));
        let mut long = req(&["secrets:read:p/STD"]);
        long.ttl = Some(crate::duration::HumanDuration::from_secs(24 * 3600 + 1));
        assert!(matches!(s.request_token(&agent, long, ts(0)), Err(ApiError::Validation(_))));
        let narrow =
            s.add_agent("narrow", None, vec!["secrets:read:pub/*".parse().unwrap()]).unwrap().id.clone();
        let e = s.request_token(&narrow, req(&["secrets:read:p/STD"]), ts(0)).unwrap_err();
        assert!(matches!(&e, ApiError::ScopeDenied(m) if m.contains("secrets:read:p/STD")), "{e:?}");
        assert!(s.request_token(&narrow, req(&["secrets:read:pub/x/y"]), ts(0)).is_ok());
    }

    #[test]
    fn approve_then_issue_once() {
        let (mut s, agent) = setup();
        let scopes = ["secrets:read:p/SEN", "secrets:read:p/STD"];
        let id = pending_id(s.request_token(&agent, req(&scopes), ts(0)).unwrap());
        // Same set in another order: the same pending approval.
        let again = pending_id(s.request_token(&agent, req(&[scopes[1], scopes[0]]), ts(1)).unwrap());
        assert_eq!(id, again);
        assert_eq!(s.approval_status(&id, Some(&agent), ts(1)).unwrap().status, ApprovalState::Pending);
        assert!(s.approval_status(&id, Some("agt_other"), ts(1)).is_err());
        s.decide(&id, true, None, ts(2)).unwrap();
        assert!(matches!(s.decide(&id, false, None, ts(2)), Err(ApiError::AlreadyDecided(_))));
        let o = s.request_token(&agent, req(&scopes), ts(3)).unwrap();
        let TokenOutcome::Issued { approval_id, reply } = o else { panic!("{o:?}") };
        assert_eq!(approval_id.as_deref(), Some(id.as_str()));
        assert_eq!(s.tokens[reply.token_id.as_deref().unwrap()].tier, AccessTier::Sensitive);
        // Used once: a new request starts a new approval.
        let next = pending_id(s.request_token(&agent, req(&scopes), ts(4)).unwrap());
        assert_ne!(next, id);
    }

    #[test]
    fn denial_and_expiry_reported_once() {
        let (mut s, agent) = setup();
        let scopes = ["secrets:read:p/SEN"];
        let id = pending_id(s.request_token(&agent, req(&scopes), ts(0)).unwrap());
        s.decide(&id, false, Some("no".into()), ts(1)).unwrap();
        assert_eq!(s.approval_status(&id, None, ts(1)).unwrap().reason.as_deref(), Some("no"));
        assert!(matches!(s.request_token(&agent, req(&scopes), ts(2)), Err(ApiError::ApprovalDenied(_))));
        let id2 = pending_id(s.request_token(&agent, req(&scopes), ts(3)).unwrap());
        assert_ne!(id, id2);
        // Expires 60 s after it was asked for.
        assert_eq!(s.approval_status(&id2, None, ts(63)).unwrap().status, ApprovalState::Expired);
        assert!(matches!(s.decide(&id2, true, None, ts(63)), Err(ApiError::ApprovalExpired(_))));
        assert!(matches!(s.request_token(&agent, req(&scopes), ts(64)), Err(ApiError::ApprovalExpired(_))));
        let id3 = pending_id(s.request_token(&agent, req(&scopes), ts(65)).unwrap());
        assert!(id3 != id2 && id3 != id);
        assert_eq!(s.approvals(Some(ApprovalState::Pending), ts(65)).len(), 1);
    }

    #[test]
    fn approved_but_unused_expires() {
        let (mut s, agent) = setup();
        let scopes = ["secrets:*:p/*"];
        let id = pending_id(s.request_token(&agent, req(&scopes), ts(0)).unwrap());
        s.decide(&id, true, None, ts(1)).unwrap();
        assert!(matches!(s.request_token(&agent, req(&scopes), ts(61)), Err(ApiError::ApprovalExpired(_))));
        assert!(matches!(s.request_token(&agent, req(&scopes), ts(62)), Ok(TokenOutcome::Pending { .. })));
    }
}
