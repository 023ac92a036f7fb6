//! What keeps other local users and processes (anyone who can reach 127.0.0.1, password or
//! not) from taking the proxy away from the child: a cap on open connections, a deadline for a
//! connection to prove it knows the password, and a log that says "refused" once per interval
//! instead of once per request.
//!
//! A connection is *unproven* until a request on it carries the proxy password. At the cap,
//! a new connection closes the oldest unproven one (or, when every open connection is proven,
//! is itself closed): a flood of idle or slow connections cannot lock the child out, because
//! the child's connection proves itself with its first request, within milliseconds.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// How long a connection may stay open without a request carrying the password (a slow or
/// idle request head included).
pub(super) const PROVE_WITHIN: Duration = Duration::from_secs(10);

/// How often the refusal log may speak.
pub(super) const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The open connections.
pub(super) struct Slots {
    max: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    open: usize,
    next: u64,
    /// Oldest first: each unproven connection and what closes it.
    unproven: VecDeque<(u64, oneshot::Sender<()>)>,
}

impl Slots {
    /// Room for `max` connections (at least 16).
    pub(super) fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots { max: max.max(16), state: Mutex::new(State::default()) })
    }

    /// The cap for this process: half the descriptors it may open (each intercepted connection
    /// holds two), less a margin for the rest of vault-run, within 16..=4096.
    pub(super) fn for_this_process() -> Arc<Slots> {
        let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_or(1024, |(soft, _)| soft);
        let soft = usize::try_from(soft).unwrap_or(usize::MAX);
        Slots::new((soft.saturating_sub(64) / 2).clamp(16, 4096))
    }

    /// A slot for a new connection and the signal that closes it (`Ok(())` received: close;
    /// the sender dropped: the connection proved itself and stays), making room by closing the
    /// oldest unproven connection; `None` when every slot holds a proven connection.
    pub(super) fn take(self: &Arc<Self>) -> Option<(Slot, oneshot::Receiver<()>)> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.open >= self.max {
            // That connection closes; its slot frees when its task ends (until then it counts).
            let (_, close) = s.unproven.pop_front()?;
            let _ = close.send(());
        }
        s.open += 1;
        s.next += 1;
        let id = s.next;
        let (close, closed) = oneshot::channel();
        s.unproven.push_back((id, close));
        Some((Slot { id, slots: self.clone(), proven: AtomicBool::new(false) }, closed))
    }

    /// Whether connections told to close to make room still hold their descriptors.
    pub(super) fn crowded(&self) -> bool {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).open > self.max
    }

    /// How many slots are taken.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).open
    }
}

/// One open connection's place; frees it when the last clone goes (tunnels hold one).
pub(super) struct Slot {
    id: u64,
    slots: Arc<Slots>,
    /// Set once: every later request on the connection skips the lock.
    proven: AtomicBool,
}

impl Slot {
    /// The connection sent the password: it is no longer closed to make room.
    pub(super) fn prove(&self) {
        if self.proven.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut s = self.slots.state.lock().unwrap_or_else(|p| p.into_inner());
        s.unproven.retain(|(id, _)| *id != self.id);
    }

    /// Whether [`Slot::prove`] was called.
    pub(super) fn proven(&self) -> bool {
        self.proven.load(Ordering::Acquire)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut s = self.slots.state.lock().unwrap_or_else(|p| p.into_inner());
        s.open -= 1;
        s.unproven.retain(|(id, _)| *id != self.id);
    }
}

/// A warning said at most once per [`LOG_INTERVAL`]: the first occurrence at once, the rest
/// counted and summed up in one line when the interval is over.
pub(super) struct RateLimitedLog {
    what: &'static str,
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimitedLog {
    pub(super) const fn new(what: &'static str) -> Self {
        RateLimitedLog { what, state: Mutex::new((None, 0)) }
    }

    /// One more occurrence.
    pub(super) fn note(&self) {
        self.say(None);
    }

    /// One more occurrence, and why (said with the first of an interval).
    pub(super) fn note_with(&self, why: &dyn std::fmt::Display) {
        self.say(Some(why));
    }

    fn say(&self, why: Option<&dyn std::fmt::Display>) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match s.0 {
            Some(at) if at.elapsed() < LOG_INTERVAL => s.1 += 1,
            _ => {
                let why = why.map(|w| format!(": {w}")).unwrap_or_default();
                tracing::warn!("proxy: {}{why} (said once per {} s)", self.what, LOG_INTERVAL.as_secs());
                *s = (Some(Instant::now()), 0);
            }
        }
    }

    /// The summary line for what was counted since the last line, once the interval is over.
    pub(super) fn tick(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.1 > 0 && s.0.is_some_and(|at| at.elapsed() >= LOG_INTERVAL) {
            tracing::warn!(
                "proxy: {} {} more times in the last {} s",
                self.what,
                s.1,
                LOG_INTERVAL.as_secs()
            );
            *s = (Some(Instant::now()), 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_oldest_unproven_connection_makes_room() {
        let slots = Slots::new(16);
        let mut held: Vec<_> = (0..16).map(|_| slots.take().unwrap()).collect();
        held[1].0.prove();
        let (new, _new_closed) = slots.take().unwrap();
        // The oldest unproven (the first) was told to close; the proven one was not.
        assert_eq!(held[0].1.try_recv(), Ok(()));
        assert_eq!(held[1].1.try_recv(), Err(oneshot::error::TryRecvError::Closed));
        assert_eq!(held[2].1.try_recv(), Err(oneshot::error::TryRecvError::Empty));
        assert_eq!(slots.open(), 17);
        drop(held.remove(0));
        assert_eq!(slots.open(), 16);
        for h in &held {
            h.0.prove();
        }
        new.prove();
        assert!(slots.take().is_none(), "every slot proven: no room");
    }
}
