//! Policy unit tests: no sockets, just tables and decisions.

use http::Method;

use super::*;
use crate::error::ProxyError;

const SCOPES: &str = "
# scope family level
store_v2_products            store_v2_products       modify
store_v2_products_read_only  store_v2_products       read
store_v2_orders              store_v2_orders         modify
store_v2_orders_read_only    store_v2_orders         read
store_v2_transactions        store_v2_transactions   modify
store_v2_transactions_read_only store_v2_transactions read
store_v2_information         store_v2_information    modify
store_v2_information_read_only store_v2_information  read
store_cart                   store_cart              modify
store_cart_read_only         store_cart              read
store_v2_content             store_v2_content        modify
store_v2_content_read_only   store_v2_content        read
store_content_checkout       store_content_checkout  modify
store_content_checkout_read_only store_content_checkout read
store_themes_manage          store_themes_manage     modify
store_themes_read_only       store_themes_manage     read
default                      default                 modify
bcgate:graphql_write         bcgate:graphql_write    modify
bcgate:graphql_read          bcgate:graphql_write    read
";

const ROUTES: &str = "
GET    /v3/catalog/products                 store_v2_products      -
POST   /v3/catalog/products                 store_v2_products      -
GET    /v3/catalog/products/{product_id}    store_v2_products      -
POST   /v3/pricing/products                 store_v2_products      read  # hand: a read POST
GET    /v2/orders                           store_v2_orders        -
GET    /v2/orders/count                     store_v2_orders        -
GET    /v2/orders/{order_id}                store_v2_orders        -
POST   /v3/orders/{order_id}/payment_actions/capture store_v2_orders,store_v2_transactions -
GET    /v3/carts/settings                   store_v2_information   -
PUT    /v3/carts/settings                   store_v2_information   -
GET    /v3/carts/{cartId}                   store_cart             -
DELETE /v3/carts/{cartId}                   store_cart             -
GET    /v3/carts/{cart_id}/metafields       store_cart             -
GET    /v3/segments/{id}/shopper-profiles   store_v2_content       modify
GET    /v3/themes                           store_themes_manage    -
POST   /v3/hooks                            default                -
POST   /v3/content/scripts                  store_v2_content       scripts_visibility
POST   /graphql                             bcgate:graphql_write   graphql
GET    /api/storefront/carts                -                      not_proxied
";

fn policy() -> Policy {
    let scopes = ScopeTable::parse(SCOPES).expect("scopes parse");
    let routes = RouteTable::parse(ROUTES, &scopes).expect("routes parse");
    Policy::new(scopes, routes).expect("policy")
}

fn route<'a>(p: &'a Policy, method: &Method, path: &str) -> &'a Route {
    match p.routes.lookup(method, path) {
        Lookup::Found(r) => r,
        other => panic!("{method} {path}: {other:?}"),
    }
}

fn decide(
    p: &Policy,
    scopes: &[&str],
    method: &str,
    path: &str,
    body: BodyFacts,
) -> Result<(), ProxyError> {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let grants = p
        .scopes
        .grants(scopes.iter().copied())
        .expect("known scopes");
    let r = route(p, &method, path);
    p.authorize(
        Holder {
            label: "client 't'",
            grants: &grants,
        },
        None,
        &Request {
            method: &method,
            route: r,
            body,
        },
    )
}

fn allowed(p: &Policy, scopes: &[&str], method: &str, path: &str) -> bool {
    decide(p, scopes, method, path, BodyFacts::None).is_ok()
}

#[test]
fn literal_segments_beat_parameters() {
    let p = policy();
    assert_eq!(
        &*route(&p, &Method::GET, "/v3/carts/settings").template,
        "/v3/carts/settings"
    );
    assert_eq!(
        &*route(&p, &Method::GET, "/v3/carts/abc-123").template,
        "/v3/carts/{cartId}"
    );
    assert_eq!(
        &*route(&p, &Method::GET, "/v2/orders/count").template,
        "/v2/orders/count"
    );
    assert_eq!(
        &*route(&p, &Method::GET, "/v2/orders/17").template,
        "/v2/orders/{order_id}"
    );
    // Sibling paths that name the same slot differently still share the trie.
    assert_eq!(
        &*route(&p, &Method::GET, "/v3/carts/abc/metafields").template,
        "/v3/carts/{cart_id}/metafields"
    );
}

#[test]
fn a_literal_endpoint_without_the_method_does_not_fall_back_to_the_parameter() {
    let p = policy();
    // DELETE exists on /v3/carts/{cartId} but not on /v3/carts/settings.
    assert!(matches!(
        p.routes.lookup(&Method::DELETE, "/v3/carts/settings"),
        Lookup::Unknown
    ));
    assert!(matches!(
        p.routes.lookup(&Method::DELETE, "/v3/carts/abc"),
        Lookup::Found(_)
    ));
}

#[test]
fn head_follows_get_and_v2_suffixes_match_the_same_route() {
    let p = policy();
    assert_eq!(
        &*route(&p, &Method::HEAD, "/v2/orders").template,
        "/v2/orders"
    );
    assert_eq!(
        &*route(&p, &Method::GET, "/v2/orders.json").template,
        "/v2/orders"
    );
    assert_eq!(
        &*route(&p, &Method::GET, "/v2/orders/5.xml").template,
        "/v2/orders/{order_id}"
    );
    assert_eq!(
        &*route(&p, &Method::GET, "/v2/orders/count.json").template,
        "/v2/orders/count"
    );
    // Only v2 has format suffixes.
    assert!(matches!(
        p.routes.lookup(&Method::GET, "/v3/catalog/products.json"),
        Lookup::Unknown
    ));
    assert!(allowed(
        &p,
        &["store_v2_orders_read_only"],
        "HEAD",
        "/v2/orders"
    ));
}

#[test]
fn case_variants_are_told_apart_from_unknown_routes() {
    let p = policy();
    assert!(matches!(
        p.routes.lookup(&Method::GET, "/V3/catalog/products"),
        Lookup::CaseMismatch
    ));
    assert!(matches!(
        p.routes.lookup(&Method::GET, "/v3/Catalog/Products"),
        Lookup::CaseMismatch
    ));
    assert!(matches!(
        p.routes.lookup(&Method::GET, "/v3/nothing/here"),
        Lookup::Unknown
    ));
}

#[test]
fn read_level_grants_reads_only_and_modify_implies_read() {
    let p = policy();
    assert!(allowed(
        &p,
        &["store_v2_products_read_only"],
        "GET",
        "/v3/catalog/products"
    ));
    assert!(!allowed(
        &p,
        &["store_v2_products_read_only"],
        "POST",
        "/v3/catalog/products"
    ));
    assert!(allowed(
        &p,
        &["store_v2_products"],
        "GET",
        "/v3/catalog/products"
    ));
    assert!(allowed(
        &p,
        &["store_v2_products"],
        "POST",
        "/v3/catalog/products"
    ));
    assert!(!allowed(
        &p,
        &["store_v2_orders"],
        "GET",
        "/v3/catalog/products"
    ));
    // Non-uniform pair: *_manage / *_read_only.
    assert!(allowed(
        &p,
        &["store_themes_read_only"],
        "GET",
        "/v3/themes"
    ));
    assert!(allowed(&p, &["store_themes_manage"], "GET", "/v3/themes"));
}

#[test]
fn read_posts_and_modify_only_gets() {
    let p = policy();
    assert!(allowed(
        &p,
        &["store_v2_products_read_only"],
        "POST",
        "/v3/pricing/products"
    ));
    assert!(!allowed(
        &p,
        &["store_v2_content_read_only"],
        "GET",
        "/v3/segments/1/shopper-profiles"
    ));
    assert!(allowed(
        &p,
        &["store_v2_content"],
        "GET",
        "/v3/segments/1/shopper-profiles"
    ));
}

#[test]
fn any_of_routes_accept_either_family() {
    let p = policy();
    let path = "/v3/orders/1/payment_actions/capture";
    assert!(allowed(&p, &["store_v2_orders"], "POST", path));
    assert!(allowed(&p, &["store_v2_transactions"], "POST", path));
    assert!(!allowed(
        &p,
        &[
            "store_v2_transactions_read_only",
            "store_v2_orders_read_only"
        ],
        "POST",
        path
    ));
    let err =
        decide(&p, &["store_v2_products"], "POST", path, BodyFacts::None).expect_err("denied");
    let ProxyError::ScopeDenied(d) = err else {
        panic!("{err:?}")
    };
    assert_eq!(d.required, ["store_v2_orders", "store_v2_transactions"]);
}

#[test]
fn required_scopes_list_read_then_modify_for_reads() {
    let p = policy();
    let err = decide(&p, &[], "GET", "/v2/orders/1", BodyFacts::None).expect_err("denied");
    let ProxyError::ScopeDenied(d) = err else {
        panic!("{err:?}")
    };
    assert_eq!(d.required, ["store_v2_orders_read_only", "store_v2_orders"]);
    assert_eq!(d.route, "/v2/orders/{order_id}");
    assert_eq!(d.subject, "client 't'");
}

#[test]
fn default_scope_must_be_listed() {
    let p = policy();
    let everything_else: Vec<&str> = p
        .scopes
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| *n != "default")
        .collect();
    assert!(!allowed(&p, &everything_else, "POST", "/v3/hooks"));
    assert!(allowed(&p, &["default"], "POST", "/v3/hooks"));
}

#[test]
fn not_proxied_routes_are_refused_whatever_the_scopes() {
    let p = policy();
    let all: Vec<&str> = p.scopes.iter().map(|s| s.name.as_str()).collect();
    let err =
        decide(&p, &all, "GET", "/api/storefront/carts", BodyFacts::None).expect_err("refused");
    assert_eq!(err.code(), "not_proxied");
}

#[test]
fn graphql_queries_need_read_and_mutations_write() {
    let p = policy();
    let q = BodyFacts::Graphql(GraphqlKind::Query);
    let m = BodyFacts::Graphql(GraphqlKind::Mutation);
    assert!(decide(&p, &["bcgate:graphql_read"], "POST", "/graphql", q).is_ok());
    assert!(decide(&p, &["bcgate:graphql_read"], "POST", "/graphql", m).is_err());
    assert!(decide(&p, &["bcgate:graphql_write"], "POST", "/graphql", q).is_ok());
    assert!(decide(&p, &["bcgate:graphql_write"], "POST", "/graphql", m).is_ok());
    assert!(decide(&p, &["store_v2_products"], "POST", "/graphql", q).is_err());
}

#[test]
fn checkout_scripts_need_checkout_content_too() {
    let p = policy();
    let plain = BodyFacts::Script {
        needs_checkout_content: false,
    };
    let checkout = BodyFacts::Script {
        needs_checkout_content: true,
    };
    let path = "/v3/content/scripts";
    assert!(decide(&p, &["store_v2_content"], "POST", path, plain).is_ok());
    let err =
        decide(&p, &["store_v2_content"], "POST", path, checkout).expect_err("needs checkout");
    let ProxyError::ScopeDenied(d) = err else {
        panic!("{err:?}")
    };
    assert_eq!(d.required, ["store_content_checkout"]);
    assert!(
        decide(
            &p,
            &["store_v2_content", "store_content_checkout_read_only"],
            "POST",
            path,
            checkout
        )
        .is_err()
    );
    assert!(
        decide(
            &p,
            &["store_v2_content", "store_content_checkout"],
            "POST",
            path,
            checkout
        )
        .is_ok()
    );
    assert!(decide(&p, &["store_content_checkout"], "POST", path, checkout).is_err());
}

#[test]
fn a_store_token_known_to_lack_the_scope_short_circuits() {
    let p = policy();
    let client = p.scopes.grants(["store_v2_orders"]).expect("known");
    let store = p.scopes.grants(["store_v2_products"]).expect("known");
    let r = route(&p, &Method::GET, "/v2/orders");
    let req = Request {
        method: &Method::GET,
        route: r,
        body: BodyFacts::None,
    };
    let err = p
        .authorize(
            Holder {
                label: "client 'c'",
                grants: &client,
            },
            Some(Holder {
                label: "the token of store 'abc'",
                grants: &store,
            }),
            &req,
        )
        .expect_err("store lacks orders");
    let ProxyError::ScopeDenied(d) = err else {
        panic!("{err:?}")
    };
    assert_eq!(d.subject, "the token of store 'abc'");
    assert!(
        p.authorize(
            Holder {
                label: "c",
                grants: &client
            },
            None,
            &req
        )
        .is_ok()
    );
}

#[test]
fn operator_insert_replaces_the_same_method_and_shape() {
    let mut p = policy();
    let before = p.routes.len();
    let mut r = route(&p, &Method::GET, "/v3/catalog/products/1").clone();
    r.template = "/v3/catalog/products/{id}".into();
    r.origin = Origin::Operator;
    let replaced = p.routes.insert(r).expect("insert");
    assert!(replaced.is_some());
    assert_eq!(p.routes.len(), before);
    assert_eq!(
        route(&p, &Method::GET, "/v3/catalog/products/1").origin,
        Origin::Operator
    );
}

#[test]
fn tables_reject_malformed_rows() {
    let scopes = ScopeTable::parse(SCOPES).expect("scopes");
    for bad in [
        "GET /v3/x store_v2_products",
        "GET /v3/x nope -",
        "GET /v3/x store_v2_products sometimes",
        "GET v3/x store_v2_products -",
        "GET /v3//x store_v2_products -",
        "GET /v3/x{id} store_v2_products -",
        "GET /v3/x - -",
        "GET /v3/x store_v2_products -\nGET /v3/x store_v2_products -",
    ] {
        assert!(RouteTable::parse(bad, &scopes).is_err(), "{bad}");
    }
    assert!(ScopeTable::parse("a a sometimes").is_err());
    assert!(ScopeTable::parse("a a read\na a modify").is_err());
}

/// Every operation of the built-in tables (api and B2B) is allowed with each
/// scope that grants it and denied with every other scope held at once.
#[test]
fn builtin_table_every_route_granted_exactly_by_its_scopes() {
    let p = Policy::builtin().expect("built-in tables parse");
    assert!(!p.routes.is_empty());
    assert!(!p.b2b_routes.is_empty());
    let all: Vec<&str> = p.scopes.iter().map(|s| s.name.as_str()).collect();
    let mut checked = 0;
    for r in p.routes.iter().chain(p.b2b_routes.iter()) {
        let methods: Vec<Method> = if r.method == Method::GET {
            vec![Method::GET, Method::HEAD]
        } else {
            vec![r.method.clone()]
        };
        for method in &methods {
            let facts: Vec<BodyFacts> = if r.flags.graphql {
                vec![
                    BodyFacts::Graphql(GraphqlKind::Query),
                    BodyFacts::Graphql(GraphqlKind::Mutation),
                ]
            } else if r.flags.scripts_visibility {
                vec![BodyFacts::Script {
                    needs_checkout_content: false,
                }]
            } else {
                vec![BodyFacts::None]
            };
            for body in facts {
                let req = Request {
                    method,
                    route: r,
                    body,
                };
                let write = Policy::is_write(&req);
                let granting = p.scopes.required(&r.families, write);
                let check = |names: &[&str]| {
                    let g = p.scopes.grants(names.iter().copied()).expect("known");
                    p.authorize(
                        Holder {
                            label: "t",
                            grants: &g,
                        },
                        None,
                        &req,
                    )
                };
                if r.flags.not_proxied {
                    assert_eq!(
                        check(&all).map_err(|e| e.code()),
                        Err("not_proxied"),
                        "{method} {}",
                        r.template
                    );
                    continue;
                }
                assert!(
                    !granting.is_empty(),
                    "{method} {} has no granting scope",
                    r.template
                );
                for g in &granting {
                    assert!(
                        check(&[g.as_str()]).is_ok(),
                        "{method} {} should be granted by {g}",
                        r.template
                    );
                    checked += 1;
                }
                let others: Vec<&str> = all
                    .iter()
                    .copied()
                    .filter(|s| !granting.iter().any(|g| g == s))
                    .collect();
                let denied = check(&others);
                assert_eq!(
                    denied.map_err(|e| e.code()),
                    Err("scope_denied"),
                    "{method} {} without {granting:?}",
                    r.template
                );
            }
        }
    }
    assert!(checked > 0);
}

/// The scope decision for `scopes` on a B2B Edition path of the built-in table.
fn b2b_decide(scopes: &[&str], method: &str, path: &str) -> Result<(), ProxyError> {
    let p = Policy::builtin().expect("built-in tables parse");
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let grants = p
        .scopes
        .grants(scopes.iter().copied())
        .expect("known scopes");
    let r = match p.b2b_routes.lookup(&method, path) {
        Lookup::Found(r) => r,
        other => panic!("B2B {method} {path}: {other:?}"),
    };
    p.authorize(
        Holder {
            label: "client 't'",
            grants: &grants,
        },
        None,
        &Request {
            method: &method,
            route: r,
            body: BodyFacts::None,
        },
    )
}

#[test]
fn b2b_read_grants_gets_and_b2b_modify_grants_every_method() {
    for (method, path) in [("GET", "/companies"), ("HEAD", "/companies")] {
        assert!(b2b_decide(&["b2b:read"], method, path).is_ok(), "{method}");
        assert!(
            b2b_decide(&["b2b:modify"], method, path).is_ok(),
            "{method}"
        );
    }
    for (method, path) in [
        ("POST", "/companies"),
        ("PUT", "/companies/12"),
        ("DELETE", "/companies/12"),
        ("POST", "/ip/invoices"),
    ] {
        match b2b_decide(&["b2b:read"], method, path) {
            Err(ProxyError::ScopeDenied(d)) => assert_eq!(d.required, ["b2b:modify"]),
            other => panic!("b2b:read {method} {path}: {other:?}"),
        }
        assert!(
            b2b_decide(&["b2b:modify"], method, path).is_ok(),
            "b2b:modify {method} {path}"
        );
    }
    assert!(b2b_decide(&["b2b:read"], "GET", "/ip/invoices/7/download-pdf").is_ok());
}

#[test]
fn no_other_scope_grants_a_b2b_route() {
    let p = Policy::builtin().expect("built-in tables parse");
    // Every scope but bcgate's B2B grants, held at once.
    let others: Vec<&str> = p
        .scopes
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| !n.starts_with("b2b:"))
        .collect();
    assert!(others.contains(&"store_v2_orders") && others.contains(&"storefront:B2B"));
    for r in p.b2b_routes.iter() {
        let path = r.template.replace(['{', '}'], "");
        assert_eq!(
            b2b_decide(&others, r.method.as_str(), &path).map_err(|e| e.code()),
            Err("scope_denied"),
            "{} {}",
            r.method,
            r.template
        );
    }
}

#[test]
fn b2b_grants_reach_no_api_route_and_the_tables_do_not_mix() {
    let p = Policy::builtin().expect("built-in tables parse");
    let g = p
        .scopes
        .grants(["b2b:modify", "b2b:read"])
        .expect("known scopes");
    let b2b = p.scopes.family("b2b:modify").expect("b2b family");
    for r in p.routes.iter() {
        assert!(
            !r.families.contains(b2b),
            "{} {} is granted by b2b",
            r.method,
            r.template
        );
        assert!(!g.read.intersects(&r.families), "{}", r.template);
    }
    // A B2B path is not an api path, and the other way round.
    assert!(matches!(
        p.routes.lookup(&Method::GET, "/companies"),
        Lookup::Unknown
    ));
    assert!(matches!(
        p.b2b_routes.lookup(&Method::GET, "/v3/catalog/products"),
        Lookup::Unknown
    ));
    assert!(matches!(
        p.b2b_routes.lookup(&Method::GET, "/api/v3/io/companies"),
        Lookup::Unknown
    ));
}

#[test]
fn storefront_grants_are_scope_names_of_their_own() {
    let p = Policy::builtin().expect("built-in tables parse");
    let names = [
        "storefront:Unauthenticated",
        "storefront:Customer",
        "storefront:B2B",
        "storefront:impersonate",
    ];
    let mut families = std::collections::HashSet::new();
    for name in names {
        let s = p
            .scopes
            .get(name)
            .unwrap_or_else(|| panic!("{name} is a scope"));
        assert_eq!(s.level, Level::Modify, "{name}");
        assert_eq!(p.scopes.family_name(s.family), name);
        families.insert(s.family);
    }
    assert_eq!(families.len(), names.len(), "each is its own family");
    // Names are exact: case matters.
    assert!(p.scopes.get("storefront:customer").is_none());
    assert!(p.scopes.grants(["storefront:b2b"]).is_err());
    // They grant no proxied route of either table.
    let g = p.scopes.grants(names).expect("known scopes");
    for r in p.routes.iter().chain(p.b2b_routes.iter()) {
        assert!(!g.read.intersects(&r.families), "{}", r.template);
    }
}

#[test]
fn a_new_policy_has_an_empty_b2b_table_until_given_one() {
    let p = policy();
    assert!(p.b2b_routes.is_empty());
    let scopes = ScopeTable::parse(SCOPES).expect("scopes");
    let b2b = RouteTable::parse("GET /companies store_v2_products -", &scopes).expect("b2b");
    let p = p.with_b2b_routes(b2b);
    assert_eq!(p.b2b_routes.len(), 1);
    assert!(matches!(
        p.routes.lookup(&Method::GET, "/companies"),
        Lookup::Unknown
    ));
}
