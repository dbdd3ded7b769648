//! The BigCommerce app callbacks, on their own listener (`[app]`), and the
//! live set of installed stores the proxy consults ([`Installs`]).
//!
//! - `installs.rs`: the installed stores (the token store, plus uninstalls
//!   seen while running), in the form the proxy uses.
//! - `login.rs`: the code exchange with BigCommerce's login server.
//! - `signed.rs`: verifying a callback's `signed_payload_jwt`.
//! - `callbacks.rs`: the four callbacks and their HTML pages.
//!
//! This module sits below the live config generation (`state`), which holds
//! its [`Installs`] and [`Login`]; the callbacks get what they read of a
//! generation as a [`Callbacks`] value, not the generation itself.
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

mod callbacks;
mod installs;
mod login;
mod signed;

use std::sync::Arc;

pub use callbacks::{escape, handle};
pub use installs::{Installs, as_store};
pub use login::Login;
pub use signed::{JwtRefusal, LEEWAY_SECS, verify_signed_payload};

use crate::config::Config;

/// What the callbacks read of the config generation current when a
/// callback arrives.
#[derive(Debug, Clone)]
pub struct Callbacks {
    pub config: Arc<Config>,
    pub installs: Option<Arc<Installs>>,
    pub login: Option<Login>,
}
