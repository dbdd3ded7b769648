//! Body types shared by the request path: one boxed streaming body for every
//! response, and the bounded read used when policy must look inside a body.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
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
/// resets), so it asks this watch rather than the error chain. It also says
/// whether the body was waiting on the client when last polled, so a
/// deadline that passes meanwhile is blamed on the client, not the upstream.
#[derive(Debug, Clone, Default)]
pub struct BodyWatch(Arc<WatchState>);

#[derive(Debug)]
struct WatchState {
    fault: AtomicU8,
    /// The last poll found nothing from the client yet.
    waiting: AtomicBool,
    /// The whole body was read.
    complete: AtomicBool,
    /// When the body was last polled, in ms after `born`.
    polled_ms: AtomicU64,
    born: std::time::Instant,
    /// The whole-body deadline, for the error's detail.
    total_ms: AtomicU64,
}

impl Default for WatchState {
    fn default() -> Self {
        Self {
            fault: AtomicU8::new(0),
            waiting: AtomicBool::new(false),
            complete: AtomicBool::new(false),
            polled_ms: AtomicU64::new(0),
            born: std::time::Instant::now(),
            total_ms: AtomicU64::new(0),
        }
    }
}

/// A body polled this recently is being read as fast as the client sends
/// it, even if a piece is on its way upstream at the moment one looks.
const RECENTLY_POLLED: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    /// More than the limit arrived.
    TooLarge,
    /// The client sent nothing for the idle timeout, or did not finish the
    /// body within the total one ([`BodyWatch::error`] tells which).
    Stalled,
}

const FAULT_TOO_LARGE: u8 = 1;
const FAULT_IDLE: u8 = 2;
const FAULT_DEADLINE: u8 = 3;

impl BodyWatch {
    pub fn fault(&self) -> Option<BodyFault> {
        match self.0.fault.load(Ordering::Relaxed) {
            FAULT_TOO_LARGE => Some(BodyFault::TooLarge),
            FAULT_IDLE | FAULT_DEADLINE => Some(BodyFault::Stalled),
            _ => None,
        }
    }

    /// The client's error, if the body failed on the client's account.
    pub fn error(&self, limit: u64, idle: Duration) -> Option<ProxyError> {
        match self.0.fault.load(Ordering::Relaxed) {
            FAULT_TOO_LARGE => Some(ProxyError::BodyTooLarge { limit }),
            FAULT_IDLE => Some(ProxyError::BodyTimeout {
                after_ms: millis(idle),
            }),
            FAULT_DEADLINE => Some(ProxyError::BodyDeadline {
                after_ms: self.0.total_ms.load(Ordering::Relaxed),
            }),
            _ => None,
        }
    }

    /// True while the body is waiting for the client to send more: not
    /// complete, and either waiting at the last poll or polled within
    /// [`RECENTLY_POLLED`] (not left unread because the upstream stopped
    /// reading it).
    pub fn waiting_on_client(&self) -> bool {
        let w = &self.0;
        if w.complete.load(Ordering::Relaxed) {
            return false;
        }
        let now = millis(w.born.elapsed());
        let polled = w.polled_ms.load(Ordering::Relaxed);
        w.waiting.load(Ordering::Relaxed) || now.saturating_sub(polled) < millis(RECENTLY_POLLED)
    }

    fn polled(&self, waiting: bool) {
        let w = &self.0;
        w.polled_ms
            .store(millis(w.born.elapsed()), Ordering::Relaxed);
        w.waiting.store(waiting, Ordering::Relaxed);
    }

    fn set_fault(&self, code: u8) {
        self.0.fault.store(code, Ordering::Relaxed);
    }
}

/// A request body under the size limit, an idle timeout between frames and
/// a deadline for the whole body (counted from the first read, so time
/// spent waiting for the store's quota is not the client's).
fn bounded<B>(
    body: B,
    limit: u64,
    idle: Duration,
    total: Duration,
    watch: BodyWatch,
) -> ClientBody<Limited<B>>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    watch.0.total_ms.store(millis(total), Ordering::Relaxed);
    ClientBody {
        inner: IdleTimeout::new(
            idle,
            Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX)),
        ),
        total,
        deadline: None,
        watch,
    }
}

/// A client's request body: [`IdleTimeout`] plus the whole-body deadline,
/// reporting faults and waits to its [`BodyWatch`].
#[derive(Debug)]
pub struct ClientBody<B> {
    inner: IdleTimeout<B>,
    total: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    watch: BodyWatch,
}

/// The whole body did not arrive within the total deadline.
#[derive(Debug)]
pub struct BodyDeadline(Duration);

impl std::fmt::Display for BodyDeadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the body was not complete within {} ms", millis(self.0))
    }
}

impl std::error::Error for BodyDeadline {}

impl<B> Body for ClientBody<B>
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
        let total = this.total;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(total)));
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.watch.polled(false);
                match &frame {
                    Some(Err(e)) if is_length_limit(e.as_ref()) => {
                        this.watch.set_fault(FAULT_TOO_LARGE);
                    }
                    Some(Err(e)) if is_stalled(e.as_ref()) => this.watch.set_fault(FAULT_IDLE),
                    Some(Err(_)) => {}
                    Some(Ok(_)) if !this.inner.is_end_stream() => {}
                    _ => this.watch.0.complete.store(true, Ordering::Relaxed),
                }
                Poll::Ready(frame)
            }
            Poll::Pending => {
                if deadline.as_mut().poll(cx).is_ready() {
                    this.watch.polled(false);
                    this.watch.set_fault(FAULT_DEADLINE);
                    return Poll::Ready(Some(Err(Box::new(BodyDeadline(total)))));
                }
                this.watch.polled(true);
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
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

/// Streams a request body through, failing it once it passes `limit` bytes,
/// stalls for `idle` or takes longer than `total` in all; the watch says which.
pub fn streamed<B>(body: B, limit: u64, idle: Duration, total: Duration) -> (ProxyBody, BodyWatch)
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<BoxError>,
{
    let watch = BodyWatch::default();
    let body = bounded(body, limit, idle, total, watch.clone()).boxed_unsync();
    (body, watch)
}

/// Reads a whole body of at most `limit` bytes (scripts rule, GraphQL).
pub async fn read_bounded<B>(
    body: B,
    limit: u64,
    idle: Duration,
    total: Duration,
) -> Result<Bytes, ProxyError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let watch = BodyWatch::default();
    match bounded(body, limit, idle, total, watch.clone())
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(watch.error(limit, idle).unwrap_or_else(|| {
            ProxyError::BadRequest("the request body could not be read".into())
        })),
    }
}

/// How a response body ended.
#[derive(Debug)]
pub enum BodyEnd<'a> {
    /// Sent to the end.
    Complete,
    /// The body failed (the upstream cut it, or went silent).
    Failed(&'a (dyn std::error::Error + 'static)),
    /// Dropped before its end: the caller went away or reset the stream.
    Dropped,
}

/// A response body that reports how it ended, once.
pub struct OnEnd<F: FnOnce(BodyEnd<'_>)> {
    inner: ProxyBody,
    on_end: Option<F>,
}

impl<F: FnOnce(BodyEnd<'_>)> std::fmt::Debug for OnEnd<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnEnd").finish_non_exhaustive()
    }
}

/// Wraps `inner` so that `on_end` learns how it ended.
pub fn on_end<F>(inner: ProxyBody, on_end: F) -> ProxyBody
where
    F: FnOnce(BodyEnd<'_>) + Send + Unpin + 'static,
{
    OnEnd {
        inner,
        on_end: Some(on_end),
    }
    .boxed_unsync()
}

impl<F: FnOnce(BodyEnd<'_>)> OnEnd<F> {
    fn fire(&mut self, end: BodyEnd<'_>) {
        if let Some(f) = self.on_end.take() {
            f(end);
        }
    }
}

impl<F: FnOnce(BodyEnd<'_>) + Unpin> Body for OnEnd<F> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.fire(BodyEnd::Complete),
            Poll::Ready(Some(Err(e))) => {
                if let Some(f) = this.on_end.take() {
                    f(BodyEnd::Failed(e.as_ref()));
                }
            }
            // hyper may stop polling once the body says it has ended.
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => {
                this.fire(BodyEnd::Complete);
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<F: FnOnce(BodyEnd<'_>)> Drop for OnEnd<F> {
    fn drop(&mut self) {
        let end = if self.inner.is_end_stream() {
            BodyEnd::Complete
        } else {
            BodyEnd::Dropped
        };
        self.fire(end);
    }
}

/// True when `err`, or anything in its source chain, is a body cut for silence.
pub fn is_idle_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    is_stalled(err)
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
