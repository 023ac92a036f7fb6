//! Command-line interface: the clap definitions, turned once into plain configuration
//! ([`RunConfig`], [`Policy`], [`LogConfig`], [`settings::Flags`], [`ProxyConfig`]), and the one dispatch from
//! subcommand to library. Nothing else in the crate imports this module.

// The flags' doc comments are also their `--help` text, written for a terminal, not rustdoc.
#![allow(rustdoc::bare_urls, rustdoc::broken_intra_doc_links)]

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::app::RunConfig;
use crate::logging::{LogConfig, LogFormat, Program};
use crate::mapping::HostPort;
use crate::proxy::{Pin, ProxyConfig};
use crate::settings;
use crate::supervise::{Policy, Signal};
use agentsecretstore::duration::HumanDuration;

/// Launch a process with secrets from Agent Secret Store (or Vault/OpenBao) in its environment.
///
/// vault-run reads a mapping of environment variable names to secret references, trades the
/// agent key for a token scoped to exactly those secrets, fetches them concurrently, and execs
/// CMD with the secrets in its environment only.
#[derive(Debug, Parser)]
#[command(
    name = "vault-run",
    version,
    about,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = crate::exit::help_text()
)]
pub struct Cli {
    /// Options shared by a run and `check`.
    #[command(flatten)]
    pub opts: RunOptions,

    /// The command to run, with its arguments (after `--`).
    #[arg(value_name = "CMD", trailing_var_arg = true, required = true)]
    pub command: Vec<OsString>,

    /// Subcommand.
    #[command(subcommand)]
    pub subcommand: Option<Command>,
}

/// Subcommands.
// Parsed once per process: the size of the larger variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Resolve and fetch everything like a run, start nothing, and print what would be injected.
    Check(Box<CheckArgs>),
    /// Run an in-memory Agent Secret Store for local development and tests.
    #[cfg(feature = "dev-server")]
    Dev(DevCommand),
    /// Without the dev server built in, `vault-run dev …` says so instead of looking for a
    /// program named `dev`.
    #[cfg(not(feature = "dev-server"))]
    #[command(hide = true, disable_help_flag = true)]
    Dev {
        /// Whatever followed `dev`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        rest: Vec<OsString>,
    },
    /// Put secrets in, list them, remove them: set PATH (value on stdin), import FILE, list NS, rm PATH.
    Secrets(crate::secrets::SecretsArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: crate::completions::Shell,
    },
    /// Print the man page (roff), e.g. `vault-run man > /usr/local/share/man/man1/vault-run.1`.
    Man,
}

/// `vault-run dev [OPTIONS]` runs the server; `vault-run dev approve|deny ID` talks to one.
#[cfg(feature = "dev-server")]
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DevCommand {
    /// The server's options.
    #[command(flatten)]
    pub args: agentsecretstore_dev::DevArgs,

    /// Approve or deny an approval on a running dev server instead.
    #[command(subcommand)]
    pub action: Option<crate::dev_admin::DevAction>,
}

/// `vault-run check`'s options: a run's, plus the output format.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Options shared with a run.
    #[command(flatten)]
    pub opts: RunOptions,

    /// Output: a table for people, or one JSON document for programs (same exit code).
    #[arg(long, value_enum, default_value_t = crate::check_report::CheckFormat::Text)]
    pub format: crate::check_report::CheckFormat,
}

/// Options of a run (and of `check`).
#[derive(Debug, Clone, Args)]
pub struct RunOptions {
    /// Mapping file [default: vault-run.toml in the working directory or the nearest parent, up
    /// to $HOME or the mount point].
    #[arg(short = 'f', long = "file", env = "VAULT_RUN_FILE", hide_env_values = true, value_name = "PATH")]
    pub file: Option<PathBuf>,

    /// Map NAME to a secret reference; repeatable; wins over the file.
    #[arg(short = 'e', long = "env", value_name = "NAME=REF")]
    pub env: Vec<String>,

    /// A .env file: values that are references (ass://…, vault://…) are fetched, others passed
    /// as they are; repeatable, a later file wins; below -e and the mapping file.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,

    /// Each backend's own options (`--agent-key-file`, `--base-url`, …), as it declares them.
    #[command(flatten)]
    pub backend: crate::backend_args::BackendArgs,

    /// Lifetime of the scoped token [default: 5m].
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    pub ttl: Option<HumanDuration>,

    /// Timeout of each request [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    pub timeout: Option<HumanDuration>,

    /// Retries of a failed request (network, 429, 502-504) [default: 3]; 429s with Retry-After
    /// are waited out past them, until --deadline.
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,

    /// Reads in flight at once [default: chosen per run: 256 over HTTP/2, up to 16 over HTTP/1.1
    /// by the server's round trip].
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub concurrency: Option<usize>,

    /// Bound on the whole start-up, approval waiting excluded [default: 2m].
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    pub deadline: Option<HumanDuration>,

    /// How long to wait for a human's approval; 0 fails at once and prints the approval id
    /// [default: 10m].
    #[arg(long, value_name = "DURATION")]
    pub approval_timeout: Option<HumanDuration>,

    /// Give the child only the secrets plus the variables named with --keep.
    #[arg(long)]
    pub pristine: bool,

    /// With --pristine: keep this inherited variable; repeatable.
    #[arg(long, value_name = "NAME")]
    pub keep: Vec<String>,

    /// Never resolve inherited variables whose value is an ass:// or vault:// reference (the
    /// mapping file's `env_refs = false` does the same). Under --pristine only --keep names are.
    #[arg(long)]
    pub no_env_refs: bool,

    /// Leave a variable that is already set alone instead of overriding it.
    #[arg(long)]
    pub no_override: bool,

    /// Pass the credential variables (ASS_AGENT_KEY, ASS_AGENT_KEY_FILE, ASS_ADMIN_KEY, VAULT_TOKEN, …) on to the
    /// child; they are removed by default.
    #[arg(long)]
    pub keep_agent_key: bool,

    /// Keep CREDENTIALS_DIRECTORY in the child's environment even when it holds the agent key
    /// (for services that read other systemd credentials there); removed by default.
    #[arg(long)]
    pub keep_credentials_directory: bool,

    /// Run the command as USER (and GROUP): names or numeric ids. vault-run, started as root,
    /// fetches first, then sets the supplementary groups, gid and uid (and HOME, USER, LOGNAME
    /// unless the mapping sets them), so the command cannot read the agent key.
    #[arg(long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// Allow a variable name that is refused as dangerous (LD_PRELOAD, NODE_OPTIONS, …); repeatable.
    #[arg(long, value_name = "NAME")]
    pub allow_name: Vec<String>,

    /// Allow plain http:// to a non-loopback server (exposes the agent key on the network).
    #[arg(long)]
    pub allow_insecure_http: bool,

    /// More log output (-v info, -vv debug, -vvv trace); never secrets.
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors.
    #[arg(short, long)]
    pub quiet: bool,

    /// Format of log lines on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Supervise mode.
    #[command(flatten)]
    pub supervise: SuperviseArgs,

    /// Agent-safe mode (entries with hosts).
    #[command(flatten)]
    pub proxy: ProxyArgs,
}

/// Supervise-mode flags.
#[derive(Debug, Clone, clap::Args)]
pub struct SuperviseArgs {
    /// Fork and stay as the child's supervisor instead of exec'ing: forward signals, reap
    /// zombies (PID 1), exit with the child's status.
    #[arg(long)]
    pub supervise: bool,

    /// Pass the child's stdout and stderr through vault-run, replacing every injected value
    /// (and its base64, URL and JSON forms) with [REDACTED:NAME] (implies --supervise).
    #[arg(long)]
    pub mask: bool,

    /// Poll the mapped secrets and restart (or signal) the child when they change (implies
    /// --supervise).
    #[arg(long)]
    pub watch: bool,

    /// How often --watch fetches.
    #[arg(long, value_name = "DURATION", default_value = "30s", requires = "watch", value_parser = positive_duration)]
    pub watch_interval: HumanDuration,

    /// Signal that stops the child for a restart (then SIGKILL after --kill-timeout).
    #[arg(long, value_name = "SIGNAL", default_value = "SIGTERM", requires = "watch")]
    pub restart_signal: Signal,

    /// On a change, only send this signal (e.g. SIGHUP) instead of restarting; the child keeps
    /// its environment, so it must re-read its secrets itself.
    #[arg(long, value_name = "SIGNAL", requires = "watch")]
    pub reload_signal: Option<Signal>,

    /// How long a restart waits for the child to exit before SIGKILL.
    #[arg(long, value_name = "DURATION", default_value = "10s", requires = "watch")]
    pub kill_timeout: HumanDuration,

    /// Delay a restart or reload by a random time up to this (spreads a fleet's restarts).
    #[arg(long, value_name = "DURATION", default_value = "0s", requires = "watch")]
    pub splay: HumanDuration,

    /// Send READY=1 to systemd ($NOTIFY_SOCKET) once the child is started (implies --supervise).
    #[arg(long)]
    pub notify_ready: bool,
}

/// Agent-safe mode flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ProxyArgs {
    /// Also trust this CA certificate (PEM) for the proxy's TLS connections to listed hosts
    /// (private upstreams, tests); repeatable.
    #[arg(long, value_name = "FILE")]
    pub upstream_ca: Vec<PathBuf>,

    /// Refuse (403) the child's proxy requests to hosts not listed in any entry's hosts or with
    /// --allow-host: an egress allow-list.
    #[arg(long)]
    pub deny_other_hosts: bool,

    /// With --deny-other-hosts: let the child reach this host too (tunnelled untouched); with
    /// --sandbox and a port, forward that port from inside the sandbox to the host (plain TCP,
    /// e.g. 127.0.0.1:5432); repeatable.
    #[arg(long, value_name = "HOST[:PORT]", value_parser = HostPort::parse)]
    pub allow_host: Vec<HostPort>,

    /// Enforce agent-safe mode in the kernel (Linux): the child gets a network namespace of its
    /// own whose only way out is vault-run (its proxy, transparent capture of :443/:80, its
    /// resolver, --allow-host forwards), and cannot read vault-run's credential files.
    #[arg(long)]
    pub sandbox: bool,

    /// Make the proxy connect to ADDR whenever it reaches HOST:PORT (curl's --resolve; ADDR:PORT2
    /// connects to another port there, like curl's --connect-to); repeatable.
    #[arg(long, value_name = "HOST:PORT:ADDR[:PORT2]", value_parser = Pin::parse)]
    pub resolve: Vec<Pin>,
}

/// A duration flag that must not be zero (a zero TTL, timeout or deadline can only fail).
fn positive_duration(s: &str) -> Result<HumanDuration, String> {
    match s.parse::<HumanDuration>() {
        Ok(d) if d.is_zero() => Err("must be more than 0, e.g. 30s".to_owned()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// A count that must be at least 1.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err("expected a whole number, at least 1".to_owned()),
    }
}

/// Parses the process arguments and runs; returns the process exit code.
pub fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == crate::sandbox::HELPER_ARG) {
        return crate::sandbox::helper_main(&args[2..]);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match cli.subcommand {
        #[cfg(feature = "dev-server")]
        Some(Command::Dev(DevCommand { action: Some(action), .. })) => crate::dev_admin::main(action),
        #[cfg(feature = "dev-server")]
        Some(Command::Dev(DevCommand { args, action: None })) => {
            let (verbose, quiet) = (args.verbose, args.quiet);
            crate::logging::init(LogConfig {
                verbose,
                quiet,
                format: LogFormat::Text,
                program: Program::DevServer,
            });
            agentsecretstore_dev::main(args)
        }
        #[cfg(not(feature = "dev-server"))]
        Some(Command::Dev { .. }) => usage_error(clap::Error::raw(
            clap::error::ErrorKind::InvalidSubcommand,
            "this vault-run was built without the dev server (cargo feature dev-server); to run a program named dev, use `vault-run -- dev`\n",
        )),
        Some(Command::Check(args)) => crate::app::check(args.opts.into_config(), args.format),
        Some(Command::Secrets(args)) => crate::secrets::main(args.into_config()),
        Some(Command::Completions { shell }) => crate::completions::completions(shell, Cli::command()),
        Some(Command::Man) => crate::completions::man(Cli::command()),
        None => crate::app::run(cli.opts.into_config(), cli.command),
    }
}

impl RunOptions {
    /// The flags as plain configuration: the one place clap's structs are read.
    pub fn into_config(self) -> RunConfig {
        RunConfig {
            file: self.file,
            env: self.env,
            env_file: self.env_file,
            no_env_refs: self.no_env_refs,
            settings: settings::Flags {
                tuning: crate::mapping::Tuning {
                    ttl: self.ttl,
                    timeout: self.timeout,
                    retries: self.retries,
                    concurrency: self.concurrency,
                    deadline: self.deadline,
                    approval_timeout: self.approval_timeout,
                },
                allow_insecure_http: self.allow_insecure_http,
                options: self.backend.into_values(),
            },
            pristine: self.pristine,
            keep: self.keep,
            no_override: self.no_override,
            keep_agent_key: self.keep_agent_key,
            keep_credentials_directory: self.keep_credentials_directory,
            user: self.user,
            allow_name: self.allow_name,
            log: LogConfig {
                verbose: self.verbose,
                quiet: self.quiet,
                format: self.log_format,
                program: Program::Launcher,
            },
            supervise: self.supervise.policy(),
            sandbox: self.proxy.sandbox,
            allow_host: self.proxy.allow_host.clone(),
            proxy: self.proxy.config(),
        }
    }
}

impl SuperviseArgs {
    /// The flags as the supervisor's policy.
    pub fn policy(self) -> Policy {
        Policy {
            supervise: self.supervise,
            mask: self.mask,
            watch: self.watch,
            watch_interval: self.watch_interval,
            restart_signal: self.restart_signal,
            reload_signal: self.reload_signal,
            kill_timeout: self.kill_timeout,
            splay: self.splay,
            notify_ready: self.notify_ready,
        }
    }
}

impl ProxyArgs {
    /// The flags as the proxy's configuration.
    pub fn config(self) -> ProxyConfig {
        ProxyConfig {
            upstream_ca: self.upstream_ca,
            deny_other_hosts: self.deny_other_hosts,
            allow_host: self.allow_host.clone(),
            resolve: self.resolve,
            as_other_user: false,
            close_loopback: false,
        }
    }
}

/// Prints a clap error (help and version go to stdout with exit 0) and maps it to 64.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let _ = e.print();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
        _ => ExitCode::from(crate::exit::USAGE),
    }
}
