//! `vault://MOUNT/PATH#FIELD` (one field of a KV secret) and `vault://MOUNT/PATH#*` (every field).

use crate::backend::reference::{ReferenceError, Syntax};

/// How the mapping checks this backend's references.
pub const SYNTAX: Syntax = Syntax { single, glob };

/// A field of a Vault/OpenBao KV secret: `vault://secret/app/db#password`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VaultRef {
    /// Everything between `vault://` and `#`, mount included: the backend finds the mount.
    pub path: String,
    /// The field.
    pub field: String,
}

fn split(rest: &str) -> (&str, Option<&str>) {
    match rest.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (rest, None),
    }
}

/// Checks the path part: `MOUNT/PATH`, no empty segment, no `*`.
fn check_path(whole: &str, path: &str) -> Result<(), ReferenceError> {
    let err = |reason| Err(ReferenceError::Invalid { reference: whole.to_owned(), reason });
    if path.contains('*') {
        return err("has '*' in its path; only #* (every field of one secret) is supported");
    }
    if path.chars().any(char::is_control) {
        return err("contains a control character");
    }
    // URLs resolve `.` and `..`: the token would be sent to another API path than the KV read.
    if path.split('/').any(|p| p == "." || p == "..") {
        return err(
            "has a '.' or '..' segment, which would reach another API path; name the secret without them",
        );
    }
    if path.split('/').count() < 2 || path.split('/').any(str::is_empty) {
        return err(
            "needs a path of the form MOUNT/PATH without empty segments, like vault://secret/app/db#password",
        );
    }
    Ok(())
}

/// Parses the rest of a single reference (`secret/app/db#password`); `whole` is for messages.
pub fn parse(whole: &str, rest: &str) -> Result<VaultRef, ReferenceError> {
    let (path, field) = split(rest);
    check_path(whole, path)?;
    let reason = match field {
        Some("*") => return Err(ReferenceError::Pattern(whole.to_owned())),
        Some(f) if !f.is_empty() && !f.chars().any(char::is_control) => {
            return Ok(VaultRef { path: path.to_owned(), field: f.to_owned() })
        }
        Some(f) if !f.is_empty() => "has a control character in its field",
        _ => "needs a #FIELD naming the field to read, like vault://secret/app/db#password",
    };
    Err(ReferenceError::Invalid { reference: whole.to_owned(), reason })
}

/// Parses the rest of a glob (`secret/app/db#*`) into the secret's path.
pub fn parse_fields<'a>(whole: &str, rest: &'a str) -> Result<&'a str, ReferenceError> {
    match split(rest) {
        (path, Some("*")) => {
            check_path(whole, path)?;
            Ok(path)
        }
        _ => Err(ReferenceError::NotPattern(whole.to_owned())),
    }
}

fn single(whole: &str, rest: &str) -> Result<String, ReferenceError> {
    let v = parse(whole, rest)?;
    Ok(format!("{}#{}", v.path, v.field))
}

fn glob(whole: &str, rest: &str) -> Result<String, ReferenceError> {
    Ok(format!("{}#*", parse_fields(whole, rest)?))
}
