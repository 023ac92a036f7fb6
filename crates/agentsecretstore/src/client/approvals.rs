//! Approvals: asking for an approval's state, and waiting for a human's decision.

use std::time::{Duration, Instant};

use reqwest::Method;

use super::transport::{self};

use super::{AgentVault, Error, Result};
use crate::path::encode_segment;
use crate::wire::{ApprovalState, ApprovalStatus};

impl AgentVault {
    /// The status of an approval (agent key).
    pub async fn approval_status(&self, approval_id: &str) -> Result<ApprovalStatus> {
        if approval_id.is_empty() || approval_id.contains('/') {
            return Err(Error::Validation { message: format!("invalid approval id {approval_id:?}") });
        }
        let url = self.url(&format!("/v1/approvals/agent/{}", encode_segment(approval_id)));
        let key = &self.inner.agent_key;
        let body = transport::send(&self.inner.http, &self.inner.retry, Method::GET, &url, |r| {
            r.bearer_auth(key.expose())
        })
        .await?;
        body.json("approval status")
    }

    /// Polls an approval until it is approved (returns its status), denied, expired, or
    /// `timeout` passes. A zero timeout checks once.
    pub async fn wait_for_approval(&self, approval_id: &str, timeout: Duration) -> Result<ApprovalStatus> {
        let started = Instant::now();
        loop {
            let status = self.approval_status(approval_id).await?;
            match status.status {
                ApprovalState::Approved => return Ok(status),
                ApprovalState::Denied => {
                    return Err(Error::ApprovalDenied {
                        approval_id: Some(approval_id.to_owned()),
                        reason: status.reason.as_deref().map(transport::one_line),
                    })
                }
                ApprovalState::Expired => {
                    return Err(Error::ApprovalExpired { approval_id: Some(approval_id.to_owned()) })
                }
                // A status word this SDK does not know is not a decision: keep waiting.
                _ => {}
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(Error::ApprovalTimeout { approval_id: approval_id.to_owned(), waited });
            }
            tokio::time::sleep(self.inner.approval_poll_interval.min(timeout - waited)).await;
        }
    }
}
