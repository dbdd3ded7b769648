//! HTTP/1.1 to the upstream without a connection task: the request that
//! holds a connection writes its head and body and reads the answer on it;
//! the response body reads the rest and hands the connection back.
//!
//! hyper's client runs every connection as a task fed through channels. With
//! one origin and one request per connection at a time, that costs two task
//! hops and two channels per request and buys nothing. httparse parses the
//! response heads and chunk-size lines; message framing follows RFC 9112 §6.
//! A connection is reused only when its response was framed, read to the end
//! and followed by nothing; any error closes it.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::body::{BoxError, ProxyBody};
use crate::headers::FREQUENT_RESPONSE_NAMES;

/// The most bytes a response head (status line and fields) or a trailer section may take.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most fields a response head may carry.
const MAX_HEADERS: usize = 128;
/// The longest chunk-size line accepted (with extensions).
const MAX_CHUNK_LINE: usize = 4096;
/// The read buffer grows by this much when it runs low.
const READ_CHUNK: usize = 16 * 1024;
/// Request body bytes gathered with the head into one TLS write.
const COALESCE: usize = 16 * 1024;
/// The write buffer a connection keeps between requests, at most.
const KEEP_WRITE_BUFFER: usize = 4 * 1024;

/// Why an exchange failed; the connection is closed.
#[derive(Debug)]
pub enum Error {
    Io(io::Error),
    Protocol(&'static str),
    /// The caller's request body failed while it was being sent.
    Body(BoxError),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Protocol(m) => f.write_str(m),
            Self::Body(e) => write!(f, "the request body failed: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Body(e) => Some(e.as_ref()),
            Self::Protocol(_) => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// The upstream connection: TLS over TCP (the fuzz target drives the same
/// code over memory).
pub type Upstream = TlsStream<TcpStream>;

/// What a connection runs over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// Where a finished connection goes back to.
pub trait Recycle<T = Upstream>: Send + Sync + 'static {
    fn recycle(&self, conn: Conn<T>);
}

/// One HTTP/1.1 connection over TLS, idle between requests.
pub struct Conn<T = Upstream> {
    /// Boxed: the connection moves from pool to request to body and back.
    io: Box<T>,
    /// Where reads land.
    buf: BytesMut,
    /// Read and not yet consumed: a head's bytes are parsed here and its
    /// fields and the body after it share them. Empty between requests.
    pending: Bytes,
    /// Where a request head (and a small body) is gathered before it is written.
    wbuf: Vec<u8>,
}

impl<T> std::fmt::Debug for Conn<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("buffered", &(self.buf.len() + self.pending.len()))
            .finish_non_exhaustive()
    }
}

impl<T: Io> Conn<T> {
    pub fn new(io: T) -> Self {
        Self {
            io: Box::new(io),
            buf: BytesMut::new(),
            pending: Bytes::new(),
            wbuf: Vec::new(),
        }
    }

    /// Whether an idle connection can take a request: the upstream has not
    /// closed it nor sent anything unasked. Never waits (no waker is kept).
    pub fn is_usable(&mut self) -> bool {
        if !self.is_drained() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        matches!(self.poll_fill(&mut cx), Poll::Pending)
    }

    fn is_drained(&self) -> bool {
        self.buf.is_empty() && self.pending.is_empty()
    }

    /// Reads more into `buf`.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut *self.io), cx, &mut self.buf)
    }

    /// Reads more and makes `pending` all that is unconsumed, in one piece
    /// (copying only a partial line left over from the last read).
    fn poll_more(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if !self.pending.is_empty() && self.buf.is_empty() {
            let mut joined = BytesMut::with_capacity(self.pending.len() + READ_CHUNK);
            joined.extend_from_slice(&self.pending);
            self.pending = Bytes::new();
            self.buf = joined;
        }
        let n = ready!(self.poll_fill(cx))?;
        self.pending = self.buf.split().freeze();
        Poll::Ready(Ok(n))
    }

    async fn more(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_more(cx)).await
    }

    /// Sends `req` (origin-form URI, `Host` already set) and reads the
    /// response head; the body reads the rest and recycles the connection.
    pub async fn send(
        mut self,
        req: Request<ProxyBody>,
        home: Arc<dyn Recycle<T>>,
    ) -> Result<Response<ResponseBody<T>>, Error> {
        let (parts, body) = req.into_parts();
        let head_only = parts.method == Method::HEAD;
        let written = self.write_request(&parts, body).await;
        let (head, framing, reuse) = match written {
            Ok(()) => self.read_head(head_only).await?,
            // An upstream may answer before it has read the whole body (a
            // 413, a 401) and stop reading; that answer, if it came, is the
            // one to pass on. The connection is not reused.
            Err(Error::Io(e)) => match self.read_head(head_only).await {
                Ok((head, framing, _)) => (head, framing, false),
                Err(_) => return Err(Error::Io(e)),
            },
            Err(e) => return Err(e),
        };
        let mut body = ResponseBody {
            conn: Some(self),
            state: framing,
            reuse,
            home: Some(home),
        };
        body.finish_if_done();
        Ok(Response::from_parts(head, body))
    }

    async fn write_request(
        &mut self,
        parts: &http::request::Parts,
        mut body: ProxyBody,
    ) -> Result<(), Error> {
        let declared = declared_length(&parts.headers)?;
        let framing = match declared {
            Some(n) => ReqFraming::Length(n),
            None if body.is_end_stream() => ReqFraming::Length(0),
            None => match body.size_hint().exact() {
                Some(n) => ReqFraming::Length(n),
                None => ReqFraming::Chunked,
            },
        };
        // The connection's own buffer, kept between requests (not when a large body grew it).
        let mut out = std::mem::take(&mut self.wbuf);
        out.clear();
        encode_head(parts, declared.is_none(), framing, &mut out);
        let mut left = match framing {
            ReqFraming::Length(n) => n,
            ReqFraming::Chunked => 0,
        };
        if !body.is_end_stream() {
            loop {
                // Send what is gathered before waiting on a slow caller.
                let ready = Pin::new(&mut body).poll_frame(&mut Context::from_waker(Waker::noop()));
                let frame = match ready {
                    Poll::Ready(f) => f,
                    Poll::Pending => {
                        self.write_out(&mut out).await?;
                        body.frame().await
                    }
                };
                let Some(frame) = frame else { break };
                let Ok(data) = frame.map_err(Error::Body)?.into_data() else {
                    continue; // trailers are not forwarded
                };
                if data.is_empty() {
                    continue;
                }
                match framing {
                    ReqFraming::Length(_) => {
                        left = left.checked_sub(data.len() as u64).ok_or(Error::Protocol(
                            "the request body is longer than its Content-Length",
                        ))?;
                    }
                    ReqFraming::Chunked => {
                        out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
                    }
                }
                if out.len() + data.len() <= COALESCE {
                    out.extend_from_slice(&data);
                } else {
                    self.write_out(&mut out).await?;
                    self.io.write_all(&data).await?;
                }
                if framing == ReqFraming::Chunked {
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
        match framing {
            ReqFraming::Length(_) if left > 0 => {
                return Err(Error::Protocol(
                    "the request body is shorter than its Content-Length",
                ));
            }
            ReqFraming::Length(_) => {}
            ReqFraming::Chunked => out.extend_from_slice(b"0\r\n\r\n"),
        }
        self.write_out(&mut out).await?;
        self.io.flush().await?;
        if out.capacity() <= KEEP_WRITE_BUFFER {
            self.wbuf = out;
        }
        Ok(())
    }

    async fn write_out(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        if !out.is_empty() {
            self.io.write_all(out).await?;
            out.clear();
        }
        Ok(())
    }

    /// Reads up to the final response head (1xx heads are skipped).
    async fn read_head(
        &mut self,
        head_only: bool,
    ) -> Result<(http::response::Parts, State, bool), Error> {
        loop {
            if !self.pending.is_empty() {
                if let Some(parsed) = self.parse_head(head_only)? {
                    return Ok(parsed);
                }
                if self.pending.len() > MAX_HEAD_BYTES {
                    return Err(Error::Protocol("the upstream's response head is too large"));
                }
            }
            if self.more().await? == 0 {
                return Err(Error::Protocol(
                    "the upstream closed the connection before answering",
                ));
            }
        }
    }

    /// The head at the front of `pending`, once it is whole; `None` to read more.
    fn parse_head(
        &mut self,
        head_only: bool,
    ) -> Result<Option<(http::response::Parts, State, bool)>, Error> {
        loop {
            let data = &self.pending;
            // Never past the limit, so what is refused, and why, does not
            // depend on how the head was split into reads.
            let window = &data[..data.len().min(MAX_HEAD_BYTES + 1)];
            let mut fields = [const { MaybeUninit::uninit() }; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut []);
            let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
                &mut resp,
                window,
                &mut fields,
            ) {
                // However the head arrived: the limit does not depend on read sizes.
                Ok(httparse::Status::Complete(len)) if len > MAX_HEAD_BYTES => {
                    return Err(Error::Protocol("the upstream's response head is too large"));
                }
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(Error::Protocol(
                        "the upstream's response has too many fields",
                    ));
                }
                Err(_) => return Err(Error::Protocol("the upstream's response head is malformed")),
            };
            let code = resp.code.unwrap_or(0);
            if (100..200).contains(&code) {
                if code == 101 {
                    return Err(Error::Protocol("the upstream switched protocols"));
                }
                self.pending.advance(len);
                if self.pending.is_empty() {
                    return Ok(None);
                }
                continue;
            }
            let status = StatusCode::from_u16(code)
                .map_err(|_| Error::Protocol("the upstream's status code is invalid"))?;
            let http10 = resp.version == Some(0);
            let mut headers = HeaderMap::with_capacity(resp.headers.len());
            for field in resp.headers.iter() {
                let name = field_name(field.name)?;
                // The value shares the read buffer: no copy.
                let value = HeaderValue::from_maybe_shared(data.slice_ref(field.value))
                    .map_err(|_| Error::Protocol("the upstream sent an invalid field value"))?;
                headers.append(name, value);
            }
            self.pending.advance(len);
            let (state, framed) = response_framing(status, head_only, &headers)?;
            let reuse = framed && !http10 && !closes(&headers);
            let mut parts = Response::new(()).into_parts().0;
            parts.status = status;
            parts.headers = headers;
            return Ok(Some((parts, state, reuse)));
        }
    }
}

fn field_name(raw: &str) -> Result<HeaderName, Error> {
    if raw.len() > 2 && raw.as_bytes()[..2].eq_ignore_ascii_case(b"x-") {
        for known in &FREQUENT_RESPONSE_NAMES {
            if raw.eq_ignore_ascii_case(known.as_str()) {
                return Ok(known.clone());
            }
        }
    }
    HeaderName::from_bytes(raw.as_bytes())
        .map_err(|_| Error::Protocol("the upstream sent an invalid field name"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReqFraming {
    Length(u64),
    Chunked,
}

/// The caller's `Content-Length`, when it sent one (the head guard and
/// HTTP/2 already refused malformed ones; this refuses them again).
fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, Error> {
    let mut values = headers.get_all(header::CONTENT_LENGTH).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    let n = length_value(first.as_bytes())
        .filter(|_| values.next().is_none())
        .ok_or(Error::Protocol(
            "the request's Content-Length is not one number",
        ))?;
    Ok(Some(n))
}

/// A Content-Length value: ASCII digits only (no sign), blanks around them allowed.
fn length_value(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The request line and fields. Framing fields are bcgate's: the caller's
/// `Content-Length` is kept only as checked by [`declared_length`], and
/// `Transfer-Encoding` is hop-by-hop (gone before this stage).
fn encode_head(
    parts: &http::request::Parts,
    add_length: bool,
    framing: ReqFraming,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &parts.headers {
        if name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        ReqFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        // No body and no method that implies one: no length either (as hyper).
        ReqFraming::Length(0)
            if add_length
                && !matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) => {}
        ReqFraming::Length(n) if add_length => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        ReqFraming::Length(_) => {}
    }
    out.extend_from_slice(b"\r\n");
}

/// How the response body is delimited (RFC 9112 §6.3), and whether that
/// leaves the connection reusable.
fn response_framing(
    status: StatusCode,
    head_only: bool,
    headers: &HeaderMap,
) -> Result<(State, bool), Error> {
    if head_only || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok((State::Done, true));
    }
    let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter().peekable();
    if codings.peek().is_some() {
        let last = codings
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|c| !c.is_empty())
            .collect::<Vec<_>>();
        return match last.as_slice() {
            [only] if only.eq_ignore_ascii_case(b"chunked") => {
                // With a Content-Length beside it the message is suspect: read it, then close.
                let framed = !headers.contains_key(header::CONTENT_LENGTH);
                Ok((State::Chunked(Chunk::Size), framed))
            }
            _ => Err(Error::Protocol(
                "the upstream used a transfer coding other than chunked",
            )),
        };
    }
    let mut length: Option<u64> = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for part in value.as_bytes().split(|&b| b == b',') {
            let n = length_value(part)
                .ok_or(Error::Protocol("the upstream's Content-Length is invalid"))?;
            if length.is_some_and(|l| l != n) {
                return Err(Error::Protocol(
                    "the upstream sent conflicting Content-Lengths",
                ));
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(0) => (State::Done, true),
        Some(n) => (State::Fixed(n), true),
        None => (State::UntilClose, false),
    })
}

fn closes(headers: &HeaderMap) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// This many body bytes to go.
    Fixed(u64),
    Chunked(Chunk),
    /// The body ends when the upstream closes the connection.
    UntilClose,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// At a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes to go.
    Data(u64),
    /// At the CRLF after a chunk's data.
    DataEnd,
    /// In the trailer section, this many bytes of it read so far.
    Trailers(usize),
}

/// A response body read off its connection, which goes back to the pool
/// when the body ends cleanly, and is closed otherwise (also when dropped early).
pub struct ResponseBody<T = Upstream> {
    conn: Option<Conn<T>>,
    state: State,
    reuse: bool,
    home: Option<Arc<dyn Recycle<T>>>,
}

impl<T> std::fmt::Debug for ResponseBody<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<T: Io> ResponseBody<T> {
    fn finish_if_done(&mut self) {
        if self.state != State::Done {
            return;
        }
        let conn = self.conn.take();
        if let (Some(conn), Some(home)) = (conn, self.home.take())
            && self.reuse
            && conn.is_drained()
        {
            home.recycle(conn);
        }
    }

    fn fail(&mut self, e: Error) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.conn = None;
        self.state = State::Done;
        Poll::Ready(Some(Err(Box::new(e))))
    }

    fn data(&mut self, bytes: Bytes) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.finish_if_done();
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }
}

impl<T: Io> Body for ResponseBody<T> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            let need_more = match this.state {
                State::Done => {
                    this.finish_if_done();
                    return Poll::Ready(None);
                }
                State::Fixed(left) => {
                    if conn.pending.is_empty() {
                        true
                    } else {
                        let n = conn
                            .pending
                            .len()
                            .min(usize::try_from(left).unwrap_or(usize::MAX));
                        let bytes = conn.pending.split_to(n);
                        this.state = match left - n as u64 {
                            0 => State::Done,
                            rest => State::Fixed(rest),
                        };
                        return this.data(bytes);
                    }
                }
                State::UntilClose => {
                    if conn.pending.is_empty() {
                        true
                    } else {
                        let bytes = std::mem::take(&mut conn.pending);
                        return this.data(bytes);
                    }
                }
                State::Chunked(chunk) => match step_chunk(&mut conn.pending, chunk) {
                    Err(e) => return this.fail(e),
                    Ok(ChunkStep::More) => true,
                    Ok(ChunkStep::Next(next)) => {
                        this.state = next;
                        false
                    }
                    Ok(ChunkStep::Data(bytes, next)) => {
                        this.state = next;
                        return this.data(bytes);
                    }
                },
            };
            if !need_more {
                continue;
            }
            match ready!(conn.poll_more(cx)) {
                Ok(0) if this.state == State::UntilClose => {
                    this.reuse = false;
                    this.state = State::Done;
                }
                Ok(0) => {
                    return this.fail(Error::Protocol(
                        "the upstream closed the connection before the body ended",
                    ));
                }
                Ok(_) => {}
                Err(e) => return this.fail(Error::Io(e)),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Fixed(n) => SizeHint::with_exact(n),
            State::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

enum ChunkStep {
    /// Read more before going on.
    More,
    Next(State),
    Data(Bytes, State),
}

/// One step of chunked decoding over what is buffered.
fn step_chunk(buf: &mut Bytes, chunk: Chunk) -> Result<ChunkStep, Error> {
    match chunk {
        Chunk::Size => {
            match httparse::parse_chunk_size(&buf[..buf.len().min(MAX_CHUNK_LINE + 1)]) {
                Ok(httparse::Status::Complete((used, _))) if used > MAX_CHUNK_LINE => Err(
                    Error::Protocol("the upstream sent an overlong chunk-size line"),
                ),
                Ok(httparse::Status::Complete((used, size))) => {
                    buf.advance(used);
                    Ok(ChunkStep::Next(State::Chunked(if size == 0 {
                        Chunk::Trailers(0)
                    } else {
                        Chunk::Data(size)
                    })))
                }
                Ok(httparse::Status::Partial) if buf.len() > MAX_CHUNK_LINE => Err(
                    Error::Protocol("the upstream sent an overlong chunk-size line"),
                ),
                Ok(httparse::Status::Partial) => Ok(ChunkStep::More),
                Err(_) => Err(Error::Protocol("the upstream sent a malformed chunk size")),
            }
        }
        Chunk::Data(left) => {
            if buf.is_empty() {
                return Ok(ChunkStep::More);
            }
            let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let bytes = buf.split_to(n);
            let next = match left - n as u64 {
                0 => Chunk::DataEnd,
                rest => Chunk::Data(rest),
            };
            Ok(ChunkStep::Data(bytes, State::Chunked(next)))
        }
        Chunk::DataEnd => match buf.get(..2) {
            None if buf.first().is_none_or(|&b| b == b'\r') => Ok(ChunkStep::More),
            Some(b"\r\n") => {
                buf.advance(2);
                Ok(ChunkStep::Next(State::Chunked(Chunk::Size)))
            }
            _ => Err(Error::Protocol(
                "the upstream's chunk data is not followed by CRLF",
            )),
        },
        Chunk::Trailers(seen) => {
            // Trailer fields are read and dropped: bcgate forwards none.
            let Some(end) = buf.iter().position(|&b| b == b'\n') else {
                return if seen + buf.len() > MAX_HEAD_BYTES {
                    Err(Error::Protocol(
                        "the upstream's trailer section is too large",
                    ))
                } else {
                    Ok(ChunkStep::More)
                };
            };
            let line = &buf[..end];
            let blank = line.is_empty() || line == b"\r";
            buf.advance(end + 1);
            if blank {
                Ok(ChunkStep::Next(State::Done))
            } else if seen + end + 1 > MAX_HEAD_BYTES {
                Err(Error::Protocol(
                    "the upstream's trailer section is too large",
                ))
            } else {
                Ok(ChunkStep::Next(State::Chunked(Chunk::Trailers(
                    seen + end + 1,
                ))))
            }
        }
    }
}

#[cfg(test)]
mod tests;
