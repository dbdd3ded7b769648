//! The HTTP/1.1 upstream client: any bytes as the upstream's answer →
//! `forward::h1::Conn::send` and the response body read as far as it goes,
//! fed in pieces of several sizes, over memory instead of TLS.
//!
//! Invariants:
//! - it never panics, and the outcome (an error, or the head, the body, how
//!   it ended and whether the connection went back to the pool) is the same
//!   whatever the piece size;
//! - a body that ends cleanly matches its framing (`Content-Length` bodies
//!   have exactly that many bytes; HEAD, 204 and 304 have none);
//! - a connection goes back to the pool only when nothing it read is left
//!   over, and one with unread input is not usable again; one whose request
//!   could not be written never goes back (an answer read anyway is passed on).
#![no_main]

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bcgate::forward::h1::{Conn, Recycle};
use http_body::Body;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The upstream's side: `data` in `step`-byte reads, then end of stream
/// (`eof`) or silence; writes vanish, or fail (`broken`: an upstream that
/// stopped reading, whose answer may still be there to read).
struct Mem {
    data: Vec<u8>,
    /// How far the client has read (shared, to see what it left unread).
    pos: Arc<AtomicUsize>,
    step: usize,
    eof: bool,
    broken: bool,
}

/// The first input byte: bit 0 the upstream closes after its bytes, bit 1
/// the request is HEAD, bit 2 writes fail.
#[derive(Clone, Copy)]
struct Flags {
    eof: bool,
    head: bool,
    broken: bool,
}

impl Flags {
    fn of(b: u8) -> Self {
        Flags {
            eof: b & 1 != 0,
            head: b & 2 != 0,
            broken: b & 4 != 0,
        }
    }
}

impl AsyncRead for Mem {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let pos = this.pos.load(Ordering::Relaxed);
        if pos == this.data.len() {
            return if this.eof {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            };
        }
        let n = this.step.min(this.data.len() - pos).min(buf.remaining());
        buf.put_slice(&this.data[pos..pos + n]);
        this.pos.store(pos + n, Ordering::Relaxed);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Mem {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        if self.broken {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[derive(Default)]
struct Home(Mutex<Option<Conn<Mem>>>);

impl Recycle<Mem> for Home {
    fn recycle(&self, conn: Conn<Mem>) {
        *self.0.lock().expect("lock") = Some(conn);
    }
}

#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The body ended cleanly.
    Done,
    /// It waits for more input.
    Waiting,
    Failed,
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The head is not complete yet.
    Waiting,
    Failed(String),
    Answered {
        status: u16,
        fields: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
        end: End,
        recycled: bool,
    },
}

/// The outcome, the connection if it went back to the pool, and how far it read.
fn run(data: &[u8], step: usize, f: Flags) -> (Outcome, Option<Conn<Mem>>, Arc<AtomicUsize>) {
    let pos = Arc::new(AtomicUsize::new(0));
    let mem = Mem {
        data: data.to_vec(),
        pos: pos.clone(),
        step,
        eof: f.eof,
        broken: f.broken,
    };
    let home = Arc::new(Home::default());
    let method = if f.head {
        http::Method::HEAD
    } else {
        http::Method::GET
    };
    let req = http::Request::builder()
        .method(method)
        .uri("/stores/abc/v3/catalog/products")
        .header("host", "api.bigcommerce.com")
        .body(bcgate::body::empty())
        .expect("request");
    let mut cx = Context::from_waker(Waker::noop());
    let mut send = Box::pin(Conn::new(mem).send(req, home.clone()));
    // Memory never wakes a task: one poll reads all there is.
    let resp = match send.as_mut().poll(&mut cx) {
        Poll::Pending => return (Outcome::Waiting, None, pos),
        Poll::Ready(Err(e)) => return (Outcome::Failed(e.to_string()), None, pos),
        Poll::Ready(Ok(resp)) => resp,
    };
    let status = resp.status().as_u16();
    let fields = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let mut body_stream = resp.into_body();
    let mut body = Vec::new();
    let end = loop {
        match Pin::new(&mut body_stream).poll_frame(&mut cx) {
            Poll::Pending => break End::Waiting,
            Poll::Ready(None) => break End::Done,
            Poll::Ready(Some(Err(_))) => break End::Failed,
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    body.extend_from_slice(&data);
                }
            }
        }
    };
    drop(body_stream);
    let back = home.0.lock().expect("lock").take();
    let outcome = Outcome::Answered {
        status,
        fields,
        body,
        end,
        recycled: back.is_some(),
    };
    (outcome, back, pos)
}

fuzz_target!(|input: &[u8]| {
    let Some((&flags, data)) = input.split_first() else {
        return;
    };
    let flags = Flags::of(flags);
    let whole = check(data, usize::MAX, flags);
    for step in [1, 3, 64] {
        assert_eq!(
            check(data, step, flags),
            whole,
            "feeding {step} bytes at a time changes the outcome"
        );
    }
});

/// Runs one exchange, checks the invariants that hold for any read size,
/// and returns the outcome less whether the connection went back to the
/// pool (that depends on whether stray bytes arrived with the body or
/// after it; either way they are never read as an answer).
fn check(data: &[u8], step: usize, f: Flags) -> Outcome {
    let (mut outcome, back, pos) = run(data, step, f);
    if let Outcome::Answered {
        status,
        fields,
        body,
        end,
        recycled,
    } = &mut outcome
    {
        if *end == End::Done {
            let length = fields
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse::<usize>().ok());
            let chunked = fields.iter().any(|(k, _)| k == "transfer-encoding");
            if f.head || *status == 204 || *status == 304 {
                assert!(body.is_empty(), "a body on a HEAD, 204 or 304 answer");
            } else if let (Some(n), false) = (length, chunked) {
                assert_eq!(
                    body.len(),
                    n,
                    "a body that does not match its Content-Length"
                );
            }
        } else {
            assert!(!*recycled, "a connection recycled before its body ended");
        }
        if f.broken {
            assert!(
                back.is_none(),
                "a connection whose request failed went back to the pool"
            );
        }
        if let Some(mut conn) = back {
            // Usable again only if the upstream sent nothing beyond this
            // answer and the connection is still open.
            if conn.is_usable() {
                assert!(!f.eof, "a closed connection is usable");
                assert_eq!(
                    pos.load(Ordering::Relaxed),
                    data.len(),
                    "unread input left on a usable connection"
                );
            }
        }
        *recycled = false;
    }
    outcome
}
