//! vault-run's own log lines, on stderr only: `vault-run: level: message key=value` or JSON. The
//! one log setup of the process, for the launcher and the dev server alike (the dev server's
//! crate is a library and installs none).
//! Nothing logged anywhere carries a secret value, key or token; the types make that hard
//! (they print `[REDACTED]`) and the leak tests check it.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Output format of vault-run's own log lines (always on stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    /// `vault-run: level: message`.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Which of vault-run's programs logs: it names the lines and sets the level without `-v`/`-q`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Program {
    /// `vault-run [OPTIONS] -- CMD` and `check`: warnings by default (the child's output is
    /// the interesting part).
    #[default]
    Launcher,
    /// `vault-run dev`: a server, so one line per request by default; `RUST_LOG` overrides.
    DevServer,
}

/// How much vault-run logs, and how.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogConfig {
    /// `-v` count: each one level more.
    pub verbose: u8,
    /// `-q`: one level less.
    pub quiet: bool,
    /// Text or JSON lines.
    pub format: LogFormat,
    /// Who logs.
    pub program: Program,
}

impl LogConfig {
    /// Whether the live status line (approval waits, rate limits) may draw on stderr: the
    /// launcher's text logs, not quiet. Whether stderr is a terminal is the status line's check.
    pub fn status_line(&self) -> bool {
        self.program == Program::Launcher && !self.quiet && self.format == LogFormat::Text
    }

    /// The level of our own lines: the program's default, one lower for `-q`, one higher per `-v`.
    fn level(&self) -> Level {
        const LEVELS: [Level; 5] = [Level::ERROR, Level::WARN, Level::INFO, Level::DEBUG, Level::TRACE];
        let default = match self.program {
            Program::Launcher => 1,
            Program::DevServer => 2,
        };
        let at = if self.quiet { default - 1 } else { default + usize::from(self.verbose) };
        LEVELS[at.min(LEVELS.len() - 1)]
    }

    /// The prefix of a text line.
    fn name(&self) -> &'static str {
        match self.program {
            Program::Launcher => "vault-run",
            Program::DevServer => "vault-run dev",
        }
    }
}

/// Installs the process's one log subscriber, on stderr: our own crates at
/// the level `-v`/`-q` set, dependencies (hyper, rustls) at warnings unless `-vvv`, and never
/// above our own level.
pub fn init(config: LogConfig) {
    let LogConfig { verbose, format, .. } = config;
    let level = config.level();
    let name = config.name();
    let filter = tracing_subscriber::filter::Targets::new()
        .with_target("vault_run", level)
        .with_target("agentsecretstore", level)
        .with_default(if verbose >= 3 { level } else { Level::WARN.min(level) });
    // Colour only for a person at a terminal: a journal or a log collector gets plain text.
    let ansi = format == LogFormat::Text && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder =
        tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(ansi).with_max_level(level);
    if config.program == Program::DevServer {
        if let Ok(directives) = tracing_subscriber::EnvFilter::try_from_default_env() {
            let _ = builder.event_format(Plain { name }).with_env_filter(directives).try_init();
            return;
        }
    }
    // On a terminal, the live status line also listens to the client's debug events (the
    // rate-limit waits), whatever the log level: a registry with a filter per layer.
    if config.status_line() && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::Layer;
        let live = tracing_subscriber::filter::Targets::new()
            .with_target("vault_run", Level::DEBUG)
            .with_target("agentsecretstore", Level::DEBUG);
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(ansi)
                    .event_format(Plain { name })
                    .with_filter(filter),
            )
            .with(crate::status_line::RateLimitLayer.with_filter(live));
        let _ = tracing_subscriber::util::SubscriberInitExt::try_init(subscriber);
        return;
    }
    let _ = match format {
        LogFormat::Text => tracing_subscriber::util::SubscriberInitExt::try_init(
            tracing_subscriber::layer::SubscriberExt::with(
                builder.event_format(Plain { name }).finish(),
                filter,
            ),
        ),
        LogFormat::Json => tracing_subscriber::util::SubscriberInitExt::try_init(
            tracing_subscriber::layer::SubscriberExt::with(
                builder.json().with_current_span(false).with_span_list(false).finish(),
                filter,
            ),
        ),
    };
}

/// `vault-run: warning: message key=value` (or `vault-run dev: …`).
struct Plain {
    name: &'static str,
}

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        write!(w, "{}: {level}: ", self.name)?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_per_program() {
        let at =
            |program, verbose, quiet| LogConfig { verbose, quiet, format: LogFormat::Text, program }.level();
        assert_eq!(at(Program::Launcher, 0, false), Level::WARN);
        assert_eq!(at(Program::Launcher, 0, true), Level::ERROR);
        assert_eq!(at(Program::Launcher, 1, false), Level::INFO);
        assert_eq!(at(Program::Launcher, 2, false), Level::DEBUG);
        assert_eq!(at(Program::Launcher, 9, false), Level::TRACE);
        assert_eq!(at(Program::DevServer, 0, false), Level::INFO);
        assert_eq!(at(Program::DevServer, 0, true), Level::WARN);
        assert_eq!(at(Program::DevServer, 1, false), Level::DEBUG);
        assert_eq!(at(Program::DevServer, 2, false), Level::TRACE);
    }
}
