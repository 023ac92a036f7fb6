//! Resolve: plan which backend reads what, fetch everything concurrently under the start-up
//! deadline, and turn the answers into the variables to inject (or the first reason not to).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use crate::backend::{
    self, Backend, BackendError, Event, FailureKind, FetchContext, Fetched, GlobRef, Reference, SecretValue,
    Tier, Wanted,
};
use crate::deadline::Deadline;
use crate::mapping::{
    Delivery, Entry, EntryKind, GlobName, Mapping, MatchRequirement, Origin, Requirement, Template,
};
use crate::settings::Settings;
use agentsecretstore::duration::HumanDuration;
use agentsecretstore::secret::SecretString;

/// A variable ready for the child's environment.
#[derive(Debug, Clone)]
pub struct ResolvedVar {
    /// Variable name.
    pub name: String,
    /// The value (or, for `as = "file"`, the content of the file).
    pub value: SecretString,
    /// Environment value or memfd.
    pub delivery: Delivery,
    /// Where the mapping entry came from.
    pub origin: Origin,
}

/// Why the child cannot start: the kind decides the exit code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ResolveError {
    /// What kind of failure.
    pub kind: FailureKind,
    /// One line: the variable, what failed, what to do.
    pub message: String,
}

/// What is known about a fetched value, for `check`.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// Version, when the backend has versions.
    pub version: Option<u64>,
    /// Access tier (Agent Secret Store only).
    pub tier: Option<Tier>,
}

impl From<&SecretValue> for Found {
    fn from(v: &SecretValue) -> Self {
        Self { version: v.version, tier: v.tier.clone() }
    }
}

/// One variable a glob matched.
#[derive(Debug, Clone)]
pub struct Match {
    /// The variable it sets.
    pub name: String,
    /// The secret's key (or Vault field) that named it.
    pub key: String,
    /// What is known about the value.
    pub found: Found,
    /// Already set and kept (`--no-override`): not injected.
    pub kept: bool,
}

/// How one entry fared.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Not fetched: the variable is already set and `--no-override` keeps it.
    Kept,
    /// The one value (a single secret, or every secret of a template) was fetched.
    Fetched(Found),
    /// What a glob matched (at least one).
    Matched(Vec<Match>),
    /// A single secret is missing, which its requirement allows.
    Missing {
        /// Whether the entry's default was used (otherwise the variable is not set).
        default_used: bool,
    },
    /// A glob matched nothing.
    NothingMatched {
        /// Whether that is allowed (otherwise it is also in [`Resolution::errors`]).
        optional: bool,
    },
    /// Fetching failed (also in [`Resolution::errors`]).
    Failed(BackendError),
}

/// One entry's resolution.
#[derive(Debug, Clone)]
pub struct EntryOutcome {
    /// The variable, or the glob key.
    pub target: String,
    /// The reference as written (after `${VAR}` expansion).
    pub reference: String,
    /// Where the entry came from.
    pub origin: Origin,
    /// The scheme of the backend that reads it; a template naming several joins them (`ass+vault`).
    pub backend: String,
    /// `required`, `optional` or `default`.
    pub requirement: &'static str,
    /// What happened.
    pub outcome: Outcome,
}

/// The outcome of resolving a mapping.
#[derive(Debug, Default)]
pub struct Resolution {
    /// Variables to inject, in mapping order.
    pub vars: Vec<ResolvedVar>,
    /// How each entry fared, in mapping order (`check` makes its rows from these).
    pub outcomes: Vec<EntryOutcome>,
    /// Every failure, in mapping order; the first decides the exit code.
    pub errors: Vec<ResolveError>,
    /// Each secret that went into a template, named by the template's variable: `--mask` must
    /// hide the password printed alone, not only the whole URL it was rendered into.
    pub template_parts: Vec<(String, SecretString)>,
}

/// Which names are already set in the inherited environment, for `--no-override`.
pub type AlreadySet = HashSet<String>;

/// What each backend must fetch, by scheme.
#[derive(Default)]
struct Groups {
    wanted: BTreeMap<&'static str, Wanted>,
    singles: HashSet<Reference>,
    globs: HashSet<GlobRef>,
}

impl Groups {
    fn single(&mut self, r: &Reference) {
        if self.singles.insert(r.clone()) {
            self.wanted.entry(r.scheme()).or_default().singles.push(r.clone());
        }
    }

    fn glob(&mut self, g: &GlobRef) {
        if self.globs.insert(g.clone()) {
            self.wanted.entry(g.scheme()).or_default().globs.push(g.clone());
        }
    }

    fn entry(&mut self, e: &Entry) {
        match &e.kind {
            EntryKind::Single { reference, .. } => self.single(reference),
            EntryKind::Glob { pattern, .. } => self.glob(pattern),
            EntryKind::Template { template, .. } => template.refs().for_each(|r| self.single(r)),
        }
    }
}

/// Plans a mapping once and fetches it as often as asked (a run fetches once; `--watch`
/// fetches every interval with the same backends, so tokens and approvals carry over).
pub struct Resolver {
    mapping: Mapping,
    settings: Settings,
    already_set: Option<AlreadySet>,
    /// Per entry: not fetched because `--no-override` keeps the variable.
    kept: Vec<bool>,
    wanted: BTreeMap<&'static str, Wanted>,
    backends: Vec<(&'static str, MaybeBackend)>,
}

impl Resolver {
    /// Plans `mapping` and builds the backends it needs. With `already_set` (`--no-override`),
    /// entries whose variable is already set are neither fetched nor injected (env references
    /// excepted: their value is the reference itself).
    pub fn new(mapping: Mapping, settings: Settings, already_set: Option<AlreadySet>) -> Self {
        let kept: Vec<bool> = mapping
            .entries
            .iter()
            .map(|e| match (e.name(), &already_set) {
                (Some(n), Some(set)) => {
                    !matches!(e.origin, Origin::EnvRef { .. }) && set.contains(n.as_str())
                }
                _ => false,
            })
            .collect();
        let mut groups = Groups::default();
        for (e, _) in mapping.entries.iter().zip(&kept).filter(|(_, kept)| !**kept) {
            groups.entry(e);
        }
        let backends = groups
            .wanted
            .keys()
            .map(|scheme| {
                let made = match backend::constructor(scheme) {
                    Some(make) => make(&settings),
                    None => Err(BackendError::new(
                        FailureKind::Config,
                        format!("no backend for {scheme}:// references in this build"),
                    )),
                };
                (*scheme, made)
            })
            .collect();
        Self { mapping, settings, already_set, kept, wanted: groups.wanted, backends }
    }

    /// The mapping being resolved.
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// Fetches everything (concurrently, under the start-up deadline) and assembles the result.
    pub async fn resolve(&self, events: &(dyn Fn(Event) + Send + Sync)) -> Resolution {
        let deadline = Deadline::new(self.settings.deadline);
        let answers = fetch_all(&self.wanted, &self.backends, &deadline, events).await;
        let mut out = Resolution::default();
        let ctx = Assembly { answers: &answers, already_set: self.already_set.as_ref() };
        for (entry, kept) in self.mapping.entries.iter().zip(&self.kept) {
            let outcome = if *kept { Outcome::Kept } else { ctx.entry(entry, &mut out) };
            out.outcomes.push(EntryOutcome {
                target: entry.target().to_string(),
                reference: entry.source(),
                origin: entry.origin.clone(),
                backend: backend_of(entry),
                requirement: requirement(entry),
                outcome,
            });
        }
        check_collisions(&mut out);
        out
    }
}

/// A backend, or why it could not be built (reported on every entry that needs it).
type MaybeBackend = Result<Box<dyn Backend>, BackendError>;

type Answers = BTreeMap<&'static str, Result<Fetched, BackendError>>;

async fn fetch_all(
    wanted: &BTreeMap<&'static str, Wanted>,
    backends: &[(&'static str, MaybeBackend)],
    deadline: &Deadline,
    events: &(dyn Fn(Event) + Send + Sync),
) -> Answers {
    let ctx = FetchContext { deadline, events };
    let work = backends.iter().map(|(scheme, b)| {
        let ctx = &ctx;
        async move {
            let out = match b {
                Ok(b) => b.fetch(&wanted[scheme], ctx).await,
                Err(e) => Err(e.clone()),
            };
            (*scheme, out)
        }
    });
    let answers = match deadline.run(futures_util::future::join_all(work)).await {
        Some(all) => all.into_iter().collect(),
        None => {
            let e = BackendError::new(
                FailureKind::Temporary,
                format!(
                    "start-up deadline of {} passed before every secret was fetched; check the server or raise --deadline",
                    HumanDuration::from(deadline.budget())
                ),
            );
            wanted.keys().map(|s| (*s, Err(e.clone()))).collect()
        }
    };
    // Release what the backends hold (e.g. Vault child tokens) before anything is exec'd.
    let finishing = backends.iter().filter_map(|(_, b)| b.as_ref().ok()).map(|b| b.finish());
    let _ = deadline.run(futures_util::future::join_all(finishing)).await;
    answers
}

fn requirement(e: &Entry) -> &'static str {
    match &e.kind {
        EntryKind::Single { requirement: Requirement::Default(_), .. } => "default",
        EntryKind::Single { requirement: Requirement::Optional, .. }
        | EntryKind::Glob { requirement: MatchRequirement::Optional, .. } => "optional",
        _ => "required",
    }
}

/// A backend that left a wanted reference unanswered: its fault, reported rather than guessed.
fn unanswered(what: &dyn fmt::Display) -> BackendError {
    BackendError::new(FailureKind::Temporary, format!("{what}: the backend gave no answer for it"))
}

/// The answers of one run, turned entry by entry into variables, errors and outcomes.
struct Assembly<'a> {
    answers: &'a Answers,
    already_set: Option<&'a AlreadySet>,
}

impl Assembly<'_> {
    /// What the backend of `scheme` answered, or why the whole batch failed; `what` is the
    /// reference asked about, for the error when the backend was never asked.
    fn fetched(&self, scheme: &str, what: &dyn fmt::Display) -> Result<&Fetched, BackendError> {
        match self.answers.get(scheme) {
            Some(Ok(f)) => Ok(f),
            Some(Err(e)) => Err(BackendError { whole_batch: true, ..e.clone() }),
            None => Err(unanswered(what)),
        }
    }

    fn value(&self, r: &Reference) -> Result<&SecretValue, BackendError> {
        match self.fetched(r.scheme(), r)?.singles.get(r) {
            Some(answer) => answer.as_ref().map_err(Clone::clone),
            None => Err(unanswered(r)),
        }
    }

    fn matches(&self, g: &GlobRef) -> Result<&[(String, SecretValue)], BackendError> {
        match self.fetched(g.scheme(), g)?.globs.get(g) {
            Some(answer) => answer.as_deref().map_err(Clone::clone),
            None => Err(unanswered(g)),
        }
    }

    fn entry(&self, entry: &Entry, out: &mut Resolution) -> Outcome {
        match &entry.kind {
            EntryKind::Single { name, reference, requirement } => {
                self.single(entry, name.as_str(), reference, requirement, out)
            }
            EntryKind::Glob { name, pattern, requirement } => {
                self.glob(entry, name, pattern, *requirement, out)
            }
            EntryKind::Template { name, template } => self.template(entry, name.as_str(), template, out),
        }
    }

    fn single(
        &self,
        entry: &Entry,
        name: &str,
        reference: &Reference,
        requirement: &Requirement,
        out: &mut Resolution,
    ) -> Outcome {
        match (self.value(reference), requirement) {
            (Ok(v), _) => {
                out.vars.push(var(entry, name, v.value.clone()));
                Outcome::Fetched(v.into())
            }
            (Err(e), Requirement::Optional) if e.kind == FailureKind::Missing => {
                Outcome::Missing { default_used: false }
            }
            (Err(e), Requirement::Default(default)) if e.kind == FailureKind::Missing => {
                out.vars.push(var(entry, name, default.clone()));
                Outcome::Missing { default_used: true }
            }
            (Err(e), _) => {
                let hint = if e.kind == FailureKind::Missing {
                    "; check the path or mark it optional = true"
                } else {
                    ""
                };
                fail(out, name, &e, hint)
            }
        }
    }

    fn glob(
        &self,
        entry: &Entry,
        name: &GlobName,
        pattern: &GlobRef,
        requirement: MatchRequirement,
        out: &mut Resolution,
    ) -> Outcome {
        let found = match self.matches(pattern) {
            Ok(found) => found,
            Err(e) => return fail(out, &name.to_string(), &e, ""),
        };
        if found.is_empty() {
            let optional = requirement == MatchRequirement::Optional;
            if !optional {
                out.errors.push(ResolveError {
                    kind: FailureKind::Missing,
                    message: format!(
                        "{name}: {pattern} matched no secret; check the pattern or mark it optional = true"
                    ),
                });
            }
            return Outcome::NothingMatched { optional };
        }
        let matches = found
            .iter()
            .map(|(key, v)| {
                let var_name = name.name_for(key);
                let kept = self.already_set.is_some_and(|s| s.contains(&var_name));
                if !kept {
                    out.vars.push(var(entry, &var_name, v.value.clone()));
                }
                Match { name: var_name, key: key.clone(), found: v.into(), kept }
            })
            .collect();
        Outcome::Matched(matches)
    }

    fn template(&self, entry: &Entry, name: &str, template: &Template, out: &mut Resolution) -> Outcome {
        let values: Result<Vec<&SecretValue>, BackendError> =
            template.refs().map(|r| self.value(r)).collect();
        let values = match values {
            Ok(values) => values,
            Err(e) => {
                let hint = if e.kind == FailureKind::Missing {
                    "; templates need every secret they name"
                } else {
                    ""
                };
                return fail(out, name, &e, hint);
            }
        };
        let by_ref: HashMap<&Reference, &SecretString> =
            template.refs().zip(&values).map(|(r, v)| (r, &v.value)).collect();
        let rendered = template.render(|r| by_ref[r]);
        out.vars.push(var(entry, name, rendered));
        out.template_parts.extend(values.iter().map(|v| (name.to_owned(), v.value.clone())));
        Outcome::Fetched(Found {
            version: if values.len() == 1 { values[0].version } else { None },
            tier: values.iter().filter_map(|v| v.tier.clone()).max(),
        })
    }
}

/// Records `e` as the reason `target` cannot be set.
fn fail(out: &mut Resolution, target: &str, e: &BackendError, hint: &str) -> Outcome {
    let message =
        if e.whole_batch { format!("{}{hint}", e.message) } else { format!("{target}: {}{hint}", e.message) };
    out.errors.push(ResolveError { kind: e.kind, message });
    Outcome::Failed(e.clone())
}

/// The backend(s) an entry reads from, in registry order.
fn backend_of(entry: &Entry) -> String {
    match &entry.kind {
        EntryKind::Single { reference, .. } => reference.scheme().to_owned(),
        EntryKind::Glob { pattern, .. } => pattern.scheme().to_owned(),
        EntryKind::Template { template, .. } => {
            let used: Vec<&str> = backend::REGISTRY
                .iter()
                .map(|r| r.scheme)
                .filter(|s| template.refs().any(|r| r.scheme() == *s))
                .collect();
            if used.is_empty() {
                crate::backend::reference::DEFAULT_SCHEME.to_owned()
            } else {
                used.join("+")
            }
        }
    }
}

fn var(entry: &Entry, name: &str, value: SecretString) -> ResolvedVar {
    ResolvedVar { name: name.to_owned(), value, delivery: entry.delivery, origin: entry.origin.clone() }
}

/// Two entries may not set the same variable (a glob expanding onto a fixed name, two globs).
fn check_collisions(out: &mut Resolution) {
    let mut seen: HashMap<&str, &Origin> = HashMap::new();
    let mut errors = Vec::new();
    for v in &out.vars {
        if let Some(first) = seen.insert(&v.name, &v.origin) {
            errors.push(ResolveError {
                kind: FailureKind::Config,
                message: format!(
                    "{}: set by both {first} and {}; rename one of them or narrow the glob",
                    v.name, v.origin
                ),
            });
        }
    }
    out.errors.extend(errors);
}
