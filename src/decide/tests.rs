//! The decision, without sockets: stores, routes, scopes, families.

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
        headers: FamilyHeaders::default(),
    }
}

fn run<'c>(cfg: &'c Config, a: Ask<'c, '_>, body: BodyFacts) -> Result<String, Denial<'c>> {
    let gate = Gate::of(cfg, &|_| Ok(None));
    decide(&gate, a, body).map(|d| {
        let hash = d.store.as_ref().map_or("-", |s| s.hash.as_str());
        format!("{hash} {}", d.api_path)
    })
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
    let d =
        decide(&Gate::of(&cfg, &|_| Ok(None)), a, BodyFacts::None).expect("learn mode forwards");
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
    let gate = Gate::of(&cfg, &|_| Ok(None));
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
    let mutation =
        body_facts(BodyNeed::Graphql, br#"{"query":"mutation { a }"}"#, false).expect("a mutation");
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

// ---------------------------------------------------------------------------
// The other API families

const FAMILIES: &str = r#"
[learn]
path = "observations.json"

[[stores]]
hash = "abc123"
token_env = "NEVER_READ_A"
client_id = "app-client"
client_secret_env = "NEVER_READ_SECRET"
channels = [
  { id = 1, origin = "https://shop.example.com" },
  { id = 2, origin = "https://eu.shop.example.com/prefix" },
]

[[stores]]
hash = "lim999"
token_env = "NEVER_READ_L"
scopes = ["store_v2_products"]
channels = [{ id = 1, origin = "https://lim.example.com" }]

[[accounts]]
uuid = "0b4c6a1e-3f5d-4c2b-9a8e-7d6f5e4c3b2a"
token_env = "NEVER_READ_ACCOUNT"

[[clients]]
name = "shop"
key_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
stores = ["*"]
default_store = "abc123"
scopes = ["storefront:Unauthenticated", "storefront:B2B", "b2b:read", "store_payments_access_token_create"]
accounts = ["0b4c6a1e-3f5d-4c2b-9a8e-7d6f5e4c3b2a"]

[[clients]]
name = "concierge"
key_sha256 = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
stores = ["abc123"]
scopes = ["storefront:impersonate", "storefront:Customer", "b2b:modify", "account_users_write", "store_v2_customers_login"]

[[clients]]
name = "bystander"
key_sha256 = "fd61a03af4f77d870fc21e05e7e80678095c92d808cfb3b5c279ee04c74aca13"
stores = ["*"]
scopes = ["store_v2_products"]
accounts = ["0b4c6a1e-3f5d-4c2b-9a8e-7d6f5e4c3b2a"]

[[clients]]
name = "watcher"
key_sha256 = "a4e624d686e03ed2767c0abd85c14426b0b1157d2ce81d27bb4fe4f6f01d688a"
stores = ["*"]
scopes = ["store_v2_products"]
mode = "learn"
"#;

const ACCOUNT: &str = "0b4c6a1e-3f5d-4c2b-9a8e-7d6f5e4c3b2a";

fn families_config() -> Config {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bcgate.toml");
    std::fs::write(&path, FAMILIES).expect("write config");
    Config::load_without_secrets(&path).expect("config without secrets")
}

/// The decision for `client` with these family headers, in the client's mode.
fn decide_with(
    cfg: &Config,
    client: &str,
    method: &Method,
    path: &str,
    headers: FamilyHeaders<'_>,
    body: BodyFacts,
) -> Result<(Family, Credential, bool), ProxyError> {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let client = cfg.clients.by_name(client).expect("a configured client");
    let a = Ask {
        client,
        mode: client.mode,
        method,
        path: Canonical::new(path).expect("a canonical path"),
        query,
        headers,
    };
    decide(&Gate::of(cfg, &|_| Ok(None)), a, body)
        .map(|d| (d.family, d.credential, d.would_deny.is_some()))
        .map_err(|d| d.error)
}

fn code(r: Result<(Family, Credential, bool), ProxyError>) -> &'static str {
    r.expect_err("refused").code()
}

#[test]
fn a_storefront_private_token_carries_exactly_the_clients_storefront_scopes() {
    let cfg = families_config();
    let post = Method::POST;
    let none = FamilyHeaders::default();
    let sf =
        |path: &str, client: &str| decide_with(&cfg, client, &post, path, none, BodyFacts::None);
    match sf("/stores/abc123/storefront/graphql", "shop").expect("allowed") {
        (Family::Storefront, Credential::Private { channel: 1, scopes }, false) => {
            // Unauthenticated (bit 0) and B2B (bit 2), not Customer.
            assert_eq!(scopes, 0b101);
        }
        other => panic!("{other:?}"),
    }
    // The default store, and a channel named by channel_id.
    match sf("/storefront/graphql?channel_id=2", "shop").expect("allowed") {
        (Family::Storefront, Credential::Private { channel: 2, .. }, _) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        code(sf("/storefront/graphql?channel_id=3", "shop")),
        "channel_unknown"
    );
    for bad in [
        "channel_id=x",
        "channel_id=0",
        "channel_id=1&channel_id=2",
        "other=1",
    ] {
        assert_eq!(
            code(sf(&format!("/storefront/graphql?{bad}"), "shop")),
            "bad_request",
            "{bad}"
        );
    }
    // A client with no storefront grant is refused before anything is minted.
    let e = sf("/stores/abc123/storefront/graphql", "bystander").expect_err("no grant");
    let ProxyError::ScopeDenied(d) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(
        d.required,
        [
            "storefront:Unauthenticated",
            "storefront:Customer",
            "storefront:B2B"
        ]
    );
    // Only POST is a storefront route.
    let get = Method::GET;
    let e = decide_with(
        &cfg,
        "shop",
        &get,
        "/storefront/graphql",
        none,
        BodyFacts::None,
    );
    assert_eq!(code(e), "route_unknown");
}

#[test]
fn a_store_token_known_to_lack_the_token_creation_scope_mints_nothing() {
    let cfg = families_config();
    let post = Method::POST;
    let e = decide_with(
        &cfg,
        "shop",
        &post,
        "/stores/lim999/storefront/graphql",
        FamilyHeaders::default(),
        BodyFacts::None,
    )
    .expect_err("lim999's token cannot mint");
    assert!(
        e.detail().contains("store_storefront_api"),
        "{}",
        e.detail()
    );
    assert!(
        e.detail().starts_with("the token of store 'lim999'"),
        "{}",
        e.detail()
    );
}

#[test]
fn impersonation_needs_its_own_grant_and_a_proven_shopper_needs_customer() {
    let cfg = families_config();
    let post = Method::POST;
    let path = "/stores/abc123/storefront/graphql";
    let as_customer = FamilyHeaders {
        customer_id: Some(b"42"),
        ..FamilyHeaders::default()
    };
    let proven = FamilyHeaders {
        customer_token: true,
        ..FamilyHeaders::default()
    };
    // shop holds access scopes but not storefront:impersonate.
    let e = decide_with(&cfg, "shop", &post, path, as_customer, BodyFacts::None)
        .expect_err("may not name a customer");
    assert!(
        e.detail().contains("storefront:impersonate"),
        "{}",
        e.detail()
    );
    match decide_with(&cfg, "concierge", &post, path, as_customer, BodyFacts::None) {
        Ok((
            _,
            Credential::Impersonation {
                channel: 1,
                customer: 42,
            },
            false,
        )) => {}
        other => panic!("{other:?}"),
    }
    // A proven shopper: storefront:Customer, which shop lacks.
    let e =
        decide_with(&cfg, "shop", &post, path, proven, BodyFacts::None).expect_err("no Customer");
    assert!(e.detail().contains("storefront:Customer"), "{}", e.detail());
    match decide_with(&cfg, "concierge", &post, path, proven, BodyFacts::None) {
        Ok((_, Credential::ProvenCustomer { channel: 1 }, false)) => {}
        other => panic!("{other:?}"),
    }
    // Both, or a customer id that is not a positive number: 400.
    let both = FamilyHeaders {
        customer_id: Some(b"42"),
        customer_token: true,
        order_id: None,
    };
    assert_eq!(
        code(decide_with(
            &cfg,
            "concierge",
            &post,
            path,
            both,
            BodyFacts::None
        )),
        "bad_request"
    );
    for bad in [
        &b"0"[..],
        b"-1",
        b"4 2",
        b"",
        b"99999999999999999999",
        b"0x2a",
    ] {
        let h = FamilyHeaders {
            customer_id: Some(bad),
            ..FamilyHeaders::default()
        };
        assert_eq!(
            code(decide_with(
                &cfg,
                "concierge",
                &post,
                path,
                h,
                BodyFacts::None
            )),
            "bad_request",
            "{bad:?}"
        );
    }
}

#[test]
fn a_payment_needs_the_grant_first_and_then_an_order() {
    let cfg = families_config();
    let post = Method::POST;
    let order = |id: &'static [u8]| FamilyHeaders {
        order_id: Some(id),
        ..FamilyHeaders::default()
    };
    match decide_with(
        &cfg,
        "shop",
        &post,
        "/payments",
        order(b"215"),
        BodyFacts::None,
    ) {
        Ok((Family::Payments, Credential::PaymentToken { order: 215 }, false)) => {}
        other => panic!("{other:?}"),
    }
    // No grant: 403 whatever the order header says.
    let e = decide_with(
        &cfg,
        "bystander",
        &post,
        "/stores/abc123/payments",
        FamilyHeaders::default(),
        BodyFacts::None,
    );
    assert_eq!(code(e), "scope_denied");
    let none = FamilyHeaders::default();
    assert_eq!(
        code(decide_with(
            &cfg,
            "shop",
            &post,
            "/payments",
            none,
            BodyFacts::None
        )),
        "bad_request"
    );
    assert_eq!(
        code(decide_with(
            &cfg,
            "shop",
            &post,
            "/payments",
            order(b"x"),
            BodyFacts::None
        )),
        "bad_request"
    );
    let get = Method::GET;
    assert_eq!(
        code(decide_with(
            &cfg,
            "shop",
            &get,
            "/payments",
            order(b"1"),
            BodyFacts::None
        )),
        "route_unknown"
    );
}

#[test]
fn b2b_routes_come_from_their_own_table_with_bcgates_grant() {
    let cfg = families_config();
    let none = FamilyHeaders::default();
    let (get, post) = (Method::GET, Method::POST);
    let b2b = |client: &str, m: &Method, path: &str| {
        decide_with(&cfg, client, m, path, none, BodyFacts::None)
    };
    match b2b("shop", &get, "/stores/abc123/b2b/v3/io/companies") {
        Ok((Family::B2b, Credential::StoreToken, false)) => {}
        other => panic!("{other:?}"),
    }
    // lim999 states its token's scopes, which name no B2B grant: not checked.
    assert!(b2b("shop", &get, "/stores/lim999/b2b/v3/io/companies").is_ok());
    assert_eq!(
        code(b2b("shop", &post, "/b2b/v3/io/companies")),
        "scope_denied"
    );
    assert!(b2b("concierge", &post, "/stores/abc123/b2b/v3/io/companies").is_ok());
    assert_eq!(
        code(b2b("bystander", &get, "/stores/abc123/b2b/v3/io/companies")),
        "scope_denied"
    );
    // Not in the B2B table, and never looked up in the api table.
    for path in [
        "/b2b/v3/io/nothing",
        "/b2b/v2/io/companies",
        "/b2b/v3/io/v3/catalog/products",
    ] {
        assert_eq!(code(b2b("shop", &get, path)), "route_unknown", "{path}");
    }
}

#[test]
fn an_account_is_used_only_by_the_clients_that_list_it() {
    let cfg = families_config();
    let none = FamilyHeaders::default();
    let post = Method::POST;
    let path = format!("/accounts/{ACCOUNT}/graphql");
    let query = BodyFacts::Graphql(GraphqlKind::Query);
    let mutation = BodyFacts::Graphql(GraphqlKind::Mutation);
    // shop lists the account but holds no account scope.
    assert_eq!(
        code(decide_with(&cfg, "shop", &post, &path, none, query)),
        "scope_denied"
    );
    // concierge holds account_users_write but does not list the account.
    assert_eq!(
        code(decide_with(&cfg, "concierge", &post, &path, none, query)),
        "account_not_allowed"
    );
    // Unknown accounts read the same as unlisted ones.
    let other = "/accounts/00000000-0000-4000-8000-000000000000/graphql";
    assert_eq!(
        code(decide_with(&cfg, "shop", &post, other, none, query)),
        "account_not_allowed"
    );
    let bystander = decide_with(&cfg, "bystander", &post, &path, none, mutation);
    assert_eq!(code(bystander), "scope_denied");
}

#[test]
fn account_graphql_reads_need_a_read_scope_and_mutations_a_modify_scope() {
    let text = FAMILIES.replace(
        r#"scopes = ["store_v2_products"]
accounts = ["0b4c6a1e"#,
        r#"scopes = ["account_users_read"]
accounts = ["0b4c6a1e"#,
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bcgate.toml");
    std::fs::write(&path, text).expect("write config");
    let cfg = Config::load_without_secrets(&path).expect("config");
    let none = FamilyHeaders::default();
    let post = Method::POST;
    let gql = format!("/accounts/{ACCOUNT}/graphql");
    match decide_with(
        &cfg,
        "bystander",
        &post,
        &gql,
        none,
        BodyFacts::Graphql(GraphqlKind::Query),
    ) {
        Ok((Family::Account, Credential::Account(a), false)) => assert_eq!(a.uuid, ACCOUNT),
        other => panic!("{other:?}"),
    }
    let e = decide_with(
        &cfg,
        "bystander",
        &post,
        &gql,
        none,
        BodyFacts::Graphql(GraphqlKind::Mutation),
    );
    assert_eq!(code(e), "scope_denied");
}

#[test]
fn learn_mode_forwards_a_storefront_request_with_the_least_scope_and_counts_it() {
    let cfg = families_config();
    let post = Method::POST;
    match decide_with(
        &cfg,
        "watcher",
        &post,
        "/stores/abc123/storefront/graphql",
        FamilyHeaders::default(),
        BodyFacts::None,
    ) {
        Ok((Family::Storefront, Credential::Private { scopes: 1, .. }, true)) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn customer_login_needs_its_scope_even_in_learn_mode_and_current_customer_none() {
    let cfg = families_config();
    let post = Method::POST;
    let none = FamilyHeaders::default();
    let d =
        |client: &str, path: &str| decide_with(&cfg, client, &post, path, none, BodyFacts::None);
    match d("concierge", "/stores/abc123/customer-login") {
        Ok((Family::Local, Credential::Answer(Answer::CustomerLogin), false)) => {}
        other => panic!("{other:?}"),
    }
    // Without the grant: refused, and a learn-mode client is refused too
    // (a login link is never signed as a would-deny).
    assert_eq!(
        code(d("bystander", "/stores/abc123/customer-login")),
        "scope_denied"
    );
    assert_eq!(
        code(d("watcher", "/stores/abc123/customer-login")),
        "scope_denied"
    );
    // The store must be the client's.
    assert_eq!(
        code(d("concierge", "/stores/lim999/customer-login")),
        "store_not_allowed"
    );
    // Any client allowed the store may check a customer token, in either mode.
    for client in ["bystander", "watcher", "shop", "concierge"] {
        match d(client, "/stores/abc123/current-customer") {
            Ok((Family::Local, Credential::Answer(Answer::CurrentCustomer), false)) => {}
            other => panic!("{client}: {other:?}"),
        }
    }
    assert_eq!(
        code(d("concierge", "/stores/lim999/current-customer")),
        "store_not_allowed"
    );
    // POST only; nothing under the endpoints.
    let get = Method::GET;
    assert_eq!(
        code(decide_with(
            &cfg,
            "concierge",
            &get,
            "/stores/abc123/customer-login",
            none,
            BodyFacts::None
        )),
        "route_unknown"
    );
    assert_eq!(
        code(d("concierge", "/stores/abc123/customer-login/x")),
        "route_unknown"
    );
}
