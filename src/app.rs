//! The BigCommerce app callbacks, on their own listener (`[app]`), and the
//! live set of installed stores the proxy consults ([`Installs`]).
//!
//! - `GET /auth?code&scope&context` — bcgate trades the code for the store's
//!   token at `app.login_url` itself, checks that the granted scopes are
//!   exactly `app.scopes`, and keeps the token in the token store: the only
//!   place a store token ever exists is inside bcgate.
//! - `GET /load`, `/uninstall`, `/remove_user` with `signed_payload_jwt` —
//!   verified strictly (HS256 with the client secret, `aud` = client id,
//!   `iss` = `bc`, `exp`/`nbf` with [`LEEWAY_SECS`] of leeway, `sub` =
//!   `stores/{hash}`); anything else is 401 with no side effect.
//!   `/uninstall` deletes the token at once; the store's next proxied request
//!   is 403 `store_uninstalled`.
//!
//! Every page is small HTML; everything echoed is escaped. No code, token,
//! client secret or signed payload is ever logged or echoed.

use std::collections::{BTreeSet, HashSet};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::body::{self, ProxyBody};
use crate::config::{App, Store, TokenStoreConfig, Upstream as UpstreamConfig};
use crate::error::ProxyError;
use crate::gateway::Gateway;
use crate::policy::Policy;
use crate::secret::StoreToken;
use crate::token_store::{Installed, OpenTokenStore, TokenStore, User, is_store_hash};

/// Clock skew allowed on a signed payload's `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 60;
/// Largest answer of the login server bcgate reads.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;

// ---------------------------------------------------------------- installs

/// The stores that installed the app: the token store, plus the stores that
/// uninstalled it while this process ran (so their requests say
/// `store_uninstalled`, not `store_unknown`). Shared by every config
/// generation that keeps the same `[token_store]`.
pub struct Installs {
    config: TokenStoreConfig,
    store: TokenStore,
    /// File backend only; the Redis backend keeps its own, which also
    /// learns of uninstalls through other replicas.
    uninstalled: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Installs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installs")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Installs {
    /// Opens the token store; a reload with the same `[token_store]` keeps
    /// `previous` and reads its file again (`bcgate tokens delete`).
    pub fn open(
        cfg: &TokenStoreConfig,
        previous: Option<&Arc<Installs>>,
    ) -> Result<Arc<Self>, String> {
        if let Some(p) = previous
            && p.config == *cfg
        {
            p.store.reread()?;
            return Ok(p.clone());
        }
        Ok(Arc::new(Self {
            config: cfg.clone(),
            store: cfg.open()?,
            uninstalled: Mutex::new(HashSet::new()),
        }))
    }

    pub fn store(&self) -> &TokenStore {
        &self.store
    }

    fn is_gone(&self, hash: &str) -> bool {
        match &self.store {
            TokenStore::Redis(r) => r.removed(hash),
            TokenStore::File(_) => self
                .uninstalled
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(hash),
        }
    }

    /// The installed store `hash` as the proxy uses it; `store_uninstalled`
    /// if it uninstalled the app since bcgate started.
    ///
    /// The uninstalled mark is asked first: it is set before the file is
    /// rewritten (and kept if that fails), and cleared only after a
    /// re-install is written.
    pub fn lookup(&self, hash: &str, policy: &Policy) -> Result<Option<Arc<Store>>, ProxyError> {
        if self.is_gone(hash) {
            return Err(ProxyError::StoreUninstalled(hash.to_owned()));
        }
        Ok(self
            .store
            .get(hash)
            .map(|inst| Arc::new(as_store(&inst, policy))))
    }

    async fn put(self: &Arc<Self>, installed: Installed) -> Result<(), String> {
        let me = self.clone();
        let hash = installed.hash.clone();
        tokio::task::spawn_blocking(move || me.store.put(installed))
            .await
            .map_err(|e| format!("the write was interrupted: {e}"))??;
        // (The Redis backend clears its own mark in `put`.)
        self.uninstalled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&hash);
        Ok(())
    }

    async fn delete(self: &Arc<Self>, hash: &str) -> Result<bool, String> {
        // Marked first: from this moment the proxy refuses the store, even
        // while the file is being rewritten.
        match &self.store {
            TokenStore::Redis(r) => r.mark_removed(hash),
            TokenStore::File(_) => {
                self.uninstalled
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(hash.to_owned());
            }
        }
        let me = self.clone();
        let h = hash.to_owned();
        tokio::task::spawn_blocking(move || me.store.delete(&h))
            .await
            .map_err(|e| format!("the write was interrupted: {e}"))?
    }
}

/// An installed store in the form the proxy uses for configured ones; its
/// granted scopes are known, so the early `scope_denied` check applies.
pub(crate) fn as_store(inst: &Installed, policy: &Policy) -> Store {
    let known = inst
        .scopes
        .iter()
        .map(String::as_str)
        .filter(|s| policy.scopes.get(s).is_some());
    Store {
        hash: inst.hash.clone(),
        alias: None,
        token: inst.token.clone(),
        token_source: "installed".into(),
        token_file: None,
        scopes: Some(inst.scopes.clone()),
        grants: policy.scopes.grants(known).ok(),
        label: format!("the token of store '{}'", inst.hash),
    }
}

// ---------------------------------------------------------------- login client

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
struct Grant {
    #[serde(deserialize_with = "token")]
    access_token: StoreToken,
    scope: String,
    user: GrantUser,
    owner: GrantUser,
    context: String,
    account_uuid: Option<String>,
}

fn token<'de, D: serde::Deserializer<'de>>(d: D) -> Result<StoreToken, D::Error> {
    let raw = Zeroizing::new(String::deserialize(d)?);
    StoreToken::new(&raw).map_err(serde::de::Error::custom)
}

#[derive(Deserialize)]
struct GrantUser {
    id: u64,
    email: String,
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
enum ExchangeError {
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

async fn exchange(
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

// ---------------------------------------------------------------- signed payloads

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    user: Option<ClaimUser>,
}

#[derive(Deserialize)]
struct ClaimUser {
    #[serde(default)]
    email: Option<String>,
}

/// Why a signed payload was refused (said on the 401 page; no secret in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtRefusal {
    Missing,
    Expired,
    NotYetValid,
    Signature,
    Algorithm,
    Audience,
    Issuer,
    Subject,
    Malformed,
}

impl JwtRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "no signed_payload_jwt was sent",
            Self::Expired => "the signed payload has expired",
            Self::NotYetValid => "the signed payload is not valid yet",
            Self::Signature => "the signature does not verify with the app's client secret",
            Self::Algorithm => "the signed payload is not HS256",
            Self::Audience => "the signed payload is for another app (aud)",
            Self::Issuer => "the signed payload was not issued by BigCommerce (iss)",
            Self::Subject => "the signed payload does not name a store (sub)",
            Self::Malformed => "the signed payload is malformed or lacks a required claim",
        }
    }
}

/// The store hash a BigCommerce `signed_payload_jwt` is for, and who sent
/// it, after strict verification.
pub fn verify_signed_payload(
    jwt: &str,
    client_id: &str,
    secret: &str,
) -> Result<(String, Option<String>), JwtRefusal> {
    use jsonwebtoken::errors::ErrorKind;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = LEEWAY_SECS;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.set_audience(&[client_id]);
    v.set_issuer(&["bc"]);
    v.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
    let data =
        jsonwebtoken::decode::<Claims>(jwt, &DecodingKey::from_secret(secret.as_bytes()), &v)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => JwtRefusal::Expired,
                ErrorKind::ImmatureSignature => JwtRefusal::NotYetValid,
                ErrorKind::InvalidSignature => JwtRefusal::Signature,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    JwtRefusal::Algorithm
                }
                ErrorKind::InvalidAudience => JwtRefusal::Audience,
                ErrorKind::InvalidIssuer => JwtRefusal::Issuer,
                ErrorKind::InvalidSubject => JwtRefusal::Subject,
                _ => JwtRefusal::Malformed,
            })?;
    // The header must say HS256 exactly (the library checks it against
    // the one allowed algorithm; this restates the rule where it is read).
    if data.header.alg != Algorithm::HS256 {
        return Err(JwtRefusal::Algorithm);
    }
    let hash = data
        .claims
        .sub
        .strip_prefix("stores/")
        .filter(|h| is_store_hash(h))
        .ok_or(JwtRefusal::Subject)?;
    Ok((hash.to_owned(), data.claims.user.and_then(|u| u.email)))
}

// ---------------------------------------------------------------- pages

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A page: `title` and `paragraphs` are plain text, escaped here.
fn page(status: StatusCode, title: &str, paragraphs: &[String]) -> Response<ProxyBody> {
    let mut html =
        String::from("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    let _ = write!(
        html,
        "<title>bcgate: {}</title></head><body>",
        escape(title)
    );
    let _ = write!(html, "<h1>{}</h1>", escape(title));
    for p in paragraphs {
        let _ = write!(html, "<p>{}</p>", escape(p));
    }
    html.push_str("</body></html>\n");
    let mut resp = Response::new(body::full(html));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'"),
    );
    resp
}

// ---------------------------------------------------------------- callbacks

/// One request on the app listener; never fails.
pub async fn handle(
    gw: Arc<Gateway>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let path = req.uri().path().to_owned();
    let (resp, store, outcome) = route(&gw, &req).await;
    tracing::info!(
        target: "bcgate::app",
        callback = %path.chars().take(64).collect::<String>().escape_debug(),
        store = %store.as_deref().unwrap_or("-"),
        status = resp.status().as_u16(),
        outcome = %outcome,
    );
    Ok(resp)
}

type Handled = (Response<ProxyBody>, Option<String>, &'static str);

async fn route(gw: &Arc<Gateway>, req: &Request<Incoming>) -> Handled {
    let state = gw.state();
    let (Some(app), Some(installs), Some(login)) =
        (&state.config.app, &state.installs, &state.login)
    else {
        let p = page(StatusCode::NOT_FOUND, "Not found", &[]);
        return (p, None, "no_app");
    };
    let path = req.uri().path();
    if !["/auth", "/load", "/uninstall", "/remove_user"].contains(&path) {
        let p = page(
            StatusCode::NOT_FOUND,
            "Not found",
            &["bcgate's app callbacks are /auth, /load, /uninstall and /remove_user.".into()],
        );
        return (p, None, "not_found");
    }
    if req.method() != Method::GET {
        let mut p = page(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            &["BigCommerce calls the app callbacks with GET.".into()],
        );
        p.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return (p, None, "method");
    }
    let params = match Params::parse(req.uri().query().unwrap_or("")) {
        Ok(p) => p,
        Err(why) => {
            return (
                page(StatusCode::BAD_REQUEST, "Bad request", &[why]),
                None,
                "bad_request",
            );
        }
    };
    if path == "/auth" {
        return auth(app, installs, login, &params).await;
    }
    let Some(jwt) = params.get("signed_payload_jwt") else {
        return refused(JwtRefusal::Missing);
    };
    let (hash, user) = match verify_signed_payload(jwt, &app.client_id, app.client_secret.expose())
    {
        Ok(x) => x,
        Err(r) => return refused(r),
    };
    match path {
        "/load" => load(installs, &state.config, hash),
        "/uninstall" => uninstall(installs, &state.config, hash).await,
        _ => {
            let who = user.map_or_else(|| "a user".to_owned(), |u| format!("user {u}"));
            let p = page(
                StatusCode::OK,
                "User removed",
                &[format!(
                    "BigCommerce said {who} was removed from store {hash}. The store's token is kept."
                )],
            );
            (p, Some(hash), "remove_user")
        }
    }
}

fn refused(r: JwtRefusal) -> Handled {
    let p = page(
        StatusCode::UNAUTHORIZED,
        "Signed payload refused",
        &[format!("{}. Nothing was changed.", r.as_str())],
    );
    (p, None, "jwt_refused")
}

/// Query parameters, each at most once.
struct Params(Vec<(String, Zeroizing<String>)>);

impl Params {
    fn parse(query: &str) -> Result<Self, String> {
        let mut out: Vec<(String, Zeroizing<String>)> = Vec::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            if out.iter().any(|(seen, _)| *seen == k) {
                return Err(format!(
                    "the query parameter {:?} is given twice",
                    k.chars().take(40).collect::<String>()
                ));
            }
            out.push((k.into_owned(), Zeroizing::new(v.into_owned())));
        }
        Ok(Self(out))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

async fn auth(app: &App, installs: &Arc<Installs>, login: &Login, params: &Params) -> Handled {
    let (Some(code), Some(context)) = (params.get("code"), params.get("context")) else {
        let p = page(
            StatusCode::BAD_REQUEST,
            "Not installed",
            &["The install callback needs code and context query parameters.".into()],
        );
        return (p, None, "bad_request");
    };
    let scope = params.get("scope").unwrap_or("");
    let grant = match exchange(login, app, code, scope, context).await {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(target: "bcgate::app", error = %e, "code exchange failed");
            let mut text = vec![
                format!("The authorization code could not be exchanged for a token: {e}."),
                "Nothing was stored or changed.".into(),
            ];
            // A callback repeated (a reload of the page) carries a used code;
            // say that the earlier install stands.
            let named = context.strip_prefix("stores/").filter(|h| is_store_hash(h));
            match named.and_then(|h| installs.store().get(h)) {
                Some(inst) => text.push(format!(
                    "Store {} is installed already, from an earlier callback; that install stands.",
                    inst.hash
                )),
                None => text.push("Try installing the app again.".into()),
            }
            let p = page(StatusCode::BAD_GATEWAY, "Not installed", &text);
            return (p, named.map(str::to_owned), "exchange_failed");
        }
    };
    let Some(hash) = grant
        .context
        .strip_prefix("stores/")
        .filter(|h| is_store_hash(h))
        .map(str::to_owned)
    else {
        let p = page(
            StatusCode::BAD_GATEWAY,
            "Not installed",
            &[
                "The login server's answer does not name a store (context). Nothing was stored."
                    .into(),
            ],
        );
        return (p, None, "bad_context");
    };
    let granted: BTreeSet<&str> = grant.scope.split_whitespace().collect();
    let wanted: BTreeSet<&str> = app.scopes.iter().map(String::as_str).collect();
    let missing: Vec<&str> = wanted.difference(&granted).copied().collect();
    let extra: Vec<&str> = granted.difference(&wanted).copied().collect();
    if !missing.is_empty() || !extra.is_empty() {
        let mut why = Vec::new();
        if !missing.is_empty() {
            why.push(format!("not granted: {}", missing.join(", ")));
        }
        if !extra.is_empty() {
            why.push(format!(
                "granted but not in app.scopes: {}",
                extra.join(", ")
            ));
        }
        let p = page(
            StatusCode::FORBIDDEN,
            "Not installed",
            &[
                format!(
                    "Store {hash} granted scopes that differ from the app's configured scopes ({}).",
                    why.join("; ")
                ),
                "Nothing was stored. Fix the app's scopes in the BigCommerce developer portal or app.scopes, then install again."
                    .into(),
            ],
        );
        return (p, Some(hash), "scope_mismatch");
    }
    let mut scopes: Vec<String> = grant.scope.split_whitespace().map(str::to_owned).collect();
    scopes.sort();
    scopes.dedup();
    let user_email = grant.user.email.clone();
    let installed = Installed {
        hash: hash.clone(),
        token: grant.access_token,
        scopes: scopes.clone(),
        user: grant.user.into(),
        owner: grant.owner.into(),
        account_uuid: grant.account_uuid,
        installed_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    if let Err(e) = installs.put(installed).await {
        tracing::error!(target: "bcgate::app", store = %hash, error = %e, "cannot store the token");
        let p = page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Not installed",
            &["bcgate could not write its token store; the operator can see why in its logs. Try again later.".into()],
        );
        return (p, Some(hash), "store_failed");
    }
    tracing::info!(target: "bcgate::app", store = %hash, scopes = %scopes.join(" "), "store installed");
    let p = page(
        StatusCode::OK,
        "App installed",
        &[
            format!("bcgate now holds the token of store {hash}, installed by {user_email}."),
            format!("Granted scopes: {}.", scopes.join(", ")),
        ],
    );
    (p, Some(hash), "installed")
}

fn load(installs: &Installs, config: &crate::config::Config, hash: String) -> Handled {
    let text = match installs.store().get(&hash) {
        Some(inst) => vec![
            format!("bcgate holds the token of store {hash}."),
            format!("Granted scopes: {}.", inst.scopes.join(", ")),
        ],
        None if config.stores.get(&hash).is_some() => vec![format!(
            "Store {hash} is served with a token from bcgate's config file."
        )],
        None => vec![format!(
            "bcgate holds no token for store {hash}: install the app again."
        )],
    };
    (page(StatusCode::OK, "bcgate", &text), Some(hash), "load")
}

async fn uninstall(
    installs: &Arc<Installs>,
    config: &crate::config::Config,
    hash: String,
) -> Handled {
    match installs.delete(&hash).await {
        Ok(existed) => {
            tracing::info!(target: "bcgate::app", store = %hash, existed, "store uninstalled");
            let mut text = vec![if existed {
                format!("bcgate deleted the token of store {hash}.")
            } else {
                format!("bcgate held no token for store {hash}.")
            }];
            if config.stores.get(&hash).is_some() {
                text.push("The store also has a token in bcgate's config file, which keeps serving until the operator removes it.".into());
            }
            (
                page(StatusCode::OK, "App uninstalled", &text),
                Some(hash),
                "uninstalled",
            )
        }
        Err(e) => {
            tracing::error!(target: "bcgate::app", store = %hash, error = %e, "cannot delete the token");
            let p = page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Uninstall not recorded",
                &["bcgate refuses the store's requests from now on, but could not rewrite its token store; the operator can see why in its logs.".into()],
            );
            (p, Some(hash), "delete_failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    const SECRET: &str = "s3cret";
    const ID: &str = "client-1";

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn jwt(alg: Algorithm, secret: &str, claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("encode")
    }

    fn claims(sub: &str, aud: &str, iss: &str, nbf: u64, exp: u64) -> serde_json::Value {
        serde_json::json!({"sub": sub, "aud": aud, "iss": iss, "nbf": nbf, "iat": nbf, "exp": exp,
                           "user": {"id": 1, "email": "a@example.com"}})
    }

    #[test]
    fn signed_payloads_verify_strictly() {
        let n = now();
        let ok = jwt(
            Algorithm::HS256,
            SECRET,
            claims("stores/abc1", ID, "bc", n, n + 60),
        );
        assert_eq!(
            verify_signed_payload(&ok, ID, SECRET),
            Ok(("abc1".into(), Some("a@example.com".into())))
        );
        let cases = [
            (
                jwt(
                    Algorithm::HS256,
                    "other",
                    claims("stores/abc1", ID, "bc", n, n + 60),
                ),
                JwtRefusal::Signature,
            ),
            (
                jwt(
                    Algorithm::HS256,
                    SECRET,
                    claims("stores/abc1", ID, "bc", n - 600, n - 120),
                ),
                JwtRefusal::Expired,
            ),
            (
                jwt(
                    Algorithm::HS256,
                    SECRET,
                    claims("stores/abc1", ID, "bc", n + 600, n + 900),
                ),
                JwtRefusal::NotYetValid,
            ),
            (
                jwt(
                    Algorithm::HS256,
                    SECRET,
                    claims("stores/abc1", "x", "bc", n, n + 60),
                ),
                JwtRefusal::Audience,
            ),
            (
                jwt(
                    Algorithm::HS256,
                    SECRET,
                    claims("stores/abc1", ID, "x", n, n + 60),
                ),
                JwtRefusal::Issuer,
            ),
            (
                jwt(
                    Algorithm::HS256,
                    SECRET,
                    claims("abc1", ID, "bc", n, n + 60),
                ),
                JwtRefusal::Subject,
            ),
            (
                jwt(
                    Algorithm::HS256,
                    SECRET,
                    claims("stores/ABC", ID, "bc", n, n + 60),
                ),
                JwtRefusal::Subject,
            ),
            (
                jwt(
                    Algorithm::HS512,
                    SECRET,
                    claims("stores/abc1", ID, "bc", n, n + 60),
                ),
                JwtRefusal::Algorithm,
            ),
        ];
        for (token, want) in cases {
            assert_eq!(verify_signed_payload(&token, ID, SECRET), Err(want));
        }
        use base64::Engine;
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let none = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT"}"#),
            b64(claims("stores/abc1", ID, "bc", n, n + 60)
                .to_string()
                .as_bytes())
        );
        assert!(verify_signed_payload(&none, ID, SECRET).is_err());
        // A payload without nbf is refused (BigCommerce always sends one).
        let no_nbf = jwt(
            Algorithm::HS256,
            SECRET,
            serde_json::json!({"sub": "stores/abc1", "aud": ID, "iss": "bc", "exp": n + 60}),
        );
        assert_eq!(
            verify_signed_payload(&no_nbf, ID, SECRET),
            Err(JwtRefusal::Malformed)
        );
    }

    #[test]
    fn query_parameters_may_not_repeat() {
        assert!(Params::parse("code=a&code=b").is_err());
        let p = Params::parse("code=a%20b&scope=").expect("parse");
        assert_eq!(p.get("code"), Some("a b"));
        assert_eq!(p.get("scope"), None);
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
