//! Derivation tests on small hand-written specs, with their own decisions.

use super::*;
use crate::decisions::{Alias, B2bDecisions, HandRoute, Rule, SecurityOverride};

const TSV: &str = "scope\tpermission\tui_name\tresources\tsection\tsame_ui_name_scopes\n\
store_storefront_api\tmodify\tStorefront API Tokens\tx\tToken creation scopes\t\n\
store_checkout\tmodify\tCheckouts\tx\tS\tstore_checkout_read_only\n\
store_checkout_read_only\tread-only\tCheckouts\tx\tS\tstore_checkout\n\
store_content_checkout\tmodify\tCheckout Content\tx\tS\tstore_content_checkout_read_only\n\
store_content_checkout_read_only\tread-only\tCheckout Content\tx\tS\tstore_content_checkout\n\
store_v2_information\tmodify\tInformation & Settings\tx\tS\tstore_v2_information_read_only\n\
store_v2_information_read_only\tread-only\tInformation & Settings\tx\tS\tstore_v2_information\n\
store_v2_orders\tmodify\tOrders\tx\tS\tstore_v2_orders_read_only\n\
store_v2_orders_read_only\tread-only\tOrders\tx\tS\tstore_v2_orders\n\
store_v2_transactions\tmodify\tOrder Transactions\tx\tS\tstore_v2_transactions_read_only\n\
store_v2_transactions_read_only\tread-only\tOrder Transactions\tx\tS\tstore_v2_transactions\n\
store_v2_products\tmodify\tProducts\tx\tS\tstore_v2_products_read_only\n\
store_v2_products_read_only\tread-only\tProducts\tx\tS\tstore_v2_products\n\
default\t\t\tWebhooks\tprose\t\n";

const NONE: Decisions = Decisions {
    skipped_files: &[],
    not_proxied_files: &[],
    tsv_levels: &[("default", Level::Modify, "every account has it")],
    hand_scopes: &[],
    aliases: &[],
    rules: &[],
    security_overrides: &[],
    hand_routes: &[],
    b2b: B2bDecisions {
        family: "",
        skipped_files: &[],
        copies: &[],
        schemes: &[],
        reads: &[],
    },
};

const API: &str = "https://api.bigcommerce.com/stores/{store_hash}/v3";

fn table(rows: &[(&str, &str)]) -> String {
    let mut t =
        String::from("### OAuth scopes\n\n| UI Name | Permission | Parameter |\n|:--|:--|:--|\n");
    for (permission, scope) in rows {
        t.push_str(&format!("| Some UI | {permission} | `{scope}` |\n"));
    }
    t.push_str("\n### Authentication header\n\n| Header | Argument | Description |\n|:--|:--|:--|\n| `X-Auth-Token` | `access_token` | see |\n");
    t
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .map(|l| format!("{pad}{l}\n"))
        .collect::<String>()
}

/// An OpenAPI document with one server, a scope table and (path, method, description, extra yaml) operations.
fn spec(server: &str, scope_table: &str, ops: &[(&str, &str, &str, &str)]) -> String {
    let mut y = format!(
        "openapi: 3.0.3\ninfo:\n  title: t\n  version: '1'\nservers:\n  - url: '{server}'\nsecurity:\n  - X-Auth-Token: []\ncomponents:\n  securitySchemes:\n    X-Auth-Token:\n      type: apiKey\n      in: header\n      name: X-Auth-Token\n      description: |\n{}paths:\n",
        indent(
            if scope_table.is_empty() {
                "none"
            } else {
                scope_table
            },
            8
        )
    );
    let mut paths: Vec<&str> = ops.iter().map(|o| o.0).collect();
    paths.dedup();
    for path in paths {
        y.push_str(&format!("  '{path}':\n"));
        for (_, method, description, extra) in ops.iter().filter(|o| o.0 == path) {
            y.push_str(&format!(
                "    {method}:\n      summary: s\n      description: |\n{}",
                indent(
                    if description.is_empty() {
                        "."
                    } else {
                        description
                    },
                    8
                )
            ));
            y.push_str(&indent(extra, 6));
        }
    }
    y
}

fn derive_files(files: &[(&str, String)], decisions: &Decisions) -> Result<Tables, Error> {
    let sources: Vec<(String, String)> = files
        .iter()
        .map(|(n, t)| ((*n).to_owned(), t.clone()))
        .collect();
    derive_from(TSV, &sources, decisions)
}

fn row<'t>(t: &'t Tables, method: &str, path: &str) -> &'t Route {
    t.route(method, path)
        .unwrap_or_else(|| panic!("no route {method} {path}"))
}

fn scopes(r: &Route) -> Vec<&str> {
    r.scopes.iter().map(String::as_str).collect()
}

fn expect_problem(result: Result<Tables, Error>, needle: &str) {
    match result {
        Ok(_) => panic!("expected a problem containing {needle:?}"),
        Err(e) => assert!(
            e.problems.iter().any(|p| p.contains(needle)),
            "no problem contains {needle:?}: {:#?}",
            e.problems
        ),
    }
}

#[test]
fn single_family_table_grants_every_operation() {
    let products = table(&[
        ("modify", "store_v2_products"),
        ("read-only", "store_v2_products_read_only"),
    ]);
    let files = [(
        "catalog/products.yml",
        spec(
            API,
            &products,
            &[
                ("/catalog/products", "get", "", ""),
                ("/catalog/products", "post", "", ""),
            ],
        ),
    )];
    let t = derive_files(&files, &NONE).expect("derives");
    assert_eq!(
        scopes(row(&t, "GET", "/v3/catalog/products")),
        ["store_v2_products"]
    );
    assert_eq!(
        scopes(row(&t, "POST", "/v3/catalog/products")),
        ["store_v2_products"]
    );
    assert!(row(&t, "POST", "/v3/catalog/products").flags.is_empty());
    assert_eq!(t.routes.len(), 2);
}

const CHECKOUT_ALIASES: Decisions = Decisions {
    aliases: &[
        Alias {
            file: "checkouts.v3.yml",
            spec_name: "store_checkouts",
            permission: None,
            canonical: Some("store_checkout"),
            reason: "misspelt",
        },
        Alias {
            file: "checkouts.v3.yml",
            spec_name: "store_checkouts_read_only",
            permission: None,
            canonical: Some("store_checkout_read_only"),
            reason: "misspelt",
        },
    ],
    ..NONE
};

#[test]
fn misspelt_scope_is_mapped_and_noted() {
    let checkouts = table(&[
        ("modify", "store_checkouts"),
        ("read-only", "store_checkouts_read_only"),
    ]);
    let files = [(
        "checkouts.v3.yml",
        spec(
            API,
            &checkouts,
            &[("/checkouts/{checkoutId}", "get", "", "")],
        ),
    )];
    let t = derive_files(&files, &CHECKOUT_ALIASES).expect("derives");
    let r = row(&t, "GET", "/v3/checkouts/{checkoutId}");
    assert_eq!(scopes(r), ["store_checkout"]);
    assert_eq!(r.notes, ["misspelt"]);
    // Without the alias the unknown name is an error.
    expect_problem(
        derive_files(&files, &NONE),
        "\"store_checkouts\", which is neither in scopes.txt",
    );
}

#[test]
fn an_alias_only_applies_in_its_file() {
    let checkouts = table(&[("modify", "store_checkouts")]);
    let files = [
        (
            "checkouts.v3.yml",
            spec(
                API,
                &table(&[("modify", "store_checkout")]),
                &[("/a", "get", "", "")],
            ),
        ),
        (
            "other.v3.yml",
            spec(API, &checkouts, &[("/b", "get", "", "")]),
        ),
    ];
    let result = derive_files(&files, &CHECKOUT_ALIASES);
    expect_problem(
        result,
        "other.v3.yml: its scope table names \"store_checkouts\"",
    );
}

#[test]
fn a_row_whose_permission_contradicts_its_scope_needs_an_alias() {
    let carts = table(&[
        ("modify", "store_v2_information"),
        ("read-only", "store_v2_information"),
    ]);
    let files = [(
        "carts.v3.yml",
        spec(API, &carts, &[("/carts/settings", "get", "", "")]),
    )];
    expect_problem(
        derive_files(&files, &NONE),
        "but store_v2_information is modify-level",
    );
    const FIXED: Decisions = Decisions {
        aliases: &[Alias {
            file: "carts.v3.yml",
            spec_name: "store_v2_information",
            permission: Some("read-only"),
            canonical: Some("store_v2_information_read_only"),
            reason: "read-only row names the modify scope",
        }],
        ..NONE
    };
    let t = derive_files(&files, &FIXED).expect("derives");
    let r = row(&t, "GET", "/v3/carts/settings");
    assert_eq!(scopes(r), ["store_v2_information"]);
    assert_eq!(r.notes, ["read-only row names the modify scope"]);
}

const CARTS: Decisions = Decisions {
    rules: &[Rule {
        file: "carts.v3.yml",
        method: None,
        path: "/v3/carts",
        scopes: Some(&["store_checkout"]),
        flags: &[],
        reason: "carts are (here) checkouts",
    }],
    ..NONE
};

#[test]
fn an_operations_own_table_wins_over_rule_and_file_table() {
    let file_table = table(&[
        ("modify", "store_checkout"),
        ("modify", "store_v2_information"),
    ]);
    let settings = "Returns settings.\n\n### OAuth scopes\n\n| UI Name | Permission | Parameter |\n|:--|:--|:--|\n|Information & Settings | modify | `store_v2_information`|\n";
    let files = [(
        "carts.v3.yml",
        spec(
            API,
            &file_table,
            &[
                ("/carts/settings", "get", settings, ""),
                ("/carts/{cartId}", "get", "", ""),
            ],
        ),
    )];
    // Several families and no rule: an error for the operation that states nothing.
    expect_problem(
        derive_files(&files, &NONE),
        "GET /v3/carts/{cartId}: the file's table lists several families",
    );
    let t = derive_files(&files, &CARTS).expect("derives");
    let settings = row(&t, "GET", "/v3/carts/settings");
    assert_eq!(scopes(settings), ["store_v2_information"]);
    assert!(settings.notes.is_empty());
    let cart = row(&t, "GET", "/v3/carts/{cartId}");
    assert_eq!(scopes(cart), ["store_checkout"]);
    assert_eq!(cart.notes, ["carts are (here) checkouts"]);
}

#[test]
fn requires_at_least_one_of_is_any_of() {
    let file_table = table(&[
        ("modify", "store_v2_orders"),
        ("modify", "store_v2_transactions"),
    ]);
    let capture = "Capture.\nRequires at least one of the following scopes:\n* `store_v2_orders`\n* `store_v2_transactions`\n";
    let files = [(
        "orders.v3.yml",
        spec(
            API,
            &file_table,
            &[(
                "/orders/{order_id}/payment_actions/capture",
                "post",
                capture,
                "",
            )],
        ),
    )];
    let t = derive_files(&files, &NONE).expect("derives");
    assert_eq!(
        scopes(row(
            &t,
            "POST",
            "/v3/orders/{order_id}/payment_actions/capture"
        )),
        ["store_v2_orders", "store_v2_transactions"]
    );
}

#[test]
fn required_scopes_by_ui_name() {
    let file_table = table(&[("manage", "store_storefront_api")]);
    let create = "Creates.\n\n**Required Scopes**\n* `Manage` `Storefront API Tokens`\n";
    let files = [(
        "storefront_tokens.v3.yml",
        spec(
            API,
            &file_table,
            &[("/storefront/api-token", "post", create, "")],
        ),
    )];
    let t = derive_files(&files, &NONE).expect("derives");
    assert_eq!(
        scopes(row(&t, "POST", "/v3/storefront/api-token")),
        ["store_storefront_api"]
    );
}

#[test]
fn a_post_granted_only_to_read_scopes_needs_the_read_flag() {
    let pricing = table(&[("read-only", "store_v2_products_read_only")]);
    let files = [(
        "pricing.sf.yml",
        spec(API, &pricing, &[("/pricing/products", "post", "", "")]),
    )];
    expect_problem(
        derive_files(&files, &NONE),
        "only read-level scopes are stated for a POST",
    );
    const READ: Decisions = Decisions {
        rules: &[Rule {
            file: "pricing.sf.yml",
            method: Some("POST"),
            path: "/v3/pricing/products",
            scopes: None,
            flags: &[Flag::Read],
            reason: "a read",
        }],
        ..NONE
    };
    let t = derive_files(&files, &READ).expect("derives");
    let r = row(&t, "POST", "/v3/pricing/products");
    assert_eq!(scopes(r), ["store_v2_products"]);
    assert_eq!(r.flags, BTreeSet::from([Flag::Read]));
    assert_eq!(r.notes, ["a read"]);
}

#[test]
fn prose_needs_a_rule_for_exactly_that_path() {
    let info = table(&[
        ("modify", "store_v2_information"),
        ("read-only", "store_v2_information_read_only"),
    ]);
    let prose =
        "Connection.\n> * Requires **read** permissions on the **Information and Settings** scope.";
    let files = [(
        "tax.v3.yml",
        spec(
            API,
            &info,
            &[("/tax/providers/{id}/connection", "get", prose, "")],
        ),
    )];
    expect_problem(
        derive_files(&files, &NONE),
        "talks about scopes but states none",
    );
    const PREFIX: Decisions = Decisions {
        rules: &[Rule {
            file: "tax.v3.yml",
            method: None,
            path: "/v3/tax",
            scopes: Some(&["store_v2_information"]),
            flags: &[],
            reason: "tax",
        }],
        ..NONE
    };
    expect_problem(derive_files(&files, &PREFIX), "states its scope in prose");
    const EXACT: Decisions = Decisions {
        rules: &[Rule {
            file: "tax.v3.yml",
            method: None,
            path: "/v3/tax/providers/{id}/connection",
            scopes: Some(&["store_v2_information"]),
            flags: &[],
            reason: "stated in prose",
        }],
        ..NONE
    };
    let t = derive_files(&files, &EXACT).expect("derives");
    assert_eq!(
        row(&t, "GET", "/v3/tax/providers/{id}/connection").notes,
        ["stated in prose"]
    );
}

#[test]
fn modify_flag_on_a_get() {
    let customers = table(&[
        ("modify", "store_v2_orders"),
        ("read-only", "store_v2_orders_read_only"),
    ]);
    let prose =
        "Lists.\n\n**NOTE**: The `modify` Orders OAuth scope is a requirement for this endpoint.";
    let files = [(
        "segments.v3.yml",
        spec(
            API,
            &customers,
            &[("/segments/{id}/profiles", "get", prose, "")],
        ),
    )];
    const MODIFY: Decisions = Decisions {
        rules: &[Rule {
            file: "segments.v3.yml",
            method: Some("GET"),
            path: "/v3/segments/{id}/profiles",
            scopes: Some(&["store_v2_orders"]),
            flags: &[Flag::Modify],
            reason: "modify even to read",
        }],
        ..NONE
    };
    let t = derive_files(&files, &MODIFY).expect("derives");
    let r = row(&t, "GET", "/v3/segments/{id}/profiles");
    assert_eq!(r.flags, BTreeSet::from([Flag::Modify]));
    assert_eq!(scopes(r), ["store_v2_orders"]);
}

#[test]
fn empty_security_needs_an_override() {
    let info = "Updates.\n\n#### OAuth Scopes\n| UI Name | Permission | Parameter |\n|---|---|---|\n| Information & Settings | modify | `store_v2_information` |";
    let files = [(
        "abandoned_carts.v3.yml",
        spec(
            API,
            &table(&[("modify", "store_v2_information")]),
            &[("/abandoned-carts/settings", "put", info, "security: []\n")],
        ),
    )];
    expect_problem(derive_files(&files, &NONE), "declares security: []");
    const OVERRIDE: Decisions = Decisions {
        security_overrides: &[SecurityOverride {
            file: "abandoned_carts.v3.yml",
            method: "PUT",
            path: "/v3/abandoned-carts/settings",
            reason: "enforced anyway",
        }],
        ..NONE
    };
    let t = derive_files(&files, &OVERRIDE).expect("derives");
    let r = row(&t, "PUT", "/v3/abandoned-carts/settings");
    assert_eq!(scopes(r), ["store_v2_information"]);
    assert_eq!(r.notes, ["enforced anyway"]);
}

#[test]
fn storefront_files_are_not_proxied_only_when_listed() {
    let files = [(
        "carts.sf.yml",
        spec(
            "https://{store_domain}/api/storefront",
            "",
            &[("/carts", "get", "", ""), ("/carts", "post", "", "")],
        ),
    )];
    expect_problem(
        derive_files(&files, &NONE),
        "list it in decisions.rs not_proxied_files",
    );
    const SF: Decisions = Decisions {
        not_proxied_files: &[("carts.sf.yml", "storefront")],
        ..NONE
    };
    let t = derive_files(&files, &SF).expect("derives");
    let r = row(&t, "GET", "/api/storefront/carts");
    assert!(r.scopes.is_empty());
    assert_eq!(r.flags, BTreeSet::from([Flag::NotProxied]));
    let text = t.render_routes();
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == [
                    "POST",
                    "/api/storefront/carts",
                    "-",
                    "not_proxied",
                    "#",
                    "storefront"
                ]),
        "{text}"
    );
    // A management file listed as not proxied is an error too.
    let api = [(
        "pricing.sf.yml",
        spec(
            API,
            &table(&[("modify", "store_v2_products")]),
            &[("/p", "get", "", "")],
        ),
    )];
    const WRONG: Decisions = Decisions {
        not_proxied_files: &[("pricing.sf.yml", "storefront")],
        ..NONE
    };
    expect_problem(
        derive_files(&api, &WRONG),
        "listed in not_proxied_files but served on api.bigcommerce.com",
    );
}

#[test]
fn payments_host_path_is_the_server_path_plus_the_spec_path() {
    let files = [(
        "payments/process_payments.yml",
        spec(
            "https://payments.bigcommerce.com/stores/{store_hash}",
            "",
            &[("/payments", "post", "", "")],
        ),
    )];
    const PAY: Decisions = Decisions {
        not_proxied_files: &[("payments/process_payments.yml", "payments host")],
        ..NONE
    };
    let t = derive_files(&files, &PAY).expect("derives");
    assert!(
        row(&t, "POST", "/payments")
            .flags
            .contains(&Flag::NotProxied)
    );
}

#[test]
fn stale_decisions_are_errors() {
    let products = table(&[("modify", "store_v2_products")]);
    let files = [("p.yml", spec(API, &products, &[("/p", "get", "", "")]))];
    const STALE: Decisions = Decisions {
        rules: &[Rule {
            file: "p.yml",
            method: None,
            path: "/v3/q",
            scopes: Some(&["store_v2_products"]),
            flags: &[],
            reason: "gone",
        }],
        skipped_files: &[("gone.yml", "gone")],
        ..NONE
    };
    let err = derive_files(&files, &STALE).expect_err("stale");
    assert!(
        err.problems
            .iter()
            .any(|p| p.contains("rule p.yml * /v3/q changes no route"))
    );
    assert!(
        err.problems
            .iter()
            .any(|p| p.contains("gone.yml is not in reference/"))
    );
}

#[test]
fn a_skipped_folder_skips_every_file_below_it_and_must_exist() {
    let products = table(&[("modify", "store_v2_products")]);
    let files = [
        ("p.yml", spec(API, &products, &[("/p", "get", "", "")])),
        // Another host: an error unless skipped.
        (
            "other/q.yaml",
            spec(
                "https://elsewhere.example/api",
                &products,
                &[("/q", "get", "", "")],
            ),
        ),
    ];
    const SKIP: Decisions = Decisions {
        skipped_files: &[("other/", "another host")],
        ..NONE
    };
    let tables = derive_files(&files, &SKIP).expect("the folder is skipped");
    assert_eq!(tables.routes.len(), 1);
    assert!(
        derive_files(&files, &NONE).is_err(),
        "not skipped, it is an error"
    );
    const STALE: Decisions = Decisions {
        skipped_files: &[("other/", "another host"), ("gone/", "gone")],
        ..NONE
    };
    let err = derive_files(&files, &STALE).expect_err("stale folder");
    assert!(
        err.problems
            .iter()
            .any(|p| p.contains("gone/ is not in reference/"))
    );
}

#[test]
fn rule_families_must_exist() {
    const BAD: Decisions = Decisions {
        rules: &[Rule {
            file: "p.yml",
            method: None,
            path: "/v3/p",
            scopes: Some(&["store_v2_products_read_only"]),
            flags: &[],
            reason: "not a family name",
        }],
        ..NONE
    };
    let files = [(
        "p.yml",
        spec(
            API,
            &table(&[("modify", "store_v2_products")]),
            &[("/p", "get", "", "")],
        ),
    )];
    expect_problem(
        derive_files(&files, &BAD),
        "store_v2_products_read_only is not a scope family",
    );
}

#[test]
fn odd_path_segments_are_errors() {
    let products = table(&[("modify", "store_v2_products")]);
    let files = [(
        "p.yml",
        spec(API, &products, &[("/p/{id}.json", "get", "", "")]),
    )];
    expect_problem(
        derive_files(&files, &NONE),
        "segment \"{id}.json\" is neither literal nor a whole {name}",
    );
    let ok = [(
        "p.yml",
        spec(API, &products, &[("/p/{template-name}", "get", "", "")]),
    )];
    assert!(derive_files(&ok, &NONE).is_ok());
}

#[test]
fn duplicates_merge_only_when_identical() {
    let products = table(&[("modify", "store_v2_products")]);
    let orders = table(&[("modify", "store_v2_orders")]);
    let same = [
        ("a.yml", spec(API, &products, &[("/p", "get", "", "")])),
        ("b.yml", spec(API, &products, &[("/p", "get", "", "")])),
    ];
    assert_eq!(derive_files(&same, &NONE).expect("derives").routes.len(), 1);
    let different = [
        ("a.yml", spec(API, &products, &[("/p", "get", "", "")])),
        ("b.yml", spec(API, &orders, &[("/p", "get", "", "")])),
    ];
    expect_problem(
        derive_files(&different, &NONE),
        "GET /v3/p is in a.yml and b.yml",
    );
}

#[test]
fn no_scope_at_all_is_an_error() {
    let files = [(
        "webhooks.v3.yml",
        spec(API, "None required.", &[("/hooks", "get", "", "")]),
    )];
    expect_problem(
        derive_files(&files, &NONE),
        "no scope stated by the operation, a rule or the file's table",
    );
}

#[test]
fn hand_routes_and_rendering() {
    const HAND: Decisions = Decisions {
        hand_routes: &[HandRoute {
            method: "POST",
            path: "/graphql",
            scopes: &["store_v2_products"],
            flags: &[Flag::Graphql],
            reason: "graphql",
        }],
        ..NONE
    };
    let products = table(&[
        ("modify", "store_v2_products"),
        ("read-only", "store_v2_products_read_only"),
    ]);
    let files = [(
        "p.yml",
        spec(
            API,
            &products,
            &[
                ("/catalog/products", "post", "", ""),
                ("/catalog/products", "get", "", ""),
                ("/a", "delete", "", ""),
            ],
        ),
    )];
    let t = derive_files(&files, &HAND).expect("derives");
    let routes = t.render_routes();
    let rows: Vec<&str> = routes.lines().filter(|l| !l.starts_with('#')).collect();
    let fields: Vec<Vec<&str>> = rows
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        fields,
        [
            vec![
                "POST",
                "/graphql",
                "store_v2_products",
                "graphql",
                "#",
                "graphql"
            ],
            vec!["DELETE", "/v3/a", "store_v2_products", "-"],
            vec!["GET", "/v3/catalog/products", "store_v2_products", "-"],
            vec!["POST", "/v3/catalog/products", "store_v2_products", "-"],
        ]
    );
    // Columns are aligned: every row's SCOPES starts at the same offset.
    let offsets: BTreeSet<usize> = rows
        .iter()
        .map(|l| l.find("store_v2_products").expect("scopes column"))
        .collect();
    assert_eq!(offsets.len(), 1, "{routes}");
    assert!(rows.iter().all(|l| !l.ends_with(' ')));

    let scopes_text = t.render_scopes();
    assert!(
        scopes_text
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["store_v2_products_read_only", "store_v2_products", "read"])
    );
    assert!(
        scopes_text
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == [
                    "default", "default", "modify", "#", "every", "account", "has", "it"
                ])
    );
}
