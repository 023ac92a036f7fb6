//! The seed SDK's `import_env(content, namespace, access_tier="sensitive")`: a `.env` file's
//! pairs become secrets in one call.

use agentsecretstore::{AccessTier, AgentVault, ImportOptions};

#[tokio::main]
async fn main() -> agentsecretstore::Result<()> {
    let vault = AgentVault::from_env()?;

    let dotenv =
        "# staging database\nDB_HOST=db.staging.internal\nDB_USER=app\nexport DB_PASSWORD='s3cret pass'\n";
    let imported = vault
        .import_env(dotenv, "staging/db", ImportOptions::new().access_tier(AccessTier::Sensitive))
        .await?;
    println!(
        "imported {} secrets into {}: {}",
        imported.imported_count,
        imported.namespace,
        imported.imported.join(", ")
    );
    Ok(())
}
