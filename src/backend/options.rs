//! What the backends are built from: plain values, so that the backends depend on no
//! command-line or settings code. The run's settings are these options (`crate::settings`
//! merges them from flags, the mapping file and the defaults).

use std::time::Duration;

use super::registry::OptionValues;
use crate::inherited::Snapshot;
use agentsecretstore::duration::HumanDuration;

/// What every backend is built from: the settings they share, and each one's own options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Lifetime of the store's scoped token and of a Vault child token.
    pub ttl: HumanDuration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries per request.
    pub retries: u32,
    /// How many reads are in flight at once.
    pub concurrency: ReadsInFlight,
    /// Start-up bound, approval waiting excluded: also how long a rate limit may be waited out.
    pub deadline: Duration,
    /// How long to wait for an approval (zero: fail at once).
    pub approval_timeout: Duration,
    /// Plain http to non-loopback hosts allowed.
    pub allow_insecure_http: bool,
    /// The options backends declare in their registrations (`--base-url`, …), where given.
    pub backend: OptionValues,
    /// The environment the run started with: backends read their addresses and credentials
    /// here, not from the process (which supervise mode wipes).
    pub env: Snapshot,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ttl: HumanDuration::from_secs(300),
            timeout: Duration::from_secs(30),
            retries: 3,
            concurrency: ReadsInFlight::Auto,
            deadline: Duration::from_secs(120),
            approval_timeout: Duration::from_secs(600),
            allow_insecure_http: false,
            backend: OptionValues::default(),
            env: Snapshot::default(),
        }
    }
}

/// How many reads a backend keeps in flight at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadsInFlight {
    /// `--concurrency N` (or `concurrency` in the file): N, whatever the protocol.
    Exactly(usize),
    /// Chosen for each run by protocol and distance (see [`ReadsInFlight::choose`]).
    Auto,
}

/// Reads in flight over HTTP/2, where they share one connection: the server's stream limit
/// (usually 100 to 256) is the real bound.
pub const HTTP2_IN_FLIGHT: usize = 256;
/// The most reads in flight over HTTP/1.1, where each holds a connection of its own.
pub const HTTP1_IN_FLIGHT: usize = 16;
/// What opening one more connection costs this process: a TCP connect and, for https, a TLS
/// handshake (about a millisecond of CPU, on the one thread the reads share).
const CONNECTION_COST: Duration = Duration::from_millis(1);

impl ReadsInFlight {
    /// Reads in flight for `reads` reads, once the first request took `round_trip` and the
    /// server chose HTTP/2 or not.
    ///
    /// Over HTTP/1.1, k connections take about ⌈reads ÷ k⌉ round trips plus k connection
    /// set-ups; the sum is least near k = √(reads × round trip ÷ set-up cost). A server a
    /// round trip of 20 ms away gets every read at once (up to the cap); one on this machine,
    /// where a round trip costs less than a connection, gets a few connections reused.
    pub fn choose(self, reads: usize, http2: bool, round_trip: Duration) -> usize {
        match self {
            Self::Exactly(n) => n,
            Self::Auto if http2 => HTTP2_IN_FLIGHT,
            Self::Auto => {
                let best = (reads as f64 * round_trip.as_secs_f64() / CONNECTION_COST.as_secs_f64()).sqrt();
                (best.ceil() as usize).clamp(1, HTTP1_IN_FLIGHT)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_flight_follow_protocol_and_distance() {
        let ms = Duration::from_millis;
        let auto = ReadsInFlight::Auto;
        // Given: exactly that, whatever the protocol.
        assert_eq!(ReadsInFlight::Exactly(3).choose(100, true, ms(50)), 3);
        assert_eq!(ReadsInFlight::Exactly(3).choose(1, false, ms(0)), 3);
        // HTTP/2: everything on the one connection.
        assert_eq!(auto.choose(10, true, ms(0)), HTTP2_IN_FLIGHT);
        // HTTP/1.1 far away: every read at once, up to the cap.
        assert!(auto.choose(10, false, ms(60)) >= 10);
        assert_eq!(auto.choose(1000, false, ms(60)), HTTP1_IN_FLIGHT);
        // Loopback (a fraction of a millisecond): a few connections, more for more reads.
        assert_eq!(auto.choose(10, false, Duration::from_micros(300)), 2);
        assert_eq!(auto.choose(100, false, Duration::from_micros(300)), 6);
        assert_eq!(auto.choose(0, false, Duration::ZERO), 1);
    }
}
