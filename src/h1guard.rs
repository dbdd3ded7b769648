//! HTTP/1 head guard: reads every request head off the wire before hyper
//! does and refuses the shapes two HTTP parsers could read differently —
//! Content-Length with Transfer-Encoding, a repeated Content-Length, any
//! Transfer-Encoding but a single `chunked`, obs-fold, malformed heads — and
//! heads that are too large, as bcgate's own JSON errors.
//!
//! hyper on its own would accept CL+TE (dropping the length) and answer the
//! rest with bare status lines. The guard sits between the socket (or TLS
//! stream) and hyper, follows message framing to know where each head
//! starts, and releases a head to hyper only once it is whole and valid. A
//! bad head is replaced by a minimal one that closes the connection, and the
//! error is parked in [`GuardState`] for the request of that index, which
//! the proxy answers first. HTTP/2 (the connection preface) passes through.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ProxyError;

/// The most bytes a request head may take (request line + headers).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most header fields a request may carry.
pub const MAX_HEADERS: usize = 100;
/// The longest chunk-size line (with extensions) or trailer line accepted.
const MAX_LINE_BYTES: usize = 4096;
/// Read sizes: heads are small; bodies stream in larger pieces.
const HEAD_READ_CHUNK: usize = 4 * 1024;
const BODY_READ_CHUNK: usize = 16 * 1024;
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// What hyper sees in place of a refused head: a request that closes the connection.
const SUBSTITUTE: &[u8] =
    b"GET / HTTP/1.1\r\nhost: bcgate\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

/// Shared between a connection's guard and the requests served on it.
#[derive(Debug)]
pub struct GuardState {
    /// Heads released to hyper so far (the index of the next one).
    released: AtomicU64,
    /// Requests handed to the service so far.
    served: AtomicU64,
    /// The index of the request standing for a refused head (`u64::MAX`:
    /// none), so the common case never takes the lock.
    refused_at: AtomicU64,
    refused: Mutex<Option<ProxyError>>,
    /// Requests begun and not yet answered to the end (any protocol).
    active: AtomicU64,
    /// Requests answered to the end (or abandoned) so far.
    finished: AtomicU64,
    /// When `active` last fell to 0, in ms after `opened`.
    idle_since_ms: AtomicU64,
    opened: tokio::time::Instant,
    /// The connection speaks HTTP/2 (the guard saw the preface).
    h2: AtomicBool,
}

impl Default for GuardState {
    fn default() -> Self {
        Self {
            released: AtomicU64::new(0),
            served: AtomicU64::new(0),
            refused_at: AtomicU64::new(u64::MAX),
            refused: Mutex::new(None),
            active: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(0),
            opened: tokio::time::Instant::now(),
            h2: AtomicBool::new(false),
        }
    }
}

/// One request in progress on a connection, from the service call until its
/// response body ends (or is dropped): while any is, the connection is not idle.
#[derive(Debug)]
pub struct Active(Arc<GuardState>);

impl Drop for Active {
    fn drop(&mut self) {
        let state = &self.0;
        let ms = u64::try_from(state.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        // Stored before the count falls, so whoever sees 0 sees this time.
        state.idle_since_ms.store(ms, Ordering::Release);
        state.finished.fetch_add(1, Ordering::AcqRel);
        state.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a connection was closed for idleness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    Http1,
    Http2,
}

impl Idle {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http1 => "http1",
            Self::Http2 => "http2",
        }
    }
}

impl GuardState {
    /// Called once per request, in order: the error to answer instead, if
    /// this request stands for a refused head. HTTP/1 serves a connection's
    /// requests one at a time, so the count matches the guard's.
    pub fn next_request(&self) -> Option<ProxyError> {
        let index = self.served.fetch_add(1, Ordering::Relaxed);
        if self.refused_at.load(Ordering::Acquire) != index {
            return None;
        }
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Marks a request as begun on this connection until the result drops.
    pub fn begin(self: &Arc<Self>) -> Active {
        self.active.fetch_add(1, Ordering::AcqRel);
        Active(self.clone())
    }

    /// Starts the connection's idle clock now (once serving begins: a TLS
    /// handshake before it is timed on its own).
    pub fn start_idle_clock(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.idle_since_ms.store(ms, Ordering::Release);
    }

    /// True while no request is in progress on the connection.
    pub fn is_idle(&self) -> bool {
        self.active.load(Ordering::Acquire) == 0
    }

    /// True once every head released to hyper has been answered to the end.
    fn all_answered(&self) -> bool {
        let released = self.released.load(Ordering::Acquire);
        released > 0 && self.finished.load(Ordering::Acquire) >= released
    }

    pub fn is_h2(&self) -> bool {
        self.h2.load(Ordering::Relaxed)
    }

    fn idle_since(&self) -> tokio::time::Instant {
        self.opened + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire))
    }

    /// Resolves once the connection has had no request in progress for
    /// `timeout` (counted from its opening, before its first request), with
    /// `h1_grace` more for HTTP/1, whose guard answers first. It polls with
    /// a timer instead of being woken by each request: a busy connection
    /// costs one timer wake per `timeout`, not two task wakes per request.
    pub async fn idle_for(&self, timeout: Duration, h1_grace: Duration) -> Idle {
        loop {
            let now = tokio::time::Instant::now();
            let finished = self.finished.load(Ordering::Acquire);
            let idle = self.is_idle();
            let since = if idle { self.idle_since() } else { now };
            // Whether the connection is HTTP/2 may be learnt meanwhile (its
            // preface read): look at the HTTP/2 time first.
            let next = if now < since + timeout {
                since + timeout
            } else {
                since + timeout + h1_grace
            };
            tokio::time::sleep_until(next).await;
            let untouched =
                idle && self.is_idle() && self.finished.load(Ordering::Acquire) == finished;
            if !untouched {
                continue;
            }
            if self.is_h2() {
                return Idle::Http2;
            }
            if tokio::time::Instant::now() >= since + timeout + h1_grace {
                return Idle::Http1;
            }
        }
    }

    fn refuse(&self, err: ProxyError) {
        let index = self.released.fetch_add(1, Ordering::Relaxed);
        *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(err);
        self.refused_at.store(index, Ordering::Release);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Expecting a request head.
    Head,
    /// Inside a body of this many more bytes.
    Body(u64),
    /// Expecting a chunk-size line.
    ChunkSize,
    /// Inside chunk data of this many more bytes.
    ChunkData(u64),
    /// Expecting the CRLF after chunk data.
    ChunkEnd,
    /// Inside the trailer section after the last chunk.
    Trailer,
    /// HTTP/2: nothing to guard.
    Passthrough,
    /// A head was refused: hyper gets the substitute, then nothing more (not
    /// even end of stream, which would make hyper drop the answer; the
    /// substitute's `connection: close` ends the connection after it).
    Refused,
    /// Broken framing: hyper gets what is in `ready`, then end of stream.
    Done,
}

/// An I/O stream whose inbound HTTP/1 heads are checked before hyper reads them.
#[derive(Debug)]
pub struct Guarded<T> {
    inner: T,
    state: Arc<GuardState>,
    /// Bytes read from the socket, not yet judged.
    raw: BytesMut,
    /// Bytes judged and waiting for hyper.
    ready: BytesMut,
    mode: Mode,
    eof: bool,
    /// How much of `raw` was already searched for the end of a head.
    scanned: usize,
    /// Until the head being read is whole: the first from the connection's
    /// start, each later one from the end of the answer before it. The guard
    /// times every head itself (hyper's own timer would close the connection
    /// without an answer), so a slow second head gets the same 408 as a slow
    /// first one.
    head_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    head_timeout: Duration,
}

impl<T> Guarded<T> {
    /// Guards `inner`; each request head must be whole within `head_timeout`
    /// (of the connection's start, or of the previous answer's end).
    pub fn new(inner: T, state: Arc<GuardState>, head_timeout: Duration) -> Self {
        Self {
            inner,
            state,
            raw: BytesMut::new(),
            ready: BytesMut::new(),
            mode: Mode::Head,
            eof: false,
            scanned: 0,
            head_deadline: Some(Box::pin(tokio::time::sleep(head_timeout))),
            head_timeout,
        }
    }

    fn refuse(&mut self, err: ProxyError) {
        self.state.refuse(err);
        self.ready.extend_from_slice(SUBSTITUTE);
        self.raw.clear();
        self.mode = Mode::Refused;
    }

    /// Moves judged bytes from `raw` to `ready`; false when it needs more input.
    fn advance(&mut self) -> bool {
        match self.mode {
            Mode::Head => self.advance_head(),
            Mode::Body(n) => self.pass_body(n, Mode::Body, Mode::Head),
            Mode::ChunkData(n) => self.pass_body(n, Mode::ChunkData, Mode::ChunkEnd),
            Mode::ChunkSize => match httparse::parse_chunk_size(&self.raw) {
                Ok(httparse::Status::Complete((len, size))) => {
                    self.ready.extend_from_slice(&self.raw.split_to(len));
                    self.mode = if size == 0 {
                        Mode::Trailer
                    } else {
                        Mode::ChunkData(size)
                    };
                    true
                }
                Ok(httparse::Status::Partial) if self.raw.len() <= MAX_LINE_BYTES => false,
                // hyper would refuse this body too; end the stream (fail closed).
                _ => self.broken(),
            },
            Mode::ChunkEnd => {
                if self.raw.len() < 2 {
                    return false;
                }
                if &self.raw[..2] != b"\r\n" {
                    return self.broken();
                }
                self.ready.extend_from_slice(&self.raw.split_to(2));
                self.mode = Mode::ChunkSize;
                true
            }
            Mode::Trailer => match self.raw.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    let line = self.raw.split_to(i + 1);
                    let empty = line.len() <= 2 && line.iter().all(|b| *b == b'\r' || *b == b'\n');
                    self.ready.extend_from_slice(&line);
                    if empty {
                        self.mode = Mode::Head;
                    }
                    true
                }
                None if self.raw.len() <= MAX_LINE_BYTES => false,
                None => self.broken(),
            },
            Mode::Passthrough => {
                if self.raw.is_empty() {
                    return false;
                }
                let all = self.raw.split();
                self.ready.extend_from_slice(&all);
                true
            }
            Mode::Refused | Mode::Done => false,
        }
    }

    fn broken(&mut self) -> bool {
        self.raw.clear();
        self.mode = Mode::Done;
        true
    }

    fn pass_body(&mut self, n: u64, more: fn(u64) -> Mode, next: Mode) -> bool {
        if self.raw.is_empty() {
            return false;
        }
        let take = usize::try_from(n).unwrap_or(usize::MAX).min(self.raw.len());
        hand_over(&mut self.ready, self.raw.split_to(take));
        let left = n - take as u64;
        self.mode = if left == 0 { next } else { more(left) };
        true
    }

    fn advance_head(&mut self) -> bool {
        // Empty lines before a request line are allowed (RFC 9112 §2.2).
        let blank = self
            .raw
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        if blank > 0 {
            let _ = self.raw.split_to(blank);
            self.scanned = 0;
            return true;
        }
        if self.raw.is_empty() {
            return false;
        }
        let n = self.raw.len().min(H2_PREFACE.len());
        if self.raw[..n] == H2_PREFACE[..n] {
            if n < H2_PREFACE.len() {
                return false;
            }
            self.mode = Mode::Passthrough;
            self.head_deadline = None;
            self.state.h2.store(true, Ordering::Relaxed);
            return true;
        }
        let found = head_end(&self.raw, self.scanned.saturating_sub(2));
        self.scanned = self.raw.len();
        let Some(end) = found else {
            if self.raw.len() > MAX_HEAD_BYTES {
                self.refuse(ProxyError::HeadersTooLarge);
                return true;
            }
            return false;
        };
        if end > MAX_HEAD_BYTES {
            self.refuse(ProxyError::HeadersTooLarge);
            return true;
        }
        let head = self.raw.split_to(end);
        self.scanned = 0;
        match check_head(&head) {
            Ok(mode) => {
                self.head_deadline = None;
                self.state.released.fetch_add(1, Ordering::Relaxed);
                hand_over(&mut self.ready, head);
                self.mode = mode;
            }
            Err(e) => self.refuse(e),
        }
        true
    }
}

/// Appends judged bytes to `ready`, moving them when `ready` is empty (the
/// common case: one request at a time) instead of copying.
fn hand_over(ready: &mut BytesMut, bytes: BytesMut) {
    if ready.is_empty() {
        *ready = bytes;
    } else {
        ready.unsplit(bytes);
    }
}

/// The length of the head at the start of `buf` (through its blank line), if
/// complete; the search starts at `from` (what was searched before, less the
/// bytes a terminator could straddle).
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from.min(buf.len());
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

fn bad(msg: &str) -> ProxyError {
    ProxyError::BadRequest(msg.into())
}

/// Parses a whole head and decides how its body is framed.
fn check_head(head: &[u8]) -> Result<Mode, ProxyError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(bad("the request head is incomplete")),
        Err(httparse::Error::TooManyHeaders) => return Err(ProxyError::HeadersTooLarge),
        Err(e) => {
            return Err(ProxyError::BadRequest(format!(
                "the request head is malformed ({e}); folded header lines are not accepted"
            )));
        }
    }
    let mut length: Option<u64> = None;
    let mut chunked: Option<bool> = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            if length.is_some() {
                return Err(bad("the request has more than one Content-Length"));
            }
            let v = std::str::from_utf8(h.value).unwrap_or("").trim();
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("the Content-Length is not a number"));
            }
            length = Some(
                v.parse()
                    .map_err(|_| bad("the Content-Length is too large"))?,
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if chunked.is_some() {
                return Err(bad("the request has more than one Transfer-Encoding"));
            }
            chunked = Some(h.value.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        }
    }
    match (length, chunked) {
        (Some(_), Some(_)) => Err(bad(
            "Content-Length and Transfer-Encoding together are refused",
        )),
        (_, Some(false)) => Err(bad(
            "the only Transfer-Encoding accepted is a single 'chunked'",
        )),
        (_, Some(true)) if req.version == Some(0) => Err(bad("HTTP/1.0 has no Transfer-Encoding")),
        (_, Some(true)) => Ok(Mode::ChunkSize),
        (Some(n), None) if n > 0 => Ok(Mode::Body(n)),
        _ => Ok(Mode::Head),
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.ready.is_empty() {
                let n = buf.remaining().min(this.ready.len());
                buf.put_slice(&this.ready.split_to(n));
                if this.ready.is_empty() {
                    // An empty view still pins its whole read chunk.
                    this.ready = BytesMut::new();
                }
                return Poll::Ready(Ok(()));
            }
            match this.mode {
                Mode::Done => return Poll::Ready(Ok(())),
                Mode::Refused => return Poll::Pending,
                _ => {}
            }
            if this.mode == Mode::Passthrough && this.raw.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            if this.advance() {
                continue;
            }
            if this.eof {
                // A truncated message: hand over what is left; hyper ends the connection.
                let rest = this.raw.split();
                this.ready.extend_from_slice(&rest);
                this.mode = Mode::Done;
                continue;
            }
            if this.mode == Mode::Head && this.head_deadline.is_none() && this.state.all_answered()
            {
                // The previous answer is done: the next head's time starts.
                let at = this.state.idle_since() + this.head_timeout;
                this.head_deadline = Some(Box::pin(tokio::time::sleep_until(at)));
            }
            if let Some(deadline) = &mut this.head_deadline
                && deadline.as_mut().poll(cx).is_ready()
            {
                this.head_deadline = None;
                if this.state.released.load(Ordering::Relaxed) > 0 && this.raw.is_empty() {
                    // Idle between requests, not slow: close as an idle keep-alive
                    // connection (hyper sees the end of the stream between messages).
                    crate::metrics::idle_connection_closed(Idle::Http1.as_str());
                    this.mode = Mode::Done;
                    continue;
                }
                let after_ms = u64::try_from(this.head_timeout.as_millis()).unwrap_or(u64::MAX);
                this.refuse(ProxyError::HeaderTimeout { after_ms });
                continue;
            }
            // Straight into `raw`'s spare room: no zeroed bounce buffer, no copy.
            // Small while waiting for a head, so idle connections stay small.
            let chunk = if this.mode == Mode::Head {
                HEAD_READ_CHUNK
            } else {
                BODY_READ_CHUNK
            };
            if this.raw.capacity() - this.raw.len() < chunk / 4 {
                this.raw.reserve(chunk);
            }
            match tokio_util::io::poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.raw) {
                Poll::Pending => {
                    if this.raw.is_empty() {
                        // Idle keep-alive connections hold no read chunk.
                        this.raw = BytesMut::new();
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(0)) => this.eof = true,
                Poll::Ready(Ok(_)) => {}
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
