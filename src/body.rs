//! Body types shared by the request path: one boxed streaming body for every
//! response, and the bounded read used when policy must look inside a body.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Empty, Full, Limited, combinators::UnsyncBoxBody};

use crate::error::ProxyError;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every response body: upstream bodies streamed through, or bcgate's own JSON.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> ProxyBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// What went wrong with a streamed request body, seen by the forward stage:
/// the upstream client may report it only as a generic stream error (HTTP/2
/// resets), so it asks this watch rather than the error chain.
#[derive(Debug, Clone, Default)]
pub struct BodyWatch(Arc<AtomicU8>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    /// More than the limit arrived.
    TooLarge,
    /// The client sent nothing for the idle timeout.
    Stalled,
}

impl BodyWatch {
    pub fn fault(&self) -> Option<BodyFault> {
        match self.0.load(Ordering::Relaxed) {
            1 => Some(BodyFault::TooLarge),
            2 => Some(BodyFault::Stalled),
            _ => None,
        }
    }

    fn record(&self, err: &(dyn std::error::Error + 'static)) {
        let code = if is_length_limit(err) {
            1
        } else if is_stalled(err) {
            2
        } else {
            return;
        };
        self.0.store(code, Ordering::Relaxed);
    }
}

/// A request body under the size limit and an idle timeout between frames.
fn bounded<B>(body: B, limit: u64, idle: Duration) -> IdleTimeout<Limited<B>>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    IdleTimeout::new(
        idle,
        Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX)),
    )
}

/// A body that fails with [`BodyIdle`] once `idle` passes without a frame.
/// The timer is armed only while the inner body is pending, so a body whose
/// frames are already there (most API answers) costs no timer at all.
#[derive(Debug)]
pub struct IdleTimeout<B> {
    inner: B,
    idle: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The sleep counts from the current silence (not an earlier one).
    armed: bool,
}

/// No body frame came within the idle timeout.
#[derive(Debug)]
pub struct BodyIdle(Duration);

impl std::fmt::Display for BodyIdle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no body data for {} ms", millis(self.0))
    }
}

impl std::error::Error for BodyIdle {}

impl<B> IdleTimeout<B> {
    pub fn new(idle: Duration, inner: B) -> Self {
        Self {
            inner,
            idle,
            sleep: None,
            armed: false,
        }
    }
}

impl<B> Body for IdleTimeout<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.armed = false;
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        let idle = this.idle;
        let sleep = match &mut this.sleep {
            Some(sleep) => {
                if !this.armed {
                    sleep.as_mut().reset(tokio::time::Instant::now() + idle);
                }
                sleep
            }
            None => this.sleep.insert(Box::pin(tokio::time::sleep(idle))),
        };
        this.armed = true;
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyIdle(idle))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Streams a request body through, failing it once it passes `limit` bytes
/// or stalls for `idle`; the watch says which.
pub fn streamed<B>(body: B, limit: u64, idle: Duration) -> (ProxyBody, BodyWatch)
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<BoxError>,
{
    let watch = BodyWatch::default();
    let seen = watch.clone();
    let body = bounded(body, limit, idle)
        .map_err(move |e| {
            seen.record(e.as_ref());
            e
        })
        .boxed_unsync();
    (body, watch)
}

/// Reads a whole body of at most `limit` bytes (scripts rule, GraphQL).
pub async fn read_bounded<B>(body: B, limit: u64, idle: Duration) -> Result<Bytes, ProxyError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    match bounded(body, limit, idle).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if is_length_limit(e.as_ref()) => Err(ProxyError::BodyTooLarge { limit }),
        Err(e) if is_stalled(e.as_ref()) => Err(ProxyError::BodyTimeout {
            after_ms: millis(idle),
        }),
        Err(_) => Err(ProxyError::BadRequest(
            "the request body could not be read".into(),
        )),
    }
}

pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn is_stalled(err: &(dyn std::error::Error + 'static)) -> bool {
    source_chain(err).any(|e| e.is::<BodyIdle>())
}

fn source_chain<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |e| e.source())
}

/// True when `err`, or anything in its source chain, is a body over the limit.
pub fn is_length_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    source_chain(err).any(|e| e.is::<http_body_util::LengthLimitError>())
}
