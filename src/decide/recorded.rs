//! Learn mode over every family: what each decision's credential needed is
//! what the recorder keeps and `recommend` proposes. Here, not in `learn`,
//! because it needs decisions (`learn` sits below `decide`).

use http::Method;

use super::{Ask, Canonical, FamilyHeaders, Gate, decide};
use crate::learn::recommend::{self, recommend};
use crate::learn::tests::learn_config;
use crate::learn::{Learner, Observation};
use crate::policy::{BodyFacts, GraphqlKind};

const ACCOUNT: &str = "0b4c5d6e-1f2a-4b3c-8d9e-0a1b2c3d4e5f";

/// A config with every family: a store with a channel, an account, and
/// learn-mode clients (`bare`: no grant at all; `shop`: two storefront
/// access scopes), loaded as `explain` loads it (no secret is read).
fn family_config() -> crate::config::Config {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bcgate.toml");
    let (d1, d2) = ("ab".repeat(32), "cd".repeat(32));
    let text = format!(
        r#"
[learn]
path = "observations.json"

[[stores]]
hash = "abc123"
token_env = "NEVER_READ"
channels = [{{ id = 1, origin = "https://shop.example.com" }}]

[[accounts]]
uuid = "{ACCOUNT}"
token_env = "NEVER_READ_EITHER"

[[clients]]
name = "bare"
key_sha256 = "{d1}"
stores = ["abc123"]
default_store = "abc123"
accounts = ["{ACCOUNT}"]
scopes = []
mode = "learn"

[[clients]]
name = "shop"
key_sha256 = "{d2}"
stores = ["abc123"]
default_store = "abc123"
scopes = ["storefront:Customer", "storefront:B2B"]
mode = "learn"
"#
    );
    std::fs::write(&path, text).expect("write config");
    crate::config::Config::load_without_secrets(&path).expect("config without secrets")
}

/// Decides `method path` for `client` as the proxy does and records what it
/// forwarded; returns whether enforce mode would have refused it.
fn record_decided(
    l: &Learner,
    cfg: &crate::config::Config,
    client: &str,
    (method, path, headers): (&str, &str, FamilyHeaders<'_>),
    body: BodyFacts,
) -> bool {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let client = cfg.clients.by_name(client).expect("a configured client");
    let ask = Ask {
        client,
        mode: client.mode,
        method: &method,
        path: Canonical::new(path).expect("canonical"),
        query: None,
        headers,
    };
    let gate = Gate::of(cfg, &|_| Ok(None));
    let d = decide(&gate, ask, body).unwrap_or_else(|d| panic!("{method} {path}: {:?}", d.error));
    let seen = d.seen(&method);
    l.record(&cfg.policy, &client.name, &seen, d.would_deny.as_deref());
    d.would_deny.is_some()
}

#[test]
fn every_family_is_recorded_with_what_its_credential_needed() {
    let cfg = family_config();
    let dir = tempfile::tempdir().expect("temp dir");
    let lc = learn_config(dir.path(), 100);
    let l = Learner::open(&lc).expect("open");
    let none = FamilyHeaders::default();
    let order = FamilyHeaders {
        order_id: Some(b"7"),
        ..none
    };
    let as_customer = FamilyHeaders {
        customer_id: Some(b"5"),
        ..none
    };
    let proven = FamilyHeaders {
        customer_token: true,
        ..none
    };
    let query = BodyFacts::Graphql(GraphqlKind::Query);
    let account = format!("/accounts/{ACCOUNT}/graphql");
    let sf = "/stores/abc123/storefront/graphql";
    for (req, body) in [
        (("POST", "/stores/abc123/payments", order), BodyFacts::None),
        (("POST", sf, none), BodyFacts::None),
        (("POST", sf, none), BodyFacts::None),
        (("POST", sf, as_customer), BodyFacts::None),
        (("POST", sf, proven), BodyFacts::None),
        (("GET", "/b2b/v3/io/companies", none), BodyFacts::None),
        (("POST", account.as_str(), none), query),
        // The api family's /graphql is another entry than the account's.
        (("POST", "/graphql", none), query),
    ] {
        let denied = record_decided(&l, &cfg, "bare", req, body);
        assert!(denied, "{req:?}: the bare client holds no grant");
    }
    // Two access scopes: the private token carries both, so both are needs.
    assert!(!record_decided(
        &l,
        &cfg,
        "shop",
        ("POST", sf, none),
        BodyFacts::None
    ));

    let snap = l.snapshot();
    type Row<'a> = (&'a str, &'a str, &'a str, u64, Vec<Vec<String>>);
    let mut got: Vec<Row<'_>> = snap
        .iter()
        .map(|o| {
            (
                o.client.as_str(),
                o.family.as_str(),
                o.route.as_str(),
                o.count,
                o.needs.clone(),
            )
        })
        .collect();
    let one = |s: &str| vec![vec![s.to_owned()]];
    let any = |s: &[&str]| vec![s.iter().map(|x| x.to_string()).collect::<Vec<_>>()];
    let account_reads: Vec<Vec<String>> = vec![cfg.policy.scopes.required(
        &cfg.families.account.iter().next().expect("a row").families,
        false,
    )];
    let mut want: Vec<Row<'_>> = vec![
        ("bare", "account", "/graphql", 1, account_reads),
        (
            "bare",
            "api",
            "/graphql",
            1,
            any(&["bcgate:graphql_read", "bcgate:graphql_write"]),
        ),
        (
            "bare",
            "b2b",
            "/companies",
            1,
            any(&["b2b:read", "b2b:modify"]),
        ),
        (
            "bare",
            "payments",
            "/payments",
            1,
            one("store_payments_access_token_create"),
        ),
        (
            "bare",
            "storefront",
            "/storefront/graphql",
            2,
            one("storefront:Unauthenticated"),
        ),
        (
            "bare",
            "storefront",
            "/storefront/graphql",
            1,
            one("storefront:Customer"),
        ),
        (
            "bare",
            "storefront",
            "/storefront/graphql",
            1,
            one("storefront:impersonate"),
        ),
        (
            "shop",
            "storefront",
            "/storefront/graphql",
            1,
            vec![
                vec!["storefront:Customer".into()],
                vec!["storefront:B2B".into()],
            ],
        ),
    ];
    got.sort();
    want.sort();
    assert_eq!(got, want);

    // The least grants, listed under the paths a client sends.
    let bare: Vec<Observation> = snap
        .iter()
        .filter(|o| o.client == "bare")
        .cloned()
        .collect();
    let r = recommend(&cfg.policy.scopes, &bare);
    assert!(r.exact);
    assert_eq!(
        r.scopes,
        [
            "account_read",
            "b2b:read",
            "bcgate:graphql_read",
            "store_payments_access_token_create",
            "storefront:Customer",
            "storefront:Unauthenticated",
            "storefront:impersonate",
        ]
    );
    let routes = |s: &str| -> Vec<String> { r.routes[s].iter().cloned().collect() };
    assert_eq!(routes("b2b:read"), ["GET /b2b/v3/io/companies"]);
    assert_eq!(routes("account_read"), ["POST /accounts/{uuid}/graphql"]);
    assert_eq!(routes("bcgate:graphql_read"), ["POST /graphql"]);
    assert_eq!(
        routes("storefront:impersonate"),
        ["POST /storefront/graphql"]
    );

    // The client holding two access scopes keeps both: bcgate cannot see
    // which a storefront query used.
    let shop: Vec<Observation> = snap
        .iter()
        .filter(|o| o.client == "shop")
        .cloned()
        .collect();
    let configured: Vec<String> = ["storefront:Customer", "storefront:B2B"]
        .map(String::from)
        .to_vec();
    let report = recommend::report(
        &cfg.policy.scopes,
        "shop",
        Some((&configured, "learn")),
        &shop,
    );
    assert_eq!(
        report.recommendation.scopes,
        ["storefront:B2B", "storefront:Customer"]
    );
    assert!(
        report.add.is_empty() && report.remove.is_empty(),
        "{report:?}"
    );

    // Written and read back: the families and the storefront entries stay apart.
    l.flush().expect("flush");
    drop(l);
    let l = Learner::open(&lc).expect("reopen");
    assert_eq!(l.snapshot(), snap);
    record_decided(&l, &cfg, "bare", ("POST", sf, as_customer), BodyFacts::None);
    record_decided(&l, &cfg, "bare", ("POST", &account, none), query);
    let again = l.snapshot();
    assert_eq!(again.len(), snap.len(), "no new entry: {again:?}");
    let count = |family: &str, need: &str| {
        again
            .iter()
            .find(|o| o.client == "bare" && o.family == family && o.needs[0][0] == need)
            .map(|o| o.count)
    };
    assert_eq!(count("storefront", "storefront:impersonate"), Some(2));
    assert_eq!(count("account", "account_read"), Some(2));
    assert_eq!(count("api", "bcgate:graphql_read"), Some(1));
}
