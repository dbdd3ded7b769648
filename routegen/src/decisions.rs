//! Every hand-made decision the generator applies, as plain data.
//!
//! Each entry carries a one-line reason; the reason is copied into the generated
//! file as a trailing `# note` on every row the entry changes. The generator fails
//! on an entry that no longer changes anything, so stale decisions are loud too.
//!
//! Paths are full paths as a caller sends them after `/stores/{store_hash}`
//! (`/v3/...`, `/v2/...`). A rule's path matches that path and every path below
//! it, segment by segment; the most specific rule wins.

use crate::{Flag, Level};

/// All decisions, grouped by kind.
#[derive(Debug, Clone, Copy)]
pub struct Decisions {
    /// Files under `reference/` that are not turned into routes at all (an
    /// entry ending in `/` names every file below that folder).
    pub skipped_files: &'static [(&'static str, &'static str)],
    /// Files whose routes are served somewhere other than api.bigcommerce.com:
    /// their rows carry no scope and the `not_proxied` flag.
    pub not_proxied_files: &'static [(&'static str, &'static str)],
    /// Levels for oauth-scopes.tsv rows whose permission column is empty.
    pub tsv_levels: &'static [(&'static str, Level, &'static str)],
    /// Scopes that are not rows of oauth-scopes.tsv.
    pub hand_scopes: &'static [HandScope],
    /// Spec scope names that are not api-accounts.mdx names (or not what their row says).
    pub aliases: &'static [Alias],
    /// Per-path scope and flag decisions.
    pub rules: &'static [Rule],
    /// Operations declaring `security: []` whose scope the proxy enforces anyway.
    pub security_overrides: &'static [SecurityOverride],
    /// Routes that are in no spec file.
    pub hand_routes: &'static [HandRoute],
    /// The B2B Edition table's decisions.
    pub b2b: B2bDecisions,
}

/// A scope row of scopes.txt that oauth-scopes.tsv does not have.
#[derive(Debug, Clone, Copy)]
pub struct HandScope {
    pub name: &'static str,
    pub family: &'static str,
    pub level: Level,
    /// The spec file whose scope table names this scope (checked), if any.
    pub spec_file: Option<&'static str>,
    pub reason: &'static str,
}

/// A scope name as a spec file writes it, mapped to the name bcgate uses.
#[derive(Debug, Clone, Copy)]
pub struct Alias {
    pub file: &'static str,
    pub spec_name: &'static str,
    /// The row's permission column as written (compared case-insensitively);
    /// `None` matches any row, including scope lists without a permission.
    pub permission: Option<&'static str>,
    /// `None`: the row names no scope at all and is ignored.
    pub canonical: Option<&'static str>,
    pub reason: &'static str,
}

/// Scope families and/or flags for the operations of one file under one path.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub file: &'static str,
    /// Upper-case method, or `None` for every method.
    pub method: Option<&'static str>,
    pub path: &'static str,
    /// Families (scopes.txt FAMILY) any one of which grants the operations.
    /// Used only where the operation states no scope of its own.
    /// `None`: keep what the spec says and only add `flags`.
    pub scopes: Option<&'static [&'static str]>,
    pub flags: &'static [Flag],
    pub reason: &'static str,
}

/// An operation that declares `security: []` but still needs its stated scope.
#[derive(Debug, Clone, Copy)]
pub struct SecurityOverride {
    pub file: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    pub reason: &'static str,
}

/// A route that no spec file describes.
#[derive(Debug, Clone, Copy)]
pub struct HandRoute {
    pub method: &'static str,
    pub path: &'static str,
    pub scopes: &'static [&'static str],
    pub flags: &'static [Flag],
    pub reason: &'static str,
}

/// Decisions for the B2B Edition table (the files under `reference/b2b-edition/`).
/// Its paths are table paths: the path after `/api/v3/io`.
#[derive(Debug, Clone, Copy)]
pub struct B2bDecisions {
    /// The scope family (scopes.txt FAMILY) that grants every B2B route.
    pub family: &'static str,
    /// Files (or folders, ending in `/`) under `b2b-edition/` left out of the table.
    pub skipped_files: &'static [(&'static str, &'static str)],
    /// Files whose every operation another file documents too: they add no
    /// row, and one with an operation the table lacks is an error.
    pub copies: &'static [(&'static str, &'static str)],
    /// Security schemes, besides X-Auth-Token and X-Store-Hash, that stand for
    /// the store's server-to-server token in one file.
    pub schemes: &'static [B2bScheme],
    /// Non-GET operations that are reads (flag `read`).
    pub reads: &'static [B2bRead],
}

/// A security scheme name a B2B spec file uses for the server-to-server token.
#[derive(Debug, Clone, Copy)]
pub struct B2bScheme {
    pub file: &'static str,
    pub scheme: &'static str,
    pub reason: &'static str,
}

/// A B2B operation that is a read although its method is not GET.
#[derive(Debug, Clone, Copy)]
pub struct B2bRead {
    pub method: &'static str,
    pub path: &'static str,
    pub reason: &'static str,
}

const B2B_AUTH_TOKEN: &str = "documents only the deprecated B2B authToken header; B2B Edition's docs: X-Auth-Token with X-Store-Hash replaces it for every server-to-server request, same server and path";

const B2B_INVOICE_COPY: &str = "a per-section copy of invoice-management.yaml's operations (with the deprecated authToken): adds no row";

const CHECKOUTS_MISSPELT: &str = "checkouts.v3.yml's table misspells the scopes (store_checkouts*, store_checkout_content*); read as api-accounts.mdx's store_checkout*, store_content_checkout*";

const V2_CATALOG: &str = "legacy v2 catalog (in no spec file; BigCommerce still serves it, and the python bigcommerce SDK's Products, Brands, Categories, Options and OptionSets call it): the Products scope";

/// The hand routes: `routes;` then the legacy v2 catalog as `"PATH": METHOD…;`
/// lines, every one granted by the Products family (read-only: GET only).
macro_rules! with_v2_catalog {
    ($($route:expr),* ; $($path:literal: $($method:literal)+;)*) => {
        &[
            $($route,)*
            $($(HandRoute {
                method: $method,
                path: $path,
                scopes: &["store_v2_products"],
                flags: &[],
                reason: V2_CATALOG,
            },)+)*
        ]
    };
}

/// The decisions the committed tables are generated with.
pub const DECISIONS: Decisions = Decisions {
    skipped_files: &[
        (".spectral.yaml", "a lint configuration, not an API"),
        (
            "shipping_provider.yml",
            "an API that shipping apps host and BigCommerce calls (server {app_domain})",
        ),
        (
            "tax_provider.yml",
            "an API that tax apps host and BigCommerce calls (server {app_domain})",
        ),
    ],

    not_proxied_files: &[
        (
            "carts.sf.yml",
            "storefront API on the store's own domain (cookies/CORS): never sent the store token",
        ),
        (
            "checkouts.sf.yml",
            "storefront API on the store's own domain (cookies/CORS): never sent the store token",
        ),
        (
            "consent.sf.yml",
            "storefront API on the store's own domain (cookies/CORS): never sent the store token",
        ),
        (
            "customers.sf.yml",
            "storefront API on the store's own domain (cookies/CORS): never sent the store token",
        ),
        (
            "form_fields.sf.yml",
            "storefront API on the store's own domain (cookies/CORS): never sent the store token",
        ),
        (
            "orders.sf.yml",
            "storefront API on the store's own domain (cookies/CORS): never sent the store token",
        ),
        (
            "pickup_options.sf.yml",
            "storefront API on the store's own domain (cookies/CORS): never sent the store token",
        ),
        (
            "subscriptions.sf.yml",
            "storefront API on the store's own domain (cookies/CORS): never sent the store token",
        ),
        (
            "current_customer.yml",
            "served on the store's own domain with a client ID: never sent the store token",
        ),
        (
            "customer_login.yml",
            "served on the store's own domain with a signed JWT: never sent the store token",
        ),
        (
            "payments/process_payments.yml",
            "served on payments.bigcommerce.com with a payment access token: never sent the store token",
        ),
    ],

    tsv_levels: &[(
        "default",
        Level::Modify,
        "named only in api-accounts.mdx's prose: every API account has it (webhooks)",
    )],

    hand_scopes: &[
        HandScope {
            name: "storefront:Unauthenticated",
            family: "storefront:Unauthenticated",
            level: Level::Modify,
            spec_file: None,
            reason: "bcgate's own grant: storefront GraphQL with a private token of scope Unauthenticated",
        },
        HandScope {
            name: "storefront:Customer",
            family: "storefront:Customer",
            level: Level::Modify,
            spec_file: None,
            reason: "bcgate's own grant: storefront GraphQL with a private token of scope Customer, and as the customer of a verified X-Bcgate-Customer-Token",
        },
        HandScope {
            name: "storefront:B2B",
            family: "storefront:B2B",
            level: Level::Modify,
            spec_file: None,
            reason: "bcgate's own grant: storefront GraphQL with a private token of scope B2B",
        },
        HandScope {
            name: "storefront:impersonate",
            family: "storefront:impersonate",
            level: Level::Modify,
            spec_file: None,
            reason: "bcgate's own grant: storefront GraphQL as any customer the client names (X-Bc-Customer-Id), with a customer impersonation token",
        },
        HandScope {
            name: "b2b:modify",
            family: "b2b:modify",
            level: Level::Modify,
            spec_file: None,
            reason: "bcgate's own grant: every B2B Edition REST Management route (data/b2b-routes.txt); B2B Edition publishes no scope name",
        },
        HandScope {
            name: "b2b:read",
            family: "b2b:modify",
            level: Level::Read,
            spec_file: None,
            reason: "bcgate's own grant: B2B Edition REST Management reads (GET, HEAD) only",
        },
        HandScope {
            name: "bcgate:graphql_write",
            family: "bcgate:graphql_write",
            level: Level::Modify,
            spec_file: None,
            reason: "bcgate's own scope: GraphQL Admin mutations (and queries)",
        },
        HandScope {
            name: "bcgate:graphql_read",
            family: "bcgate:graphql_write",
            level: Level::Read,
            spec_file: None,
            reason: "bcgate's own scope: GraphQL Admin queries only",
        },
        HandScope {
            name: "store_logs_read_only",
            family: "store_logs_read_only",
            level: Level::Read,
            spec_file: Some("store_logs.v3.yml"),
            reason: "named only by store_logs.v3.yml's table, not by api-accounts.mdx",
        },
        HandScope {
            name: "MANAGE_TAX",
            family: "MANAGE_TAX",
            level: Level::Modify,
            spec_file: Some("tax_classes.v3.yaml"),
            reason: "named only by tax_classes.v3.yaml's table (Tax, modify), not by api-accounts.mdx",
        },
        HandScope {
            name: "store_infrastructure_deployments_manage",
            family: "store_infrastructure_deployments_manage",
            level: Level::Modify,
            spec_file: Some("infrastructure_hosting.v3.yml"),
            reason: "named only by infrastructure_hosting.v3.yml's table, not by api-accounts.mdx",
        },
        HandScope {
            name: "store_infrastructure_deployments_read_only",
            family: "store_infrastructure_deployments_manage",
            level: Level::Read,
            spec_file: Some("infrastructure_hosting.v3.yml"),
            reason: "named only by infrastructure_hosting.v3.yml's table, not by api-accounts.mdx",
        },
        HandScope {
            name: "store_infrastructure_deployments_create_preview",
            family: "store_infrastructure_deployments_create_preview",
            level: Level::Modify,
            spec_file: Some("infrastructure_hosting.v3.yml"),
            reason: "infrastructure_hosting.v3.yml's 'create preview' permission: reach undescribed, so a family of its own that grants no route (fail closed)",
        },
        HandScope {
            name: "store_infrastructure_projects_manage",
            family: "store_infrastructure_projects_manage",
            level: Level::Modify,
            spec_file: Some("infrastructure_hosting.v3.yml"),
            reason: "named only by infrastructure_hosting.v3.yml's table, not by api-accounts.mdx",
        },
        HandScope {
            name: "store_infrastructure_projects_read_only",
            family: "store_infrastructure_projects_manage",
            level: Level::Read,
            spec_file: Some("infrastructure_hosting.v3.yml"),
            reason: "named only by infrastructure_hosting.v3.yml's table, not by api-accounts.mdx",
        },
        HandScope {
            name: "store_infrastructure_logs_read_only",
            family: "store_infrastructure_logs_read_only",
            level: Level::Read,
            spec_file: Some("infrastructure_hosting.v3.yml"),
            reason: "named only by infrastructure_hosting.v3.yml's table, not by api-accounts.mdx",
        },
    ],

    aliases: &[
        Alias {
            file: "checkouts.v3.yml",
            spec_name: "store_checkouts",
            permission: None,
            canonical: Some("store_checkout"),
            reason: CHECKOUTS_MISSPELT,
        },
        Alias {
            file: "checkouts.v3.yml",
            spec_name: "store_checkouts_read_only",
            permission: None,
            canonical: Some("store_checkout_read_only"),
            reason: CHECKOUTS_MISSPELT,
        },
        Alias {
            file: "checkouts.v3.yml",
            spec_name: "store_checkout_content",
            permission: None,
            canonical: Some("store_content_checkout"),
            reason: CHECKOUTS_MISSPELT,
        },
        Alias {
            file: "checkouts.v3.yml",
            spec_name: "store_checkout_content_read_only",
            permission: None,
            canonical: Some("store_content_checkout_read_only"),
            reason: CHECKOUTS_MISSPELT,
        },
        Alias {
            file: "carts.v3.yml",
            spec_name: "store_v2_information",
            permission: Some("read-only"),
            canonical: Some("store_v2_information_read_only"),
            reason: "carts.v3.yml's read-only Information & Settings row says store_v2_information; read as store_v2_information_read_only",
        },
        Alias {
            file: "page-widgets.v3.yml",
            spec_name: "...",
            permission: None,
            canonical: None,
            reason: "page-widgets.v3.yml's table is an unfilled template ('Add scopes ++++')",
        },
    ],

    rules: &[
        // abandoned carts: nothing beyond the security override below.
        // carts.v3.yml: Carts + Information & Settings; the settings operations state their own table.
        Rule {
            file: "carts.v3.yml",
            method: None,
            path: "/v3/carts",
            scopes: Some(&["store_cart"]),
            flags: &[],
            reason: "carts.v3.yml lists Carts and Information & Settings; carts and cart metafields are Carts (settings state their own scope)",
        },
        // channels.v3.yml: Channel Listings, Channel Settings, Sites & Routes.
        Rule {
            file: "channels.v3.yml",
            method: None,
            path: "/v3/channels",
            scopes: Some(&["store_channel_settings"]),
            flags: &[],
            reason: "channels.v3.yml lists three families; channels, currency assignments, menus and metafields are Channel Settings",
        },
        Rule {
            file: "channels.v3.yml",
            method: None,
            path: "/v3/channels/{channel_id}/listings",
            scopes: Some(&["store_channel_listings"]),
            flags: &[],
            reason: "channels.v3.yml lists three families; listings are Channel Listings",
        },
        Rule {
            file: "channels.v3.yml",
            method: None,
            path: "/v3/channels/{channel_id}/site",
            scopes: Some(&["store_sites"]),
            flags: &[],
            reason: "channels.v3.yml lists three families; a channel's site is Sites & Routes (api-accounts.mdx: Channels V3 Sites)",
        },
        // checkouts.v3.yml: Checkouts + Checkout Content (misspelt).
        Rule {
            file: "checkouts.v3.yml",
            method: None,
            path: "/v3/checkouts",
            scopes: Some(&["store_checkout"]),
            flags: &[],
            reason: "checkouts.v3.yml lists Checkouts and Checkout Content; Checkout Content is for scripts (api-accounts.mdx), so Checkouts",
        },
        // customers.v3.yml: Customers + Stored Payment Instruments.
        Rule {
            file: "customers.v3.yml",
            method: None,
            path: "/v3/customers",
            scopes: Some(&["store_v2_customers"]),
            flags: &[],
            reason: "customers.v3.yml lists Customers and Stored Payment Instruments; all but stored instruments are Customers",
        },
        Rule {
            file: "customers.v3.yml",
            method: None,
            path: "/v3/customers/{customerId}/stored-instruments",
            scopes: Some(&["store_stored_payment_instruments"]),
            flags: &[],
            reason: "stored instruments need Stored Payment Instruments",
        },
        // infrastructure_hosting.v3.yml: three families, none in api-accounts.mdx.
        Rule {
            file: "infrastructure_hosting.v3.yml",
            method: None,
            path: "/v3/infrastructure/projects",
            scopes: Some(&["store_infrastructure_projects_manage"]),
            flags: &[],
            reason: "infrastructure_hosting.v3.yml lists three families; projects are Infrastructure Projects",
        },
        Rule {
            file: "infrastructure_hosting.v3.yml",
            method: None,
            path: "/v3/infrastructure/deployments",
            scopes: Some(&["store_infrastructure_deployments_manage"]),
            flags: &[],
            reason: "infrastructure_hosting.v3.yml lists three families; deployments are Infrastructure Deployments (create_preview's reach is undescribed: not granted)",
        },
        Rule {
            file: "infrastructure_hosting.v3.yml",
            method: None,
            path: "/v3/infrastructure/logs",
            scopes: Some(&["store_infrastructure_logs_read_only"]),
            flags: &[],
            reason: "infrastructure_hosting.v3.yml lists three families; log tails are Infrastructure Logs",
        },
        // orders.v3.yml: Orders + Order Transactions; payment actions state their own lists.
        Rule {
            file: "orders.v3.yml",
            method: None,
            path: "/v3/orders",
            scopes: Some(&["store_v2_orders"]),
            flags: &[],
            reason: "orders.v3.yml lists Orders and Order Transactions; order metafields and settings are Orders",
        },
        Rule {
            file: "orders.v3.yml",
            method: None,
            path: "/v3/orders/payment_actions/refunds",
            scopes: Some(&["store_v2_orders", "store_v2_transactions"]),
            flags: &[],
            reason: "a refund by ID states no scope; the refund lists accept Orders or Order Transactions",
        },
        // page-widgets.v3.yml: unfilled template table.
        Rule {
            file: "page-widgets.v3.yml",
            method: None,
            path: "/v3/content/page-widgets",
            scopes: Some(&["store_v2_content"]),
            flags: &[],
            reason: "page-widgets.v3.yml's table is an unfilled template (Marketing read-only); api-accounts.mdx puts Widgets V3 under Content",
        },
        // payments: the two v3 files share one two-family table.
        Rule {
            file: "payments/accepted-methods_payments.v3.yml",
            method: None,
            path: "/v3/payments/methods",
            scopes: Some(&["store_payments_methods_read"]),
            flags: &[],
            reason: "the payments table lists Create Payments and Get Payment Methods; accepted methods are Get Payment Methods",
        },
        Rule {
            file: "payments/access-tokens_payments.v3.yml",
            method: None,
            path: "/v3/payments/access_tokens",
            scopes: Some(&["store_payments_access_token_create"]),
            flags: &[],
            reason: "the payments table lists Create Payments and Get Payment Methods; creating a payment access token is Create Payments",
        },
        // pricing.sf.yml: an api.bigcommerce.com API despite its name.
        Rule {
            file: "pricing.sf.yml",
            method: Some("POST"),
            path: "/v3/pricing/products",
            scopes: None,
            flags: &[Flag::Read],
            reason: "a read: pricing.sf.yml grants it to Products read-only",
        },
        // scripts.v3.yml: Content, plus Checkout Content for checkout scripts.
        Rule {
            file: "scripts.v3.yml",
            method: None,
            path: "/v3/content/scripts",
            scopes: Some(&["store_v2_content"]),
            flags: &[],
            reason: "scripts.v3.yml lists Content and Checkout Content; scripts need Content, checkout scripts also Checkout Content",
        },
        Rule {
            file: "scripts.v3.yml",
            method: Some("POST"),
            path: "/v3/content/scripts",
            scopes: None,
            flags: &[Flag::ScriptsVisibility],
            reason: "visibility checkout/all_pages also needs Checkout Content",
        },
        Rule {
            file: "scripts.v3.yml",
            method: Some("PUT"),
            path: "/v3/content/scripts/{uuid}",
            scopes: None,
            flags: &[Flag::ScriptsVisibility],
            reason: "visibility checkout/all_pages also needs Checkout Content",
        },
        // segments.v3.yml: prose.
        Rule {
            file: "segments.v3.yml",
            method: Some("GET"),
            path: "/v3/segments/{segmentId}/shopper-profiles",
            scopes: Some(&["store_v2_customers"]),
            flags: &[Flag::Modify],
            reason: "stated in prose: needs the modify Customers scope, even to read",
        },
        // settings.v3.yml: a note under the table.
        Rule {
            file: "settings.v3.yml",
            method: None,
            path: "/v3/settings/analytics",
            scopes: Some(&["store_v2_content"]),
            flags: &[],
            reason: "settings.v3.yml's note: analytics endpoints need Content",
        },
        // sites.v3.yml: the channels table, copied.
        Rule {
            file: "sites.v3.yml",
            method: None,
            path: "/v3/sites",
            scopes: Some(&["store_sites"]),
            flags: &[],
            reason: "sites.v3.yml lists the three channels families; sites, routes and certificates are Sites & Routes",
        },
        // storefront_tokens.v3.yml: the creates state their own scope.
        Rule {
            file: "storefront_tokens.v3.yml",
            method: Some("DELETE"),
            path: "/v3/storefront/api-token",
            scopes: Some(&["store_storefront_api"]),
            flags: &[],
            reason: "revoking states no scope; it revokes storefront and private tokens, which Storefront API Tokens creates",
        },
        // tax.v3.yml: prose.
        Rule {
            file: "tax.v3.yml",
            method: None,
            path: "/v3/tax/providers/{provider_id}/connection",
            scopes: Some(&["store_v2_information"]),
            flags: &[],
            reason: "stated in prose: read (GET) or write (PUT, DELETE) Information & Settings",
        },
        // webhooks.v3.yml: "None required".
        Rule {
            file: "webhooks.v3.yml",
            method: None,
            path: "/v3/hooks",
            scopes: Some(&["default"]),
            flags: &[],
            reason: "webhooks.v3.yml: no scope required; webhooks use the default scope every API account has",
        },
    ],

    security_overrides: &[SecurityOverride {
        file: "abandoned_carts.v3.yml",
        method: "PUT",
        path: "/v3/abandoned-carts/settings/channels/{channel_id}",
        reason: "declares security: [] yet its description requires store_v2_information; enforced",
    }],

    b2b: B2bDecisions {
        family: "b2b:modify",
        skipped_files: &[(
            "b2b-edition/authentication.yaml",
            "served on api-b2b.bigcommerce.com/api/io, outside /api/v3/io: it mints B2B authTokens (some from a customer's password), which bcgate does not proxy",
        )],
        copies: &[
            (
                "b2b-edition/invoice_management/invoice/invoice.yaml",
                B2B_INVOICE_COPY,
            ),
            (
                "b2b-edition/invoice_management/payment/payment.yaml",
                B2B_INVOICE_COPY,
            ),
            (
                "b2b-edition/invoice_management/receipt/receipt.yaml",
                B2B_INVOICE_COPY,
            ),
        ],
        schemes: &[
            B2bScheme {
                file: "b2b-edition/invoice_management/config/config.yaml",
                scheme: "authToken",
                reason: B2B_AUTH_TOKEN,
            },
            B2bScheme {
                file: "b2b-edition/sales_staff/sales_staff.yaml",
                scheme: "authToken",
                reason: B2B_AUTH_TOKEN,
            },
            B2bScheme {
                file: "b2b-edition/order/order.yaml",
                scheme: "X-Auh-Token",
                reason: "order.yaml's security misspells X-Auth-Token (X-Auh-Token); its securitySchemes define X-Auth-Token",
            },
        ],
        reads: &[],
    },

    hand_routes: with_v2_catalog! {
        HandRoute {
            method: "GET",
            path: "/graphql",
            scopes: &["bcgate:graphql_write"],
            flags: &[Flag::Graphql],
            reason: "GraphQL Admin API (not in these specs): bcgate parses the document; queries need bcgate:graphql_read, mutations bcgate:graphql_write",
        },
        HandRoute {
            method: "POST",
            path: "/graphql",
            scopes: &["bcgate:graphql_write"],
            flags: &[Flag::Graphql],
            reason: "GraphQL Admin API (not in these specs): bcgate parses the document; queries need bcgate:graphql_read, mutations bcgate:graphql_write",
        };
        "/v2/products": "GET" "POST" "DELETE";
        "/v2/products/count": "GET";
        "/v2/products/{product_id}": "GET" "PUT" "DELETE";
        "/v2/brands": "GET" "POST" "DELETE";
        "/v2/brands/count": "GET";
        "/v2/brands/{brand_id}": "GET" "PUT" "DELETE";
        "/v2/categories": "GET" "POST" "DELETE";
        "/v2/categories/count": "GET";
        "/v2/categories/{category_id}": "GET" "PUT" "DELETE";
        "/v2/options": "GET" "POST" "DELETE";
        "/v2/options/count": "GET";
        "/v2/options/{option_id}": "GET" "PUT" "DELETE";
        "/v2/option_sets": "GET" "POST" "DELETE";
        "/v2/option_sets/count": "GET";
        "/v2/option_sets/{option_set_id}": "GET" "PUT" "DELETE";
        "/v2/products/configurable_fields": "GET";
        "/v2/products/configurable_fields/count": "GET";
        "/v2/products/{product_id}/configurable_fields": "GET" "POST" "DELETE";
        "/v2/products/{product_id}/configurable_fields/count": "GET";
        "/v2/products/{product_id}/configurable_fields/{id}": "GET" "PUT" "DELETE";
        "/v2/products/custom_fields": "GET";
        "/v2/products/custom_fields/count": "GET";
        "/v2/products/{product_id}/custom_fields": "GET" "POST" "DELETE";
        "/v2/products/{product_id}/custom_fields/count": "GET";
        "/v2/products/{product_id}/custom_fields/{id}": "GET" "PUT" "DELETE";
        "/v2/products/discount_rules": "GET";
        "/v2/products/discount_rules/count": "GET";
        "/v2/products/{product_id}/discount_rules": "GET" "POST" "DELETE";
        "/v2/products/{product_id}/discount_rules/count": "GET";
        "/v2/products/{product_id}/discount_rules/{id}": "GET" "PUT" "DELETE";
        "/v2/products/googleproductsearch": "GET";
        "/v2/products/googleproductsearch/count": "GET";
        "/v2/products/{product_id}/googleproductsearch": "GET" "POST" "DELETE";
        "/v2/products/{product_id}/googleproductsearch/count": "GET";
        "/v2/products/{product_id}/googleproductsearch/{id}": "GET" "PUT" "DELETE";
        "/v2/products/images": "GET";
        "/v2/products/images/count": "GET";
        "/v2/products/{product_id}/images": "GET" "POST" "DELETE";
        "/v2/products/{product_id}/images/count": "GET";
        "/v2/products/{product_id}/images/{id}": "GET" "PUT" "DELETE";
        "/v2/products/options": "GET";
        "/v2/products/options/count": "GET";
        "/v2/products/{product_id}/options": "GET" "POST" "DELETE";
        "/v2/products/{product_id}/options/count": "GET";
        "/v2/products/{product_id}/options/{id}": "GET" "PUT" "DELETE";
        "/v2/products/reviews": "GET";
        "/v2/products/reviews/count": "GET";
        "/v2/products/{product_id}/reviews": "GET" "POST" "DELETE";
        "/v2/products/{product_id}/reviews/count": "GET";
        "/v2/products/{product_id}/reviews/{id}": "GET" "PUT" "DELETE";
        "/v2/products/rules": "GET";
        "/v2/products/rules/count": "GET";
        "/v2/products/{product_id}/rules": "GET" "POST" "DELETE";
        "/v2/products/{product_id}/rules/count": "GET";
        "/v2/products/{product_id}/rules/{id}": "GET" "PUT" "DELETE";
        "/v2/products/skus": "GET";
        "/v2/products/skus/count": "GET";
        "/v2/products/{product_id}/skus": "GET" "POST" "DELETE";
        "/v2/products/{product_id}/skus/count": "GET";
        "/v2/products/{product_id}/skus/{id}": "GET" "PUT" "DELETE";
        "/v2/products/videos": "GET";
        "/v2/products/videos/count": "GET";
        "/v2/products/{product_id}/videos": "GET" "POST" "DELETE";
        "/v2/products/{product_id}/videos/count": "GET";
        "/v2/products/{product_id}/videos/{id}": "GET" "PUT" "DELETE";
        "/v2/options/values": "GET";
        "/v2/options/{option_id}/values": "GET" "POST" "DELETE";
        "/v2/options/{option_id}/values/{id}": "GET" "PUT" "DELETE";
        "/v2/option_sets/options": "GET";
        "/v2/option_sets/{option_set_id}/options": "GET" "POST" "DELETE";
        "/v2/option_sets/{option_set_id}/options/{id}": "GET" "PUT" "DELETE";
    },
};
