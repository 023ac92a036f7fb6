//! The file backend: `file:///ABSOLUTE/PATH` reads one secret from a file only the user (or
//! root) owns and nobody else can read, such as a mounted container secret.

use std::collections::HashMap;
use std::path::Path;

use super::reference::{ReferenceError, Syntax};
use super::registry::Registration;
use super::{
    Backend, BackendError, FailureKind, FetchContext, FetchFuture, Fetched, Options, SecretValue, Wanted,
};
use agentsecretstore::secret::SecretString;

/// `file:///PATH`: no options, no credentials, and never an environment reference (a
/// `file://` value is an ordinary URL far too often).
pub const REGISTRATION: Registration = Registration {
    scheme: "file",
    syntax: SYNTAX,
    make: FileBackend::boxed,
    credential_vars: CREDENTIAL_VARS,
    options: &[],
    example: None,
    glob_example: None,
    env_refs: false,
};

/// How the mapping checks `file://` references.
pub const SYNTAX: Syntax = Syntax { single, glob };

/// No credentials: the file's permissions are the access control.
pub const CREDENTIAL_VARS: &[&str] = &[];

fn single(whole: &str, rest: &str) -> Result<String, ReferenceError> {
    let invalid = |reason| Err(ReferenceError::Invalid { reference: whole.to_owned(), reason });
    if rest.contains('*') {
        return Err(ReferenceError::Pattern(whole.to_owned()));
    }
    if !rest.starts_with('/') {
        return invalid("needs an absolute path, like file:///run/secrets/db_password");
    }
    if rest.chars().any(char::is_control) {
        return invalid("contains a control character");
    }
    if rest.split('/').any(|s| s == "." || s == "..") {
        return invalid("has a '.' or '..' segment; name the file without them");
    }
    Ok(rest.to_owned())
}

fn glob(whole: &str, _rest: &str) -> Result<String, ReferenceError> {
    Err(ReferenceError::Invalid {
        reference: whole.to_owned(),
        reason: "is a file; a glob entry cannot use file://, map each file to its own variable",
    })
}

/// Reads secrets from private files.
pub struct FileBackend;

impl FileBackend {
    /// The backend, boxed for the registry; it needs no settings.
    pub fn boxed(_options: &Options) -> Result<Box<dyn Backend>, BackendError> {
        Ok(Box::new(Self))
    }
}

/// Reads `path`; one trailing newline (as `echo` and editors leave it) is not part of the value.
fn read(path: &str) -> Result<SecretValue, BackendError> {
    let shown = format!("file://{path}");
    if std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        return Err(BackendError::new(FailureKind::Missing, format!("{shown}: no such file")));
    }
    let mut bytes = super::private_file::read(Path::new(path), "secret")?;
    for end in ["\n", "\r"] {
        if bytes.ends_with(end.as_bytes()) {
            bytes.pop();
        }
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        BackendError::new(
            FailureKind::Config,
            format!("{shown} is not UTF-8 text; an environment value must be"),
        )
    })?;
    Ok(SecretValue { value: SecretString::from(text.to_owned()), version: None, tier: None })
}

impl Backend for FileBackend {
    fn fetch<'a>(&'a self, wanted: &'a Wanted, _ctx: &'a FetchContext<'a>) -> FetchFuture<'a> {
        Box::pin(async move {
            let singles: HashMap<_, _> = wanted.singles.iter().map(|r| (r.clone(), read(r.rest()))).collect();
            let globs = wanted
                .globs
                .iter()
                .map(|g| {
                    (
                        g.clone(),
                        Err(BackendError::new(FailureKind::Config, format!("{g}: not a file:// reference"))),
                    )
                })
                .collect();
            Ok(Fetched { singles, globs })
        })
    }
}
