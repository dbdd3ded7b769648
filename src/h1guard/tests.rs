//! Head-guard tests over in-memory streams, fed in pieces of every size.

use super::*;

/// Yields its data `step` bytes per read, like a slow socket.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    step: usize,
}

impl AsyncRead for Trickle {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = this
            .step
            .min(this.data.len() - this.pos)
            .min(buf.remaining());
        buf.put_slice(&this.data[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
}

/// Sends a few bytes, then nothing, forever.
struct Stall(&'static [u8]);

impl AsyncRead for Stall {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.0.is_empty() {
            return Poll::Pending;
        }
        buf.put_slice(this.0);
        this.0 = b"";
        Poll::Ready(Ok(()))
    }
}

/// What hyper would read through the guard, for each feed size: everything
/// until end of stream, or until the guard stops answering (after a refusal).
fn through(input: &[u8]) -> Vec<(Vec<u8>, Arc<GuardState>)> {
    let rt = runtime();
    let _in_runtime = rt.enter();
    [1, 3, 7, 64, 100_000]
        .into_iter()
        .map(|step| {
            let state = Arc::new(GuardState::default());
            let trickle = Trickle {
                data: input.to_vec(),
                pos: 0,
                step,
            };
            let mut g = Guarded::new(trickle, state.clone(), Duration::from_secs(60));
            let mut out = Vec::new();
            let mut cx = Context::from_waker(std::task::Waker::noop());
            loop {
                let mut chunk = [0u8; 4096];
                let mut buf = ReadBuf::new(&mut chunk);
                match Pin::new(&mut g).poll_read(&mut cx, &mut buf) {
                    Poll::Ready(Ok(())) if buf.filled().is_empty() => break,
                    Poll::Ready(Ok(())) => out.extend_from_slice(buf.filled()),
                    Poll::Ready(Err(e)) => panic!("read: {e}"),
                    Poll::Pending => break,
                }
            }
            (out, state)
        })
        .collect()
}

fn passes(input: &[u8]) {
    for (out, state) in through(input) {
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(input)
        );
        for _ in 0..8 {
            assert!(state.next_request().is_none());
        }
    }
}

/// The first `good` requests pass untouched; the next is refused with `code`.
fn refused(input: &[u8], good_prefix: &[u8], good: u64, code: &str) {
    for (out, state) in through(input) {
        let mut want = good_prefix.to_vec();
        want.extend_from_slice(SUBSTITUTE);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&want)
        );
        for _ in 0..good {
            assert!(state.next_request().is_none());
        }
        assert_eq!(state.next_request().map(|e| e.code()), Some(code));
    }
}

const GET: &[u8] = b"GET /v3/a HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn well_framed_pipelines_pass_byte_for_byte() {
    let mut input = GET.to_vec();
    input.extend_from_slice(b"\r\nPOST /v3/a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
    input.extend_from_slice(b"POST /v3/b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    input.extend_from_slice(b"5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n");
    input.extend_from_slice(GET);
    let mut expected = GET.to_vec();
    // The blank line between requests is dropped; hyper would skip it anyway.
    expected.extend_from_slice(&input[GET.len() + 2..]);
    for (out, _) in through(&input) {
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&expected)
        );
    }
}

#[test]
fn a_head_hidden_in_a_body_is_only_data() {
    let smuggled = b"GET /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut input = format!(
        "POST /v3/a HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        smuggled.len()
    )
    .into_bytes();
    input.extend_from_slice(smuggled);
    passes(&input);
    let mut input = b"POST /v3/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    input.extend_from_slice(format!("{:x}\r\n", smuggled.len()).as_bytes());
    input.extend_from_slice(smuggled);
    input.extend_from_slice(b"\r\n0\r\n\r\n");
    passes(&input);
}

#[test]
fn smuggling_shapes_are_refused_after_the_good_requests() {
    let shapes: [&[u8]; 7] = [
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    ];
    for shape in shapes {
        let mut input = GET.to_vec();
        input.extend_from_slice(shape);
        input.extend_from_slice(b"abc");
        refused(&input, GET, 1, "bad_request");
    }
    for bad_length in ["-1", "+3", "3 3", "0x10", ""] {
        let input = format!("POST / HTTP/1.1\r\nContent-Length: {bad_length}\r\n\r\n");
        refused(input.as_bytes(), b"", 0, "bad_request");
    }
}

#[test]
fn obs_fold_and_malformed_heads_are_refused() {
    refused(
        b"GET / HTTP/1.1\r\nX-Folded: a\r\n  b\r\n\r\n",
        b"",
        0,
        "bad_request",
    );
    refused(
        b"GET / HTTP/1.1\r\nBad Header: a\r\n\r\n",
        b"",
        0,
        "bad_request",
    );
    refused(b"GET /\0 HTTP/1.1\r\n\r\n", b"", 0, "bad_request");
    refused(b"NOT-HTTP\r\n\r\n", b"", 0, "bad_request");
}

#[test]
fn heads_too_large_or_with_too_many_fields_are_431() {
    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..=MAX_HEADERS {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    refused(&many, b"", 0, "headers_too_large");
    let big = format!(
        "GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(MAX_HEAD_BYTES)
    );
    refused(big.as_bytes(), b"", 0, "headers_too_large");
    // Never terminated: refused once the limit is passed, without waiting for the end.
    let endless = format!(
        "GET / HTTP/1.1\r\nX-Big: {}",
        "a".repeat(MAX_HEAD_BYTES + 10)
    );
    refused(endless.as_bytes(), b"", 0, "headers_too_large");
}

#[test]
fn broken_chunking_ends_the_stream_without_passing_more() {
    let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut input = head.to_vec();
    input.extend_from_slice(b"zz\r\nGET /smuggled HTTP/1.1\r\n\r\n");
    for (out, _) in through(&input) {
        assert_eq!(out, head, "nothing after the bad chunk line reaches hyper");
    }
    let mut input = head.to_vec();
    input.extend_from_slice(b"3\r\nabcXX0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n");
    for (out, _) in through(&input) {
        assert_eq!(
            &out[..],
            &input[..head.len() + 6],
            "stops at the missing CRLF"
        );
    }
}

#[test]
fn http2_prior_knowledge_passes_through() {
    let mut input = H2_PREFACE.to_vec();
    input.extend_from_slice(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00 anything at all\r\n\r\n");
    passes(&input);
}

#[test]
fn the_first_head_must_arrive_within_the_header_timeout() {
    let rt = runtime();
    let _in_runtime = rt.enter();
    for sent in [&b""[..], b"GET / HT", b"PRI * HTTP/2.0\r\n"] {
        let state = Arc::new(GuardState::default());
        let mut g = Guarded::new(Stall(sent), state.clone(), Duration::from_millis(50));
        let mut buf = vec![0u8; 1024];
        let started = std::time::Instant::now();
        let n = rt
            .block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(5),
                    tokio::io::AsyncReadExt::read(&mut g, &mut buf),
                )
                .await
            })
            .expect("answered before 5 s")
            .expect("read");
        assert_eq!(&buf[..n], SUBSTITUTE, "sent {sent:?}");
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(
            state.next_request().map(|e| e.code()),
            Some("header_timeout")
        );
    }
}

#[test]
fn a_whole_first_head_stops_the_clock() {
    let rt = runtime();
    let _in_runtime = rt.enter();
    let state = Arc::new(GuardState::default());
    let mut g = Guarded::new(Stall(GET), state.clone(), Duration::from_millis(50));
    let mut buf = vec![0u8; 1024];
    let n = rt
        .block_on(tokio::io::AsyncReadExt::read(&mut g, &mut buf))
        .expect("read");
    assert_eq!(&buf[..n], GET);
    // Long after the deadline the guard still just waits for the next head.
    let waited = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_millis(200),
            tokio::io::AsyncReadExt::read(&mut g, &mut buf),
        )
        .await
    });
    assert!(waited.is_err(), "no refusal once a head arrived");
    assert!(state.next_request().is_none());
}
