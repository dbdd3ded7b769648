//! The mock's response bodies: whole, chunked, and the streamed ones whose
//! end (or cut) the counters record.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Body as _, Frame};

use super::{CHUNK, MockBody, RESET_PAUSE, State, pattern_byte};

pub(super) fn full(data: impl Into<Bytes>) -> MockBody {
    Full::new(data.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

pub(super) fn empty() -> MockBody {
    full(Bytes::new())
}

pub(super) fn chunked(data: Bytes) -> MockBody {
    let chunks: Vec<Result<Frame<Bytes>, std::io::Error>> = (0..data.len())
        .step_by(CHUNK)
        .map(|start| {
            Ok(Frame::data(
                data.slice(start..(start + CHUNK).min(data.len())),
            ))
        })
        .collect();
    BodyExt::boxed(StreamBody::new(futures_util::stream::iter(chunks)))
}

pub(super) fn pattern_body(n: usize) -> MockBody {
    let frames = (0..n).step_by(CHUNK).map(move |start| {
        let end = start.saturating_add(CHUNK).min(n);
        let chunk: Vec<u8> = (start..end).map(pattern_byte).collect();
        Ok::<_, std::io::Error>(Frame::data(Bytes::from(chunk)))
    });
    BodyExt::boxed(StreamBody::new(futures_util::stream::iter(frames)))
}

/// `n` pattern bytes, a pause (so they are flushed), then a body error.
pub(super) fn reset_body(n: usize) -> MockBody {
    enum Step {
        Data(usize),
        Fail,
        Done,
    }
    let stream = futures_util::stream::unfold(Step::Data(0), move |step| async move {
        match step {
            Step::Data(start) if start < n => {
                let end = start.saturating_add(CHUNK).min(n);
                let chunk: Vec<u8> = (start..end).map(pattern_byte).collect();
                let next = if end < n { Step::Data(end) } else { Step::Fail };
                Some((Ok(Frame::data(Bytes::from(chunk))), next))
            }
            Step::Data(_) | Step::Fail => {
                tokio::time::sleep(RESET_PAUSE).await;
                Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "mock_reset_after: the mock cuts this response",
                    )),
                    Step::Done,
                ))
            }
            Step::Done => None,
        }
    });
    BodyExt::boxed(StreamBody::new(stream))
}

/// The `n`-byte pattern in `chunk`-byte pieces, sleeping `every` before each.
pub(super) fn trickle_body(n: usize, chunk: usize, every: Duration) -> MockBody {
    let stream = futures_util::stream::unfold(0usize, move |sent| async move {
        if sent >= n {
            return None;
        }
        tokio::time::sleep(every).await;
        let end = sent.saturating_add(chunk).min(n);
        let data: Vec<u8> = (sent..end).map(pattern_byte).collect();
        Some((Ok::<_, std::io::Error>(Frame::data(Bytes::from(data))), end))
    });
    BodyExt::boxed(StreamBody::new(stream))
}

/// Wraps a streamed body so the counters say whether it was sent to the end.
pub(super) fn tracked(state: &Arc<State>, inner: MockBody) -> MockBody {
    BodyExt::boxed(Tracked {
        inner,
        state: state.clone(),
        finished: false,
    })
}

struct Tracked {
    inner: MockBody,
    state: Arc<State>,
    finished: bool,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        // The end of the stream, or the error a `mock_reset_after` body means to send.
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.finished = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let c = &self.state.counters;
        if self.finished || self.inner.is_end_stream() {
            c.bodies_completed.fetch_add(1, Ordering::SeqCst);
        } else {
            c.bodies_cut.fetch_add(1, Ordering::SeqCst);
        }
    }
}
