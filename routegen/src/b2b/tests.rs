//! B2B table derivation on small hand-written specs, with their own decisions.

use std::collections::BTreeSet;

use crate::decisions::{B2bDecisions, B2bRead, B2bScheme, Decisions, HandScope};
use crate::{Error, Flag, Level, Tables, derive_from};

const TSV: &str = "scope\tpermission\tui_name\tresources\tsection\tsame_ui_name_scopes\n\
store_v2_products\tmodify\tProducts\tx\tS\tstore_v2_products_read_only\n\
store_v2_products_read_only\tread-only\tProducts\tx\tS\tstore_v2_products\n";

const B2B_SCOPES: &[HandScope] = &[
    HandScope {
        name: "b2b:modify",
        family: "b2b:modify",
        level: Level::Modify,
        spec_file: None,
        reason: "bcgate's",
    },
    HandScope {
        name: "b2b:read",
        family: "b2b:modify",
        level: Level::Read,
        spec_file: None,
        reason: "bcgate's",
    },
];

const B2B_NONE: B2bDecisions = B2bDecisions {
    family: "b2b:modify",
    skipped_files: &[],
    copies: &[],
    schemes: &[],
    reads: &[],
};

const NONE: Decisions = Decisions {
    skipped_files: &[],
    not_proxied_files: &[],
    tsv_levels: &[],
    hand_scopes: B2B_SCOPES,
    aliases: &[],
    rules: &[],
    security_overrides: &[],
    hand_routes: &[],
    b2b: B2B_NONE,
};

const V3_IO: &str = "https://api-b2b.bigcommerce.com/api/v3/io";
const TOKEN: &str = "- X-Auth-Token: []\n  X-Store-Hash: []\n";

/// A B2B spec: one server, top-level `security` (yaml list, may be empty for
/// none) and (path, method, extra operation yaml) operations.
fn spec(server: &str, security: &str, ops: &[(&str, &str, &str)]) -> String {
    let mut y = format!(
        "openapi: 3.0.1\ninfo:\n  title: t\n  version: v3\nservers:\n  - url: '{server}'\n"
    );
    if !security.is_empty() {
        y.push_str("security:\n");
        for line in security.lines() {
            y.push_str(&format!("  {line}\n"));
        }
    }
    y.push_str("paths:\n");
    let mut paths: Vec<&str> = ops.iter().map(|o| o.0).collect();
    paths.dedup();
    for path in paths {
        y.push_str(&format!("  '{path}':\n"));
        for (_, method, extra) in ops.iter().filter(|o| o.0 == path) {
            y.push_str(&format!("    {method}:\n      summary: s\n"));
            for line in extra.lines() {
                y.push_str(&format!("      {line}\n"));
            }
        }
    }
    y
}

fn derive(files: &[(&str, String)], decisions: &Decisions) -> Result<Tables, Error> {
    let sources: Vec<(String, String)> = files
        .iter()
        .map(|(n, t)| ((*n).to_owned(), t.clone()))
        .collect();
    derive_from(TSV, &sources, decisions)
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

fn companies() -> (&'static str, String) {
    (
        "b2b-edition/company/company.yaml",
        spec(
            V3_IO,
            TOKEN,
            &[
                ("/companies", "get", ""),
                ("/companies", "post", ""),
                ("/companies/{companyId}", "delete", ""),
            ],
        ),
    )
}

#[test]
fn every_operation_is_granted_by_the_family_under_its_path_after_v3_io() {
    let files = [
        companies(),
        (
            "b2b-edition/invoice-management.yaml",
            spec(
                &format!("{V3_IO}/ip"),
                TOKEN,
                &[("/invoices/{invoiceId}", "get", "")],
            ),
        ),
    ];
    let t = derive(&files, &NONE).expect("derives");
    let keys: Vec<(&str, &str)> = t
        .b2b_routes
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("GET", "/companies"),
            ("POST", "/companies"),
            ("DELETE", "/companies/{companyId}"),
            ("GET", "/ip/invoices/{invoiceId}"),
        ]
    );
    for r in &t.b2b_routes {
        assert_eq!(r.scopes, BTreeSet::from(["b2b:modify".to_owned()]), "{r:?}");
        assert!(r.flags.is_empty(), "{r:?}");
        assert!(r.notes.is_empty(), "{r:?}");
    }
    // Not in the api table, which points at the B2B table instead.
    assert!(t.routes.is_empty());
    assert!(
        t.skipped
            .iter()
            .any(|(f, r)| f == "b2b-edition/" && r.contains("data/b2b-routes.txt")),
        "{:?}",
        t.skipped
    );
    let text = t.render_b2b_routes();
    assert!(
        text.starts_with("# bcgate B2B Edition route table."),
        "{text}"
    );
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["GET", "/companies", "b2b:modify", "-"]);
    assert_eq!(rows.len(), 4);
}

#[test]
fn without_b2b_files_nothing_is_checked() {
    // No b2b-edition/ source: even an unknown family is not a problem.
    const ODD: Decisions = Decisions {
        hand_scopes: &[],
        b2b: B2bDecisions {
            family: "nope",
            ..B2B_NONE
        },
        ..NONE
    };
    let t = derive(&[], &ODD).expect("derives");
    assert!(t.b2b_routes.is_empty());
    assert!(!t.skipped.iter().any(|(f, _)| f == "b2b-edition/"));
}

#[test]
fn the_family_must_exist_and_have_a_modify_scope() {
    const NO_SCOPES: Decisions = Decisions {
        hand_scopes: &[],
        ..NONE
    };
    expect_problem(
        derive(&[companies()], &NO_SCOPES),
        "b2b:modify is not a scope family with a modify-level scope",
    );
    const READ_ONLY: Decisions = Decisions {
        hand_scopes: &[HandScope {
            name: "b2b:read",
            family: "b2b:read",
            level: Level::Read,
            spec_file: None,
            reason: "read only",
        }],
        b2b: B2bDecisions {
            family: "b2b:read",
            ..B2B_NONE
        },
        ..NONE
    };
    expect_problem(
        derive(&[companies()], &READ_ONLY),
        "b2b:read is not a scope family with a modify-level scope",
    );
}

#[test]
fn another_base_is_an_error_unless_skipped_and_a_stale_skip_is_an_error() {
    let auth = (
        "b2b-edition/authentication.yaml",
        spec(
            "https://api-b2b.bigcommerce.com/api/io",
            TOKEN,
            &[("/auth/backend", "post", "")],
        ),
    );
    // `/api/v3/iox` shares the prefix but is not below it.
    let lookalike = (
        "b2b-edition/x.yaml",
        spec(
            "https://api-b2b.bigcommerce.com/api/v3/iox",
            TOKEN,
            &[("/a", "get", "")],
        ),
    );
    expect_problem(
        derive(&[companies(), auth.clone()], &NONE),
        "b2b-edition/authentication.yaml: served on https://api-b2b.bigcommerce.com/api/io, not below",
    );
    expect_problem(
        derive(&[companies(), lookalike], &NONE),
        "b2b-edition/x.yaml: served on",
    );
    const SKIP: Decisions = Decisions {
        b2b: B2bDecisions {
            skipped_files: &[("b2b-edition/authentication.yaml", "another base")],
            ..B2B_NONE
        },
        ..NONE
    };
    let t = derive(&[companies(), auth], &SKIP).expect("skipped");
    assert!(!t.b2b_routes.iter().any(|r| r.path.contains("auth")));
    assert!(
        t.render_b2b_routes()
            .contains("#   b2b-edition/authentication.yaml: another base\n")
    );
    expect_problem(
        derive(&[companies()], &SKIP),
        "decisions.rs b2b skipped_files: b2b-edition/authentication.yaml is not in reference/",
    );
}

#[test]
fn only_the_store_token_schemes_pass_without_a_decision() {
    let config = |security: &str| {
        (
            "b2b-edition/invoice_management/config/config.yaml",
            spec(
                &format!("{V3_IO}/ip"),
                security,
                &[("/config", "get", ""), ("/config", "put", "")],
            ),
        )
    };
    let deprecated = config("- authToken: []\n");
    expect_problem(
        derive(&[companies(), deprecated.clone()], &NONE),
        "security scheme \"authToken\" is not X-Auth-Token or X-Store-Hash",
    );
    const DECIDED: Decisions = Decisions {
        b2b: B2bDecisions {
            schemes: &[B2bScheme {
                file: "b2b-edition/invoice_management/config/config.yaml",
                scheme: "authToken",
                reason: "deprecated header",
            }],
            ..B2B_NONE
        },
        ..NONE
    };
    let t = derive(&[companies(), deprecated], &DECIDED).expect("decided");
    let r = t.b2b_route("PUT", "/ip/config").expect("PUT /ip/config");
    assert_eq!(r.notes, ["deprecated header"]);
    // The decision is for that file only.
    let other = (
        "b2b-edition/user/user.yaml",
        spec(V3_IO, "- authToken: []\n", &[("/users", "get", "")]),
    );
    expect_problem(
        derive(&[companies(), config(TOKEN), other], &DECIDED),
        "b2b-edition/user/user.yaml: GET /users: security scheme \"authToken\"",
    );
    // A decision nothing uses is stale.
    expect_problem(
        derive(&[companies(), config(TOKEN)], &DECIDED),
        "decisions.rs b2b scheme b2b-edition/invoice_management/config/config.yaml authToken is not used",
    );
}

#[test]
fn an_operation_without_security_is_an_error() {
    for (security, extra, problem) in [
        ("", "", "no security requirement"),
        ("[]", "", "no security requirement"),
        (TOKEN, "security: []", "no security requirement"),
        ("- {}\n", "", "an empty security requirement"),
    ] {
        let file = (
            "b2b-edition/user/user.yaml",
            spec(V3_IO, security, &[("/users", "get", extra)]),
        );
        expect_problem(derive(&[file], &NONE), problem);
    }
    // The operation's own requirement wins over the file's.
    let file = (
        "b2b-edition/sales_staff/sales_staff.yaml",
        spec(
            V3_IO,
            TOKEN,
            &[
                ("/sales-staffs", "get", "security:\n  - authToken: []"),
                ("/sales-staffs/{id}", "get", ""),
            ],
        ),
    );
    expect_problem(
        derive(&[file], &NONE),
        "GET /sales-staffs: security scheme \"authToken\"",
    );
}

#[test]
fn a_copy_adds_no_row_but_must_not_add_an_operation() {
    let bundle = (
        "b2b-edition/invoice-management.yaml",
        spec(
            &format!("{V3_IO}/ip"),
            TOKEN,
            &[("/invoices", "get", ""), ("/invoices", "post", "")],
        ),
    );
    let copy = |ops: &[(&str, &str, &str)]| {
        (
            "b2b-edition/invoice_management/invoice/invoice.yaml",
            spec(&format!("{V3_IO}/ip"), "- authToken: []\n", ops),
        )
    };
    const COPIES: Decisions = Decisions {
        b2b: B2bDecisions {
            copies: &[(
                "b2b-edition/invoice_management/invoice/invoice.yaml",
                "a copy",
            )],
            ..B2B_NONE
        },
        ..NONE
    };
    let t = derive(
        &[bundle.clone(), copy(&[("/invoices", "get", "")])],
        &COPIES,
    )
    .expect("derives");
    assert_eq!(t.b2b_routes.len(), 2);
    // The copy's deprecated scheme needs no decision and leaves no note.
    assert!(t.b2b_routes.iter().all(|r| r.notes.is_empty()));
    assert!(
        t.render_b2b_routes()
            .contains("#   b2b-edition/invoice_management/invoice/invoice.yaml: a copy\n")
    );
    expect_problem(
        derive(
            &[bundle.clone(), copy(&[("/invoices/{id}", "delete", "")])],
            &COPIES,
        ),
        "DELETE /ip/invoices/{id} is in no other file",
    );
    expect_problem(
        derive(&[bundle], &COPIES),
        "decisions.rs b2b copies: b2b-edition/invoice_management/invoice/invoice.yaml is not in reference/",
    );
}

#[test]
fn a_read_decision_flags_a_non_get() {
    let quotes = (
        "b2b-edition/quote/quote.yaml",
        spec(
            V3_IO,
            TOKEN,
            &[("/rfq/search", "post", ""), ("/rfq", "post", "")],
        ),
    );
    const READ: Decisions = Decisions {
        b2b: B2bDecisions {
            reads: &[B2bRead {
                method: "POST",
                path: "/rfq/search",
                reason: "a search",
            }],
            ..B2B_NONE
        },
        ..NONE
    };
    let t = derive(std::slice::from_ref(&quotes), &READ).expect("derives");
    let search = t.b2b_route("POST", "/rfq/search").expect("search");
    assert_eq!(search.flags, BTreeSet::from([Flag::Read]));
    assert_eq!(search.notes, ["a search"]);
    assert!(
        t.b2b_route("POST", "/rfq")
            .expect("create")
            .flags
            .is_empty()
    );
    assert!(
        t.render_b2b_routes()
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == [
                    "POST",
                    "/rfq/search",
                    "b2b:modify",
                    "read",
                    "#",
                    "a",
                    "search"
                ])
    );
    const ON_GET: Decisions = Decisions {
        b2b: B2bDecisions {
            reads: &[B2bRead {
                method: "GET",
                path: "/rfq",
                reason: "pointless",
            }],
            ..B2B_NONE
        },
        ..NONE
    };
    expect_problem(
        derive(std::slice::from_ref(&quotes), &ON_GET),
        "the read flag is for a non-GET method",
    );
    const MISSING: Decisions = Decisions {
        b2b: B2bDecisions {
            reads: &[B2bRead {
                method: "POST",
                path: "/rfq/gone",
                reason: "gone",
            }],
            ..B2B_NONE
        },
        ..NONE
    };
    expect_problem(
        derive(&[quotes], &MISSING),
        "decisions.rs b2b read POST /rfq/gone is not a route",
    );
}

#[test]
fn the_same_operation_in_two_files_is_one_row() {
    let a = (
        "b2b-edition/payment/payment.yaml",
        spec(
            V3_IO,
            TOKEN,
            &[("/companies/{companyId}/credit", "get", "")],
        ),
    );
    let b = (
        "b2b-edition/company/company.yaml",
        spec(
            V3_IO,
            TOKEN,
            &[("/companies/{companyId}/credit", "get", "")],
        ),
    );
    let t = derive(&[a, b], &NONE).expect("derives");
    assert_eq!(t.b2b_routes.len(), 1);
}

#[test]
fn odd_paths_are_errors() {
    let file = (
        "b2b-edition/user/user.yaml",
        spec(V3_IO, TOKEN, &[("/users/{id}x", "get", "")]),
    );
    expect_problem(derive(&[file], &NONE), "path /users/{id}x");
}
