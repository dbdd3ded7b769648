//! Connections to the one upstream: idle HTTP/1.1 connections reused
//! last-in first-out, or a single shared HTTP/2 connection when ALPN picks h2.
//!
//! bcgate has exactly one origin, so it needs none of a general client's
//! machinery (hyper-util's pool hashes the origin and clones URIs per request,
//! and spawns a task per response to put the connection back once it is
//! ready). Here the response body hands its connection back when it ends.
//! HTTP/2 runs on hyper's client; HTTP/1.1 on [`h1`], driven by the request.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::h1;
use crate::body::{BoxError, ProxyBody};

/// How long an idle connection is kept for reuse (hyper-util's default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Why a request did not get a response head.
#[derive(Debug)]
pub enum SendError {
    /// TCP connect failed or took longer than the connect timeout.
    Connect(std::io::Error),
    /// The TLS handshake failed (a certificate, or the peer hung up).
    Tls(std::io::Error),
    /// HTTP on an established connection (reset, malformed answer).
    Http(BoxError),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "cannot connect to the upstream: {e}"),
            Self::Tls(e) => write!(f, "TLS with the upstream failed: {e}"),
            Self::Http(e) => write!(f, "the upstream connection failed: {e}"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect(e) | Self::Tls(e) => Some(e),
            Self::Http(e) => Some(e.as_ref()),
        }
    }
}

impl SendError {
    /// The `kind` label of `bcgate_upstream_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connect(_) => "connect",
            Self::Tls(e) if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) => "tls",
            Self::Tls(_) => "connect",
            Self::Http(_) => "protocol",
        }
    }
}

pub struct Pool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("host", &self.inner.host)
            .field("port", &self.inner.port)
            .finish_non_exhaustive()
    }
}

struct Inner {
    tls: TlsConnector,
    server_name: ServerName<'static>,
    host: String,
    port: u16,
    connect_timeout: Duration,
    idle: Mutex<Idle>,
}

#[derive(Default)]
struct Idle {
    /// Newest at the back: the warmest connection goes out first.
    h1: VecDeque<(h1::Conn, Instant)>,
    h2: Option<http2::SendRequest<ProxyBody>>,
}

enum Conn {
    H1(h1::Conn),
    H2(http2::SendRequest<ProxyBody>),
}

impl Pool {
    pub fn new(
        mut tls: rustls::ClientConfig,
        authority: &http::uri::Authority,
        connect_timeout: Duration,
    ) -> Result<Self, String> {
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|e| format!("upstream host {host}: {e}"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                tls: TlsConnector::from(Arc::new(tls)),
                server_name,
                host: host.to_owned(),
                port: authority.port_u16().unwrap_or(443),
                connect_timeout,
                idle: Mutex::new(Idle::default()),
            }),
        })
    }

    /// Sends `req` (its URI in absolute form) on a pooled or new connection.
    pub async fn send(
        &self,
        mut req: Request<ProxyBody>,
    ) -> Result<Response<PooledBody>, SendError> {
        loop {
            let (conn, fresh) = match self.checkout().await {
                Some(conn) => (conn, false),
                // Boxed: hyper keeps each connection's request future allocated
                // between requests, so the rare TLS connect must not size it.
                None => (Box::pin(self.inner.connect()).await?, true),
            };
            match conn {
                Conn::H2(mut tx) => {
                    return match tx.try_send_request(req).await {
                        Ok(resp) => Ok(resp.map(PooledBody::H2)),
                        Err(mut e) => match e.take_message() {
                            // Not sent: a pooled connection went away first; try
                            // another (a new one that fails so is an answer).
                            Some(back) if !fresh => {
                                req = back;
                                continue;
                            }
                            _ => Err(SendError::Http(Box::new(e.into_error()))),
                        },
                    };
                }
                Conn::H1(conn) => {
                    // The origin form goes on the request line; Host is set by the rewrite stage.
                    let home: Arc<dyn h1::Recycle> = self.inner.clone();
                    return match conn.send(req, home).await {
                        Ok(resp) => Ok(resp.map(PooledBody::H1)),
                        Err(e) => Err(SendError::Http(Box::new(e))),
                    };
                }
            }
        }
    }

    /// Opens a connection and leaves it idle for the first request: the
    /// start-up check that the upstream answers as requests need it (TCP,
    /// TLS verified, ALPN) without adding a connection of its own.
    pub async fn warm(&self) -> Result<(), SendError> {
        match self.inner.connect().await? {
            // `connect` keeps an HTTP/2 connection idle itself.
            Conn::H2(_) => {}
            Conn::H1(conn) => h1::Recycle::recycle(&*self.inner, conn),
        }
        Ok(())
    }

    /// A live connection ready for a request, if one is idle.
    async fn checkout(&self) -> Option<Conn> {
        loop {
            let candidate = {
                let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(h2) = &idle.h2 {
                    if !h2.is_closed() {
                        return Some(Conn::H2(h2.clone()));
                    }
                    idle.h2 = None;
                }
                idle.h1.pop_back()?
            };
            let (mut conn, since) = candidate;
            // Closed by the upstream while idle (it was never sent this request).
            if since.elapsed() <= IDLE_TIMEOUT && conn.is_usable() {
                return Some(Conn::H1(conn));
            }
        }
    }
}

impl Inner {
    async fn connect(self: &Arc<Self>) -> Result<Conn, SendError> {
        let tcp = tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| {
            SendError::Connect(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "no connection within {} ms",
                    self.connect_timeout.as_millis()
                ),
            ))
        })?
        .map_err(SendError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .tls
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(SendError::Tls)?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(tls);
        if h2 {
            let (tx, conn) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(io)
                .await
                .map_err(|e| SendError::Http(Box::new(e)))?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "upstream h2 connection ended");
                }
            });
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.h2 = Some(tx.clone());
            Ok(Conn::H2(tx))
        } else {
            Ok(Conn::H1(h1::Conn::new(io.into_inner())))
        }
    }
}

impl h1::Recycle for Inner {
    fn recycle(&self, conn: h1::Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.h1.push_back((conn, Instant::now()));
    }
}

/// An upstream response body: HTTP/1.1 bodies hand their connection back
/// to the pool once read to the end ([`h1::ResponseBody`]).
#[derive(Debug)]
pub enum PooledBody {
    H1(h1::ResponseBody),
    H2(Incoming),
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::H1(b) => Pin::new(b).poll_frame(cx),
            Self::H2(b) => Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::H1(b) => b.is_end_stream(),
            Self::H2(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::H1(b) => b.size_hint(),
            Self::H2(b) => b.size_hint(),
        }
    }
}
