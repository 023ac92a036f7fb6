//! The backends' declared options as command-line flags: the one contact point between clap
//! and the registry (every [`OptionSpec`] becomes `--FLAG VALUE`, read from its environment
//! variable when the flag is not given). `cli` flattens [`BackendArgs`] into a run's options,
//! `vault-run secrets` flattens [`StoreBackendArgs`] (the store it writes to); nothing below
//! knows clap.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command, FromArgMatches};

use crate::backend::registry::{self, OptionSpec, OptionValues, ValueKind};

/// The values given for the backends' flags.
#[derive(Debug, Clone, Default)]
pub struct BackendArgs(OptionValues);

impl BackendArgs {
    /// The values, as plain configuration.
    pub fn into_values(self) -> OptionValues {
        self.0
    }
}

fn arg(spec: &'static OptionSpec) -> Arg {
    let arg = Arg::new(spec.flag)
        .long(spec.flag)
        .value_name(spec.value_name)
        .help(spec.help)
        .action(ArgAction::Set);
    let arg = match spec.kind {
        ValueKind::Text => arg.value_parser(clap::value_parser!(String)),
        ValueKind::Path => arg.value_parser(clap::value_parser!(PathBuf)),
    };
    match spec.env {
        Some(env) => arg.env(env).hide_env_values(true),
        None => arg,
    }
}

/// The values given for the flags of the backend `vault-run secrets` writes to (Agent Secret
/// Store): its own declared options, not a hand-written copy of them.
#[derive(Debug, Clone, Default)]
pub struct StoreBackendArgs(OptionValues);

impl StoreBackendArgs {
    /// The values, as plain configuration.
    pub fn into_values(self) -> OptionValues {
        self.0
    }
}

fn store_options() -> impl Iterator<Item = &'static OptionSpec> {
    crate::backend::ass::REGISTRATION.options.iter()
}

fn augment(cmd: Command, specs: impl Iterator<Item = &'static OptionSpec>) -> Command {
    specs.fold(cmd, |cmd, spec| cmd.arg(arg(spec)))
}

fn values(matches: &ArgMatches, specs: impl Iterator<Item = &'static OptionSpec>) -> OptionValues {
    let mut values = OptionValues::default();
    for spec in specs {
        let value = match spec.kind {
            ValueKind::Text => matches.get_one::<String>(spec.flag).map(OsString::from),
            ValueKind::Path => matches.get_one::<PathBuf>(spec.flag).map(OsString::from),
        };
        if let Some(value) = value {
            values.set(spec, value);
        }
    }
    values
}

/// clap's two traits for a flag set made from a list of declared options.
macro_rules! declared_flags {
    ($ty:ident, $specs:expr) => {
        impl clap::Args for $ty {
            fn augment_args(cmd: Command) -> Command {
                augment(cmd, $specs)
            }

            fn augment_args_for_update(cmd: Command) -> Command {
                Self::augment_args(cmd)
            }
        }

        impl FromArgMatches for $ty {
            fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
                Ok(Self(values(matches, $specs)))
            }

            fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
                *self = Self::from_arg_matches(matches)?;
                Ok(())
            }
        }
    };
}

declared_flags!(BackendArgs, registry::options());
declared_flags!(StoreBackendArgs, store_options());
