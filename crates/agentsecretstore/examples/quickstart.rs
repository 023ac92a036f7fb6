//! The seed SDK's quick start in Rust: read a secret, then read one with its metadata.
//!
//! ```sh
//! vault-run dev --seed examples/seed.toml   # prints ASS_BASE_URL=… and ASS_AGENT_KEY=…
//! ASS_BASE_URL=… ASS_AGENT_KEY=… cargo run -p agentsecretstore --example quickstart
//! ```

use agentsecretstore::AgentVault;

#[tokio::main]
async fn main() -> agentsecretstore::Result<()> {
    let vault = AgentVault::from_env()?;

    let api_key = vault.get_secret("production/gemini/GEMINI_API_KEY").await?;
    // The value zeroizes on drop and prints as [REDACTED]; `expose()` is the explicit way out.
    println!("GEMINI_API_KEY: {} characters ({api_key:?})", api_key.expose().len());

    let secret = vault.get_secret_with_metadata("production/db/PASSWORD").await?;
    println!(
        "production/db/PASSWORD: version {}, type {}, tier {}",
        secret.version, secret.secret_type, secret.access_tier
    );
    Ok(())
}
