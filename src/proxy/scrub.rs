//! What a listed host sends back, with the values taken out: the body streamed through the
//! `--mask` matcher (every encoding it knows, across frame boundaries) and the trailers as the
//! headers are.
//!
//! Nothing is buffered beyond the matcher's held-back tail: the few bytes at the end of a frame
//! that could be the start of a value. They wait for the next frame (or the end), never for a
//! timer: a value streamed slowly, piece by piece, must still be caught whole.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use hyper::body::{Body, Frame, SizeHint};
use zeroize::Zeroizing;

use super::inject::{self, Swap};
use crate::mask::Redactor;

/// Any error on the way; only ever logged or turned into a status line.
pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body with every value replaced by its placeholder.
pub(super) struct Scrubbed<B> {
    inner: B,
    redactor: Redactor,
    swaps: Arc<[Swap]>,
    /// Trailers that came while a tail was held: sent after it.
    trailers: Option<HeaderMap>,
    done: bool,
}

impl<B> Scrubbed<B> {
    pub(super) fn new(inner: B, redactor: &Redactor, swaps: Arc<[Swap]>) -> Self {
        Scrubbed { inner, redactor: redactor.clone(), swaps, trailers: None, done: false }
    }

    fn held(&mut self) -> Option<Bytes> {
        let mut out = Vec::new();
        self.redactor.flush(&mut out);
        (!out.is_empty()).then(|| Bytes::from(out))
    }
}

impl<B> Body for Scrubbed<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Some(t) = this.trailers.take() {
            return Poll::Ready(Some(Ok(Frame::trailers(t))));
        }
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(this.held().map(|b| Ok(Frame::data(b))));
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        if this.redactor.passes_unchanged(&data) {
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        }
                        let mut out = Vec::with_capacity(data.len());
                        this.redactor.feed(&data, &mut out);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                        }
                        // All of it held back (the start of a value?): wait for more.
                    }
                    Err(frame) => {
                        let Ok(mut trailers) = frame.into_trailers() else { continue };
                        inject::scrub_headers(&mut trailers, &this.swaps, &this.redactor);
                        this.done = true;
                        match this.held() {
                            Some(tail) => {
                                this.trailers = Some(trailers);
                                return Poll::Ready(Some(Ok(Frame::data(tail))));
                            }
                            None => return Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
                        }
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        // The length changes wherever a value is replaced.
        SizeHint::default()
    }
}

/// Wipes a copy of a value-bearing buffer when the last `Bytes` pointing at it goes.
pub(super) fn wiped_bytes(data: Zeroizing<Vec<u8>>) -> Bytes {
    Bytes::from_owner(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Inject;
    use agentsecretstore::secret::SecretString;
    use http_body_util::{BodyExt, StreamBody};

    const VALUE: &str = "sk-Ab/3+x=q~0042";

    fn scrub(frames: Vec<Frame<Bytes>>) -> (Vec<u8>, Option<HeaderMap>) {
        let value = SecretString::new(VALUE.to_owned());
        let redactor = Redactor::replacing(&[(b"PH".to_vec(), &value)]);
        let swaps: Arc<[Swap]> = Arc::new([Swap {
            placeholder: b"PH".to_vec(),
            value: Zeroizing::new(VALUE.as_bytes().to_vec()),
            inject: Inject::default(),
        }]);
        let inner = StreamBody::new(futures_util::stream::iter(frames.into_iter().map(Ok::<_, BoxError>)));
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let collected = rt.block_on(Scrubbed::new(inner, &redactor, swaps).collect()).unwrap();
        let trailers = collected.trailers().cloned();
        (collected.to_bytes().to_vec(), trailers)
    }

    #[test]
    fn a_value_split_anywhere_across_frames_is_replaced_whole() {
        let text = format!("before {VALUE} after");
        for cut in 1..text.len() {
            let (a, b) = text.split_at(cut);
            let (out, _) =
                scrub(vec![Frame::data(Bytes::from(a.to_owned())), Frame::data(Bytes::from(b.to_owned()))]);
            assert_eq!(out, b"before PH after", "cut at {cut}");
        }
        let encoded = "c2stQWIvMyt4PXF+MDA0Mg==";
        let (out, _) = scrub(vec![Frame::data(Bytes::from(format!("x {encoded} y")))]);
        assert_eq!(out, b"x PH y");
    }

    #[test]
    fn trailers_come_after_the_held_tail_and_are_scrubbed() {
        let mut t = HeaderMap::new();
        t.insert("x-t", http::HeaderValue::from_str(&format!("Bearer {VALUE}")).unwrap());
        let (out, trailers) =
            scrub(vec![Frame::data(Bytes::from_static(b"ends with sk-Ab")), Frame::trailers(t)]);
        assert_eq!(out, b"ends with sk-Ab");
        assert_eq!(trailers.unwrap()["x-t"], "Bearer PH");
    }
}
