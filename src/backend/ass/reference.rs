//! `ass://PATH` and plain paths: one secret, or a pattern over a namespace.

use super::glob::{is_pattern, AssGlob};
use crate::backend::reference::{ReferenceError, Syntax};
use agentsecretstore::path::SecretPath;

/// How the mapping checks this backend's references.
pub const SYNTAX: Syntax = Syntax { single, glob };

fn single(whole: &str, rest: &str) -> Result<String, ReferenceError> {
    if rest.contains('*') {
        return Err(ReferenceError::Pattern(whole.to_owned()));
    }
    Ok(path(rest)?.to_string())
}

fn glob(whole: &str, rest: &str) -> Result<String, ReferenceError> {
    if !is_pattern(rest) {
        return Err(ReferenceError::NotPattern(whole.to_owned()));
    }
    Ok(AssGlob::new(rest)?.pattern().to_owned())
}

/// The secret a checked single reference names.
pub fn path(rest: &str) -> Result<SecretPath, ReferenceError> {
    Ok(rest.parse()?)
}
