//! The backends' declared options as command-line flags: the one contact point between clap
//! and the registry (every [`OptionSpec`] becomes `--FLAG VALUE`, read from its environment
//! variable when the flag is not given). `cli` flattens [`BackendArgs`] into a run's options;
//! nothing below knows clap.

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

impl clap::Args for BackendArgs {
    fn augment_args(cmd: Command) -> Command {
        registry::options().fold(cmd, |cmd, spec| cmd.arg(arg(spec)))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for BackendArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut values = OptionValues::default();
        for spec in registry::options() {
            let value = match spec.kind {
                ValueKind::Text => matches.get_one::<String>(spec.flag).map(OsString::from),
                ValueKind::Path => matches.get_one::<PathBuf>(spec.flag).map(OsString::from),
            };
            if let Some(value) = value {
                values.set(spec, value);
            }
        }
        Ok(Self(values))
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}
