//! The launcher's pipeline, end to end: mapping → settings → resolve → environment → exec
//! (or the `check` table). Each stage lives in its own module; this one only strings them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::backend::Event;
use crate::cli::RunOptions;
use crate::duration::HumanDuration;
use crate::environment::{self, EnvOptions};
use crate::exec;
use crate::exit::{self, AppError};
use crate::mapping::Mapping;
use crate::notify::notify;
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
    exit::report(&AppError::from(exec::exec(&command, launch.env, &core)))
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
        environment::build(session.inherited.clone(), &session.resolution.vars, &env_options(&opts), 0)
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
    inherited: Vec<(OsString, OsString)>,
}

impl Session {
    /// Loads the mapping and settings and fetches everything once.
    fn start(opts: &RunOptions) -> Result<Self, AppError> {
        let inherited: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        let (mapping, settings) = load(opts, &inherited)?;
        let rt = runtime()?;
        let resolver = Resolver::new(mapping, settings, already_set(opts, &inherited));
        let resolution = rt.block_on(resolver.resolve(&on_event));
        Ok(Self { rt, resolver, resolution, inherited })
    }

    /// The child's environment, or the first reason the child must not start.
    fn launch(&self, opts: &RunOptions, command: &[OsString]) -> Result<Launch, AppError> {
        if let Some(e) = first_error(&self.resolution) {
            return Err(e);
        }
        tracing::info!(variables = self.resolution.vars.len(), "secrets fetched; starting the command");
        let env = environment::build(
            self.inherited.clone(),
            &self.resolution.vars,
            &env_options(opts),
            exec::argv_bytes(command),
        )?;
        Ok(Launch {
            env,
            secrets: self.resolution.vars.iter().map(|v| (v.name.clone(), v.value.clone())).collect(),
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
        scrub: crate::backend::credential_vars().map(str::to_owned).collect(),
    }
}

fn first_error(r: &Resolution) -> Option<AppError> {
    let first = r.errors.first()?.clone();
    Some(AppError::Resolve { first, more: r.errors.len() - 1 })
}

/// Reads the mapping (file, `-e` flags, env references) and merges the settings.
fn load(opts: &RunOptions, inherited: &[(OsString, OsString)]) -> Result<(Mapping, Settings), AppError> {
    let file = mapping_file(opts);
    let text = match &file {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            AppError::Config(format!(
                "cannot read mapping file {}: {e}; check -f/VAULT_RUN_FILE",
                path.display()
            ))
        })?),
        None => None,
    };
    let utf8: Vec<(String, String)> = inherited
        .iter()
        .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v.to_str()?.to_owned())))
        .filter(|(_, v)| v.starts_with("ass://") || v.starts_with("vault://"))
        .collect();
    let mapping = Mapping::build(file.as_deref().zip(text.as_deref()), &opts.env, &utf8)?;
    // Refuse dangerous names before any request (or approval wait) is made.
    mapping.check_names(&opts.allow_name)?;
    let settings = Settings::merge(opts, &mapping.settings)?;
    Ok((mapping, settings))
}

fn mapping_file(opts: &RunOptions) -> Option<PathBuf> {
    opts.file.clone().or_else(|| Path::new(DEFAULT_FILE).is_file().then(|| PathBuf::from(DEFAULT_FILE)))
}

fn already_set(opts: &RunOptions, inherited: &[(OsString, OsString)]) -> Option<AlreadySet> {
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
                r.tier.as_ref().map_or_else(|| "-".to_owned(), |t| t.to_string()),
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
