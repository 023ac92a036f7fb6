//! The seed SDK's `delete_secret` of a sensitive secret: an agent may delete standard secrets
//! only; a sensitive or critical one answers `HUMAN_AUTH_REQUIRED`.

use agentsecretstore::{AccessTier, AgentVault, Error, WriteOptions};

#[tokio::main]
async fn main() -> agentsecretstore::Result<()> {
    let vault = AgentVault::from_env()?;

    vault.set_secret("staging/tmp/SCRATCH", "temporary").await?;
    vault.delete_secret("staging/tmp/SCRATCH").await?;
    println!("deleted staging/tmp/SCRATCH (standard)");

    let sensitive = WriteOptions::new().access_tier(AccessTier::Sensitive);
    vault.set_secret_with("staging/tmp/SIGNING_KEY", "signing-key-example", sensitive).await?;
    match vault.delete_secret("staging/tmp/SIGNING_KEY").await {
        Err(e @ Error::HumanAuthRequired { .. }) => {
            println!("{}: a human must delete staging/tmp/SIGNING_KEY ({e})", e.code());
            Ok(())
        }
        Err(e) => Err(e),
        Ok(()) => {
            eprintln!("unexpected: the server let an agent delete a sensitive secret");
            std::process::exit(1)
        }
    }
}
