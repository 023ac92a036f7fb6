//! `secrets list [NS]`: path, version, type, tier, updated, expired, as a table or JSON. Values
//! are never listed (the store does not send them, and nothing here would print them).

use std::fmt::Write as _;
use std::io::Write as _;

use serde::Serialize;

use super::args::ListFormat;
use super::error::SecretsError;
use super::store::Store;
use crate::settings::Flags;
use agentsecretstore::wire::SecretListResponse;

/// One row: what the store says about a secret, a missing field shown as unknown.
#[derive(Debug, Serialize)]
struct Row {
    path: String,
    namespace: String,
    key: String,
    /// `None` when the server did not say.
    version: Option<u64>,
    secret_type: String,
    access_tier: String,
    updated_at: Option<String>,
    expired: bool,
}

/// The JSON document.
#[derive(Debug, Serialize)]
struct Listing<'a> {
    namespace: &'a str,
    items: &'a [Row],
    total: usize,
}

/// Runs the listing.
pub fn run(flags: &Flags, namespace: Option<&str>, format: ListFormat) -> Result<(), SecretsError> {
    let Some(namespace) = namespace.map(|n| n.trim_matches('/')).filter(|n| !n.is_empty()) else {
        return Err(SecretsError::Usage(
            "give the namespace to list, like `vault-run secrets list myagent` (it lists everything below it too)"
                .into(),
        ));
    };
    let store = Store::connect(flags)?;
    let listing = store.list(namespace)?;
    let rows = rows(listing);
    let text = match format {
        ListFormat::Text => table(namespace, &rows),
        ListFormat::Json => {
            let doc = Listing { namespace, items: &rows, total: rows.len() };
            let mut s =
                serde_json::to_string_pretty(&doc).map_err(|e| SecretsError::Internal(e.to_string()))?;
            s.push('\n');
            s
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(SecretsError::Output)
}

fn rows(listing: SecretListResponse) -> Vec<Row> {
    let mut rows: Vec<Row> = listing
        .items
        .into_iter()
        .map(|i| Row {
            path: format!("{}/{}", i.namespace, i.key),
            version: (i.version > 0).then_some(i.version),
            secret_type: i.secret_type.to_string(),
            access_tier: i.access_tier.to_string(),
            updated_at: i.updated_at.or(i.created_at).map(|t| t.to_string()),
            expired: i.expired,
            namespace: i.namespace,
            key: i.key,
        })
        .collect();
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    rows
}

/// `2026-12-03T16:58:13.340930546Z` as `2026-12-03T16:58:13Z`: the table is for people.
fn to_the_second(t: &str) -> String {
    match (t.find('.'), t.rfind(['Z', '+', '-'])) {
        (Some(dot), Some(zone)) if zone > dot => format!("{}{}", &t[..dot], &t[zone..]),
        _ => t.to_owned(),
    }
}

/// The table: a header row, one line per secret, columns padded to their widest cell.
fn table(namespace: &str, rows: &[Row]) -> String {
    if rows.is_empty() {
        return format!("no secrets at or below {namespace}\n");
    }
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.path.clone(),
                r.version.map_or("-".into(), |v| v.to_string()),
                r.secret_type.clone(),
                r.access_tier.clone(),
                r.updated_at.as_deref().map_or_else(|| "-".into(), to_the_second),
                if r.expired { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    let header = ["PATH", "VERSION", "TYPE", "TIER", "UPDATED", "EXPIRED"];
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cols: &[&str]| {
        let mut l = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i + 1 == cols.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &cells {
        line(&row.each_ref().map(String::as_str));
    }
    out
}
