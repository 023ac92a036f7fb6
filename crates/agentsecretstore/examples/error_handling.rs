//! The seed SDK's error-handling pattern: one error type, a variant per failure, a stable code,
//! and whether retrying can help.

use std::time::Duration;

use agentsecretstore::{AgentVault, Error};

#[tokio::main]
async fn main() -> agentsecretstore::Result<()> {
    let vault = AgentVault::from_env()?;

    for path in ["production/app/LOG_LEVEL", "production/app/DOES_NOT_EXIST", "not-a-path"] {
        match vault.get_secret(path).await {
            Ok(value) => println!("{path}: ok ({} characters)", value.expose().len()),
            Err(Error::NotFound { .. }) => println!("{path}: SECRET_NOT_FOUND, check the path"),
            Err(Error::ApprovalRequired { approval_id, .. }) => {
                println!("{path}: waiting for a human to approve {approval_id}");
                vault.wait_for_approval(&approval_id, Duration::from_secs(600)).await?;
            }
            Err(e @ (Error::ScopeDenied { .. } | Error::Unauthorized { .. })) => {
                println!("{path}: {} ({e}): this agent may not read it", e.code())
            }
            Err(e) if e.is_retryable() => println!("{path}: {} ({e}): try again later", e.code()),
            Err(e) => println!("{path}: {}: {e}", e.code()),
        }
    }
    Ok(())
}
