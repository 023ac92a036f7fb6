//! The first pipeline stage: the mapping file's `[env]`, the `-e NAME=REF` flags and
//! environment references become one typed, checked [`Mapping`].
//!
//! Precedence, highest first: `-e` flags, the file, then inherited variables whose whole value is
//! a reference of a backend that takes environment references (`ass://…`, `vault://…`; see
//! [`crate::backend::registry::is_env_reference`]). No I/O happens here: the caller reads the file.

mod error;
mod file;
mod glob;
mod name;
mod proxy;
mod reference;
mod schema;
mod template;

use std::fmt;
use std::path::Path;

pub use crate::backend::ass::glob::AssGlob;
pub use crate::backend::reference::{GlobRef, Reference};
use crate::backend::registry::{is_env_reference, OptionValues};
pub use error::{MappingError, Origin};
pub use glob::parse_glob_reference;
pub use name::{check_name, EnvName, GlobName};
pub use proxy::{check_host, HostPort, Inject, ProxySpec, RANDOM_MARKER};
pub use reference::parse_reference;
pub use template::{Template, TemplatePart};

use crate::expand::Lookup;
use agentsecretstore::duration::HumanDuration;
use agentsecretstore::secret::SecretString;

/// The settings shared by every backend that the `[store]` table and the command line both
/// give: `None` where not given, so the other (or the default) applies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tuning {
    /// Token lifetime to ask for.
    pub ttl: Option<HumanDuration>,
    /// Per-request timeout.
    pub timeout: Option<HumanDuration>,
    /// Start-up deadline for fetching everything.
    pub deadline: Option<HumanDuration>,
    /// How long to wait for a human's approval.
    pub approval_timeout: Option<HumanDuration>,
    /// Retries of temporary failures.
    pub retries: Option<u32>,
    /// Requests in flight at once (at least 1).
    pub concurrency: Option<usize>,
}

/// The `[store]` table (Agent Secret Store's settings; `[vault]` is its deprecated old name):
/// every field optional; flags and environment win over it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileSettings {
    /// The settings flags can also give.
    pub tuning: Tuning,
    /// The backends' own options their registrations give `[store]` keys (`base_url`).
    pub options: OptionValues,
    /// `false`: inherited references are never resolved (like `--no-env-refs`).
    pub env_refs: Option<bool>,
    /// The table was written under its old name `[vault]` (the caller warns once).
    pub deprecated_name: bool,
}

/// Which variable(s) an entry sets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// One variable.
    Name(EnvName),
    /// One variable per matching secret (`STRIPE_*`).
    Glob(GlobName),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Name(n) => n.fmt(f),
            Target::Glob(g) => g.fmt(f),
        }
    }
}

/// How the child receives the value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// In the variable itself (`as = "env"`, the default).
    #[default]
    Env,
    /// In a memory file whose path is the variable's value (`as = "file"`).
    File,
}

/// Whether a single secret must exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// It must exist.
    Required,
    /// It may be missing; the variable is then not set.
    Optional,
    /// It may be missing; this value is used then. May be sensitive: never printed.
    Default(SecretString),
}

/// Whether a glob must match something (a glob has no default: it names no one variable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchRequirement {
    /// At least one secret must match.
    Required,
    /// Matching nothing is fine.
    Optional,
}

/// What an entry sets and from where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// One variable from one secret.
    Single {
        /// The variable.
        name: EnvName,
        /// The secret.
        reference: Reference,
        /// What a missing secret means.
        requirement: Requirement,
    },
    /// One variable per secret (or Vault field) a pattern matches (`STRIPE_*`).
    Glob {
        /// The glob key.
        name: GlobName,
        /// The pattern.
        pattern: GlobRef,
        /// What matching nothing means.
        requirement: MatchRequirement,
    },
    /// One variable: literal text around secrets, every one of which must exist.
    Template {
        /// The variable.
        name: EnvName,
        /// The text and its references.
        template: Template,
    },
}

/// One line of the mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// What it sets and from where.
    pub kind: EntryKind,
    /// Environment value or file.
    pub delivery: Delivery,
    /// Where the entry was written.
    pub origin: Origin,
    /// Agent-safe mode (`hosts = [...]`): the child gets a placeholder, the proxy the value.
    pub proxy: Option<ProxySpec>,
}

impl Entry {
    /// A required single secret in the environment, as `NAME = "REF"` and `-e` write it.
    pub fn single(name: EnvName, reference: Reference, origin: Origin) -> Self {
        let kind = EntryKind::Single { name, reference, requirement: Requirement::Required };
        Self { kind, delivery: Delivery::Env, origin, proxy: None }
    }

    /// The variable, or the glob key.
    pub fn target(&self) -> Target {
        match &self.kind {
            EntryKind::Single { name, .. } | EntryKind::Template { name, .. } => Target::Name(name.clone()),
            EntryKind::Glob { name, .. } => Target::Glob(name.clone()),
        }
    }

    /// The one variable it sets, unless it is a glob.
    pub fn name(&self) -> Option<&EnvName> {
        match &self.kind {
            EntryKind::Single { name, .. } | EntryKind::Template { name, .. } => Some(name),
            EntryKind::Glob { .. } => None,
        }
    }

    /// The reference as the user wrote it; a template's literal text shows as `…`.
    pub fn source(&self) -> String {
        match &self.kind {
            EntryKind::Single { reference, .. } => reference.to_string(),
            EntryKind::Glob { pattern, .. } => pattern.to_string(),
            EntryKind::Template { template, .. } => template.to_string(),
        }
    }
}

/// The checked mapping: settings from `[store]` and the entries, file order first (a flag that
/// overrides a file entry takes its place), then other flags, then environment references.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    /// The file's `[store]` table.
    pub settings: FileSettings,
    /// Every entry; no two share a target.
    pub entries: Vec<Entry>,
}

impl Mapping {
    /// Builds the mapping from the file (`path` for messages and its `text`), the `-e NAME=REF`
    /// flags in command-line order, and the inherited environment.
    ///
    /// Flags win over the file for the same name or glob key; a flag may not repeat a name.
    /// An inherited variable whose whole value is an environment reference (`ass://…`,
    /// `vault://…`, a scheme a backend registers as one) becomes an entry unless the file or a
    /// flag sets that name; such a value must then be a valid single-secret reference. Other inherited values are never looked at or quoted.
    pub fn build(
        file: Option<(&Path, &str)>,
        flags: &[String],
        inherited: &[(String, String)],
    ) -> Result<Mapping, MappingError> {
        let lookup = |name: &str| Ok(inherited.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()));
        Self::build_with(file, flags, &[], inherited, &lookup)
    }

    /// [`Mapping::build`] with `--env-file` references and a variable lookup for `${VAR}`.
    ///
    /// `env_files` holds (file, name, reference) in file order, already merged (a later file
    /// wins); they rank below the mapping file and above environment references. `${VAR}` and
    /// `${VAR:-default}` are expanded in every reference, template placeholder and `[store]`
    /// string with `vars`.
    pub fn build_with(
        file: Option<(&Path, &str)>,
        flags: &[String],
        env_files: &[(&Path, &str, &str)],
        inherited: &[(String, String)],
        vars: Lookup<'_>,
    ) -> Result<Mapping, MappingError> {
        let (settings, mut entries) = match file {
            Some((path, text)) => {
                let loc = file::Locator::new(path, text);
                schema::check(&loc, file::parse(&loc, text)?, vars)?
            }
            None => (FileSettings::default(), Vec::new()),
        };

        let mut from_flags: Vec<Entry> = Vec::with_capacity(flags.len());
        for (i, flag) in flags.iter().enumerate() {
            let origin = Origin::Flag { index: i + 1 };
            // The flag is not quoted: a mistyped one might be a value rather than a reference.
            let Some((name, reference)) = flag.split_once('=') else {
                return Err(MappingError::FlagSyntax { origin });
            };
            let entry = schema::simple(name, reference, origin.clone(), origin, vars)?;
            if let Some(first) = from_flags.iter().find(|e| e.target() == entry.target()) {
                return Err(MappingError::Duplicate {
                    name: entry.target().to_string(),
                    first: first.origin.clone(),
                    origin: entry.origin,
                });
            }
            from_flags.push(entry);
        }
        for flag in from_flags {
            match entries.iter_mut().find(|e| e.target() == flag.target()) {
                Some(slot) => *slot = flag,
                None => entries.push(flag),
            }
        }

        for (path, name, reference) in env_files {
            if entries.iter().any(|e| e.name().is_some_and(|n| n.as_str() == *name)) {
                continue;
            }
            let origin = Origin::EnvFile { path: (*path).into(), name: (*name).into() };
            entries.push(schema::simple(name, reference, origin.clone(), origin, vars)?);
        }

        for (name, value) in inherited {
            if !is_env_reference(value.as_bytes()) {
                continue;
            }
            // Lowest priority; the first of duplicated inherited names wins, as with getenv.
            if entries.iter().any(|e| e.name().is_some_and(|n| n.as_str() == name)) {
                continue;
            }
            let origin = Origin::EnvRef { name: name.clone() };
            let target =
                EnvName::new(name).map_err(|source| MappingError::Name { origin: origin.clone(), source })?;
            let value = schema::expanded(value, vars, name, &origin, false)?;
            let reference = parse_reference(&value).map_err(|source| MappingError::Reference {
                origin: origin.clone(),
                name: name.clone(),
                source,
            })?;
            entries.push(Entry::single(target, reference, origin));
        }
        Ok(Mapping { settings, entries })
    }

    /// Whether there is nothing to fetch.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Runs `check_name` on every fixed name, so that a dangerous name fails before any
    /// secret is fetched. Names from globs are known only after expansion: check them then.
    pub fn check_names(&self, allow: &[String]) -> Result<(), MappingError> {
        for e in &self.entries {
            if let Some(n) = e.name() {
                check_name(n.as_str(), allow)
                    .map_err(|source| MappingError::Name { origin: e.origin.clone(), source })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
