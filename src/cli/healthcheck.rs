//! `bcgate healthcheck`: a container health probe without curl.

/// A bare HTTP/1.1 GET on loopback-style URLs: enough for a health probe,
/// and it keeps the runtime image free of curl.
pub(super) fn healthcheck(url: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let uri: http::Uri = url.parse().map_err(|_| format!("bad URL {url:?}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("healthcheck speaks plain http:// only".into());
    }
    let authority = uri.authority().ok_or("the URL names no host")?;
    let port = authority.port_u16().unwrap_or(80);
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let timeout = std::time::Duration::from_secs(3);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .map_err(|e| format!("{authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority}: no address"))?;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("{authority}: {e}"))?;
    let _ = stream.set_read_timeout(Some(timeout));
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("{authority}: {e}"))?;
    let mut head = [0u8; 12];
    stream
        .read_exact(&mut head)
        .map_err(|e| format!("{authority}: {e}"))?;
    match &head[9..12] {
        b"200" => Ok(String::new()),
        status => Err(format!(
            "{url} answered {}",
            String::from_utf8_lossy(status)
        )),
    }
}
