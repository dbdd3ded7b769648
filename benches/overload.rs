//! What the in-flight limit ([`bcgate::overload`]) adds to a request, with
//! the inner service reduced to an answer that is ready at once:
//!
//! - `overload/bare`: clone the service (tower's `call` takes `&mut`, hyper's
//!   `&`), call it, poll the answer;
//! - `overload/admitted`: the same through the limit, as hyper calls it: a
//!   semaphore `try_acquire`, the permit released on the answer;
//! - `overload/refused`: the limit is full: the refusal (boxed) instead of
//!   the call.
//!
//! One thread, so no contention on the semaphore: the figure is the floor.
//! `cargo bench --bench overload`.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, criterion_group, criterion_main};
use tower::{Layer, Service};

use bcgate::overload::{InFlightLimit, Refuse};

#[derive(Debug, Clone)]
struct Echo;

impl Service<u64> for Echo {
    type Response = u64;
    type Error = Infallible;
    type Future = Ready<Result<u64, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: u64) -> Self::Future {
        ready(Ok(req))
    }
}

impl Refuse<u64> for Echo {
    fn refuse(&self, _: &u64) -> u64 {
        0
    }
}

fn bare(svc: &Echo, req: u64) -> u64 {
    poll(svc.clone().call(req))
}

fn limited<S: hyper::service::Service<u64, Response = u64, Error = Infallible>>(
    svc: &S,
    req: u64,
) -> u64
where
    S::Future: Unpin,
{
    poll(svc.call(req))
}

fn poll<F: Future<Output = Result<u64, Infallible>> + Unpin>(mut answer: F) -> u64 {
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(&mut answer).poll(&mut cx) {
        Poll::Ready(Ok(r)) => r,
        Poll::Ready(Err(never)) => match never {},
        Poll::Pending => panic!("the answer is ready at once"),
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("overload");
    g.bench_function("bare", |b| b.iter(|| bare(&Echo, black_box(7))));
    let within = InFlightLimit::new(1024).layer(Echo);
    g.bench_function("admitted", |b| b.iter(|| limited(&within, black_box(7))));
    let mut full = InFlightLimit::new(1).layer(Echo);
    // Called, never polled: it keeps the only place.
    let _held = full.call(1);
    assert_eq!(limited(&full, 7), 0);
    g.bench_function("refused", |b| b.iter(|| limited(&full, black_box(7))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
