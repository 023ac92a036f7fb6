//! Test knobs: a global rate limit, injected error statuses (random or the next N), latency and
//! dropped connections. All off by default; set by flags and at run time with
//! `PUT /v1/dev/faults` (admin key). They apply to API routes, never to `/v1/dev/*`.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use axum::http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::HumanDuration;

use super::error::ApiError;

/// A request rate: `5/s`, `120/m`, or a plain number per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    per_sec: f64,
}

impl Rate {
    /// Requests per second.
    pub fn per_sec(self) -> f64 {
        self.per_sec
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || format!("invalid rate {s:?}: use N/s, N/m or a number per second, like 5/s");
        let (n, per) = match s.trim().split_once('/') {
            Some((n, unit)) => match unit.trim() {
                "s" | "sec" => (n, 1.0),
                "m" | "min" => (n, 60.0),
                _ => return Err(err()),
            },
            None => (s, 1.0),
        };
        let n: f64 = n.trim().parse().map_err(|_| err())?;
        if !(n.is_finite() && n > 0.0) {
            return Err(err());
        }
        Ok(Rate { per_sec: n / per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", self.per_sec)
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => n.to_string().parse(),
            Raw::Text(s) => s.parse(),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// How `Retry-After` is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum RetryAfterFormat {
    /// Whole seconds.
    #[default]
    Seconds,
    /// An HTTP date.
    #[serde(alias = "http_date")]
    HttpDate,
}

impl RetryAfterFormat {
    /// The header value for a wait of `secs` seconds.
    pub fn render(self, secs: u64) -> String {
        match self {
            RetryAfterFormat::Seconds => secs.to_string(),
            // HTTP dates have whole-second resolution: one more second keeps the wait >= secs.
            RetryAfterFormat::HttpDate => {
                httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(secs + 1))
            }
        }
    }
}

/// The current knobs (also the `GET /v1/dev/faults` body).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultKnobs {
    /// Global token bucket (burst = one second's worth), `null` = off.
    pub rate_limit: Option<Rate>,
    /// Format of every `Retry-After` the knobs write.
    pub retry_after_format: RetryAfterFormat,
    /// Seconds in `Retry-After` of injected 429s (`fail_next`/`error_rate`).
    pub retry_after: u64,
    /// Fraction of requests answered with `error_status`.
    pub error_rate: f64,
    /// Status for `error_rate`.
    pub error_status: u16,
    /// The next N requests answer `fail_status`.
    pub fail_next: u64,
    /// Status for `fail_next`.
    pub fail_status: u16,
    /// Added before answering.
    pub latency: Option<HumanDuration>,
    /// Fraction of requests whose connection is dropped without a response.
    pub drop_rate: f64,
    /// The next N requests have their connection dropped.
    pub drop_next: u64,
}

impl Default for FaultKnobs {
    fn default() -> Self {
        Self {
            rate_limit: None,
            retry_after_format: RetryAfterFormat::Seconds,
            retry_after: 1,
            error_rate: 0.0,
            error_status: 503,
            fail_next: 0,
            fail_status: 503,
            latency: None,
            drop_rate: 0.0,
            drop_next: 0,
        }
    }
}

impl FaultKnobs {
    /// Checks ranges: rates in 0..=1, statuses 400..=599.
    pub fn validate(&self) -> Result<(), String> {
        for (name, r) in [("error_rate", self.error_rate), ("drop_rate", self.drop_rate)] {
            if !(0.0..=1.0).contains(&r) {
                return Err(format!("{name} must be between 0 and 1"));
            }
        }
        for (name, s) in [("error_status", self.error_status), ("fail_status", self.fail_status)] {
            if !(400..=599).contains(&s) {
                return Err(format!("{name} must be an HTTP error status (400-599)"));
            }
        }
        Ok(())
    }
}

/// `PUT /v1/dev/faults` body: every field optional; `null` turns `rate_limit`/`latency` off.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPatch {
    #[serde(default, deserialize_with = "present")]
    rate_limit: Option<Option<Rate>>,
    #[serde(default)]
    retry_after_format: Option<RetryAfterFormat>,
    #[serde(default)]
    retry_after: Option<u64>,
    #[serde(default)]
    error_rate: Option<f64>,
    #[serde(default)]
    error_status: Option<u16>,
    #[serde(default)]
    fail_next: Option<u64>,
    #[serde(default)]
    fail_status: Option<u16>,
    #[serde(default, deserialize_with = "present")]
    latency: Option<Option<HumanDuration>>,
    #[serde(default)]
    drop_rate: Option<f64>,
    #[serde(default)]
    drop_next: Option<u64>,
}

/// A field that is present (possibly `null`) becomes `Some(…)`; absence is the `default`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl FaultPatch {
    fn apply(self, k: &mut FaultKnobs) {
        if let Some(v) = self.rate_limit {
            k.rate_limit = v;
        }
        if let Some(v) = self.latency {
            k.latency = v.filter(|d| !d.is_zero());
        }
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { k.$f = v; } )* };
        }
        set!(
            retry_after_format,
            retry_after,
            error_rate,
            error_status,
            fail_next,
            fail_status,
            drop_rate,
            drop_next
        );
    }
}

/// What the knobs decided for one request.
#[derive(Debug)]
pub enum Verdict {
    /// Serve it.
    Pass,
    /// Answer this error.
    Fail(ApiError),
    /// Close the connection without answering.
    Drop,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The knobs and the rate limiter's bucket.
#[derive(Debug)]
pub struct Faults {
    knobs: Mutex<FaultKnobs>,
    bucket: Mutex<Bucket>,
}

impl Faults {
    /// Starts with `knobs`.
    pub fn new(knobs: FaultKnobs) -> Self {
        let tokens = knobs.rate_limit.map(|r| r.per_sec().max(1.0)).unwrap_or(0.0);
        Self { knobs: Mutex::new(knobs), bucket: Mutex::new(Bucket { tokens, last: Instant::now() }) }
    }

    /// The current knobs.
    pub fn get(&self) -> FaultKnobs {
        self.knobs.lock().expect("faults lock").clone()
    }

    /// Applies a patch (all or nothing); a changed rate limit starts with a full bucket.
    pub fn patch(&self, patch: FaultPatch) -> Result<FaultKnobs, String> {
        let mut knobs = self.knobs.lock().expect("faults lock");
        let mut next = knobs.clone();
        patch.apply(&mut next);
        next.validate()?;
        if next.rate_limit != knobs.rate_limit {
            let mut b = self.bucket.lock().expect("bucket lock");
            *b = Bucket {
                tokens: next.rate_limit.map(|r| r.per_sec().max(1.0)).unwrap_or(0.0),
                last: Instant::now(),
            };
        }
        *knobs = next.clone();
        Ok(next)
    }

    /// Turns everything off.
    pub fn reset(&self) {
        *self.knobs.lock().expect("faults lock") = FaultKnobs::default();
    }

    /// Decides the fate of one request and how long to wait before answering. Deterministic
    /// knobs first (`drop_next`, `fail_next`), then the rate limit, then the random ones.
    pub fn decide(&self) -> (Verdict, Option<Duration>) {
        let mut k = self.knobs.lock().expect("faults lock");
        let latency = k.latency.map(HumanDuration::get);
        let injected = |status: u16, k: &FaultKnobs, reason| {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let retry_after =
                (status == StatusCode::TOO_MANY_REQUESTS).then(|| k.retry_after_format.render(k.retry_after));
            Verdict::Fail(ApiError::Injected { status, retry_after, reason })
        };
        if k.drop_next > 0 {
            k.drop_next -= 1;
            return (Verdict::Drop, latency);
        }
        if k.fail_next > 0 {
            k.fail_next -= 1;
            return (injected(k.fail_status, &k, "fail_next"), latency);
        }
        if let Some(rate) = k.rate_limit {
            if let Some(wait) = self.take_token(rate) {
                let retry_after = k.retry_after_format.render(wait);
                return (Verdict::Fail(ApiError::RateLimited { retry_after }), latency);
            }
        }
        if k.drop_rate > 0.0 && rand::random::<f64>() < k.drop_rate {
            return (Verdict::Drop, latency);
        }
        if k.error_rate > 0.0 && rand::random::<f64>() < k.error_rate {
            return (injected(k.error_status, &k, "error_rate"), latency);
        }
        (Verdict::Pass, latency)
    }

    /// Takes one token from the bucket, or says how many whole seconds until one is there.
    fn take_token(&self, rate: Rate) -> Option<u64> {
        let mut b = self.bucket.lock().expect("bucket lock");
        let now = Instant::now();
        let capacity = rate.per_sec().max(1.0);
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * rate.per_sec()).min(capacity);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            None
        } else {
            Some((((1.0 - b.tokens) / rate.per_sec()).ceil() as u64).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!("5/s".parse::<Rate>().unwrap().per_sec(), 5.0);
        assert_eq!("120/m".parse::<Rate>().unwrap().per_sec(), 2.0);
        assert_eq!("3".parse::<Rate>().unwrap().per_sec(), 3.0);
        for bad in ["", "0/s", "x/s", "5/h", "-1"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn deterministic_knobs_count_down() {
        let f = Faults::new(FaultKnobs::default());
        let patch: FaultPatch =
            serde_json::from_str(r#"{"fail_next":2,"fail_status":429,"drop_next":1}"#).unwrap();
        f.patch(patch).unwrap();
        assert!(matches!(f.decide().0, Verdict::Drop));
        for _ in 0..2 {
            let (v, _) = f.decide();
            let Verdict::Fail(ApiError::Injected { status, retry_after, .. }) = v else { panic!("{v:?}") };
            assert_eq!(status, 429);
            assert_eq!(retry_after.as_deref(), Some("1"));
        }
        assert!(matches!(f.decide().0, Verdict::Pass));
    }

    #[test]
    fn rate_limit_bucket() {
        let f = Faults::new(FaultKnobs { rate_limit: Some("2/s".parse().unwrap()), ..FaultKnobs::default() });
        assert!(matches!(f.decide().0, Verdict::Pass));
        assert!(matches!(f.decide().0, Verdict::Pass));
        let (v, _) = f.decide();
        assert!(
            matches!(v, Verdict::Fail(ApiError::RateLimited { ref retry_after }) if retry_after == "1"),
            "{v:?}"
        );
        let off: FaultPatch = serde_json::from_str(r#"{"rate_limit":null}"#).unwrap();
        f.patch(off).unwrap();
        assert!(matches!(f.decide().0, Verdict::Pass));
    }

    #[test]
    fn patch_validates_and_http_date() {
        let f = Faults::new(FaultKnobs::default());
        let bad: FaultPatch = serde_json::from_str(r#"{"error_rate":2}"#).unwrap();
        assert!(f.patch(bad).is_err());
        assert_eq!(f.get(), FaultKnobs::default(), "nothing applied");
        assert!(serde_json::from_str::<FaultPatch>(r#"{"nope":1}"#).is_err());
        let p: FaultPatch = serde_json::from_str(r#"{"latency":"100ms","rate_limit":"5/s"}"#).unwrap();
        let k = f.patch(p).unwrap();
        assert_eq!(k.latency, Some(HumanDuration(Duration::from_millis(100))));
        let date = RetryAfterFormat::HttpDate.render(2);
        let at = httpdate::parse_http_date(&date).unwrap();
        assert!(at >= SystemTime::now() + Duration::from_secs(1), "{date}");
    }
}
