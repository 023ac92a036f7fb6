//! One live status line on a terminal while vault-run waits for a human's approval or for the
//! server's rate limit: what it waits for, how long it has waited, how long it will still wait. It is redrawn in place every
//! second and erased when the wait ends. Nothing of it is written when stderr is not a terminal
//! (a journal or a pipe gets the plain log lines only), with `-q`, or with `--log-format json`.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

static ENABLED: AtomicBool = AtomicBool::new(false);
static CURRENT: Mutex<Option<Running>> = Mutex::new(None);

/// What a line waits for: a rate-limit line ends with the next request, an approval line only
/// when the approval is decided (polling it makes requests too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A human's approval.
    Approval,
    /// The server's rate limit (a 429 being waited out).
    RateLimit,
}

struct Running {
    kind: Kind,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: JoinHandle<()>,
}

/// Turns the status line on when stderr is a terminal and `allowed` (text logs, not `-q`).
pub fn enable(allowed: bool) {
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    ENABLED.store(allowed && tty, Ordering::Relaxed);
}

/// Starts showing `waiting for {what}` with a countdown from `limit`, and `detail` last (cut
/// first when the terminal is narrow); replaces any line shown.
///
/// Without a terminal, an approval wait still says every [`PLAIN_EVERY`] that it goes on (a log
/// line, "still waiting for approval ID, 8m left"): a scripted batch must not sit silent for ten
/// minutes.
pub fn start(kind: Kind, what: String, detail: String, limit: Duration) {
    let live = ENABLED.load(Ordering::Relaxed);
    if !live && kind != Kind::Approval {
        return;
    }
    stop();
    let stop_flag = Arc::new((Mutex::new(false), Condvar::new()));
    let flag = stop_flag.clone();
    let every = if live { Duration::from_secs(1) } else { plain_every() };
    let thread = std::thread::spawn(move || {
        let started = Instant::now();
        let (lock, cvar) = &*flag;
        let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut first = true;
        while !*stopped {
            let elapsed = Duration::from_secs(started.elapsed().as_secs());
            let left = humantime::format_duration(limit.saturating_sub(elapsed));
            if live {
                let elapsed = humantime::format_duration(elapsed);
                draw(&fit(&format!(
                    "vault-run: waiting for {what}: {elapsed} elapsed, {left} left ({detail})"
                )));
            } else if !first {
                tracing::warn!("still waiting for {what}, {left} left ({detail})");
            }
            first = false;
            stopped = cvar.wait_timeout(stopped, every).unwrap_or_else(|e| e.into_inner()).0;
        }
        if live {
            draw("");
        }
    });
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some(Running { kind, stop: stop_flag, thread });
}

/// How often a wait without a terminal says it goes on.
pub const PLAIN_EVERY: Duration = Duration::from_secs(30);

/// [`PLAIN_EVERY`], or `VAULT_RUN_WAIT_LINE_EVERY` (a duration, for tests and impatient CI logs).
fn plain_every() -> Duration {
    std::env::var("VAULT_RUN_WAIT_LINE_EVERY")
        .ok()
        .and_then(|v| humantime::parse_duration(v.trim()).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(PLAIN_EVERY)
}

/// Erases the line, if one is shown, and returns once it is gone.
pub fn stop() {
    stop_if(|_| true);
}

fn stop_if(which: impl Fn(Kind) -> bool) {
    let running = {
        let mut current = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
        match current.as_ref() {
            Some(r) if which(r.kind) => current.take(),
            _ => None,
        }
    };
    if let Some(r) = running {
        let (lock, cvar) = &*r.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cvar.notify_all();
        let _ = r.thread.join();
    }
}

/// Carriage return, erase the line, write `text` (no newline: the next draw overwrites it).
fn draw(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[2K{text}");
    let _ = err.flush();
}

/// Cuts the line to the terminal's width so that it never wraps (a wrapped line cannot be
/// redrawn in place).
fn fit(line: &str) -> String {
    let width = terminal_width().unwrap_or(80).max(20);
    if line.chars().count() < width {
        return line.to_owned();
    }
    let mut cut: String = line.chars().take(width - 2).collect();
    cut.push('…');
    cut
}

fn terminal_width() -> Option<usize> {
    let mut size = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we pass; fd 2 is ours to query.
    let rc = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut size) };
    (rc == 0 && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// A tracing layer that turns the client's own events into the rate-limit line: its `retrying`
/// event with `error = RATE_LIMITED` starts one for `wait_ms`, its next `request` event ends it.
/// It reads the events instead of hooking the client, which knows nothing of terminals.
pub struct RateLimitLayer;

#[derive(Default)]
struct Fields {
    message: String,
    error: String,
    wait_ms: Option<u64>,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "error" => self.error = format!("{value:?}"),
            _ => {}
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "error" {
            self.error = value.to_owned();
        }
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "wait_ms" {
            self.wait_ms = Some(value);
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for RateLimitLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        match f.message.as_str() {
            "retrying" if f.error == "RATE_LIMITED" => start(
                Kind::RateLimit,
                "the server's rate limit".to_owned(),
                "HTTP 429, then the request is tried again".to_owned(),
                Duration::from_millis(f.wait_ms.unwrap_or(0)),
            ),
            "request" => stop_if(|k| k == Kind::RateLimit),
            _ => {}
        }
    }
}
