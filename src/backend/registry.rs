//! What a backend declares about itself, and the look-ups the rest of vault-run makes in
//! [`REGISTRY`]: its scheme and reference syntax, its options (flag,
//! environment variable, `[store]` key) and the variables holding its credentials. The command
//! line, the `[store]` table, environment and `--env-file` references, the child's environment,
//! supervise mode and the reference messages all read these declarations, so that none of them
//! names a backend and adding one is a folder plus one line.

use std::ffi::{OsStr, OsString};
use std::path::Path;

use super::reference::Syntax;
use super::{Backend, BackendError, Options, REGISTRY};

/// Builds a backend from its options.
pub type Constructor = fn(&Options) -> Result<Box<dyn Backend>, BackendError>;

/// One backend, as it declares itself.
pub struct Registration {
    /// The scheme its references use (`ass`, `vault`, `file`).
    pub scheme: &'static str,
    /// Checks its references when the mapping is built.
    pub syntax: Syntax,
    /// Builds it (only when the mapping uses the scheme).
    pub make: Constructor,
    /// Environment variables holding its credentials: removed from the child's environment
    /// (unless `--keep-agent-key`) and from vault-run's own in supervise mode.
    pub credential_vars: &'static [&'static str],
    /// Its own options; every one becomes a flag (and maybe an environment variable and a
    /// `[store]` key), and the backend reads the values from [`Options::backend`].
    pub options: &'static [OptionSpec],
    /// How one of its references looks, for the hints of reference errors
    /// (`vault://MOUNT/PATH#FIELD`); `None` leaves it out of them.
    pub example: Option<&'static str>,
    /// How one of its glob patterns looks, for the same hints.
    pub glob_example: Option<&'static str>,
    /// Whether an inherited variable or an `--env-file` value that starts with `SCHEME://` is
    /// a reference to fetch. `file://` is not: such values are ordinary URLs far too often.
    pub env_refs: bool,
}

/// One option of a backend.
pub struct OptionSpec {
    /// The long flag without `--` (`base-url`); also the option's name.
    pub flag: &'static str,
    /// The flag's value in `--help` (`URL`).
    pub value_name: &'static str,
    /// The flag's `--help` text.
    pub help: &'static str,
    /// The environment variable that gives it when the flag does not.
    pub env: Option<&'static str>,
    /// The `[store]` key that gives it when neither does.
    pub store: Option<StoreKey>,
    /// What the value is.
    pub kind: ValueKind,
}

/// A backend option's key in the mapping file's `[store]` table.
pub struct StoreKey {
    /// The key (`base_url`).
    pub key: &'static str,
    /// What a value must look like, for the message when it does not (`a string like "…"`).
    pub expected: &'static str,
    /// Set when the value says where a credential is sent: a mapping file alone may then name
    /// only this default, since a repository can ship a mapping and harvest the credential of
    /// whoever runs vault-run in it. The flag or environment variable (set by whoever supplies
    /// the credential) wins.
    pub credential_destination: Option<Destination>,
}

/// Where a credential goes by default, and which credential, for messages.
pub struct Destination {
    /// The only value a mapping file may name by itself.
    pub default: &'static str,
    /// The credential, as a message names it (`the agent key`).
    pub credential: &'static str,
}

/// What a backend option holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// UTF-8 text (a URL).
    Text,
    /// A file name, any bytes.
    Path,
}

/// Values of backend options, each under the option that declared it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptionValues(Vec<(&'static str, OsString)>);

impl OptionValues {
    /// Sets `spec` to `value`, replacing any earlier value.
    pub fn set(&mut self, spec: &'static OptionSpec, value: OsString) {
        self.0.retain(|(flag, _)| *flag != spec.flag);
        self.0.push((spec.flag, value));
    }

    /// The value of `spec`, when given.
    pub fn get(&self, spec: &OptionSpec) -> Option<&OsStr> {
        self.0.iter().find(|(flag, _)| *flag == spec.flag).map(|(_, v)| v.as_os_str())
    }

    /// The value of a [`ValueKind::Text`] option.
    pub fn text(&self, spec: &OptionSpec) -> Option<&str> {
        self.get(spec).and_then(OsStr::to_str)
    }

    /// The value of a [`ValueKind::Path`] option.
    pub fn path(&self, spec: &OptionSpec) -> Option<&Path> {
        self.get(spec).map(Path::new)
    }
}

/// The registration of a scheme, matched without regard to case (`ASS://` is `ass://`).
pub fn registration(scheme: &str) -> Option<&'static Registration> {
    REGISTRY.iter().find(|r| r.scheme.eq_ignore_ascii_case(scheme))
}

/// The constructor for a scheme.
pub fn constructor(scheme: &str) -> Option<Constructor> {
    registration(scheme).map(|r| r.make)
}

/// Every backend's credential variables.
pub fn credential_vars() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().flat_map(|r| r.credential_vars.iter().copied())
}

/// Whether `name` is one of a backend's credential variables.
pub fn is_credential_var(name: &[u8]) -> bool {
    credential_vars().any(|c| c.as_bytes() == name)
}

/// Every backend's options, in registry order.
pub fn options() -> impl Iterator<Item = &'static OptionSpec> {
    REGISTRY.iter().flat_map(|r| r.options.iter())
}

/// Whether an inherited or `--env-file` value is a reference to fetch: it starts with the
/// `SCHEME://` of a backend that takes such references (see [`Registration::env_refs`]).
pub fn is_env_reference(value: &[u8]) -> bool {
    env_ref_schemes().any(|s| value.starts_with(s.as_bytes()) && value[s.len()..].starts_with(b"://"))
}

fn env_ref_schemes() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().filter(|r| r.env_refs).map(|r| r.scheme)
}

/// The schemes environment references may use, for messages: `ass:// or vault://`.
pub fn env_ref_list() -> String {
    super::reference::or_list(env_ref_schemes().map(|s| format!("{s}://")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_references_need_a_registered_scheme() {
        assert!(is_env_reference(b"ass://a/b/C"));
        assert!(is_env_reference(b"vault://kv/a#b"));
        // Refused later by the backend's syntax, with a message, rather than passed on.
        assert!(is_env_reference(b"ass://"));
        assert!(!is_env_reference(b"ass:/a"));
        assert!(!is_env_reference(b"file:///etc/hosts"));
        assert!(!is_env_reference(b"https://example.com"));
        assert!(!is_env_reference(b"ASS_AGENT_KEY"));
    }

    #[test]
    fn flags_env_vars_and_store_keys_are_unique() {
        let specs: Vec<_> = options().collect();
        for (i, a) in specs.iter().enumerate() {
            for b in &specs[i + 1..] {
                assert_ne!(a.flag, b.flag);
                assert!(a.env.is_none() || a.env != b.env);
                assert!(
                    a.store.is_none() || a.store.as_ref().map(|s| s.key) != b.store.as_ref().map(|s| s.key)
                );
            }
        }
    }
}
