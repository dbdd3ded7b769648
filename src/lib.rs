//! bcgate: an authenticating reverse proxy for the BigCommerce API.
//!
//! Internal services call bcgate with a key of their own; bcgate holds the
//! stores' real tokens. A request flows through these stages, each a module:
//!
//! ```text
//! server     listener: TCP/h2c, TLS/mTLS (tls) or unix socket (hyper-util auto)
//!   overload at most server.max_in_flight requests at once; past it 503 at once
//!   h1guard  every HTTP/1 head checked before hyper reads it (smuggling, limits)
//!   live     holds the live config generation (state::State); a request takes a snapshot of it
//!   proxy    the per-request pipeline, in this order:
//!     path::check_canonical    reject path tricks before any decision
//!     identify                 key, unix uid or mTLS subject → client
//!     decide                   the decision, pure (also `bcgate explain`'s):
//!       path::target             /stores/{hash|alias}/… or the default store
//!       family                   the API family the path is for (api, payments,
//!                                storefront, b2b, account): its table and credential
//!       policy                   route table lookup, then authorize
//!     answer                   customer-login and current-customer: answered by bcgate, never forwarded
//!     credential               the family's token: configured, or minted (mint) and cached
//!     rewrite                  strip caller credentials + hop-by-hop, inject the credential
//!     quota                    wait for the store's rate-limit budget (fair queue, Redis), retry 429s
//!     forward                  pooled rustls clients, one per family origin, timeouts, Location rule
//!     mint                     tokens bcgate mints for the payments and storefront hosts (cached), current.jwt
//!   error    every rejection as one enum → JSON problem details (one table of codes)
//! reload     SIGHUP and file watch → a new generation, or the old one kept
//! admin      /metrics (metrics), /healthz, /readyz (ready)
//! dev        `bcgate dev`/`bcgate mock` (feature `dev`): bcgate in front of
//!            bcgate-testkit's mock BigCommerce (also the tests' upstream)
//! token_store  tokens of the stores that installed the app: one encrypted file, or Redis
//! app        the app callbacks (/auth /load /uninstall /remove_user) that fill it
//! learn      learn mode: record what a client does, `bcgate recommend` its least scopes
//! ```
//!
//! Policy (the route and scope tables in `data/`, and the decision) is plain
//! data and pure functions; I/O lives in `server` and `forward`. Imports run
//! one way, from the request's outer layers to its leaves (docs/architecture.md,
//! "Layering"; `scripts/check-imports` keeps it so).

#![forbid(unsafe_code)]

pub mod answer;
pub mod app;
pub mod body;
pub mod cli;
pub mod config;
pub mod credential;
pub mod decide;
#[cfg(feature = "dev")]
pub mod dev;
#[cfg(not(feature = "dev"))]
#[path = "dev/without_feature.rs"]
pub mod dev;
pub mod error;
pub mod family;
pub mod forward;
pub mod h1guard;
pub mod headers;
pub mod identify;
pub mod learn;
pub mod live;
pub mod log;
pub mod metrics;
pub mod mint;
pub mod overload;
pub mod path;
pub mod policy;
pub mod proxy;
pub mod quota;
pub mod ready;
pub mod reload;
pub mod request_id;
pub mod rewrite;
pub mod secret;
pub mod server;
pub mod state;
pub mod tls;
pub mod token_store;
