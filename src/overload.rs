//! Overload protection for the proxy listener: at most `server.max_in_flight`
//! requests are in flight at once; past that a request is answered at once
//! (503 `overloaded`, see [`crate::proxy::shed`]) instead of queueing behind
//! the others without bound.
//!
//! A tower [`Layer`] over the proxy's request service. tower's own
//! `ConcurrencyLimit` + `LoadShed` would do the same, but they cost an
//! allocation per request (a fresh boxed acquire future for each clone of the
//! service) and a boxed error for each refusal; here admission is one
//! `try_acquire` on a semaphore shared by every connection, and the permit
//! rides in the response future until the response head is ready.
//!
//! The admin listener is not behind this layer: `/healthz`, `/readyz` and
//! `/metrics` answer however loaded the proxy is.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};

/// The answer to a request past the limit; given at once, so it must not
/// wait on anything.
pub trait Refuse<Req> {
    type Response;
    fn refuse(&self, req: &Req) -> Self::Response;
}

/// Admits a request while fewer than `max` are in flight; otherwise answers
/// it with `refuse`.
#[derive(Debug)]
pub struct InFlightLimit<F>(Arc<Limit<F>>);

/// What every connection's [`Shed`] shares: hyper's glue clones the service
/// for each request, so this is one reference count, not one per field.
#[derive(Debug)]
struct Limit<F> {
    permits: Arc<Semaphore>,
    refuse: F,
}

impl<F> InFlightLimit<F> {
    /// One limit for every connection the layer is applied to.
    pub fn new(max: usize, refuse: F) -> Self {
        Self(Arc::new(Limit {
            permits: Arc::new(Semaphore::new(max.clamp(1, Semaphore::MAX_PERMITS))),
            refuse,
        }))
    }
}

impl<F> Clone for InFlightLimit<F> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<S, F> Layer<S> for InFlightLimit<F> {
    type Service = Shed<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        Shed {
            inner,
            limit: self.0.clone(),
        }
    }
}

/// The service [`InFlightLimit`] makes.
#[derive(Debug)]
pub struct Shed<S, F> {
    inner: S,
    limit: Arc<Limit<F>>,
}

impl<S: Clone, F> Clone for Shed<S, F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            limit: self.limit.clone(),
        }
    }
}

impl<S, F, Req> Service<Req> for Shed<S, F>
where
    S: Service<Req>,
    S::Future: Unpin,
    F: Refuse<Req, Response = S::Response>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Admission<S::Future, S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.limit.permits.clone().try_acquire_owned() {
            Ok(permit) => Admission::Admitted {
                inner: self.inner.call(req),
                permit: Some(permit),
            },
            Err(_) => Admission::Refused(ready(Ok(self.limit.refuse.refuse(&req)))),
        }
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
    Refused(Ready<Result<R, E>>),
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
            Self::Refused(answer) => Pin::new(answer).poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tokio::sync::oneshot;

    type Answer = Pin<Box<dyn Future<Output = Result<&'static str, Infallible>> + Send>>;

    #[derive(Debug)]
    struct Refused;

    impl<R> Refuse<R> for Refused {
        type Response = &'static str;
        fn refuse(&self, _: &R) -> &'static str {
            "refused"
        }
    }

    /// A service whose answers wait for the test to release them.
    fn gated(
        limit: usize,
    ) -> Shed<
        impl Service<
            oneshot::Receiver<()>,
            Response = &'static str,
            Error = Infallible,
            Future = Answer,
        > + Clone,
        Refused,
    > {
        let inner = tower::service_fn(|rx: oneshot::Receiver<()>| -> Answer {
            Box::pin(async move {
                let _ = rx.await;
                Ok("served")
            })
        });
        InFlightLimit::new(limit, Refused).layer(inner)
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
