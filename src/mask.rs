//! Streaming redaction of injected secrets in a supervised child's output (`--supervise --mask`).
//!
//! [`Redactor`] is a pure byte-stream filter: no I/O, no threads, no allocation per byte. The
//! supervisor reads the child's stdout/stderr, passes each read to [`Redactor::feed`], writes
//! whatever comes out immediately, and calls [`Redactor::flush`] at EOF or after a short pause
//! without input.
//!
//! What is masked, for each secret value of at least [`MIN_SECRET_LEN`] bytes:
//!
//! * the plain value;
//! * standard and URL-safe base64, each with and without `=` padding;
//! * percent-encoding as produced by JavaScript `encodeURIComponent`, Python `quote(safe='')`,
//!   `application/x-www-form-urlencoded` (WHATWG `URLSearchParams`) and Python
//!   `quote_plus(safe='')`, each with upper- and lower-case hex digits;
//! * the value as it appears inside a JSON string: minimal escaping (`serde_json`,
//!   `JSON.stringify`), the same with `/` written `\/`, Python's `ensure_ascii` (non-ASCII as
//!   `\uXXXX`), and Go's HTML-safe form (`<`, `>`, `&` as `\u003c`…);
//! * a multi-line value with `\r\n` line ends, as a pseudo-terminal writes it.
//!
//! An encoded form identical to the plain value (e.g. percent-encoding an alphanumeric token) is
//! not added twice. Every occurrence is replaced by `[REDACTED:NAME]`.
//!
//! Not masked: a secret embedded inside a larger base64 blob at an offset that is not a multiple
//! of three (e.g. `Basic base64(user:password)`), other encodings (hex, gzip, …), and a secret
//! that straddles a [`Redactor::flush`] (its first part has already been written by then).

use std::fmt;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use zeroize::{Zeroize, Zeroizing};

use agentsecretstore::secret::SecretString;

/// Values shorter than this many bytes are not masked.
///
/// Replacing every `admin`, `true` or `8080` in the output would mangle ordinary output far more
/// than it protects: such values are guessable anyway, and masking them would also tell a reader
/// exactly which common word is the secret.
pub const MIN_SECRET_LEN: usize = 6;

/// Above this many pattern bytes (roughly the number of automaton states) a contiguous NFA is
/// used instead of a DFA. The DFA's table is `states × alphabet classes × 4` bytes, about 300
/// bytes per pattern byte for typical tokens: this limit (about 100 secrets) keeps it near 10 MB.
/// Measured: 1000 secrets as a DFA ran 2.3× faster than the NFA but took 85 MB and 100 ms to
/// build; the NFA takes 3 MB and 20 ms.
const DFA_MAX_PATTERN_BYTES: usize = 32 * 1024;

/// One pattern: an exact byte string and the index of the secret (its replacement) it belongs to.
struct Pattern {
    bytes: Zeroizing<Vec<u8>>,
    owner: usize,
}

/// Everything derived from the secrets; absent when there is nothing to mask.
struct Matcher {
    /// Leftmost-longest automaton over `patterns`; pattern ID `i` is `patterns[i]`.
    ac: AhoCorasick,
    /// Sorted by bytes and deduplicated, so that "could this tail still become a pattern" is a
    /// binary search (see [`Matcher::could_start`]).
    patterns: Vec<Pattern>,
    /// `[REDACTED:NAME]` per secret, indexed by [`Pattern::owner`].
    replacements: Vec<Vec<u8>>,
    /// Bitset of the first bytes of all patterns: rejects most tail positions in one lookup.
    first: [u64; 4],
    /// Bitset of the first two bytes of all patterns (65 536 bits), the second cheap filter.
    pairs: Box<[u64; 1024]>,
    /// Length of the longest pattern: a tail longer than `max_len - 1` can never be held.
    max_len: usize,
}

/// A streaming redactor for one output stream. Use one per stream (the held-back tail belongs to
/// the stream it came from): [`Clone`] it for stdout and stderr, which shares the automaton and
/// patterns and copies only the (normally empty) held-back tail.
///
/// All pattern bytes it holds (the values and their encodings) are in zeroizing buffers, and so
/// are the held-back tail and the scratch buffer, which may contain the start of a secret. The
/// aho-corasick automaton keeps its own copy of the patterns in its transition tables, which is
/// not zeroized when the `Redactor` is dropped.
///
/// `Debug` prints counts only, never a pattern.
pub struct Redactor {
    /// Shared by clones: the automaton is immutable once built.
    matcher: Option<Arc<Matcher>>,
    /// Bytes received but not yet emitted: the shortest tail that could still be the start of a
    /// pattern (at most the longest pattern's length minus one).
    pending: Zeroizing<Vec<u8>>,
    /// `pending ++ input` when a tail is held, reused across calls to avoid an allocation per feed.
    scratch: Zeroizing<Vec<u8>>,
}

impl Redactor {
    /// Builds a redactor for `secrets` (`(NAME, value)` pairs).
    ///
    /// Values shorter than [`MIN_SECRET_LEN`] bytes are ignored (see there why). When two
    /// secrets share a value, or one's encoded form equals another's value, the occurrence is
    /// reported under the first secret's name, plain values taking precedence over encoded forms.
    ///
    /// # Panics
    ///
    /// Only if the automaton cannot be built at all, which needs patterns totalling gigabytes.
    pub fn new(secrets: &[(String, SecretString)]) -> Redactor {
        let named: Vec<(Vec<u8>, &SecretString)> =
            secrets.iter().map(|(name, value)| (format!("[REDACTED:{name}]").into_bytes(), value)).collect();
        Redactor::replacing(&named)
    }

    /// Like [`Redactor::new`], with each value (and its encodings) replaced by the bytes given
    /// with it: the agent-safe proxy puts the placeholder back where a listed host returned the
    /// value.
    pub fn replacing(secrets: &[(Vec<u8>, &SecretString)]) -> Redactor {
        // (pattern, precedence) where precedence orders duplicates: plain values first, then in
        // the order the secrets were given.
        let mut candidates: Vec<(Pattern, usize)> = Vec::new();
        let mut replacements = Vec::new();
        for (replacement, value) in secrets {
            if value.len() < MIN_SECRET_LEN {
                continue;
            }
            let owner = replacements.len();
            replacements.push(replacement.clone());
            let plain = value.expose();
            candidates.push((Pattern { bytes: Zeroizing::new(plain.as_bytes().to_vec()), owner }, owner));
            encoded_forms(plain, &mut |bytes| {
                if bytes.as_slice() != plain.as_bytes() {
                    candidates.push((Pattern { bytes, owner }, secrets.len() + owner));
                }
            });
        }
        if candidates.is_empty() {
            return Redactor { matcher: None, pending: Zeroizing::default(), scratch: Zeroizing::default() };
        }
        candidates.sort_unstable_by(|a, b| a.0.bytes.cmp(&b.0.bytes).then(a.1.cmp(&b.1)));
        // `dedup_by` drops the later element of each equal run, i.e. the lower-precedence owner.
        candidates.dedup_by(|later, earlier| later.0.bytes == earlier.0.bytes);
        let patterns: Vec<Pattern> = candidates.into_iter().map(|(p, _)| p).collect();

        let mut first = [0u64; 4];
        let mut pairs = Box::new([0u64; 1024]);
        let mut total = 0;
        let mut max_len = 0;
        for p in &patterns {
            set_bit(&mut first, usize::from(p.bytes[0]));
            set_bit(&mut pairs[..], pair_index(p.bytes[0], p.bytes[1]));
            total += p.bytes.len();
            max_len = max_len.max(p.bytes.len());
        }
        let ac = build_automaton(&patterns, total);
        Redactor {
            matcher: Some(Arc::new(Matcher { ac, patterns, replacements, first, pairs, max_len })),
            pending: Zeroizing::default(),
            scratch: Zeroizing::default(),
        }
    }

    /// Whether there is nothing to mask (no secret of [`MIN_SECRET_LEN`] bytes or more): the
    /// caller may then copy the stream through without calling [`Redactor::feed`].
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// Takes the next chunk of the stream and appends to `out` everything that can be decided
    /// now, with every complete secret occurrence replaced.
    ///
    /// Only the shortest tail that could still grow into a secret (or into a longer secret
    /// than one already seen) is held back, at most the longest pattern's length minus one
    /// bytes; [`Redactor::pending`] tells how many. A secret split across any number of feeds is
    /// still redacted. Bytes are emitted in their original order and unchanged apart from
    /// replacements, whether or not they are UTF-8.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let Some(matcher) = &self.matcher else {
            out.extend_from_slice(input);
            return;
        };
        if input.is_empty() {
            return;
        }
        if self.pending.is_empty() {
            // Common case: nothing held, search the caller's buffer without copying it.
            let tail = matcher.emit(input, out, true);
            self.pending.extend_from_slice(&input[tail..]);
        } else {
            // A match may straddle the held tail and the new input, so search them as one.
            self.scratch.extend_from_slice(&self.pending);
            self.scratch.extend_from_slice(input);
            let tail = matcher.emit(&self.scratch, out, true);
            self.pending.zeroize();
            self.pending.extend_from_slice(&self.scratch[tail..]);
            // The scratch copy may hold a secret the child printed: wipe it, keep the capacity.
            self.scratch.zeroize();
        }
    }

    /// Emits the held-back tail (redacting any complete secret in it) and forgets it.
    ///
    /// Call it at EOF, and after a short pause without new input so that a partial line (a
    /// prompt, a progress bar) is not held indefinitely. The stream is then treated as if it
    /// had ended there: a secret whose first bytes were flushed is not recognised when the rest
    /// arrives later.
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        if self.pending.is_empty() {
            return;
        }
        if let Some(matcher) = &self.matcher {
            matcher.emit(&self.pending, out, false);
        }
        self.pending.zeroize();
    }

    /// Whether feeding `input` now would emit it unchanged and hold nothing back (no tail held,
    /// no match in it, no start of a pattern at its end): the caller may then pass it on as it
    /// is, without the copy [`Redactor::feed`] makes.
    pub fn passes_unchanged(&self, input: &[u8]) -> bool {
        let Some(matcher) = &self.matcher else { return true };
        self.pending.is_empty() && matcher.live_from(input, 0) == input.len() && !matcher.ac.is_match(input)
    }

    /// `input` redacted as a whole stream of its own (a header value), or `None` when it holds
    /// nothing to redact. Leaves this redactor's held-back tail alone.
    pub fn redact_whole(&self, input: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let matcher = self.matcher.as_ref()?;
        if !matcher.ac.is_match(input) {
            return None;
        }
        let mut out = Zeroizing::new(Vec::with_capacity(input.len()));
        matcher.emit(input, &mut out, false);
        Some(out)
    }

    /// Number of bytes received but held back, waiting for more input or [`Redactor::flush`].
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

impl Clone for Redactor {
    fn clone(&self) -> Self {
        Redactor {
            matcher: self.matcher.clone(),
            pending: self.pending.clone(),
            scratch: Zeroizing::default(),
        }
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secrets, patterns) =
            self.matcher.as_ref().map_or((0, 0), |m| (m.replacements.len(), m.patterns.len()));
        f.debug_struct("Redactor")
            .field("secrets", &secrets)
            .field("patterns", &patterns)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Matcher {
    /// Appends `hay` to `out` with matches replaced. With `hold`, stops at the start of the
    /// shortest tail that could still be (or grow into a longer) match and returns its offset;
    /// without, treats `hay` as the end of the stream and returns `hay.len()`.
    ///
    /// Why this is exact: a match found at `q` before the tail is final, because `hay[q..]` is
    /// not a proper prefix of any pattern (else `q` would be in the tail), so no longer match
    /// at `q` can appear; and no earlier match can appear, because every earlier position is
    /// likewise not extendable and matched nothing.
    fn emit(&self, hay: &[u8], out: &mut Vec<u8>, hold: bool) -> usize {
        let mut tail = if hold { self.live_from(hay, 0) } else { hay.len() };
        let mut pos = 0;
        for m in self.ac.find_iter(hay) {
            if m.start() >= tail {
                break;
            }
            out.extend_from_slice(&hay[pos..m.start()]);
            out.extend_from_slice(&self.replacements[self.patterns[m.pattern().as_usize()].owner]);
            pos = m.end();
            if pos > tail {
                // The match swallowed the old tail; the new one can only start after it.
                tail = self.live_from(hay, pos);
            }
        }
        out.extend_from_slice(&hay[pos..tail]);
        tail
    }

    /// The first position at or after `from` whose suffix of `hay` is a proper prefix of some
    /// pattern, or `hay.len()`. Only the last `max_len - 1` positions can qualify.
    fn live_from(&self, hay: &[u8], from: usize) -> usize {
        let start = from.max(hay.len().saturating_sub(self.max_len - 1));
        (start..hay.len()).find(|&s| self.could_start(&hay[s..])).unwrap_or(hay.len())
    }

    /// Whether `tail` (non-empty) is a proper prefix of some pattern.
    fn could_start(&self, tail: &[u8]) -> bool {
        if !get_bit(&self.first, usize::from(tail[0])) {
            return false;
        }
        if tail.len() >= 2 && !get_bit(&self.pairs[..], pair_index(tail[0], tail[1])) {
            return false;
        }
        // In sorted order the patterns starting with `tail` come first among those >= `tail`;
        // the first may be `tail` itself (not a proper prefix), then the next decides.
        let i = self.patterns.partition_point(|p| p.bytes.as_slice() < tail);
        self.patterns[i..].iter().take(2).any(|p| p.bytes.len() > tail.len() && p.bytes.starts_with(tail))
    }
}

fn build_automaton(patterns: &[Pattern], total_bytes: usize) -> AhoCorasick {
    let bytes = || patterns.iter().map(|p| p.bytes.as_slice());
    let mut builder = AhoCorasick::builder();
    builder.match_kind(MatchKind::LeftmostLongest);
    if total_bytes <= DFA_MAX_PATTERN_BYTES {
        if let Ok(ac) = builder.kind(Some(AhoCorasickKind::DFA)).build(bytes()) {
            return ac;
        }
    }
    // Let aho-corasick choose: contiguous NFA, or the non-contiguous one if that is too big.
    builder.kind(None).build(bytes()).expect("secret patterns exceed the aho-corasick size limits")
}

fn pair_index(a: u8, b: u8) -> usize {
    usize::from(a) << 8 | usize::from(b)
}

fn set_bit(bits: &mut [u64], i: usize) {
    bits[i / 64] |= 1 << (i % 64);
}

fn get_bit(bits: &[u64], i: usize) -> bool {
    bits[i / 64] & (1 << (i % 64)) != 0
}

/// Calls `emit` with every encoded form of `value` (possibly equal to it or to each other; the
/// caller deduplicates). Each form is built in a buffer sized up front, so no reallocation leaves
/// an un-zeroized copy behind.
fn encoded_forms(value: &str, emit: &mut dyn FnMut(Zeroizing<Vec<u8>>)) {
    let raw = value.as_bytes();
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        let mut buf = Zeroizing::new(vec![0u8; raw.len().div_ceil(3) * 4]);
        let n = engine.encode_slice(raw, &mut buf[..]).expect("buffer sized for padded base64");
        buf.truncate(n);
        emit(buf);
    }
    // (unreserved punctuation besides ASCII alphanumerics, space as `+`)
    const PERCENT_FLAVOURS: [(&[u8], bool); 4] = [
        (b"-_.!~*'()", false), // JavaScript encodeURIComponent
        (b"_.-~", false),      // Python quote(safe='')
        (b"*-._", true),       // application/x-www-form-urlencoded (URLSearchParams)
        (b"_.-~", true),       // Python quote_plus(safe='')
    ];
    for (unreserved, plus) in PERCENT_FLAVOURS {
        if plus && !raw.contains(&b' ') {
            continue; // identical to a flavour without `+` already emitted
        }
        for hex in [b"0123456789ABCDEF", b"0123456789abcdef"] {
            let mut buf = Zeroizing::new(Vec::with_capacity(raw.len() * 3));
            for &b in raw {
                if b.is_ascii_alphanumeric() || unreserved.contains(&b) {
                    buf.push(b);
                } else if plus && b == b' ' {
                    buf.push(b'+');
                } else {
                    buf.extend_from_slice(&[b'%', hex[usize::from(b >> 4)], hex[usize::from(b & 15)]]);
                }
            }
            emit(buf);
        }
    }
    for style in [JsonStyle::Minimal, JsonStyle::Slash, JsonStyle::Ascii, JsonStyle::HtmlSafe] {
        emit(json_escape(value, style));
    }
    // A child on a pseudo-terminal (`--mask` on a terminal) has its "\n" turned into "\r\n" by
    // the terminal (ONLCR) before vault-run reads it: a multi-line secret (a PEM key) would
    // otherwise never match. Programs writing CRLF line ends produce the same form.
    let newlines = raw.iter().filter(|&&b| b == b'\n').count();
    if newlines > 0 {
        let mut buf = Zeroizing::new(Vec::with_capacity(raw.len() + newlines));
        for &b in raw {
            if b == b'\n' {
                buf.push(b'\r');
            }
            buf.push(b);
        }
        emit(buf);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum JsonStyle {
    /// serde_json, JavaScript `JSON.stringify`.
    Minimal,
    /// Minimal, plus `/` as `\/` (PHP `json_encode`, some Java encoders).
    Slash,
    /// Python `json.dumps` default: every non-ASCII character as `\uXXXX` (UTF-16).
    Ascii,
    /// Go `encoding/json` default: `<`, `>`, `&`, U+2028 and U+2029 as `\uXXXX`.
    HtmlSafe,
}

/// `value` as it appears between the quotes of a JSON string written in `style`.
fn json_escape(value: &str, style: JsonStyle) -> Zeroizing<Vec<u8>> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // The worst case is 12 bytes (a surrogate pair) per 4-byte character, or 6 per control byte.
    let mut buf = Zeroizing::new(Vec::with_capacity(value.len() * 6));
    let unit = |buf: &mut Vec<u8>, u: u16| {
        buf.extend_from_slice(b"\\u");
        for shift in [12, 8, 4, 0] {
            buf.push(HEX[usize::from((u >> shift) & 15)]);
        }
    };
    for c in value.chars() {
        match c {
            '"' => buf.extend_from_slice(b"\\\""),
            '\\' => buf.extend_from_slice(b"\\\\"),
            '\n' => buf.extend_from_slice(b"\\n"),
            '\r' => buf.extend_from_slice(b"\\r"),
            '\t' => buf.extend_from_slice(b"\\t"),
            '\u{8}' => buf.extend_from_slice(b"\\b"),
            '\u{c}' => buf.extend_from_slice(b"\\f"),
            '/' if style == JsonStyle::Slash => buf.extend_from_slice(b"\\/"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' if style == JsonStyle::HtmlSafe => {
                unit(&mut buf, c as u16)
            }
            c if (c as u32) < 0x20 => unit(&mut buf, c as u16),
            c if style == JsonStyle::Ascii && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for &u in c.encode_utf16(&mut units).iter() {
                    unit(&mut buf, u);
                }
            }
            c => {
                let mut utf8 = [0u8; 4];
                buf.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Instant;

    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    use proptest::prelude::*;

    fn redactor(secrets: &[(&str, &str)]) -> Redactor {
        let owned: Vec<(String, SecretString)> =
            secrets.iter().map(|(n, v)| (n.to_string(), SecretString::from(*v))).collect();
        Redactor::new(&owned)
    }

    fn one_shot(r: &mut Redactor, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        r.feed(input, &mut out);
        r.flush(&mut out);
        out
    }

    /// Feeds `input` and checks what is written at once and how many bytes are held back (a
    /// possible start of a secret); returns the output, for a later flush to append to.
    #[track_caller]
    fn feed_expect(r: &mut Redactor, input: &[u8], emitted: &[u8], held: usize) -> Vec<u8> {
        let mut out = Vec::new();
        r.feed(input, &mut out);
        assert_eq!(out, emitted);
        assert_eq!(r.pending(), held);
        out
    }

    /// Feeds `input` in chunks whose sizes cycle through `sizes`, then flushes.
    fn chunked(r: &mut Redactor, input: &[u8], sizes: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = input;
        for &n in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (head, tail) = rest.split_at(n.clamp(1, rest.len()));
            r.feed(head, &mut out);
            assert!(r.pending() < r.matcher.as_ref().map_or(1, |m| m.max_len));
            rest = tail;
        }
        r.flush(&mut out);
        assert_eq!(r.pending(), 0);
        out
    }

    /// Independent oracle: at each position take the longest pattern that matches there.
    fn naive(r: &Redactor, input: &[u8]) -> Vec<u8> {
        let Some(m) = &r.matcher else { return input.to_vec() };
        let mut out = Vec::new();
        let mut i = 0;
        while i < input.len() {
            let best =
                m.patterns.iter().filter(|p| input[i..].starts_with(&p.bytes)).max_by_key(|p| p.bytes.len());
            match best {
                Some(p) => {
                    out.extend_from_slice(&m.replacements[p.owner]);
                    i += p.bytes.len();
                }
                None => {
                    out.push(input[i]);
                    i += 1;
                }
            }
        }
        out
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    fn lower_hex(s: &str) -> String {
        let mut out = String::new();
        let mut left = 0;
        for c in s.chars() {
            if c == '%' {
                left = 2;
                out.push(c);
            } else if left > 0 {
                left -= 1;
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }

    const VALUE: &str = "p@ss/w+rd \"q\"\\é<&>~!*'()\n\u{1}?>?x";

    fn expected_forms(v: &str) -> Vec<(&'static str, String)> {
        const JS: &AsciiSet = &NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'_')
            .remove(b'.')
            .remove(b'!')
            .remove(b'~')
            .remove(b'*')
            .remove(b'\'')
            .remove(b'(')
            .remove(b')');
        const PY: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-').remove(b'~');
        const FORM: &AsciiSet = &NON_ALPHANUMERIC.remove(b'*').remove(b'-').remove(b'.').remove(b'_');
        let js = utf8_percent_encode(v, JS).to_string();
        let py = utf8_percent_encode(v, PY).to_string();
        let form = utf8_percent_encode(v, FORM).to_string().replace("%20", "+");
        let py_plus = py.replace("%20", "+");
        let json = serde_json::to_string(v).unwrap();
        let json = json[1..json.len() - 1].to_string();
        vec![
            ("plain", v.to_string()),
            ("base64", STANDARD.encode(v)),
            ("base64 no pad", STANDARD_NO_PAD.encode(v)),
            ("base64url", URL_SAFE.encode(v)),
            ("base64url no pad", URL_SAFE_NO_PAD.encode(v)),
            ("encodeURIComponent", js.clone()),
            ("encodeURIComponent lower", lower_hex(&js)),
            ("quote", py.clone()),
            ("quote lower", lower_hex(&py)),
            ("form", form.clone()),
            ("form lower", lower_hex(&form)),
            ("quote_plus", py_plus.clone()),
            ("quote_plus lower", lower_hex(&py_plus)),
            ("json", json.clone()),
            ("json slash", json.replace('/', "\\/")),
            ("json ascii", json.replace('é', "\\u00e9")),
            ("json go", json.replace('<', "\\u003c").replace('&', "\\u0026").replace('>', "\\u003e")),
        ]
    }

    #[test]
    fn every_encoding_is_redacted() {
        let forms = expected_forms(VALUE);
        // The value is chosen so that the forms really differ (padding, `+`/`/` vs `-`/`_`, …).
        let distinct: std::collections::HashSet<&String> = forms.iter().map(|(_, f)| f).collect();
        assert_eq!(distinct.len(), forms.len(), "{forms:?}");
        assert!(STANDARD.encode(VALUE).ends_with('='));
        assert!(STANDARD.encode(VALUE).contains(['+', '/']));
        for (what, form) in &forms {
            let mut r = redactor(&[("PASSWORD", VALUE)]);
            let input = format!("before {form} after\n");
            let out = one_shot(&mut r, input.as_bytes());
            assert_eq!(out, b"before [REDACTED:PASSWORD] after\n", "{what}: {form}");
        }
    }

    #[test]
    fn encoded_forms_identical_to_the_value_are_not_duplicated() {
        let r = redactor(&[("T", "abcdefghijkl")]);
        let m = r.matcher.as_ref().unwrap();
        // plain, base64 (12 bytes: no padding, no `+`/`/`), and nothing else.
        assert_eq!(m.patterns.len(), 2, "{r:?}");
    }

    #[test]
    fn split_at_every_boundary() {
        let secret = "s3cr3t/Value+xyz";
        let b64 = STANDARD.encode(secret);
        let input = format!("a {secret} b {b64} c {secret}{secret}\n");
        let expected = "a [REDACTED:S] b [REDACTED:S] c [REDACTED:S][REDACTED:S]\n";
        let bytes = input.as_bytes();
        // After a flush a redactor has no state left, so one serves every split.
        let mut r = redactor(&[("S", secret)]);
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let mut out = Vec::new();
                r.feed(&bytes[..i], &mut out);
                r.feed(&bytes[i..j], &mut out);
                r.feed(&bytes[j..], &mut out);
                r.flush(&mut out);
                assert_eq!(String::from_utf8(out).unwrap(), expected, "split at {i}, {j}");
            }
        }
        for sizes in [&[1][..], &[2], &[3], &[7], &[1, 5, 2, 11]] {
            let mut r = redactor(&[("S", secret)]);
            assert_eq!(chunked(&mut r, bytes, sizes), expected.as_bytes(), "{sizes:?}");
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200 {
            let sizes: Vec<usize> = (0..8).map(|_| 1 + (xorshift(&mut seed) % 20) as usize).collect();
            let mut r = redactor(&[("S", secret)]);
            assert_eq!(chunked(&mut r, bytes, &sizes), expected.as_bytes(), "{sizes:?}");
        }
    }

    #[test]
    fn output_is_emitted_without_waiting_for_more() {
        let mut r = redactor(&[("S", "supersecret")]);
        feed_expect(&mut r, b"line one\nline two ", b"line one\nline two ", 0);
        feed_expect(&mut r, b"x supers", b"x ", 6);
        feed_expect(&mut r, b"ecret!\n", b"[REDACTED:S]!\n", 0);
    }

    #[test]
    fn clones_share_patterns_but_not_state() {
        let mut stdout = redactor(&[("S", "supersecret")]);
        let mut stderr = stdout.clone();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        stdout.feed(b"a super", &mut out);
        stderr.feed(b"b secret supersecret", &mut err);
        stdout.feed(b"secret", &mut out);
        stdout.flush(&mut out);
        stderr.flush(&mut err);
        assert_eq!(out, b"a [REDACTED:S]");
        assert_eq!(err, b"b secret [REDACTED:S]");
    }

    #[test]
    fn overlapping_secrets_prefer_the_longest() {
        let secrets = [("SHORT", "abcdef12"), ("LONG", "abcdef123456"), ("MID", "def1234567")];
        let mut r = redactor(&secrets);
        assert_eq!(one_shot(&mut r, b"<abcdef123456>"), b"<[REDACTED:LONG]>");
        let mut r = redactor(&secrets);
        assert_eq!(one_shot(&mut r, b"<abcdef1234>"), b"<[REDACTED:SHORT]34>");
        // Leftmost wins over longest-starting-later.
        let mut r = redactor(&secrets);
        assert_eq!(one_shot(&mut r, b"abcdef1234567"), b"[REDACTED:LONG]7");
        // A complete shorter match at EOF that could have grown is still redacted on flush.
        let mut r = redactor(&secrets);
        let mut out = feed_expect(&mut r, b"x abcdef12", b"x ", 8);
        r.flush(&mut out);
        assert_eq!(out, b"x [REDACTED:SHORT]");
        // Same value under two names: the first name is used.
        let mut r = redactor(&[("A", "samevalue"), ("B", "samevalue")]);
        assert_eq!(one_shot(&mut r, b"samevalue"), b"[REDACTED:A]");
    }

    #[test]
    fn prefix_at_eof_is_emitted_unchanged() {
        let mut r = redactor(&[("S", "hunter2hunter2")]);
        let mut out = feed_expect(&mut r, b"abc hunter2hun", b"abc ", 10);
        r.flush(&mut out);
        assert_eq!(out, b"abc hunter2hun");
        assert_eq!(r.pending(), 0);
        // After a flush the stream starts afresh; bytes keep their order.
        r.feed(b"ter2 hunter2hunter2", &mut out);
        r.flush(&mut out);
        assert_eq!(out, b"abc hunter2hunter2 [REDACTED:S]");
    }

    #[test]
    fn non_utf8_passes_through() {
        let mut input = vec![0xff, 0xfe, b'a', 0x80];
        input.extend_from_slice(b"topsecret");
        input.extend_from_slice(&[0xc3, 0x28, 0xf0, 0x9f]);
        let mut r = redactor(&[("S", "topsecret")]);
        let out = chunked(&mut r, &input, &[1]);
        let mut expected = vec![0xff, 0xfe, b'a', 0x80];
        expected.extend_from_slice(b"[REDACTED:S]");
        expected.extend_from_slice(&[0xc3, 0x28, 0xf0, 0x9f]);
        assert_eq!(out, expected);
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(chunked(&mut redactor(&[("S", "topsecret")]), &all, &[3]), all);
    }

    #[test]
    fn short_values_are_not_masked() {
        let mut r = redactor(&[("PORT", "8080"), ("USER", "admin"), ("EMPTY", "")]);
        assert!(r.is_empty());
        assert_eq!(one_shot(&mut r, b"admin on 8080"), b"admin on 8080");
        let mut r = redactor(&[("USER", "admin"), ("KEY", "sixsix")]);
        assert!(!r.is_empty());
        assert_eq!(one_shot(&mut r, b"admin sixsix"), b"admin [REDACTED:KEY]");
        assert!(!format!("{r:?}").contains("sixsix"));
    }

    fn random_secrets(n: usize, seed: u64) -> Vec<(String, SecretString)> {
        const ALPHABET: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_.!@#$%&*";
        let mut state = seed;
        (0..n)
            .map(|i| {
                let len = 16 + (xorshift(&mut state) % 33) as usize;
                let value: String = (0..len)
                    .map(|_| ALPHABET[(xorshift(&mut state) % ALPHABET.len() as u64) as usize] as char)
                    .collect();
                (format!("SECRET_{i}"), SecretString::new(value))
            })
            .collect()
    }

    #[test]
    fn many_secrets() {
        let secrets = random_secrets(1000, 42);
        let mut r = Redactor::new(&secrets);
        let mut input = Vec::new();
        let mut expected = Vec::new();
        for (i, (name, value)) in secrets.iter().enumerate().step_by(37) {
            let form = if i % 2 == 0 { value.expose().to_string() } else { STANDARD.encode(value.expose()) };
            input.extend_from_slice(format!("line {i}: {form}\n").as_bytes());
            expected.extend_from_slice(format!("line {i}: [REDACTED:{name}]\n").as_bytes());
        }
        assert_eq!(chunked(&mut r, &input, &[1, 13, 64, 5]), expected);
        assert_eq!(naive(&r, &input), expected);
    }

    #[test]
    fn no_quadratic_behaviour() {
        // 32 MiB in 64 KiB reads, every line a near-miss of a secret (so the held-back tail is
        // never empty); sized to take about a second in a debug build.
        let secrets = random_secrets(10, 7);
        let mut r = Redactor::new(&secrets);
        let mut chunk = Vec::new();
        let s0 = secrets[0].1.expose();
        while chunk.len() < 64 * 1024 {
            chunk.extend_from_slice(
                b"2024-01-01T00:00:00Z INFO request handled path=/api/v1/items status=200 ",
            );
            chunk.extend_from_slice(&s0.as_bytes()[..s0.len() - 1]);
            chunk.extend_from_slice(b"\n");
        }
        chunk.truncate(64 * 1024 - 3);
        chunk.extend_from_slice(&s0.as_bytes()[..3]);
        let mut out = Vec::with_capacity(chunk.len() * 2);
        let started = Instant::now();
        for _ in 0..512 {
            out.clear();
            r.feed(&chunk, &mut out);
            assert!(out.len() >= chunk.len() - 64);
        }
        r.flush(&mut out);
        assert!(started.elapsed().as_secs() < 30, "took {:?}", started.elapsed());
    }

    /// Release-mode throughput: `cargo test --release --lib mask::tests::throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn throughput() {
        let mut line_seed = 1;
        let mut data = Vec::with_capacity(256 << 20);
        let words: &[&[u8]] =
            &[b"INFO ", b"request ", b"GET /api/v1/items?id=", b"status=200 ", b"took 12ms ", b"user=alice "];
        while data.len() < 256 << 20 {
            for _ in 0..8 {
                data.extend_from_slice(words[(xorshift(&mut line_seed) % words.len() as u64) as usize]);
            }
            data.extend_from_slice(format!("{:x}\n", xorshift(&mut line_seed)).as_bytes());
        }
        for n in [0, 10, 1000] {
            let secrets = random_secrets(n, 99);
            let built = Instant::now();
            let mut r = Redactor::new(&secrets);
            let build_time = built.elapsed();
            let mut out = Vec::with_capacity(128 * 1024);
            let started = Instant::now();
            let mut total = 0;
            for chunk in data.chunks(64 * 1024) {
                out.clear();
                r.feed(chunk, &mut out);
                total += out.len();
            }
            r.flush(&mut out);
            let secs = started.elapsed().as_secs_f64();
            assert!(total + out.len() >= data.len());
            println!(
                "{n:>5} secrets ({:?}): {:.0} MB/s (built in {build_time:?}, {} bytes)",
                r,
                data.len() as f64 / secs / 1e6,
                r.matcher.as_ref().map_or(0, |m| m.ac.memory_usage())
            );
        }
    }

    #[derive(Debug, Clone)]
    enum Piece {
        Noise(Vec<u8>),
        Form { secret: usize, form: usize, cut: usize },
    }

    fn piece() -> impl Strategy<Value = Piece> {
        // Noise from a small alphabet that shares bytes with the secrets, so partial matches and
        // near-misses are common, plus bytes that are never valid UTF-8.
        let noise = prop::collection::vec(
            prop::sample::select(vec![
                b'a', b'b', b'c', b'/', b'+', b'=', b'%', b'2', b'\\', b' ', 0xff, 0xc3,
            ]),
            0..12,
        )
        .prop_map(Piece::Noise);
        let form = (0..4usize, 0..32usize, 0..40usize).prop_map(|(secret, form, cut)| Piece::Form {
            secret,
            form,
            cut,
        });
        prop_oneof![noise, form]
    }

    fn secret_value() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!['a', 'b', 'c', '/', '+', ' ', '"', 'é']), 6..12)
            .prop_map(|cs| cs.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn chunked_equals_one_shot_and_leaks_nothing(
            values in prop::collection::vec(secret_value(), 1..4),
            pieces in prop::collection::vec(piece(), 0..24),
            sizes in prop::collection::vec(1..20usize, 1..8),
        ) {
            let secrets: Vec<(String, SecretString)> =
                values.iter().enumerate().map(|(i, v)| (format!("S{i}"), SecretString::from(v.as_str()))).collect();
            let reference = Redactor::new(&secrets);
            let patterns: Vec<Vec<u8>> =
                reference.matcher.as_ref().unwrap().patterns.iter().map(|p| p.bytes.to_vec()).collect();
            let mut input = Vec::new();
            for piece in &pieces {
                match piece {
                    Piece::Noise(bytes) => input.extend_from_slice(bytes),
                    Piece::Form { secret, form, cut } => {
                        let mut forms = Vec::new();
                        let value = &values[secret % values.len()];
                        forms.push(Zeroizing::new(value.as_bytes().to_vec()));
                        encoded_forms(value, &mut |f| forms.push(f));
                        let form = &forms[form % forms.len()];
                        // Sometimes only a prefix: a near-miss that must come out unchanged.
                        let len = if *cut < 30 { form.len() } else { cut % form.len() };
                        input.extend_from_slice(&form[..len]);
                    }
                }
            }
            let expected = naive(&reference, &input);
            let once = one_shot(&mut Redactor::new(&secrets), &input);
            prop_assert_eq!(&once, &expected);
            let streamed = chunked(&mut Redactor::new(&secrets), &input, &sizes);
            prop_assert_eq!(&streamed, &expected);
            for p in &patterns {
                prop_assert!(!contains(&streamed, p), "pattern left in output");
            }
        }
    }
}
