//! The HTTP messages between the child and a host: the proxy's own answers, the hop-by-hop
//! headers taken off, and the substitutions applied to a request and its answer.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, Limited};
use hyper::body::Incoming;

use super::inject::{self, Swap};
use super::scrub::{self, BoxError, Scrubbed};
use super::Shared;

/// A body as the proxy passes it on.
pub(super) type Body = BoxBody<Bytes, BoxError>;

/// The largest request body buffered for substitution (`inject = ["body"]`), before and after.
pub(super) const MAX_BODY: usize = 32 * 1024 * 1024;

pub(super) fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub(super) fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into()).map_err(|never| match never {}).boxed()
}

pub(super) fn status(code: StatusCode, message: String) -> Response<Body> {
    let mut r = Response::new(full(format!("vault-run proxy: {message}\n")));
    *r.status_mut() = code;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

pub(super) enum Failure {
    TooLarge,
    Other(BoxError),
}

impl Failure {
    pub(super) fn other(e: impl Into<BoxError>) -> Self {
        Failure::Other(e.into())
    }
}

pub(super) fn too_large() -> Response<Body> {
    status(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the request body is over {} MiB before or after the value goes in, too large to rewrite (inject = [\"body\"])",
            MAX_BODY >> 20
        ),
    )
}

/// The request to a listed host with the values put where the entries say (`inject`), and
/// the parts that would let the value come back unseen taken off.
pub(super) async fn substitute(
    parts: &mut http::request::Parts,
    body: Incoming,
    swaps: &[Swap],
) -> Result<Body, Failure> {
    strip_hop_by_hop(&mut parts.headers);
    inject::request_headers(&mut parts.headers, swaps);
    if let Some(uri) = inject::query(&parts.uri, swaps) {
        parts.uri = uri;
    }
    if !swaps.is_empty() {
        // A compressed answer could carry the value past the scrubber.
        parts.headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }
    request_body(&mut parts.headers, body, swaps).await
}

/// The request body: streamed as is, or (when an entry for this host injects into bodies)
/// read once, substituted in one pass and sent with its new length.
pub(super) async fn request_body(
    headers: &mut HeaderMap,
    body: Incoming,
    swaps: &[Swap],
) -> Result<Body, Failure> {
    if !swaps.iter().any(|s| s.inject.body) {
        return Ok(body.map_err(BoxError::from).boxed());
    }
    let collected = match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(Failure::TooLarge),
        Err(e) => return Err(Failure::Other(e)),
    };
    match inject::body(&collected, swaps, MAX_BODY) {
        Err(inject::TooLarge) => Err(Failure::TooLarge),
        Ok(None) => Ok(full(collected)),
        Ok(Some(replaced)) => {
            drop(collected);
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(replaced.len()));
            Ok(full(scrub::wiped_bytes(replaced)))
        }
    }
}

impl Shared {
    /// A listed host's answer as the child gets it: hop-by-hop headers off, the values out of
    /// headers, body and trailers.
    pub(super) fn scrubbed(
        &self,
        resp: Response<Incoming>,
        method: &Method,
        swaps: Arc<[Swap]>,
    ) -> Response<Body> {
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let scrubber = self.scrubber();
        inject::scrub_headers(&mut parts.headers, &swaps, &scrubber);
        let bodiless = method == Method::HEAD
            || parts.status == StatusCode::NO_CONTENT
            || parts.status == StatusCode::NOT_MODIFIED;
        if !bodiless && !scrubber.is_empty() {
            // A placeholder need not be as long as its value.
            parts.headers.remove(header::CONTENT_LENGTH);
        }
        Response::from_parts(parts, Scrubbed::new(body, &scrubber, swaps).boxed())
    }
}

/// The protocol an HTTP/1.1 request asks to switch to (`Connection: upgrade` + `Upgrade`).
pub(super) fn upgrade_of(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| headers.get(header::UPGRADE).cloned()).flatten()
}

/// Removes the headers that describe one hop, not the message (RFC 9110 §7.6.1).
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in [
        header::CONNECTION,
        HeaderName::from_static("proxy-connection"),
        HeaderName::from_static("keep-alive"),
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::TRAILER,
    ] {
        headers.remove(n);
    }
    // HTTP/2 allows only `te: trailers` (gRPC needs it); anything else is hop-by-hop.
    if headers.get(header::TE).is_some_and(|v| v != "trailers") {
        headers.remove(header::TE);
    }
}

/// `host[:port]` for a Host header or URL (IPv6 in brackets), the port left out when default.
pub(super) fn authority(host: &str, port: u16, default_port: u16) -> String {
    let host = if host.contains(':') { format!("[{host}]") } else { host.to_owned() };
    if port == default_port {
        host
    } else {
        format!("{host}:{port}")
    }
}
