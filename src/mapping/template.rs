//! Templates: literal text with `{{ REF }}` placeholders, rendered once every secret is known
//! (`postgres://app:{{ production/db/PASSWORD }}@db:5432/app`).
//!
//! Literal text may itself be sensitive (a user name, a host), so it is kept in [`SecretString`]s
//! and never printed: errors give offsets, and `Display` shows `…` in its place.

use std::fmt;

use super::reference::parse_reference;
use crate::backend::{Reference, ReferenceError};
use agentsecretstore::secret::SecretString;

/// Why a template was refused. Offsets are bytes into the template string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{` with no `}}` after it (or another `{{` before it).
    #[error("unclosed {{{{ in template; close the placeholder with }}}}")]
    Unclosed {
        /// Where the `{{` is.
        offset: usize,
    },
    /// `}}` outside a placeholder.
    #[error("}}}} without a matching {{{{ in template")]
    Stray {
        /// Where the `}}` is.
        offset: usize,
    },
    /// `{{ }}`.
    #[error(
        "empty {{{{ }}}} in template; put a secret reference inside, like {{{{ production/db/PASSWORD }}}}"
    )]
    Empty {
        /// Where the `{{` is.
        offset: usize,
    },
    /// A pattern inside a placeholder.
    #[error("{{{{ {reference} }}}} in template is a pattern; templates take single secrets only")]
    Glob {
        /// Where the reference starts.
        offset: usize,
        /// The reference as written.
        reference: String,
    },
    /// A bad reference inside a placeholder.
    #[error("bad reference in template: {source}")]
    Reference {
        /// Where the reference starts.
        offset: usize,
        /// Why.
        source: ReferenceError,
    },
    /// Nothing to substitute.
    #[error("template has no {{{{ ref }}}}; use path = \"…\" for a single secret")]
    NoPlaceholder,
}

impl TemplateError {
    /// Byte offset of the problem in the template string, when there is one place to point at.
    pub fn offset(&self) -> Option<usize> {
        match self {
            TemplateError::Unclosed { offset }
            | TemplateError::Stray { offset }
            | TemplateError::Empty { offset }
            | TemplateError::Glob { offset, .. }
            | TemplateError::Reference { offset, .. } => Some(*offset),
            TemplateError::NoPlaceholder => None,
        }
    }
}

/// A piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplatePart {
    /// Text copied as it is.
    Literal(SecretString),
    /// A secret's value.
    Ref(Reference),
}

/// A parsed template: at least one placeholder, every one a single-secret reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<TemplatePart>,
}

impl Template {
    /// Parses `s`. Whitespace inside the braces is trimmed; single `{` and `}` are literal.
    pub fn parse(s: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut at = 0;
        while at < s.len() {
            let open = s[at..].find("{{").map(|o| at + o);
            let literal_end = open.unwrap_or(s.len());
            if let Some(stray) = s[at..literal_end].find("}}") {
                return Err(TemplateError::Stray { offset: at + stray });
            }
            if literal_end > at {
                parts.push(TemplatePart::Literal(SecretString::from(&s[at..literal_end])));
            }
            let Some(open) = open else { break };
            let inner_start = open + 2;
            let close = s[inner_start..].find("}}").map(|c| inner_start + c);
            let Some(close) = close.filter(|c| !s[inner_start..*c].contains("{{")) else {
                return Err(TemplateError::Unclosed { offset: open });
            };
            let inner = &s[inner_start..close];
            let reference = inner.trim();
            if reference.is_empty() {
                return Err(TemplateError::Empty { offset: open });
            }
            let offset = inner_start + (inner.len() - inner.trim_start().len());
            match parse_reference(reference) {
                Ok(r) => parts.push(TemplatePart::Ref(r)),
                Err(ReferenceError::Pattern(_)) => {
                    return Err(TemplateError::Glob { offset, reference: reference.to_owned() })
                }
                Err(source) => return Err(TemplateError::Reference { offset, source }),
            }
            at = close + 2;
        }
        if !parts.iter().any(|p| matches!(p, TemplatePart::Ref(_))) {
            return Err(TemplateError::NoPlaceholder);
        }
        Ok(Self { parts })
    }

    /// The pieces, in order.
    pub fn parts(&self) -> &[TemplatePart] {
        &self.parts
    }

    /// Every reference, in order (a secret named twice appears twice).
    pub fn refs(&self) -> impl Iterator<Item = &Reference> + '_ {
        self.parts.iter().filter_map(|p| match p {
            TemplatePart::Ref(r) => Some(r),
            TemplatePart::Literal(_) => None,
        })
    }

    /// Builds the value, asking `value_of` for each reference's secret. The buffer is sized
    /// first so that it never reallocates, which would leave an unzeroized copy behind.
    pub fn render<'v>(&self, mut value_of: impl FnMut(&Reference) -> &'v SecretString) -> SecretString {
        let pieces: Vec<&SecretString> = self
            .parts
            .iter()
            .map(|p| match p {
                TemplatePart::Literal(text) => text,
                TemplatePart::Ref(r) => value_of(r),
            })
            .collect();
        let mut out = String::with_capacity(pieces.iter().map(|p| p.len()).sum());
        for p in pieces {
            out.push_str(p.expose());
        }
        SecretString::new(out)
    }
}

impl fmt::Display for Template {
    /// The references with `…` for literal text, which is never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.parts {
            match p {
                TemplatePart::Literal(_) => f.write_str("…")?,
                TemplatePart::Ref(r) => write!(f, "{{{{ {r} }}}}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentsecretstore::path::PathError;

    const DB: &str = "postgres://app:{{ production/db/PASSWORD }}@db:5432/app";

    #[test]
    fn parses_and_renders() {
        let t = Template::parse(DB).unwrap();
        let refs: Vec<String> = t.refs().map(ToString::to_string).collect();
        assert_eq!(refs, ["production/db/PASSWORD"]);
        assert_eq!(t.parts().len(), 3);
        let secret = SecretString::from("s3cr3t");
        let out = t.render(|_| &secret);
        assert_eq!(out.expose(), "postgres://app:s3cr3t@db:5432/app");
        assert_eq!(out.expose().len(), out.len());
    }

    #[test]
    fn several_refs_and_schemes() {
        let t = Template::parse("{{a/U}}:{{   vault://kv/db#pw\t}}{{ass://a/U}}").unwrap();
        let refs: Vec<String> = t.refs().map(ToString::to_string).collect();
        assert_eq!(refs, ["a/U", "vault://kv/db#pw", "a/U"]);
        let (u, p) = (SecretString::from("user"), SecretString::from("pw"));
        let out = t.render(|r| if r.scheme() == "vault" { &p } else { &u });
        assert_eq!(out.expose(), "user:pwuser");
        assert_eq!(t.to_string(), "{{ a/U }}…{{ vault://kv/db#pw }}{{ a/U }}");
    }

    #[test]
    fn render_does_not_reallocate() {
        let t = Template::parse("x{{a/b}}y").unwrap();
        let v = SecretString::from("0123456789".repeat(10).as_str());
        let out = t.render(|_| &v);
        assert_eq!(out.len(), 102);
    }

    #[test]
    fn single_braces_are_literal() {
        let t = Template::parse("{\"k\": \"{{a/b}}\"}").unwrap();
        let v = SecretString::from("v");
        assert_eq!(t.render(|_| &v).expose(), "{\"k\": \"v\"}");
    }

    #[test]
    fn display_hides_literal_text() {
        let t = Template::parse(DB).unwrap();
        assert_eq!(t.to_string(), "…{{ production/db/PASSWORD }}…");
        assert!(!format!("{t:?}").contains("postgres"));
    }

    #[test]
    fn errors_with_offsets() {
        assert_eq!(Template::parse("ab{{ a/b"), Err(TemplateError::Unclosed { offset: 2 }));
        assert_eq!(Template::parse("{{ a/b {{ c/d }}"), Err(TemplateError::Unclosed { offset: 0 }));
        assert_eq!(Template::parse("abc}} {{a/b}}"), Err(TemplateError::Stray { offset: 3 }));
        assert_eq!(Template::parse("{{a/b}} }}"), Err(TemplateError::Stray { offset: 8 }));
        assert_eq!(Template::parse("x{{  }}"), Err(TemplateError::Empty { offset: 1 }));
        assert_eq!(
            Template::parse("x{{ a/* }}"),
            Err(TemplateError::Glob { offset: 4, reference: "a/*".into() })
        );
        assert_eq!(
            Template::parse("{{ vault://kv/a#* }}"),
            Err(TemplateError::Glob { offset: 3, reference: "vault://kv/a#*".into() })
        );
        assert_eq!(
            Template::parse("{{ KEY }}"),
            Err(TemplateError::Reference {
                offset: 3,
                source: ReferenceError::Path(PathError::TooShort("KEY".into()))
            })
        );
        assert_eq!(Template::parse("plain text"), Err(TemplateError::NoPlaceholder));
        assert_eq!(Template::parse(""), Err(TemplateError::NoPlaceholder));
        assert_eq!(
            TemplateError::NoPlaceholder.to_string(),
            "template has no {{ ref }}; use path = \"…\" for a single secret"
        );
        assert_eq!(
            TemplateError::Unclosed { offset: 0 }.to_string(),
            "unclosed {{ in template; close the placeholder with }}"
        );
        assert_eq!(TemplateError::Stray { offset: 0 }.to_string(), "}} without a matching {{ in template");
    }

    #[test]
    fn errors_never_show_literal_text() {
        for bad in ["hunter2{{", "hunter2}}{{a/b}}", "hunter2{{ }}", "hunter2"] {
            let e = Template::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
