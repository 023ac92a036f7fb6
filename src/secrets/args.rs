//! `vault-run secrets …`'s command line: the clap definitions, turned once into plain values
//! ([`SecretsConfig`]). The top-level `cli` module names [`SecretsArgs`] as a subcommand.

// The flags' doc comments are also their `--help` text, written for a terminal, not rustdoc.
#![allow(rustdoc::bare_urls, rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::logging::{LogConfig, LogFormat, Program};
use agentsecretstore::duration::HumanDuration;
use agentsecretstore::wire::{AccessTier, SecretType};

/// `vault-run secrets set|import|list|rm`: put secrets in, list them, remove them.
#[derive(Debug, Clone, Args)]
pub struct SecretsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: SecretsAction,
}

/// The `secrets` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum SecretsAction {
    /// Write one secret; the value is read from standard input (without echo on a terminal;
    /// one trailing newline dropped), never from the command line. Prints the new version.
    #[command(
        after_help = "Examples:\n  vault-run secrets set myagent/OPENAI_API_KEY          (type the value, then Enter)\n  printf %s \"$VALUE\" | vault-run secrets set myagent/DB_PASSWORD --type db_credential\n  vault-run secrets set prod/stripe/SECRET_KEY --tier sensitive < key.txt"
    )]
    Set {
        /// The secret's path: namespace/KEY, like myagent/OPENAI_API_KEY.
        #[arg(value_name = "PATH")]
        path: String,
        /// A value written on the command line by mistake: taken only to be refused without
        /// being echoed (clap's "unexpected argument" would print it to a log).
        #[arg(hide = true, value_name = "VALUE")]
        value_on_argv: Option<std::ffi::OsString>,
        /// Type, tier and metadata.
        #[command(flatten)]
        write: WriteArgs,
        /// Where and how to connect.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Import a .env file: one secret per variable, at NS/NAME (the same parser as --env-file).
    #[command(
        after_help = "Example, from a .env file to a running agent:\n  vault-run secrets import .env --namespace myagent --print-mapping > vault-run.toml\n  vault-run -- python agent.py"
    )]
    Import {
        /// The .env file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The namespace the secrets go to (NS/NAME for each variable).
        #[arg(short = 'n', long, value_name = "NS")]
        namespace: String,
        /// Print a vault-run.toml [env] table mapping each imported variable to its secret
        /// (to stdout; no values).
        #[arg(long)]
        print_mapping: bool,
        /// Type, tier and metadata of every imported secret.
        #[command(flatten)]
        write: WriteArgs,
        /// Where and how to connect.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the secrets at or below a namespace: path, version, type, tier, updated, expired
    /// (never values).
    List {
        /// The namespace, like myagent.
        #[arg(value_name = "NS")]
        namespace: Option<String>,
        /// A table for people, or one JSON document for programs.
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
        /// Where and how to connect.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete a secret (an agent may delete standard secrets only; a human deletes sensitive
    /// and critical ones).
    #[command(visible_alias = "delete")]
    Rm {
        /// The secret's path: namespace/KEY.
        #[arg(value_name = "PATH")]
        path: String,
        /// Where and how to connect.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `secrets list --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ListFormat {
    /// A table with a header row.
    #[default]
    Text,
    /// One JSON document.
    Json,
}

/// `--type`, `--tier`, `--meta`.
#[derive(Debug, Clone, Args)]
pub struct WriteArgs {
    /// Kind of secret: api_key, oauth_token, db_credential, ssh_key, certificate or custom
    /// [server default: custom; an existing secret keeps its own].
    #[arg(long = "type", value_name = "TYPE", value_parser = secret_type)]
    pub secret_type: Option<SecretType>,
    /// Who must agree before a token for it is issued: standard, sensitive or critical
    /// [server default: standard; an existing secret keeps its own].
    #[arg(long = "tier", value_name = "TIER", value_parser = access_tier)]
    pub access_tier: Option<AccessTier>,
    /// Metadata entry KEY=VALUE (a string); repeatable.
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = meta)]
    pub meta: Vec<(String, String)>,
}

/// The connection options: a launch's, minus what only a launch needs.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The store's own options (`--base-url`, `--agent-key-file`), as its backend declares them.
    #[command(flatten)]
    pub backend: crate::backend_args::StoreBackendArgs,
    /// Timeout of each request [default: 30s].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<HumanDuration>,
    /// Retries of a failed request (network, 429, 502-504) [default: 3].
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// How long to wait for a human's approval; 0 fails at once and prints the approval id
    /// [default: 10m].
    #[arg(long, value_name = "DURATION")]
    pub approval_timeout: Option<HumanDuration>,
    /// Allow plain http:// to a non-loopback server (exposes the agent key on the network).
    #[arg(long)]
    pub allow_insecure_http: bool,
    /// More log output (-v info, -vv debug); never secrets.
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors (no summary).
    #[arg(short, long)]
    pub quiet: bool,
    /// Format of log lines on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

fn secret_type(s: &str) -> Result<SecretType, String> {
    let t = SecretType::from(s);
    if t.is_known() {
        Ok(t)
    } else {
        Err("expected api_key, oauth_token, db_credential, ssh_key, certificate or custom".into())
    }
}

fn access_tier(s: &str) -> Result<AccessTier, String> {
    let t = AccessTier::from(s);
    if t.is_known() {
        Ok(t)
    } else {
        Err("expected standard, sensitive or critical".into())
    }
}

fn meta(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err("expected KEY=VALUE, like --meta owner=payments".into()),
    }
}

/// What `vault-run secrets …` was asked to do, in plain values.
#[derive(Debug, Clone)]
pub struct SecretsConfig {
    /// The action.
    pub action: Action,
    /// How to reach the store: the settings flags a launch has (base URL, key file, timeout,
    /// retries, approval timeout, insecure http).
    pub flags: crate::settings::Flags,
    /// vault-run's own log lines.
    pub log: LogConfig,
}

/// One `secrets` action.
#[derive(Debug, Clone)]
pub enum Action {
    /// `set PATH`.
    Set {
        /// The path as typed.
        path: String,
        /// A value was given after the path (refused: values come on standard input only).
        value_on_argv: bool,
        /// Type, tier, metadata.
        write: WriteSpec,
    },
    /// `import FILE --namespace NS`.
    Import {
        /// The .env file.
        file: PathBuf,
        /// The namespace.
        namespace: String,
        /// `--print-mapping`.
        print_mapping: bool,
        /// Type, tier, metadata.
        write: WriteSpec,
    },
    /// `list [NS]`.
    List {
        /// The namespace.
        namespace: Option<String>,
        /// `--format`.
        format: ListFormat,
    },
    /// `rm PATH`.
    Rm {
        /// The path as typed.
        path: String,
    },
}

/// `--type`, `--tier`, `--meta` as values.
#[derive(Debug, Clone, Default)]
pub struct WriteSpec {
    /// `--type`.
    pub secret_type: Option<SecretType>,
    /// `--tier`.
    pub access_tier: Option<AccessTier>,
    /// `--meta` entries, in order (a later one wins).
    pub meta: Vec<(String, String)>,
}

impl SecretsArgs {
    /// The flags as plain configuration.
    pub fn into_config(self) -> SecretsConfig {
        let (action, store) = match self.action {
            SecretsAction::Set { path, value_on_argv, write, store } => {
                (Action::Set { path, value_on_argv: value_on_argv.is_some(), write: write.spec() }, store)
            }
            SecretsAction::Import { file, namespace, print_mapping, write, store } => {
                (Action::Import { file, namespace, print_mapping, write: write.spec() }, store)
            }
            SecretsAction::List { namespace, format, store } => (Action::List { namespace, format }, store),
            SecretsAction::Rm { path, store } => (Action::Rm { path }, store),
        };
        let log = LogConfig {
            verbose: store.verbose,
            quiet: store.quiet,
            format: store.log_format,
            program: Program::Launcher,
        };
        let mut flags = crate::settings::Flags {
            allow_insecure_http: store.allow_insecure_http,
            options: store.backend.into_values(),
            ..Default::default()
        };
        flags.tuning.timeout = store.timeout;
        flags.tuning.retries = store.retries;
        flags.tuning.approval_timeout = store.approval_timeout;
        SecretsConfig { action, flags, log }
    }
}

impl WriteArgs {
    fn spec(self) -> WriteSpec {
        WriteSpec { secret_type: self.secret_type, access_tier: self.access_tier, meta: self.meta }
    }
}
