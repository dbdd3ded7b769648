//! `[app]`: the BigCommerce app callbacks.

use std::collections::HashSet;

use http::Uri;
use zeroize::Zeroizing;

use super::validate::Validator;
use super::{App, AppFile, ConfigError, Listen, TlsPaths, UNREAD};
use crate::policy::Policy;
use crate::secret::{Secret, TokenError};

impl Validator<'_> {
    pub(super) fn app(&self, policy: &Policy, a: &AppFile) -> Result<App, ConfigError> {
        let listen = match self.listen("app.listen", &a.listen)? {
            Listen::Tcp(addr) => addr,
            Listen::Unix(_) => {
                return Err(self.err(
                    "app.listen",
                    "must be ip:port (BigCommerce calls it over the network)",
                ));
            }
        };
        let tls = match &a.tls {
            None => None,
            Some(t) => {
                if t.client_ca.is_some() {
                    return Err(self.err(
                        "app.tls.client_ca",
                        "BigCommerce presents no client certificate",
                    ));
                }
                Some(TlsPaths {
                    cert: self.existing("app.tls.cert", &t.cert)?,
                    key: self.existing("app.tls.key", &t.key)?,
                    client_ca: None,
                })
            }
        };
        let public: Uri = a
            .public_url
            .parse()
            .map_err(|_| self.err("app.public_url", format!("{:?} is not a URL", a.public_url)))?;
        if public.scheme().is_none()
            || public.authority().is_none_or(|a| a.host().is_empty())
            || public.query().is_some()
        {
            return Err(self.err(
                "app.public_url",
                "must be an absolute URL without a query (https://bcgate.example.com)",
            ));
        }
        let public_url = a.public_url.trim_end_matches('/').to_string();
        if a.client_id.is_empty() || a.client_id.chars().any(|c| c.is_control()) {
            return Err(self.err("app.client_id", "must be non-empty text"));
        }
        let (raw, client_secret_source, k) = match (&a.client_secret_env, &a.client_secret_file) {
            (Some(var), None) if !self.secrets => (
                Zeroizing::new(UNREAD.to_owned()),
                format!("env {var}"),
                "app.client_secret_env",
            ),
            (None, Some(p)) if !self.secrets => (
                Zeroizing::new(UNREAD.to_owned()),
                format!("file {}", self.resolve(p).display()),
                "app.client_secret_file",
            ),
            (Some(var), None) => (
                Zeroizing::new(std::env::var(var).map_err(|_| {
                    self.err(
                        "app.client_secret_env",
                        format!("environment variable {var} is not set"),
                    )
                })?),
                format!("env {var}"),
                "app.client_secret_env",
            ),
            (None, Some(p)) => {
                let full = self.existing("app.client_secret_file", p)?;
                let raw = std::fs::read_to_string(&full).map_err(|e| {
                    self.err(
                        "app.client_secret_file",
                        format!("cannot read {}: {e}", full.display()),
                    )
                })?;
                (
                    Zeroizing::new(raw),
                    format!("file {}", full.display()),
                    "app.client_secret_file",
                )
            }
            _ => {
                return Err(self.err(
                    "app.client_secret_env",
                    "set exactly one of client_secret_env and client_secret_file",
                ));
            }
        };
        let client_secret = Secret::text(&raw).map_err(|e| {
            let why = match e {
                TokenError::Empty | TokenError::NotAHeaderValue => "the client secret is empty",
            };
            self.err(k, format!("{client_secret_source}: {why}"))
        })?;
        if a.scopes.is_empty() {
            return Err(self.err("app.scopes", "list the scopes the app must be granted"));
        }
        self.scopes(policy, "app.scopes", &a.scopes)?;
        let mut seen = HashSet::new();
        for (i, s) in a.scopes.iter().enumerate() {
            if !seen.insert(s) {
                return Err(self.err(format!("app.scopes[{i}]"), format!("{s:?} is listed twice")));
            }
        }
        let login = a.login_url.trim_end_matches('/');
        let token_url: Uri = format!("{login}/oauth2/token")
            .parse()
            .map_err(|_| self.err("app.login_url", format!("{:?} is not a URL", a.login_url)))?;
        if token_url.scheme() != Some(&http::uri::Scheme::HTTPS)
            || token_url.authority().is_none_or(|a| a.host().is_empty())
            || token_url.query().is_some()
        {
            return Err(self.err(
                "app.login_url",
                "must be an https:// URL without a query: the client secret never travels in clear",
            ));
        }
        Ok(App {
            listen,
            tls,
            redirect_uri: format!("{public_url}/auth"),
            public_url,
            client_id: a.client_id.clone(),
            client_secret,
            client_secret_source,
            scopes: a.scopes.clone(),
            token_url,
        })
    }
}
