//! The seed SDK's `request_token(scopes, ttl)`: a short-lived token with exactly these scopes.
//! The client does this by itself before every read or write; ask explicitly to choose the
//! scopes and lifetime, or to learn early that a human must approve.

use agentsecretstore::AgentVault;

#[tokio::main]
async fn main() -> agentsecretstore::Result<()> {
    let vault = AgentVault::from_env()?;

    let token = vault.request_token(["secrets:read:production/*"], "5m").await?;
    // The token itself is a credential: print its id, never the token.
    println!("token {} for secrets:read:production/* until {}", token.token_id, token.expires_at);

    // Reads under production/ now reuse it.
    let level = vault.get_secret("production/app/LOG_LEVEL").await?;
    println!("LOG_LEVEL read with the cached token ({} characters)", level.expose().len());
    Ok(())
}
