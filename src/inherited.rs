//! The process environment, captured once at the start of a run and passed down from there:
//! no stage below `app` reads `std::env` for a setting or a credential. Imports nothing of the
//! crate, so every layer (backends included) may take it.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::Arc;

use zeroize::Zeroizing;

/// One inherited variable: its name, and its value in a buffer that is wiped when dropped. Any
/// inherited value may be a credential (`ASS_AGENT_KEY`, `VAULT_TOKEN`, `VAULT_SECRET_ID`, or
/// the caller's own secrets), so none is kept in a plain `OsString`.
pub type InheritedVar = (OsString, Zeroizing<Vec<u8>>);

/// vault-run's environment, taken once per run: each value's buffer moves (is not copied) into
/// a wiping one.
pub fn capture() -> Vec<InheritedVar> {
    std::env::vars_os().map(|(k, v)| (k, Zeroizing::new(v.into_vec()))).collect()
}

/// The value of `name` in the snapshot, as the OS gave it.
pub fn var_os<'a>(inherited: &'a [InheritedVar], name: &str) -> Option<&'a OsStr> {
    inherited.iter().find(|(k, _)| k == name).map(|(_, v)| OsStr::from_bytes(v))
}

/// The value of `name` in the snapshot, when it is UTF-8.
pub fn var<'a>(inherited: &'a [InheritedVar], name: &str) -> Option<&'a str> {
    inherited.iter().find(|(k, _)| k == name).and_then(|(_, v)| std::str::from_utf8(v).ok())
}

/// The environment vault-run started with, shared read-only by the stages that need a
/// variable (backends' addresses and credentials): cheap to clone, never printed.
#[derive(Clone, Default)]
pub struct Snapshot(Arc<[InheritedVar]>);

impl Snapshot {
    /// A snapshot of these variables.
    pub fn new(vars: &[InheritedVar]) -> Self {
        Self(vars.iter().cloned().collect())
    }

    /// A snapshot of these UTF-8 variables (for tests).
    #[cfg(test)]
    pub(crate) fn of(vars: &[(&str, &str)]) -> Self {
        let vars: Vec<InheritedVar> =
            vars.iter().map(|(k, v)| (OsString::from(k), Zeroizing::new(v.as_bytes().to_vec()))).collect();
        Self::new(&vars)
    }

    /// The value of `name`, as the OS gave it.
    pub fn var_os(&self, name: &str) -> Option<&OsStr> {
        var_os(&self.0, name)
    }

    /// The value of `name`, when it is UTF-8.
    pub fn var(&self, name: &str) -> Option<&str> {
        var(&self.0, name)
    }
}

/// Names only: any value may be a credential.
impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(k, _)| k)).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_by_exact_name() {
        let env: Vec<InheritedVar> = vec![
            (OsString::from("HOME"), Zeroizing::new(b"/home/a".to_vec())),
            (OsString::from("BAD"), Zeroizing::new(vec![0xff])),
        ];
        assert_eq!(var(&env, "HOME"), Some("/home/a"));
        assert_eq!(var(&env, "HOM"), None);
        assert_eq!(var(&env, "BAD"), None);
        assert_eq!(var_os(&env, "BAD").map(OsStr::as_bytes), Some(&[0xff][..]));
        let snapshot = Snapshot::new(&env);
        assert_eq!(snapshot.var("HOME"), Some("/home/a"));
        assert_eq!(format!("{snapshot:?}"), r#"["HOME", "BAD"]"#);
    }
}
