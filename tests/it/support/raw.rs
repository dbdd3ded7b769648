//! Hand-written HTTP/1.1 over a plain TCP socket, for requests no client
//! library will send (hop-by-hop tricks, duplicate headers, smuggling shapes,
//! odd request targets).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Overall limit for one raw exchange.
pub const RAW_TIMEOUT: Duration = Duration::from_secs(20);

/// A parsed HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased, values as text, in order, duplicates kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON (panics with the body text if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {}", self.body_text()))
    }
}

/// Send `request` verbatim and read one response (skipping 1xx). `head`
/// says the request was HEAD (no body follows). Errors carry what was read.
pub fn raw_exchange(addr: SocketAddr, request: &[u8], head: bool) -> Result<RawResponse, String> {
    let deadline = Instant::now() + RAW_TIMEOUT;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(Duration::from_secs(15)))
        .map_err(|e| e.to_string())?;
    // Write from another thread: the server may answer (and stop reading)
    // before the request is fully sent, and a large body must not deadlock.
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let request = request.to_vec();
    let write_thread = std::thread::spawn(move || {
        let _ = writer.write_all(&request);
        let _ = writer.flush();
    });
    let result = read_response(&mut stream, head, deadline);
    // Unblock a writer stuck on a server that stopped reading.
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = write_thread.join();
    result
}

fn read_response(
    stream: &mut TcpStream,
    head: bool,
    deadline: Instant,
) -> Result<RawResponse, String> {
    let mut buf: Vec<u8> = Vec::new();
    let mut eof = false;
    loop {
        // Head
        let head_end = loop {
            if let Some(pos) = find(&buf, b"\r\n\r\n") {
                break pos + 4;
            }
            if eof {
                return Err(format!(
                    "connection closed before a full response head; got {:?}",
                    String::from_utf8_lossy(&buf)
                ));
            }
            eof = fill(stream, &mut buf, deadline)?;
        };
        let head_text = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head_text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        buf.drain(..head_end);
        if (100..200).contains(&status) {
            continue;
        }
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let body = if head || status == 204 || status == 304 {
            Vec::new()
        } else if get("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
        {
            read_chunked(stream, &mut buf, deadline, &mut eof)?
        } else if let Some(len) = get("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| format!("bad content-length {len:?}"))?;
            while buf.len() < len {
                if eof {
                    return Err(format!("body ended at {} of {len} bytes", buf.len()));
                }
                eof = fill(stream, &mut buf, deadline)?;
            }
            buf[..len].to_vec()
        } else {
            while !eof {
                eof = fill(stream, &mut buf, deadline)?;
            }
            std::mem::take(&mut buf)
        };
        return Ok(RawResponse {
            status,
            headers,
            body,
        });
    }
}

/// Send `request` on an open connection and read one response (skipping
/// 1xx), leaving the connection open: for keep-alive sequences.
pub fn exchange_on(
    stream: &mut TcpStream,
    request: &[u8],
    head: bool,
) -> Result<RawResponse, String> {
    let deadline = Instant::now() + RAW_TIMEOUT;
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(request)
        .map_err(|e| format!("write request: {e}"))?;
    read_response(stream, head, deadline)
}

/// [`raw_exchange`] for a non-HEAD request, panicking on failure.
pub fn raw_request(addr: SocketAddr, request: &[u8]) -> RawResponse {
    raw_exchange(addr, request, false).unwrap_or_else(|e| panic!("raw request failed: {e}"))
}

/// Read once more into `buf`; returns true at EOF. Errors past the deadline.
fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> Result<bool, String> {
    if Instant::now() >= deadline {
        return Err(format!(
            "timed out after {RAW_TIMEOUT:?}; got {:?}",
            String::from_utf8_lossy(buf)
        ));
    }
    let mut chunk = [0u8; 16 * 1024];
    match stream.read(&mut chunk) {
        Ok(0) => Ok(true),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(true),
        Err(e) => Err(format!(
            "read error {e}; got {:?}",
            String::from_utf8_lossy(buf)
        )),
    }
}

fn read_chunked(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
    eof: &mut bool,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(pos) = find(buf, b"\r\n") {
                break pos;
            }
            if *eof {
                return Err("chunked body ended early".into());
            }
            *eof = fill(stream, buf, deadline)?;
        };
        let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        buf.drain(..line_end + 2);
        if size == 0 {
            // Trailers until an empty line; tolerate a peer that just closes.
            loop {
                if let Some(pos) = find(buf, b"\r\n") {
                    let empty = pos == 0;
                    buf.drain(..pos + 2);
                    if empty {
                        return Ok(body);
                    }
                    continue;
                }
                if *eof {
                    return Ok(body);
                }
                *eof = fill(stream, buf, deadline)?;
            }
        }
        while buf.len() < size + 2 {
            if *eof {
                return Err("chunk ended early".into());
            }
            *eof = fill(stream, buf, deadline)?;
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
