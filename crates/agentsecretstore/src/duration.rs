//! Durations as users and the wire write them: `90s`, `15m`, `1h`, `1d`, `1h30m`, `500ms`, what
//! people type (`5min`, `1h 30m`, `90 seconds`, parsed by humantime), or a plain number of
//! seconds.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A parsed duration that prints back in the contract's short form (`5m`, `1h`, `90s`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason} (use e.g. 90s, 15m, 5min, 1h 30m, 90 seconds, 1d, or a number of seconds)")]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

impl HumanDuration {
    /// From whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// The `std` duration.
    pub const fn get(self) -> Duration {
        self.0
    }

    /// Whole seconds, rounded down.
    pub const fn as_secs(self) -> u64 {
        self.0.as_secs()
    }

    /// Whether it is zero.
    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        Self(d)
    }
}

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Self {
        d.0
    }
}

impl FromStr for HumanDuration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| DurationError { input: input.chars().take(40).collect(), reason };
        let s = input.trim();
        if s.is_empty() {
            return Err(err("empty"));
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            let secs: u64 = s.parse().map_err(|_| err("number too large"))?;
            // The same bound as with units (u64::MAX milliseconds), so that every duration prints
            // back to something that parses, and `Instant::now() + d` cannot overflow.
            secs.checked_mul(1000).ok_or_else(|| err("too large"))?;
            return Ok(Self::from_secs(secs));
        }
        // The one-unit form `Display` prints (`1500ms`, `90s`, `5m`) over the whole u64
        // millisecond range, which humantime's nanosecond arithmetic cannot hold.
        if let Some(d) = single_unit(s) {
            return d.ok_or_else(|| err("too large"));
        }
        // Everything else is humantime's: `90s`, `1h30m`, `1h 30m`, `5min`, `90 seconds`, `2days`.
        let d = humantime::parse_duration(s).map_err(|e| {
            err(match e {
                humantime::DurationError::InvalidCharacter(_) => "unexpected character",
                humantime::DurationError::NumberExpected(_) => "expected a number before each unit",
                humantime::DurationError::UnknownUnit { .. } => "unknown unit",
                humantime::DurationError::NumberOverflow => "too large",
                humantime::DurationError::Empty => "empty",
            })
        })?;
        // Whole milliseconds up to u64::MAX of them: the form prints back, and `Instant::now()
        // + d` cannot overflow.
        if d.subsec_nanos() % 1_000_000 != 0 {
            return Err(err("finer than a millisecond"));
        }
        if d.as_millis() > u128::from(u64::MAX) {
            return Err(err("too large"));
        }
        Ok(Self(d))
    }
}

/// `<digits><unit>` with one of `Display`'s units: `Some(None)` when it overflows, `None` when
/// the text has another shape.
fn single_unit(s: &str) -> Option<Option<HumanDuration>> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (n, unit) = s.split_at(digits);
    let per: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    let n: u64 = match n.parse() {
        Ok(n) => n,
        Err(_) if digits > 0 => return Some(None),
        Err(_) => return None,
    };
    Some(n.checked_mul(per).map(|ms| HumanDuration(Duration::from_millis(ms))))
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms % 1000 != 0 {
            return write!(f, "{ms}ms");
        }
        let s = ms / 1000;
        match s {
            0 => f.write_str("0s"),
            s if s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            s if s % 3_600 == 0 => write!(f, "{}h", s / 3_600),
            s if s % 60 == 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Secs(n) => n.to_string().parse().map_err(serde::de::Error::custom),
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Duration {
        s.parse::<HumanDuration>().unwrap().0
    }

    #[test]
    fn parses_contract_forms() {
        assert_eq!(p("90s"), Duration::from_secs(90));
        assert_eq!(p("15m"), Duration::from_secs(900));
        assert_eq!(p("1h"), Duration::from_secs(3600));
        assert_eq!(p("1d"), Duration::from_secs(86400));
        assert_eq!(p("300"), Duration::from_secs(300));
        assert_eq!(p("1h30m"), Duration::from_secs(5400));
        assert_eq!(p("250ms"), Duration::from_millis(250));
        assert_eq!(p("0"), Duration::ZERO);
    }

    #[test]
    fn parses_what_people_write() {
        assert_eq!(p("5min"), Duration::from_secs(300));
        assert_eq!(p("1h 30m"), Duration::from_secs(5400));
        assert_eq!(p("90 seconds"), Duration::from_secs(90));
        assert_eq!(p("2 hours"), Duration::from_secs(7200));
        assert_eq!(p(" 10m "), Duration::from_secs(600));
        assert_eq!(p("1.5h"), Duration::from_secs(5400));
    }

    #[test]
    fn rejects_garbage() {
        for bad in
            ["", "m", "5x", "-5s", "1ns", "0.0001s", "s5", "99999999999999999999d", "18446744073709551615"]
        {
            assert!(bad.parse::<HumanDuration>().is_err(), "{bad}");
        }
    }

    #[test]
    fn displays_short_form() {
        assert_eq!(HumanDuration::from_secs(300).to_string(), "5m");
        assert_eq!(HumanDuration::from_secs(3600).to_string(), "1h");
        assert_eq!(HumanDuration::from_secs(90).to_string(), "90s");
        assert_eq!(HumanDuration::from_secs(86400).to_string(), "1d");
    }

    #[test]
    fn serde_accepts_numbers_and_strings() {
        let a: HumanDuration = serde_json::from_str("60").unwrap();
        let b: HumanDuration = serde_json::from_str("\"1m\"").unwrap();
        assert_eq!(a, b);
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"1m\"");
    }
}
