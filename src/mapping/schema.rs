//! The mapping's schema: `[store]` settings and `[env]` entries checked field by field, and the
//! shared rules for `NAME = "REF"` (file strings and `-e` flags alike).

use std::ops::Range;

use toml::{Spanned, Value};
use zeroize::Zeroize;

use super::file::{Document, EntryValue, Fields, Locator};
use super::glob::parse_glob_reference;
use super::name::{EnvName, GlobName};
use super::proxy::ProxySpec;
use super::reference::parse_reference;
use super::template::Template;
use super::{
    Delivery, Entry, EntryKind, FileSettings, MappingError, MatchRequirement, Origin, Requirement, Target,
};
use crate::backend::registry;
use crate::expand::{expand, expand_placeholders, ExpandError, Lookup};
use agentsecretstore::duration::HumanDuration;
use agentsecretstore::secret::SecretString;

const ENTRY_FIELDS: &str = "path, template, optional, default, as, hosts, placeholder, inject, body";
/// The `[store]` fields every run has; backends add theirs (see [`store_fields`]).
const SHARED_STORE_FIELDS: &str = "ttl, timeout, deadline, approval_timeout, retries, concurrency, env_refs";

/// Every `[store]` field, for the message naming an unknown one: the backends' keys first.
fn store_fields() -> String {
    let own = registry::options().filter_map(|o| o.store.as_ref()).map(|s| s.key);
    own.chain([SHARED_STORE_FIELDS]).collect::<Vec<_>>().join(", ")
}

fn schema(origin: Origin, message: String) -> MappingError {
    MappingError::Schema { origin, message }
}

/// Expands `${VAR}` in `text` for entry (or field) `name`, as a mapping error at `at`.
pub(crate) fn expanded<'s>(
    text: &'s str,
    vars: Lookup<'_>,
    name: &str,
    at: &Origin,
    placeholders_only: bool,
) -> Result<std::borrow::Cow<'s, str>, MappingError> {
    let out = if placeholders_only { expand_placeholders(text, vars) } else { expand(text, vars) };
    out.map_err(|e| match e {
        ExpandError::Unset(var) => MappingError::Unset { origin: at.clone(), name: name.to_owned(), var },
        e @ ExpandError::Refused(_) => {
            MappingError::Refused { origin: at.clone(), name: name.to_owned(), message: e.to_string() }
        }
        ExpandError::Bad(message) => {
            MappingError::Expansion { origin: at.clone(), name: name.to_owned(), message }
        }
    })
}

/// A key with a `*` is a glob; anything else must be a valid name.
pub(crate) fn target(key: &str, origin: &Origin) -> Result<Target, MappingError> {
    let named = if key.contains('*') {
        GlobName::new(key).map(Target::Glob)
    } else {
        EnvName::new(key).map(Target::Name)
    };
    named.map_err(|source| MappingError::Name { origin: origin.clone(), source })
}

/// The entry for `target` reading `reference` (a pattern when the target is a glob).
fn from_reference(
    target: Target,
    key: &str,
    reference: &str,
    at: Origin,
    requirement: Requirement,
) -> Result<EntryKind, MappingError> {
    let refused = |source| MappingError::Reference { origin: at.clone(), name: key.to_owned(), source };
    Ok(match target {
        Target::Glob(name) => {
            let requirement = match requirement {
                Requirement::Optional => MatchRequirement::Optional,
                // The schema refuses a glob's default before this.
                Requirement::Required | Requirement::Default(_) => MatchRequirement::Required,
            };
            EntryKind::Glob { name, pattern: parse_glob_reference(reference).map_err(refused)?, requirement }
        }
        Target::Name(name) => {
            EntryKind::Single { name, reference: parse_reference(reference).map_err(refused)?, requirement }
        }
    })
}

/// `NAME = "REF"` (a file string or an `-e` flag): required, delivered in the environment.
/// `origin` is the entry's place; `at` is where the reference is written.
pub(crate) fn simple(
    key: &str,
    reference: &str,
    origin: Origin,
    at: Origin,
    vars: Lookup<'_>,
) -> Result<Entry, MappingError> {
    let target = target(key, &origin)?;
    let reference = expanded(reference, vars, key, &at, false)?;
    let kind = from_reference(target, key, &reference, at, Requirement::Required)?;
    Ok(Entry { kind, delivery: Delivery::Env, origin, proxy: None })
}

/// Checks the whole document.
pub(crate) fn check(
    loc: &Locator<'_>,
    mut doc: Document,
    vars: Lookup<'_>,
) -> Result<(FileSettings, Vec<Entry>), MappingError> {
    if let Some(key) = doc.unknown.first() {
        let message = format!("unknown table {:?}; expected [store] or [env]", key.get_ref());
        return Err(schema(loc.of(key), message));
    }
    if let [_, (second, _), ..] = doc.store.as_slice() {
        let message =
            "both [store] and [vault] are given; [vault] is the old name of [store]: keep only [store]";
        return Err(schema(loc.of(second), message.to_owned()));
    }
    let settings = match doc.store.pop() {
        Some((key, fields)) => {
            let table = if key.get_ref() == "vault" { "vault" } else { "store" };
            let mut s = settings(loc, fields, vars, table)?;
            s.deprecated_name = table == "vault";
            s
        }
        None => FileSettings::default(),
    };
    let mut entries = Vec::with_capacity(doc.env.len());
    for (key, value) in doc.env {
        let entry = match value {
            EntryValue::Text(reference) => {
                simple(key.get_ref(), &reference, loc.of(&key), loc.value_after(&key), vars)?
            }
            EntryValue::Table(fields) => table_entry(loc, &key, fields, vars)?,
            EntryValue::Other(what) => {
                let message = format!(
                    "entry {} is {what}; write a reference string or a table like {{ path = \"…\" }}",
                    key.get_ref()
                );
                return Err(schema(loc.value_after(&key), message));
            }
        };
        entries.push(entry);
    }
    Ok((settings, entries))
}

/// The `[store]` table's fields; `table` is the name it was written under, for messages.
fn settings(
    loc: &Locator<'_>,
    fields: Fields,
    vars: Lookup<'_>,
    table: &str,
) -> Result<FileSettings, MappingError> {
    let mut s = FileSettings::default();
    for (key, value) in fields {
        let name = key.get_ref().as_str();
        let at = loc.of(&value);
        let bad = |expected: &str| schema(at.clone(), format!("{name} in [{table}] must be {expected}"));
        let own = registry::options().find(|o| o.store.as_ref().is_some_and(|s| s.key == name));
        if let (Some(spec), Some(store)) = (own, own.and_then(|o| o.store.as_ref())) {
            match value.into_inner() {
                Value::String(text) => {
                    let text = expanded(&text, vars, name, &at, false)?.into_owned();
                    s.options.set(spec, text.into());
                }
                _ => return Err(bad(store.expected)),
            }
            continue;
        }
        match name {
            "ttl" | "timeout" | "deadline" | "approval_timeout" => {
                let d = match value.into_inner() {
                    Value::String(text) => expanded(&text, vars, name, &at, false)?
                        .parse::<HumanDuration>()
                        .map_err(|e| schema(at.clone(), format!("{name} in [{table}]: {e}")))?,
                    Value::Integer(secs) if secs >= 0 => HumanDuration::from_secs(secs as u64),
                    _ => return Err(bad("a duration like \"5m\" or a number of seconds")),
                };
                *match name {
                    "ttl" => &mut s.tuning.ttl,
                    "timeout" => &mut s.tuning.timeout,
                    "deadline" => &mut s.tuning.deadline,
                    _ => &mut s.tuning.approval_timeout,
                } = Some(d);
            }
            "retries" => match value.into_inner() {
                Value::Integer(n) => {
                    s.tuning.retries = Some(u32::try_from(n).map_err(|_| bad("a number from 0 up"))?)
                }
                _ => return Err(bad("a number from 0 up")),
            },
            "concurrency" => match value.into_inner() {
                Value::Integer(n) if n >= 1 => {
                    s.tuning.concurrency = Some(usize::try_from(n).map_err(|_| bad("a number from 1 up"))?)
                }
                _ => return Err(bad("a number from 1 up")),
            },
            "env_refs" => match value.into_inner() {
                Value::Boolean(b) => s.env_refs = Some(b),
                _ => return Err(bad("true or false")),
            },
            other => {
                let message = format!("unknown field {other:?} in [{table}]; expected {}", store_fields());
                return Err(schema(loc.of(&key), message));
            }
        }
    }
    Ok(s)
}

/// A string field's text, or a message naming the field (never the value).
fn text(loc: &Locator<'_>, value: Spanned<Value>, field: &str, entry: &str) -> Result<String, MappingError> {
    let at = loc.of(&value);
    match value.into_inner() {
        Value::String(s) => Ok(s),
        _ => Err(schema(at, format!("{field} in entry {entry} must be a string"))),
    }
}

fn boolean(loc: &Locator<'_>, value: Spanned<Value>, field: &str, entry: &str) -> Result<bool, MappingError> {
    let at = loc.of(&value);
    match value.into_inner() {
        Value::Boolean(b) => Ok(b),
        _ => Err(schema(at, format!("{field} in entry {entry} must be true or false"))),
    }
}

/// `NAME = { path | template, optional, default, as }`.
fn table_entry(
    loc: &Locator<'_>,
    key: &Spanned<String>,
    fields: Fields,
    vars: Lookup<'_>,
) -> Result<Entry, MappingError> {
    let name = key.get_ref().as_str();
    let origin = loc.of(key);
    let target = target(name, &origin)?;
    let mut path: Option<(String, Range<usize>)> = None;
    let mut template: Option<(Template, Origin)> = None;
    let mut optional: Option<(bool, Origin)> = None;
    let mut default: Option<(SecretString, Origin)> = None;
    let mut delivery = Delivery::Env;
    let mut hosts: Option<(Vec<super::proxy::HostPort>, Origin)> = None;
    let mut placeholder: Option<(String, Origin)> = None;
    let mut body: Option<(bool, Origin)> = None;
    let mut inject: Option<(super::proxy::Inject, Origin)> = None;
    for (field, value) in fields {
        let field_at = loc.of(&field);
        let span = value.span();
        match field.get_ref().as_str() {
            "path" | "template" if path.is_some() || template.is_some() => {
                let message = format!("entry {name} has both path and template; keep one of them");
                return Err(schema(field_at, message));
            }
            "path" => path = Some((text(loc, value, "path", name)?, span)),
            "template" => {
                if let Target::Glob(_) = target {
                    let message =
                        format!("entry {name}: a template makes one variable, so its name cannot have '*'");
                    return Err(schema(field_at, message));
                }
                let mut raw = text(loc, value, "template", name)?;
                let parsed = match expanded(&raw, vars, name, &field_at, true) {
                    Ok(std::borrow::Cow::Borrowed(same)) => Template::parse(same),
                    Ok(std::borrow::Cow::Owned(mut done)) => {
                        let parsed = Template::parse(&done);
                        done.zeroize();
                        parsed
                    }
                    Err(e) => {
                        raw.zeroize();
                        return Err(e);
                    }
                };
                // The text may hold sensitive literals; wipe this copy whatever the outcome.
                raw.zeroize();
                let parsed = parsed.map_err(|source| MappingError::Template {
                    origin: match source.offset() {
                        Some(offset) => loc.inside(span.clone(), offset),
                        None => loc.at(span.start),
                    },
                    name: name.to_owned(),
                    source,
                })?;
                template = Some((parsed, field_at));
            }
            "optional" => optional = Some((boolean(loc, value, "optional", name)?, field_at)),
            "default" => match value.into_inner() {
                Value::String(s) => default = Some((SecretString::new(s), field_at)),
                _ => {
                    return Err(schema(
                        loc.at(span.start),
                        format!("default in entry {name} must be a string"),
                    ))
                }
            },
            "as" => {
                delivery = match text(loc, value, "as", name)?.as_str() {
                    "env" => Delivery::Env,
                    "file" => Delivery::File,
                    other => {
                        let message =
                            format!("as in entry {name} must be \"env\" or \"file\", not {other:?}");
                        return Err(schema(loc.at(span.start), message));
                    }
                }
            }
            "hosts" => hosts = Some((super::proxy::hosts(loc, value, name)?, field_at)),
            "placeholder" => {
                let raw = text(loc, value, "placeholder", name)?;
                placeholder = Some((super::proxy::placeholder(field_at.clone(), raw, name)?, field_at));
            }
            "body" => body = Some((boolean(loc, value, "body", name)?, field_at)),
            "inject" => inject = Some((super::proxy::inject(loc, value, name)?, field_at)),
            other => {
                let message = format!("unknown field {other:?} in entry {name}; expected {ENTRY_FIELDS}");
                return Err(schema(field_at, message));
            }
        }
    }
    let proxy = match hosts {
        Some((hosts, at)) => {
            // The proxy swaps one known placeholder for one value: a glob has many values, a
            // file delivery never puts the value in a header.
            if !matches!(target, Target::Name(_)) || template.is_some() || delivery != Delivery::Env {
                let message = format!(
                    "entry {name}: hosts works only for one variable with path = \"…\" delivered in the environment (no '*', template or as = \"file\")"
                );
                return Err(schema(at, message));
            }
            if optional.as_ref().is_some_and(|o| o.0) || default.is_some() {
                let message = format!(
                    "entry {name}: an entry with hosts is always required; remove optional and default"
                );
                return Err(schema(at, message));
            }
            let inject = super::proxy::with_body_flag(inject, body, name)?;
            Some(ProxySpec { hosts, placeholder: placeholder.map(|p| p.0), inject })
        }
        None => {
            let at = placeholder.map(|p| p.1).or(body.map(|b| b.1)).or(inject.map(|i| i.1));
            if let Some(at) = at {
                let message = format!("entry {name}: placeholder, inject and body need hosts = [\"…\"] (the hosts that get the real value)");
                return Err(schema(at, message));
            }
            None
        }
    };
    if let Some((template, _)) = template {
        if let Some(at) = optional.map(|o| o.1).or(default.map(|d| d.1)) {
            let message = format!(
                "entry {name}: a template is always required (every secret it names must exist); remove optional and default"
            );
            return Err(schema(at, message));
        }
        let Target::Name(name) = target else {
            let message = format!("entry {name}: a template makes one variable, so its name cannot have '*'");
            return Err(schema(origin, message));
        };
        return Ok(Entry { kind: EntryKind::Template { name, template }, delivery, origin, proxy: None });
    }
    let Some((reference, span)) = path else {
        return Err(schema(origin, format!("entry {name} needs path = \"…\" or template = \"…\"")));
    };
    if let (Some((false, at)), Some(_)) = (&optional, &default) {
        let message = format!("entry {name}: a default is used when the secret is missing, so it cannot be optional = false; remove one of them");
        return Err(schema(at.clone(), message));
    }
    if let (Target::Glob(_), Some((_, at))) = (&target, &default) {
        let message = format!("entry {name}: a glob entry cannot have a default; use optional = true");
        return Err(schema(at.clone(), message));
    }
    let reference = expanded(&reference, vars, name, &loc.at(span.start), false)?;
    let requirement = match (default, optional) {
        (Some((value, _)), _) => Requirement::Default(value),
        (None, Some((true, _))) => Requirement::Optional,
        (None, _) => Requirement::Required,
    };
    let kind = from_reference(target, name, &reference, loc.at(span.start), requirement)?;
    Ok(Entry { kind, delivery, origin, proxy })
}
