//! What the client's calls accept: secret paths, scopes, lifetimes and metadata in the
//! forms callers have at hand (`&str`, parsed types, `Duration`, JSON or maps).

use std::time::Duration;

use super::{Error, Result};
use crate::duration::HumanDuration;
use crate::path::{Scope, SecretPath};
use crate::wire::Metadata;

/// Anything that names a secret: `&str`, `String` or a parsed [`SecretPath`].
pub trait ToSecretPath {
    /// Parses or borrows the path.
    fn to_secret_path(&self) -> std::result::Result<SecretPath, crate::path::PathError>;
}

impl ToSecretPath for str {
    fn to_secret_path(&self) -> std::result::Result<SecretPath, crate::path::PathError> {
        self.parse()
    }
}

impl ToSecretPath for String {
    fn to_secret_path(&self) -> std::result::Result<SecretPath, crate::path::PathError> {
        self.parse()
    }
}

impl ToSecretPath for SecretPath {
    fn to_secret_path(&self) -> std::result::Result<SecretPath, crate::path::PathError> {
        Ok(self.clone())
    }
}

impl<T: ToSecretPath + ?Sized> ToSecretPath for &T {
    fn to_secret_path(&self) -> std::result::Result<SecretPath, crate::path::PathError> {
        (**self).to_secret_path()
    }
}

/// Anything that names scopes: a parsed [`Scope`] or a scope string
/// (`"secrets:read:production/*"`), owned or borrowed.
pub trait ToScope {
    /// Parses or clones the scope.
    ///
    /// # Errors
    /// [`Error::Validation`] when the string is not a scope.
    fn to_scope(&self) -> Result<Scope>;
}

impl ToScope for Scope {
    fn to_scope(&self) -> Result<Scope> {
        Ok(self.clone())
    }
}

impl ToScope for str {
    fn to_scope(&self) -> Result<Scope> {
        Ok(self.parse::<Scope>()?)
    }
}

impl ToScope for String {
    fn to_scope(&self) -> Result<Scope> {
        self.as_str().to_scope()
    }
}

impl<T: ToScope + ?Sized> ToScope for &T {
    fn to_scope(&self) -> Result<Scope> {
        (**self).to_scope()
    }
}

pub(super) fn to_scopes<S: ToScope>(scopes: impl IntoIterator<Item = S>) -> Result<Vec<Scope>> {
    scopes.into_iter().map(|s| s.to_scope()).collect()
}

/// A lifetime given as a [`Duration`], a [`HumanDuration`], or text like `"5m"` / `"1h"`;
/// `None` (of `Option<HumanDuration>`) means "the default".
pub trait IntoTtl {
    /// The lifetime, or `None` for the default.
    ///
    /// # Errors
    /// [`Error::Validation`] when the text is not a duration.
    fn into_ttl(self) -> Result<Option<HumanDuration>>;
}

impl IntoTtl for Option<HumanDuration> {
    fn into_ttl(self) -> Result<Option<HumanDuration>> {
        Ok(self)
    }
}

impl IntoTtl for HumanDuration {
    fn into_ttl(self) -> Result<Option<HumanDuration>> {
        Ok(Some(self))
    }
}

impl IntoTtl for Duration {
    fn into_ttl(self) -> Result<Option<HumanDuration>> {
        Ok(Some(HumanDuration(self)))
    }
}

impl IntoTtl for &str {
    fn into_ttl(self) -> Result<Option<HumanDuration>> {
        Ok(Some(self.parse::<HumanDuration>()?))
    }
}

impl IntoTtl for String {
    fn into_ttl(self) -> Result<Option<HumanDuration>> {
        self.as_str().into_ttl()
    }
}

/// Metadata from a JSON object ([`serde_json::Value`] or [`Metadata`]) or a map of strings.
pub trait IntoMetadata {
    /// The metadata as JSON; anything but an object (or `null`, read as empty) is refused
    /// when the write is sent.
    fn into_metadata(self) -> serde_json::Value;
}

impl IntoMetadata for serde_json::Value {
    fn into_metadata(self) -> serde_json::Value {
        self
    }
}

impl IntoMetadata for Metadata {
    fn into_metadata(self) -> serde_json::Value {
        serde_json::Value::Object(self)
    }
}

impl<K: Into<String>, V: Into<serde_json::Value>> IntoMetadata for std::collections::HashMap<K, V> {
    fn into_metadata(self) -> serde_json::Value {
        serde_json::Value::Object(self.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl<K: Into<String>, V: Into<serde_json::Value>> IntoMetadata for std::collections::BTreeMap<K, V> {
    fn into_metadata(self) -> serde_json::Value {
        serde_json::Value::Object(self.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

pub(super) fn metadata_object(m: Option<serde_json::Value>) -> Result<Option<Metadata>> {
    match m {
        None => Ok(None),
        Some(serde_json::Value::Null) => Ok(Some(Metadata::new())),
        Some(serde_json::Value::Object(o)) => Ok(Some(o)),
        Some(other) => Err(Error::Validation {
            message: format!("metadata must be a JSON object, not {}", json_kind(&other)),
        }),
    }
}

pub(super) fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
