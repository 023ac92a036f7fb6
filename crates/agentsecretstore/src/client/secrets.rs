//! Reading, writing, deleting, listing and importing secrets.

use reqwest::Method;

use super::args::{metadata_object, ToSecretPath};
use super::options::{ImportOptions, WriteOptions};
use super::{AgentVault, Error, Result};
use crate::path::{encode_segment, Action, Scope};
use crate::secret::SecretString;
use crate::wire::{
    ImportRequest, ImportResponse, SecretListResponse, SecretResponse, SecretWriteRequest,
    SecretWriteResponse,
};

impl AgentVault {
    /// Reads a secret's value.
    pub async fn get_secret(&self, path: impl ToSecretPath) -> Result<SecretString> {
        Ok(self.get_secret_with_metadata(path).await?.value)
    }

    /// Reads a secret with its version, type, tier and metadata.
    pub async fn get_secret_with_metadata(&self, path: impl ToSecretPath) -> Result<SecretResponse> {
        let path = path.to_secret_path()?;
        let url = format!("/v1/secrets/{}", path.url_path());
        let body = self.with_token(path.scope(Action::Read), Method::GET, &url, |r| r).await?;
        let mut secret: SecretResponse = body.json("secret response")?;
        // The seed SDK's shape has no namespace/key: they are the path we asked for.
        if secret.namespace.is_empty() {
            secret.namespace = path.namespace().to_owned();
        }
        if secret.key.is_empty() {
            secret.key = path.key().to_owned();
        }
        Ok(secret)
    }

    /// Writes a secret with the server's defaults (a new version when it exists; an existing
    /// secret keeps its type, tier and metadata).
    ///
    /// # Errors
    /// [`Error::Validation`] for a bad path; [`Error::HumanAuthRequired`] when overwriting a
    /// sensitive or critical secret without an approved token; the server's errors.
    pub async fn set_secret(
        &self,
        path: impl ToSecretPath,
        value: impl Into<SecretString>,
    ) -> Result<SecretWriteResponse> {
        self.set_secret_with(path, value, WriteOptions::default()).await
    }

    /// Writes a secret with a type, tier, metadata or lifetime.
    ///
    /// ```no_run
    /// # async fn demo(vault: agentsecretstore::AgentVault) -> agentsecretstore::Result<()> {
    /// use agentsecretstore::{AccessTier, WriteOptions};
    /// let opts = WriteOptions::new()
    ///     .access_tier(AccessTier::Sensitive)
    ///     .metadata(serde_json::json!({"owner": "payments"}));
    /// let written = vault.set_secret_with("production/stripe/SECRET_KEY", "sk_live_…", opts).await?;
    /// println!("version {}", written.version);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`set_secret`](Self::set_secret), and [`Error::Validation`] for metadata that is not
    /// a JSON object.
    pub async fn set_secret_with(
        &self,
        path: impl ToSecretPath,
        value: impl Into<SecretString>,
        opts: WriteOptions,
    ) -> Result<SecretWriteResponse> {
        let path = path.to_secret_path()?;
        let body = SecretWriteRequest {
            value: value.into(),
            secret_type: opts.secret_type,
            access_tier: opts.access_tier,
            metadata: metadata_object(opts.metadata)?,
            ttl: opts.ttl,
        };
        let url = format!("/v1/secrets/{}", path.url_path());
        let resp = self.with_token(path.scope(Action::Write), Method::PUT, &url, |r| r.json(&body)).await?;
        let mut written: SecretWriteResponse = resp.json("write response")?;
        if written.namespace.is_empty() {
            written.namespace = path.namespace().to_owned();
        }
        if written.key.is_empty() {
            written.key = path.key().to_owned();
        }
        Ok(written)
    }

    /// Deletes a secret. Sensitive and critical secrets answer [`Error::HumanAuthRequired`].
    pub async fn delete_secret(&self, path: impl ToSecretPath) -> Result<()> {
        let path = path.to_secret_path()?;
        let url = format!("/v1/secrets/{}", path.url_path());
        self.with_token(path.scope(Action::Delete), Method::DELETE, &url, |r| r).await?;
        Ok(())
    }

    /// Lists every secret at or below `namespace` (values are never listed).
    pub async fn list_secrets(&self, namespace: &str) -> Result<SecretListResponse> {
        let namespace = check_namespace(namespace)?;
        let url = format!("/v1/secrets?namespace={}", encode_segment(namespace));
        let scope = Scope::new(Action::Read, format!("{namespace}/*"));
        let body = self.with_token(scope, Method::GET, &url, |r| r).await?;
        let mut list: SecretListResponse = body.json("list response")?;
        // Servers that leave out the item's namespace list one namespace: the one asked for.
        if list.namespace.is_empty() {
            namespace.clone_into(&mut list.namespace);
        }
        for item in list.items.iter_mut().filter(|i| i.namespace.is_empty()) {
            namespace.clone_into(&mut item.namespace);
        }
        if list.total == 0 {
            list.total = list.items.len() as u64;
        }
        Ok(list)
    }

    /// Imports a `.env` file's content into `namespace`.
    ///
    /// # Errors
    /// [`Error::Validation`] for a bad namespace, metadata or `.env` key;
    /// [`Error::HumanAuthRequired`] when a key overwrites a sensitive or critical secret; the
    /// server's errors.
    pub async fn import_env(
        &self,
        content: impl Into<SecretString>,
        namespace: &str,
        opts: ImportOptions,
    ) -> Result<ImportResponse> {
        let namespace = check_namespace(namespace)?;
        let body = ImportRequest {
            namespace: namespace.to_owned(),
            content: content.into(),
            secret_type: opts.secret_type,
            access_tier: opts.access_tier,
            metadata: metadata_object(opts.metadata)?,
        };
        let scope = Scope::new(Action::Write, format!("{namespace}/*"));
        let resp = self.with_token(scope, Method::POST, "/v1/secrets/import", |r| r.json(&body)).await?;
        let mut imported: ImportResponse = resp.json("import response")?;
        if imported.namespace.is_empty() {
            namespace.clone_into(&mut imported.namespace);
        }
        if imported.imported_count == 0 {
            imported.imported_count = imported.imported.len() as u64;
        }
        Ok(imported)
    }
}

pub(super) fn check_namespace(namespace: &str) -> Result<&str> {
    let ns = namespace.trim_matches('/');
    if ns.is_empty()
        || ns.split('/').any(str::is_empty)
        || ns.contains('*')
        || ns.chars().any(char::is_control)
    {
        return Err(Error::Validation { message: format!("invalid namespace {namespace:?}") });
    }
    Ok(ns)
}
