//! Listeners: TCP (HTTP/1.1 and h2c), TLS (optionally mTLS, ALPN h2 and
//! http/1.1) or a unix socket, each connection behind the HTTP/1 head guard
//! and served by hyper-util's auto builder; the admin listener (`/metrics`,
//! `/healthz`, `/readyz`); reload on SIGHUP or file change; graceful drain
//! on SIGTERM/SIGINT.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};

use crate::body::{self, ProxyBody};
use crate::config::{Config, Listen};
use crate::h1guard::{GuardState, Guarded, MAX_HEAD_BYTES, MAX_HEADERS};
use crate::identify::Peer;
use crate::learn::SHUTDOWN_FLUSH_LIMIT;
use crate::live::Live;
use crate::overload::InFlightLimit;
use crate::proxy::{self, ConnInfo};

/// hyper's own limits sit just above the head guard's, which answers first.
const MAX_HEADER_BYTES: usize = MAX_HEAD_BYTES + 1024;
/// HTTP/2 streams a caller may have open on one connection.
const MAX_CONCURRENT_STREAMS: u32 = 100;
/// Streams a caller may open and reset before the connection is closed
/// (the "rapid reset" attack, CVE-2023-44487).
const MAX_PENDING_RESETS: usize = 20;
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How much longer than the head timeout an idle HTTP/1 connection may sit
/// before the backstop closes it (its guard closes it at the head timeout).
const H1_IDLE_GRACE: Duration = Duration::from_secs(1);

/// Runs bcgate until SIGTERM or SIGINT, then drains.
pub async fn run(config: Config) -> Result<(), String> {
    bind(config).await?.serve().await
}

/// Binds the listeners and starts watching the config, without serving yet
/// (so `bcgate dev` can print what to send to the addresses actually bound).
pub async fn bind(config: Config) -> Result<Bound, String> {
    let metrics = crate::metrics::install()?;
    let open_files = raise_open_files_limit();
    let live = Arc::new(Live::new(config)?);
    log_loaded(&live.state());
    let config = live.state().config.clone();
    let listener = Listener::bind(&config.server.listen, config.server.listen_backlog)?;
    let max_connections = connection_limit(config.server.max_connections, open_files);
    let admin = match &config.admin {
        Some(Listen::Tcp(addr)) => {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| format!("admin.listen {addr}: {e}"))?;
            let local = l.local_addr().map_err(|e| e.to_string())?;
            crate::log::announce("admin", &format!("http://{local}"));
            Some((l, local))
        }
        Some(Listen::Unix(_)) => return Err("admin.listen: only ip:port is supported".into()),
        None => None,
    };
    let app = match &config.app {
        Some(app) => {
            let l = TcpListener::bind(app.listen)
                .await
                .map_err(|e| format!("app.listen {}: {e}", app.listen))?;
            let local = l.local_addr().map_err(|e| e.to_string())?;
            let scheme = if app.tls.is_some() { "https" } else { "http" };
            crate::log::announce("app callbacks", &format!("{scheme}://{local}"));
            Some(l)
        }
        None => None,
    };
    crate::reload::spawn(live.clone());
    Ok(Bound {
        live,
        listener,
        admin,
        app,
        metrics,
        max_connections,
    })
}

/// Raises the soft open-files limit to the hard one (the soft default, often
/// 1024, is what runs out first under many connections); returns the limit
/// in force.
fn raise_open_files_limit() -> Option<u64> {
    let (soft, hard) = rlimit::Resource::NOFILE.get().ok()?;
    if soft >= hard {
        return Some(soft);
    }
    match rlimit::Resource::NOFILE.set(hard, hard) {
        Ok(()) => {
            tracing::debug!(from = soft, to = hard, "open-files limit raised");
            Some(hard)
        }
        Err(e) => {
            tracing::warn!(error = %e, soft, hard, "could not raise the open-files limit");
            Some(soft)
        }
    }
}

/// `server.max_connections`, lowered when the open-files limit could not
/// hold that many with a reserve (a quarter of the limit, at most 256) for
/// upstream connections, listeners and files.
fn connection_limit(configured: usize, open_files: Option<u64>) -> usize {
    let fits = open_files.map_or(usize::MAX, |n| {
        usize::try_from(n - (n / 4).min(256)).unwrap_or(usize::MAX)
    });
    let limit = configured.min(fits).max(1);
    if limit < configured {
        tracing::warn!(
            configured,
            limit,
            open_files = open_files.unwrap_or(0),
            "server.max_connections lowered to fit the open-files limit"
        );
    }
    crate::metrics::connection_limit(limit);
    limit
}

/// The listeners, bound, and the config, watched; [`serve`](Self::serve) runs them.
pub struct Bound {
    live: Arc<Live>,
    listener: Listener,
    admin: Option<(TcpListener, std::net::SocketAddr)>,
    app: Option<TcpListener>,
    metrics: PrometheusHandle,
    max_connections: usize,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("proxy", &self.proxy_url())
            .field("admin", &self.admin_url())
            .finish_non_exhaustive()
    }
}

impl Bound {
    /// `http://ADDR` or `https://ADDR` (`http://unix:/path` on a unix socket).
    pub fn proxy_url(&self) -> String {
        let scheme = if self.live.state().config.server.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.listener.describe())
    }

    /// `http://ADDR` of the admin listener, if there is one.
    pub fn admin_url(&self) -> Option<String> {
        self.admin
            .as_ref()
            .map(|(_, addr)| format!("http://{addr}"))
    }

    /// Serves until SIGTERM or SIGINT, then drains.
    pub async fn serve(self) -> Result<(), String> {
        serve_bound(self).await
    }
}

async fn serve_bound(bound: Bound) -> Result<(), String> {
    crate::log::start_flusher();
    check_upstream(&bound.live).await;
    // Once it is out, every listener is bound and the config watched.
    crate::log::announce("proxy", &bound.proxy_url());
    log_next_steps(&bound);
    let Bound {
        live,
        listener,
        admin,
        app,
        metrics,
        max_connections,
    } = bound;
    live.state().learn.spawn_flusher();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The head guard times every head and answers 408; hyper's own timer
        // would close the connection silently.
        .header_read_timeout(None)
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
    // Connections hold a receiver: `true` asks them to finish; the sender's
    // `closed` tells when the last one has.
    let (drain_tx, drain_rx) = tokio::sync::watch::channel(false);
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let max_in_flight = live.state().config.server.max_in_flight;
    crate::metrics::in_flight_limit(max_in_flight);
    let in_flight = InFlightLimit::new(max_in_flight);
    let mut accept_errors = AcceptErrors::default();
    let mut shutdown = std::pin::pin!(shutdown_signal());

    if let Some((admin, _)) = admin {
        tokio::spawn(serve_admin(admin, builder.clone(), live.clone(), metrics));
    }
    if let Some(app) = app {
        tokio::spawn(serve_app(app, builder.clone(), live.clone()));
    }
    let mut at_limit = false;
    loop {
        // A connection is accepted only with a free slot: past the limit,
        // new connections wait in the listen backlog, holding no descriptor.
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                at_limit = false;
                slot
            }
            Err(_) => {
                crate::metrics::connection_limit_wait();
                if !at_limit {
                    at_limit = true;
                    tracing::warn!(
                        max_connections,
                        "connection limit reached; new connections wait until one closes"
                    );
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                }
            }
        };
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (io, local) = match accepted {
                    Ok(x) => {
                        accept_errors.recovered();
                        x
                    }
                    Err(e) => {
                        let pause = accept_errors.failed(&e);
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(pause) => {}
                        }
                        continue;
                    }
                };
                let open = crate::metrics::connection_opened("proxy");
                let gw = live.clone();
                let in_flight = in_flight.clone();
                let builder = builder.clone();
                let drain = drain_rx.clone();
                // TLS material and timeouts as of now: a reload may have rotated them.
                let state = live.state();
                let tls = state.tls.clone();
                let header_timeout = state.config.server.header_read_timeout;
                drop(state);
                tokio::spawn(async move {
                    let _open = open;
                    let _slot = slot;
                    let guard = Arc::new(GuardState::default());
                    let conn_state = guard.clone();
                    let service = |peer: Peer| {
                        let conn = ConnInfo { local, guard: guard.clone(), peer: Arc::new(peer) };
                        let live = {
                            let gw = gw.clone();
                            move || gw.state()
                        };
                        let proxy = proxy::Service::new(live, conn);
                        tower::ServiceBuilder::new().layer(in_flight.clone()).service(proxy)
                    };
                    match (io, tls) {
                        (Io::Tcp(s), Some(acceptor)) => {
                            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(s)).await {
                                Ok(Ok(s)) => {
                                    let peer = Peer {
                                        uid: None,
                                        tls_subject: crate::tls::peer_subject(s.get_ref().1),
                                    };
                                    let svc = service(peer);
                                    serve(&builder, Guarded::new(s, guard, header_timeout), svc, drain, &conn_state, header_timeout).await;
                                }
                                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                                Err(_) => tracing::debug!("TLS handshake timed out"),
                            }
                        }
                        (Io::Tcp(s), None) => {
                            let svc = service(Peer::default());
                            serve(&builder, Guarded::new(s, guard, header_timeout), svc, drain, &conn_state, header_timeout).await;
                        }
                        (Io::Unix(s), _) => {
                            let peer = Peer {
                                uid: s.peer_cred().ok().map(|c| c.uid()),
                                tls_subject: None,
                            };
                            let svc = service(peer);
                            serve(&builder, Guarded::new(s, guard, header_timeout), svc, drain, &conn_state, header_timeout).await;
                        }
                    }
                });
            }
        }
    }
    let deadline = live.state().config.server.drain_timeout;
    tracing::info!(
        deadline_ms = deadline.as_millis() as u64,
        "shutting down: draining in-flight requests"
    );
    drop(listener);
    let _ = drain_tx.send(true);
    drop(drain_rx);
    if tokio::time::timeout(deadline, drain_tx.closed())
        .await
        .is_err()
    {
        tracing::warn!("drain deadline passed; closing remaining connections");
    }
    // What learn mode saw since the last periodic write.
    let learn = live.state().learn.clone();
    if tokio::time::timeout(SHUTDOWN_FLUSH_LIMIT, learn.flush_in_background())
        .await
        .is_err()
    {
        tracing::warn!("the observations were not written within {SHUTDOWN_FLUSH_LIMIT:?}");
    }
    crate::log::flush();
    Ok(())
}

/// What was loaded, so a first run shows whether bcgate read the file meant.
fn log_loaded(state: &crate::state::State) {
    let config = &state.config;
    let source = config
        .path
        .as_ref()
        .map_or_else(|| "(in memory)".to_owned(), |p| p.display().to_string());
    let stores: Vec<String> = config
        .stores
        .iter()
        .map(|s| match &s.alias {
            Some(alias) => format!("{} ({alias})", s.hash),
            None => s.hash.clone(),
        })
        .collect();
    let clients: Vec<&str> = config.clients.iter().map(|c| c.name.as_str()).collect();
    let installed = state
        .installs
        .as_ref()
        .map(|i| i.store().list().len() as u64);
    let operator_routes = config
        .policy
        .routes
        .iter()
        .filter(|r| r.origin == crate::policy::Origin::Operator)
        .count() as u64;
    tracing::info!(
        target: "bcgate::server",
        config = %source,
        stores = %stores.join(", "),
        clients = %clients.join(", "),
        installed_stores = installed,
        operator_routes,
        "config loaded: {}, {}",
        counted(stores.len(), "store"),
        counted(clients.len(), "client")
    );
    if clients.is_empty() {
        tracing::warn!(
            target: "bcgate::server",
            "no [[clients]]: every request is refused (401 unauthenticated) until one is \
             configured; `bcgate keygen` makes a key and its key_sha256"
        );
    }
    if stores.is_empty() && state.installs.is_none() {
        tracing::warn!(
            target: "bcgate::server",
            "no [[stores]] and no [token_store]: every request is refused (404 store_unknown)"
        );
    }
}

/// `1 store`, `2 stores`.
fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Where to send the first request, once the listeners are bound.
fn log_next_steps(bound: &Bound) {
    let state = bound.live.state();
    let store = state
        .config
        .stores
        .iter()
        .next()
        .map_or("{store_hash}", |s| s.alias.as_deref().unwrap_or(&s.hash));
    let try_it = match &bound.listener {
        Listener::Unix(_, path) => format!(
            "--unix-socket {} http://localhost/stores/{store}/v3/catalog/products",
            path.display()
        ),
        Listener::Tcp(_) => format!("{}/stores/{store}/v3/catalog/products", bound.proxy_url()),
    };
    let ready = bound
        .admin_url()
        .map_or("no [admin] listener, so no /readyz".to_owned(), |a| {
            format!("readiness: {a}/readyz")
        });
    tracing::info!(
        target: "bcgate::server",
        "next: a client sends its key in X-Auth-Token (or Authorization: Bearer), e.g. \
         curl -H 'X-Auth-Token: KEY' {try_it}; `bcgate explain METHOD PATH` shows who may \
         send a request; {ready}"
    );
}

/// Longest the start waits for the first upstream connection.
const UPSTREAM_WARM_LIMIT: Duration = Duration::from_secs(2);

/// Opens the first upstream connection (kept for the first request) and
/// warns when it fails: otherwise the first sign would be a caller's 502.
async fn check_upstream(live: &Live) {
    let state = live.state();
    let within = state
        .config
        .upstream
        .connect_timeout
        .min(UPSTREAM_WARM_LIMIT);
    if let Err(why) = state.upstreams.api.warm(within).await {
        tracing::warn!(
            target: "bcgate::server",
            upstream = %state.config.upstream.base_url,
            error = %why,
            "the upstream cannot be reached: requests get 502 upstream_unavailable until it \
             can (check upstream.base_url, upstream.ca_file, DNS and the network)"
        );
    }
}

/// Serves one connection until it ends: asked to finish by the drain, or
/// closed once idle for `idle` (an HTTP/2 connection has no head timer of
/// hyper's; an HTTP/1 one is timed by its guard first, this is a backstop).
async fn serve<I, S>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    svc: S,
    mut drain: tokio::sync::watch::Receiver<bool>,
    state: &GuardState,
    idle: Duration,
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
    state.start_idle_clock();
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    // After an idle close starts: HTTP/2's GOAWAY waits for the peer's PING
    // answer, which a peer may never send.
    let mut force_close: Option<Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = drain.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            kind = state.idle_for(idle, H1_IDLE_GRACE), if !closing => {
                closing = true;
                crate::metrics::idle_connection_closed(kind.as_str());
                conn.as_mut().graceful_shutdown();
                force_close = Some(Box::pin(tokio::time::sleep(idle.max(H1_IDLE_GRACE))));
            }
            () = async {
                match force_close.as_mut() {
                    Some(sleep) => sleep.await,
                    None => std::future::pending().await,
                }
            }, if force_close.is_some() => {
                tracing::debug!("idle connection did not close in time; dropped");
                return;
            }
        }
    }
}

/// Failed accepts, counted each and logged once per run of failures, with
/// a pause that grows while they last (the usual cause, no descriptors left,
/// does not pass by retrying at once).
#[derive(Debug, Default)]
struct AcceptErrors {
    failures: u64,
}

impl AcceptErrors {
    const FIRST_PAUSE: Duration = Duration::from_millis(10);
    const MAX_PAUSE: Duration = Duration::from_secs(1);

    fn failed(&mut self, e: &std::io::Error) -> Duration {
        crate::metrics::accept_error();
        if self.failures == 0 {
            tracing::warn!(error = %e, "accept failed; pausing, further failures are only counted");
        }
        self.failures += 1;
        let doublings = u32::try_from(self.failures - 1).unwrap_or(u32::MAX).min(7);
        (Self::FIRST_PAUSE * 2u32.pow(doublings)).min(Self::MAX_PAUSE)
    }

    fn recovered(&mut self) {
        if self.failures > 0 {
            tracing::info!(failures = self.failures, "accepting connections again");
            self.failures = 0;
        }
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
    fn bind(listen: &Listen, backlog: u32) -> Result<Self, String> {
        match listen {
            Listen::Tcp(addr) => {
                let err = |e: std::io::Error| format!("server.listen {addr}: {e}");
                let socket = if addr.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()
                } else {
                    tokio::net::TcpSocket::new_v6()
                }
                .map_err(err)?;
                // As TcpListener::bind does: a restart can rebind at once.
                socket.set_reuseaddr(true).map_err(err)?;
                socket.bind(*addr).map_err(err)?;
                socket.listen(backlog).map(Listener::Tcp).map_err(err)
            }
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

/// The admin listener: `/metrics` (Prometheus), `/healthz` (the process
/// answers), `/readyz` (see [`crate::ready`]).
async fn serve_admin(
    listener: TcpListener,
    builder: Arc<auto::Builder<TokioExecutor>>,
    live: Arc<Live>,
    metrics: PrometheusHandle,
) {
    let mut errors = AcceptErrors::default();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                errors.recovered();
                stream
            }
            Err(e) => {
                tokio::time::sleep(errors.failed(&e)).await;
                continue;
            }
        };
        let open = crate::metrics::connection_opened("admin");
        let builder = builder.clone();
        let live = live.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _open = open;
            let svc = service_fn(move |req: Request<Incoming>| {
                let live = live.clone();
                let metrics = metrics.clone();
                async move {
                    let (status, content_type, text) = match req.uri().path() {
                        "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
                        "/readyz" => {
                            let report = crate::ready::check(&live).await;
                            let status = if report.ready {
                                StatusCode::OK
                            } else {
                                StatusCode::SERVICE_UNAVAILABLE
                            };
                            (status, "application/json", report.to_json())
                        }
                        "/metrics" => {
                            crate::metrics::sample_runtime();
                            (
                                StatusCode::OK,
                                "text/plain; version=0.0.4",
                                metrics.render(),
                            )
                        }
                        _ => (
                            StatusCode::NOT_FOUND,
                            "text/plain",
                            "not found\n".to_owned(),
                        ),
                    };
                    let mut resp = Response::new(body::full(text));
                    *resp.status_mut() = status;
                    resp.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static(content_type),
                    );
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

/// The app listener: BigCommerce's callbacks ([`crate::app`]), over TLS
/// when `app.tls` is set (its certificate as of each connection, so a
/// reload rotates it).
async fn serve_app(
    listener: TcpListener,
    builder: Arc<auto::Builder<TokioExecutor>>,
    live: Arc<Live>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let open = crate::metrics::connection_opened("app");
        let builder = builder.clone();
        let gw = live.clone();
        let tls = live.state().app_tls.clone();
        tokio::spawn(async move {
            let _open = open;
            let svc = service_fn(move |req: Request<Incoming>| {
                crate::app::handle(gw.state().callbacks(), req)
            });
            match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(s)) => {
                            let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "app TLS handshake failed"),
                        Err(_) => tracing::debug!("app TLS handshake timed out"),
                    }
                }
                None => {
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                }
            }
        });
    }
}

pub(crate) async fn shutdown_signal() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_limit_fits_the_open_files_limit() {
        assert_eq!(connection_limit(10_000, Some(1_048_576)), 10_000);
        assert_eq!(connection_limit(10_000, None), 10_000);
        // A quarter of the descriptors, at most 256, stays in reserve.
        assert_eq!(connection_limit(10_000, Some(1024)), 768);
        assert_eq!(connection_limit(10_000, Some(20_000)), 10_000);
        assert_eq!(connection_limit(15, Some(64)), 15);
        assert_eq!(connection_limit(100, Some(64)), 48);
        assert_eq!(connection_limit(10, Some(0)), 1);
    }

    #[test]
    fn accept_failures_back_off_to_a_second_and_reset_on_success() {
        let mut errors = AcceptErrors::default();
        let e = std::io::Error::from_raw_os_error(24);
        let pauses: Vec<_> = (0..10).map(|_| errors.failed(&e)).collect();
        assert_eq!(pauses[0], Duration::from_millis(10));
        assert_eq!(pauses[1], Duration::from_millis(20));
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]), "{pauses:?}");
        assert_eq!(pauses[9], Duration::from_secs(1));
        errors.recovered();
        assert_eq!(errors.failed(&e), Duration::from_millis(10));
    }
}
