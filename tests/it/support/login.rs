//! A mock BigCommerce login server (`/oauth2/token`) over HTTPS, for the
//! app install flow's code exchange.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use super::TestCa;

/// What the mock login server answers to `/oauth2/token`.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

#[derive(Debug, Default)]
pub struct LoginState {
    pub answer: Mutex<Option<Answer>>,
    /// Every form received, as name → value.
    pub forms: Mutex<Vec<HashMap<String, String>>>,
    pub paths: Mutex<Vec<String>>,
}

/// A small HTTPS server answering `/oauth2/token` like BigCommerce's login
/// server, on its own thread and runtime.
pub struct MockLogin {
    pub addr: std::net::SocketAddr,
    pub state: Arc<LoginState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockLogin {
    pub fn start(ca: &TestCa) -> Self {
        let tls = ca.server_config(&["127.0.0.1", "localhost"], &[b"http/1.1"]);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind login");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("login addr");
        let state = Arc::new(LoginState::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("login runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("register");
                let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                let mut rx = rx;
                loop {
                    tokio::select! {
                        _ = &mut rx => break,
                        accepted = listener.accept() => {
                            let Ok((tcp, _)) = accepted else { continue };
                            let acceptor = acceptor.clone();
                            let st = st.clone();
                            tokio::spawn(async move {
                                let Ok(tls) = acceptor.accept(tcp).await else { return };
                                let svc = hyper::service::service_fn(move |req| {
                                    let st = st.clone();
                                    async move { Ok::<_, Infallible>(answer(&st, req).await) }
                                });
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                                    .await;
                            });
                        }
                    }
                }
            });
        });
        Self {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn answer(&self, status: u16, body: String) {
        *self.state.answer.lock().expect("lock") = Some(Answer { status, body });
    }

    /// Answer like BigCommerce does for a successful exchange.
    pub fn grant(&self, hash: &str, token: &str, scopes: &str) {
        self.answer(200, grant_json(hash, token, scopes));
    }

    pub fn forms(&self) -> Vec<HashMap<String, String>> {
        self.state.forms.lock().expect("lock").clone()
    }
}

impl Drop for MockLogin {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn grant_json(hash: &str, token: &str, scopes: &str) -> String {
    serde_json::json!({
        "access_token": token,
        "scope": scopes,
        "user": {"id": 24654, "username": "installer@example.com", "email": "installer@example.com"},
        "owner": {"id": 24654, "username": "owner@example.com", "email": "owner@example.com"},
        "context": format!("stores/{hash}"),
        "account_uuid": "a7b1c3d4-0000-4000-8000-000000000001"
    })
    .to_string()
}

async fn answer(
    st: &LoginState,
    req: http::Request<hyper::body::Incoming>,
) -> http::Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    st.paths.lock().expect("lock").push(path.clone());
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    st.forms.lock().expect("lock").push(form);
    let a = st.answer.lock().expect("lock").clone().unwrap_or(Answer {
        status: 500,
        body: "{}".into(),
    });
    let (status, text) = if path == "/oauth2/token" {
        (a.status, a.body)
    } else {
        (404, "{}".into())
    };
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(text)))
        .expect("response")
}
