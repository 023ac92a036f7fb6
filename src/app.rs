//! The launcher's pipeline, end to end: mapping → settings → resolve → environment → exec
//! (or the `check` table). Each stage lives in its own module; this one only strings them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use crate::backend::Event;
use crate::check_report::{CheckFormat, Literal, Report, Row};
use crate::cli::RunOptions;
use crate::duration::HumanDuration;
use crate::environment::{self, EnvOptions, InheritedVar};
use crate::exec;
use crate::exit::{self, AppError};
use crate::mapping::Mapping;
use crate::notify::notify;
use crate::privilege::{self, RunAs};
use crate::proxy::{Proxy, ProxyError};
use crate::resolve::{AlreadySet, Resolution, Resolver};
use crate::settings::Settings;
use crate::supervise::{Launch, Refresh};

/// The mapping file looked for (here, then in each parent) when neither `-f` nor
/// `VAULT_RUN_FILE` names one.
pub const DEFAULT_FILE: &str = crate::discover::FILE_NAME;

/// `vault-run [OPTIONS] -- CMD [ARGS]...`: fetch, then exec (or supervise). Returns only on
/// failure, or with the child's status when supervising.
pub fn run(opts: RunOptions, command: Vec<OsString>) -> ExitCode {
    let core = exec::lock_down();
    crate::logging::init(opts.verbose, opts.quiet, opts.log_format);
    crate::status_line::enable(!opts.quiet && opts.log_format == crate::cli::LogFormat::Text);
    let session = match Session::start(&opts) {
        Ok(s) => s,
        Err(e) => return exit::report(&e),
    };
    let proxy = match start_proxy(&opts, &session) {
        Ok(p) => p,
        Err(e) => return exit::report(&e),
    };
    let launch = match session.launch(&opts, &command, proxy.as_deref()) {
        Ok(l) => l,
        Err(e) => return exit::report(&e),
    };
    // The terminal is the child's from now on: a --watch fetch must not draw over its output.
    crate::status_line::enable(false);
    let why = opts.supervise.reason().or(proxy.as_ref().map(|_| crate::proxy::SUPERVISE_REASON));
    if let Some(why) = why {
        tracing::info!("supervise mode: {why}");
        // Only --watch needs the session (and the agent key in it) while the child runs.
        let refresh = if opts.supervise.watch {
            Some(session.into_refresh(opts.clone(), command.clone(), &launch, proxy.clone()))
        } else {
            drop(session);
            None
        };
        // The proxy thread started before supervise wipes vault-run's environment; it cannot
        // race with that: no child exists yet to send it a request.
        let code = crate::supervise::run(&command, launch, &opts.supervise, &core, refresh);
        if let Some(p) = &proxy {
            p.shutdown();
        }
        return code;
    }
    drop(session);
    let user = launch.user.clone();
    exit::report(&AppError::from(exec::exec(&command, launch.env, &core, user.as_deref())))
}

/// Starts the agent-safe proxy when an entry has `hosts` (and everything was fetched).
fn start_proxy(opts: &RunOptions, session: &Session) -> Result<Option<Arc<Proxy>>, AppError> {
    let routes = crate::proxy::routes(session.resolver.mapping());
    if routes.is_empty() {
        let a = &opts.proxy;
        if a.deny_other_hosts || !a.upstream_ca.is_empty() || !a.resolve.is_empty() {
            tracing::warn!("--deny-other-hosts, --upstream-ca and --resolve apply only to entries with hosts; there are none, so no proxy runs");
        }
        return Ok(None);
    }
    if !session.resolution.errors.is_empty() {
        return Ok(None);
    }
    match Proxy::start(routes, &opts.proxy, &session.inherited) {
        Ok(p) => Ok(Some(Arc::new(p))),
        Err(e @ (ProxyError::UpstreamCa { .. } | ProxyError::Bundle { .. })) => {
            Err(AppError::Config(e.to_string()))
        }
        Err(e) => Err(AppError::Internal(e.to_string())),
    }
}

/// `vault-run check`: fetch like a run, print the table (or JSON), start nothing; exit as the
/// run would have.
pub fn check(opts: RunOptions, format: CheckFormat) -> ExitCode {
    let _core = exec::lock_down();
    crate::logging::init(opts.verbose, opts.quiet, opts.log_format);
    crate::status_line::enable(!opts.quiet && opts.log_format == crate::cli::LogFormat::Text);
    let session = match Session::start(&opts) {
        Ok(s) => s,
        Err(e) => {
            if format == CheckFormat::Json {
                let report = Report {
                    file: None,
                    rows: &[],
                    literals: &[],
                    error: Some((e.to_string(), exit::code(&e))),
                };
                print!("{}", report.json());
            }
            return exit::report(&e);
        }
    };
    let mapping = session.resolver.mapping();
    let rows: Vec<Row> = crate::check_report::rows(&session.resolution)
        .into_iter()
        .map(|mut r| {
            if let Some(note) = crate::proxy::describe(mapping, &r.name) {
                r.reference = format!("{}  {note}", r.reference);
            }
            r
        })
        .collect();
    let result = first_error(&session.resolution).map_or(Ok(()), Err).and_then(|()| {
        environment::build(&session.inherited, &session.resolution.vars, &session.env_options(&opts), 0)
            .map(drop)
            .map_err(AppError::from)
    });
    let report = Report {
        file: session.file.as_deref(),
        rows: &rows,
        literals: &session.literals,
        error: result.as_ref().err().map(|e| (e.to_string(), exit::code(e))),
    };
    match format {
        CheckFormat::Text => print!("{}", report.text()),
        CheckFormat::Json => print!("{}", report.json()),
    }
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
    /// The inherited environment (wiping buffers) with `--env-file` literals applied.
    inherited: Vec<InheritedVar>,
    user: Option<Arc<RunAs>>,
    /// The mapping file used, if any.
    file: Option<PathBuf>,
    /// Variables set by `--env-file` literals (kept under `--pristine`: they were asked for).
    literals: Vec<Literal>,
}

impl Session {
    /// Loads the mapping and settings and fetches everything once.
    fn start(opts: &RunOptions) -> Result<Self, AppError> {
        // An unknown user or a non-root caller fails before anything is fetched.
        let user = opts.user.as_deref().map(privilege::resolve).transpose()?.map(Arc::new);
        let inherited = environment::capture();
        let loaded = load(opts, &inherited)?;
        let rt = runtime()?;
        let resolver = Resolver::new(loaded.mapping, loaded.settings, already_set(opts, &inherited));
        let resolution = rt.block_on(resolver.resolve(&on_event));
        crate::status_line::stop();
        let literals = loaded
            .literals
            .iter()
            .filter(|v| !v.is_reference())
            .map(|v| Literal { name: v.name.clone(), path: v.path.clone() })
            .collect();
        let inherited = crate::envfile::with_literals(inherited, &loaded.literals, opts.no_override);
        Ok(Self { rt, resolver, resolution, inherited, user, file: loaded.file, literals })
    }

    /// The child's environment, or the first reason the child must not start.
    /// With the proxy, its entries get placeholders (the proxy gets the values).
    fn launch(
        &self,
        opts: &RunOptions,
        command: &[OsString],
        proxy: Option<&Proxy>,
    ) -> Result<Launch, AppError> {
        if let Some(e) = first_error(&self.resolution) {
            return Err(e);
        }
        tracing::info!(variables = self.resolution.vars.len(), "secrets fetched; starting the command");
        let vars = match proxy {
            Some(p) => std::borrow::Cow::Owned(p.child_vars(&self.resolution.vars, &self.inherited)),
            None => std::borrow::Cow::Borrowed(&self.resolution.vars),
        };
        let adjusted;
        let inherited = match &self.user {
            Some(user) => {
                adjusted = user.adjusted_env(&self.inherited);
                &adjusted
            }
            None => &self.inherited,
        };
        let env = environment::build(inherited, &vars, &self.env_options(opts), exec::argv_bytes(command))?;
        // A proxied value never reaches the child: nothing to mask, and its rotation needs no restart.
        let in_child = |name: &str| !proxy.is_some_and(|p| p.handles(name));
        Ok(Launch {
            env,
            secrets: self
                .resolution
                .vars
                .iter()
                .filter(|v| in_child(&v.name))
                .map(|v| (v.name.clone(), v.value.clone()))
                .chain(self.resolution.template_parts.iter().cloned())
                .collect(),
            user: self.user.clone(),
        })
    }

    /// A closure for `--watch`: fetches again, and returns a new launch when any value changed.
    /// A failed fetch is an error (the supervisor keeps the running child and tries later).
    fn into_refresh(
        self,
        opts: RunOptions,
        command: Vec<OsString>,
        first: &Launch,
        proxy: Option<Arc<Proxy>>,
    ) -> Refresh {
        let mut current = first.secrets.clone();
        let mut session = self;
        Box::new(move || {
            session.resolution = session.rt.block_on(session.resolver.resolve(&on_event));
            crate::status_line::stop();
            let launch = session.launch(&opts, &command, proxy.as_deref())?;
            if launch.secrets == current {
                return Ok(None);
            }
            current = launch.secrets.clone();
            Ok(Some(launch))
        })
    }
}

impl Session {
    fn env_options(&self, opts: &RunOptions) -> EnvOptions {
        let mut o = env_options(opts);
        o.keep.extend(self.literals.iter().map(|l| l.name.clone()));
        o
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

/// What [`load`] found.
struct Loaded {
    mapping: Mapping,
    settings: Settings,
    file: Option<PathBuf>,
    literals: Vec<crate::envfile::EnvFileVar>,
}

/// Reads the mapping (file, `-e` flags, `--env-file`s, env references) and merges the settings.
/// Refuses a run that would fetch nothing and set nothing: a container whose mapping was not
/// copied must not start without its secrets.
fn load(opts: &RunOptions, inherited: &[InheritedVar]) -> Result<Loaded, AppError> {
    let (file, searched) = match mapping_file(opts)? {
        Ok(file) => (Some(file), None),
        Err(searched) => (None, searched),
    };
    if let Some(path) = &file {
        tracing::info!("mapping file: {}", path.display());
    }
    let text = match &file {
        Some(path) => Some(read_mapping_file(path, opts.file.is_none())?),
        None => None,
    };
    let utf8: Vec<(&str, &str)> =
        inherited.iter().filter_map(|(k, v)| Some((k.to_str()?, std::str::from_utf8(v).ok()?))).collect();
    let lookup = |name: &str| utf8.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned());
    let literals =
        crate::envfile::read_all(&opts.env_file, &lookup).map_err(|e| AppError::Config(e.to_string()))?;
    let from_files: Vec<(&Path, &str, &str)> = literals
        .iter()
        .filter(|v| v.is_reference())
        .map(|v| (v.path.as_path(), v.name.as_str(), v.value.as_str()))
        .collect();
    let file_and_text = file.as_deref().zip(text.as_deref());
    // Built first without inherited references: the file may turn them off (`env_refs = false`),
    // and one that is not used must not be parsed, let alone asked for in the token's scopes.
    let mut mapping = Mapping::build_with(file_and_text, &opts.env, &from_files, &[], &lookup)?;
    let refs = env_refs(opts, mapping.settings.env_refs, inherited);
    if !refs.is_empty() {
        mapping = Mapping::build_with(file_and_text, &opts.env, &from_files, &refs, &lookup)?;
    }
    if mapping.is_empty() && literals.is_empty() {
        return Err(nothing_to_do(opts, file.as_deref(), searched.as_ref()));
    }
    // Refuse dangerous names before any request (or approval wait) is made.
    mapping.check_names(&opts.allow_name)?;
    let settings = Settings::merge(opts, &mapping.settings)?;
    Ok(Loaded { mapping, settings, file, literals })
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

/// The mapping file: `-f`/`VAULT_RUN_FILE`, else the nearest `vault-run.toml` (see
/// [`crate::discover`]); `Err` says where the search looked (`None` when the working directory
/// is unknown), or refuses a file that belongs to someone else.
fn mapping_file(opts: &RunOptions) -> Result<Result<PathBuf, Option<crate::discover::Searched>>, AppError> {
    if let Some(f) = &opts.file {
        return Ok(Ok(f.clone()));
    }
    let Ok(cwd) = std::env::current_dir() else { return Ok(Err(None)) };
    let home = std::env::var_os("HOME").map(PathBuf::from);
    match crate::discover::find(&cwd, home.as_deref()) {
        Ok(path) => Ok(Ok(path)),
        Err(crate::discover::NotFound::Searched(s)) => Ok(Err(Some(s))),
        Err(crate::discover::NotFound::Foreign { path, uid }) => Err(AppError::Config(format!(
            "found mapping file {} but it belongs to another user (uid {uid}), so it is not used; pass it with -f if you trust it, or run from another directory",
            path.display()
        ))),
    }
}

/// The error for a run with nothing in it (exit 78).
fn nothing_to_do(
    opts: &RunOptions,
    file: Option<&Path>,
    searched: Option<&crate::discover::Searched>,
) -> AppError {
    let what = match (file, searched) {
        (Some(f), _) => format!("mapping file {} has no [env] entries", f.display()),
        (None, Some(s)) => format!("no mapping file (looked for {})", s.describe()),
        (None, None) => format!("no mapping file ({DEFAULT_FILE} not found)"),
    };
    let env_files = if opts.env_file.is_empty() { ", no --env-file" } else { ", --env-file sets nothing" };
    AppError::Config(format!(
        "nothing to fetch: {what}, no -e NAME=REF{env_files}, and no environment variable holds an ass:// or vault:// reference; give a mapping with -f FILE (or VAULT_RUN_FILE), -e NAME=REF or --env-file FILE (the command was not started)"
    ))
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
        Event::ApprovalPending { approval_id, what, wait, how } => {
            if wait.is_zero() {
                tracing::warn!(
                    "approval {approval_id} required for {what}; not waiting (--approval-timeout 0); {how}"
                );
            } else {
                tracing::warn!(
                    "approval {approval_id} required for {what}; waiting up to {} for a human to approve it; {how}",
                    HumanDuration::from(wait)
                );
            }
            notify(&format!("STATUS=Waiting for approval {approval_id} ({what})"));
            if !wait.is_zero() {
                crate::status_line::start(
                    crate::status_line::Kind::Approval,
                    format!("approval {approval_id}"),
                    what,
                    wait,
                );
            }
        }
        Event::Approved { approval_id } => {
            crate::status_line::stop();
            tracing::info!("approval {approval_id} granted");
            notify(&format!("STATUS=Approval {approval_id} granted; fetching secrets"));
        }
    }
}
