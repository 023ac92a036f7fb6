//! The in-memory store: secrets (with versions, tier, type, metadata, expiry), agents, tokens
//! and approvals, and the secret operations with their scope and tier rules. Token issuance and
//! approvals live in `approvals.rs`; both work on [`Store`].
//!
//! Every operation takes `now` so that the unit tests can move the clock.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::duration::HumanDuration;
use crate::path::{Action, PathError, Scope, ScopeSet, SecretPath};
use crate::secret::{AdminKey, AgentKey, SecretString, Token};
use crate::wire::{
    AccessTier, ImportRequest, ImportResponse, Metadata, SecretListItem, SecretListResponse, SecretResponse,
    SecretType, SecretWriteRequest, SecretWriteResponse, Timestamp,
};

use super::approval::Approval;
use super::error::ApiError;

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh agent key: `ass_` and 32 random bytes in hex.
pub fn new_agent_key() -> AgentKey {
    AgentKey::new(format!("ass_{}", random_hex(32)))
}

/// A fresh admin key: `ass_admin_` and 32 random bytes in hex.
pub fn new_admin_key() -> AdminKey {
    AdminKey::new(format!("ass_admin_{}", random_hex(32)))
}

/// `now + d`, or `None` when that is past the end of time.
pub fn add(now: Timestamp, d: std::time::Duration) -> Option<Timestamp> {
    let d = time::Duration::try_from(d).ok()?;
    now.0.checked_add(d).map(Timestamp)
}

/// A registered agent.
#[derive(Clone, Debug)]
pub struct Agent {
    /// `agt_…`
    pub id: String,
    /// Display name.
    pub name: String,
    /// Its key.
    pub key: AgentKey,
    /// Patterns its token requests must fall inside.
    pub allowed_scopes: Vec<Scope>,
}

/// One stored secret (its latest version: older values are not kept).
#[derive(Clone, Debug)]
pub struct StoredSecret {
    /// `sec_…`, stable across versions.
    pub id: String,
    /// The value.
    pub value: SecretString,
    /// From 1, +1 per write.
    pub version: u64,
    /// Kind.
    pub secret_type: SecretType,
    /// Tier.
    pub access_tier: AccessTier,
    /// Metadata.
    pub metadata: Metadata,
    /// First write.
    pub created_at: Timestamp,
    /// Last write.
    pub updated_at: Timestamp,
    /// Set when the last write carried a `ttl`.
    pub expires_at: Option<Timestamp>,
}

impl StoredSecret {
    fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

/// An issued scoped token.
#[derive(Clone, Debug)]
pub struct TokenRecord {
    /// `tok_…` (safe to log).
    pub id: String,
    /// The bearer string.
    pub token: Token,
    /// What it grants (shared with each request's `Access`, not copied).
    pub scopes: std::sync::Arc<ScopeSet>,
    /// The highest tier it may write: standard, or what its approval was for.
    pub tier: AccessTier,
    /// End of life.
    pub expires_at: Timestamp,
    /// Request budget.
    pub max_uses: Option<u64>,
    /// Requests served so far.
    pub uses: u64,
    /// Peers allowed to use it.
    pub ip_allowlist: Option<Vec<IpAddr>>,
}

/// What a bearer credential is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The admin key.
    Admin,
    /// An agent key; the agent's id.
    Agent(String),
    /// A token; the token's id.
    Token(String),
    /// Nothing we know.
    Unknown,
}

/// What a request to `/v1/secrets…` may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// The admin key: everything, every tier.
    Admin,
    /// A scoped token.
    Token {
        /// Granted scopes.
        scopes: std::sync::Arc<ScopeSet>,
        /// Highest tier it may read or write (what its approval was for; standard without one).
        tier: AccessTier,
    },
}

impl Access {
    /// Whether `action` on `path` is granted.
    pub fn reaches(&self, action: Action, path: &SecretPath) -> bool {
        match self {
            Access::Admin => true,
            Access::Token { scopes, .. } => scopes.reaches(action, path),
        }
    }

    /// Whether the whole of `wanted` is granted (used for `{ns}/*` listing and import scopes).
    pub fn covers(&self, wanted: &Scope) -> bool {
        match self {
            Access::Admin => true,
            Access::Token { scopes, .. } => scopes.covers(wanted),
        }
    }

    /// Whether a secret of `tier` may be read or written: decided at each request by the
    /// secret's tier now, so a secret created or raised to sensitive or critical after the token
    /// was issued needs an approval like any other.
    pub fn may_write(&self, tier: &AccessTier) -> bool {
        match self {
            Access::Admin => true,
            Access::Token { tier: granted, .. } => tier <= granted,
        }
    }

    fn is_admin(&self) -> bool {
        matches!(self, Access::Admin)
    }
}

/// Answer of the raw-slash `GET /v1/secrets/{ns}` form.
#[derive(Debug)]
pub enum GetOrList {
    /// A secret lived at that full path.
    Secret(Box<SecretResponse>),
    /// The namespace's listing.
    List(SecretListResponse),
}

/// The whole server state.
#[derive(Debug)]
pub struct Store {
    pub(super) secrets: BTreeMap<SecretPath, StoredSecret>,
    pub(super) agents: Vec<Agent>,
    /// Issued tokens by id.
    pub(super) tokens: HashMap<String, TokenRecord>,
    /// Every live credential (admin key, agent keys, tokens) by its digest: one lookup per
    /// request however many tokens a long run has issued.
    credentials: HashMap<CredentialDigest, Caller>,
    pub(super) approvals: Vec<Approval>,
    pub(super) admin_key: AdminKey,
    pub(super) approval_ttl: std::time::Duration,
}

fn bad_path(e: PathError) -> ApiError {
    ApiError::Validation(e.to_string())
}

/// Checks a namespace (`production`, `team a/sub`): non-empty segments, no `*`, no control
/// characters. A trailing `/` is dropped.
pub fn parse_namespace(ns: &str) -> Result<String, ApiError> {
    let ns = ns.strip_suffix('/').unwrap_or(ns);
    // A namespace is a path minus its key: check it as one with a dummy key.
    SecretPath::new(ns, "k").map_err(|_| {
        ApiError::Validation(format!(
            "namespace {ns:?} is not valid: use non-empty segments separated by '/', without '*' or control characters"
        ))
    })?;
    Ok(ns.to_owned())
}

/// Parses a secret path from a URL (already percent-decoded).
pub fn parse_path(raw: &str) -> Result<SecretPath, ApiError> {
    raw.parse().map_err(bad_path)
}

impl Store {
    /// An empty store with one admin key.
    pub fn new(admin_key: AdminKey, approval_ttl: std::time::Duration) -> Self {
        let credentials = HashMap::from([(CredentialDigest::of(admin_key.expose()), Caller::Admin)]);
        Self {
            secrets: BTreeMap::new(),
            agents: Vec::new(),
            tokens: HashMap::new(),
            credentials,
            approvals: Vec::new(),
            admin_key,
            approval_ttl,
        }
    }

    /// The admin key.
    pub fn admin_key(&self) -> &AdminKey {
        &self.admin_key
    }

    /// Registered agents, in creation order.
    pub fn agents(&self) -> &[Agent] {
        &self.agents
    }

    /// Adds an agent; `key` defaults to a fresh one. Fails on a duplicate key.
    pub fn add_agent(
        &mut self,
        name: &str,
        key: Option<AgentKey>,
        allowed_scopes: Vec<Scope>,
    ) -> Result<&Agent, ApiError> {
        let name = name.trim();
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(ApiError::Validation("agent name must be non-empty text".into()));
        }
        let key = key.unwrap_or_else(new_agent_key);
        let digest = CredentialDigest::of(key.expose());
        if self.credentials.contains_key(&digest) {
            return Err(ApiError::Validation(format!("agent {name:?}: that key is already in use")));
        }
        let id = format!("agt_{}", random_hex(8));
        self.credentials.insert(digest, Caller::Agent(id.clone()));
        self.agents.push(Agent { id, name: name.to_owned(), key, allowed_scopes });
        Ok(self.agents.last().expect("just pushed"))
    }

    /// The agent with this id.
    pub fn agent(&self, id: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.id == id)
    }

    /// Classifies a bearer credential.
    pub fn identify(&self, bearer: &str) -> Caller {
        // Looked up by digest, not compared with each stored credential: how long the lookup
        // takes tells an attacker about the digest of a guess, never about the credential.
        self.credentials.get(&CredentialDigest::of(bearer)).cloned().unwrap_or(Caller::Unknown)
    }

    /// Records an issued token, and forgets those that died before `horizon` so that a
    /// long-running server does not grow forever.
    pub(super) fn add_token(&mut self, record: TokenRecord, horizon: Option<Timestamp>) {
        if let Some(h) = horizon {
            let credentials = &mut self.credentials;
            self.tokens.retain(|_, t| {
                let live = t.expires_at > h;
                if !live {
                    credentials.remove(&CredentialDigest::of(t.token.expose()));
                }
                live
            });
        }
        self.credentials
            .insert(CredentialDigest::of(record.token.expose()), Caller::Token(record.id.clone()));
        self.tokens.insert(record.id.clone(), record);
    }

    /// Spends one use of token `id` from `peer`: the token must be unexpired, under its
    /// `max_uses` and used from an allowed address.
    pub fn use_token(&mut self, id: &str, peer: IpAddr, now: Timestamp) -> Result<Access, ApiError> {
        let t = self.tokens.get_mut(id).ok_or_else(|| ApiError::Unauthorized("unknown token".into()))?;
        if t.expires_at <= now {
            return Err(ApiError::Unauthorized(format!(
                "token {} expired at {}; request a new one at POST /v1/tokens",
                t.id, t.expires_at
            )));
        }
        if t.max_uses.is_some_and(|max| t.uses >= max) {
            return Err(ApiError::Unauthorized(format!(
                "token {} has used all of its max_uses; request a new one at POST /v1/tokens",
                t.id
            )));
        }
        if let Some(list) = &t.ip_allowlist {
            let peer = canonical_ip(peer);
            if !list.iter().any(|ip| canonical_ip(*ip) == peer) {
                return Err(ApiError::Unauthorized(format!(
                    "token {} may not be used from {peer} (ip_allowlist)",
                    t.id
                )));
            }
        }
        t.uses += 1;
        Ok(Access::Token { scopes: t.scopes.clone(), tier: t.tier.clone() })
    }

    /// The highest tier among existing secrets that the `read`, `write` and `*` scopes reach
    /// (contract §4; `delete` scopes never count).
    pub fn required_tier(&self, scopes: &[Scope]) -> AccessTier {
        let mut tier = AccessTier::default();
        for s in scopes.iter().filter(|s| s.action() != Action::Delete) {
            // An exact scope names one secret: look it up instead of matching every secret.
            let exact = if s.pattern().contains('*') { None } else { s.pattern().parse::<SecretPath>().ok() };
            let found = match exact {
                Some(path) => self.secrets.get(&path).map(|sec| sec.access_tier.clone()),
                None => self
                    .secrets
                    .iter()
                    .filter(|(p, _)| s.reaches(s.action(), p))
                    .map(|(_, sec)| sec.access_tier.clone())
                    .max(),
            };
            tier = tier.max(found.unwrap_or_default());
        }
        tier
    }

    /// `GET /v1/secrets/{ns}/{key}`.
    pub fn get(
        &self,
        access: &Access,
        path: &SecretPath,
        now: Timestamp,
    ) -> Result<SecretResponse, ApiError> {
        if !access.reaches(Action::Read, path) {
            return Err(scope_denied(path.scope(Action::Read)));
        }
        let s = self.secrets.get(path).ok_or_else(|| not_found(path))?;
        if !access.may_write(&s.access_tier) {
            return Err(ApiError::HumanAuthRequired(format!(
                "reading {path} ({} tier) needs a human's approval, which this token was not issued with; request a new token for it",
                s.access_tier
            )));
        }
        if s.expired(now) {
            let at = s.expires_at.map(|t| t.to_string()).unwrap_or_default();
            return Err(ApiError::SecretExpired(format!("secret {path} expired at {at}")));
        }
        Ok(SecretResponse {
            namespace: path.namespace().to_owned(),
            key: path.key().to_owned(),
            value: s.value.clone(),
            version: s.version,
            secret_type: s.secret_type.clone(),
            access_tier: s.access_tier.clone(),
            metadata: s.metadata.clone(),
            created_at: Some(s.created_at),
            updated_at: Some(s.updated_at),
            expires_at: s.expires_at,
        })
    }

    /// `PUT /v1/secrets/{ns}/{key}`; returns whether it was created.
    pub fn put(
        &mut self,
        access: &Access,
        path: &SecretPath,
        req: SecretWriteRequest,
        now: Timestamp,
    ) -> Result<(bool, SecretWriteResponse), ApiError> {
        if !access.reaches(Action::Write, path) {
            return Err(scope_denied(path.scope(Action::Write)));
        }
        check_known_kinds(req.secret_type.as_ref(), req.access_tier.as_ref())
            .map_err(ApiError::Validation)?;
        self.check_write_tier(access, path, req.access_tier.as_ref())?;
        let expires_at = secret_expiry(req.ttl, now)?;
        Ok(self.write(path, req, expires_at, now))
    }

    /// Refuses a write above what `access` may write. The contract's §4 "Writes": creating a
    /// secret of any tier needs no approval (the seed SDK's own examples do it with a plain
    /// agent key), overwriting an existing secret (its value or its tier) follows that
    /// secret's tier. The requested tier only matters for a new secret, where it is free.
    fn check_write_tier(
        &self,
        access: &Access,
        path: &SecretPath,
        _requested: Option<&AccessTier>,
    ) -> Result<(), ApiError> {
        let effective = self.secrets.get(path).map(|s| &s.access_tier).unwrap_or(&AccessTier::Standard);
        if access.may_write(effective) {
            Ok(())
        } else {
            Err(ApiError::HumanAuthRequired(format!(
                "writing {path} ({effective} tier) needs a human: use the admin key, or a token approved for {effective} secrets"
            )))
        }
    }

    /// Writes after every check passed. Omitted fields keep their values on update; `ttl` is
    /// per write (a write without one makes the secret permanent again).
    fn write(
        &mut self,
        path: &SecretPath,
        req: SecretWriteRequest,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> (bool, SecretWriteResponse) {
        let created = !self.secrets.contains_key(path);
        let s = self.secrets.entry(path.clone()).or_insert_with(|| StoredSecret {
            id: format!("sec_{}", random_hex(8)),
            value: SecretString::default(),
            version: 0,
            secret_type: SecretType::default(),
            access_tier: AccessTier::default(),
            metadata: Metadata::new(),
            created_at: now,
            updated_at: now,
            expires_at: None,
        });
        s.value = req.value;
        s.version += 1;
        s.secret_type = req.secret_type.unwrap_or_else(|| s.secret_type.clone());
        s.access_tier = req.access_tier.unwrap_or_else(|| s.access_tier.clone());
        if let Some(m) = req.metadata {
            s.metadata = m;
        }
        s.updated_at = now;
        s.expires_at = expires_at;
        let reply = SecretWriteResponse {
            id: s.id.clone(),
            namespace: path.namespace().to_owned(),
            key: path.key().to_owned(),
            version: s.version,
            secret_type: s.secret_type.clone(),
            access_tier: s.access_tier.clone(),
            metadata: s.metadata.clone(),
            created_at: Some(s.created_at),
            updated_at: Some(s.updated_at),
            expires_at: s.expires_at,
        };
        (created, reply)
    }

    /// `DELETE /v1/secrets/{ns}/{key}`: standard secrets with a token, any with the admin key.
    pub fn delete(&mut self, access: &Access, path: &SecretPath) -> Result<(), ApiError> {
        if !access.reaches(Action::Delete, path) {
            return Err(scope_denied(path.scope(Action::Delete)));
        }
        let s = self.secrets.get(path).ok_or_else(|| not_found(path))?;
        if s.access_tier > AccessTier::Standard && !access.is_admin() {
            return Err(ApiError::HumanAuthRequired(format!(
                "{path} is a {} secret: only a human (the admin key) may delete it",
                s.access_tier
            )));
        }
        self.secrets.remove(path);
        Ok(())
    }

    /// `GET /v1/secrets?namespace=`: recursive, sorted, never values.
    pub fn list(
        &self,
        access: &Access,
        namespace: &str,
        now: Timestamp,
    ) -> Result<SecretListResponse, ApiError> {
        let ns = parse_namespace(namespace)?;
        let wanted = Scope::new(Action::Read, format!("{ns}/*"));
        if !access.covers(&wanted) {
            return Err(ApiError::ScopeDenied(format!("listing {ns} needs scope {wanted}")));
        }
        Ok(self.listing(&ns, now))
    }

    fn listing(&self, ns: &str, now: Timestamp) -> SecretListResponse {
        let below = format!("{ns}/");
        let items: Vec<SecretListItem> = self
            .secrets
            .iter()
            .filter(|(p, _)| p.namespace() == ns || p.namespace().starts_with(&below))
            .map(|(p, s)| SecretListItem {
                namespace: p.namespace().to_owned(),
                key: p.key().to_owned(),
                version: s.version,
                secret_type: s.secret_type.clone(),
                access_tier: s.access_tier.clone(),
                metadata: s.metadata.clone(),
                created_at: Some(s.created_at),
                updated_at: Some(s.updated_at),
                expired: s.expired(now),
            })
            .collect();
        SecretListResponse { namespace: ns.to_owned(), total: items.len() as u64, items }
    }

    /// The JS SDK's raw-slash `GET /v1/secrets/{ns}`: the secret at that full path if there is
    /// one the caller may read, else the namespace's listing if it has any secret, else 404.
    /// Scopes are checked before existence is revealed.
    pub fn get_or_list(&self, access: &Access, raw: &str, now: Timestamp) -> Result<GetOrList, ApiError> {
        let ns = parse_namespace(raw)?;
        let path = ns.parse::<SecretPath>().ok();
        let may_read = path.as_ref().is_some_and(|p| access.reaches(Action::Read, p));
        if let Some(p) = path.as_ref().filter(|p| may_read && self.secrets.contains_key(*p)) {
            return self.get(access, p, now).map(|s| GetOrList::Secret(Box::new(s)));
        }
        let wanted = Scope::new(Action::Read, format!("{ns}/*"));
        if access.covers(&wanted) {
            let list = self.listing(&ns, now);
            if !list.items.is_empty() {
                return Ok(GetOrList::List(list));
            }
        } else if !may_read {
            return Err(ApiError::ScopeDenied(format!("reading {ns} needs scope {wanted}")));
        }
        match path {
            Some(p) if may_read => Err(not_found(&p)),
            _ => Err(ApiError::SecretNotFound(format!("no secret and no namespace with secrets at {ns}"))),
        }
    }

    /// `POST /v1/secrets/import`: all keys checked (path, tier) before any is written.
    pub fn import(
        &mut self,
        access: &Access,
        req: ImportRequest,
        now: Timestamp,
    ) -> Result<ImportResponse, ApiError> {
        let ns = parse_namespace(&req.namespace)?;
        let wanted = Scope::new(Action::Write, format!("{ns}/*"));
        if !access.covers(&wanted) {
            return Err(ApiError::ScopeDenied(format!("importing into {ns} needs scope {wanted}")));
        }
        check_known_kinds(req.secret_type.as_ref(), req.access_tier.as_ref())
            .map_err(ApiError::Validation)?;
        let pairs = crate::wire::parse_dotenv(req.content.expose());
        let mut paths = Vec::with_capacity(pairs.len());
        for (key, _) in &pairs {
            let path = SecretPath::new(&ns, key).map_err(|_| {
                ApiError::Validation(format!(
                    "import line with key {key:?}: not a valid secret key (no '/', '*' or control characters)"
                ))
            })?;
            self.check_write_tier(access, &path, req.access_tier.as_ref())?;
            paths.push(path);
        }
        let mut imported = Vec::with_capacity(pairs.len());
        for ((key, value), path) in pairs.into_iter().zip(paths) {
            let write = SecretWriteRequest {
                value,
                secret_type: req.secret_type.clone(),
                access_tier: req.access_tier.clone(),
                metadata: req.metadata.clone(),
                ttl: None,
            };
            self.write(&path, write, None, now);
            imported.push(key);
        }
        Ok(ImportResponse { namespace: ns, imported_count: imported.len() as u64, imported })
    }

    /// Seeds a secret directly (no scope or tier checks).
    pub fn seed_secret(
        &mut self,
        path: &SecretPath,
        req: SecretWriteRequest,
        now: Timestamp,
    ) -> Result<(), ApiError> {
        let expires_at = secret_expiry(req.ttl, now)?;
        self.write(path, req, expires_at, now);
        Ok(())
    }
}

fn secret_expiry(ttl: Option<HumanDuration>, now: Timestamp) -> Result<Option<Timestamp>, ApiError> {
    match ttl {
        None => Ok(None),
        Some(d) if d.is_zero() => Err(ApiError::Validation("ttl must be greater than zero".into())),
        Some(d) => {
            add(now, d.get()).map(Some).ok_or_else(|| ApiError::Validation(format!("ttl {d} is too large")))
        }
    }
}

fn scope_denied(wanted: Scope) -> ApiError {
    ApiError::ScopeDenied(format!("this token does not grant {wanted}"))
}

fn not_found(path: &SecretPath) -> ApiError {
    ApiError::SecretNotFound(format!("secret {path} not found"))
}

/// IPv4-mapped IPv6 addresses compare as their IPv4 form.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// SHA-256 of a credential: what the store indexes credentials by.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct CredentialDigest([u8; 32]);

impl CredentialDigest {
    fn of(credential: &str) -> Self {
        let d = ring::digest::digest(&ring::digest::SHA256, credential.as_bytes());
        Self(d.as_ref().try_into().expect("SHA-256 is 32 bytes"))
    }
}

impl std::fmt::Debug for CredentialDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialDigest(…)")
    }
}

/// The SDK keeps words it does not know; the server only stores the contract's words, so a
/// client sending another one gets told which are allowed.
pub(crate) fn check_known_kinds(
    secret_type: Option<&SecretType>,
    access_tier: Option<&AccessTier>,
) -> Result<(), String> {
    if let Some(t) = secret_type.filter(|t| !t.is_known()) {
        return Err(format!(
            "secret_type {:?}: use api_key, oauth_token, db_credential, ssh_key, certificate or custom",
            t.as_str()
        ));
    }
    if let Some(t) = access_tier.filter(|t| !t.is_known()) {
        return Err(format!("access_tier {:?}: use standard, sensitive or critical", t.as_str()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn ts(secs: i64) -> Timestamp {
        Timestamp(time::OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap())
    }

    fn store() -> Store {
        Store::new(new_admin_key(), std::time::Duration::from_secs(600))
    }

    #[test]
    fn identify_matches_whole_credentials_only() {
        let mut s = store();
        let agent = s.add_agent("a", Some(AgentKey::new("ass_abc")), Vec::new()).unwrap().id.clone();
        assert_eq!(s.identify("ass_abc"), Caller::Agent(agent));
        for other in ["ass_abd", "bss_abc", "ass_ab", "ass_abcd", ""] {
            assert_eq!(s.identify(other), Caller::Unknown, "{other}");
        }
        assert_eq!(s.identify(s.admin_key().expose()), Caller::Admin);
        assert!(s.add_agent("b", Some(AgentKey::new(s.admin_key().expose())), Vec::new()).is_err());
        assert!(s.add_agent("c", Some(AgentKey::new("ass_abc")), Vec::new()).is_err());
    }

    fn req(value: &str, tier: Option<AccessTier>) -> SecretWriteRequest {
        SecretWriteRequest {
            value: value.into(),
            secret_type: None,
            access_tier: tier,
            metadata: None,
            ttl: None,
        }
    }

    fn token(scopes: &[&str]) -> Access {
        Access::Token {
            scopes: std::sync::Arc::new(ScopeSet::new(scopes.iter().map(|s| s.parse().unwrap()))),
            tier: AccessTier::Standard,
        }
    }

    fn p(s: &str) -> SecretPath {
        s.parse().unwrap()
    }

    #[test]
    fn versions_and_kept_fields() {
        let mut s = store();
        let mut first = req("v1", None);
        first.secret_type = Some(SecretType::ApiKey);
        first.metadata = Some(serde_json::json!({"owner": "a"}).as_object().unwrap().clone());
        let (created, w) = s.put(&Access::Admin, &p("a/b/K"), first, ts(0)).unwrap();
        assert!(created);
        assert_eq!(w.version, 1);
        let (created, w2) = s.put(&Access::Admin, &p("a/b/K"), req("v2", None), ts(1)).unwrap();
        assert!(!created);
        assert_eq!((w2.version, w2.id.as_str()), (2, w.id.as_str()));
        assert_eq!(w2.secret_type, SecretType::ApiKey);
        assert_eq!(w2.metadata["owner"], "a");
        let got = s.get(&Access::Admin, &p("a/b/K"), ts(2)).unwrap();
        assert_eq!(got.value.expose(), "v2");
        assert_eq!(got.created_at, Some(ts(0)));
        assert_eq!(got.updated_at, Some(ts(1)));
    }

    #[test]
    fn scope_before_existence_and_expiry() {
        let mut s = store();
        let t = token(&["secrets:read:pub/*"]);
        assert!(matches!(s.get(&t, &p("priv/K"), ts(0)), Err(ApiError::ScopeDenied(_))));
        assert!(matches!(s.get(&t, &p("pub/K"), ts(0)), Err(ApiError::SecretNotFound(_))));
        let mut r = req("v", None);
        r.ttl = Some(HumanDuration::from_secs(10));
        s.put(&Access::Admin, &p("pub/K"), r, ts(0)).unwrap();
        assert!(s.get(&t, &p("pub/K"), ts(9)).is_ok());
        assert!(matches!(s.get(&t, &p("pub/K"), ts(10)), Err(ApiError::SecretExpired(_))));
        assert!(s.list(&t, "pub", ts(10)).unwrap().items[0].expired);
        let mut zero = req("v", None);
        zero.ttl = Some(HumanDuration::from_secs(0));
        assert!(matches!(s.put(&Access::Admin, &p("pub/Z"), zero, ts(0)), Err(ApiError::Validation(_))));
    }

    #[test]
    fn write_tiers() {
        let mut s = store();
        let t = token(&["secrets:*:*"]);
        assert!(s.put(&t, &p("a/K"), req("v", None), ts(0)).is_ok());
        // Creating a sensitive or critical secret needs no approval (contract §4 "Writes")...
        s.put(&t, &p("a/N"), req("v", Some(AccessTier::Sensitive)), ts(0)).unwrap();
        assert_eq!(s.secrets[&p("a/N")].access_tier, AccessTier::Sensitive);
        // ...but overwriting it, value or tier, follows its tier.
        let e = s.put(&t, &p("a/N"), req("w", Some(AccessTier::Standard)), ts(0)).unwrap_err();
        assert!(matches!(e, ApiError::HumanAuthRequired(_)));
        // Raising a standard secret's tier is a write to a standard secret.
        s.put(&t, &p("a/K"), req("v2", Some(AccessTier::Critical)), ts(0)).unwrap();
        assert!(matches!(s.put(&t, &p("a/K"), req("v3", None), ts(0)), Err(ApiError::HumanAuthRequired(_))));
        s.put(&Access::Admin, &p("a/S"), req("v", Some(AccessTier::Critical)), ts(0)).unwrap();
        // Omitting the tier keeps critical: still above a standard token.
        assert!(matches!(s.put(&t, &p("a/S"), req("w", None), ts(0)), Err(ApiError::HumanAuthRequired(_))));
        let approved = Access::Token {
            scopes: std::sync::Arc::new(ScopeSet::new(["secrets:*:*".parse().unwrap()])),
            tier: AccessTier::Critical,
        };
        assert!(s.put(&approved, &p("a/S"), req("w", None), ts(0)).is_ok());
        // Deletes of non-standard secrets need the admin key whatever the token.
        assert!(matches!(s.delete(&approved, &p("a/S")), Err(ApiError::HumanAuthRequired(_))));
        s.put(&t, &p("a/D"), req("v", None), ts(0)).unwrap();
        assert!(s.delete(&t, &p("a/D")).is_ok());
        assert!(matches!(s.delete(&t, &p("a/D")), Err(ApiError::SecretNotFound(_))));
        assert!(s.delete(&Access::Admin, &p("a/S")).is_ok());
    }

    #[test]
    fn listing_is_recursive_and_scoped() {
        let mut s = store();
        for k in ["prod/b/K", "prod/a/K", "prod/K", "production/K", "dev/K"] {
            s.put(&Access::Admin, &p(k), req("v", None), ts(0)).unwrap();
        }
        let t = token(&["secrets:read:prod/*"]);
        let l = s.list(&t, "prod", ts(0)).unwrap();
        let names: Vec<String> = l.items.iter().map(|i| format!("{}/{}", i.namespace, i.key)).collect();
        assert_eq!(names, ["prod/K", "prod/a/K", "prod/b/K"]);
        assert_eq!(l.total, 3);
        assert!(matches!(s.list(&t, "dev", ts(0)), Err(ApiError::ScopeDenied(_))));
        assert_eq!(s.list(&t, "prod/none", ts(0)).unwrap().total, 0);
        assert!(matches!(s.list(&t, "", ts(0)), Err(ApiError::Validation(_))));
    }

    #[test]
    fn raw_slash_get_or_list() {
        let mut s = store();
        s.put(&Access::Admin, &p("a/b/K"), req("v", None), ts(0)).unwrap();
        let all = token(&["secrets:read:*"]);
        assert!(matches!(s.get_or_list(&all, "a/b/K", ts(0)), Ok(GetOrList::Secret(_))));
        assert!(matches!(s.get_or_list(&all, "a/b", ts(0)), Ok(GetOrList::List(_))));
        assert!(matches!(s.get_or_list(&all, "a", ts(0)), Ok(GetOrList::List(_))));
        assert!(matches!(s.get_or_list(&all, "zzz", ts(0)), Err(ApiError::SecretNotFound(_))));
        let narrow = token(&["secrets:read:x/*"]);
        assert!(matches!(s.get_or_list(&narrow, "a/b", ts(0)), Err(ApiError::ScopeDenied(_))));
        let lister = token(&["secrets:read:a/*"]);
        assert!(matches!(s.get_or_list(&lister, "a", ts(0)), Ok(GetOrList::List(_))));
    }

    #[test]
    fn import_checks_everything_first() {
        let mut s = store();
        s.put(&Access::Admin, &p("env/S"), req("v", Some(AccessTier::Sensitive)), ts(0)).unwrap();
        let t = token(&["secrets:write:env/*"]);
        let r = |content: &str| ImportRequest {
            namespace: "env".into(),
            content: content.into(),
            secret_type: None,
            access_tier: None,
            metadata: None,
        };
        assert!(matches!(s.import(&t, r("A=1\nS=2\n"), ts(0)), Err(ApiError::HumanAuthRequired(_))));
        assert!(!s.secrets.contains_key(&p("env/A")), "nothing written");
        let e = s.import(&t, r("A=1\nB*=2\n"), ts(0)).unwrap_err();
        assert!(matches!(&e, ApiError::Validation(m) if m.contains("B*")), "{e:?}");
        let ok = s.import(&t, r("A=1\nB=2\n"), ts(0)).unwrap();
        assert_eq!((ok.imported_count, ok.imported), (2, vec!["A".to_owned(), "B".to_owned()]));
        assert!(matches!(
            s.import(&token(&["secrets:write:x/*"]), r("A=1"), ts(0)),
            Err(ApiError::ScopeDenied(_))
        ));
    }

    #[test]
    fn tokens_dead_before_the_horizon_are_forgotten_with_their_credential() {
        let mut s = store();
        let record = |id: &str, token: &str, expires| TokenRecord {
            id: id.into(),
            token: Token::new(token),
            scopes: Default::default(),
            tier: AccessTier::Standard,
            expires_at: ts(expires),
            max_uses: None,
            uses: 0,
            ip_allowlist: None,
        };
        s.add_token(record("tok_old", "asst_old", 10), None);
        s.add_token(record("tok_live", "asst_live", 100), Some(ts(50)));
        assert_eq!(s.identify("asst_old"), Caller::Unknown);
        assert!(!s.tokens.contains_key("tok_old"));
        assert_eq!(s.identify("asst_live"), Caller::Token("tok_live".into()));
        s.add_token(record("tok_next", "asst_next", 200), Some(ts(50)));
        assert_eq!(s.identify("asst_live"), Caller::Token("tok_live".into()));
    }

    #[test]
    fn token_uses_expiry_and_ip() {
        let mut s = store();
        let localhost: IpAddr = "127.0.0.1".parse().unwrap();
        let record = TokenRecord {
            id: "tok_1".into(),
            token: Token::new("asst_x"),
            scopes: Default::default(),
            tier: AccessTier::Standard,
            expires_at: ts(10),
            max_uses: Some(2),
            uses: 0,
            ip_allowlist: Some(vec!["::ffff:127.0.0.1".parse().unwrap()]),
        };
        s.add_token(record, None);
        assert_eq!(s.identify("asst_x"), Caller::Token("tok_1".into()));
        assert!(s.use_token("tok_1", localhost, ts(0)).is_ok());
        assert!(matches!(
            s.use_token("tok_1", "10.0.0.1".parse().unwrap(), ts(0)),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(s.use_token("tok_1", localhost, ts(0)).is_ok());
        assert!(matches!(s.use_token("tok_1", localhost, ts(0)), Err(ApiError::Unauthorized(_))));
        s.tokens.get_mut("tok_1").unwrap().max_uses = None;
        assert!(matches!(s.use_token("tok_1", localhost, ts(10)), Err(ApiError::Unauthorized(_))));
    }

    #[test]
    fn tier_from_read_write_any_not_delete() {
        let mut s = store();
        s.put(&Access::Admin, &p("p/S"), req("v", Some(AccessTier::Sensitive)), ts(0)).unwrap();
        s.put(&Access::Admin, &p("p/C"), req("v", Some(AccessTier::Critical)), ts(0)).unwrap();
        let sc = |v: &[&str]| v.iter().map(|x| x.parse().unwrap()).collect::<Vec<Scope>>();
        assert_eq!(s.required_tier(&sc(&["secrets:read:p/S"])), AccessTier::Sensitive);
        assert_eq!(s.required_tier(&sc(&["secrets:write:p/*"])), AccessTier::Critical);
        assert_eq!(s.required_tier(&sc(&["secrets:delete:p/*"])), AccessTier::Standard);
        assert_eq!(s.required_tier(&sc(&["*"])), AccessTier::Critical);
        assert_eq!(s.required_tier(&sc(&["secrets:read:q/*"])), AccessTier::Standard);
    }
}
