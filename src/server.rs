//! Listeners: TCP (HTTP/1.1 and h2c), TLS (optionally mTLS, ALPN h2 and
//! http/1.1) or a unix socket, each connection behind the HTTP/1 head guard
//! and served by hyper-util's auto builder; the admin listener; graceful
//! drain on SIGTERM/SIGINT.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio_rustls::TlsAcceptor;

use crate::body::{self, ProxyBody};
use crate::config::{Config, Listen, TlsPaths};
use crate::h1guard::{GuardState, Guarded, MAX_HEAD_BYTES, MAX_HEADERS};
use crate::proxy::{self, ConnInfo, Gateway};

/// hyper's own limits sit just above the head guard's, which answers first.
const MAX_HEADER_BYTES: usize = MAX_HEAD_BYTES + 1024;
/// HTTP/2 streams a caller may have open on one connection.
const MAX_CONCURRENT_STREAMS: u32 = 100;
/// Streams a caller may open and reset before the connection is closed
/// (the "rapid reset" attack, CVE-2023-44487).
const MAX_PENDING_RESETS: usize = 20;
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Runs bcgate until SIGTERM or SIGINT, then drains.
pub async fn run(config: Config) -> Result<(), String> {
    let config = Arc::new(config);
    let gateway = Arc::new(Gateway::new(config.clone())?);
    let tls = config.server.tls.as_ref().map(tls_acceptor).transpose()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = Listener::bind(&config.server.listen).await?;
    println!(
        "bcgate: proxy listening on {scheme}://{}",
        listener.describe()
    );
    let admin = match &config.admin {
        Some(Listen::Tcp(addr)) => {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| format!("admin.listen {addr}: {e}"))?;
            let local = l.local_addr().map_err(|e| e.to_string())?;
            println!("bcgate: admin listening on http://{local}");
            Some(l)
        }
        Some(Listen::Unix(_)) => return Err("admin.listen: only ip:port is supported".into()),
        None => None,
    };
    crate::metrics::describe();

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.server.header_read_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS + 1);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(MAX_HEADER_BYTES).unwrap_or(u32::MAX))
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_pending_accept_reset_streams(MAX_PENDING_RESETS)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());

    if let Some(admin) = admin {
        tokio::spawn(serve_admin(admin, builder.clone()));
    }
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (io, local) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let guard = Arc::new(GuardState::default());
                let conn = ConnInfo { local, guard: guard.clone() };
                let gw = gateway.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                let tls = tls.clone();
                let header_timeout = config.server.header_read_timeout;
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let gw = gw.clone();
                        let conn = conn.clone();
                        async move { Ok::<_, Infallible>(proxy::handle(gw, conn, req).await) }
                    });
                    match (io, tls) {
                        (Io::Tcp(s), Some(acceptor)) => {
                            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(s)).await {
                                Ok(Ok(s)) => serve(&builder, Guarded::new(s, guard, header_timeout), svc, watcher).await,
                                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                                Err(_) => tracing::debug!("TLS handshake timed out"),
                            }
                        }
                        (Io::Tcp(s), None) => serve(&builder, Guarded::new(s, guard, header_timeout), svc, watcher).await,
                        (Io::Unix(s), _) => serve(&builder, Guarded::new(s, guard, header_timeout), svc, watcher).await,
                    }
                });
            }
        }
    }
    tracing::info!("shutting down: draining in-flight requests");
    drop(listener);
    if tokio::time::timeout(DRAIN_DEADLINE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain deadline passed; closing remaining connections");
    }
    Ok(())
}

async fn serve<I, S>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    svc: S,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            Request<Incoming>,
            Response = Response<ProxyBody>,
            Error = Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let conn = builder.serve_connection(TokioIo::new(io), svc).into_owned();
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

enum Io {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, std::path::PathBuf),
}

impl Listener {
    async fn bind(listen: &Listen) -> Result<Self, String> {
        match listen {
            Listen::Tcp(addr) => TcpListener::bind(addr)
                .await
                .map(Listener::Tcp)
                .map_err(|e| format!("server.listen {addr}: {e}")),
            Listen::Unix(path) => {
                // A stale socket file from an earlier run would make bind fail.
                if std::fs::symlink_metadata(path).is_ok_and(|m| {
                    use std::os::unix::fs::FileTypeExt;
                    m.file_type().is_socket()
                }) {
                    let _ = std::fs::remove_file(path);
                }
                UnixListener::bind(path)
                    .map(|l| Listener::Unix(l, path.clone()))
                    .map_err(|e| format!("server.listen unix:{}: {e}", path.display()))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Tcp(l) => l
                .local_addr()
                .map_or_else(|e| e.to_string(), |a| a.to_string()),
            Self::Unix(_, p) => format!("unix:{}", p.display()),
        }
    }

    async fn accept(&self) -> std::io::Result<(Io, Option<std::net::SocketAddr>)> {
        match self {
            Self::Tcp(l) => {
                let (s, _) = l.accept().await?;
                let _ = s.set_nodelay(true);
                let local = s.local_addr().ok();
                Ok((Io::Tcp(s), local))
            }
            Self::Unix(l, _) => Ok((Io::Unix(l.accept().await?.0), None)),
        }
    }
}

fn tls_acceptor(paths: &TlsPaths) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&paths.cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("server.tls.cert {}: {e}", paths.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&paths.key)
        .map_err(|e| format!("server.tls.key {}: {e}", paths.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &paths.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("server.tls.client_ca {}: {e}", ca.display()))?
            {
                roots
                    .add(cert)
                    .map_err(|e| format!("server.tls.client_ca: {e}"))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("server.tls.client_ca: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("server.tls: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

/// `/healthz` (the process answers) and `/readyz` (config loaded and serving).
async fn serve_admin(listener: TcpListener, builder: Arc<auto::Builder<TokioExecutor>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let builder = builder.clone();
        tokio::spawn(async move {
            let svc = service_fn(|req: Request<Incoming>| async move {
                let (status, text) = match req.uri().path() {
                    "/healthz" | "/readyz" => (StatusCode::OK, "ok\n"),
                    _ => (StatusCode::NOT_FOUND, "not found\n"),
                };
                let mut resp = Response::new(body::full(text));
                *resp.status_mut() = status;
                Ok::<_, Infallible>(resp)
            });
            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers bcgate still serves; it just cannot drain.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
