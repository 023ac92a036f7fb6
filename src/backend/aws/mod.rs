//! The AWS Secrets Manager backend: `aws-sm://NAME[?version-stage=STAGE][#KEY]` reads a secret
//! (or one key of the JSON object it holds), `aws-sm://PREFIX/*` every secret whose name
//! matches. Secrets without a staging label are read 20 to a `BatchGetSecretValue` call, and a
//! glob's matches are listed and read by the same call with a name filter, so a mapping of N
//! secrets costs about N ÷ 20 round trips. Requests are SigV4-signed ([`sigv4`]) with the
//! credentials [`config`] finds where the AWS SDKs look.

pub mod api;
pub mod config;
pub mod reference;
pub mod sigv4;

use std::collections::{BTreeMap, HashMap};

use futures_util::StreamExt;

use super::registry::Registration;
use super::{
    Backend, BackendError, BoxFuture, FailureKind, FetchContext, FetchFuture, Fetched, GlobRef, Options, ReadsInFlight,
    Reference, SecretValue, Wanted,
};
use agentsecretstore::secret::SecretString;
use agentsecretstore::http::{self, RetryPolicy};
use api::Api;
use reference::{SecretGlob, SecretRef};

/// `aws-sm://`: AWS Secrets Manager, with the AWS environment's credentials.
pub const REGISTRATION: Registration = Registration {
    scheme: "aws-sm",
    syntax: reference::SYNTAX,
    make: AwsBackend::boxed,
    credential_vars: config::CREDENTIAL_VARS,
    options: &[],
    example: Some("aws-sm://NAME#KEY"),
    glob_example: Some("aws-sm://PREFIX/*"),
    env_refs: true,
};

/// The most secrets one `BatchGetSecretValue` call returns.
const BATCH: usize = 20;

/// Reads from AWS Secrets Manager.
pub struct AwsBackend {
    api: Api,
    concurrency: ReadsInFlight,
}

impl AwsBackend {
    /// Finds the credentials, region and endpoint, and checks the endpoint.
    pub fn new(options: &Options) -> Result<Self, BackendError> {
        let config = config::discover(&options.env)?;
        let endpoint = http::check_base_url(&config.endpoint, options.allow_insecure_http).map_err(|e| {
            BackendError::new(FailureKind::Config, format!("AWS endpoint {}: {e}", config.endpoint))
        })?;
        let url = reqwest::Url::parse(&endpoint)
            .map_err(|e| BackendError::new(FailureKind::Config, format!("AWS endpoint {endpoint}: {e}")))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => {
                return Err(BackendError::new(FailureKind::Config, format!("AWS endpoint {endpoint} has no host")))
            }
        };
        let client = http::build_client(http::ClientOptions {
            base_url: &endpoint,
            timeout: options.timeout,
            user_agent: concat!("vault-run/", env!("CARGO_PKG_VERSION")),
            ca_certificates: Vec::new(),
        })
        .map_err(|e| BackendError::new(FailureKind::Config, format!("cannot build the HTTP client: {e}")))?;
        tracing::debug!(endpoint = %endpoint, region = %config.region, credentials = %config.credentials.source, "AWS Secrets Manager");
        let retry =
            RetryPolicy { retries: options.retries, rate_limit_patience: options.deadline, ..RetryPolicy::default() };
        Ok(Self {
            api: Api { http: client, endpoint, host, region: config.region, credentials: config.credentials, retry },
            concurrency: options.concurrency,
        })
    }

    /// [`AwsBackend::new`], boxed for the registry.
    pub fn boxed(options: &Options) -> Result<Box<dyn Backend>, BackendError> {
        Ok(Box::new(Self::new(options)?))
    }

    fn in_flight(&self, calls: usize) -> usize {
        match self.concurrency {
            ReadsInFlight::Exactly(n) => n,
            ReadsInFlight::Auto => calls.clamp(1, 16),
        }
    }

    /// Reads `ids` (at most [`BATCH`]) in one call: per id, its value or why not.
    async fn batch(&self, ids: &[String]) -> HashMap<String, Result<api::SecretValue, BackendError>> {
        let body = serde_json::json!({ "SecretIdList": ids });
        let what = format!("aws-sm://{}", ids.join(", aws-sm://"));
        let reply = match self.api.call("BatchGetSecretValue", &body, &what).await {
            Ok(r) => r,
            // A policy may grant GetSecretValue but not the batch call: each secret is then
            // read on its own, and answers for itself.
            Err(e) if e.kind == FailureKind::Auth => {
                tracing::debug!("BatchGetSecretValue refused; reading one secret at a time");
                let each = futures_util::future::join_all(ids.iter().map(|id| self.get(id, None))).await;
                return ids.iter().cloned().zip(each).collect();
            }
            Err(e) => return ids.iter().map(|id| (id.clone(), Err(e.clone()))).collect(),
        };
        let batch: api::Batch = match api::parse(&reply, &what) {
            Ok(b) => b,
            Err(e) => return ids.iter().map(|id| (id.clone(), Err(e.clone()))).collect(),
        };
        let mut out = HashMap::new();
        for e in batch.errors {
            let kind = api::kind_of(&e.error_code, 400);
            let message = format!(
                "aws-sm://{}: AWS Secrets Manager answered {}: {}",
                e.secret_id,
                e.error_code,
                e.message.as_deref().map(http::one_line).unwrap_or_default()
            );
            out.insert(e.secret_id, Err(BackendError::new(kind, message)));
        }
        for v in batch.secret_values {
            // Asked by name or by ARN: answer under whichever was asked.
            let asked = ids.iter().find(|id| **id == v.name || v.arn.as_ref() == Some(*id));
            if let Some(id) = asked {
                out.insert(id.clone(), Ok(v));
            }
        }
        out
    }

    /// Reads one secret (at a staging label).
    async fn get(&self, id: &str, stage: Option<&str>) -> Result<api::SecretValue, BackendError> {
        let mut body = serde_json::json!({ "SecretId": id });
        if let Some(stage) = stage {
            body["VersionStage"] = stage.into();
        }
        let what = match stage {
            Some(s) => format!("aws-sm://{id}?version-stage={s}"),
            None => format!("aws-sm://{id}"),
        };
        let reply = self.api.call("GetSecretValue", &body, &what).await?;
        api::parse(&reply, &what)
    }

    /// Every secret matching `glob`: `BatchGetSecretValue` filtered by the name prefix, page
    /// by page, then matched against the whole pattern.
    async fn list(&self, glob: &SecretGlob, shown: &str) -> Result<Vec<(String, SecretValue)>, BackendError> {
        let mut found = BTreeMap::new();
        let mut next: Option<String> = None;
        loop {
            let mut body = serde_json::json!({
                "Filters": [{ "Key": "name", "Values": [glob.prefix] }],
                "MaxResults": BATCH,
            });
            if let Some(t) = &next {
                body["NextToken"] = t.as_str().into();
            }
            let reply = self.api.call("BatchGetSecretValue", &body, shown).await?;
            let batch: api::Batch = api::parse(&reply, shown)?;
            if let Some(e) = batch.errors.first() {
                let message = format!("{shown}: AWS Secrets Manager answered {} for {}", e.error_code, e.secret_id);
                return Err(BackendError::new(api::kind_of(&e.error_code, 400), message));
            }
            for v in batch.secret_values {
                if let Some(key) = glob.key_of(&v.name) {
                    let value = value_of(&v, None, &format!("aws-sm://{}", v.name))?;
                    found.insert(key.to_owned(), value);
                }
            }
            match batch.next_token {
                Some(t) if !t.is_empty() => next = Some(t),
                _ => break,
            }
        }
        Ok(found.into_iter().collect())
    }
}

/// One finished call of a fetch.
enum Done {
    /// A batch read: per id, its value or why not.
    Batch(HashMap<String, Result<api::SecretValue, BackendError>>),
    /// A read at a staging label.
    Staged((String, String), Result<api::SecretValue, BackendError>),
    /// A glob's matches.
    Glob(GlobRef, Result<Vec<(String, SecretValue)>, BackendError>),
}

/// The value a reference wants from a read secret: the text, or one key of its JSON object.
fn value_of(v: &api::SecretValue, key: Option<&str>, shown: &str) -> Result<SecretValue, BackendError> {
    let missing = |m: String| BackendError::new(FailureKind::Missing, m);
    let Some(text) = &v.secret_string else {
        let why = if v.secret_binary.is_some() { "holds binary data" } else { "has no value" };
        return Err(BackendError::new(
            FailureKind::Config,
            format!("{shown} {why}; an environment variable needs text (store it as SecretString)"),
        ));
    };
    let value = match key {
        None => text.clone(),
        Some(key) => {
            let mut fields: HashMap<String, serde_json::Value> = serde_json::from_str(text.expose()).map_err(|_| {
                BackendError::new(
                    FailureKind::Config,
                    format!("{shown}: the secret is not a JSON object, so #{key} cannot be read; drop #{key} to read it whole"),
                )
            })?;
            // A string is moved into the secret buffer, not copied; anything else is its JSON text.
            match fields.remove(key) {
                Some(serde_json::Value::String(s)) => SecretString::new(s),
                Some(other) => SecretString::new(other.to_string()),
                None => return Err(missing(format!("{shown}: the secret has no key {key:?}"))),
            }
        }
    };
    Ok(SecretValue { value, version: None, tier: None })
}

impl Backend for AwsBackend {
    fn fetch<'a>(&'a self, wanted: &'a Wanted, _ctx: &'a FetchContext<'a>) -> FetchFuture<'a> {
        Box::pin(async move {
            let bad = |e: super::ReferenceError| BackendError::new(FailureKind::Config, e.to_string());
            let singles: Vec<(&Reference, Result<SecretRef, BackendError>)> = wanted
                .singles
                .iter()
                .map(|r| (r, reference::parse(&r.to_string(), r.rest()).map_err(bad)))
                .collect();
            // Each secret is read once, whatever keys are wanted from it.
            let mut current: Vec<String> = singles
                .iter()
                .filter_map(|(_, s)| s.as_ref().ok())
                .filter(|s| s.stage.is_none())
                .map(|s| s.id.clone())
                .collect();
            current.sort_unstable();
            current.dedup();
            let mut staged: Vec<(String, String)> = singles
                .iter()
                .filter_map(|(_, s)| s.as_ref().ok())
                .filter_map(|s| Some((s.id.clone(), s.stage.clone()?)))
                .collect();
            staged.sort_unstable();
            staged.dedup();

            let mut jobs: Vec<BoxFuture<'_, Done>> = Vec::new();
            for chunk in current.chunks(BATCH) {
                let ids = chunk.to_vec();
                jobs.push(Box::pin(async move { Done::Batch(self.batch(&ids).await) }));
            }
            for (id, stage) in staged {
                jobs.push(Box::pin(async move {
                    let read = self.get(&id, Some(&stage)).await;
                    Done::Staged((id, stage), read)
                }));
            }
            for g in &wanted.globs {
                jobs.push(Box::pin(async move {
                    let shown = g.to_string();
                    let found = match SecretGlob::new(&shown, g.rest()) {
                        Ok(glob) => self.list(&glob, &shown).await,
                        Err(e) => Err(bad(e)),
                    };
                    Done::Glob(g.clone(), found)
                }));
            }
            let width = self.in_flight(jobs.len());
            let done: Vec<Done> = futures_util::stream::iter(jobs).buffer_unordered(width).collect().await;
            let (mut read, mut by_stage, mut globs) = (HashMap::new(), HashMap::new(), HashMap::new());
            for d in done {
                match d {
                    Done::Batch(values) => read.extend(values),
                    Done::Staged(at, value) => {
                        by_stage.insert(at, value);
                    }
                    Done::Glob(g, found) => {
                        globs.insert(g, found);
                    }
                }
            }

            let singles = singles
                .into_iter()
                .map(|(r, parsed)| {
                    let shown = r.to_string();
                    let answer = parsed.and_then(|s| {
                        let secret = match &s.stage {
                            None => read.get(&s.id),
                            Some(stage) => by_stage.get(&(s.id.clone(), stage.clone())),
                        };
                        match secret {
                            Some(Ok(v)) => value_of(v, s.key.as_deref(), &shown),
                            Some(Err(e)) => Err(e.clone()),
                            None => Err(BackendError::new(
                                FailureKind::Temporary,
                                format!("{shown}: AWS Secrets Manager did not answer for this secret"),
                            )),
                        }
                    });
                    (r.clone(), answer)
                })
                .collect();
            Ok(Fetched { singles, globs })
        })
    }
}
