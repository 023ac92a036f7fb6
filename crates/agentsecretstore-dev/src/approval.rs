//! One approval as the store keeps it: the human's decision and its wire state. Kept apart from
//! `approvals.rs` (which issues tokens through approvals, working on the store) so that the store
//! can hold approvals without importing the code that works on it.

use std::collections::BTreeSet;

use crate::path::Scope;
use crate::wire::{AccessTier, ApprovalState, ApprovalStatus, Timestamp};

/// What a human decided, if anything yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nobody decided.
    Pending,
    /// Approved.
    Approved,
    /// Denied.
    Denied,
}

/// One approval: bound to one agent and one exact set of scopes.
#[derive(Clone, Debug)]
pub struct Approval {
    /// `apr_…`
    pub id: String,
    /// The agent that asked.
    pub agent_id: String,
    /// The scope set it is for (order-insensitive by construction).
    pub scopes: BTreeSet<Scope>,
    /// The tier that made it necessary; a token issued through it may write up to this tier.
    pub tier: AccessTier,
    /// When it was asked for.
    pub created_at: Timestamp,
    /// After this it can no longer be decided or used.
    pub expires_at: Timestamp,
    /// Where it stands.
    pub decision: Decision,
    /// The reason given with the decision.
    pub reason: Option<String>,
    /// A token was issued through it.
    pub used: bool,
    /// Its denial or expiry was answered to a token request once already.
    pub reported: bool,
}

impl Approval {
    pub(crate) fn expired(&self, now: Timestamp) -> bool {
        self.expires_at <= now
    }

    /// The wire state: pending past `expires_at` reads as expired.
    pub fn state(&self, now: Timestamp) -> ApprovalState {
        match self.decision {
            Decision::Pending if self.expired(now) => ApprovalState::Expired,
            Decision::Pending => ApprovalState::Pending,
            Decision::Approved => ApprovalState::Approved,
            Decision::Denied => ApprovalState::Denied,
        }
    }

    /// The status body.
    pub fn status(&self, now: Timestamp) -> ApprovalStatus {
        ApprovalStatus {
            id: Some(self.id.clone()),
            status: self.state(now),
            expires_at: Some(self.expires_at),
            scopes: Some(self.scopes.iter().map(Scope::to_string).collect()),
            access_tier: Some(self.tier.clone()),
            reason: self.reason.clone(),
            token: None,
            token_expires_at: None,
        }
    }
}
