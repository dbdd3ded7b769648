//! Policy as data and pure functions: the route tables (api.bigcommerce.com's
//! and B2B Edition's), the scope table and the decision whether a caller may
//! send a request. No I/O here.
//!
//! The decision, in order: the store must be allowed to the client; the
//! route must exist and be proxied; one of its families must be granted at
//! the level the operation needs (read: GET, HEAD and read-POSTs; write:
//! everything else; GraphQL and scripts look at the body); and if the store's
//! token is known to lack every granting scope, bcgate says so itself.

pub mod body;
pub mod scopes;
pub mod table;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::OnceLock;

use http::Method;

use crate::error::{ProxyError, ScopeDenial};
pub use body::{BodyError, GraphqlKind};
pub use scopes::{FamilyId, FamilySet, Grants, Level, ScopeTable};
pub use table::{Lookup, Origin, Route, RouteFlags, RouteTable};

/// The built-in tables, derived from BigCommerce's specs by `routegen`.
pub const BUILTIN_ROUTES: &str = include_str!("../../data/routes.txt");
pub const BUILTIN_B2B_ROUTES: &str = include_str!("../../data/b2b-routes.txt");
pub const BUILTIN_SCOPES: &str = include_str!("../../data/scopes.txt");

/// The family whose modify scope a checkout/all_pages script also needs.
const CHECKOUT_CONTENT: &str = "store_content_checkout";

/// A line of a table that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError {
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

impl std::error::Error for TableError {}

/// Which stores a client may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreAllow {
    All,
    /// Real store hashes (aliases are resolved when the config is validated).
    Only(Vec<String>),
}

impl StoreAllow {
    pub fn allows(&self, hash: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(hashes) => hashes.iter().any(|h| h == hash),
        }
    }
}

/// What policy learned from the body, when the route needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFacts {
    /// The route does not look at bodies.
    None,
    Graphql(GraphqlKind),
    /// A script write; whether its visibility needs Checkout Content.
    Script {
        needs_checkout_content: bool,
    },
}

/// One side of a scope check: a client, or a store's token.
#[derive(Debug, Clone, Copy)]
pub struct Holder<'a> {
    /// `client 'x'` or `the token of store 'abc'`, for the error detail.
    pub label: &'a str,
    pub grants: &'a Grants,
}

/// A request to decide on.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a Method,
    pub route: &'a Route,
    pub body: BodyFacts,
}

/// What a request asks of a holder's scopes, as data: one of `families` at
/// the operation's level, and Checkout Content's modify scope when a
/// script's body says so. The same facts [`Policy::check_scopes`] decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub families: FamilySet,
    pub write: bool,
    pub checkout_content: bool,
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub scopes: ScopeTable,
    /// api.bigcommerce.com's routes (paths after `/stores/{store}`), with the
    /// operator's `[[routes]]`.
    pub routes: RouteTable,
    /// B2B Edition's routes (paths after `/stores/{store}/b2b/v3/io`).
    pub b2b_routes: RouteTable,
    checkout_content: FamilySet,
}

impl Policy {
    /// A policy with an empty B2B table (see [`Policy::with_b2b_routes`]).
    pub fn new(scopes: ScopeTable, routes: RouteTable) -> Result<Self, TableError> {
        let mut checkout_content = FamilySet::default();
        let id = scopes.family(CHECKOUT_CONTENT).ok_or_else(|| TableError {
            line: 0,
            msg: format!("the scope table has no family {CHECKOUT_CONTENT}"),
        })?;
        checkout_content.insert(id);
        Ok(Self {
            scopes,
            routes,
            b2b_routes: RouteTable::default(),
            checkout_content,
        })
    }

    /// The same policy with this B2B Edition table (parsed against `self.scopes`).
    pub fn with_b2b_routes(self, b2b_routes: RouteTable) -> Self {
        Self { b2b_routes, ..self }
    }

    /// The tables compiled into the binary (parsed once per process).
    pub fn builtin() -> Result<&'static Policy, TableError> {
        static BUILTIN: OnceLock<Result<Policy, TableError>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                let scopes = ScopeTable::parse(BUILTIN_SCOPES)?;
                let routes = RouteTable::parse(BUILTIN_ROUTES, &scopes)?;
                let b2b_routes =
                    RouteTable::parse(BUILTIN_B2B_ROUTES, &scopes).map_err(|e| TableError {
                        line: e.line,
                        msg: format!("b2b-routes.txt: {}", e.msg),
                    })?;
                Ok(Policy::new(scopes, routes)?.with_b2b_routes(b2b_routes))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Whether the operation is a write (needs a modify-level scope).
    pub fn is_write(req: &Request<'_>) -> bool {
        match req.body {
            BodyFacts::Graphql(kind) => kind == GraphqlKind::Mutation,
            _ => req.route.is_write(req.method),
        }
    }

    /// What the request needs (learn mode records it).
    pub fn need(&self, req: &Request<'_>) -> Need {
        Need {
            families: req.route.families,
            write: Self::is_write(req),
            checkout_content: req.body
                == (BodyFacts::Script {
                    needs_checkout_content: true,
                }),
        }
    }

    /// A need as scope names: every clause must be met, by any one scope of it.
    pub fn need_scopes(&self, need: &Need) -> Vec<Vec<String>> {
        let mut clauses = vec![self.scopes.required(&need.families, need.write)];
        if need.checkout_content {
            clauses.push(self.scopes.required(&self.checkout_content, true));
        }
        clauses
    }

    /// The scope decision for one holder (the client, then the store's token).
    pub fn check_scopes(&self, holder: Holder<'_>, req: &Request<'_>) -> Result<(), ProxyError> {
        let route = req.route;
        if route.flags.not_proxied {
            return Err(ProxyError::NotProxied {
                method: req.method.to_string(),
                route: route.template.to_string(),
            });
        }
        let write = Self::is_write(req);
        let deny = |families: &FamilySet, write: bool| {
            ProxyError::ScopeDenied(Box::new(ScopeDenial {
                subject: holder.label.to_owned(),
                method: req.method.to_string(),
                route: route.template.to_string(),
                required: self.scopes.required(families, write),
            }))
        };
        if !holder.grants.for_op(write).intersects(&route.families) {
            return Err(deny(&route.families, write));
        }
        if req.body
            == (BodyFacts::Script {
                needs_checkout_content: true,
            })
            && !holder.grants.modify.intersects(&self.checkout_content)
        {
            return Err(deny(&self.checkout_content, true));
        }
        Ok(())
    }

    /// The scope decision after the route was found: the client's scopes,
    /// then the store token's scopes when the config states them.
    pub fn authorize(
        &self,
        client: Holder<'_>,
        store: Option<Holder<'_>>,
        req: &Request<'_>,
    ) -> Result<(), ProxyError> {
        self.check_scopes(client, req)?;
        if let Some(store) = store {
            self.check_scopes(store, req)?;
        }
        Ok(())
    }
}
