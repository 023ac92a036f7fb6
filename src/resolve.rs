//! Resolve: plan which backend reads what, fetch everything concurrently under the start-up
//! deadline, and turn the answers into the variables to inject (or the first reason not to).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use crate::backend::{
    self, Backend, BackendError, Event, FailureKind, FetchContext, Fetched, SecretValue, Wanted,
};
use crate::deadline::Deadline;
use crate::duration::HumanDuration;
use crate::mapping::{Delivery, Entry, GlobRef, Mapping, Origin, Reference, Source, Target};
use crate::secret::SecretString;
use crate::settings::Settings;
use crate::wire::AccessTier;

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

/// Whether an entry must be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Must exist.
    Required,
    /// May be missing; the variable is then not set.
    Optional,
    /// May be missing; the default is used then.
    Default,
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Requirement::Required => "required",
            Requirement::Optional => "optional",
            Requirement::Default => "default",
        })
    }
}

/// How an entry fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Fetched.
    Ok,
    /// Not found or expired.
    Missing,
    /// Refused (auth, scope, approval denied or expired).
    Denied,
    /// Waiting for a human's approval.
    Approval,
    /// Temporary or configuration failure.
    Error,
    /// Not fetched: the variable is already set and `--no-override` keeps it.
    Kept,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "ok",
            Status::Missing => "missing",
            Status::Denied => "denied",
            Status::Approval => "approval",
            Status::Error => "error",
            Status::Kept => "kept",
        })
    }
}

/// One line of `vault-run check`.
#[derive(Debug, Clone)]
pub struct Row {
    /// Variable name (or the glob key when it matched nothing).
    pub name: String,
    /// The reference as written (after `${VAR}` expansion).
    pub reference: String,
    /// Which backend reads it: `ass`, `vault`, or both (`ass+vault`, a template naming both).
    pub backend: &'static str,
    /// Version, when known.
    pub version: Option<u64>,
    /// Tier, when known.
    pub tier: Option<AccessTier>,
    /// required / optional / default.
    pub requirement: Requirement,
    /// Outcome.
    pub status: Status,
    /// Why, in a few words, when the status is not `ok` (`not found`, `no agent key`, …).
    pub reason: Option<String>,
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

/// The outcome of resolving a mapping.
#[derive(Debug, Default)]
pub struct Resolution {
    /// Variables to inject, in mapping order.
    pub vars: Vec<ResolvedVar>,
    /// One row per variable for `check`.
    pub rows: Vec<Row>,
    /// Every failure, in mapping order; the first decides the exit code.
    pub errors: Vec<ResolveError>,
    /// Each secret that went into a template, named by the template's variable: `--mask` must
    /// hide the password printed alone, not only the whole URL it was rendered into.
    pub template_parts: Vec<(String, SecretString)>,
}

/// Which names are already set in the inherited environment, for `--no-override`.
pub type AlreadySet = HashSet<String>;

enum Plan {
    Single { scheme: &'static str, idx: usize },
    Glob { scheme: &'static str, idx: usize },
    Template { refs: Vec<(&'static str, usize)> },
    Kept,
}

fn scheme(r: &Reference) -> &'static str {
    match r {
        Reference::Ass(_) => "ass",
        Reference::Vault(_) => "vault",
    }
}

fn glob_scheme(g: &GlobRef) -> &'static str {
    match g {
        GlobRef::Ass(_) => "ass",
        GlobRef::VaultFields { .. } => "vault",
    }
}

#[derive(Default)]
struct Groups {
    wanted: BTreeMap<&'static str, Wanted>,
    seen: HashMap<(&'static str, String), usize>,
}

impl Groups {
    fn single(&mut self, r: &Reference) -> (&'static str, usize) {
        let s = scheme(r);
        let wanted = self.wanted.entry(s).or_default();
        let idx = *self.seen.entry((s, r.to_string())).or_insert_with(|| {
            wanted.singles.push(r.clone());
            wanted.singles.len() - 1
        });
        (s, idx)
    }

    fn glob(&mut self, g: &GlobRef) -> (&'static str, usize) {
        let s = glob_scheme(g);
        let wanted = self.wanted.entry(s).or_default();
        wanted.globs.push(g.clone());
        (s, wanted.globs.len() - 1)
    }
}

/// Plans a mapping once and fetches it as often as asked (a run fetches once; `--watch`
/// fetches every interval with the same backends, so tokens and approvals carry over).
pub struct Resolver {
    mapping: Mapping,
    settings: Settings,
    already_set: Option<AlreadySet>,
    plans: Vec<Plan>,
    wanted: BTreeMap<&'static str, Wanted>,
    backends: Vec<(&'static str, MaybeBackend)>,
}

impl Resolver {
    /// Plans `mapping` and builds the backends it needs. With `already_set` (`--no-override`),
    /// entries whose variable is already set are neither fetched nor injected (env references
    /// excepted: their value is the reference itself).
    pub fn new(mapping: Mapping, settings: Settings, already_set: Option<AlreadySet>) -> Self {
        let kept = |e: &Entry| match (&e.target, &already_set) {
            (Target::Name(n), Some(set)) => {
                !matches!(e.origin, Origin::EnvRef { .. }) && set.contains(n.as_str())
            }
            _ => false,
        };
        let mut groups = Groups::default();
        let plans: Vec<Plan> = mapping
            .entries
            .iter()
            .map(|e| {
                if kept(e) {
                    return Plan::Kept;
                }
                match &e.source {
                    Source::Single(r) => {
                        let (scheme, idx) = groups.single(r);
                        Plan::Single { scheme, idx }
                    }
                    Source::Glob(g) => {
                        let (scheme, idx) = groups.glob(g);
                        Plan::Glob { scheme, idx }
                    }
                    Source::Template(t) => {
                        Plan::Template { refs: t.refs().map(|r| groups.single(r)).collect() }
                    }
                }
            })
            .collect();
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
        Self { mapping, settings, already_set, plans, wanted: groups.wanted, backends }
    }

    /// The mapping being resolved.
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// Fetches everything (concurrently, under the start-up deadline) and assembles the result.
    pub async fn resolve(&self, events: &(dyn Fn(Event) + Send + Sync)) -> Resolution {
        let deadline = Deadline::new(self.settings.deadline);
        let fetched = fetch_all(&self.wanted, &self.backends, &deadline, events).await;
        assemble(&self.mapping, &self.plans, &self.wanted, fetched, self.already_set.as_ref())
    }
}

/// Resolves `mapping` once; see [`Resolver`].
pub async fn resolve(
    mapping: Mapping,
    settings: Settings,
    already_set: Option<AlreadySet>,
    events: &(dyn Fn(Event) + Send + Sync),
) -> Resolution {
    Resolver::new(mapping, settings, already_set).resolve(events).await
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

fn status_of(kind: FailureKind) -> Status {
    match kind {
        FailureKind::Missing => Status::Missing,
        FailureKind::Auth => Status::Denied,
        FailureKind::ApprovalPending => Status::Approval,
        FailureKind::Temporary | FailureKind::Config => Status::Error,
    }
}

fn requirement(e: &Entry) -> Requirement {
    if e.default.is_some() {
        Requirement::Default
    } else if e.optional {
        Requirement::Optional
    } else {
        Requirement::Required
    }
}

fn single<'a>(answers: &'a Answers, scheme: &str, idx: usize) -> Result<&'a SecretValue, &'a BackendError> {
    match &answers[scheme] {
        Ok(f) => f.singles[idx].as_ref(),
        Err(e) => Err(e),
    }
}

fn assemble(
    mapping: &Mapping,
    plans: &[Plan],
    wanted: &BTreeMap<&'static str, Wanted>,
    answers: Answers,
    already_set: Option<&AlreadySet>,
) -> Resolution {
    let mut out = Resolution::default();
    for (entry, plan) in mapping.entries.iter().zip(plans) {
        let req = requirement(entry);
        let backend = backend_of(&entry.source);
        let mut row_why = |name: String, reference: String, v: Option<&SecretValue>, status, reason| {
            out.rows.push(Row {
                name,
                reference,
                backend,
                version: v.and_then(|v| v.version),
                tier: v.and_then(|v| v.tier.clone()),
                requirement: req,
                status,
                reason,
            })
        };
        let target = match &entry.target {
            Target::Name(n) => n.as_str().to_owned(),
            Target::Glob(g) => g.to_string(),
        };
        let reference = match entry.origin {
            // `check` must show which variables an inherited value asked for, not the mapping.
            Origin::EnvRef { .. } => format!("{} (inherited reference)", entry.source),
            _ => entry.source.to_string(),
        };
        let fail = |out: &mut Vec<ResolveError>, e: &BackendError, hint: &str| {
            out.push(ResolveError { kind: e.kind, message: format!("{target}: {}{hint}", e.message) })
        };
        match plan {
            Plan::Kept => row_why(
                target.clone(),
                reference,
                None,
                Status::Kept,
                Some("already set (--no-override)".to_owned()),
            ),
            Plan::Single { scheme, idx } => match single(&answers, scheme, *idx) {
                Ok(v) => {
                    row_why(target.clone(), reference, Some(v), Status::Ok, None);
                    out.vars.push(var(entry, &target, v.value.clone()));
                }
                Err(e) if e.kind == FailureKind::Missing && req != Requirement::Required => {
                    let why = if entry.default.is_some() {
                        "not found; default used"
                    } else {
                        "not found; optional"
                    };
                    row_why(target.clone(), reference, None, Status::Missing, Some(why.to_owned()));
                    if let Some(default) = &entry.default {
                        out.vars.push(var(entry, &target, default.clone()));
                    }
                }
                Err(e) => {
                    row_why(target.clone(), reference, None, status_of(e.kind), Some(e.short_reason()));
                    let hint = if e.kind == FailureKind::Missing {
                        "; check the path or mark it optional = true"
                    } else {
                        ""
                    };
                    fail(&mut out.errors, e, hint);
                }
            },
            Plan::Glob { scheme, idx } => {
                let Target::Glob(glob_name) = &entry.target else {
                    unreachable!("glob source has a glob target")
                };
                let matches = match &answers[scheme] {
                    Ok(f) => f.globs[*idx].as_ref(),
                    Err(e) => Err(e),
                };
                match matches {
                    Ok(found) if found.is_empty() => {
                        let why =
                            if entry.optional { "matched nothing; optional" } else { "matched nothing" };
                        row_why(target.clone(), reference, None, Status::Missing, Some(why.to_owned()));
                        if !entry.optional {
                            let pattern = &wanted[scheme].globs[*idx];
                            out.errors.push(ResolveError {
                                kind: FailureKind::Missing,
                                message: format!(
                                    "{target}: {pattern} matched no secret; check the pattern or mark it optional = true"
                                ),
                            });
                        }
                    }
                    Ok(found) => {
                        for (key, v) in found {
                            let name = glob_name.name_for(key);
                            if already_set.is_some_and(|s| s.contains(&name)) {
                                row_why(
                                    name,
                                    format!("{reference} ({key})"),
                                    Some(v),
                                    Status::Kept,
                                    Some("already set (--no-override)".to_owned()),
                                );
                                continue;
                            }
                            row_why(name.clone(), format!("{reference} ({key})"), Some(v), Status::Ok, None);
                            out.vars.push(var(entry, &name, v.value.clone()));
                        }
                    }
                    Err(e) => {
                        row_why(target.clone(), reference, None, status_of(e.kind), Some(e.short_reason()));
                        fail(&mut out.errors, e, "");
                    }
                }
            }
            Plan::Template { refs } => {
                let Source::Template(template) = &entry.source else { unreachable!("template plan") };
                let values: Result<Vec<&SecretValue>, &BackendError> =
                    refs.iter().map(|(s, i)| single(&answers, s, *i)).collect();
                match values {
                    Ok(values) => {
                        let by_ref: HashMap<String, &SecretString> =
                            template.refs().zip(&values).map(|(r, v)| (r.to_string(), &v.value)).collect();
                        let rendered = template.render(|r| by_ref[&r.to_string()]);
                        let version = if values.len() == 1 { values[0].version } else { None };
                        out.rows.push(Row {
                            name: target.clone(),
                            reference,
                            backend,
                            version,
                            tier: values.iter().filter_map(|v| v.tier.clone()).max(),
                            requirement: req,
                            status: Status::Ok,
                            reason: None,
                        });
                        out.vars.push(var(entry, &target, rendered));
                        out.template_parts.extend(values.iter().map(|v| (target.clone(), v.value.clone())));
                    }
                    Err(e) => {
                        row_why(target.clone(), reference, None, status_of(e.kind), Some(e.short_reason()));
                        let hint = if e.kind == FailureKind::Missing {
                            "; templates need every secret they name"
                        } else {
                            ""
                        };
                        fail(&mut out.errors, e, hint);
                    }
                }
            }
        }
    }
    check_collisions(&mut out);
    out
}

fn backend_of(source: &Source) -> &'static str {
    match source {
        Source::Single(r) => scheme(r),
        Source::Glob(g) => glob_scheme(g),
        Source::Template(t) => {
            let (mut ass, mut vault) = (false, false);
            for r in t.refs() {
                match r {
                    Reference::Ass(_) => ass = true,
                    Reference::Vault(_) => vault = true,
                }
            }
            match (ass, vault) {
                (true, true) => "ass+vault",
                (false, true) => "vault",
                _ => "ass",
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
