//! What `vault-run check` prints: a table for people (the mapping file on the first line, a
//! header row, a reason on every row that is not `ok`) or one JSON document for programs.
//! Neither ever holds a value, a length or a fingerprint.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::backend::{FailureKind, Tier};
use crate::mapping::Origin;
use crate::resolve::{EntryOutcome, Found, Outcome, Resolution};

/// How a variable fared.
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
    /// Which backend reads it: `ass`, `vault`, or several (`ass+vault`, a template naming both).
    pub backend: String,
    /// Version, when known.
    pub version: Option<u64>,
    /// Tier, when known.
    pub tier: Option<Tier>,
    /// required / optional / default.
    pub requirement: &'static str,
    /// Outcome.
    pub status: Status,
    /// Why, in a few words, when the status is not `ok` (`not found`, `no agent key`, …).
    pub reason: Option<String>,
}

fn status_of(kind: FailureKind) -> Status {
    match kind {
        FailureKind::Missing => Status::Missing,
        FailureKind::Auth => Status::Denied,
        FailureKind::ApprovalPending => Status::Approval,
        FailureKind::Temporary | FailureKind::Config => Status::Error,
    }
}

/// The rows of a resolution: one per variable, or per entry that set none.
pub fn rows(resolution: &Resolution) -> Vec<Row> {
    resolution.outcomes.iter().flat_map(entry_rows).collect()
}

fn entry_rows(e: &EntryOutcome) -> Vec<Row> {
    let reference = match e.origin {
        // `check` must show which variables an inherited value asked for, not the mapping.
        Origin::EnvRef { .. } => format!("{} (inherited reference)", e.reference),
        _ => e.reference.clone(),
    };
    let row = |name: String, reference: String, found: Option<&Found>, status, reason: Option<&str>| Row {
        name,
        reference,
        backend: e.backend.clone(),
        version: found.and_then(|f| f.version),
        tier: found.and_then(|f| f.tier.clone()),
        requirement: e.requirement,
        status,
        reason: reason.map(str::to_owned),
    };
    let one = |found, status, reason| vec![row(e.target.clone(), reference.clone(), found, status, reason)];
    match &e.outcome {
        Outcome::Kept => one(None, Status::Kept, Some("already set (--no-override)")),
        Outcome::Fetched(found) => one(Some(found), Status::Ok, None),
        Outcome::Missing { default_used: true } => {
            one(None, Status::Missing, Some("not found; default used"))
        }
        Outcome::Missing { default_used: false } => one(None, Status::Missing, Some("not found; optional")),
        Outcome::NothingMatched { optional: true } => {
            one(None, Status::Missing, Some("matched nothing; optional"))
        }
        Outcome::NothingMatched { optional: false } => one(None, Status::Missing, Some("matched nothing")),
        Outcome::Failed(err) => one(None, status_of(err.kind), Some(&err.short_reason())),
        Outcome::Matched(matches) => matches
            .iter()
            .map(|m| {
                let (status, reason) = if m.kept {
                    (Status::Kept, Some("already set (--no-override)"))
                } else {
                    (Status::Ok, None)
                };
                row(m.name.clone(), format!("{reference} ({})", m.key), Some(&m.found), status, reason)
            })
            .collect(),
    }
}

/// `check`'s output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum CheckFormat {
    /// A table with a header row.
    #[default]
    Text,
    /// One JSON document.
    Json,
}

/// A variable set by an `--env-file` literal (not fetched; its value is never shown).
#[derive(Debug, Clone)]
pub struct Literal {
    /// The variable.
    pub name: String,
    /// The env file.
    pub path: PathBuf,
}

/// Everything `check` reports.
pub struct Report<'a> {
    /// The mapping file used.
    pub file: Option<&'a Path>,
    /// One row per variable.
    pub rows: &'a [Row],
    /// Literals from env files.
    pub literals: &'a [Literal],
    /// The first reason the run would not start, and its exit code.
    pub error: Option<(String, u8)>,
}

#[derive(Serialize)]
struct JsonVar<'a> {
    name: &'a str,
    reference: &'a str,
    backend: &'a str,
    version: Option<u64>,
    tier: Option<String>,
    requirement: String,
    status: String,
    reason: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonDoc<'a> {
    file: Option<String>,
    would_start: bool,
    exit_code: u8,
    error: Option<&'a str>,
    variables: Vec<JsonVar<'a>>,
}

impl Report<'_> {
    /// The mapping-file line: `mapping file: PATH` or `mapping file: none`.
    fn file_line(&self) -> String {
        match self.file {
            Some(f) => format!("mapping file: {}", f.display()),
            None => "mapping file: none (-e flags, --env-file and environment references only)".to_owned(),
        }
    }

    /// The table, with a trailing newline.
    pub fn text(&self) -> String {
        let mut cells: Vec<[String; 7]> = vec![[
            "NAME".into(),
            "REFERENCE".into(),
            "VERSION".into(),
            "TIER".into(),
            "REQUIREMENT".into(),
            "STATUS".into(),
            "REASON".into(),
        ]];
        for r in self.rows {
            cells.push([
                r.name.clone(),
                format!("<- {}", r.reference),
                r.version.map_or_else(|| "-".to_owned(), |v| v.to_string()),
                r.tier.as_ref().map_or_else(|| "-".to_owned(), |t| t.to_string()),
                r.requirement.to_string(),
                r.status.to_string(),
                r.reason.clone().unwrap_or_default(),
            ]);
        }
        for l in self.literals {
            cells.push([
                l.name.clone(),
                format!("<- literal in {}", l.path.display()),
                "-".into(),
                "-".into(),
                "-".into(),
                "ok".into(),
                String::new(),
            ]);
        }
        let mut widths = [0usize; 7];
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = self.file_line();
        out.push('\n');
        for row in &cells {
            let mut line = String::new();
            for (i, (c, w)) in row.iter().zip(widths).enumerate() {
                if i + 1 == row.len() {
                    line.push_str(c);
                } else {
                    line.push_str(&format!("{c:<w$}  "));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// The JSON document, with a trailing newline.
    pub fn json(&self) -> String {
        let mut variables: Vec<JsonVar<'_>> = self
            .rows
            .iter()
            .map(|r| JsonVar {
                name: &r.name,
                reference: &r.reference,
                backend: &r.backend,
                version: r.version,
                tier: r.tier.as_ref().map(|t| t.to_string()),
                requirement: r.requirement.to_owned(),
                status: r.status.to_string(),
                reason: r.reason.as_deref(),
            })
            .collect();
        variables.extend(self.literals.iter().map(|l| JsonVar {
            name: &l.name,
            reference: "",
            backend: "literal",
            version: None,
            tier: None,
            requirement: "required".into(),
            status: "ok".into(),
            reason: None,
        }));
        let doc = JsonDoc {
            file: self.file.map(|f| f.display().to_string()),
            would_start: self.error.is_none(),
            exit_code: self.error.as_ref().map_or(0, |e| e.1),
            error: self.error.as_ref().map(|e| e.0.as_str()),
            variables,
        };
        let mut s = serde_json::to_string_pretty(&doc).expect("serializing plain data cannot fail");
        s.push('\n');
        s
    }
}
