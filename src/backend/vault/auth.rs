//! Vault/OpenBao credentials: a token (`VAULT_TOKEN`/`BAO_TOKEN`, `--vault-token-file`,
//! `~/.vault-token`) or AppRole (`VAULT_ROLE_ID` plus `VAULT_SECRET_ID` or
//! `VAULT_SECRET_ID_FILE`), and the short-lived child token read with.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::backend::{BackendError, FailureKind};
use crate::inherited::Snapshot;
use agentsecretstore::secret::{SecretString, Token};

/// Variables that carry Vault credentials; scrubbed from the child's environment.
pub const CREDENTIAL_VARS: &[&str] = &[
    "VAULT_TOKEN",
    "BAO_TOKEN",
    "VAULT_ROLE_ID",
    "BAO_ROLE_ID",
    "VAULT_SECRET_ID",
    "BAO_SECRET_ID",
    "VAULT_SECRET_ID_FILE",
    "BAO_SECRET_ID_FILE",
];

/// How vault-run logs in.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A token, from where it was found.
    Token(Token, &'static str),
    /// AppRole login.
    AppRole {
        /// Role id (not secret, but not logged either).
        role_id: String,
        /// Secret id.
        secret_id: SecretString,
    },
}

/// The first of `names` set to more than blanks.
fn first_set<'a>(env: &'a Snapshot, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| env.var(n).filter(|v| !v.trim().is_empty()))
}

fn config(msg: impl Into<String>) -> BackendError {
    BackendError::new(FailureKind::Config, msg)
}

fn read_secret_file(path: &Path, what: &str) -> Result<Zeroizing<String>, BackendError> {
    let bytes = crate::backend::private_file::read(path, what)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| config(format!("{what} file {} is not UTF-8", path.display())))?;
    let trimmed = Zeroizing::new(text.trim().to_owned());
    if trimmed.is_empty() {
        return Err(config(format!("{what} file {} is empty", path.display())));
    }
    Ok(trimmed)
}

/// Finds the credential, first found wins: token variables, the token file, AppRole,
/// `~/.vault-token`; `env` is the environment the run started with.
pub fn discover(token_file: Option<&Path>, env: &Snapshot) -> Result<Credential, BackendError> {
    if let Some(t) = first_set(env, &["VAULT_TOKEN", "BAO_TOKEN"]) {
        return Ok(Credential::Token(Token::new(t.trim()), "VAULT_TOKEN"));
    }
    if let Some(path) = token_file {
        let t = read_secret_file(path, "Vault token")?;
        return Ok(Credential::Token(Token::new(t.as_str()), "--vault-token-file"));
    }
    if let Some(role_id) = first_set(env, &["VAULT_ROLE_ID", "BAO_ROLE_ID"]) {
        let secret_id = match first_set(env, &["VAULT_SECRET_ID", "BAO_SECRET_ID"]) {
            Some(s) => Zeroizing::new(s.to_owned()),
            None => match env.var_os("VAULT_SECRET_ID_FILE").or_else(|| env.var_os("BAO_SECRET_ID_FILE")) {
                Some(p) => read_secret_file(Path::new(p), "AppRole secret id")?,
                None => {
                    return Err(config(
                        "VAULT_ROLE_ID is set but neither VAULT_SECRET_ID nor VAULT_SECRET_ID_FILE is; set one of them",
                    ))
                }
            },
        };
        return Ok(Credential::AppRole {
            role_id: role_id.trim().to_owned(),
            secret_id: SecretString::from(secret_id.trim()),
        });
    }
    if let Some(home) = env.var_os("HOME") {
        let path = PathBuf::from(home).join(".vault-token");
        if path.is_file() {
            let t = read_secret_file(&path, "Vault token")?;
            return Ok(Credential::Token(Token::new(t.as_str()), "~/.vault-token"));
        }
    }
    Err(config(
        "no Vault credentials: set VAULT_TOKEN (or BAO_TOKEN), --vault-token-file, VAULT_ROLE_ID with VAULT_SECRET_ID, or write ~/.vault-token",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The credentials are looked up in the snapshot handed down, never in the process (which
    /// supervise mode wipes): these variables exist only in the snapshot.
    #[test]
    fn credentials_come_from_the_snapshot() {
        let found = discover(None, &Snapshot::of(&[("BAO_TOKEN", " s.from-snapshot ")])).unwrap();
        assert!(matches!(&found, Credential::Token(t, "VAULT_TOKEN") if t.expose() == "s.from-snapshot"));
        let found =
            discover(None, &Snapshot::of(&[("VAULT_ROLE_ID", "role"), ("BAO_SECRET_ID", "sid")])).unwrap();
        assert!(matches!(&found, Credential::AppRole { role_id, secret_id }
            if role_id == "role" && secret_id.expose() == "sid"));
        let half = discover(None, &Snapshot::of(&[("VAULT_ROLE_ID", "role"), ("VAULT_SECRET_ID", "  ")]));
        assert!(half.unwrap_err().to_string().contains("neither VAULT_SECRET_ID nor VAULT_SECRET_ID_FILE"));
        // No HOME in the snapshot: ~/.vault-token is not looked for, whatever the process has.
        let none = discover(None, &Snapshot::of(&[]));
        assert!(none.unwrap_err().to_string().contains("no Vault credentials"));
    }
}
