//! `--env-file FILE`: `.env` files as `op run --env-file` and python-dotenv read them. Each value
//! that is a reference (`ass://…`, `vault://…`) becomes a mapping entry; any other value is a
//! literal passed to the child as it is.
//!
//! The syntax is python-dotenv's: `NAME=value`, an optional `export `, `#` comments (after
//! whitespace in an unquoted value), single quotes (literal, `\'` and `\\` only), double quotes
//! (with `\n`, `\t`, `\"`, … escapes; both may span lines). A `$` is kept as written
//! (`p$ssw0rd`, `sk-$$-x`): passwords hold them, and migrating a `.env` must not change one.
//! Only `${VAR}` and `${VAR:-default}` expand, in unquoted and double-quoted values, as in the
//! mapping file (an unset variable without a default is an error, never an empty string).
//! A parse error names the file, the line and what is wrong, never the line's text (it may hold
//! a secret).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::expand::{expand, ExpandError, Lookup};
use crate::inherited::InheritedVar;

/// The largest env file read (a `.env` lists a few variables; `/dev/zero` must not fill memory).
pub const MAX_ENV_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// One `NAME=value` of an env file.
pub struct EnvFileVar {
    /// The file it came from.
    pub path: PathBuf,
    /// Variable name.
    pub name: String,
    /// The value: a reference or a literal. Wiped when dropped (a literal may be sensitive).
    pub value: Zeroizing<String>,
}

impl std::fmt::Debug for EnvFileVar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvFileVar").field("path", &self.path).field("name", &self.name).finish()
    }
}

impl EnvFileVar {
    /// Whether the value is a secret reference (resolved) rather than a literal (passed through).
    pub fn is_reference(&self) -> bool {
        crate::backend::registry::is_env_reference(self.value.as_bytes())
    }
}

/// An env file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    /// Not readable, not a regular file, too large, or (under `--user`) not root's.
    #[error("{0}; check --env-file")]
    File(#[from] crate::files::FileError),
    /// Not UTF-8.
    #[error("env file {}: not UTF-8 text; check --env-file", path.display())]
    Encoding {
        /// The file.
        path: PathBuf,
    },
    /// Bad syntax.
    #[error("{}:{line}: {reason}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong, and how to fix it (never the line's text).
        reason: String,
    },
    /// `${VAR}` in a literal with VAR unset and no default, or a bad or refused `${…}`.
    #[error("{} ({name}): {message}", path.display())]
    Expand {
        /// The file.
        path: PathBuf,
        /// The variable being set.
        name: String,
        /// What is wrong (names the unset variable, never a value).
        message: String,
    },
}

/// Reads every file in order; a later file's name wins over an earlier one's.
///
/// `${VAR}` is expanded with `vars` in literals here (not in single-quoted ones); references
/// keep it, for the mapping to expand (and report) like every other reference.
pub fn read_all(paths: &[PathBuf], vars: Lookup<'_>) -> Result<Vec<EnvFileVar>, EnvFileError> {
    read_all_checked(paths, vars, false)
}

/// [`read_all`]; with `roots_only` (under `--user`), each file must be root's alone (see
/// [`crate::files::require_roots`]).
pub fn read_all_checked(
    paths: &[PathBuf],
    vars: Lookup<'_>,
    roots_only: bool,
) -> Result<Vec<EnvFileVar>, EnvFileError> {
    let mut out: Vec<EnvFileVar> = Vec::new();
    for path in paths {
        for parsed in read(path, roots_only)? {
            let mut var = parsed.var;
            if parsed.expand && !var.is_reference() {
                let expanded = expand(&var.value, vars).map_err(|e| EnvFileError::Expand {
                    path: path.clone(),
                    name: var.name.clone(),
                    message: match e {
                        ExpandError::Unset(v) => format!(
                            "${{{v}}} is not set in vault-run's environment; set {v} or write ${{{v}:-default}}"
                        ),
                        e @ ExpandError::Refused(_) => e.to_string(),
                        ExpandError::Bad(m) => format!("bad ${{…}}: {m}"),
                    },
                })?;
                if let std::borrow::Cow::Owned(v) = expanded {
                    var.value = Zeroizing::new(v);
                }
            } else if !parsed.expand && var.is_reference() && var.value.contains("${") {
                // Single quotes are literal: the mapping, which expands every reference, must
                // see `$${` (its escape for a literal `${`).
                var.value = Zeroizing::new(var.value.replace("${", "$${"));
            }
            out.retain(|v| v.name != var.name);
            out.push(var);
        }
    }
    Ok(out)
}

/// One parsed `NAME=value`, and whether `${…}` expands in it (not in single quotes).
struct Parsed {
    var: EnvFileVar,
    expand: bool,
}

fn read(path: &Path, roots_only: bool) -> Result<Vec<Parsed>, EnvFileError> {
    const WHAT: &str = "env file";
    let file = crate::files::open_regular(path, WHAT)?;
    if roots_only {
        crate::files::require_roots(&file, path, WHAT)?;
    }
    let bytes = crate::files::read_to_end(file, path, WHAT, MAX_ENV_FILE_BYTES)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| EnvFileError::Encoding { path: path.to_owned() })?;
    let mut out: Vec<Parsed> = Vec::new();
    for item in parse(text) {
        let (name, value, expand) =
            item.map_err(|(line, reason)| EnvFileError::Syntax { path: path.to_owned(), line, reason })?;
        out.retain(|p| p.var.name != name);
        out.push(Parsed { var: EnvFileVar { path: path.to_owned(), name, value }, expand });
    }
    Ok(out)
}

/// A parse result: (name, value, expands) or (line, reason).
type Item = Result<(String, Zeroizing<String>, bool), (usize, String)>;

/// Parses dotenv text (python-dotenv's syntax), stopping at the first error.
fn parse(text: &str) -> Vec<Item> {
    let mut p = Parser { rest: text, line: 1 };
    let mut out = Vec::new();
    while let Some(item) = p.next_item() {
        let failed = item.is_err();
        out.push(item);
        if failed {
            break;
        }
    }
    out
}

struct Parser<'a> {
    rest: &'a str,
    line: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.rest.chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.rest = &self.rest[c.len_utf8()..];
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
    }

    /// The rest of the line (without its `\n`, which is consumed).
    fn take_line(&mut self) -> &str {
        let end = self.rest.find('\n').unwrap_or(self.rest.len());
        let line = &self.rest[..end];
        self.rest = &self.rest[end..];
        self.bump();
        line
    }

    fn next_item(&mut self) -> Option<Item> {
        loop {
            while matches!(self.peek(), Some(' ' | '\t' | '\r' | '\n')) {
                self.bump();
            }
            match self.peek()? {
                '#' => drop(self.take_line()),
                _ => break,
            }
        }
        let line = self.line;
        let fail = |reason: String| Some(Err((line, reason)));
        if let Some(after) = self.rest.strip_prefix("export") {
            if after.starts_with([' ', '\t']) {
                self.rest = after;
                self.skip_blanks();
            }
        }
        let len =
            self.rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(self.rest.len());
        let name = &self.rest[..len];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return fail(
                "expected NAME=value, where NAME has letters, digits and '_' and does not start with a digit"
                    .into(),
            );
        }
        let name = name.to_owned();
        self.rest = &self.rest[len..];
        self.skip_blanks();
        if self.bump() != Some('=') {
            return fail(format!("{name} has no '=' after it; write {name}=value"));
        }
        self.skip_blanks();
        let (value, expand) = match self.peek() {
            Some(q @ ('\'' | '"')) => {
                self.bump();
                let value = match self.quoted(q) {
                    Some(v) => v,
                    None => {
                        return fail(format!(
                            "{name}: the {q} that opens the value is never closed; add the closing {q} (or escape a {q} inside as \\{q})"
                        ))
                    }
                };
                self.skip_blanks();
                match self.peek() {
                    None | Some('\n' | '\r' | '#') => drop(self.take_line()),
                    Some(_) => {
                        return fail(format!(
                            "{name}: text after the closing {q}; put the whole value inside the quotes"
                        ))
                    }
                }
                (value, q == '"')
            }
            _ => {
                let raw = self.take_line();
                let raw = raw.strip_suffix('\r').unwrap_or(raw);
                // A comment starts at a '#' after whitespace; a '#' inside a word is kept.
                let end = raw
                    .char_indices()
                    .find(|&(i, c)| c == '#' && raw[..i].ends_with([' ', '\t']))
                    .map_or(raw.len(), |(i, _)| i);
                (Zeroizing::new(raw[..end].trim_end().to_owned()), true)
            }
        };
        if value.contains('\0') {
            return fail(format!(
                "{name}: the value contains a NUL byte, which an environment variable cannot hold"
            ));
        }
        Some(Ok((name, value, expand)))
    }

    /// The value up to the closing `quote` (consumed), with python-dotenv's escapes; `None`
    /// when it is never closed.
    fn quoted(&mut self, quote: char) -> Option<Zeroizing<String>> {
        let mut out = Zeroizing::new(String::with_capacity(self.rest.len().min(256)));
        loop {
            let c = self.bump()?;
            if c == quote {
                return Some(out);
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let escaped = match (quote, self.peek()) {
                ('\'', Some(e @ ('\'' | '\\'))) => e,
                ('"', Some(e @ ('\\' | '\'' | '"'))) => e,
                ('"', Some('n')) => '\n',
                ('"', Some('t')) => '\t',
                ('"', Some('r')) => '\r',
                ('"', Some('a')) => '\x07',
                ('"', Some('b')) => '\x08',
                ('"', Some('f')) => '\x0c',
                ('"', Some('v')) => '\x0b',
                _ => {
                    out.push('\\');
                    continue;
                }
            };
            self.bump();
            out.push(escaped);
        }
    }
}

/// The inherited environment with the env files' literals set over it (or, with
/// `no_override`, under it: an inherited variable keeps its value).
pub fn with_literals(
    mut inherited: Vec<InheritedVar>,
    vars: &[EnvFileVar],
    no_override: bool,
) -> Vec<InheritedVar> {
    for v in vars.iter().filter(|v| !v.is_reference()) {
        let name = OsString::from(&v.name);
        let value = || Zeroizing::new(v.value.as_bytes().to_vec());
        if let Some(slot) = inherited.iter_mut().find(|(k, _)| *k == name) {
            if !no_override {
                slot.1 = value();
            }
        } else {
            inherited.push((name, value()));
        }
    }
    inherited
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> (String, String, bool) {
        let mut items = parse(text);
        assert_eq!(items.len(), 1, "{text:?}");
        let (n, v, e) = items.remove(0).unwrap();
        (n, v.to_string(), e)
    }

    fn error(text: &str) -> (usize, String) {
        parse(text).into_iter().find_map(Result::err).unwrap_or_else(|| panic!("no error for {text:?}"))
    }

    #[test]
    fn dollars_are_kept_and_quotes_follow_python_dotenv() {
        assert_eq!(one("P=p$ssw0rd"), ("P".into(), "p$ssw0rd".into(), true));
        assert_eq!(one("P=abc$").1, "abc$");
        assert_eq!(one("P=sk-$$-x").1, "sk-$$-x");
        assert_eq!(one("P=\"p$ssw0rd\"").1, "p$ssw0rd");
        assert_eq!(one("P='${HOME}'"), ("P".into(), "${HOME}".into(), false));
        assert_eq!(one("export  A = b c  # note").1, "b c");
        assert_eq!(one("A=b#c").1, "b#c");
        assert_eq!(one("A=\"x\\ny\\\"z\" # c").1, "x\ny\"z");
        assert_eq!(one("A='it\\'s'").1, "it's");
        assert_eq!(one("A=\"two\nlines\"").1, "two\nlines");
        assert_eq!(one("A=\r\n").1, "");
        let all = parse("# c\n\nA=1\r\nexport B='2'\nA=3\n");
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn errors_name_the_line_and_the_reason() {
        assert_eq!(error("A=1\nB=\"open\n\n").0, 2);
        assert!(error("A=1\nB=\"open\n").1.contains("never closed"));
        assert!(error("A='x' y").1.contains("after the closing"));
        let (line, reason) = error("A=1\n\nJUSTANAME\n");
        assert_eq!(line, 3);
        assert!(reason.contains("has no '='"), "{reason}");
        assert!(error("9A=1").1.contains("NAME=value"));
        assert!(!error("A=\"secret-value").1.contains("secret-value"));
    }
}
