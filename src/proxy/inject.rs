//! The substitutions themselves: placeholder → value in what the child sends to a listed host,
//! value → placeholder in the headers that host sends back.

use http::header::{HeaderMap, HeaderValue};
use http::Uri;
use zeroize::Zeroizing;

/// One placeholder and the value it stands for.
pub struct Swap {
    /// What the child has.
    pub placeholder: Vec<u8>,
    /// What the host gets. Wiped on drop.
    pub value: Zeroizing<Vec<u8>>,
    /// Whether request bodies are rewritten.
    pub body: bool,
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

/// Applies every swap (`forward`: placeholder → value; else value → placeholder) to each header
/// value. Returns whether anything changed. A value that would not be a valid header is left
/// as it was.
pub fn headers(map: &mut HeaderMap, swaps: &[Swap], forward: bool) -> bool {
    let mut changed = false;
    for value in map.values_mut() {
        let mut bytes: Option<Zeroizing<Vec<u8>>> = None;
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
    for s in swaps {
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

/// The body with placeholders replaced (only swaps that allow it).
pub fn body(data: &[u8], swaps: &[Swap]) -> Option<Zeroizing<Vec<u8>>> {
    let mut out: Option<Zeroizing<Vec<u8>>> = None;
    for s in swaps.iter().filter(|s| s.body) {
        let current: &[u8] = out.as_deref().map_or(data, |b| b.as_slice());
        if let Some(next) = replace(current, &s.placeholder, &s.value) {
            out = Some(Zeroizing::new(next));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swap(p: &str, v: &str, body: bool) -> Swap {
        Swap { placeholder: p.as_bytes().to_vec(), value: Zeroizing::new(v.as_bytes().to_vec()), body }
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
        assert!(headers(&mut map, &swaps, true));
        assert_eq!(map["authorization"], "Bearer sk-real");
        assert!(map["authorization"].is_sensitive());
        assert_eq!(map["x-other"], "untouched");
        assert!(headers(&mut map, &swaps, false));
        assert_eq!(map["authorization"], "Bearer ph_123");
        assert!(!headers(&mut map, &swaps, false));
    }

    #[test]
    fn query_only_not_path() {
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
        let out = body(b"{\"a\":\"ph_a\",\"b\":\"ph_b\"}", &swaps).unwrap();
        assert_eq!(out.as_slice(), b"{\"a\":\"A\",\"b\":\"ph_b\"}");
        assert!(body(b"nothing", &swaps).is_none());
    }
}
