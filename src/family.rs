//! API families: which BigCommerce host a request path is for, and the small
//! route tables of the families that have one or two endpoints. Pure.
//!
//! A path chooses the family and the family fixes the origin; the caller's
//! `Host` never does. Each family has its own route table and its own
//! credential rule (see docs/request-path.md, "Families").

use std::fmt;
use std::sync::OnceLock;

use crate::policy::{FamilyId, RouteTable, ScopeTable, TableError};

/// A BigCommerce API family: one origin, one route table, one credential rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `api.bigcommerce.com/stores/{hash}/…` with the store's `X-Auth-Token`.
    Api,
    /// `payments.bigcommerce.com` with a payment access token minted per order.
    Payments,
    /// A channel's storefront `/graphql` with a minted private or impersonation token.
    Storefront,
    /// `api-b2b.bigcommerce.com/api/v3/io/…` with `X-Auth-Token` and `X-Store-Hash`.
    B2b,
    /// `api.bigcommerce.com/accounts/{uuid}/graphql` with an account token.
    Account,
    /// Answered by bcgate itself, never forwarded: customer login links and
    /// the current-customer check.
    Local,
}

impl Family {
    pub const ALL: [Family; 6] = [
        Family::Api,
        Family::Payments,
        Family::Storefront,
        Family::B2b,
        Family::Account,
        Family::Local,
    ];

    /// The label in the access log and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Payments => "payments",
            Self::Storefront => "storefront",
            Self::B2b => "b2b",
            Self::Account => "account",
            Self::Local => "bcgate",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// bcgate's path prefix of the B2B Edition REST Management API (after the store).
pub const B2B_PREFIX: &str = "/b2b/v3/io";
/// The same API's path on its own host.
pub const B2B_UPSTREAM_PREFIX: &str = "/api/v3/io";
/// The payments endpoint (after the store), on bcgate and on the payments host.
pub const PAYMENTS_PATH: &str = "/payments";
/// The storefront GraphQL endpoint (after the store) on bcgate.
pub const STOREFRONT_PATH: &str = "/storefront/graphql";
/// The storefront GraphQL endpoint on a channel's origin.
pub const STOREFRONT_UPSTREAM_PATH: &str = "/graphql";
const ACCOUNTS_SEGMENT: &str = "accounts";
/// bcgate's own customer-login endpoint (after the store): it signs a login link.
pub const CUSTOMER_LOGIN_PATH: &str = "/customer-login";
/// bcgate's own current-customer endpoint (after the store): it verifies a shopper's JWT.
pub const CURRENT_CUSTOMER_PATH: &str = "/current-customer";

/// Which family a store path (the part after `/stores/{store}`) is for, and
/// the path to look up in that family's table. A path under a family's
/// prefix belongs to that family even when no route matches it, so that it
/// is refused as that family's unknown route, never sent to another host.
pub fn of_store_path(api_path: &str) -> (Family, &str) {
    if let Some(rest) = under(api_path, "/b2b") {
        return (Family::B2b, under(rest, "/v3/io").unwrap_or(api_path));
    }
    if under(api_path, "/storefront").is_some() {
        return (Family::Storefront, api_path);
    }
    if under(api_path, PAYMENTS_PATH).is_some() {
        return (Family::Payments, api_path);
    }
    if under(api_path, CUSTOMER_LOGIN_PATH).is_some()
        || under(api_path, CURRENT_CUSTOMER_PATH).is_some()
    {
        return (Family::Local, api_path);
    }
    (Family::Api, api_path)
}

/// `path` after `prefix` when `prefix` is a whole leading segment run of it
/// (`/b2b/x` is under `/b2b`, `/b2bx` is not); `Some("")` when they are equal.
fn under<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// `/accounts/{uuid}/…`: the account segment and the path after it.
pub fn account_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?.strip_prefix(ACCOUNTS_SEGMENT)?;
    let rest = rest.strip_prefix('/')?;
    match rest.split_once('/') {
        Some((uuid, _)) => Some((uuid, &rest[uuid.len()..])),
        None => Some((rest, "")),
    }
}

/// The storefront access scopes a private token may carry, as bcgate grants
/// them (`storefront:<Scope>`), in BigCommerce's order.
pub const STOREFRONT_SCOPES: [&str; 3] = ["Unauthenticated", "Customer", "B2B"];
/// The grant that lets a client name the customer to impersonate.
pub const STOREFRONT_IMPERSONATE: &str = "storefront:impersonate";

/// The route tables of the one-endpoint families, and the scope families
/// their credentials depend on.
#[derive(Debug, Clone)]
pub struct FamilyRoutes {
    pub payments: RouteTable,
    pub storefront: RouteTable,
    pub account: RouteTable,
    /// The endpoints bcgate answers itself.
    pub local: RouteTable,
    /// `storefront:Unauthenticated`, `storefront:Customer`, `storefront:B2B`.
    pub storefront_scopes: [FamilyId; 3],
    pub storefront_impersonate: FamilyId,
    /// What a store's token needs to mint a private token (`store_storefront_api`).
    pub mint_private: FamilyId,
    /// What a store's token needs to mint an impersonation token.
    pub mint_impersonation: FamilyId,
}

/// The one-endpoint tables, in `data/routes.txt`'s line format. A storefront
/// request needs one of the three access-scope grants (which one it needs
/// besides depends on who it acts as; see `decide`). Account-level GraphQL
/// needs a read-level `account_*` scope for a query and a modify-level one
/// for a mutation.
const PAYMENTS_TABLE: &str = "POST /payments store_payments_access_token_create - # a payment access token is minted for the order";
const STOREFRONT_TABLE: &str = "POST /storefront/graphql \
     storefront:Unauthenticated,storefront:Customer,storefront:B2B - \
     # a private token is minted with the storefront scopes the client holds";
const ACCOUNT_TABLE: &str = "POST /graphql \
     account_read,account_apps_read,account_checkouts_create,account_stores_read,\
     account_subscriptions_cancel,account_users_write graphql \
     # account-level GraphQL: queries need a read-level account scope, mutations a modify-level one";
/// The endpoints bcgate answers. Current-customer names `default` (every
/// API account has it) but checks no scope: any client allowed the store
/// may ask who a shopper's token names (see `decide`).
const LOCAL_TABLE: &str = "POST /customer-login store_v2_customers_login - \
     # bcgate signs a customer login link with the store's client secret\n\
     POST /current-customer default - \
     # bcgate verifies a current-customer JWT; any client allowed the store, no scope checked";

impl FamilyRoutes {
    /// The tables on the built-in scope table (parsed once per process).
    pub fn builtin() -> Result<&'static FamilyRoutes, TableError> {
        static BUILTIN: OnceLock<Result<FamilyRoutes, TableError>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| Self::parse(&crate::policy::Policy::builtin()?.scopes))
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn parse(scopes: &ScopeTable) -> Result<Self, TableError> {
        let family = |name: &str| {
            scopes.family(name).ok_or_else(|| TableError {
                line: 0,
                msg: format!("the scope table has no family {name}"),
            })
        };
        Ok(Self {
            payments: RouteTable::parse(PAYMENTS_TABLE, scopes)?,
            storefront: RouteTable::parse(STOREFRONT_TABLE, scopes)?,
            account: RouteTable::parse(ACCOUNT_TABLE, scopes)?,
            local: RouteTable::parse(LOCAL_TABLE, scopes)?,
            storefront_scopes: [
                family("storefront:Unauthenticated")?,
                family("storefront:Customer")?,
                family("storefront:B2B")?,
            ],
            storefront_impersonate: family(STOREFRONT_IMPERSONATE)?,
            mint_private: family("store_storefront_api")?,
            mint_impersonation: family("store_storefront_api_customer_impersonation")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_path_chooses_its_family_by_whole_segments() {
        let cases = [
            ("/v3/catalog/products", Family::Api, "/v3/catalog/products"),
            ("/graphql", Family::Api, "/graphql"),
            ("/payments", Family::Payments, "/payments"),
            ("/payments/x", Family::Payments, "/payments/x"),
            ("/paymentsx", Family::Api, "/paymentsx"),
            (
                "/storefront/graphql",
                Family::Storefront,
                "/storefront/graphql",
            ),
            ("/storefront", Family::Storefront, "/storefront"),
            ("/storefrontx/graphql", Family::Api, "/storefrontx/graphql"),
            ("/b2b/v3/io/companies", Family::B2b, "/companies"),
            ("/b2b/v3/io/companies/7", Family::B2b, "/companies/7"),
            ("/b2b/v3/io", Family::B2b, ""),
            ("/b2b/v2/io/companies", Family::B2b, "/b2b/v2/io/companies"),
            (
                "/b2b/v3/iox/companies",
                Family::B2b,
                "/b2b/v3/iox/companies",
            ),
            (
                "/b2bx/v3/io/companies",
                Family::Api,
                "/b2bx/v3/io/companies",
            ),
            ("/customer-login", Family::Local, "/customer-login"),
            ("/current-customer", Family::Local, "/current-customer"),
            ("/customer-loginx", Family::Api, "/customer-loginx"),
            ("/v2/customer-login", Family::Api, "/v2/customer-login"),
        ];
        for (path, family, lookup) in cases {
            assert_eq!(of_store_path(path), (family, lookup), "{path}");
        }
    }

    #[test]
    fn account_paths_split_at_the_account() {
        assert_eq!(
            account_path("/accounts/0b4c/graphql"),
            Some(("0b4c", "/graphql"))
        );
        assert_eq!(account_path("/accounts/0b4c"), Some(("0b4c", "")));
        assert_eq!(account_path("/accountsx/0b4c/graphql"), None);
        assert_eq!(account_path("/stores/accounts/graphql"), None);
        assert_eq!(account_path("/accounts"), None);
    }

    #[test]
    fn labels_are_distinct() {
        let mut labels: Vec<_> = Family::ALL.iter().map(|f| f.as_str()).collect();
        labels.dedup();
        assert_eq!(labels.len(), Family::ALL.len());
    }
}
