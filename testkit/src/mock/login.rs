//! A storefront's customer login access point, `GET /login/token/{jwt}`:
//! the JWT checked as BigCommerce documents it (HS256 with the store's
//! client secret, `iat` within its window on BigCommerce's clock, a `jti`
//! used once, `operation`, `store_hash`, the issuing client id), then a 302
//! to `redirect_to` (default `/account.php`) with a session cookie.

use std::sync::Arc;

use http::{HeaderValue, Method, Response, StatusCode};
use serde_json::{Value, json};

use super::handler::{Req, json};
use super::{MockBody, State};

/// How long after its `iat` a login JWT is accepted, in seconds.
pub const LOGIN_WINDOW_S: i64 = 30;
/// The session cookie a successful login sets.
pub const SESSION_COOKIE: &str = "SHOP_SESSION_TOKEN";

/// A login the mock accepted (never the JWT itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub store: String,
    /// The channel whose origin served the login.
    pub channel: u32,
    pub customer_id: u64,
    /// Where the shopper was sent.
    pub redirect_to: String,
    pub jti: String,
    pub iat: i64,
    pub request_ip: Option<String>,
}

/// A store's client id and secret, which sign its login JWTs.
pub(super) struct ClientSecret {
    pub client_id: String,
    pub secret: String,
}

fn refuse(status: StatusCode, why: &str) -> Response<MockBody> {
    json(status, &json!({"status": status.as_u16(), "title": why}))
}

/// `GET /{hash}/{channel}/login/token/{jwt}` on a storefront origin.
pub(super) fn handle(
    state: &Arc<State>,
    req: &Req<'_>,
    hash: &str,
    channel: u32,
    jwt: &str,
) -> Response<MockBody> {
    if req.method != Method::GET {
        return refuse(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.");
    }
    let (client_id, secret) = {
        let secrets = state.client_secrets.lock().expect("mock secrets poisoned");
        let Some(c) = secrets.get(hash) else {
            return refuse(StatusCode::UNAUTHORIZED, "The store has no login client.");
        };
        (c.client_id.clone(), c.secret.clone())
    };
    // A header that names no algorithm jsonwebtoken knows (`none`) does not parse.
    let header = jsonwebtoken::decode_header(jwt).ok();
    if header
        .is_none_or(|h| h.alg != jsonwebtoken::Algorithm::HS256 || h.typ.as_deref() != Some("JWT"))
    {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "The login token must be an HS256 JWT.",
        );
    }
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.leeway = 0;
    let key = jsonwebtoken::DecodingKey::from_secret(secret.as_bytes());
    let claims = match jsonwebtoken::decode::<Value>(jwt, &key, &v) {
        Ok(data) => data.claims,
        Err(e) => {
            return match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => refuse(
                    StatusCode::UNAUTHORIZED,
                    "The login token is not signed with the client secret.",
                ),
                _ => refuse(StatusCode::BAD_REQUEST, "The login token is malformed."),
            };
        }
    };
    if claims["iss"] != client_id.as_str() {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "The login token's iss is not the client id.",
        );
    }
    if claims["operation"] != "customer_login" {
        return refuse(
            StatusCode::BAD_REQUEST,
            "The login token's operation is not customer_login.",
        );
    }
    if claims["store_hash"] != hash {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "The login token is for another store.",
        );
    }
    let Some(customer_id) = claims["customer_id"].as_u64().filter(|c| *c > 0) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "The login token's customer_id is not a customer id.",
        );
    };
    if !claims["channel_id"].is_null() && claims["channel_id"] != channel {
        return refuse(
            StatusCode::BAD_REQUEST,
            "The login token is for another channel.",
        );
    }
    let Some(iat) = claims["iat"].as_i64() else {
        return refuse(StatusCode::BAD_REQUEST, "The login token has no iat.");
    };
    let now = state.now_unix();
    if iat > now {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "The login token was issued in the future.",
        );
    }
    if now - iat > LOGIN_WINDOW_S {
        return refuse(StatusCode::UNAUTHORIZED, "The login token has expired.");
    }
    let Some(jti) = claims["jti"].as_str().filter(|j| !j.is_empty()) else {
        return refuse(StatusCode::BAD_REQUEST, "The login token has no jti.");
    };
    let redirect_to = match &claims["redirect_to"] {
        Value::Null => "/account.php".to_owned(),
        Value::String(r) if r.starts_with('/') && !r.starts_with("//") && !r.contains('\\') => {
            r.clone()
        }
        _ => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "The login token's redirect_to is not a relative path.",
            );
        }
    };
    let Ok(location) = HeaderValue::from_str(&redirect_to) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "The login token's redirect_to is not a relative path.",
        );
    };
    let request_ip = match &claims["request_ip"] {
        Value::Null => None,
        Value::String(ip) => Some(ip.clone()),
        _ => return refuse(StatusCode::BAD_REQUEST, "The login token's request_ip."),
    };
    if !state
        .login_jtis
        .lock()
        .expect("mock logins poisoned")
        .insert(jti.to_owned())
    {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "The login token was used already.",
        );
    }
    state
        .logins
        .lock()
        .expect("mock logins poisoned")
        .push(Login {
            store: hash.to_owned(),
            channel,
            customer_id,
            redirect_to,
            jti: jti.to_owned(),
            iat,
            request_ip,
        });
    let mut session = [0u8; 16];
    getrandom::getrandom(&mut session).expect("random session id");
    let session: String = session.iter().map(|b| format!("{b:02x}")).collect();
    let cookie = format!("{SESSION_COOKIE}={session}; Path=/; Secure; HttpOnly; SameSite=Lax");
    let mut resp = Response::new(super::body::empty());
    *resp.status_mut() = StatusCode::FOUND;
    resp.headers_mut().insert("location", location);
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert("set-cookie", cookie);
    }
    resp
}
