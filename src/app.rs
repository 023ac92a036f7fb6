//! The launcher's pipeline, end to end: mapping → settings → resolve → environment → exec
//! (or the `check` table). Each stage lives in its own module; this one only strings them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use crate::backend::Event;
use crate::cli::RunOptions;
use crate::duration::HumanDuration;
use crate::environment::{self, EnvOptions, InheritedVar};
use crate::exec;
use crate::exit::{self, AppError};
use crate::mapping::Mapping;
use crate::notify::notify;
use crate::privilege::{self, RunAs};
use crate::resolve::{AlreadySet, Resolution, Resolver, Row};
use crate::settings::Settings;
use crate::supervise::{Launch, Refresh};

/// The mapping file used when neither `-f` nor `VAULT_RUN_FILE` names one.
pub const DEFAULT_FILE: &str = "vault-run.toml";

/// `vault-run [OPTIONS] -- CMD [ARGS]...`: fetch, then exec (or supervise). Returns only on
/// failure, or with the child's status when supervising.
pub fn run(opts: RunOptions, command: Vec<OsString>) -> ExitCode {
    let core = exec::lock_down();
    crate::logging::init(opts.verbose, opts.quiet, opts.log_format);
    let session = match Session::start(&opts) {
        Ok(s) => s,
        Err(e) => return exit::report(&e),
    };
    let launch = match session.launch(&opts, &command) {
        Ok(l) => l,
        Err(e) => return exit::report(&e),
    };
    if let Some(why) = opts.supervise.reason() {
        tracing::info!("supervise mode: {why}");
        // Only --watch needs the session (and the agent key in it) while the child runs.
        let refresh = if opts.supervise.watch {
            Some(session.into_refresh(opts.clone(), command.clone(), &launch))
        } else {
            drop(session);
            None
        };
        return crate::supervise::run(&command, launch, &opts.supervise, &core, refresh);
    }
    drop(session);
    let user = launch.user.clone();
    exit::report(&AppError::from(exec::exec(&command, launch.env, &core, user.as_deref())))
}

/// `vault-run check`: fetch like a run, print the table, start nothing.
pub fn check(opts: RunOptions) -> ExitCode {
    let _core = exec::lock_down();
    crate::logging::init(opts.verbose, opts.quiet, opts.log_format);
    let session = match Session::start(&opts) {
        Ok(s) => s,
        Err(e) => return exit::report(&e),
    };
    print_table(&session.resolution.rows);
    let result = first_error(&session.resolution).map_or(Ok(()), Err).and_then(|()| {
        environment::build(&session.inherited, &session.resolution.vars, &env_options(&opts), 0)
            .map(drop)
            .map_err(AppError::from)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit::report(&e),
    }
}

/// A resolved mapping, with what is needed to resolve it again (`--watch`).
struct Session {
    rt: tokio::runtime::Runtime,
    resolver: Resolver,
    resolution: Resolution,
    inherited: Vec<InheritedVar>,
    user: Option<Arc<RunAs>>,
}

impl Session {
    /// Loads the mapping and settings and fetches everything once.
    fn start(opts: &RunOptions) -> Result<Self, AppError> {
        // An unknown user or a non-root caller fails before anything is fetched.
        let user = opts.user.as_deref().map(privilege::resolve).transpose()?.map(Arc::new);
        let inherited = environment::capture();
        let (mapping, settings) = load(opts, &inherited)?;
        let rt = runtime()?;
        let resolver = Resolver::new(mapping, settings, already_set(opts, &inherited));
        let resolution = rt.block_on(resolver.resolve(&on_event));
        Ok(Self { rt, resolver, resolution, inherited, user })
    }

    /// The child's environment, or the first reason the child must not start.
    fn launch(&self, opts: &RunOptions, command: &[OsString]) -> Result<Launch, AppError> {
        if let Some(e) = first_error(&self.resolution) {
            return Err(e);
        }
        tracing::info!(variables = self.resolution.vars.len(), "secrets fetched; starting the command");
        let adjusted;
        let inherited = match &self.user {
            Some(user) => {
                adjusted = user.adjusted_env(&self.inherited);
                &adjusted
            }
            None => &self.inherited,
        };
        let env = environment::build(
            inherited,
            &self.resolution.vars,
            &env_options(opts),
            exec::argv_bytes(command),
        )?;
        Ok(Launch {
            env,
            secrets: self
                .resolution
                .vars
                .iter()
                .map(|v| (v.name.clone(), v.value.clone()))
                .chain(self.resolution.template_parts.iter().cloned())
                .collect(),
            user: self.user.clone(),
        })
    }

    /// A closure for `--watch`: fetches again, and returns a new launch when any value changed.
    /// A failed fetch is an error (the supervisor keeps the running child and tries later).
    fn into_refresh(self, opts: RunOptions, command: Vec<OsString>, first: &Launch) -> Refresh {
        let mut current = first.secrets.clone();
        let mut session = self;
        Box::new(move || {
            session.resolution = session.rt.block_on(session.resolver.resolve(&on_event));
            let launch = session.launch(&opts, &command)?;
            if launch.secrets == current {
                return Ok(None);
            }
            current = launch.secrets.clone();
            Ok(Some(launch))
        })
    }
}

fn env_options(opts: &RunOptions) -> EnvOptions {
    EnvOptions {
        pristine: opts.pristine,
        keep: opts.keep.clone(),
        keep_agent_key: opts.keep_agent_key,
        allow_names: opts.allow_name.clone(),
        scrub: crate::backend::credential_vars()
            .map(str::to_owned)
            .chain(credentials_directory(opts))
            .collect(),
    }
}

/// `CREDENTIALS_DIRECTORY` when the agent key sits in it: the same-uid child would find the key
/// there. Removed unless `--keep-credentials-directory` (services that read other credentials).
fn credentials_directory(opts: &RunOptions) -> Option<String> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY")?;
    let holds_key = Path::new(&dir).join(crate::backend::ass::key::SYSTEMD_CREDENTIAL).exists();
    (holds_key && !opts.keep_credentials_directory).then(|| "CREDENTIALS_DIRECTORY".to_owned())
}

fn first_error(r: &Resolution) -> Option<AppError> {
    let first = r.errors.first()?.clone();
    Some(AppError::Resolve { first, more: r.errors.len() - 1 })
}

/// Reads the mapping (file, `-e` flags, env references) and merges the settings.
fn load(opts: &RunOptions, inherited: &[InheritedVar]) -> Result<(Mapping, Settings), AppError> {
    let file = mapping_file(opts);
    let text = match &file {
        Some(path) => Some(read_mapping_file(path, opts.file.is_none())?),
        None => None,
    };
    let file_and_text = file.as_deref().zip(text.as_deref());
    // Built first without inherited references: the file may turn them off (`env_refs = false`),
    // and one that is not used must not be parsed, let alone asked for in the token's scopes.
    let mut mapping = Mapping::build(file_and_text, &opts.env, &[])?;
    let refs = env_refs(opts, mapping.settings.env_refs, inherited);
    if !refs.is_empty() {
        mapping = Mapping::build(file_and_text, &opts.env, &refs)?;
    }
    // Refuse dangerous names before any request (or approval wait) is made.
    mapping.check_names(&opts.allow_name)?;
    let settings = Settings::merge(opts, &mapping.settings)?;
    Ok((mapping, settings))
}

/// The largest mapping file read: a mapping is a list of names, and reading a huge file (or a
/// device that never ends) would only stall the start.
pub const MAX_MAPPING_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// `discovered`: found by looking (not named with `-f`/`VAULT_RUN_FILE`). Such a file must be
/// the caller's or root's, as git asks of a repository: in a shared directory (`/tmp`, a
/// colleague's checkout) another user could have planted it to choose the child's variables
/// (`GIT_EDITOR`, `EDITOR`, … through `default`) and the secrets fetched.
fn read_mapping_file(path: &Path, discovered: bool) -> Result<String, AppError> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let cannot = |e: std::io::Error| {
        AppError::Config(format!("cannot read mapping file {}: {e}; check -f/VAULT_RUN_FILE", path.display()))
    };
    let file = std::fs::File::open(path).map_err(cannot)?;
    if discovered {
        let me = nix::unistd::Uid::effective().as_raw();
        let owner = file.metadata().map_err(cannot)?.uid();
        if owner != me && owner != 0 {
            return Err(AppError::Config(format!(
                "mapping file {} is owned by uid {owner}, not by you (uid {me}) or root, so it may have been planted; check it and name it with -f (or VAULT_RUN_FILE) to use it",
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

/// The inherited `ass://`/`vault://` values that may become entries. Anyone who controls one
/// inherited variable could otherwise pull any secret the agent key can read into it: under
/// `--pristine` only `--keep` names count, and `--no-env-refs` (or `env_refs = false`) drops all.
fn env_refs(
    opts: &RunOptions,
    file_setting: Option<bool>,
    inherited: &[InheritedVar],
) -> Vec<(String, String)> {
    if opts.no_env_refs || file_setting == Some(false) {
        return Vec::new();
    }
    inherited
        .iter()
        .filter_map(|(k, v)| Some((k.to_str()?, std::str::from_utf8(v).ok()?)))
        .filter(|(_, v)| v.starts_with("ass://") || v.starts_with("vault://"))
        .filter(|(k, _)| !opts.pristine || opts.keep.iter().any(|kept| kept == k))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn mapping_file(opts: &RunOptions) -> Option<PathBuf> {
    opts.file.clone().or_else(|| Path::new(DEFAULT_FILE).is_file().then(|| PathBuf::from(DEFAULT_FILE)))
}

fn already_set(opts: &RunOptions, inherited: &[InheritedVar]) -> Option<AlreadySet> {
    opts.no_override.then(|| inherited.iter().filter_map(|(k, _)| k.to_str().map(str::to_owned)).collect())
}

/// One thread is plenty: the work is waiting on sockets, and a lean start is the point.
fn runtime() -> Result<tokio::runtime::Runtime, AppError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AppError::Internal(format!("cannot start the I/O runtime: {e}")))
}

fn on_event(event: Event) {
    match event {
        Event::ApprovalPending { approval_id, what, wait } => {
            if wait.is_zero() {
                tracing::warn!(
                    "approval {approval_id} required for {what}; not waiting (--approval-timeout 0)"
                );
            } else {
                tracing::warn!(
                    "approval {approval_id} required for {what}; waiting up to {} for a human to approve it",
                    HumanDuration::from(wait)
                );
            }
            notify(&format!("STATUS=Waiting for approval {approval_id} ({what})"));
        }
        Event::Approved { approval_id } => {
            tracing::info!("approval {approval_id} granted");
            notify(&format!("STATUS=Approval {approval_id} granted; fetching secrets"));
        }
    }
}

/// Prints the `check` table: `NAME  <- REF  version  tier  requirement  status`, no values.
pub fn print_table(rows: &[Row]) {
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                format!("<- {}", r.reference),
                r.version.map_or_else(|| "-".to_owned(), |v| v.to_string()),
                r.tier.map_or_else(|| "-".to_owned(), |t| t.to_string()),
                r.requirement.to_string(),
                r.status.to_string(),
            ]
        })
        .collect();
    let mut widths = [0usize; 6];
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for row in &cells {
        let mut line = String::new();
        for (i, (c, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    print!("{out}");
}
