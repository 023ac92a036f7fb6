//! The substitutions themselves: placeholder → value in the parts of what the child sends to a
//! listed host that the entry names (`inject`), value → placeholder in the headers and trailers
//! that host sends back (every encoding `--mask` knows, see [`crate::mask`]).

use http::header::{HeaderMap, HeaderValue};
use http::Uri;
use zeroize::Zeroizing;

use crate::mapping::Inject;
use crate::mask::Redactor;

/// One placeholder and the value it stands for.
pub struct Swap {
    /// What the child has.
    pub placeholder: Vec<u8>,
    /// What the host gets. Wiped on drop.
    pub value: Zeroizing<Vec<u8>>,
    /// Where in a request it goes.
    pub inject: Inject,
}

/// `haystack` with every `from` replaced by `to`, or `None` when `from` does not occur.
pub fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Option<Vec<u8>> {
    if from.is_empty() || haystack.len() < from.len() {
        return None;
    }
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    let mut copied = 0;
    while i + from.len() <= haystack.len() {
        if &haystack[i..i + from.len()] == from {
            let o = out.get_or_insert_with(|| Vec::with_capacity(haystack.len() + to.len()));
            o.extend_from_slice(&haystack[copied..i]);
            o.extend_from_slice(to);
            i += from.len();
            copied = i;
        } else {
            i += 1;
        }
    }
    let mut o = out?;
    o.extend_from_slice(&haystack[copied..]);
    Some(o)
}

/// Puts the values into the request headers of the swaps that inject there. Returns whether
/// anything changed. A value that would not be a valid header is left as it was.
pub fn request_headers(map: &mut HeaderMap, swaps: &[Swap]) -> bool {
    let swaps: Vec<&Swap> = swaps.iter().filter(|s| s.inject.header).collect();
    headers(map, &swaps, true, None)
}

/// Takes every value, in every form `scrubber` knows, out of response headers or trailers (and
/// the raw value of every swap, whatever its length). Returns whether anything changed.
pub fn scrub_headers(map: &mut HeaderMap, swaps: &[Swap], scrubber: &Redactor) -> bool {
    let swaps: Vec<&Swap> = swaps.iter().collect();
    headers(map, &swaps, false, Some(scrubber))
}

/// Applies every swap (`forward`: placeholder → value; else value → placeholder, then
/// `scrubber`) to each header value.
fn headers(map: &mut HeaderMap, swaps: &[&Swap], forward: bool, scrubber: Option<&Redactor>) -> bool {
    let mut changed = false;
    for value in map.values_mut() {
        let mut bytes: Option<Zeroizing<Vec<u8>>> = None;
        if let Some(scrubbed) = scrubber.and_then(|s| s.redact_whole(value.as_bytes())) {
            bytes = Some(scrubbed);
        }
        for s in swaps {
            let (from, to): (&[u8], &[u8]) =
                if forward { (&s.placeholder, &s.value) } else { (&s.value, &s.placeholder) };
            let current: &[u8] = bytes.as_deref().map_or(value.as_bytes(), |b| b.as_slice());
            if let Some(next) = replace(current, from, to) {
                bytes = Some(Zeroizing::new(next));
            }
        }
        if let Some(b) = bytes {
            if let Ok(mut v) = HeaderValue::from_bytes(&b) {
                v.set_sensitive(true);
                *value = v;
                changed = true;
            }
        }
    }
    changed
}

/// The URI with placeholders in its query string replaced, or `None` when there were none.
/// The value goes in percent-encoded (every byte but the unreserved ones), so that a value
/// holding `&`, `=` or `#` stays one parameter value.
pub fn query(uri: &Uri, swaps: &[Swap]) -> Option<Uri> {
    let q = uri.query()?;
    let mut bytes = Zeroizing::new(q.as_bytes().to_vec());
    let mut changed = false;
    for s in swaps.iter().filter(|s| s.inject.query) {
        let encoded = Zeroizing::new(percent_encoding::percent_encode(&s.value, NOT_UNRESERVED).to_string());
        if let Some(next) = replace(&bytes, &s.placeholder, encoded.as_bytes()) {
            bytes = Zeroizing::new(next);
            changed = true;
        }
    }
    if !changed {
        return None;
    }
    let path_and_query = Zeroizing::new(format!("{}?{}", uri.path(), String::from_utf8_lossy(&bytes)));
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().ok()?);
    Uri::from_parts(parts).ok()
}

/// RFC 3986 unreserved characters pass; everything else is percent-encoded.
const NOT_UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// A rewritten body would be larger than the proxy holds.
#[derive(Debug, PartialEq, Eq)]
pub struct TooLarge;

/// The body with the placeholders of the swaps that inject there replaced, or `None` when none
/// occurs. One allocation of the final size (counted first), refused when over `max_out`: a
/// body of placeholders for a long value grows by value/placeholder times.
pub fn body(data: &[u8], swaps: &[Swap], max_out: usize) -> Result<Option<Zeroizing<Vec<u8>>>, TooLarge> {
    let swaps: Vec<&Swap> = swaps.iter().filter(|s| s.inject.body && !s.placeholder.is_empty()).collect();
    if swaps.is_empty() {
        return Ok(None);
    }
    let Ok(ac) = aho_corasick::AhoCorasick::new(swaps.iter().map(|s| &s.placeholder)) else {
        return Ok(None);
    };
    let mut size = data.len();
    let mut found = false;
    for m in ac.find_iter(data) {
        let s = swaps[m.pattern().as_usize()];
        // `size` still counts this match's placeholder bytes, so this cannot underflow.
        size = size + s.value.len() - s.placeholder.len();
        found = true;
        if size > max_out {
            return Err(TooLarge);
        }
    }
    if !found {
        return Ok(None);
    }
    let mut out = Zeroizing::new(Vec::with_capacity(size));
    let mut copied = 0;
    for m in ac.find_iter(data) {
        out.extend_from_slice(&data[copied..m.start()]);
        out.extend_from_slice(&swaps[m.pattern().as_usize()].value);
        copied = m.end();
    }
    out.extend_from_slice(&data[copied..]);
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swap(p: &str, v: &str, body: bool) -> Swap {
        let inject = Inject { header: true, query: true, body };
        Swap { placeholder: p.as_bytes().to_vec(), value: Zeroizing::new(v.as_bytes().to_vec()), inject }
    }

    #[test]
    fn replace_all_occurrences_or_none() {
        assert_eq!(replace(b"a PH b PH", b"PH", b"value"), Some(b"a value b value".to_vec()));
        assert_eq!(replace(b"PHPH", b"PH", b"x"), Some(b"xx".to_vec()));
        assert_eq!(replace(b"nothing", b"PH", b"x"), None);
        assert_eq!(replace(b"P", b"PH", b"x"), None);
    }

    #[test]
    fn headers_both_ways() {
        let swaps = [swap("ph_123", "sk-real", false)];
        let mut map = HeaderMap::new();
        map.insert("authorization", HeaderValue::from_static("Bearer ph_123"));
        map.insert("x-other", HeaderValue::from_static("untouched"));
        assert!(request_headers(&mut map, &swaps));
        assert_eq!(map["authorization"], "Bearer sk-real");
        assert!(map["authorization"].is_sensitive());
        assert_eq!(map["x-other"], "untouched");
        let none = Redactor::new(&[]);
        assert!(scrub_headers(&mut map, &swaps, &none));
        assert_eq!(map["authorization"], "Bearer ph_123");
        assert!(!scrub_headers(&mut map, &swaps, &none));
        let no_header = [Swap {
            inject: Inject { header: false, query: true, body: true },
            ..swap("ph_123", "sk-real", true)
        }];
        assert!(!request_headers(&mut map, &no_header));
    }

    #[test]
    fn response_headers_lose_every_encoding_of_the_value() {
        let value = agentsecretstore::secret::SecretString::new("sk-Ab/3+x=q".to_owned());
        let scrubber = Redactor::replacing(&[(b"PH".to_vec(), &value)]);
        let swaps = [swap("PH", "sk-Ab/3+x=q", false)];
        let mut map = HeaderMap::new();
        map.insert("location", HeaderValue::from_static("https://h/?key=sk-Ab%2F3%2Bx%3Dq"));
        map.insert("x-b64", HeaderValue::from_static("c2stQWIvMyt4PXE="));
        assert!(scrub_headers(&mut map, &swaps, &scrubber));
        assert_eq!(map["location"], "https://h/?key=PH");
        assert_eq!(map["x-b64"], "PH");
    }

    #[test]
    fn query_only_not_path() {
        let no_query = [Swap { inject: Inject::default(), ..swap("ph_1", "real v&x=1", false) }];
        assert!(query(&"/x?key=ph_1".parse().unwrap(), &no_query).is_none());
        let swaps = [swap("ph_1", "real v&x=1", false)];
        let uri: Uri = "https://h.example/ph_1/x?key=ph_1&a=b".parse().unwrap();
        let out = query(&uri, &swaps).unwrap();
        assert_eq!(out.to_string(), "https://h.example/ph_1/x?key=real%20v%26x%3D1&a=b");
        let plain: Uri = "/x?a=b".parse().unwrap();
        assert!(query(&plain, &swaps).is_none());
    }

    #[test]
    fn body_only_where_allowed() {
        let swaps = [swap("ph_a", "A", true), swap("ph_b", "B", false)];
        let out = body(b"{\"a\":\"ph_a\",\"b\":\"ph_b\"}", &swaps, 100).unwrap().unwrap();
        assert_eq!(out.as_slice(), b"{\"a\":\"A\",\"b\":\"ph_b\"}");
        assert_eq!(out.capacity(), out.len());
        assert!(body(b"nothing", &swaps, 100).unwrap().is_none());
    }

    #[test]
    fn a_body_growing_past_the_cap_is_refused_before_it_is_built() {
        let swaps = [swap("ph", "a-much-longer-value", true)];
        let data = b"ph".repeat(10);
        assert_eq!(body(&data, &swaps, 100), Err(TooLarge));
        assert_eq!(body(&data, &swaps, 190).unwrap().unwrap().len(), 190);
    }
}
