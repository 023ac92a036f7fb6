//! The mapping file's TOML, read with positions: every key and value keeps its span so that
//! messages can say `vault-run.toml:7:18`. serde's derive is not used for the schema because its
//! messages would echo values (a `default` may be a secret) and could not name the entry.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use toml::{Spanned, Value};

use super::error::{MappingError, Origin};

/// A table's fields with their key and value spans, in file order.
pub(crate) type Fields = Vec<(Spanned<String>, Spanned<Value>)>;

/// The top level of the file, in file order.
pub(crate) struct Document {
    /// `[store]` (or its old name `[vault]`): key span and fields, in file order.
    pub store: Vec<(Spanned<String>, Fields)>,
    /// `[env]`: entries.
    pub env: Vec<(Spanned<String>, EntryValue)>,
    /// Any other top-level key.
    pub unknown: Vec<Spanned<String>>,
}

/// An `[env]` value before it is checked.
pub(crate) enum EntryValue {
    /// `NAME = "reference"`.
    Text(String),
    /// `NAME = { … }` or `[env.NAME]`.
    Table(Fields),
    /// Anything else: what it is, for the message (never the value itself).
    Other(&'static str),
}

fn collect_fields<'de, A: MapAccess<'de>>(mut map: A) -> Result<Fields, A::Error> {
    let mut out = Vec::new();
    while let Some(key) = map.next_key::<Spanned<String>>()? {
        out.push((key, map.next_value()?));
    }
    Ok(out)
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Fields, A::Error> {
        collect_fields(map)
    }
}

struct EnvVisitor;

impl<'de> Visitor<'de> for EnvVisitor {
    type Value = Vec<(Spanned<String>, EntryValue)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of NAME = \"reference\" entries")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            out.push((key, map.next_value()?));
        }
        Ok(out)
    }
}

/// Deserializes with a visitor, for the `[store]` and `[env]` values.
struct With<V>(V);

impl<'de, V: Visitor<'de>> de::DeserializeSeed<'de> for With<V> {
    type Value = V::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        d.deserialize_map(self.0)
    }
}

impl<'de> Deserialize<'de> for EntryValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EntryValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a reference string or a table")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EntryValue, E> {
                Ok(EntryValue::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<EntryValue, E> {
                Ok(EntryValue::Text(v))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<EntryValue, E> {
                Ok(EntryValue::Other("a boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<EntryValue, E> {
                Ok(EntryValue::Other("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<EntryValue, E> {
                Ok(EntryValue::Other("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<EntryValue, E> {
                Ok(EntryValue::Other("a number"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EntryValue, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(EntryValue::Other("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EntryValue, A::Error> {
                collect_fields(map).map(EntryValue::Table)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Document;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping file with [store] and [env] tables")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document, A::Error> {
                let mut doc = Document { store: Vec::new(), env: Vec::new(), unknown: Vec::new() };
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    match key.get_ref().as_str() {
                        "store" | "vault" => doc.store.push((key, map.next_value_seed(With(FieldsVisitor))?)),
                        "env" => doc.env = map.next_value_seed(With(EnvVisitor))?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            doc.unknown.push(key);
                        }
                    }
                }
                Ok(doc)
            }
        }
        d.deserialize_map(V)
    }
}

/// Turns byte offsets into [`Origin::File`] positions.
pub(crate) struct Locator<'a> {
    path: &'a Path,
    text: &'a str,
    /// Byte offset of each line's start: positions are looked up, not counted from the top of
    /// the file for every entry (which made a large mapping take quadratic time).
    line_starts: Vec<usize>,
}

impl<'a> Locator<'a> {
    pub fn new(path: &'a Path, text: &'a str) -> Self {
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Self { path, text, line_starts }
    }

    /// The 1-based line and character column of byte `offset` (clamped to the text).
    pub fn at(&self, offset: usize) -> Origin {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        // The last line starting at or before `offset`; line_starts[0] is 0, so there is one.
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let line_start = self.line_starts[line - 1];
        Origin::File {
            path: self.path.to_owned(),
            line,
            column: self.text[line_start..offset].chars().count() + 1,
        }
    }

    /// Where the value of `key = value` starts: after the key, `=` and blanks. Values that are
    /// tables made by dotted keys have no span of their own, so the entry's value is not spanned.
    pub fn value_after(&self, key: &Spanned<String>) -> Origin {
        let rest = self.text.get(key.span().end..).unwrap_or_default();
        let blank = |c: char| c == ' ' || c == '\t';
        let after_eq = rest.trim_start_matches(blank).strip_prefix('=').map(|r| r.trim_start_matches(blank));
        match after_eq {
            Some(value) => self.at(self.text.len() - value.len()),
            None => self.of(key),
        }
    }

    /// Where a spanned item starts.
    pub fn of<T>(&self, s: &Spanned<T>) -> Origin {
        self.at(s.span().start)
    }

    /// Where byte `offset` of a string value's content is. Exact when the string has no escapes
    /// before that point; otherwise close, and never past the end of the value.
    pub fn inside(&self, span: Range<usize>, offset: usize) -> Origin {
        let raw = self.text.get(span.clone()).unwrap_or_default();
        let triple = raw.starts_with("\"\"\"") || raw.starts_with("'''");
        let mut start = span.start + if triple { 3 } else { 1 };
        // A newline right after the opening delimiter of a multi-line string is not content.
        if triple {
            let after = self.text.get(start..).unwrap_or_default();
            start += if after.starts_with("\r\n") { 2 } else { usize::from(after.starts_with('\n')) };
        }
        self.at((start + offset).min(span.end.saturating_sub(1)))
    }

    /// A toml error as a [`MappingError`]: its message on one line, at its position.
    pub fn toml_error(&self, e: &toml::de::Error) -> MappingError {
        let origin = self.at(e.span().map_or(0, |s| s.start));
        let mut message = e.message().trim().lines().map(str::trim).collect::<Vec<_>>().join("; ");
        if message.contains("$__toml_private_datetime") {
            message = "a date-time cannot be used here; write the value as a string".to_owned();
        } else if message.contains("expected a borrowed string") {
            // A table made by dotted keys where a plain value belongs (`FOO.path.x = 1`).
            message = "a table cannot be used here; write a string, boolean or number".to_owned();
        }
        MappingError::Toml { origin, message }
    }
}

/// Parses the text (syntax and TOML types only; the schema is checked by the caller).
pub(crate) fn parse(loc: &Locator<'_>, text: &str) -> Result<Document, MappingError> {
    toml::from_str(text).map_err(|e| loc.toml_error(&e))
}
