//! The wire types of the Agent Secret Store REST API (`docs/ass-api.md`), shared by the
//! client and the dev server so that the contract lives in one place.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::duration::HumanDuration;
use crate::secret::{SecretString, Token};

/// Free-form metadata attached to a secret.
pub type Metadata = serde_json::Map<String, serde_json::Value>;

/// An instant on the wire: RFC 3339 out; RFC 3339 or a zone-less ISO 8601 (read as UTC) in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub OffsetDateTime);

impl Timestamp {
    /// Now.
    pub fn now() -> Self {
        Self(OffsetDateTime::now_utc())
    }

    /// Time left until this instant, zero if passed.
    pub fn remaining(&self) -> std::time::Duration {
        let d = self.0 - OffsetDateTime::now_utc();
        d.try_into().unwrap_or_default()
    }

    /// Whether this instant has passed.
    pub fn is_past(&self) -> bool {
        self.0 <= OffsetDateTime::now_utc()
    }

    /// This instant plus `d`.
    pub fn after(d: std::time::Duration) -> Self {
        Self(OffsetDateTime::now_utc() + d)
    }
}

impl FromStr for Timestamp {
    type Err = time::error::Parse;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match OffsetDateTime::parse(s, &Rfc3339) {
            Ok(t) => Ok(Self(t)),
            Err(e) => {
                // Python's isoformat() without a zone: treat as UTC rather than fail the run.
                let fmt = time::macros::format_description!(
                    version = 2,
                    "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
                );
                time::PrimitiveDateTime::parse(s, &fmt).map(|p| Self(p.assume_utc())).map_err(|_| e)
            }
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.format(&Rfc3339).map_err(|_| fmt::Error)?;
        f.write_str(&s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Declares a wire enum that reads tolerantly: the known words map to variants, any other
/// string is kept in `Unknown` (the real service may add words before this SDK knows them).
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $word:literal,)+ }) => {
        $(#[$meta])*
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A word this SDK does not know yet, kept as sent.
            Unknown(String),
        }

        impl $name {
            /// The wire word.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $word,)+
                    $name::Unknown(s) => s,
                }
            }

            /// Whether this is a word the SDK knows (not [`Self::Unknown`]).
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Unknown(_))
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($word => $name::$variant,)+
                    other => $name::Unknown(other.to_owned()),
                }
            }
        }

        impl FromStr for $name {
            type Err = std::convert::Infallible;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(Self::from(s))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                Ok(Self::from(&*s))
            }
        }
    };
}

wire_enum! {
    /// What kind of credential a secret is.
    #[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
    SecretType {
        /// `api_key`
        ApiKey => "api_key",
        /// `oauth_token`
        OauthToken => "oauth_token",
        /// `db_credential`
        DbCredential => "db_credential",
        /// `ssh_key`
        SshKey => "ssh_key",
        /// `certificate`
        Certificate => "certificate",
        /// `custom` (the default)
        #[default]
        Custom => "custom",
    }
}

wire_enum! {
    /// Who must agree before a token for the secret is issued. Ordered from least to most
    /// guarded; an unknown tier sorts above `critical`, so it is never taken for a lesser one.
    #[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
    AccessTier {
        /// No one.
        #[default]
        Standard => "standard",
        /// One human approval.
        Sensitive => "sensitive",
        /// One approval by the owner.
        Critical => "critical",
    }
}

/// `POST /v1/tokens` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenRequest {
    /// Requested scopes (strings: the server validates them).
    pub scopes: Vec<String>,
    /// Token lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<HumanDuration>,
    /// How many requests the token may serve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u64>,
    /// Client addresses allowed to use the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_allowlist: Option<Vec<String>>,
}

/// `POST /v1/tokens` answer: either a token or a pending approval (any 2xx with
/// `requires_approval: true`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TokenReply {
    /// The scoped token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Token>,
    /// The token's id (safe to log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// When the token (or the pending approval) expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// True when a human must approve first.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requires_approval: bool,
    /// The approval to wait for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
}

/// An issued token.
#[derive(Clone, Debug)]
pub struct TokenResponse {
    /// The scoped token.
    pub token: Token,
    /// The token's id (safe to log).
    pub token_id: String,
    /// When it expires.
    pub expires_at: Timestamp,
}

/// `GET /v1/secrets/{ns}/{key}` answer. Only `value` is required (contract §3, tolerant
/// reader): the seed SDK's shape has no `namespace` or `key`, so the client fills those from
/// the path it asked for when the server leaves them out.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecretResponse {
    /// Namespace.
    #[serde(default)]
    pub namespace: String,
    /// Key.
    #[serde(default)]
    pub key: String,
    /// The value.
    pub value: SecretString,
    /// Version, from 1 (0 when the server does not say).
    #[serde(default)]
    pub version: u64,
    /// Kind.
    #[serde(default)]
    pub secret_type: SecretType,
    /// Tier.
    #[serde(default)]
    pub access_tier: AccessTier,
    /// Metadata.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub metadata: Metadata,
    /// Created.
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    /// Last written.
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
    /// When the secret expires, if it does.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

/// `PUT /v1/secrets/{ns}/{key}` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SecretWriteRequest {
    /// The value.
    pub value: SecretString,
    /// Kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_type: Option<SecretType>,
    /// Tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_tier: Option<AccessTier>,
    /// Metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Secret lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<HumanDuration>,
}

/// `PUT` answer: the secret's metadata, no value. Every field is optional on the wire.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SecretWriteResponse {
    /// Stable id.
    #[serde(default)]
    pub id: String,
    /// Namespace.
    #[serde(default)]
    pub namespace: String,
    /// Key.
    #[serde(default)]
    pub key: String,
    /// The new version (0 when the server does not say).
    #[serde(default)]
    pub version: u64,
    /// Kind.
    #[serde(default)]
    pub secret_type: SecretType,
    /// Tier.
    #[serde(default)]
    pub access_tier: AccessTier,
    /// Metadata.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub metadata: Metadata,
    /// Created.
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    /// Last written.
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
    /// Expiry.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

/// One secret in a listing (never its value). Every field is optional on the wire; the client
/// fills a missing `namespace` with the one it listed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SecretListItem {
    /// Namespace of this item (listing is recursive).
    #[serde(default)]
    pub namespace: String,
    /// Key.
    #[serde(default)]
    pub key: String,
    /// Version (0 when the server does not say).
    #[serde(default)]
    pub version: u64,
    /// Kind.
    #[serde(default)]
    pub secret_type: SecretType,
    /// Tier.
    #[serde(default)]
    pub access_tier: AccessTier,
    /// Metadata.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub metadata: Metadata,
    /// Created.
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    /// Last written.
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
    /// Whether its TTL has passed.
    #[serde(default)]
    pub expired: bool,
}

/// `GET /v1/secrets?namespace=` answer. Every field is optional on the wire.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SecretListResponse {
    /// The namespace asked for.
    #[serde(default)]
    pub namespace: String,
    /// Every secret at or below it.
    #[serde(default, deserialize_with = "null_as_default")]
    pub items: Vec<SecretListItem>,
    /// Number of items.
    #[serde(default)]
    pub total: u64,
}

/// `POST /v1/secrets/import` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImportRequest {
    /// Target namespace.
    pub namespace: String,
    /// `.env` text.
    pub content: SecretString,
    /// Kind for every imported secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_type: Option<SecretType>,
    /// Tier for every imported secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_tier: Option<AccessTier>,
    /// Metadata for every imported secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

/// `POST /v1/secrets/import` answer. Every field is optional on the wire; when the server
/// gives only the keys or only the count, the client fills the count from the keys.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(from = "ImportWire")]
pub struct ImportResponse {
    /// Namespace.
    pub namespace: String,
    /// Keys written (empty when the server answers only with a count).
    pub imported: Vec<String>,
    /// How many.
    pub imported_count: u64,
}

/// What servers send for an import: `imported` is a list of keys in the contract, a bare
/// number in some shapes; either may come without `imported_count`.
#[derive(Deserialize)]
struct ImportWire {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    imported: Option<KeysOrCount>,
    #[serde(default)]
    imported_count: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum KeysOrCount {
    Keys(Vec<String>),
    Count(u64),
}

impl From<ImportWire> for ImportResponse {
    fn from(w: ImportWire) -> Self {
        let (imported, count) = match w.imported {
            Some(KeysOrCount::Keys(k)) => {
                let n = k.len() as u64;
                (k, n)
            }
            Some(KeysOrCount::Count(n)) => (Vec::new(), n),
            None => (Vec::new(), 0),
        };
        Self {
            namespace: w.namespace.unwrap_or_default(),
            imported,
            imported_count: w.imported_count.unwrap_or(count),
        }
    }
}

wire_enum! {
    /// State of an approval.
    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    ApprovalState {
        /// Waiting for a human.
        Pending => "pending",
        /// Approved: request the token again.
        Approved => "approved",
        /// Denied.
        Denied => "denied",
        /// Timed out before anyone decided.
        Expired => "expired",
    }
}

/// `GET /v1/approvals/agent/{id}` answer. Only `status` is required.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApprovalStatus {
    /// The approval id.
    #[serde(default)]
    pub id: Option<String>,
    /// Where it stands.
    pub status: ApprovalState,
    /// When it expires.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    /// The scopes it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// The tier that asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_tier: Option<AccessTier>,
    /// The reason given with a denial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Some servers hand the token over with the approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Token>,
    /// The handed-over token's expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_expires_at: Option<Timestamp>,
}

/// `POST /v1/approvals/{id}/deny` body.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DenyRequest {
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `GET /v1/health` answer. Every field is optional on the wire.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Health {
    /// `ok`
    #[serde(default)]
    pub status: String,
    /// Server version.
    #[serde(default)]
    pub version: String,
    /// Service name.
    #[serde(default)]
    pub service: String,
}

/// `POST /v1/agents` body (dev server, admin key).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreateAgentRequest {
    /// Display name.
    pub name: String,
    /// Scope patterns the agent may ask for.
    #[serde(default)]
    pub allowed_scopes: Option<Vec<String>>,
}

/// `POST /v1/agents` answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreateAgentResponse {
    /// Agent id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The new agent key.
    pub api_key: crate::secret::AgentKey,
}

/// The `error` object of an error body.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ErrorObject {
    /// Upstream code (`SECRET_NOT_FOUND`, …).
    #[serde(default)]
    pub code: Option<String>,
    /// Human message.
    #[serde(default)]
    pub message: Option<String>,
}

/// Error body: `{"error":{"code","message"},"detail"}`, or a bare `{"detail"}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Structured error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
    /// Free text (FastAPI style). Some servers put an object here; keep it as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

impl ErrorBody {
    /// The upstream code, if any.
    pub fn code(&self) -> Option<&str> {
        self.error.as_ref().and_then(|e| e.code.as_deref())
    }

    /// The best human message available.
    pub fn message(&self) -> Option<String> {
        if let Some(m) = self.error.as_ref().and_then(|e| e.message.clone()) {
            return Some(m);
        }
        match &self.detail {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(v) => Some(v.to_string()),
            None => None,
        }
    }
}

fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Metadata, D::Error> {
    Ok(Option::<Metadata>::deserialize(d)?.unwrap_or_default())
}

/// Parses a `.env` file by the contract's rules: blank lines and `#` comments skipped; split at
/// the first `=`; trim; strip one pair of matching quotes; a leading `export ` ignored; lines
/// without `=` skipped. Later lines win over earlier ones with the same key.
pub fn parse_dotenv(content: &str) -> Vec<(String, SecretString)> {
    let mut out: Vec<(String, SecretString)> = Vec::new();
    for line in content.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() {
            continue;
        }
        let value = value.trim();
        let value = strip_quotes(value);
        let value = SecretString::from(value);
        if let Some(slot) = out.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value;
        } else {
            out.push((key.to_owned(), value));
        }
    }
    out
}

fn strip_quotes(v: &str) -> &str {
    let b = v.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_rules() {
        let env = "# c\n\nexport A=1\nB = \" two \"\nC='x'\nnoequals\nD=a=b\nE=\"unmatched'\nA=3\n";
        let got: Vec<(String, String)> =
            parse_dotenv(env).into_iter().map(|(k, v)| (k, v.expose().to_owned())).collect();
        let want = [("A", "3"), ("B", " two "), ("C", "x"), ("D", "a=b"), ("E", "\"unmatched'")];
        assert_eq!(got, want.map(|(k, v)| (k.to_owned(), v.to_owned())));
    }

    #[test]
    fn timestamps_parse_leniently() {
        assert!("2026-01-02T03:04:05Z".parse::<Timestamp>().is_ok());
        assert!("2026-01-02T03:04:05.123+02:00".parse::<Timestamp>().is_ok());
        assert!("2026-01-02T03:04:05.123456".parse::<Timestamp>().is_ok());
        assert!("yesterday".parse::<Timestamp>().is_err());
    }

    #[test]
    fn error_body_both_forms() {
        let a: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"SCOPE_DENIED","message":"no"},"detail":"no"}"#)
                .unwrap();
        assert_eq!(a.code(), Some("SCOPE_DENIED"));
        let b: ErrorBody = serde_json::from_str(r#"{"detail":"gone"}"#).unwrap();
        assert_eq!(b.code(), None);
        assert_eq!(b.message().as_deref(), Some("gone"));
    }

    #[test]
    fn seed_sdk_shapes_read() {
        // Python SDK `SecretResponse`: no namespace, key, timestamps.
        let r: SecretResponse = serde_json::from_str(
            r#"{"value":"v","secret_type":"api_key","access_tier":"sensitive","metadata":null,"version":3}"#,
        )
        .unwrap();
        assert_eq!((r.value.expose(), r.version, r.namespace.as_str()), ("v", 3, ""));
        assert_eq!((r.secret_type, r.access_tier), (SecretType::ApiKey, AccessTier::Sensitive));
        // Only `value` is required; unknown fields are ignored.
        let r: SecretResponse = serde_json::from_str(r#"{"value":"v","rotation":{"every":"30d"}}"#).unwrap();
        assert_eq!((r.version, r.access_tier), (0, AccessTier::Standard));
        assert!(serde_json::from_str::<SecretResponse>(r#"{"version":1}"#).is_err());
        // Python SDK `TokenResponse` dumps every optional field as null.
        let t: TokenReply = serde_json::from_str(
            r#"{"token":"t","token_id":null,"expires_at":null,"requires_approval":false,"approval_id":null}"#,
        )
        .unwrap();
        assert!(t.token.is_some() && t.expires_at.is_none());
        let l: SecretListResponse =
            serde_json::from_str(r#"{"items":[{"key":"A","version":1,"created_at":null}]}"#).unwrap();
        assert_eq!((l.items[0].key.as_str(), l.items[0].namespace.as_str()), ("A", ""));
        let empty: SecretListResponse = serde_json::from_str("{}").unwrap();
        assert!(empty.items.is_empty());
        let w: SecretWriteResponse = serde_json::from_str(r#"{"version":2}"#).unwrap();
        assert_eq!(w.version, 2);
    }

    #[test]
    fn unknown_words_are_kept() {
        let r: SecretResponse = serde_json::from_str(
            r#"{"value":"v","secret_type":"jwt_signing_key","access_tier":"top_secret"}"#,
        )
        .unwrap();
        assert_eq!(r.secret_type, SecretType::Unknown("jwt_signing_key".into()));
        assert_eq!(r.access_tier.as_str(), "top_secret");
        assert!(!r.access_tier.is_known());
        // Never taken for a lesser tier.
        assert!(r.access_tier > AccessTier::Critical);
        assert_eq!(serde_json::to_string(&r.secret_type).unwrap(), r#""jwt_signing_key""#);
        let s: ApprovalStatus = serde_json::from_str(r#"{"status":"escalated"}"#).unwrap();
        assert_eq!(s.status, ApprovalState::Unknown("escalated".into()));
        assert_eq!("sensitive".parse::<AccessTier>().unwrap(), AccessTier::Sensitive);
    }

    #[test]
    fn import_answers_in_every_shape() {
        let full: ImportResponse =
            serde_json::from_str(r#"{"namespace":"n","imported":["A","B"],"imported_count":2}"#).unwrap();
        assert_eq!((full.imported.len(), full.imported_count), (2, 2));
        let keys: ImportResponse = serde_json::from_str(r#"{"imported":["A","B","C"]}"#).unwrap();
        assert_eq!(keys.imported_count, 3);
        let count: ImportResponse = serde_json::from_str(r#"{"imported":4}"#).unwrap();
        assert_eq!((count.imported.len(), count.imported_count), (0, 4));
        let only: ImportResponse = serde_json::from_str(r#"{"imported_count":5,"extra":true}"#).unwrap();
        assert_eq!(only.imported_count, 5);
    }

    #[test]
    fn token_reply_pending_and_issued() {
        let p: TokenReply = serde_json::from_str(
            r#"{"requires_approval":true,"approval_id":"apr_1","expires_at":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert!(p.requires_approval && p.token.is_none());
        let t: TokenReply =
            serde_json::from_str(r#"{"token":"t","token_id":"tok_1","expires_at":"2026-01-01T00:00:00Z"}"#)
                .unwrap();
        assert!(!t.requires_approval && t.token.is_some());
    }
}
