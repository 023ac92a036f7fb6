//! The seed SDK's `list_secrets(namespace)`: every secret at or below a namespace, never values.

use agentsecretstore::AgentVault;

#[tokio::main]
async fn main() -> agentsecretstore::Result<()> {
    let vault = AgentVault::from_env()?;

    let listing = vault.list_secrets("production").await?;
    println!("{} secrets under production:", listing.total);
    for item in &listing.items {
        println!(
            "  {}/{} (version {}, {}, {})",
            item.namespace, item.key, item.version, item.secret_type, item.access_tier
        );
    }
    Ok(())
}
