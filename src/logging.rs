//! vault-run's own log lines, on stderr only: `vault-run: level: message key=value` or JSON.
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

/// How much vault-run logs, and how.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogConfig {
    /// `-v` count: 1 info, 2 debug, 3 trace.
    pub verbose: u8,
    /// `-q`: errors only.
    pub quiet: bool,
    /// Text or JSON lines.
    pub format: LogFormat,
}

impl LogConfig {
    /// Whether the live status line (approval waits, rate limits) may draw on stderr: text
    /// logs, not quiet. Whether stderr is a terminal is the status line's own check.
    pub fn status_line(&self) -> bool {
        !self.quiet && self.format == LogFormat::Text
    }
}

/// Installs the subscriber: `-q` errors only, default warnings, `-v` info, `-vv` debug,
/// `-vvv` trace.
pub fn init(config: LogConfig) {
    let LogConfig { verbose, quiet, format } = config;
    let level = match (quiet, verbose) {
        (true, _) => Level::ERROR,
        (_, 0) => Level::WARN,
        (_, 1) => Level::INFO,
        (_, 2) => Level::DEBUG,
        _ => Level::TRACE,
    };
    // Dependencies (hyper, rustls) only at -vvv, and never above our own level.
    let filter = tracing_subscriber::filter::Targets::new()
        .with_target("vault_run", level)
        .with_target("agentsecretstore", level)
        .with_default(if verbose >= 3 { level } else { Level::WARN.min(level) });
    // Colour only for a person at a terminal: a journal or a log collector gets plain text.
    let ansi = format == LogFormat::Text && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder =
        tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(ansi).with_max_level(level);
    // On a terminal, the live status line also listens to the client's debug events (the
    // rate-limit waits), whatever the log level: a registry with a filter per layer.
    if format == LogFormat::Text && !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
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
                    .event_format(Plain)
                    .with_filter(filter),
            )
            .with(crate::status_line::RateLimitLayer.with_filter(live));
        let _ = tracing_subscriber::util::SubscriberInitExt::try_init(subscriber);
        return;
    }
    let _ = match format {
        LogFormat::Text => tracing_subscriber::util::SubscriberInitExt::try_init(
            tracing_subscriber::layer::SubscriberExt::with(builder.event_format(Plain).finish(), filter),
        ),
        LogFormat::Json => tracing_subscriber::util::SubscriberInitExt::try_init(
            tracing_subscriber::layer::SubscriberExt::with(
                builder.json().with_current_span(false).with_span_list(false).finish(),
                filter,
            ),
        ),
    };
}

/// `vault-run: warn: message key=value`.
struct Plain;

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
        write!(w, "vault-run: {level}: ")?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}
