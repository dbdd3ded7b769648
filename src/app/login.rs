//! The code exchange: an `/auth` callback's code traded for the store's
//! token at BigCommerce's login server, over a client that trusts the
//! upstream's roots.

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::config::{App, Upstream as UpstreamConfig};
use crate::secret::StoreToken;
use crate::token_store::User;

/// Largest answer of the login server bcgate reads.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;

/// The HTTPS client for the code exchange, trusting the upstream's roots.
#[derive(Debug, Clone)]
pub struct Login {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: std::time::Duration,
}

impl Login {
    pub fn new(upstream: &UpstreamConfig) -> Result<Self, String> {
        let tls = crate::forward::tls_config(upstream)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(upstream.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .build(https);
        Ok(Self {
            client,
            timeout: upstream.request_timeout,
        })
    }
}

/// What BigCommerce's `/oauth2/token` answers.
#[derive(Deserialize)]
pub(super) struct Grant {
    #[serde(deserialize_with = "token")]
    pub(super) access_token: StoreToken,
    pub(super) scope: String,
    pub(super) user: GrantUser,
    pub(super) owner: GrantUser,
    pub(super) context: String,
    pub(super) account_uuid: Option<String>,
}

fn token<'de, D: serde::Deserializer<'de>>(d: D) -> Result<StoreToken, D::Error> {
    let raw = Zeroizing::new(String::deserialize(d)?);
    StoreToken::new(&raw).map_err(serde::de::Error::custom)
}

#[derive(Deserialize)]
pub(super) struct GrantUser {
    id: u64,
    pub(super) email: String,
}

impl From<GrantUser> for User {
    fn from(u: GrantUser) -> Self {
        Self {
            id: u.id,
            email: u.email,
        }
    }
}

/// Why a code could not be exchanged; never contains the code or a token.
pub(super) enum ExchangeError {
    Unreachable(String),
    Refused(StatusCode),
    BadAnswer(&'static str),
}

impl std::fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(why) => write!(f, "the login server could not be reached ({why})"),
            Self::Refused(status) => write!(
                f,
                "the login server refused the code (HTTP {}); it may have expired or been used already",
                status.as_u16()
            ),
            Self::BadAnswer(why) => write!(f, "the login server's answer was not usable: {why}"),
        }
    }
}

pub(super) async fn exchange(
    login: &Login,
    app: &App,
    code: &str,
    scope: &str,
    context: &str,
) -> Result<Grant, ExchangeError> {
    let form = Zeroizing::new(
        form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &app.client_id)
            .append_pair("client_secret", app.client_secret.expose())
            .append_pair("code", code)
            .append_pair("scope", scope)
            .append_pair("grant_type", "authorization_code")
            .append_pair("redirect_uri", &app.redirect_uri)
            .append_pair("context", context)
            .finish(),
    );
    let req = Request::post(app.token_url.clone())
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        )
        .header(header::ACCEPT, HeaderValue::from_static("application/json"))
        .body(Full::new(Bytes::copy_from_slice(form.as_bytes())))
        .map_err(|_| ExchangeError::Unreachable("bad request".into()))?;
    let send = async {
        let resp = login
            .client
            .request(req)
            .await
            .map_err(|e| ExchangeError::Unreachable(crate::forward::describe(&e)))?;
        let status = resp.status();
        let bytes = Limited::new(resp.into_body(), MAX_TOKEN_RESPONSE)
            .collect()
            .await
            .map_err(|_| ExchangeError::BadAnswer("the body could not be read or was too large"))?
            .to_bytes();
        let bytes = Zeroizing::new(bytes.to_vec());
        if !status.is_success() {
            return Err(ExchangeError::Refused(status));
        }
        serde_json::from_slice::<Grant>(&bytes)
            .map_err(|_| ExchangeError::BadAnswer("not the JSON of a token grant"))
    };
    tokio::time::timeout(login.timeout, send)
        .await
        .map_err(|_| ExchangeError::Unreachable("timed out".into()))?
}
