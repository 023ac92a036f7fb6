//! The seed SDK's `set_secret(..., access_tier="sensitive", metadata={...})`: an agent creates a
//! sensitive secret with a plain agent key (overwriting it later needs an approval).

use agentsecretstore::{AccessTier, AgentVault, SecretType, WriteOptions};
use serde_json::json;

#[tokio::main]
async fn main() -> agentsecretstore::Result<()> {
    let vault = AgentVault::from_env()?;

    let written = vault
        .set_secret_with(
            "staging/payments/STRIPE_SECRET_KEY",
            "sk_test_example_0000",
            WriteOptions::new()
                .secret_type(SecretType::ApiKey)
                .access_tier(AccessTier::Sensitive)
                .metadata(json!({"owner": "payments", "environment": "staging"})),
        )
        .await?;
    println!(
        "stored {}/{}: version {}, tier {}, owner {}",
        written.namespace, written.key, written.version, written.access_tier, written.metadata["owner"]
    );

    // The plain case: server defaults (custom, standard).
    let plain = vault.set_secret("staging/app/FEATURE_FLAGS", "beta,dark-mode").await?;
    println!("stored {}/{}: version {}", plain.namespace, plain.key, plain.version);
    Ok(())
}
