//! `--watch`: fetch again every interval on a thread of its own (a fetch may wait on the
//! network or on an approval; signals must not wait for it), and hand changes to the supervisor.

#![forbid(unsafe_code)]

use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use super::{Launch, Refresh, SuperviseError};

/// How often the supervisor looks for a result while a fetch is in flight.
const POLL: Duration = Duration::from_millis(100);

/// What one fetch found.
pub type Fetched = Result<Option<Launch>, SuperviseError>;

/// The fetching thread and its schedule.
pub struct Watcher {
    interval: Duration,
    next: Instant,
    in_flight: bool,
    ask: Sender<()>,
    answers: Receiver<Fetched>,
}

impl Watcher {
    /// Starts the fetching thread (call after the signals are blocked: it inherits the mask).
    pub fn start(mut refresh: Refresh, interval: Duration) -> Self {
        let (ask, asked) = channel::<()>();
        let (answer, answers) = channel();
        std::thread::Builder::new()
            .name("watch".into())
            .spawn(move || {
                for () in asked {
                    if answer.send(refresh()).is_err() {
                        return;
                    }
                }
            })
            .expect("spawn the watch thread");
        Self { interval, next: Instant::now() + interval, in_flight: false, ask, answers }
    }

    /// When the supervisor should look again.
    pub fn wake_at(&self, now: Instant) -> Instant {
        if self.in_flight {
            now + POLL
        } else {
            self.next
        }
    }

    /// A finished fetch, if any; starts the next one when it is due and `may_start`.
    pub fn poll(&mut self, now: Instant, may_start: bool) -> Option<Fetched> {
        if self.in_flight {
            return match self.answers.try_recv() {
                Ok(fetched) => {
                    self.in_flight = false;
                    self.next = Instant::now() + self.interval;
                    Some(fetched)
                }
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => {
                    self.in_flight = false;
                    self.next = now + self.interval;
                    Some(Err(SuperviseError::WatchEnded))
                }
            };
        }
        if may_start && now >= self.next {
            tracing::debug!("watch: fetching again");
            self.in_flight = self.ask.send(()).is_ok();
        }
        None
    }
}
