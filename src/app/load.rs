//! The first stage: find and read the mapping file, add `-e`, `--env-file` and inherited
//! references, refuse what must not run, and merge the settings.

use std::path::{Path, PathBuf};

use super::config::RunConfig;
use super::error::AppError;
use crate::backend::registry::{env_ref_list, is_env_reference};
use crate::inherited::{InheritedVar, Snapshot};
use crate::mapping::Mapping;
use crate::settings::Settings;

/// The mapping file looked for (here, then in each parent) when neither `-f` nor
/// `VAULT_RUN_FILE` names one.
pub const DEFAULT_FILE: &str = crate::discover::FILE_NAME;

/// What [`load`] found.
pub(super) struct Loaded {
    pub mapping: Mapping,
    pub settings: Settings,
    pub file: Option<PathBuf>,
    pub literals: Vec<crate::envfile::EnvFileVar>,
}

/// Reads the mapping (file, `-e` flags, `--env-file`s, env references) and merges the settings.
/// Refuses a run that would fetch nothing and set nothing: a container whose mapping was not
/// copied must not start without its secrets.
///
/// `removed` are the variables vault-run removes from the child (its credentials): `${VAR}`
/// expansion refuses them everywhere, so none reaches the child, a reference or a message.
/// With `roots_only` (`--user` switching users), the mapping and env files must be root's alone
/// ([`crate::files::require_roots`]): the child must not choose what root reads for it.
pub(super) fn load(
    config: &RunConfig,
    inherited: &[InheritedVar],
    removed: &[String],
    roots_only: bool,
) -> Result<Loaded, AppError> {
    let (file, searched) = match mapping_file(config, inherited)? {
        Ok(file) => (Some(file), None),
        Err(searched) => (None, searched),
    };
    if let Some(path) = &file {
        tracing::info!("mapping file: {}", path.display());
    }
    let text = match &file {
        Some(path) => Some(read_mapping_file(path, config.file.is_none(), roots_only)?),
        None => None,
    };
    let utf8: Vec<(&str, &str)> =
        inherited.iter().filter_map(|(k, v)| Some((k.to_str()?, std::str::from_utf8(v).ok()?))).collect();
    let lookup = |name: &str| {
        if removed.iter().any(|r| r == name) {
            return Err(crate::expand::Refused);
        }
        Ok(utf8.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned()))
    };
    let literals = crate::envfile::read_all_checked(&config.env_file, &lookup, roots_only)
        .map_err(|e| AppError::Config(e.to_string()))?;
    // A literal sets a variable as surely as an entry does (`LD_PRELOAD`, `HTTPS_PROXY`): the same
    // list, the same --allow-name, before anything is fetched.
    for v in literals.iter().filter(|v| !v.is_reference()) {
        crate::mapping::check_name(&v.name, &config.allow_name)
            .map_err(|e| AppError::Config(format!("{}: {e}", v.path.display())))?;
    }
    let from_files: Vec<(&Path, &str, &str)> = literals
        .iter()
        .filter(|v| v.is_reference())
        .map(|v| (v.path.as_path(), v.name.as_str(), v.value.as_str()))
        .collect();
    let file_and_text = file.as_deref().zip(text.as_deref());
    // Built first without inherited references: the file may turn them off (`env_refs = false`),
    // and one that is not used must not be parsed, let alone asked for in the token's scopes.
    let mut mapping = Mapping::build_with(file_and_text, &config.env, &from_files, &[], &lookup)?;
    let refs = env_refs(config, mapping.settings.env_refs, inherited);
    if !refs.is_empty() {
        mapping = Mapping::build_with(file_and_text, &config.env, &from_files, &refs, &lookup)?;
    }
    if mapping.settings.deprecated_name {
        tracing::warn!(
            "the mapping file's [vault] table is now called [store] (it configures Agent Secret Store; vault:// references mean HashiCorp Vault); rename it, [vault] will stop working in a future release"
        );
    }
    if mapping.is_empty() && literals.is_empty() {
        return Err(nothing_to_do(config, file.as_deref(), searched.as_ref()));
    }
    // Refuse dangerous names before any request (or approval wait) is made.
    mapping.check_names(&config.allow_name)?;
    let settings = Settings::merge(&config.settings, &mapping.settings, Snapshot::new(inherited))?;
    Ok(Loaded { mapping, settings, file, literals })
}

/// The largest mapping file read: a mapping is a list of names, and reading a huge file (or a
/// device that never ends) would only stall the start.
pub const MAX_MAPPING_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// `discovered`: found by looking (not named with `-f`/`VAULT_RUN_FILE`). Such a file must be
/// the caller's or root's, as git asks of a repository: in a shared directory (`/tmp`, a
/// colleague's checkout) another user could have planted it to choose the child's variables
/// (`GIT_EDITOR`, `EDITOR`, … through `default`) and the secrets fetched.
fn read_mapping_file(path: &Path, discovered: bool, roots_only: bool) -> Result<String, AppError> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let cannot = |e: std::io::Error| {
        AppError::Config(format!("cannot read mapping file {}: {e}; check -f/VAULT_RUN_FILE", path.display()))
    };
    let refused = |e: crate::files::FileError| AppError::Config(format!("{e}; check -f/VAULT_RUN_FILE"));
    let file = crate::files::open_regular(path, "mapping file").map_err(refused)?;
    if roots_only {
        crate::files::require_roots(&file, path, "mapping file").map_err(refused)?;
    } else if discovered {
        let me = nix::unistd::Uid::effective().as_raw();
        let owner = file.metadata().map_err(cannot)?.uid();
        if owner != me && owner != 0 {
            return Err(AppError::Config(format!(
                "found mapping file {} but it belongs to another user (uid {owner}), not you (uid {me}) or root, so it may have been planted and is not used; check it and name it with -f (or VAULT_RUN_FILE) to use it",
                path.display()
            )));
        }
    }
    let mut text = String::new();
    file.take(MAX_MAPPING_FILE_BYTES + 1).read_to_string(&mut text).map_err(cannot)?;
    if text.len() as u64 > MAX_MAPPING_FILE_BYTES {
        return Err(AppError::Config(format!(
            "mapping file {} is larger than {} MiB; a mapping lists names and references, split it or check -f/VAULT_RUN_FILE",
            path.display(),
            MAX_MAPPING_FILE_BYTES >> 20
        )));
    }
    Ok(text)
}

/// The inherited references (`ass://…`, `vault://…`: see [`is_env_reference`]) that may
/// become entries. Anyone who controls one
/// inherited variable could otherwise pull any secret the agent key can read into it: under
/// `--pristine` only `--keep` names count, and `--no-env-refs` (or `env_refs = false`) drops all.
fn env_refs(
    config: &RunConfig,
    file_setting: Option<bool>,
    inherited: &[InheritedVar],
) -> Vec<(String, String)> {
    if config.no_env_refs || file_setting == Some(false) {
        return Vec::new();
    }
    inherited
        .iter()
        .filter_map(|(k, v)| Some((k.to_str()?, std::str::from_utf8(v).ok()?)))
        .filter(|(_, v)| is_env_reference(v.as_bytes()))
        .filter(|(k, _)| !config.pristine || config.keep.iter().any(|kept| kept == k))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The mapping file: `-f`/`VAULT_RUN_FILE`, else the nearest `vault-run.toml` (see
/// [`crate::discover`]); `Err` says where the search looked (`None` when the working directory
/// is unknown), or refuses a file that belongs to someone else.
fn mapping_file(
    config: &RunConfig,
    inherited: &[InheritedVar],
) -> Result<Result<PathBuf, Option<crate::discover::Searched>>, AppError> {
    if let Some(f) = &config.file {
        return Ok(Ok(f.clone()));
    }
    let Ok(cwd) = std::env::current_dir() else { return Ok(Err(None)) };
    let home = crate::inherited::var_os(inherited, "HOME").map(PathBuf::from);
    Ok(crate::discover::find(&cwd, home.as_deref()).map_err(Some))
}

/// The error for a run with nothing in it (exit 78).
fn nothing_to_do(
    config: &RunConfig,
    file: Option<&Path>,
    searched: Option<&crate::discover::Searched>,
) -> AppError {
    let what = match (file, searched) {
        (Some(f), _) => format!("mapping file {} has no [env] entries", f.display()),
        (None, Some(s)) => format!("no mapping file (looked for {})", s.describe()),
        (None, None) => format!("no mapping file ({DEFAULT_FILE} not found)"),
    };
    let env_files = if config.env_file.is_empty() { ", no --env-file" } else { ", --env-file sets nothing" };
    AppError::Config(format!(
        "nothing to fetch: {what}, no -e NAME=REF{env_files}, and no environment variable holds an {} reference; give a mapping with -f FILE (or VAULT_RUN_FILE), -e NAME=REF or --env-file FILE (the command was not started)",
        env_ref_list()
    ))
}
