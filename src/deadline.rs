//! The start-up deadline: a bound on everything vault-run does before the exec, except the time
//! spent waiting for a human's approval, which has its own timeout.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A deadline that can be paused while an approval is awaited.
#[derive(Debug)]
pub struct Deadline {
    start: Instant,
    budget: Duration,
    paused: Mutex<Paused>,
}

#[derive(Debug, Default)]
struct Paused {
    /// Time excluded so far.
    total: Duration,
    /// Open pauses and when the first of them began (pauses may overlap across backends).
    open: usize,
    since: Option<Instant>,
}

/// Ends a pause when dropped.
#[must_use = "the pause ends when this guard is dropped"]
pub struct PauseGuard<'a>(&'a Deadline);

impl Drop for PauseGuard<'_> {
    fn drop(&mut self) {
        let mut p = self.0.paused.lock().unwrap_or_else(|e| e.into_inner());
        p.open -= 1;
        if p.open == 0 {
            if let Some(since) = p.since.take() {
                p.total += since.elapsed();
            }
        }
    }
}

impl Deadline {
    /// A deadline `budget` from now.
    pub fn new(budget: Duration) -> Self {
        Self { start: Instant::now(), budget, paused: Mutex::new(Paused::default()) }
    }

    /// The budget it was made with.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Stops the clock until the guard is dropped.
    pub fn pause(&self) -> PauseGuard<'_> {
        let mut p = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        if p.open == 0 {
            p.since = Some(Instant::now());
        }
        p.open += 1;
        PauseGuard(self)
    }

    /// When the deadline falls, or `None` while paused.
    fn expires_at(&self) -> Option<Instant> {
        let p = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        (p.open == 0).then(|| self.start + self.budget + p.total)
    }

    /// Resolves when the deadline has passed (never while paused).
    pub async fn expired(&self) {
        // Re-check periodically: a pause may begin or end while we sleep.
        const TICK: Duration = Duration::from_millis(100);
        loop {
            let now = Instant::now();
            match self.expires_at() {
                Some(at) if now >= at => return,
                Some(at) => tokio::time::sleep((at - now).min(TICK)).await,
                None => tokio::time::sleep(TICK).await,
            }
        }
    }

    /// Runs `fut` unless the deadline passes first.
    pub async fn run<F: std::future::Future>(&self, fut: F) -> Option<F::Output> {
        tokio::select! {
            out = fut => Some(out),
            () = self.expired() => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expires_and_pauses() {
        let d = Deadline::new(Duration::from_millis(150));
        assert_eq!(d.run(async { 1 }).await, Some(1));
        let guard = d.pause();
        let paused = d.run(tokio::time::sleep(Duration::from_millis(300))).await;
        drop(guard);
        assert!(paused.is_some(), "a paused deadline must not fire");
        let t = Instant::now();
        assert!(d.run(tokio::time::sleep(Duration::from_secs(5))).await.is_none());
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}
