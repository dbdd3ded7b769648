//! The HTTP/1 head guard: any bytes from a client → `h1guard::Guarded` →
//! what hyper would read, fed in pieces of several sizes.
//!
//! Invariants:
//! - it never panics or fails a read, and hyper reads the same bytes
//!   whatever the piece size;
//! - what hyper reads is a prefix of the input less blank lines between
//!   requests, then, if a head was refused, the substitute head and nothing
//!   more (and the refusal is parked for exactly that request);
//! - every complete head hyper reads parses, and is framed unambiguously
//!   (at most one Content-Length, no Content-Length with Transfer-Encoding,
//!   Transfer-Encoding only a single `chunked`, never on HTTP/1.0).
#![no_main]

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bcgate::h1guard::{GuardState, Guarded, MAX_HEADERS};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncRead, ReadBuf};

/// What hyper is handed in place of a refused head (src/h1guard.rs).
const SUBSTITUTE: &[u8] =
    b"GET / HTTP/1.1\r\nhost: bcgate\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Yields its data `step` bytes per read, like a slow socket.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl AsyncRead for Trickle<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = this.step.min(this.data.len()).min(buf.remaining());
        buf.put_slice(&this.data[..n]);
        this.data = &this.data[n..];
        Poll::Ready(Ok(()))
    }
}

/// Everything hyper would read, whether the guard stopped answering
/// (Pending, after a refusal), and the state.
fn through(input: &[u8], step: usize) -> (Vec<u8>, bool, Arc<GuardState>) {
    // The guard's first-head timer needs a runtime; it never fires here.
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let rt = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
    });
    let _in_runtime = rt.enter();
    let state = Arc::new(GuardState::default());
    let mut g = Guarded::new(
        Trickle { data: input, step },
        state.clone(),
        Duration::from_secs(3600),
    );
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut out = Vec::new();
    // Reads of various sizes, as hyper's buffer grows and drains.
    let mut size = 1;
    let pending = loop {
        let mut chunk = vec![0u8; size];
        let mut buf = ReadBuf::new(&mut chunk);
        match Pin::new(&mut g).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(())) if buf.filled().is_empty() => break false,
            Poll::Ready(Ok(())) => out.extend_from_slice(buf.filled()),
            Poll::Ready(Err(e)) => panic!("the guard failed a read: {e}"),
            Poll::Pending => break true,
        }
        size = size % 8191 + 97;
    };
    (out, pending, state)
}

fuzz_target!(|data: &[u8]| {
    let (out, pending, state) = through(data, usize::MAX);
    for step in [1, 2, 7, 100] {
        let (o, p, _) = through(data, step);
        assert!(
            o == out && p == pending,
            "feeding {step} bytes at a time changes what hyper reads"
        );
    }

    let heads = framed_heads(&out);
    // The guard's record must put the refusal, if any, on the last head.
    let mut refused_at = None;
    for i in 0..=heads {
        if let Some(e) = state.next_request() {
            assert!(refused_at.is_none(), "two refusals on one connection");
            assert!(
                matches!(e.code(), "bad_request" | "headers_too_large"),
                "refused as {}",
                e.code()
            );
            refused_at = Some(i);
        }
    }
    let passed = match refused_at {
        Some(i) => {
            assert!(
                pending,
                "after a refusal the guard must hold the connection"
            );
            assert!(
                out.ends_with(SUBSTITUTE),
                "a refusal without the substitute head"
            );
            assert_eq!(
                i + 1,
                heads,
                "the refusal is not parked for the substitute's request"
            );
            &out[..out.len() - SUBSTITUTE.len()]
        }
        None => {
            assert!(!pending, "the guard stalled without refusing");
            &out[..]
        }
    };
    assert!(
        is_prefix_less_blank_lines(passed, data),
        "what hyper reads is not the input less blank lines"
    );
});

/// Whether `out` is a prefix of `input` with only CR and LF bytes left out.
fn is_prefix_less_blank_lines(out: &[u8], input: &[u8]) -> bool {
    let mut i = 0;
    for &b in out {
        loop {
            match input.get(i) {
                Some(&x) if x == b => break,
                Some(b'\r' | b'\n') => i += 1,
                _ => return false,
            }
        }
        i += 1;
    }
    true
}

fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = buf[i..].iter().position(|b| *b == b'\n') {
        let nl = i + p;
        match buf.get(nl + 1..) {
            Some([b'\n', ..]) => return Some(nl + 2),
            Some([b'\r', b'\n', ..]) => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// Walks what hyper reads the way hyper frames it; asserts every complete
/// head is well-formed and unambiguous, and counts them.
fn framed_heads(out: &[u8]) -> usize {
    let mut heads = 0;
    let mut rest = out;
    loop {
        if rest.is_empty() {
            return heads;
        }
        let n = rest.len().min(H2_PREFACE.len());
        if rest[..n] == H2_PREFACE[..n] {
            return heads; // HTTP/2, or the start of its preface at end of stream
        }
        assert!(
            !matches!(rest[0], b'\r' | b'\n'),
            "a blank line reached hyper where a head starts"
        );
        let Some(end) = head_end(rest) else {
            return heads; // the unfinished tail at end of stream
        };
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let parsed = req.parse(&rest[..end]);
        assert!(
            matches!(parsed, Ok(httparse::Status::Complete(_))),
            "hyper reads a head the guard should have refused: {parsed:?} {:?}",
            String::from_utf8_lossy(&rest[..end])
        );
        heads += 1;
        let mut lengths = Vec::new();
        let mut codings = Vec::new();
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                lengths.push(h.value);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                codings.push(h.value);
            }
        }
        assert!(lengths.len() <= 1, "two Content-Lengths reached hyper");
        assert!(codings.len() <= 1, "two Transfer-Encodings reached hyper");
        assert!(
            lengths.is_empty() || codings.is_empty(),
            "Content-Length with Transfer-Encoding reached hyper"
        );
        rest = &rest[end..];
        if let Some(te) = codings.first() {
            assert!(
                te.trim_ascii().eq_ignore_ascii_case(b"chunked"),
                "Transfer-Encoding {:?} reached hyper",
                String::from_utf8_lossy(te)
            );
            assert_ne!(req.version, Some(0), "chunked HTTP/1.0 reached hyper");
            match skip_chunked(rest) {
                Some(after) => rest = after,
                None => return heads,
            }
        } else if let Some(cl) = lengths.first() {
            let text = std::str::from_utf8(cl).expect("ASCII").trim();
            let n: u64 = text.parse().expect("a Content-Length hyper can read");
            assert!(
                text.bytes().all(|b| b.is_ascii_digit()),
                "Content-Length {text:?}"
            );
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n >= rest.len() {
                return heads;
            }
            rest = &rest[n..];
        }
    }
}

/// Skips a chunked body and its trailers; None when the stream ends inside it.
fn skip_chunked(mut rest: &[u8]) -> Option<&[u8]> {
    loop {
        let (len, size) = match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete(v)) => v,
            Ok(httparse::Status::Partial) => return None,
            Err(_) => panic!("a bad chunk-size line reached hyper"),
        };
        rest = &rest[len..];
        if size == 0 {
            break;
        }
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if size >= rest.len() {
            return None;
        }
        rest = &rest[size..];
        if rest.len() < 2 {
            return None;
        }
        assert_eq!(
            &rest[..2],
            b"\r\n",
            "chunk data without its CRLF reached hyper"
        );
        rest = &rest[2..];
    }
    loop {
        let i = rest.iter().position(|b| *b == b'\n')?;
        let line = &rest[..=i];
        rest = &rest[i + 1..];
        if line.len() <= 2 && line.iter().all(|b| *b == b'\r' || *b == b'\n') {
            return Some(rest);
        }
    }
}
