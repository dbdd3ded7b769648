//! The endpoints bcgate answers itself instead of forwarding: a customer
//! login link (`/login/token/{jwt}` on a channel's storefront, the JWT
//! signed with the store's client secret) and who a shopper's
//! current-customer JWT names. Parsing, checking and signing are pure;
//! [`answer`] reads the body and BigCommerce's clock.

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body;
use serde::Serialize;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::body::ProxyBody;
use crate::config::{Origin, Store};
use crate::decide::Answer;
use crate::error::ProxyError;
use crate::headers::X_AUTH_TOKEN;
use crate::mint::Transport;
use crate::secret::Secret;

/// How long BigCommerce accepts a login JWT after its `iat`.
pub const LOGIN_VALID_SECS: u64 = 30;
/// The largest body either endpoint reads (both are a few fields).
pub const MAX_BODY_BYTES: u64 = 16 * 1024;
/// How long an offset read from BigCommerce's clock is used before it is read again.
pub const CLOCK_REFRESH: Duration = Duration::from_secs(600);
/// The longest `redirect_to` accepted.
pub const MAX_REDIRECT_BYTES: usize = 2048;

fn bad(why: impl Into<String>) -> ProxyError {
    ProxyError::BadRequest(why.into())
}

/// A customer-login request body, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRequest {
    pub customer_id: u64,
    pub channel_id: Option<u32>,
    pub redirect_to: Option<String>,
    pub request_ip: Option<IpAddr>,
}

/// The body as a JSON object (duplicate keys refused) holding only `allowed` keys.
fn object(body: &[u8], allowed: &[&str]) -> Result<Map<String, Value>, ProxyError> {
    let value = crate::policy::body::parse_strict_json(body).map_err(|e| bad(e.0))?;
    let Value::Object(map) = value else {
        return Err(bad("the body must be a JSON object"));
    };
    if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        let k: String = k.chars().take(64).collect();
        return Err(bad(format!(
            "unknown field '{k}' (the fields are {})",
            allowed.join(", ")
        )));
    }
    Ok(map)
}

/// A positive integer field, as a JSON number.
fn positive(map: &Map<String, Value>, name: &str) -> Result<Option<u64>, ProxyError> {
    match map.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| bad(format!("{name} must be a positive integer"))),
    }
}

fn string<'m>(map: &'m Map<String, Value>, name: &str) -> Result<Option<&'m str>, ProxyError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(format!("{name} must be a string"))),
    }
}

/// `{customer_id, channel_id?, redirect_to?, request_ip?}`, strictly.
pub fn parse_login_request(body: &[u8]) -> Result<LoginRequest, ProxyError> {
    let map = object(
        body,
        &["customer_id", "channel_id", "redirect_to", "request_ip"],
    )?;
    let customer_id =
        positive(&map, "customer_id")?.ok_or_else(|| bad("customer_id is required"))?;
    let channel_id = positive(&map, "channel_id")?
        .map(|c| u32::try_from(c).map_err(|_| bad("channel_id is not a channel id")))
        .transpose()?;
    let redirect_to = string(&map, "redirect_to")?
        .map(|r| check_redirect_to(r).map(|()| r.to_owned()))
        .transpose()?;
    let request_ip = string(&map, "request_ip")?
        .map(|ip| {
            ip.parse::<IpAddr>()
                .map_err(|_| bad("request_ip must be an IPv4 or IPv6 address"))
        })
        .transpose()?;
    Ok(LoginRequest {
        customer_id,
        channel_id,
        redirect_to,
        request_ip,
    })
}

/// `{"token": "…"}`, strictly; the token is wiped when dropped.
pub fn parse_current_customer_request(body: &[u8]) -> Result<Zeroizing<String>, ProxyError> {
    let mut map = object(body, &["token"])?;
    match map.remove("token") {
        Some(Value::String(t)) => Ok(Zeroizing::new(t)),
        Some(_) => Err(bad("token must be a string")),
        None => Err(bad("token is required")),
    }
}

/// A `redirect_to` is a path on the storefront the shopper signs in to,
/// never another site: it starts with one `/`, holds printable ASCII only
/// (no space, no control character; percent-encode the rest) and no
/// backslash. The same holds once it is percent-decoded, so `/%2F%2Fevil`
/// and `/%5Cevil` (which a server that decodes before redirecting would
/// turn into another host) are refused too.
pub fn check_redirect_to(path: &str) -> Result<(), ProxyError> {
    if path.is_empty() || path.len() > MAX_REDIRECT_BYTES {
        return Err(bad(format!(
            "redirect_to must be a path of 1 to {MAX_REDIRECT_BYTES} bytes"
        )));
    }
    if path.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
        return Err(bad(
            "redirect_to must be printable ASCII without spaces or control characters \
             (percent-encode the rest)",
        ));
    }
    let decoded = percent_encoding::percent_decode_str(path).collect::<Vec<u8>>();
    for form in [path.as_bytes(), decoded.as_slice()] {
        if form.first() != Some(&b'/') {
            return Err(bad(
                "redirect_to must be a relative path starting with '/' (no scheme, no host)",
            ));
        }
        if form.starts_with(b"//") {
            return Err(bad(
                "redirect_to must not start with '//', encoded or not (that names another host)",
            ));
        }
        if form.contains(&b'\\') {
            return Err(bad(
                "redirect_to must not contain a backslash, encoded or not",
            ));
        }
        if form.iter().any(|b| *b < 0x20 || *b == 0x7f) {
            return Err(bad(
                "redirect_to must not contain control characters, encoded or not",
            ));
        }
    }
    Ok(())
}

/// The claims of a customer login JWT, as BigCommerce documents them.
#[derive(Debug, Serialize)]
pub struct LoginClaims<'a> {
    /// The client id of the API account (or app) whose secret signs it.
    pub iss: &'a str,
    /// On BigCommerce's clock, never in its future.
    pub iat: u64,
    pub jti: String,
    /// Always `customer_login`.
    pub operation: &'static str,
    pub store_hash: &'a str,
    pub customer_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_to: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_ip: Option<String>,
}

impl<'a> LoginClaims<'a> {
    /// The claims for `req` at `iat`, with a fresh random `jti`.
    pub fn new(
        client_id: &'a str,
        store_hash: &'a str,
        iat: u64,
        channel: u32,
        req: &'a LoginRequest,
    ) -> Self {
        Self {
            iss: client_id,
            iat,
            jti: new_jti(),
            operation: "customer_login",
            store_hash,
            customer_id: req.customer_id,
            channel_id: Some(channel),
            redirect_to: req.redirect_to.as_deref(),
            request_ip: req.request_ip.map(|ip| ip.to_string()),
        }
    }
}

/// `claims` as an HS256 JWT (`typ: JWT`) signed with `secret`.
pub fn customer_login_jwt(claims: &LoginClaims<'_>, secret: &Secret) -> Result<Secret, ProxyError> {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let key = jsonwebtoken::EncodingKey::from_secret(secret.expose_bytes());
    let jwt = Zeroizing::new(
        jsonwebtoken::encode(&header, claims, &key)
            .map_err(|_| bad("the login token could not be signed"))?,
    );
    Secret::new(&jwt).map_err(|_| bad("the login token could not be signed"))
}

/// A random UUID (version 4), as BigCommerce's examples use for `jti`.
pub fn new_jti() -> String {
    let mut b = [0u8; 16];
    // Without randomness a jti could repeat; the OS not giving any is fatal anyway.
    getrandom::getrandom(&mut b).unwrap_or_else(|_| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = nanos.to_le_bytes();
    });
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Milliseconds since the Unix epoch by this host's clock.
pub fn local_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// BigCommerce's clock minus this host's, in ms, from a `/v2/time` answer
/// (whole seconds, read at some moment before `answered_ms`). Never more
/// than the true offset, so an `iat` from it is never in BigCommerce's future.
pub fn offset_ms(bc_time_s: i64, answered_ms: i64) -> i64 {
    bc_time_s.saturating_mul(1000).saturating_sub(answered_ms)
}

/// `iat` on BigCommerce's clock: whole seconds, rounded down.
pub fn bc_iat(local_ms: i64, offset_ms: i64) -> u64 {
    u64::try_from(local_ms.saturating_add(offset_ms).div_euclid(1000)).unwrap_or(0)
}

/// `{origin}/login/token/{jwt}`: the URL a shopper's browser is sent to.
pub fn login_url(origin: &Origin, jwt: &Secret) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "{}://{}{}/login/token/{}",
        origin.scheme,
        origin.authority,
        origin.base_path,
        jwt.expose()
    ))
}

/// BigCommerce's clock offset per store, read from `/v2/time` and kept
/// for [`CLOCK_REFRESH`]; shared across reloads.
#[derive(Debug, Clone, Default)]
pub struct Clocks(Arc<Mutex<HashMap<String, (i64, Instant)>>>);

impl Clocks {
    /// The store's offset, if one was read less than [`CLOCK_REFRESH`] ago.
    pub fn fresh(&self, hash: &str) -> Option<i64> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(hash)
            .filter(|(_, read)| read.elapsed() < CLOCK_REFRESH)
            .map(|(o, _)| *o)
    }

    fn set(&self, hash: &str, offset: i64) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(hash.to_owned(), (offset, Instant::now()));
    }

    /// The store's offset: cached, or read now from `GET /v2/time` with
    /// the store's token.
    pub async fn offset(
        &self,
        api: &dyn Transport,
        hash: &str,
        token: &Secret,
    ) -> Result<i64, ProxyError> {
        if let Some(o) = self.fresh(hash) {
            return Ok(o);
        }
        let mut req = Request::new(Bytes::new());
        *req.method_mut() = Method::GET;
        *req.uri_mut() = http::Uri::from_static("/v2/time");
        req.headers_mut().insert(X_AUTH_TOKEN, token.header_value());
        req.headers_mut()
            .insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let (status, body) = api.send(hash, req).await?;
        let answered = local_now_ms();
        if status == StatusCode::UNAUTHORIZED {
            return Err(ProxyError::StoreTokenRefused(hash.to_owned()));
        }
        if !status.is_success() {
            return Err(ProxyError::UpstreamUnavailable(format!(
                "BigCommerce's clock (/v2/time) answered {}",
                status.as_u16()
            )));
        }
        let time = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("time").and_then(Value::as_i64))
            .ok_or_else(|| {
                ProxyError::UpstreamUnavailable("BigCommerce's clock answer has no time".into())
            })?;
        let offset = offset_ms(time, answered);
        self.set(hash, offset);
        Ok(offset)
    }
}

/// What answering needs besides the request.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub store: &'a Store,
    /// The client id and secret of the store's customer JWTs
    /// ([`crate::config::Config::store_client`]).
    pub client: Option<(&'a str, &'a Secret)>,
    pub api: &'a dyn Transport,
    pub clocks: &'a Clocks,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("store", &self.store.hash)
            .finish_non_exhaustive()
    }
}

/// Reads the body (at most [`MAX_BODY_BYTES`] and the server's limit) and answers `what`.
#[allow(clippy::too_many_arguments)]
pub async fn answer<B>(
    ctx: Ctx<'_>,
    what: Answer,
    method: &Method,
    headers: &http::HeaderMap,
    body: B,
    limit: u64,
    idle: Duration,
    total: Duration,
) -> Result<Response<ProxyBody>, ProxyError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<crate::body::BoxError>,
{
    if *method != Method::POST {
        return Err(bad("this endpoint takes POST only"));
    }
    if headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
    {
        return Err(bad(
            "bcgate must read this body and does not accept it compressed",
        ));
    }
    let limit = limit.min(MAX_BODY_BYTES);
    let bytes = crate::body::read_bounded(body, limit, idle, total).await?;
    let value = match what {
        Answer::CustomerLogin => customer_login(ctx, &bytes).await?,
        Answer::CurrentCustomer => current_customer(ctx, &bytes)?,
    };
    let mut resp = Response::new(crate::body::full(value.to_string()));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // A login link is a credential: no cache keeps it.
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

async fn customer_login(ctx: Ctx<'_>, body: &[u8]) -> Result<Value, ProxyError> {
    let req = parse_login_request(body)?;
    let store = ctx.store;
    let channel = store
        .channel(req.channel_id)
        .ok_or_else(|| ProxyError::ChannelUnknown {
            store: store.hash.clone(),
            channel: req.channel_id,
        })?;
    let (client_id, secret) = ctx
        .client
        .ok_or_else(|| ProxyError::StoreClientMissing(store.hash.clone()))?;
    let offset = ctx
        .clocks
        .offset(ctx.api, &store.hash, &store.token)
        .await?;
    let iat = bc_iat(local_now_ms(), offset);
    let claims = LoginClaims::new(client_id, &store.hash, iat, channel.id, &req);
    let jwt = customer_login_jwt(&claims, secret)?;
    let url = login_url(&channel.origin, &jwt);
    Ok(json!({
        "url": url.as_str(),
        "expires_at": iat + LOGIN_VALID_SECS,
    }))
}

fn current_customer(ctx: Ctx<'_>, body: &[u8]) -> Result<Value, ProxyError> {
    let token = parse_current_customer_request(body)?;
    let store = ctx.store;
    let Some((client_id, secret)) = ctx.client else {
        return Err(ProxyError::InvalidCustomerToken(format!(
            "store '{}' has no client_id and client secret configured to verify it",
            store.hash
        )));
    };
    let customer =
        crate::mint::verify_current_customer_for_store(&token, &store.hash, client_id, secret)?;
    Ok(json!({
        "id": customer.id,
        "email": customer.email,
        "group_id": customer.group_id,
    }))
}
