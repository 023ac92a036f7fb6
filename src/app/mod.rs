//! The launcher's pipeline, end to end: mapping → settings → resolve → environment → exec
//! (or the `check` table). Each stage lives in its own module; this one only strings them. It
//! takes plain configuration ([`RunConfig`]), which `cli` builds once from the flags.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use crate::backend::Event;
use crate::check_report::Row;
use crate::check_report::{CheckFormat, Literal, Report};
use crate::environment::{self, EnvOptions, InheritedVar};
use crate::exec;
use crate::notify::notify;
use crate::privilege::{self, RunAs};
use crate::proxy::{Proxy, ProxyError};
use crate::resolve::{AlreadySet, Resolution, Resolver};
use crate::sandbox::{Sandbox, SandboxConfig, SandboxError};
use crate::supervise::{Launch, Refresh, SuperviseError};
use agentsecretstore::duration::HumanDuration;
use agentsecretstore::secret::SecretString;

mod config;
mod error;
mod load;

pub use self::config::RunConfig;
pub use self::error::{code_for, AppError};
use self::load::load;

/// `vault-run [OPTIONS] -- CMD [ARGS]...`: fetch, then exec (or supervise). Returns only on
/// failure, or with the child's status when supervising.
pub fn run(config: RunConfig, command: Vec<OsString>) -> ExitCode {
    let core_limit = exec::lock_down();
    crate::logging::init(config.log);
    crate::status_line::enable(config.log.status_line());
    if let Err(e) = command_runs(&command) {
        return e.report();
    }
    let mut fetched = match FetchedRun::start(&config) {
        Ok(s) => s,
        Err(e) => return e.report(),
    };
    let proxy = match start_proxy(&config, &mut fetched) {
        Ok(p) => p,
        Err(e) => return e.report(),
    };
    let launch = match fetched.launch(&command, proxy.as_deref()) {
        Ok(l) => l,
        Err(e) => return e.report(),
    };
    // Serves the child until vault-run ends (what --watch fetches again does not hold it).
    let sandbox = fetched.sandbox.take();
    // The terminal is the child's from now on: a --watch fetch must not draw over its output.
    crate::status_line::enable(false);
    let why = config
        .supervise
        .reason()
        .or(sandbox.as_ref().map(|_| crate::sandbox::SUPERVISE_REASON))
        .or(proxy.as_ref().map(|_| crate::proxy::SUPERVISE_REASON))
        .or(crate::supervise::pty::needed_for(launch.user.as_deref())
            .then_some(crate::supervise::pty::USER_REASON));
    if let Some(why) = why {
        tracing::info!("supervise mode: {why}");
        // Only --watch needs what was fetched (and the agent key in it) while the child runs.
        let refresh = if config.supervise.watch {
            Some(fetched.into_refresh(command.clone(), &launch, proxy.clone()))
        } else {
            drop(fetched);
            None
        };
        // The proxy thread started before supervise wipes vault-run's environment; it cannot
        // race with that: no child exists yet to send it a request.
        let code = crate::supervise::run(&command, launch, &config.supervise, &core_limit, refresh);
        if let Some(p) = &proxy {
            p.shutdown();
        }
        return code;
    }
    drop(fetched);
    let user = launch.user.clone();
    AppError::from(exec::exec(&command, launch.env, &core_limit, user.as_deref())).report()
}

/// The command exists and may be executed, checked before anything is fetched (so a typo
/// never spends an approval). A "command" that starts with `-` and is not a program is a
/// vault-run option written after `--` (an image's `ENTRYPOINT ["vault-run", "--"]` plus a
/// `command:` with options makes exactly that).
fn command_runs(command: &[OsString]) -> Result<(), AppError> {
    match exec::resolve(command) {
        Err(exec::ExecError::NotFound(name)) if name.starts_with('-') => Err(AppError::Usage(format!(
            "{name} comes after `--`, where the command goes, and is no program; vault-run's options go before `--`: vault-run {name} [OPTIONS] -- CMD [ARGS]... (with an image's ENTRYPOINT [\"vault-run\", \"--\"], give options in the entrypoint, not in CMD or compose's command:)"
        ))),
        other => other.map_err(AppError::from),
    }
}

/// Starts the agent-safe proxy when an entry has `hosts` or under `--sandbox` (and everything
/// was fetched); under `--sandbox` it serves the sockets in the child's namespace, and the
/// sandbox's resolver and forwards start too.
fn start_proxy(config: &RunConfig, fetched: &mut FetchedRun) -> Result<Option<Arc<Proxy>>, AppError> {
    let routes = crate::proxy::routes(fetched.resolver.mapping());
    let owner = bundle_owner(fetched);
    if let Some(sandbox) = fetched.sandbox.as_mut() {
        if !fetched.resolution.errors.is_empty() {
            return Ok(None);
        }
        let mut allowed: Vec<String> =
            routes.iter().flat_map(|r| r.hosts.iter().map(|h| h.host.clone())).collect();
        allowed.extend(config.allow_host.iter().map(|a| a.host.clone()));
        let names = crate::sandbox::Names { allowed, deny_other: config.proxy.deny_other_hosts };
        let sockets = sandbox.take_proxy_sockets().map(|s| crate::proxy::Listeners {
            proxy: s.proxy,
            tls: s.tls,
            http: s.http,
        });
        let proxy_config = crate::proxy::ProxyConfig {
            close_loopback: true,
            as_other_user: owner.is_some(),
            ..config.proxy.clone()
        };
        let proxy = Proxy::start_with(routes, &proxy_config, &fetched.inherited, None, sockets)
            .map_err(proxy_error)?;
        sandbox.serve(names).map_err(sandbox_error)?;
        // A host process's /proc/PID/fd is closed to the sandboxed child: the bundle is copied
        // into the sandbox.
        let pem = std::fs::read(proxy.ca_bundle_path())
            .map_err(|e| AppError::Internal(format!("cannot read the child's CA bundle: {e}")))?;
        fetched.sandbox_bundle = Some(sandbox.install("ca-bundle.pem", &pem).map_err(sandbox_error)?);
        return Ok(Some(Arc::new(proxy)));
    }
    if routes.is_empty() {
        let a = &config.proxy;
        if a.deny_other_hosts || !a.upstream_ca.is_empty() || !a.resolve.is_empty() {
            tracing::warn!("--deny-other-hosts, --upstream-ca and --resolve apply only to entries with hosts; there are none, so no proxy runs");
        }
        return Ok(None);
    }
    if !fetched.resolution.errors.is_empty() {
        return Ok(None);
    }
    tracing::info!("{}", crate::sandbox::ADVISORY);
    let args =
        crate::proxy::ProxyConfig { as_other_user: bundle_owner(fetched).is_some(), ..config.proxy.clone() };
    Proxy::start(routes, &args, &fetched.inherited, bundle_owner(fetched))
        .map(|p| Some(Arc::new(p)))
        .map_err(proxy_error)
}

/// Under a real `--user` switch, the CA bundle's holder runs as the child's user, so that the
/// child (and only its user) can open it.
fn bundle_owner(fetched: &FetchedRun) -> Option<crate::proxy::holder::Owner> {
    fetched
        .user
        .as_deref()
        .filter(|u| u.switch)
        .map(|u| crate::proxy::holder::Owner { uid: u.uid.as_raw(), gid: u.gid.as_raw() })
}

fn proxy_error(e: ProxyError) -> AppError {
    match e {
        e @ (ProxyError::UpstreamCa { .. } | ProxyError::Bundle { .. }) => AppError::Config(e.to_string()),
        e => AppError::Internal(e.to_string()),
    }
}

fn sandbox_error(e: SandboxError) -> AppError {
    match e {
        e @ (SandboxError::Refused(_) | SandboxError::Config(_)) => AppError::Config(e.to_string()),
        e @ SandboxError::Setup(_) => AppError::Internal(e.to_string()),
    }
}

/// What `--sandbox` is made with: the `--allow-host` forwards, vault-run's own credential
/// files (hidden) and the files that configured the run (read-only).
fn sandbox_config(
    config: &RunConfig,
    inherited: &[InheritedVar],
    mapping_file: Option<&Path>,
) -> SandboxConfig {
    let var = |name: &str| crate::inherited::var_os(inherited, name).map(PathBuf::from);
    let mut hide: Vec<PathBuf> =
        // Every file a backend declares as an option (the agent key file, the Vault token file)
        // holds a credential, whether the flag or its variable gave it.
        crate::backend::registry::options()
            .filter(|o| matches!(o.kind, crate::backend::registry::ValueKind::Path))
            .filter_map(|o| {
                config.settings.options.path(o).map(Path::to_path_buf).or_else(|| o.env.and_then(var))
            })
            .chain(["VAULT_SECRET_ID_FILE", "BAO_SECRET_ID_FILE"].iter().filter_map(|n| var(n)))
            .chain(var("HOME").map(|h| h.join(".vault-token")))
            .collect();
    if let Some(dir) = var("CREDENTIALS_DIRECTORY") {
        // The whole directory, unless the child was meant to read the other credentials in it.
        hide.push(if config.keep_credentials_directory {
            dir.join(crate::backend::ass::key::SYSTEMD_CREDENTIAL)
        } else {
            dir
        });
    }
    // Filesystem sockets a service listens on would relay the child anywhere (and the Docker
    // socket is root on the host): the caller's runtime directory (D-Bus session bus, podman,
    // ssh-agent and the like) and the container engines' sockets.
    hide.extend(var("XDG_RUNTIME_DIR"));
    hide.extend(
        [
            "/run/docker.sock",
            "/var/run/docker.sock",
            "/run/podman/podman.sock",
            "/run/containerd/containerd.sock",
        ]
        .map(PathBuf::from),
    );
    hide.retain(|p| p.exists());
    let read_only =
        mapping_file.map(Path::to_path_buf).into_iter().chain(config.env_file.iter().cloned()).collect();
    SandboxConfig { allow: config.allow_host.clone(), hide, read_only }
}

/// `vault-run check`: fetch like a run, print the table (or JSON), start nothing; exit as the
/// run would have.
pub fn check(config: RunConfig, format: CheckFormat) -> ExitCode {
    let _core_limit = exec::lock_down();
    crate::logging::init(config.log);
    crate::status_line::enable(config.log.status_line());
    let fetched = match FetchedRun::start(&config) {
        Ok(s) => s,
        Err(e) => {
            if format == CheckFormat::Json {
                let report =
                    Report { file: None, rows: &[], literals: &[], error: Some((e.to_string(), e.code())) };
                print!("{}", report.json());
            }
            return e.report();
        }
    };
    let mapping = fetched.resolver.mapping();
    let rows: Vec<Row> = crate::check_report::rows(&fetched.resolution)
        .into_iter()
        .map(|mut r| {
            if let Some(note) = crate::proxy::describe(mapping, &r.name) {
                r.reference = format!("{}  {note}", r.reference);
            }
            r
        })
        .collect();
    let result = first_error(&fetched.resolution).map_or(Ok(()), Err).and_then(|()| {
        environment::build(&fetched.inherited, &fetched.resolution.vars, &fetched.env_options, 0)
            .map(drop)
            .map_err(AppError::from)
    });
    let report = Report {
        file: fetched.file.as_deref(),
        rows: &rows,
        literals: &fetched.literals,
        error: result.as_ref().err().map(|e| (e.to_string(), e.code())),
    };
    let advisory = !config.sandbox && !crate::proxy::routes(mapping).is_empty();
    match format {
        CheckFormat::Text if advisory => println!("{}note: {}", report.text(), crate::sandbox::ADVISORY),
        CheckFormat::Text => print!("{}", report.text()),
        CheckFormat::Json => print!("{}", report.json()),
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}

/// A resolved mapping, with what is needed to resolve it again (`--watch`).
struct FetchedRun {
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
    /// How the child's environment is built from `inherited` and the secrets.
    env_options: EnvOptions,
    /// `--sandbox`: the namespaces, made before anything was fetched.
    sandbox: Option<Sandbox>,
    /// `--sandbox`: where the child finds its CA bundle.
    sandbox_bundle: Option<PathBuf>,
    /// `--sandbox`: what every child (first, restarted) enters.
    sandbox_entry: Option<Arc<crate::sandbox::Entry>>,
}

impl FetchedRun {
    /// Loads the mapping and settings and fetches everything once.
    fn start(config: &RunConfig) -> Result<Self, AppError> {
        // An unknown user or a non-root caller fails before anything is fetched.
        let user = config.user.as_deref().map(privilege::resolve).transpose()?.map(Arc::new);
        let inherited = environment::capture();
        let mut env_options = env_options(config, &inherited);
        let roots_only = user.as_ref().is_some_and(|u| u.switch);
        let loaded = load(config, &inherited, &env_options.scrub, roots_only)?;
        let proxied = !crate::proxy::routes(&loaded.mapping).is_empty();
        refuse_special_files(config, &inherited, &loaded.literals, proxied)?;
        if !config.allow_host.is_empty() && !config.sandbox && !config.proxy.deny_other_hosts {
            return Err(AppError::Usage(
                "--allow-host needs --deny-other-hosts or --sandbox (without them every host is reachable)"
                    .into(),
            ));
        }
        // A kernel that refuses the namespaces stops the run before anything is fetched.
        let sandbox = match config.sandbox {
            true => Some(
                Sandbox::create(&sandbox_config(config, &inherited, loaded.file.as_deref()))
                    .map_err(sandbox_error)?,
            ),
            false => None,
        };
        let rt = runtime()?;
        let resolver = Resolver::new(loaded.mapping, loaded.settings, already_set(config, &inherited));
        let resolution = rt.block_on(resolver.resolve(&on_event));
        crate::status_line::stop();
        let literals = loaded
            .literals
            .iter()
            .filter(|v| !v.is_reference())
            .map(|v| Literal { name: v.name.clone(), path: v.path.clone() })
            .collect::<Vec<_>>();
        env_options.keep.extend(literals.iter().map(|l| l.name.clone()));
        let inherited = crate::envfile::with_literals(inherited, &loaded.literals, config.no_override);
        Ok(Self {
            rt,
            resolver,
            resolution,
            inherited,
            user,
            file: loaded.file,
            literals,
            env_options,
            sandbox_entry: sandbox.as_ref().map(Sandbox::entry),
            sandbox,
            sandbox_bundle: None,
        })
    }

    /// The child's environment, or the first reason the child must not start.
    /// With the proxy, its entries get placeholders (the proxy gets the values).
    fn launch(&self, command: &[OsString], proxy: Option<&Proxy>) -> Result<Launch, AppError> {
        if let Some(e) = first_error(&self.resolution) {
            return Err(e);
        }
        tracing::info!(variables = self.resolution.vars.len(), "secrets fetched; starting the command");
        let mut vars = match proxy {
            Some(p) => std::borrow::Cow::Owned(p.child_vars(&self.resolution.vars, &self.inherited)),
            None => std::borrow::Cow::Borrowed(&self.resolution.vars),
        };
        if let Some(bundle) = &self.sandbox_bundle {
            for v in vars
                .to_mut()
                .iter_mut()
                .filter(|v| crate::proxy::CHILD_VARIABLES[6..].contains(&v.name.as_str()))
            {
                v.value = agentsecretstore::secret::SecretString::new(bundle.display().to_string());
            }
        }
        if let (Some(_), Some(first)) = (&self.sandbox_entry, self.resolution.vars.first()) {
            // Node 22.21+/24+ then uses the explicit proxy; older Node is captured.
            vars.to_mut().push(crate::resolve::ResolvedVar {
                name: "NODE_USE_ENV_PROXY".into(),
                value: agentsecretstore::secret::SecretString::new("1".to_owned()),
                delivery: crate::mapping::Delivery::Env,
                origin: first.origin.clone(),
            });
        }
        let adjusted;
        let inherited = match &self.user {
            Some(user) => {
                adjusted = user.adjusted_env(&self.inherited);
                &adjusted
            }
            None => &self.inherited,
        };
        let mut env_options = self.env_options.clone();
        if proxy.is_some() {
            // The proxy's own variables are on the dangerous-names list: a mapping must not set
            // them, but vault-run does, for agent-safe mode.
            env_options.allow_names.extend(crate::proxy::CHILD_VARIABLES.iter().map(|n| (*n).to_owned()));
        }
        let env = environment::build(inherited, &vars, &env_options, exec::argv_bytes(command))?;
        // A proxied value never reaches the child's environment, but a listed host may hand it
        // back where the proxy does not scrub (WebSocket frames): `--mask` masks it too. Its
        // rotation needs no restart (see `into_refresh`).
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
            sandbox: self.sandbox_entry.clone(),
        })
    }

    /// A closure for `--watch`: fetches again, and returns a new launch when any value changed.
    /// A failed fetch is an error (the supervisor keeps the running child and tries later).
    fn into_refresh(self, command: Vec<OsString>, first: &Launch, proxy: Option<Arc<Proxy>>) -> Refresh {
        // Only values in the child's environment restart it: the proxy already has the new
        // value of its entries (`launch` gave it).
        let in_child = move |secrets: &[(String, SecretString)], proxy: Option<&Proxy>| {
            secrets.iter().filter(|(n, _)| !proxy.is_some_and(|p| p.handles(n))).cloned().collect::<Vec<_>>()
        };
        let mut current = in_child(&first.secrets, proxy.as_deref());
        let mut fetched = self;
        Box::new(move || {
            fetched.resolution = fetched.rt.block_on(fetched.resolver.resolve(&on_event));
            crate::status_line::stop();
            let launch =
                fetched.launch(&command, proxy.as_deref()).map_err(|e| SuperviseError::Fetch(Box::new(e)))?;
            let now = in_child(&launch.secrets, proxy.as_deref());
            if now == current {
                return Ok(None);
            }
            current = now;
            Ok(Some(launch))
        })
    }
}

/// The CA files a run will read (`--upstream-ca`, `ASS_CACERT`, the child's `SSL_CERT_FILE` that
/// agent-safe mode bundles when `proxied`) are refused now, before any fetch, when a FIFO or device would make
/// that read block for ever or never end.
fn refuse_special_files(
    config: &RunConfig,
    inherited: &[InheritedVar],
    literals: &[crate::envfile::EnvFileVar],
    proxied: bool,
) -> Result<(), AppError> {
    let var =
        |name: &str| crate::inherited::var_os(inherited, name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let ssl_literal = literals
        .iter()
        .filter(|v| v.name == "SSL_CERT_FILE" && !v.value.is_empty())
        .map(|v| PathBuf::from(&*v.value));
    let files = config
        .proxy
        .upstream_ca
        .iter()
        .map(|p| ("--upstream-ca", p.clone()))
        .chain(var("ASS_CACERT").map(|p| ("ASS_CACERT", p)))
        .chain(
            var("SSL_CERT_FILE")
                .into_iter()
                .chain(ssl_literal)
                .filter(|_| proxied)
                .map(|p| ("SSL_CERT_FILE", p)),
        );
    for (what, path) in files {
        crate::files::open_regular(&path, what).map_err(|e| AppError::Config(e.to_string()))?;
    }
    Ok(())
}

fn env_options(config: &RunConfig, inherited: &[InheritedVar]) -> EnvOptions {
    EnvOptions {
        pristine: config.pristine,
        keep: config.keep.clone(),
        keep_agent_key: config.keep_agent_key,
        allow_names: config.allow_name.clone(),
        // The one list of what the child never gets; `${VAR}` expansion refuses the same names.
        scrub: crate::backend::credential_vars()
            .map(str::to_owned)
            .chain(credentials_directory(config, inherited))
            .collect(),
    }
}

/// `CREDENTIALS_DIRECTORY` when the agent key sits in it: the same-uid child would find the key
/// there. Removed unless `--keep-credentials-directory` (services that read other credentials).
fn credentials_directory(config: &RunConfig, inherited: &[InheritedVar]) -> Option<String> {
    let dir = crate::inherited::var_os(inherited, "CREDENTIALS_DIRECTORY")?;
    let holds_key = Path::new(&dir).join(crate::backend::ass::key::SYSTEMD_CREDENTIAL).exists();
    (holds_key && !config.keep_credentials_directory).then(|| "CREDENTIALS_DIRECTORY".to_owned())
}

fn first_error(r: &Resolution) -> Option<AppError> {
    let first = r.errors.first()?.clone();
    // A failure of the whole batch (no key, server unreachable) is one failure, not one per entry.
    let more = r.errors.iter().skip(1).filter(|e| e.message != first.message).count();
    Some(AppError::Resolve { first, more })
}

fn already_set(config: &RunConfig, inherited: &[InheritedVar]) -> Option<AlreadySet> {
    config.no_override.then(|| inherited.iter().filter_map(|(k, _)| k.to_str().map(str::to_owned)).collect())
}

/// One thread is plenty: the work is waiting on sockets, and a lean start is the point.
fn runtime() -> Result<tokio::runtime::Runtime, AppError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AppError::Internal(format!("cannot start the I/O runtime: {e}")))
}

/// Shows a backend's progress: an approval to wait for (log line, systemd `STATUS=`, the live
/// status line), then its grant.
pub fn on_event(event: Event) {
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
            // Under Type=notify, a start that waits for a human must not be killed by
            // TimeoutStartSec: ask systemd for the wait plus a margin for the fetch after it.
            let extend = if wait.is_zero() {
                String::new()
            } else {
                format!("\nEXTEND_TIMEOUT_USEC={}", (wait + std::time::Duration::from_secs(60)).as_micros())
            };
            notify(&format!("STATUS=Waiting for approval {approval_id} ({what}){extend}"));
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
