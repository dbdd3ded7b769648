use super::*;

fn headers(fields: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in fields {
        h.append(
            HeaderName::from_bytes(n.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    h
}

fn framing(status: u16, head_only: bool, fields: &[(&str, &str)]) -> Result<(State, bool), Error> {
    response_framing(
        StatusCode::from_u16(status).expect("status"),
        head_only,
        &headers(fields),
    )
}

#[test]
fn response_framing_follows_rfc_9112() {
    let cl = [("content-length", "7")];
    assert_eq!(framing(200, true, &cl).expect("head"), (State::Done, true));
    assert_eq!(framing(204, false, &[]).expect("204"), (State::Done, true));
    assert_eq!(framing(304, false, &cl).expect("304"), (State::Done, true));
    assert_eq!(
        framing(200, false, &cl).expect("cl"),
        (State::Fixed(7), true)
    );
    assert_eq!(
        framing(200, false, &[("content-length", "0")]).expect("cl 0"),
        (State::Done, true)
    );
    assert_eq!(
        framing(200, false, &[("content-length", "7, 7")]).expect("list"),
        (State::Fixed(7), true)
    );
    assert_eq!(
        framing(200, false, &[("transfer-encoding", "Chunked")]).expect("chunked"),
        (State::Chunked(Chunk::Size), true)
    );
    // Both: read as chunked, and the connection is not trusted afterwards.
    assert_eq!(
        framing(
            200,
            false,
            &[("transfer-encoding", "chunked"), ("content-length", "3")]
        )
        .expect("te+cl"),
        (State::Chunked(Chunk::Size), false)
    );
    // Delimited by close: never reused.
    assert_eq!(
        framing(200, false, &[]).expect("close"),
        (State::UntilClose, false)
    );
}

#[test]
fn response_framing_refuses_what_could_be_read_two_ways() {
    for bad in [
        vec![("content-length", "7, 8")],
        vec![("content-length", "7"), ("content-length", "8")],
        vec![("content-length", "-1")],
        vec![("content-length", "+7")],
        vec![("content-length", "0x10")],
        vec![("content-length", "")],
        vec![("content-length", "99999999999999999999999")],
        vec![("transfer-encoding", "gzip")],
        vec![("transfer-encoding", "gzip, chunked")],
        vec![
            ("transfer-encoding", "chunked"),
            ("transfer-encoding", "chunked"),
        ],
    ] {
        assert!(
            matches!(framing(200, false, &bad), Err(Error::Protocol(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn connection_close_is_seen_in_any_token() {
    assert!(closes(&headers(&[("connection", "keep-alive, Close")])));
    assert!(!closes(&headers(&[("connection", "keep-alive")])));
    assert!(!closes(&headers(&[("connection", "closed")])));
}

/// Decodes `wire` fed `step` bytes at a time, as reads would deliver it.
fn dechunk(wire: &[u8], step: usize) -> Result<(Vec<u8>, usize), Error> {
    let mut fed = 0;
    let mut pending = Bytes::new();
    let mut state = State::Chunked(Chunk::Size);
    let mut body = Vec::new();
    while let State::Chunked(chunk) = state {
        match step_chunk(&mut pending, chunk)? {
            ChunkStep::More => {
                if fed == wire.len() {
                    return Err(Error::Protocol("ran out of input"));
                }
                let end = (fed + step).min(wire.len());
                let mut joined = pending.to_vec();
                joined.extend_from_slice(&wire[fed..end]);
                pending = Bytes::from(joined);
                fed = end;
            }
            ChunkStep::Next(next) => state = next,
            ChunkStep::Data(bytes, next) => {
                body.extend_from_slice(&bytes);
                state = next;
            }
        }
    }
    Ok((body, wire.len() - fed + pending.len()))
}

#[test]
fn chunked_bodies_decode_at_every_read_size() {
    let wire: &[u8] =
        b"5\r\nhello\r\n1;name=value\r\n \r\nA\r\n0123456789\r\n0\r\nx-trailer: t\r\n\r\n";
    for step in 1..=wire.len() {
        let (body, left) = dechunk(wire, step).expect("decodes");
        assert_eq!(body, b"hello 0123456789", "step {step}");
        assert_eq!(left, 0, "step {step}: nothing after the body");
    }
    // What follows the body is left for the connection (which is then not reused).
    let (_, left) = dechunk(b"0\r\n\r\nHTTP/1.1 200 OK\r\n", 64).expect("decodes");
    assert_eq!(left, 17);
}

#[test]
fn malformed_chunking_is_an_error() {
    for bad in [
        &b"z\r\nhello\r\n0\r\n\r\n"[..],
        b"5\r\nhelloXX0\r\n\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
        b"ffffffffffffffffff\r\n",
    ] {
        assert!(
            matches!(dechunk(bad, 3), Err(Error::Protocol(_))),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let long_line = format!(
        "5;{}\r\nhello\r\n0\r\n\r\n",
        "x".repeat(MAX_CHUNK_LINE + 10)
    );
    assert!(dechunk(long_line.as_bytes(), 512).is_err());
    let huge_trailers = format!(
        "0\r\n{}\r\n\r\n",
        "x-t: v\r\n".repeat(MAX_HEAD_BYTES / 8 + 10)
    );
    assert!(dechunk(huge_trailers.as_bytes(), 4096).is_err());
}

fn head_of(method: Method, fields: &[(&str, &str)], framing: ReqFraming) -> String {
    let mut req = Request::builder()
        .method(method)
        .uri("/stores/abc/v3/x?a=1")
        .body(())
        .expect("request");
    *req.headers_mut() = headers(fields);
    let (parts, ()) = req.into_parts();
    let declared = declared_length(&parts.headers).expect("length");
    let mut out = Vec::new();
    encode_head(&parts, declared.is_none(), framing, &mut out);
    String::from_utf8(out).expect("ascii")
}

#[test]
fn request_heads_carry_exactly_one_framing() {
    assert_eq!(
        head_of(Method::GET, &[("host", "h")], ReqFraming::Length(0)),
        "GET /stores/abc/v3/x?a=1 HTTP/1.1\r\nhost: h\r\n\r\n"
    );
    assert_eq!(
        head_of(Method::POST, &[("host", "h")], ReqFraming::Length(0)),
        "POST /stores/abc/v3/x?a=1 HTTP/1.1\r\nhost: h\r\ncontent-length: 0\r\n\r\n"
    );
    assert_eq!(
        head_of(Method::PUT, &[("host", "h")], ReqFraming::Length(12)),
        "PUT /stores/abc/v3/x?a=1 HTTP/1.1\r\nhost: h\r\ncontent-length: 12\r\n\r\n"
    );
    assert_eq!(
        head_of(
            Method::POST,
            &[("host", "h"), ("transfer-encoding", "chunked")],
            ReqFraming::Chunked
        ),
        "POST /stores/abc/v3/x?a=1 HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    // The caller's own length is kept, and no second one is added.
    assert_eq!(
        head_of(
            Method::POST,
            &[("content-length", "3")],
            ReqFraming::Length(3)
        ),
        "POST /stores/abc/v3/x?a=1 HTTP/1.1\r\ncontent-length: 3\r\n\r\n"
    );
}

#[test]
fn a_declared_length_must_be_one_number() {
    assert_eq!(declared_length(&headers(&[])).expect("none"), None);
    assert_eq!(
        declared_length(&headers(&[("content-length", " 12 ")])).expect("12"),
        Some(12)
    );
    for bad in [
        vec![("content-length", "1,2")],
        vec![("content-length", "x")],
        vec![("content-length", "1"), ("content-length", "1")],
        vec![("content-length", "+1")],
    ] {
        assert!(declared_length(&headers(&bad)).is_err(), "{bad:?}");
    }
}
