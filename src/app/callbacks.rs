//! The four callbacks (`/auth`, `/load`, `/uninstall`, `/remove_user`) and
//! the small HTML pages they answer with.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use zeroize::Zeroizing;

use super::login::{Login, exchange};
use super::signed::{JwtRefusal, verify_signed_payload};
use super::{Callbacks, Installs};
use crate::body::{self, ProxyBody};
use crate::config::App;
use crate::token_store::{Installed, is_store_hash};

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

/// One request on the app listener, on what the config generation current
/// at its arrival holds (`State::callbacks`, a layer above); never fails.
pub async fn handle(
    state: Callbacks,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let path = req.uri().path().to_owned();
    let (resp, store, outcome) = dispatch(&state, &req).await;
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

async fn dispatch(state: &Callbacks, req: &Request<Incoming>) -> Handled {
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
