//! Overload protection for the proxy listener: at most `server.max_in_flight`
//! requests are in flight at once; past that a request is answered at once
//! (503 `overloaded`, see [`crate::proxy::Service`]) instead of queueing behind
//! the others without bound.
//!
//! A tower [`Layer`] over the proxy's request service (a tower [`Service`]). tower's own
//! `ConcurrencyLimit` + `LoadShed` would do the same, but they cost an
//! allocation per request (a fresh boxed acquire future for each clone of the
//! service) and a boxed error for each refusal; here admission is one
//! `try_acquire` on a semaphore shared by every connection, the permit rides
//! in the response future until the response head is ready, and the refusal
//! is the inner service's own answer ([`Refuse`]).
//!
//! The admin listener is not behind this layer: `/healthz`, `/readyz` and
//! `/metrics` answer however loaded the proxy is.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};

/// A service that can answer a request it has no room for, at once (it
/// must not wait on anything). The service answers, not the layer, so the
/// refusal is logged and accounted with the connection's own state.
pub trait Refuse<Req>: Service<Req> {
    fn refuse(&self, req: &Req) -> Self::Response;
}

/// Admits a request while fewer than `max` are in flight; otherwise the
/// service [refuses](Refuse) it. Clones share the limit.
#[derive(Debug, Clone)]
pub struct InFlightLimit {
    permits: Arc<Semaphore>,
}

impl InFlightLimit {
    pub fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max.clamp(1, Semaphore::MAX_PERMITS))),
        }
    }
}

impl<S> Layer<S> for InFlightLimit {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Shed {
            inner,
            permits: self.permits.clone(),
        }
    }
}

/// The service [`InFlightLimit`] makes.
#[derive(Debug, Clone)]
pub struct Shed<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

impl<S, Req> Service<Req> for Shed<S>
where
    S: Refuse<Req>,
    S::Future: Unpin,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Admission<S::Future, S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        admit(&self.permits, &mut self.inner, req)
    }
}

/// The stack serves hyper itself, without hyper-util's tower glue: that
/// glue's future holds the whole request until it is polled, and hyper keeps
/// an HTTP/1 connection's request future allocated while the connection
/// sits idle (280 bytes each instead of a few dozen). hyper 1 has no readiness, so
/// the inner service must always be ready, as [`crate::proxy::Service`] is.
impl<S, Req> hyper::service::Service<Req> for Shed<S>
where
    S: Refuse<Req> + Clone,
    S::Future: Unpin,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Admission<S::Future, S::Response, S::Error>;

    fn call(&self, req: Req) -> Self::Future {
        admit(&self.permits, &mut self.inner.clone(), req)
    }
}

fn admit<S, Req>(
    permits: &Arc<Semaphore>,
    inner: &mut S,
    req: Req,
) -> Admission<S::Future, S::Response, S::Error>
where
    S: Refuse<Req>,
{
    match permits.clone().try_acquire_owned() {
        Ok(permit) => Admission::Admitted {
            inner: inner.call(req),
            permit: Some(permit),
        },
        // Boxed: refusals are the rare case, and the future stays small.
        Err(_) => Admission::Refused(Box::new(ready(Ok(inner.refuse(&req))))),
    }
}

/// The response future: the inner one holding its permit, or the refusal.
#[derive(Debug)]
pub enum Admission<Fut, R, E> {
    Admitted {
        inner: Fut,
        /// Released as soon as the response head is ready, not when hyper
        /// gets round to dropping the future.
        permit: Option<OwnedSemaphorePermit>,
    },
    Refused(Box<Ready<Result<R, E>>>),
}

impl<Fut, R, E> Future for Admission<Fut, R, E>
where
    Fut: Future<Output = Result<R, E>> + Unpin,
{
    type Output = Result<R, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Self::Admitted { inner, permit } => {
                let out = Pin::new(inner).poll(cx);
                if out.is_ready() {
                    permit.take();
                }
                out
            }
            Self::Refused(answer) => Pin::new(&mut **answer).poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tokio::sync::oneshot;

    type Answer = Pin<Box<dyn Future<Output = Result<&'static str, Infallible>> + Send>>;

    /// A service whose answers wait for the test to release them.
    #[derive(Debug, Clone)]
    struct Gated;

    impl Service<oneshot::Receiver<()>> for Gated {
        type Response = &'static str;
        type Error = Infallible;
        type Future = Answer;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, rx: oneshot::Receiver<()>) -> Answer {
            Box::pin(async move {
                let _ = rx.await;
                Ok("served")
            })
        }
    }

    impl Refuse<oneshot::Receiver<()>> for Gated {
        fn refuse(&self, _: &oneshot::Receiver<()>) -> &'static str {
            "refused"
        }
    }

    fn gated(limit: usize) -> Shed<Gated> {
        InFlightLimit::new(limit).layer(Gated)
    }

    #[tokio::test]
    async fn past_the_limit_requests_are_refused_at_once_and_admitted_again_after() {
        let mut svc = gated(2);
        let (tx1, rx1) = oneshot::channel();
        let (_tx2, rx2) = oneshot::channel();
        let first = svc.call(rx1);
        let second = svc.call(rx2);
        let (_tx3, rx3) = oneshot::channel();
        // Nothing releases it: a refusal must not wait on the others.
        assert_eq!(svc.call(rx3).await, Ok("refused"));

        tx1.send(()).ok();
        assert_eq!(first.await, Ok("served"));
        let (tx4, rx4) = oneshot::channel();
        let fourth = svc.call(rx4);
        tx4.send(()).ok();
        assert_eq!(fourth.await, Ok("served"));
        drop(second);
        // A request given up before its answer gives its place back too.
        let (tx5, rx5) = oneshot::channel();
        let (tx6, rx6) = oneshot::channel();
        let (fifth, sixth) = (svc.call(rx5), svc.call(rx6));
        tx5.send(()).ok();
        tx6.send(()).ok();
        assert_eq!(fifth.await, Ok("served"));
        assert_eq!(sixth.await, Ok("served"));
    }

    #[tokio::test]
    async fn the_permit_is_released_when_the_answer_is_ready_not_when_dropped() {
        let mut svc = gated(1);
        let (tx, rx) = oneshot::channel();
        let mut first = svc.call(rx);
        tx.send(()).ok();
        assert_eq!((&mut first).await, Ok("served"));
        // `first` is still alive (hyper may keep it a while): the place is free.
        let (tx2, rx2) = oneshot::channel();
        let second = svc.call(rx2);
        tx2.send(()).ok();
        assert_eq!(second.await, Ok("served"));
        drop(first);
    }

    #[test]
    fn clones_of_the_service_share_one_limit() {
        let svc = gated(1);
        let mut a = svc.clone();
        let mut b = svc;
        let (_tx, rx) = oneshot::channel();
        let _held = a.call(rx);
        let (_tx2, rx2) = oneshot::channel();
        assert!(matches!(b.call(rx2), Admission::Refused(_)));
    }
}
