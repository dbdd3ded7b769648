//! The decision whether a request goes upstream, and to which store: pure,
//! no I/O. The proxy, `bcgate explain`, the policy bench and the path fuzzer
//! all call it, so what `explain` prints is what the proxy answers.
//!
//! In order, each step refusing with the error the proxy answers:
//!
//! 1. **canonical path** — [`Canonical::new`]; the proxy checks it before it
//!    identifies the caller, so a path trick is a 400 for anyone.
//! 2. **store** — `/stores/{hash|alias}/…` or the client's `default_store`
//!    ([`route::target_with`]); then the client must be allowed it.
//! 3. **route** — the route table lookup of the API path; a GraphQL `GET`
//!    is classified from its query string here.
//! 4. **authorize** — never-proxied routes, then the client's scopes and the
//!    store token's known scopes. In learn mode the client's own scope
//!    denial becomes [`Decision::would_deny`] and the request goes on.
//!
//! Steps 1–3 are [`route`], step 4 is [`Routed::authorize`]: between them
//! the proxy reads the body when [`Routed::body_need`] says policy looks at
//! it. [`decide`] is both, for callers that already know the body facts.
//!
//! Recording learn-mode observations is the proxy's job, not the decision's.

use std::sync::Arc;

use http::Method;

use crate::config::{Client, Store, Stores};
use crate::error::{ProxyError, ScopeDenial};
use crate::learn::{Mode, Verdict};
use crate::policy::{BodyFacts, GraphqlKind, Holder, Lookup, Policy, Request, Route};
use crate::route::{self, InstalledLookup};

/// A request path that passed [`route::check_canonical`].
#[derive(Debug, Clone, Copy)]
pub struct Canonical<'r>(&'r str);

impl<'r> Canonical<'r> {
    pub fn new(path: &'r str) -> Result<Self, ProxyError> {
        route::check_canonical(path)?;
        Ok(Self(path))
    }

    pub fn as_str(&self) -> &'r str {
        self.0
    }
}

/// The parts of a config generation a decision reads.
#[derive(Clone, Copy)]
pub struct Gate<'c> {
    pub policy: &'c Policy,
    pub stores: &'c Stores,
    /// Asked for a store the config does not list (the stores that
    /// installed the app); `&|_| Ok(None)` when there is no token store.
    pub installed: &'c InstalledLookup<'c>,
}

impl std::fmt::Debug for Gate<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").finish_non_exhaustive()
    }
}

/// What is decided on: the identified client and the request line.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'c, 'r> {
    pub client: &'c Client,
    /// The client's mode, or the other one (`bcgate explain` shows both).
    pub mode: Mode,
    pub method: &'r Method,
    pub path: Canonical<'r>,
    pub query: Option<&'r str>,
}

/// A refusal, with what had been found when it was made (the access log
/// names the store and route of a denied request too).
#[derive(Debug)]
pub struct Denial<'c> {
    pub error: ProxyError,
    pub store: Option<Arc<Store>>,
    pub route: Option<&'c Route>,
}

impl<'c> Denial<'c> {
    fn new(error: ProxyError, store: Option<&Arc<Store>>, route: Option<&'c Route>) -> Self {
        Self {
            error,
            store: store.cloned(),
            route,
        }
    }
}

/// Which body facts [`Routed::authorize`] needs, read by [`body_facts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyNeed {
    /// A GraphQL document (query or mutation).
    Graphql,
    /// A script create or update (`visibility`).
    Script { update: bool },
}

/// Store and route found, the client allowed the store; scopes not checked yet.
#[derive(Debug)]
pub struct Routed<'c, 'r> {
    pub store: Arc<Store>,
    /// The path after `/stores/{store}` (the whole path for the default store).
    pub api_path: &'r str,
    pub route: &'c Route,
    policy: &'c Policy,
    ask: Ask<'c, 'r>,
    /// The facts known without reading the body; `None` when it must be read.
    known: Option<BodyFacts>,
}

/// A request that goes upstream.
#[derive(Debug)]
pub struct Decision<'c, 'r> {
    pub store: Arc<Store>,
    pub api_path: &'r str,
    pub route: &'c Route,
    pub body: BodyFacts,
    /// Learn mode only: the client's own scopes refuse it, so enforce mode
    /// would answer 403 `scope_denied`; learn mode forwards it.
    pub would_deny: Option<Box<ScopeDenial>>,
}

/// Steps 1–3: the store and the route (see the module docs).
pub fn route<'c, 'r>(gate: &Gate<'c>, ask: Ask<'c, 'r>) -> Result<Routed<'c, 'r>, Denial<'c>> {
    let client = ask.client;
    let target = route::target_with(
        ask.path.as_str(),
        gate.stores,
        client.default_store.as_deref(),
        gate.installed,
    )
    .map_err(|e| Denial::new(e, None, None))?
    .ok_or_else(|| {
        Denial::new(
            ProxyError::NoStore {
                client: client.name.clone(),
            },
            None,
            None,
        )
    })?;
    let store = target.store;
    if !client.stores.allows(&store.hash) {
        let e = ProxyError::StoreNotAllowed {
            client: client.name.clone(),
            store: store.hash.clone(),
        };
        return Err(Denial::new(e, Some(&store), None));
    }
    let route = match gate.policy.routes.lookup(ask.method, target.api_path) {
        Lookup::Found(r) => r,
        Lookup::Unknown => {
            let e = ProxyError::RouteUnknown {
                method: ask.method.to_string(),
                path: target.api_path.chars().take(200).collect(),
            };
            return Err(Denial::new(e, Some(&store), None));
        }
        Lookup::CaseMismatch => {
            let e = ProxyError::BadRequest("path segments are case-sensitive".into());
            return Err(Denial::new(e, Some(&store), None));
        }
    };
    let known = match body_need(route, ask.method) {
        Some(_) => None,
        None if route.flags.graphql => {
            // Only a GET gets here: its document travels in the query string.
            let kind = crate::policy::body::graphql_get_kind(ask.query.unwrap_or(""))
                .map_err(|e| Denial::new(ProxyError::BadRequest(e.0), Some(&store), Some(route)))?;
            Some(BodyFacts::Graphql(kind))
        }
        None => Some(BodyFacts::None),
    };
    Ok(Routed {
        store,
        api_path: target.api_path,
        route,
        policy: gate.policy,
        ask,
        known,
    })
}

fn body_need(route: &Route, method: &Method) -> Option<BodyNeed> {
    if route.flags.graphql && *method != Method::GET {
        Some(BodyNeed::Graphql)
    } else if route.flags.scripts_visibility && (*method == Method::POST || *method == Method::PUT)
    {
        Some(BodyNeed::Script {
            update: *method == Method::PUT,
        })
    } else {
        None
    }
}

impl<'c, 'r> Routed<'c, 'r> {
    /// `Some` when policy looks at the body: read it, give it to
    /// [`body_facts`], and pass the facts to [`Routed::authorize`].
    pub fn body_need(&self) -> Option<BodyNeed> {
        match self.known {
            Some(_) => None,
            None => body_need(self.route, self.ask.method),
        }
    }

    /// Step 4. `body` is used only when [`Routed::body_need`] asked for it;
    /// facts of the wrong kind are decided as the route alone says (a
    /// GraphQL POST without facts needs the write scope).
    pub fn authorize(self, body: BodyFacts) -> Result<Decision<'c, 'r>, Denial<'c>> {
        let body = self.known.unwrap_or(body);
        let req = Request {
            method: self.ask.method,
            route: self.route,
            body,
        };
        let client = Holder {
            label: &self.ask.client.label,
            grants: &self.ask.client.grants,
        };
        let store = self.store.grants.as_ref().map(|g| Holder {
            label: &self.store.label,
            grants: g,
        });
        let decided = match self.ask.mode {
            Mode::Enforce => self.policy.authorize(client, store, &req).map(|()| None),
            Mode::Learn => {
                crate::learn::decide_learn(self.policy, client, store, &req).map(|v| match v {
                    Verdict::Granted => None,
                    Verdict::WouldDeny(denial) => Some(denial),
                })
            }
        };
        match decided {
            Ok(would_deny) => Ok(Decision {
                store: self.store,
                api_path: self.api_path,
                route: self.route,
                body,
                would_deny,
            }),
            Err(e) => Err(Denial {
                error: e,
                store: Some(self.store),
                route: Some(self.route),
            }),
        }
    }
}

/// The whole decision, for a caller that knows the body facts (ignored
/// unless the route looks at the body).
pub fn decide<'c, 'r>(
    gate: &Gate<'c>,
    ask: Ask<'c, 'r>,
    body: BodyFacts,
) -> Result<Decision<'c, 'r>, Denial<'c>> {
    route(gate, ask)?.authorize(body)
}

/// The facts policy reads from a body `need` asked for. `graphql_media`:
/// the body is `Content-Type: application/graphql` (a bare document).
pub fn body_facts(
    need: BodyNeed,
    body: &[u8],
    graphql_media: bool,
) -> Result<BodyFacts, ProxyError> {
    let bad = |e: crate::policy::BodyError| ProxyError::BadRequest(e.0);
    Ok(match need {
        BodyNeed::Graphql => BodyFacts::Graphql(
            crate::policy::body::graphql_post_kind(body, graphql_media).map_err(bad)?,
        ),
        BodyNeed::Script { update } => BodyFacts::Script {
            needs_checkout_content: crate::policy::body::script_needs_checkout_content(
                body, update,
            )
            .map_err(bad)?,
        },
    })
}

/// What `bcgate explain` assumes of a body it was not given: a GraphQL
/// query, a script whose visibility needs no Checkout Content.
pub fn assumed_facts(need: BodyNeed) -> BodyFacts {
    match need {
        BodyNeed::Graphql => BodyFacts::Graphql(GraphqlKind::Query),
        BodyNeed::Script { .. } => BodyFacts::Script {
            needs_checkout_content: false,
        },
    }
}
