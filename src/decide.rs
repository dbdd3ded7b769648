//! The decision whether a request goes upstream, and to which store: pure,
//! no I/O. The proxy, `bcgate explain`, the policy bench and the path fuzzer
//! all call it, so what `explain` prints is what the proxy answers.
//!
//! In order, each step refusing with the error the proxy answers:
//!
//! 1. **canonical path** — [`Canonical::new`]; the proxy checks it before it
//!    identifies the caller, so a path trick is a 400 for anyone.
//! 2. **store** — `/stores/{hash|alias}/…` or the client's `default_store`
//!    ([`path::target_with`]); then the client must be allowed it.
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
use crate::path::{self, InstalledLookup};
use crate::policy::{BodyFacts, GraphqlKind, Holder, Lookup, Policy, Request, Route};

/// A request path that passed [`path::check_canonical`].
#[derive(Debug, Clone, Copy)]
pub struct Canonical<'r>(&'r str);

impl<'r> Canonical<'r> {
    pub fn new(path: &'r str) -> Result<Self, ProxyError> {
        path::check_canonical(path)?;
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
    let target = path::target_with(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const CONFIG: &str = r#"
[learn]
path = "observations.json"

[[stores]]
hash = "abc123"
alias = "eu"
token_env = "NEVER_READ_A"
scopes = ["store_v2_products", "bcgate:graphql_write"]

[[stores]]
hash = "def456"
token_file = "never-read-b"

[[clients]]
name = "inventory-sync"
key_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
stores = ["abc123"]
default_store = "abc123"
scopes = ["store_v2_products_read_only", "bcgate:graphql_read"]

[[clients]]
name = "roamer"
key_sha256 = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
stores = ["*"]
scopes = ["store_v2_orders_read_only", "store_v2_content"]
mode = "learn"
"#;

    /// The config, loaded as `explain` loads it: no token is set anywhere.
    fn config() -> Config {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bcgate.toml");
        std::fs::write(&path, CONFIG).expect("write config");
        Config::load_without_secrets(&path).expect("config without secrets")
    }

    fn ask<'c, 'r>(
        cfg: &'c Config,
        client: &str,
        mode: Option<Mode>,
        method: &'r Method,
        path: &'r str,
    ) -> Ask<'c, 'r> {
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let client = cfg.clients.by_name(client).expect("a configured client");
        Ask {
            client,
            mode: mode.unwrap_or(client.mode),
            method,
            path: Canonical::new(path).expect("a canonical path"),
            query,
        }
    }

    fn run<'c>(cfg: &'c Config, a: Ask<'c, '_>, body: BodyFacts) -> Result<String, Denial<'c>> {
        let gate = Gate {
            policy: &cfg.policy,
            stores: &cfg.stores,
            installed: &|_| Ok(None),
        };
        decide(&gate, a, body).map(|d| format!("{} {}", d.store.hash, d.api_path))
    }

    #[test]
    fn an_unknown_store_is_unknown_even_with_a_default_store() {
        let cfg = config();
        let get = Method::GET;
        let a = ask(
            &cfg,
            "inventory-sync",
            None,
            &get,
            "/stores/nope/v3/catalog/products",
        );
        let d = run(&cfg, a, BodyFacts::None).expect_err("an unknown store");
        assert_eq!(d.error, ProxyError::StoreUnknown("nope".into()));
        let a = ask(
            &cfg,
            "inventory-sync",
            None,
            &get,
            "/stores/eu/v3/catalog/products",
        );
        assert_eq!(
            run(&cfg, a, BodyFacts::None).expect("allowed"),
            "abc123 /v3/catalog/products"
        );
        let a = ask(&cfg, "inventory-sync", None, &get, "/v3/catalog/products");
        assert_eq!(
            run(&cfg, a, BodyFacts::None).expect("the default store"),
            "abc123 /v3/catalog/products"
        );
    }

    #[test]
    fn no_store_and_no_default_says_so_in_words() {
        let cfg = config();
        let get = Method::GET;
        let a = ask(&cfg, "roamer", None, &get, "/v2/orders");
        let e = run(&cfg, a, BodyFacts::None).expect_err("no store").error;
        assert_eq!((e.status().as_u16(), e.code()), (404, "store_unknown"));
        assert_eq!(
            e.detail(),
            "the path names no store (/stores/{store}/…) and client 'roamer' has no default_store"
        );
    }

    #[test]
    fn refusals_carry_what_was_found() {
        let cfg = config();
        let get = Method::GET;
        let a = ask(
            &cfg,
            "inventory-sync",
            None,
            &get,
            "/stores/def456/v3/catalog/products",
        );
        let d = run(&cfg, a, BodyFacts::None).expect_err("not allowed");
        assert_eq!(d.error.code(), "store_not_allowed");
        assert_eq!(d.store.map(|s| s.hash.clone()).as_deref(), Some("def456"));
        assert!(d.route.is_none());

        let a = ask(
            &cfg,
            "inventory-sync",
            None,
            &get,
            "/v3/catalog/nothing/here",
        );
        let d = run(&cfg, a, BodyFacts::None).expect_err("unknown route");
        assert_eq!(d.error.code(), "route_unknown");
        let a = ask(&cfg, "inventory-sync", None, &get, "/v3/Catalog/products");
        assert_eq!(
            run(&cfg, a, BodyFacts::None)
                .expect_err("case")
                .error
                .code(),
            "bad_request"
        );

        let post = Method::POST;
        let a = ask(&cfg, "inventory-sync", None, &post, "/v3/catalog/products");
        let d = run(&cfg, a, BodyFacts::None).expect_err("read-only client");
        assert_eq!(d.error.code(), "scope_denied");
        assert_eq!(d.route.map(|r| &*r.template), Some("/v3/catalog/products"));
    }

    #[test]
    fn learn_mode_forwards_what_only_the_client_refuses() {
        let cfg = config();
        let get = Method::GET;
        // The client lacks products; def456's token scopes are not stated.
        let a = ask(
            &cfg,
            "roamer",
            None,
            &get,
            "/stores/def456/v3/catalog/products",
        );
        let d = decide(
            &Gate {
                policy: &cfg.policy,
                stores: &cfg.stores,
                installed: &|_| Ok(None),
            },
            a,
            BodyFacts::None,
        )
        .expect("learn mode forwards");
        assert!(d.would_deny.is_some(), "counted as would_deny");
        let a = ask(
            &cfg,
            "roamer",
            Some(Mode::Enforce),
            &get,
            "/stores/def456/v3/catalog/products",
        );
        assert_eq!(
            run(&cfg, a, BodyFacts::None)
                .expect_err("enforce")
                .error
                .code(),
            "scope_denied"
        );
        // abc123's token lacks orders: refused in learn mode too.
        let a = ask(&cfg, "roamer", None, &get, "/stores/abc123/v2/orders");
        let e = run(&cfg, a, BodyFacts::None)
            .expect_err("the store's token")
            .error;
        assert!(
            e.detail().starts_with("the token of store 'abc123'"),
            "{}",
            e.detail()
        );
    }

    #[test]
    fn body_facts_decide_graphql_and_scripts() {
        let cfg = config();
        let gate = Gate {
            policy: &cfg.policy,
            stores: &cfg.stores,
            installed: &|_| Ok(None),
        };
        let get = Method::GET;
        let a = ask(
            &cfg,
            "inventory-sync",
            None,
            &get,
            "/graphql?query=mutation%7Ba%7D",
        );
        let d = route(&gate, a).expect_err("a GraphQL GET mutation");
        assert_eq!(d.error.code(), "bad_request");
        let a = ask(&cfg, "inventory-sync", None, &get, "/graphql?query=%7Ba%7D");
        let routed = route(&gate, a).expect("a GraphQL GET query");
        assert_eq!(routed.body_need(), None);
        assert!(routed.authorize(BodyFacts::None).is_ok());

        let post = Method::POST;
        let a = ask(&cfg, "inventory-sync", None, &post, "/graphql");
        let routed = route(&gate, a).expect("routed");
        assert_eq!(routed.body_need(), Some(BodyNeed::Graphql));
        let mutation = body_facts(BodyNeed::Graphql, br#"{"query":"mutation { a }"}"#, false)
            .expect("a mutation");
        assert_eq!(
            routed
                .authorize(mutation)
                .expect_err("read only")
                .error
                .code(),
            "scope_denied"
        );
        let a = ask(&cfg, "inventory-sync", None, &post, "/graphql");
        let query = body_facts(BodyNeed::Graphql, b"{ a }", true).expect("a query");
        assert!(route(&gate, a).expect("routed").authorize(query).is_ok());

        let put = Method::PUT;
        let a = ask(
            &cfg,
            "roamer",
            Some(Mode::Enforce),
            &put,
            "/stores/def456/v3/content/scripts/x",
        );
        let routed = route(&gate, a).expect("routed");
        let need = routed.body_need().expect("a script update reads the body");
        assert_eq!(need, BodyNeed::Script { update: true });
        let no_visibility = body_facts(need, br#"{"name":"x"}"#, false).expect("facts");
        let e = routed
            .authorize(no_visibility)
            .expect_err("needs Checkout Content")
            .error;
        assert!(
            e.detail().contains("store_content_checkout"),
            "{}",
            e.detail()
        );
        assert_eq!(
            body_facts(need, b"[", false).expect_err("not JSON").code(),
            "bad_request"
        );
    }
}
