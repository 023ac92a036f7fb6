//! Variable names: the validated [`EnvName`], glob keys ([`GlobName`]) and [`check_name`], which
//! refuses names that make a loader, interpreter or shell run code chosen by whoever controls
//! the value.

use std::fmt;
use std::str::FromStr;

/// Why a variable name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("{0:?} is not a valid variable name; use letters, digits and '_', not starting with a digit")]
    Invalid(String),
    /// A glob key without exactly one `*`, or with an invalid name around it.
    #[error(
        "{0:?} is not a valid glob name; it needs exactly one '*' with letters, digits and '_' around it, like STRIPE_* or *_URL"
    )]
    InvalidGlob(String),
    /// A name on the dangerous list, not allowed with `--allow-name`.
    #[error("refusing to set {name}: {reason}; pass --allow-name {name} if you really mean it")]
    Dangerous {
        /// The variable.
        name: String,
        /// What it would let a value do.
        reason: &'static str,
    },
}

const LOADER: &str = "it makes the dynamic loader or C library load code or files it names";
const INTERPRETER: &str = "it makes an interpreter load or run code it names";
const SHELL: &str = "it makes shells run code or changes how they parse commands";
const COMMAND: &str = "it names a command that programs run";
const TRUST: &str = "it makes programs trust another certificate authority or load a TLS configuration";
const TRAFFIC: &str = "it sends the program's network traffic through another host";

// THE dangerous-names list: DANGEROUS_PREFIXES, DANGEROUS_NAMES and DANGEROUS_ANY_CASE below are
// the one place it is kept; README and SECURITY.md point here. A name belongs on it when a value
// in it makes the child load code, run a command, trust another CA, or send its traffic
// elsewhere: whoever controls a secret's value (or a mapping) must not get that.

/// Prefixes refused: every `LD_*` (glibc, musl), `DYLD_*` (macOS), `MALLOC_*` (glibc allocator
/// tunables) and `GIT_CONFIG*` (`GIT_CONFIG_COUNT`/`KEY_n`/`VALUE_n` set any git option,
/// `core.sshCommand` included).
const DANGEROUS_PREFIXES: &[(&str, &str)] = &[
    ("LD_", LOADER),
    ("DYLD_", LOADER),
    ("MALLOC_", LOADER),
    ("GIT_CONFIG", COMMAND),
    ("LUA_INIT", INTERPRETER),
];

/// Exact names refused. Other `GIT_*` variables stay allowed; only those that run a command are here.
const DANGEROUS_NAMES: &[(&str, &str)] = &[
    ("GLIBC_TUNABLES", LOADER),
    ("GCONV_PATH", LOADER),
    ("LOCPATH", LOADER),
    ("NLSPATH", LOADER),
    ("HOSTALIASES", LOADER),
    ("RESOLV_HOST_CONF", LOADER),
    ("PATH", "it decides which program runs for every command name"),
    ("NODE_OPTIONS", INTERPRETER),
    ("NODE_PATH", INTERPRETER),
    ("PYTHONPATH", INTERPRETER),
    ("PYTHONSTARTUP", INTERPRETER),
    ("PYTHONHOME", INTERPRETER),
    ("PYTHONINSPECT", INTERPRETER),
    ("PYTHONBREAKPOINT", INTERPRETER),
    ("PERL5OPT", INTERPRETER),
    ("PERL5LIB", INTERPRETER),
    ("PERLLIB", INTERPRETER),
    ("PERL5DB", INTERPRETER),
    ("RUBYOPT", INTERPRETER),
    ("RUBYLIB", INTERPRETER),
    ("JAVA_TOOL_OPTIONS", INTERPRETER),
    ("_JAVA_OPTIONS", INTERPRETER),
    ("JDK_JAVA_OPTIONS", INTERPRETER),
    ("CLASSPATH", INTERPRETER),
    ("DOTNET_STARTUP_HOOKS", INTERPRETER),
    ("PHPRC", INTERPRETER),
    ("PHP_INI_SCAN_DIR", INTERPRETER),
    ("ERL_AFLAGS", INTERPRETER),
    ("ERL_FLAGS", INTERPRETER),
    ("ERL_ZFLAGS", INTERPRETER),
    ("BASH_ENV", SHELL),
    ("ENV", SHELL),
    ("SHELLOPTS", SHELL),
    ("BASHOPTS", SHELL),
    ("PS4", SHELL),
    ("IFS", SHELL),
    ("PROMPT_COMMAND", SHELL),
    ("ZDOTDIR", SHELL),
    ("GIT_SSH", COMMAND),
    ("GIT_SSH_COMMAND", COMMAND),
    ("GIT_ASKPASS", COMMAND),
    ("GIT_PROXY_COMMAND", COMMAND),
    ("GIT_EXTERNAL_DIFF", COMMAND),
    ("GIT_EXEC_PATH", COMMAND),
    ("SSH_ASKPASS", COMMAND),
    ("GIT_PAGER", COMMAND),
    ("PAGER", COMMAND),
    ("LESSOPEN", COMMAND),
    ("LESSCLOSE", COMMAND),
    ("PYTHONWARNINGS", INTERPRETER),
    ("OPENSSL_CONF", TRUST),
    ("OPENSSL_ENGINES", LOADER),
    ("OPENSSL_MODULES", LOADER),
    ("SSL_CERT_FILE", TRUST),
    ("SSL_CERT_DIR", TRUST),
    ("NODE_EXTRA_CA_CERTS", TRUST),
    ("REQUESTS_CA_BUNDLE", TRUST),
    ("CURL_CA_BUNDLE", TRUST),
    ("GIT_SSL_CAINFO", TRUST),
    ("GIT_SSL_CAPATH", TRUST),
    ("NODE_TLS_REJECT_UNAUTHORIZED", TRUST),
    ("GIT_SSL_NO_VERIFY", TRUST),
    ("PYTHONHTTPSVERIFY", TRUST),
    (
        "SSLKEYLOGFILE",
        "it makes TLS libraries write their session keys to a file, so the traffic can be read",
    ),
    ("EDITOR", COMMAND),
    ("VISUAL", COMMAND),
    ("GIT_EDITOR", COMMAND),
    ("GIT_SEQUENCE_EDITOR", COMMAND),
    ("SUDO_ASKPASS", COMMAND),
    ("MANPAGER", COMMAND),
    ("SYSTEMD_PAGER", COMMAND),
    ("BROWSER", COMMAND),
];

/// Names refused in any case: programs read both `HTTPS_PROXY` and `https_proxy`.
const DANGEROUS_ANY_CASE: &[(&str, &str)] =
    &[("HTTP_PROXY", TRAFFIC), ("HTTPS_PROXY", TRAFFIC), ("ALL_PROXY", TRAFFIC), ("FTP_PROXY", TRAFFIC)];

/// Checks that `name` is a valid variable name and not a dangerous one, unless `allow` (the
/// `--allow-name` values) holds it exactly.
///
/// Refused: the names in this module's list (`DANGEROUS_PREFIXES`, `DANGEROUS_NAMES`,
/// `DANGEROUS_ANY_CASE`), whose values make a loader, interpreter or shell run code, make a
/// program trust another certificate authority, or send its traffic elsewhere: every `LD_*`,
/// `DYLD_*`, `MALLOC_*`, `GIT_CONFIG*`, `LUA_INIT*`; `PATH`, `NODE_OPTIONS`, `PYTHONPATH`,
/// `PERL5OPT`, `JAVA_TOOL_OPTIONS`, `BASH_ENV`, `GIT_SSH_COMMAND`, `OPENSSL_CONF`,
/// `SSL_CERT_FILE`, `NODE_EXTRA_CA_CERTS`, `HTTPS_PROXY` (any case) and the others listed there.
///
/// Names are case-sensitive, as the environment is (`path` is allowed), except the proxy
/// variables, which programs read in either case.
pub fn check_name(name: &str, allow: &[String]) -> Result<(), NameError> {
    if !is_name(name) {
        return Err(NameError::Invalid(name.to_owned()));
    }
    if allow.iter().any(|a| a == name) {
        return Ok(());
    }
    match dangerous(name) {
        Some(reason) => Err(NameError::Dangerous { name: name.to_owned(), reason }),
        None => Ok(()),
    }
}

/// Why `name` is dangerous, if it is.
fn dangerous(name: &str) -> Option<&'static str> {
    let exact = DANGEROUS_NAMES.iter().find(|(n, _)| *n == name);
    let prefix = || DANGEROUS_PREFIXES.iter().find(|(p, _)| name.starts_with(p));
    let any_case = || DANGEROUS_ANY_CASE.iter().find(|(n, _)| n.eq_ignore_ascii_case(name));
    exact.or_else(prefix).or_else(any_case).map(|(_, reason)| *reason)
}

/// Whether `s` matches `[A-Za-z_][A-Za-z0-9_]*`.
fn is_name(s: &str) -> bool {
    match s.as_bytes() {
        [first, rest @ ..] => (first.is_ascii_alphabetic() || *first == b'_') && is_fragment(rest),
        [] => false,
    }
}

/// Whether every byte is `[A-Za-z0-9_]` (the part of a glob key after `*` may start with a digit).
fn is_fragment(s: &[u8]) -> bool {
    s.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// A valid variable name (`[A-Za-z_][A-Za-z0-9_]*`). Dangerous names are checked separately by
/// [`check_name`], because `--allow-name` is not known when the mapping is parsed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EnvName(String);

impl EnvName {
    /// Checks the syntax of `name`.
    pub fn new(name: &str) -> Result<Self, NameError> {
        if is_name(name) {
            Ok(Self(name.to_owned()))
        } else {
            Err(NameError::Invalid(name.to_owned()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for EnvName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for EnvName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A glob entry's key (`STRIPE_*`, `*_URL`): each matching secret becomes the variable named by
/// `prefix + key + suffix`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GlobName {
    /// The part before `*`: empty, or a valid name start.
    pub prefix: String,
    /// The part after `*`: letters, digits and `_`.
    pub suffix: String,
}

impl GlobName {
    /// Parses a key with exactly one `*`.
    pub fn new(key: &str) -> Result<Self, NameError> {
        let bad = || NameError::InvalidGlob(key.to_owned());
        let (prefix, suffix) = key.split_once('*').ok_or_else(bad)?;
        let prefix_ok = prefix.is_empty() || is_name(prefix);
        if suffix.contains('*') || !prefix_ok || !is_fragment(suffix.as_bytes()) {
            return Err(bad());
        }
        Ok(Self { prefix: prefix.to_owned(), suffix: suffix.to_owned() })
    }

    /// The variable for a matching secret's key (or Vault field name). The result is not
    /// checked here: a key like `api-key` yields an invalid name that [`check_name`] refuses.
    pub fn name_for(&self, key: &str) -> String {
        format!("{}{key}{}", self.prefix, self.suffix)
    }
}

impl fmt::Display for GlobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}*{}", self.prefix, self.suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_names() {
        for ok in ["A", "_", "_A1", "gemini_api_key", "X9"] {
            assert!(EnvName::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A.B", "A B", "Ä", "A=B", "A*"] {
            assert_eq!(EnvName::new(bad), Err(NameError::Invalid(bad.to_owned())), "{bad}");
        }
        assert_eq!(
            NameError::Invalid("1A".into()).to_string(),
            "\"1A\" is not a valid variable name; use letters, digits and '_', not starting with a digit"
        );
    }

    #[test]
    fn dangerous_names_are_refused_unless_allowed() {
        for name in
            ["LD_PRELOAD", "LD_LIBRARY_PATH", "LD_ANYTHING", "DYLD_INSERT_LIBRARIES", "MALLOC_ARENA_MAX"]
        {
            assert!(matches!(check_name(name, &[]), Err(NameError::Dangerous { .. })), "{name}");
        }
        for name in ["NODE_OPTIONS", "PYTHONPATH", "BASH_ENV", "ENV", "PATH", "IFS", "PS4", "_JAVA_OPTIONS"] {
            assert!(matches!(check_name(name, &[]), Err(NameError::Dangerous { .. })), "{name}");
        }
        for name in
            ["GIT_SSH_COMMAND", "GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GLIBC_TUNABLES", "GCONV_PATH"]
        {
            assert!(matches!(check_name(name, &[]), Err(NameError::Dangerous { .. })), "{name}");
        }
        for name in ["GIT_AUTHOR_NAME", "path", "LD", "ENVIRONMENT", "PATHS", "GEMINI_API_KEY", "NODE_ENV"] {
            assert_eq!(check_name(name, &[]), Ok(()), "{name}");
        }
        assert_eq!(check_name("LD_PRELOAD", &["LD_PRELOAD".to_owned()]), Ok(()));
        assert!(check_name("LD_AUDIT", &["LD_PRELOAD".to_owned()]).is_err());
        // Allowing does not make an invalid name valid.
        assert!(matches!(check_name("A-B", &["A-B".to_owned()]), Err(NameError::Invalid(_))));
    }

    #[test]
    fn dangerous_message_says_how_to_allow() {
        let e = check_name("LD_PRELOAD", &[]).unwrap_err().to_string();
        assert_eq!(
            e,
            "refusing to set LD_PRELOAD: it makes the dynamic loader or C library load code or files it names; \
             pass --allow-name LD_PRELOAD if you really mean it"
        );
    }

    #[test]
    fn glob_names() {
        let g = GlobName::new("STRIPE_*").unwrap();
        assert_eq!((g.prefix.as_str(), g.suffix.as_str()), ("STRIPE_", ""));
        assert_eq!(g.name_for("SECRET_KEY"), "STRIPE_SECRET_KEY");
        assert_eq!(g.to_string(), "STRIPE_*");
        let g = GlobName::new("*_URL").unwrap();
        assert_eq!(g.name_for("DB"), "DB_URL");
        let g = GlobName::new("*").unwrap();
        assert_eq!(g.name_for("X"), "X");
        assert_eq!(GlobName::new("A_*_2").unwrap().name_for("B"), "A_B_2");
        for bad in ["A", "A_**", "*A*", "1_*", "A-*", "*-B", ""] {
            assert_eq!(GlobName::new(bad), Err(NameError::InvalidGlob(bad.to_owned())), "{bad}");
        }
    }
}
