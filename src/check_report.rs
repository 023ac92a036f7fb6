//! What `vault-run check` prints: a table for people (the mapping file on the first line, a
//! header row, a reason on every row that is not `ok`) or one JSON document for programs.
//! Neither ever holds a value, a length or a fingerprint.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::resolve::Row;

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
                backend: r.backend,
                version: r.version,
                tier: r.tier.as_ref().map(|t| t.to_string()),
                requirement: r.requirement.to_string(),
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
