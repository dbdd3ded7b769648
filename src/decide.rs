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
//! The path also chooses the API family ([`crate::family`]): each has its
//! own route table, and the decision says which credential the request
//! gets ([`Credential`]); minting it is the proxy's job, not the decision's.
//!
//! Steps 1–3 are [`route`], step 4 is [`Routed::authorize`]: between them
//! the proxy reads the body when [`Routed::body_need`] says policy looks at
//! it. [`decide`] is both, for callers that already know the body facts.
//!
//! Recording learn-mode observations is the proxy's job, not the decision's.

use std::sync::Arc;

use http::Method;

use crate::config::{Account, Accounts, Client, Config, Store, Stores};
use crate::error::{ProxyError, ScopeDenial};
use crate::family::{self, Family, FamilyRoutes};
use crate::learn::{Mode, Verdict};
use crate::path::{self, InstalledLookup};
use crate::policy::{
    BodyFacts, FamilyId, GraphqlKind, Holder, Lookup, Policy, Request, Route, RouteTable,
};

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
    pub families: &'c FamilyRoutes,
    pub stores: &'c Stores,
    pub accounts: &'c Accounts,
    /// Asked for a store the config does not list (the stores that
    /// installed the app); `&|_| Ok(None)` when there is no token store.
    pub installed: &'c InstalledLookup<'c>,
}

impl<'c> Gate<'c> {
    pub fn of(config: &'c Config, installed: &'c InstalledLookup<'c>) -> Self {
        Self {
            policy: &config.policy,
            families: config.families,
            stores: &config.stores,
            accounts: &config.accounts,
            installed,
        }
    }
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
    /// The request headers the other families' decisions read.
    pub headers: FamilyHeaders<'r>,
}

/// The request headers a decision reads besides the path: who a storefront
/// request acts as, and which order a payment is for. Raw, as sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct FamilyHeaders<'r> {
    /// `X-Bc-Customer-Id`: the customer to impersonate.
    pub customer_id: Option<&'r [u8]>,
    /// Whether `X-Bcgate-Customer-Token` (a shopper's current-customer JWT) was sent.
    pub customer_token: bool,
    /// `X-Bcgate-Order-Id`: the order a payment is for.
    pub order_id: Option<&'r [u8]>,
}

/// The credential a decided request is sent with; bcgate adds it, the
/// caller never sees it.
#[derive(Debug, Clone)]
pub enum Credential {
    /// The store's `X-Auth-Token` (api; b2b adds `X-Store-Hash`).
    StoreToken,
    /// A payment access token minted for this order.
    PaymentToken { order: u64 },
    /// A storefront private token with these access scopes (bit i is
    /// [`family::STOREFRONT_SCOPES`]`[i]`).
    Private { channel: u32, scopes: u8 },
    /// A customer impersonation token acting as this customer.
    Impersonation { channel: u32, customer: u64 },
    /// A customer impersonation token acting as the customer whose
    /// `X-Bcgate-Customer-Token` the proxy verifies.
    ProvenCustomer { channel: u32 },
    /// The account's own token.
    Account(Arc<Account>),
    /// None: bcgate answers the request itself ([`crate::answer`]).
    Answer(Answer),
}

/// What bcgate answers itself instead of forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `POST /customer-login`: a signed customer login link.
    CustomerLogin,
    /// `POST /current-customer`: the customer a shopper's JWT names.
    CurrentCustomer,
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

impl Credential {
    /// The storefront grants this credential needed, as
    /// [`crate::learn::Seen::storefront`] bits: a private token its access
    /// scopes (bcgate cannot see which of them a query uses, so each
    /// counts), an impersonation token `storefront:impersonate`, a verified
    /// shopper `storefront:Customer`; 0 for the other families.
    pub fn storefront_grants(&self) -> u8 {
        match self {
            // Bits as `family::STOREFRONT_SCOPES`; 0 never happens (the least scope is minted).
            Credential::Private { scopes, .. } => *scopes & 0b111,
            Credential::Impersonation { .. } => crate::learn::IMPERSONATE_BIT,
            Credential::ProvenCustomer { .. } => 1 << 1,
            _ => 0,
        }
    }
}

/// Store and route found, the client allowed the store; scopes not checked yet.
#[derive(Debug)]
pub struct Routed<'c, 'r> {
    /// `None` for the account family only.
    pub store: Option<Arc<Store>>,
    pub family: Family,
    /// The path after `/stores/{store}` (the whole path for the default
    /// store; after `/accounts/{uuid}` for an account).
    pub api_path: &'r str,
    pub route: &'c Route,
    credential: Credential,
    policy: &'c Policy,
    families: &'c FamilyRoutes,
    ask: Ask<'c, 'r>,
    /// The facts known without reading the body; `None` when it must be read.
    known: Option<BodyFacts>,
}

/// A request that goes upstream.
#[derive(Debug)]
pub struct Decision<'c, 'r> {
    /// `None` for the account family only.
    pub store: Option<Arc<Store>>,
    pub family: Family,
    pub credential: Credential,
    pub api_path: &'r str,
    pub route: &'c Route,
    pub body: BodyFacts,
    /// Learn mode only: the client's own scopes refuse it, so enforce mode
    /// would answer 403 `scope_denied`; learn mode forwards it.
    pub would_deny: Option<Box<ScopeDenial>>,
}

/// Steps 1–3: the store and the route (see the module docs).
pub fn route<'c, 'r>(gate: &Gate<'c>, ask: Ask<'c, 'r>) -> Result<Routed<'c, 'r>, Denial<'c>> {
    if let Some((uuid, rest)) = family::account_path(ask.path.as_str()) {
        return route_account(gate, ask, uuid, rest);
    }
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
    let (family, lookup_path) = family::of_store_path(target.api_path);
    let table = match family {
        Family::Api => &gate.policy.routes,
        Family::B2b => &gate.policy.b2b_routes,
        Family::Payments => &gate.families.payments,
        Family::Storefront => &gate.families.storefront,
        Family::Account => &gate.families.account,
        Family::Local => &gate.families.local,
    };
    let route = lookup(table, ask.method, lookup_path, target.api_path)
        .map_err(|e| Denial::new(e, Some(&store), None))?;
    let credential = match family {
        Family::Api | Family::B2b => Credential::StoreToken,
        // The order is read once the client may pay at all (`authorize`).
        Family::Payments => Credential::PaymentToken { order: 0 },
        Family::Storefront => storefront_credential(&store, &ask)
            .map_err(|e| Denial::new(e, Some(&store), Some(route)))?,
        Family::Local if lookup_path == family::CURRENT_CUSTOMER_PATH => {
            Credential::Answer(Answer::CurrentCustomer)
        }
        Family::Local => Credential::Answer(Answer::CustomerLogin),
        // `of_store_path` never answers Account; it has no store.
        Family::Account => Credential::StoreToken,
    };
    let known = known_facts(route, &ask).map_err(|e| Denial::new(e, Some(&store), Some(route)))?;
    Ok(Routed {
        store: Some(store),
        family,
        api_path: target.api_path,
        route,
        credential,
        policy: gate.policy,
        families: gate.families,
        ask,
        known,
    })
}

/// `/accounts/{uuid}/…`: the account must be configured and the client's.
fn route_account<'c, 'r>(
    gate: &Gate<'c>,
    ask: Ask<'c, 'r>,
    uuid: &str,
    rest: &'r str,
) -> Result<Routed<'c, 'r>, Denial<'c>> {
    let client = ask.client;
    let account = gate
        .accounts
        .get(uuid)
        .filter(|_| client.accounts.iter().any(|a| a == uuid))
        .ok_or_else(|| {
            Denial::new(
                ProxyError::AccountNotAllowed {
                    client: client.name.clone(),
                    account: uuid.chars().take(64).collect(),
                },
                None,
                None,
            )
        })?;
    let route = lookup(&gate.families.account, ask.method, rest, rest)
        .map_err(|e| Denial::new(e, None, None))?;
    let known = known_facts(route, &ask).map_err(|e| Denial::new(e, None, Some(route)))?;
    Ok(Routed {
        store: None,
        family: Family::Account,
        api_path: rest,
        route,
        credential: Credential::Account(account.clone()),
        policy: gate.policy,
        families: gate.families,
        ask,
        known,
    })
}

fn lookup<'c>(
    table: &'c RouteTable,
    method: &Method,
    path: &str,
    shown: &str,
) -> Result<&'c Route, ProxyError> {
    match table.lookup(method, path) {
        Lookup::Found(r) => Ok(r),
        Lookup::Unknown => Err(ProxyError::RouteUnknown {
            method: method.to_string(),
            path: shown.chars().take(200).collect(),
        }),
        Lookup::CaseMismatch => Err(bad_header("path segments are case-sensitive")),
    }
}

/// The body facts known without reading the body, or `None` when it must be read.
fn known_facts(route: &Route, ask: &Ask<'_, '_>) -> Result<Option<BodyFacts>, ProxyError> {
    Ok(match body_need(route, ask.method) {
        Some(_) => None,
        None if route.flags.graphql => {
            // Only a GET or HEAD gets here: its document travels in the query string.
            let kind = crate::policy::body::graphql_get_kind(ask.query.unwrap_or(""))
                .map_err(|e| ProxyError::BadRequest(e.0))?;
            Some(BodyFacts::Graphql(kind))
        }
        None => Some(BodyFacts::None),
    })
}

fn bad_header(why: &str) -> ProxyError {
    ProxyError::BadRequest(why.into())
}

/// A header value that is a positive decimal id, as the decision reads
/// `X-Bc-Customer-Id` and `X-Bcgate-Order-Id`.
pub fn parse_positive_id(raw: &[u8]) -> Option<u64> {
    std::str::from_utf8(raw)
        .ok()
        .filter(|s| !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|id| *id > 0)
}

/// A header holding a positive decimal id; `name` for the 400's detail.
fn positive_id(raw: Option<&[u8]>, name: &str) -> Result<Option<u64>, ProxyError> {
    let Some(raw) = raw else { return Ok(None) };
    match parse_positive_id(raw) {
        Some(id) => Ok(Some(id)),
        None => Err(bad_header(&format!("{name} must be a positive decimal id"))),
    }
}

/// The storefront channel named by `channel_id` (or the store's default
/// one), and who the request acts as.
fn storefront_credential(store: &Store, ask: &Ask<'_, '_>) -> Result<Credential, ProxyError> {
    let mut asked = None;
    for (k, v) in form_urlencoded::parse(ask.query.unwrap_or("").as_bytes()) {
        if k == "channel_id" {
            if asked.is_some() {
                return Err(bad_header("channel_id is given twice"));
            }
            asked = Some(
                v.parse::<u32>()
                    .ok()
                    .filter(|c| *c > 0)
                    .ok_or_else(|| bad_header("channel_id must be a positive channel id"))?,
            );
        } else {
            return Err(bad_header(
                "the storefront endpoint takes no query parameter but channel_id",
            ));
        }
    }
    let channel = store
        .channel(asked)
        .ok_or_else(|| ProxyError::ChannelUnknown {
            store: store.hash.clone(),
            channel: asked,
        })?
        .id;
    let customer = positive_id(ask.headers.customer_id, "X-Bc-Customer-Id")?;
    Ok(match (customer, ask.headers.customer_token) {
        (Some(_), true) => {
            return Err(bad_header(
                "send X-Bc-Customer-Id or X-Bcgate-Customer-Token, not both",
            ));
        }
        (Some(customer), false) => Credential::Impersonation { channel, customer },
        (None, true) => Credential::ProvenCustomer { channel },
        // The scopes are the client's; set when authorized.
        (None, false) => Credential::Private { channel, scopes: 0 },
    })
}

fn body_need(route: &Route, method: &Method) -> Option<BodyNeed> {
    // A GraphQL GET or HEAD carries its document in the query string.
    if route.flags.graphql && *method != Method::GET && *method != Method::HEAD {
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
    pub fn authorize(mut self, body: BodyFacts) -> Result<Decision<'c, 'r>, Denial<'c>> {
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
        // Its own handle: the storefront rule below sets the credential.
        let store_ref = self.store.clone();
        let store = store_ref.as_deref().and_then(|s| {
            s.grants.as_ref().map(|g| Holder {
                label: &s.label,
                grants: g,
            })
        });
        let decided = match self.family {
            Family::Api => self.check(client, store, &req),
            Family::Payments => self.check(client, store, &req).and_then(|would_deny| {
                let order = positive_id(self.ask.headers.order_id, "X-Bcgate-Order-Id")?
                    .ok_or_else(|| bad_header("X-Bcgate-Order-Id is required"))?;
                self.credential = Credential::PaymentToken { order };
                Ok(would_deny)
            }),
            // A store token's scopes name no B2B Edition grant (the API
            // account's B2B setting is not an OAuth scope), and an account
            // is no store.
            Family::B2b | Family::Account => self.check(client, None, &req),
            Family::Storefront => self.storefront(client, store),
            // Any client allowed the store may ask who a shopper is.
            Family::Local
                if matches!(self.credential, Credential::Answer(Answer::CurrentCustomer)) =>
            {
                Ok(None)
            }
            // A login link is a credential for a shopper's session: learn
            // mode never signs one the client's scopes refuse.
            Family::Local => self.policy.authorize(client, store, &req).map(|()| None),
        };
        match decided {
            Ok(would_deny) => Ok(Decision {
                store: self.store,
                family: self.family,
                credential: self.credential,
                api_path: self.api_path,
                route: self.route,
                body,
                would_deny,
            }),
            Err(e) => Err(Denial {
                error: e,
                store: self.store,
                route: Some(self.route),
            }),
        }
    }

    /// The route's scopes, for the client and then the store's token; in
    /// learn mode the client's own denial is only counted.
    fn check(
        &self,
        client: Holder<'_>,
        store: Option<Holder<'_>>,
        req: &Request<'_>,
    ) -> Result<Option<Box<ScopeDenial>>, ProxyError> {
        match self.ask.mode {
            Mode::Enforce => self.policy.authorize(client, store, req).map(|()| None),
            Mode::Learn => {
                crate::learn::decide_learn(self.policy, client, store, req).map(|v| match v {
                    Verdict::Granted => None,
                    Verdict::WouldDeny(denial) => Some(denial),
                })
            }
        }
    }

    /// Storefront: what the client needs depends on who the request acts as
    /// (any access scope for a private token, `storefront:impersonate` to
    /// name a customer, `storefront:Customer` for a proven shopper), and the
    /// store's token must be able to mint that kind of token. A private
    /// token gets exactly the access scopes the client holds.
    fn storefront(
        &mut self,
        client: Holder<'_>,
        store: Option<Holder<'_>>,
    ) -> Result<Option<Box<ScopeDenial>>, ProxyError> {
        let f = self.families;
        let (client_needs, store_needs): (&[FamilyId], FamilyId) = match self.credential {
            Credential::Impersonation { .. } => (
                std::slice::from_ref(&f.storefront_impersonate),
                f.mint_impersonation,
            ),
            Credential::ProvenCustomer { .. } => (&f.storefront_scopes[1..2], f.mint_impersonation),
            _ => (&f.storefront_scopes, f.mint_private),
        };
        let denial = |subject: &str, needs: &[FamilyId]| {
            let mut set = crate::policy::FamilySet::default();
            needs.iter().for_each(|id| set.insert(*id));
            Box::new(ScopeDenial {
                subject: subject.to_owned(),
                method: self.ask.method.to_string(),
                route: self.route.template.to_string(),
                required: self.policy.scopes.required(&set, true),
            })
        };
        let mut would_deny = None;
        if !client_needs
            .iter()
            .any(|id| client.grants.modify.contains(*id))
        {
            let d = denial(client.label, client_needs);
            match self.ask.mode {
                Mode::Enforce => return Err(ProxyError::ScopeDenied(d)),
                Mode::Learn => would_deny = Some(d),
            }
        }
        if let Some(store) = store
            && !store.grants.modify.contains(store_needs)
        {
            return Err(ProxyError::ScopeDenied(denial(store.label, &[store_needs])));
        }
        if let Credential::Private { scopes, .. } = &mut self.credential {
            *scopes = f
                .storefront_scopes
                .iter()
                .enumerate()
                .filter(|(_, id)| client.grants.modify.contains(**id))
                .fold(0, |m, (i, _)| m | 1 << i);
            if *scopes == 0 {
                // Learn mode without any access scope: the least one.
                *scopes = 1;
            }
        }
        Ok(would_deny)
    }
}

impl<'c> Decision<'c, '_> {
    /// What this decision forwards, for the learn-mode recorder.
    pub fn seen<'a>(&'a self, method: &'a Method) -> crate::learn::Seen<'a> {
        crate::learn::Seen {
            family: self.family,
            req: Request {
                method,
                route: self.route,
                body: self.body,
            },
            storefront: self.credential.storefront_grants(),
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
mod recorded;
#[cfg(test)]
mod tests;
