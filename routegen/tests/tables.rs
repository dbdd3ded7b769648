//! Checks on the committed data/routes.txt, data/b2b-routes.txt and data/scopes.txt for the tricky
//! derivations (the drift test proves these files are what routegen derives).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

const FLAGS: &[&str] = &[
    "read",
    "modify",
    "not_proxied",
    "scripts_visibility",
    "graphql",
];

#[derive(Debug)]
struct Row {
    fields: Vec<String>,
    note: String,
}

fn rows(name: &str) -> Vec<Row> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (data, note) = match l.find(" # ") {
                Some(i) => (&l[..i], l[i + 3..].trim()),
                None => (l, ""),
            };
            Row {
                fields: data.split_whitespace().map(str::to_owned).collect(),
                note: note.to_owned(),
            }
        })
        .collect()
}

fn routes() -> BTreeMap<(String, String), Row> {
    rows("routes.txt")
        .into_iter()
        .map(|r| ((r.fields[0].clone(), r.fields[1].clone()), r))
        .collect()
}

fn route<'r>(routes: &'r BTreeMap<(String, String), Row>, method: &str, path: &str) -> &'r Row {
    routes
        .get(&(method.to_owned(), path.to_owned()))
        .unwrap_or_else(|| panic!("no route {method} {path}"))
}

/// SCOPES and FLAGS of a route.
fn grant(routes: &BTreeMap<(String, String), Row>, method: &str, path: &str) -> (String, String) {
    let r = route(routes, method, path);
    (r.fields[2].clone(), r.fields[3].clone())
}

fn g(scopes: &str, flags: &str) -> (String, String) {
    (scopes.to_owned(), flags.to_owned())
}

#[test]
fn rows_are_well_formed_and_sorted() {
    let list = rows("routes.txt");
    let scopes = rows("scopes.txt");
    let families: BTreeSet<&str> = scopes.iter().map(|s| s.fields[1].as_str()).collect();
    let mut keys = Vec::new();
    for r in &list {
        assert_eq!(r.fields.len(), 4, "{r:?}");
        let (method, path, scopes, flags) =
            (&r.fields[0], &r.fields[1], &r.fields[2], &r.fields[3]);
        assert!(
            ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()),
            "{r:?}"
        );
        assert!(path.starts_with('/'), "{r:?}");
        for seg in path[1..].split('/') {
            let param = seg.starts_with('{')
                && seg.ends_with('}')
                && !seg[1..seg.len() - 1].contains(['{', '}']);
            assert!(param || !seg.contains(['{', '}']), "{r:?}");
            assert!(!seg.is_empty(), "{r:?}");
        }
        let flags: Vec<&str> = if flags == "-" {
            vec![]
        } else {
            flags.split(',').collect()
        };
        assert!(flags.iter().all(|f| FLAGS.contains(f)), "{r:?}");
        if flags.contains(&"not_proxied") {
            assert_eq!(scopes, "-", "{r:?}");
        } else {
            assert_ne!(scopes, "-", "{r:?}");
            for family in scopes.split(',') {
                assert!(
                    families.contains(family),
                    "{family} is not a FAMILY in scopes.txt: {r:?}"
                );
            }
        }
        keys.push((path.clone(), method.clone()));
    }
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        keys, sorted,
        "routes.txt must be sorted by path then method, without duplicates"
    );
}

#[test]
fn scope_rows_are_well_formed() {
    let scopes = rows("scopes.txt");
    let by_name: BTreeMap<&str, &Row> = scopes.iter().map(|s| (s.fields[0].as_str(), s)).collect();
    assert_eq!(by_name.len(), scopes.len(), "a scope is listed twice");
    for s in &scopes {
        assert_eq!(s.fields.len(), 3, "{s:?}");
        assert!(["modify", "read"].contains(&s.fields[2].as_str()), "{s:?}");
        let family = by_name
            .get(s.fields[1].as_str())
            .unwrap_or_else(|| panic!("{s:?}"));
        assert_eq!(
            family.fields[1], s.fields[1],
            "a family is named after one of its scopes: {s:?}"
        );
    }
    let level = |name: &str| {
        let s = by_name
            .get(name)
            .unwrap_or_else(|| panic!("no scope {name}"));
        (s.fields[1].clone(), s.fields[2].clone())
    };
    let fl = |f: &str, l: &str| (f.to_owned(), l.to_owned());
    assert_eq!(
        level("store_themes_read_only"),
        fl("store_themes_manage", "read")
    );
    assert_eq!(
        level("store_fulfillment_methods_read_only"),
        fl("store_fulfillment_methods_manage", "read")
    );
    assert_eq!(
        level("store_order_fulfillment_read_only"),
        fl("store_order_fulfillment_manage", "read")
    );
    assert_eq!(
        level("store_metafield_write_all"),
        fl("store_metafield_write", "modify")
    );
    assert_eq!(
        level("account_users_delete"),
        fl("account_users_write", "modify")
    );
    assert_eq!(
        level("store_payments_methods_read"),
        fl("store_payments_methods_read", "read")
    );
    assert_eq!(
        level("store_v2_products_read_only"),
        fl("store_v2_products", "read")
    );
    assert_eq!(level("default"), fl("default", "modify"));
    for grant in [
        "storefront:Unauthenticated",
        "storefront:Customer",
        "storefront:B2B",
        "storefront:impersonate",
    ] {
        assert_eq!(level(grant), fl(grant, "modify"));
    }
    assert_eq!(level("b2b:modify"), fl("b2b:modify", "modify"));
    assert_eq!(level("b2b:read"), fl("b2b:modify", "read"));
    assert_eq!(
        level("bcgate:graphql_write"),
        fl("bcgate:graphql_write", "modify")
    );
    assert_eq!(
        level("bcgate:graphql_read"),
        fl("bcgate:graphql_write", "read")
    );
    assert_eq!(
        level("store_logs_read_only"),
        fl("store_logs_read_only", "read")
    );
    assert_eq!(level("MANAGE_TAX"), fl("MANAGE_TAX", "modify"));
    assert_eq!(
        level("store_infrastructure_deployments_read_only"),
        fl("store_infrastructure_deployments_manage", "read")
    );
    // Misspelt spec names are mapped, not listed.
    for misspelt in [
        "store_checkouts",
        "store_checkouts_read_only",
        "store_checkout_content",
        "store_checkout_content_read_only",
    ] {
        assert!(
            !by_name.contains_key(misspelt),
            "{misspelt} must not be a scope row"
        );
    }
    // Every row that is not an oauth-scopes.tsv table row says where it comes from.
    for name in [
        "default",
        "storefront:Customer",
        "storefront:impersonate",
        "b2b:read",
        "bcgate:graphql_read",
        "MANAGE_TAX",
        "store_logs_read_only",
        "store_infrastructure_logs_read_only",
    ] {
        assert!(!by_name[name].note.is_empty(), "{name} needs a note");
    }
}

#[test]
fn special_cases() {
    let r = routes();
    // pricing.sf.yml is a management API whose POST is a read.
    assert_eq!(
        grant(&r, "POST", "/v3/pricing/products"),
        g("store_v2_products", "read")
    );
    // Orders v3 payment actions accept Orders or Order Transactions.
    for (method, path) in [
        ("POST", "/v3/orders/{order_id}/payment_actions/capture"),
        ("POST", "/v3/orders/{order_id}/payment_actions/void"),
        ("POST", "/v3/orders/{order_id}/payment_actions/refunds"),
        ("GET", "/v3/orders/{order_id}/payment_actions/refunds"),
        (
            "POST",
            "/v3/orders/{order_id}/payment_actions/refund_quotes",
        ),
        ("GET", "/v3/orders/payment_actions/refunds"),
        ("GET", "/v3/orders/payment_actions/refunds/{refund_id}"),
    ] {
        assert_eq!(
            grant(&r, method, path),
            g("store_v2_orders,store_v2_transactions", "-"),
            "{method} {path}"
        );
    }
    // ... but the transactions list states Order Transactions only.
    assert_eq!(
        grant(&r, "GET", "/v3/orders/{order_id}/transactions"),
        g("store_v2_transactions", "-")
    );
    assert_eq!(
        grant(&r, "GET", "/v3/orders/settings"),
        g("store_v2_orders", "-")
    );
    // Cart settings are Information & Settings; carts are Carts.
    assert_eq!(
        grant(&r, "GET", "/v3/carts/settings"),
        g("store_v2_information", "-")
    );
    assert_eq!(
        grant(&r, "PUT", "/v3/carts/settings/channels/{channel_id}"),
        g("store_v2_information", "-")
    );
    assert_eq!(grant(&r, "GET", "/v3/carts/{cartId}"), g("store_cart", "-"));
    assert_eq!(
        grant(&r, "POST", "/v3/carts/{cart_id}/metafields"),
        g("store_cart", "-")
    );
    // Abandoned-cart channel settings declare security: [] but are enforced.
    let abandoned = route(
        &r,
        "PUT",
        "/v3/abandoned-carts/settings/channels/{channel_id}",
    );
    assert_eq!(abandoned.fields[2], "store_v2_information");
    assert!(abandoned.note.contains("security: []"));
    // Settings analytics are Content; other settings Information & Settings.
    assert_eq!(
        grant(&r, "PUT", "/v3/settings/analytics/{id}"),
        g("store_v2_content", "-")
    );
    assert_eq!(
        grant(&r, "GET", "/v3/settings/catalog"),
        g("store_v2_information", "-")
    );
    // Stored instruments, channel sites, listings.
    assert_eq!(
        grant(&r, "GET", "/v3/customers/{customerId}/stored-instruments"),
        g("store_stored_payment_instruments", "-")
    );
    assert_eq!(
        grant(&r, "GET", "/v3/customers"),
        g("store_v2_customers", "-")
    );
    assert_eq!(
        grant(&r, "PUT", "/v3/channels/{channel_id}/site/checkout-url"),
        g("store_sites", "-")
    );
    assert_eq!(
        grant(&r, "GET", "/v3/channels/{channel_id}/listings"),
        g("store_channel_listings", "-")
    );
    assert_eq!(
        grant(&r, "GET", "/v3/channels"),
        g("store_channel_settings", "-")
    );
    assert_eq!(
        grant(&r, "GET", "/v3/sites/{site_id}/routes"),
        g("store_sites", "-")
    );
    // Segment shopper profiles need modify Customers even to read.
    assert_eq!(
        grant(&r, "GET", "/v3/segments/{segmentId}/shopper-profiles"),
        g("store_v2_customers", "modify")
    );
    assert_eq!(
        grant(&r, "GET", "/v3/segments"),
        g("store_v2_customers", "-")
    );
    // Checkouts: misspelt table names mapped, noted.
    let checkout = route(&r, "GET", "/v3/checkouts/{checkoutId}");
    assert_eq!(checkout.fields[2], "store_checkout");
    assert!(checkout.note.contains("misspell"), "{checkout:?}");
    // Widgets are Content, whatever page-widgets.v3.yml's template says.
    assert_eq!(
        grant(&r, "GET", "/v3/content/page-widgets"),
        g("store_v2_content", "-")
    );
    assert_eq!(
        grant(&r, "GET", "/v3/content/widgets"),
        g("store_v2_content", "-")
    );
    // Scripts: Content, plus a body check on create/update.
    assert_eq!(
        grant(&r, "POST", "/v3/content/scripts"),
        g("store_v2_content", "scripts_visibility")
    );
    assert_eq!(
        grant(&r, "PUT", "/v3/content/scripts/{uuid}"),
        g("store_v2_content", "scripts_visibility")
    );
    assert_eq!(
        grant(&r, "DELETE", "/v3/content/scripts/{uuid}"),
        g("store_v2_content", "-")
    );
    // Webhooks use the default scope.
    assert_eq!(grant(&r, "POST", "/v3/hooks"), g("default", "-"));
    // Storefront tokens and payments.
    assert_eq!(
        grant(&r, "POST", "/v3/storefront/api-token"),
        g("store_storefront_api", "-")
    );
    assert_eq!(
        grant(
            &r,
            "POST",
            "/v3/storefront/api-token-customer-impersonation"
        ),
        g("store_storefront_api_customer_impersonation", "-")
    );
    assert_eq!(
        grant(&r, "POST", "/v3/payments/access_tokens"),
        g("store_payments_access_token_create", "-")
    );
    assert_eq!(
        grant(&r, "GET", "/v3/payments/methods"),
        g("store_payments_methods_read", "-")
    );
    // Path words are not scope names.
    assert_eq!(
        grant(&r, "GET", "/v3/marketing/email-templates"),
        g("store_v2_information", "-")
    );
    assert_eq!(
        grant(&r, "GET", "/v3/inventory/locations"),
        g("store_locations", "-")
    );
    assert_eq!(
        grant(&r, "GET", "/v3/storefront/redirects"),
        g("store_v2_content", "-")
    );
    // Themes list only their manage scope; the family still has its read-only twin.
    assert_eq!(
        grant(&r, "GET", "/v3/themes"),
        g("store_themes_manage", "-")
    );
    // GraphQL Admin.
    assert_eq!(
        grant(&r, "POST", "/graphql"),
        g("bcgate:graphql_write", "graphql")
    );
    assert_eq!(
        grant(&r, "GET", "/graphql"),
        g("bcgate:graphql_write", "graphql")
    );
}

#[test]
fn storefront_and_other_hosts_are_not_proxied() {
    let r = routes();
    for (method, path) in [
        ("GET", "/api/storefront/carts"),
        ("POST", "/api/storefront/carts"),
        ("GET", "/api/storefront/checkouts/{checkoutId}"),
        ("GET", "/login/token/{jwt_token}"),
        ("GET", "/customer/current.jwt"),
        ("POST", "/payments"),
    ] {
        assert_eq!(
            grant(&r, method, path),
            g("-", "not_proxied"),
            "{method} {path}"
        );
    }
    // Every not-proxied row is one of those hosts' paths.
    for ((method, path), row) in &r {
        if row.fields[3].contains("not_proxied") {
            assert!(
                path.starts_with("/api/storefront/")
                    || path.starts_with("/login/")
                    || path.starts_with("/customer/")
                    || path == "/payments",
                "{method} {path}"
            );
        }
    }
    // App-hosted provider APIs are left out.
    assert!(
        !r.keys().any(|(_, p)| p.contains("estimate")
            || p.starts_with("/tax/")
            || p.starts_with("/rate"))
    );
}

#[test]
fn b2b_rows_are_well_formed_sorted_and_all_b2b_modify() {
    let list = rows("b2b-routes.txt");
    assert!(list.len() > 100, "only {} B2B rows", list.len());
    let mut keys = Vec::new();
    for r in &list {
        assert_eq!(r.fields.len(), 4, "{r:?}");
        let (method, path) = (&r.fields[0], &r.fields[1]);
        assert!(
            ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()),
            "{r:?}"
        );
        assert!(path.starts_with('/') && !path.ends_with('/'), "{r:?}");
        // The table's paths are after /api/v3/io: never the base again.
        assert!(!path.starts_with("/api/"), "{r:?}");
        assert_eq!(r.fields[2], "b2b:modify", "{r:?}");
        assert!(["-", "read"].contains(&r.fields[3].as_str()), "{r:?}");
        if r.fields[3] == "read" {
            assert_ne!(method, "GET", "{r:?}");
            assert!(!r.note.is_empty(), "a read flag is a decision: {r:?}");
        }
        keys.push((path.clone(), method.clone()));
    }
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        keys, sorted,
        "b2b-routes.txt must be sorted by path then method, without duplicates"
    );
}

#[test]
fn b2b_special_cases() {
    let r: BTreeMap<(String, String), Row> = rows("b2b-routes.txt")
        .into_iter()
        .map(|r| ((r.fields[0].clone(), r.fields[1].clone()), r))
        .collect();
    for (method, path) in [
        ("GET", "/companies"),
        ("POST", "/companies"),
        ("DELETE", "/companies/{companyId}"),
        ("GET", "/users/customer/{customerId}"),
        ("POST", "/rfq/{quote_id}/checkout"),
        ("GET", "/payments"),
        ("GET", "/channels"),
        // Invoice management is below /api/v3/io/ip.
        ("GET", "/ip/invoices"),
        ("POST", "/ip/orders/{orderId}/invoices"),
        ("GET", "/ip/payments"),
        ("GET", "/ip/receipts/{receiptId}/lines/{receiptLineId}"),
    ] {
        assert_eq!(
            grant(&r, method, path),
            g("b2b:modify", "-"),
            "{method} {path}"
        );
    }
    // No B2B spec calls a non-GET a read.
    assert!(r.values().all(|row| row.fields[3] == "-"));
    // Invoice portal config is documented only with the deprecated authToken.
    assert!(route(&r, "PUT", "/ip/config").note.contains("authToken"));
    assert!(route(&r, "GET", "/sales-staffs").note.contains("authToken"));
    assert!(
        route(&r, "GET", "/sales-staffs/{salesStaffId}")
            .note
            .is_empty()
    );
    // order.yaml misspells its security scheme.
    assert!(route(&r, "GET", "/orders").note.contains("X-Auh-Token"));
    // The token-minting endpoints (another base, /api/io) are not in the table.
    assert!(
        !r.keys()
            .any(|(_, p)| p.starts_with("/auth") || p.starts_with("/backend")),
        "authentication endpoints must not be B2B routes"
    );
    // The api table holds no B2B path and points at the B2B table.
    assert!(!routes().keys().any(|(_, p)| p.starts_with("/companies")));
    let api = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/routes.txt"),
    )
    .expect("routes.txt");
    assert!(
        api.lines()
            .any(|l| l.starts_with("#   b2b-edition/:") && l.contains("data/b2b-routes.txt")),
        "routes.txt's header points at the B2B table"
    );
}
