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
use super::server::BoxError;
use crate::mask::Redactor;

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
                        if this.redactor.is_empty() {
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
