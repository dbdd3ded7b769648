//! Learn mode without sockets: the decision in both modes, the recorder
//! (bounded, persisted, merged on reopen) and the recommendation, over the
//! built-in tables.

use std::time::Duration;

use http::Method;

use super::recommend::{self, recommend};
use super::*;
use crate::config::{LearnBackend, LearnConfig};
use crate::error::ProxyError;
use crate::policy::{BodyFacts, GraphqlKind, Lookup, ScopeTable};

fn policy() -> &'static Policy {
    Policy::builtin().expect("built-in tables parse")
}

fn route(method: &Method, path: &str) -> &'static crate::policy::Route {
    match policy().routes.lookup(method, path) {
        Lookup::Found(r) => r,
        other => panic!("{method} {path}: {other:?}"),
    }
}

/// An observation as the recorder would make it.
fn obs_with(method: &str, path: &str, body: BodyFacts, count: u64) -> Observation {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let r = route(&method, path);
    let req = Request {
        method: &method,
        route: r,
        body,
    };
    let need = policy().need(&req);
    Observation {
        client: "svc".into(),
        family: "api".into(),
        method: method.to_string(),
        route: r.template.to_string(),
        write: need.write,
        checkout_content: need.checkout_content,
        needs: policy().need_scopes(&need),
        count,
        would_deny: 0,
        first_seen: 100,
        last_seen: 200,
    }
}

fn obs(method: &str, path: &str) -> Observation {
    obs_with(method, path, BodyFacts::None, 1)
}

fn rec(observations: &[Observation]) -> Vec<String> {
    let r = recommend(&policy().scopes, observations);
    assert!(r.exact);
    r.scopes
}

fn grants(names: &[&str]) -> crate::policy::Grants {
    policy()
        .scopes
        .grants(names.iter().copied())
        .expect("known scopes")
}

// ---------------------------------------------------------------- recommendation

#[test]
fn only_reads_seen_gives_the_read_only_scope() {
    let seen = [obs("GET", "/v2/orders"), obs("GET", "/v2/orders/7")];
    assert_eq!(rec(&seen), ["store_v2_orders_read_only"]);
    let seen = [obs("HEAD", "/v3/catalog/products")];
    assert_eq!(rec(&seen), ["store_v2_products_read_only"]);
}

#[test]
fn a_write_in_the_family_gives_its_modify_scope_alone() {
    let seen = [
        obs("GET", "/v3/catalog/products"),
        obs("PUT", "/v3/catalog/products/5"),
    ];
    // The modify scope grants the reads too: its read twin would be redundant.
    assert_eq!(rec(&seen), ["store_v2_products"]);
}

#[test]
fn an_any_of_route_shares_a_scope_with_another_route() {
    // Refunds accept Orders or Order Transactions; Orders is needed anyway.
    let seen = [
        obs("GET", "/v3/orders/payment_actions/refunds"),
        obs("GET", "/v2/orders"),
    ];
    assert_eq!(rec(&seen), ["store_v2_orders_read_only"]);
    let seen = [
        obs("GET", "/v3/orders/payment_actions/refunds"),
        obs("GET", "/v3/orders/1/transactions"),
    ];
    assert_eq!(rec(&seen), ["store_v2_transactions_read_only"]);
}

#[test]
fn body_facts_are_part_of_the_need() {
    let checkout = BodyFacts::Script {
        needs_checkout_content: true,
    };
    let seen = [obs_with("POST", "/v3/content/scripts", checkout, 1)];
    assert_eq!(rec(&seen), ["store_content_checkout", "store_v2_content"]);
    let query = BodyFacts::Graphql(GraphqlKind::Query);
    let mutation = BodyFacts::Graphql(GraphqlKind::Mutation);
    assert_eq!(
        rec(&[obs_with("POST", "/graphql", query, 1)]),
        ["bcgate:graphql_read"]
    );
    assert_eq!(
        rec(&[
            obs_with("POST", "/graphql", query, 1),
            obs_with("POST", "/graphql", mutation, 1)
        ]),
        ["bcgate:graphql_write"]
    );
}

#[test]
fn routes_are_listed_under_the_scope_they_need() {
    let seen = [
        obs("GET", "/v2/orders"),
        obs("PUT", "/v3/catalog/products/5"),
    ];
    let r = recommend(&policy().scopes, &seen);
    let routes = |s: &str| -> Vec<String> { r.routes[s].iter().cloned().collect() };
    assert_eq!(routes("store_v2_orders_read_only"), ["GET /v2/orders"]);
    assert_eq!(
        routes("store_v2_products"),
        ["PUT /v3/catalog/products/{product_id}"]
    );
}

#[test]
fn nothing_seen_recommends_nothing() {
    assert!(rec(&[]).is_empty());
}

/// A scope table of `n` families, each a single modify scope `s0`, `s1`, …
fn synthetic(n: usize) -> ScopeTable {
    let text: String = (0..n).map(|i| format!("s{i} s{i} modify\n")).collect();
    ScopeTable::parse(&text).expect("synthetic table")
}

/// The least size by trying every subset.
fn brute_force(n: usize, clauses: &[Vec<usize>]) -> usize {
    (0u32..1 << n)
        .filter(|set| {
            clauses
                .iter()
                .all(|c| c.iter().any(|x| set & (1 << x) != 0))
        })
        .map(u32::count_ones)
        .min()
        .unwrap_or(0) as usize
}

#[test]
fn the_set_is_least_not_greedy() {
    // Greedy takes s2 (it meets four clauses) and then needs s0 and s1 too;
    // s0 and s1 alone meet all six.
    let table = synthetic(3);
    let clause = |c: &[&str]| Observation {
        needs: vec![c.iter().map(|s| s.to_string()).collect()],
        ..obs("GET", "/v2/orders")
    };
    let seen = [
        clause(&["s0", "s2"]),
        clause(&["s0", "s2"]),
        clause(&["s0"]),
        clause(&["s1", "s2"]),
        clause(&["s1", "s2"]),
        clause(&["s1"]),
    ];
    assert_eq!(recommend(&table, &seen).scopes, ["s0", "s1"]);

    // And against brute force on many small random instances.
    let n = 8;
    let table = synthetic(n);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..300 {
        let clauses: Vec<Vec<usize>> = (0..(next() % 7 + 1))
            .map(|_| {
                let mut c: Vec<usize> = (0..n).filter(|_| next() % 4 == 0).collect();
                if c.is_empty() {
                    c.push((next() % n as u64) as usize);
                }
                c
            })
            .collect();
        let seen: Vec<Observation> = clauses
            .iter()
            .map(|c| Observation {
                needs: vec![c.iter().map(|i| format!("s{i}")).collect()],
                ..obs("GET", "/v2/orders")
            })
            .collect();
        let r = recommend(&table, &seen);
        for c in &clauses {
            assert!(
                c.iter().any(|i| r.scopes.contains(&format!("s{i}"))),
                "{clauses:?} → {:?} misses {c:?}",
                r.scopes
            );
        }
        assert_eq!(r.scopes.len(), brute_force(n, &clauses), "{clauses:?}");
    }
}

#[test]
fn report_diffs_against_the_configured_scopes() {
    let seen = [obs("GET", "/v2/orders"), obs("GET", "/v3/catalog/products")];
    let configured: Vec<String> = ["store_v2_orders", "store_v2_content_read_only"]
        .map(String::from)
        .to_vec();
    let r = recommend::report(&policy().scopes, "svc", Some((&configured, "learn")), &seen);
    assert_eq!(
        r.recommendation.scopes,
        ["store_v2_orders_read_only", "store_v2_products_read_only"]
    );
    let added: Vec<(&str, &str)> = r.add.iter().map(|(s, w)| (s.as_str(), *w)).collect();
    assert_eq!(
        added,
        [
            (
                "store_v2_orders_read_only",
                "in place of a broader scope granted now"
            ),
            (
                "store_v2_products_read_only",
                "not granted now: enforce mode would deny"
            ),
        ]
    );
    let removed: Vec<(&str, &str)> = r.remove.iter().map(|(s, w)| (s.as_str(), *w)).collect();
    assert_eq!(
        removed,
        [
            (
                "store_v2_orders",
                "granted, only reads seen: its read-only scope is enough"
            ),
            ("store_v2_content_read_only", "granted, never used"),
        ]
    );
    assert_eq!((r.requests, r.routes), (2, 2));

    let toml = recommend::toml(std::slice::from_ref(&r), "obs.json");
    let parsed = config::Config::builder()
        .add_source(config::File::from_str(&toml, config::FileFormat::Toml))
        .build()
        .expect("the TOML output parses");
    let scopes: Vec<String> = parsed.get("svc.scopes").expect("svc.scopes");
    assert_eq!(scopes, r.recommendation.scopes);
    let text = recommend::text(&[r], &|s| s.to_string());
    assert!(
        text.contains(
            "  scopes = [\"store_v2_orders_read_only\", \"store_v2_products_read_only\"]\n"
        ),
        "{text}"
    );
    assert!(text.contains("- store_v2_content_read_only  (granted, never used)"));
}

// ---------------------------------------------------------------- decision

#[test]
fn learn_mode_replaces_only_the_clients_scope_denial() {
    let p = policy();
    let get = Method::GET;
    let orders = Request {
        method: &get,
        route: route(&get, "/v2/orders"),
        body: BodyFacts::None,
    };
    let none = grants(&[]);
    let reads = grants(&["store_v2_orders_read_only"]);
    let client = |g| Holder {
        label: "client 'svc'",
        grants: g,
    };
    let store = |g| Holder {
        label: "the token of store 'abc'",
        grants: g,
    };

    assert!(matches!(
        decide_learn(p, client(&reads), None, &orders),
        Ok(Verdict::Granted)
    ));
    assert!(matches!(
        decide_learn(p, client(&none), None, &orders),
        Ok(Verdict::WouldDeny(d)) if d.required == ["store_v2_orders_read_only", "store_v2_orders"]
    ));
    assert!(p.authorize(client(&none), None, &orders).is_err());
    // The store's token lacks it: refused in learn mode too.
    let err = decide_learn(p, client(&none), Some(store(&none)), &orders)
        .expect_err("the store token cannot do it");
    assert!(
        err.detail().contains("the token of store 'abc'"),
        "{}",
        err.detail()
    );
    // Never-proxied routes stay refused, whatever the scopes.
    let carts = Request {
        method: &get,
        route: route(&get, "/api/storefront/carts"),
        body: BodyFacts::None,
    };
    let all = grants(&["store_cart", "store_storefront_api"]);
    assert!(matches!(
        decide_learn(p, client(&all), None, &carts),
        Err(ProxyError::NotProxied { .. })
    ));
}

// ---------------------------------------------------------------- recorder

fn file_of(cfg: &LearnConfig) -> &std::path::Path {
    match &cfg.backend {
        LearnBackend::File(p) => p,
        LearnBackend::Redis(_) => panic!("a file backend"),
    }
}

pub(crate) fn learn_config(dir: &std::path::Path, max_entries: usize) -> LearnConfig {
    LearnConfig {
        backend: LearnBackend::File(dir.join("observations.json")),
        max_entries,
        flush_interval: Duration::from_secs(60),
    }
}

fn record(l: &Learner, client: &str, method: &Method, path: &str, would_deny: bool) {
    let req = Request {
        method,
        route: route(method, path),
        body: BodyFacts::None,
    };
    let denial = crate::error::ScopeDenial {
        subject: format!("client '{client}'"),
        method: method.to_string(),
        route: req.route.template.to_string(),
        required: policy().need_scopes(&policy().need(&req)).remove(0),
    };
    let seen = Seen {
        family: crate::family::Family::Api,
        req,
        storefront: 0,
    };
    l.record(policy(), client, &seen, would_deny.then_some(&denial));
}

#[test]
fn the_recorder_counts_bounds_and_survives_a_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = learn_config(dir.path(), 2);
    let l = Learner::open(&cfg).expect("open with no file");
    let (get, put) = (Method::GET, Method::PUT);
    record(&l, "svc", &get, "/v2/orders", false);
    record(&l, "svc", &get, "/v2/orders/1", false);
    record(&l, "svc", &get, "/v2/orders/2", true);
    record(&l, "svc", &put, "/v2/orders/3", true); // a third entry: over the cap
    record(&l, "other", &get, "/v2/orders", false); // also over the cap
    let snap = l.snapshot();
    let summary: Vec<(&str, &str, u64, u64)> = snap
        .iter()
        .map(|o| (o.method.as_str(), o.route.as_str(), o.count, o.would_deny))
        .collect();
    assert_eq!(
        summary,
        [
            ("GET", "/v2/orders", 1, 0),
            ("GET", "/v2/orders/{order_id}", 2, 1)
        ]
    );
    assert_eq!(
        snap[0].needs,
        [["store_v2_orders_read_only", "store_v2_orders"]]
    );
    l.flush().expect("flush");
    let text = std::fs::read_to_string(file_of(&cfg)).expect("file written");
    assert!(text.contains("\"/v2/orders/{order_id}\""), "{text}");
    drop(l);

    // A new process: the counts go on from what the file holds.
    let cfg = learn_config(dir.path(), 10);
    let l = Learner::open(&cfg).expect("reopen");
    record(&l, "svc", &get, "/v2/orders", true);
    record(&l, "svc", &put, "/v2/orders/3", false);
    let snap = l.snapshot();
    let summary: Vec<(&str, &str, u64, u64)> = snap
        .iter()
        .map(|o| (o.method.as_str(), o.route.as_str(), o.count, o.would_deny))
        .collect();
    assert_eq!(
        summary,
        [
            ("GET", "/v2/orders", 2, 1),
            ("GET", "/v2/orders/{order_id}", 2, 1),
            ("PUT", "/v2/orders/{order_id}", 1, 0),
        ]
    );
    assert_eq!(snap[2].needs, [["store_v2_orders"]]);
    l.flush().expect("flush");
    assert_eq!(load(&cfg.backend).expect("load"), snap);
}

#[test]
fn a_damaged_file_is_an_error_not_a_fresh_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = learn_config(dir.path(), 10);
    std::fs::write(file_of(&cfg), b"{\"version\":1,\"entries\":[").expect("write");
    let err = Learner::open(&cfg).expect_err("damaged");
    assert!(err.contains("learn.path"), "{err}");
    std::fs::write(file_of(&cfg), b"{\"version\":9,\"entries\":[]}").expect("write");
    let err = Learner::open(&cfg).expect_err("future version");
    assert!(err.contains("version 9"), "{err}");
}

#[test]
fn a_disabled_recorder_keeps_nothing() {
    let l = Learner::disabled();
    record(&l, "svc", &Method::GET, "/v2/orders", true);
    assert!(l.snapshot().is_empty());
    assert!(l.flush().is_ok());
}

#[test]
fn a_file_from_before_families_reads_as_the_api_family() {
    let dir = tempfile::tempdir().expect("temp dir");
    let lc = learn_config(dir.path(), 10);
    std::fs::write(
        file_of(&lc),
        r#"{"version":1,"entries":[{"client":"svc","method":"GET","route":"/v2/orders",
        "write":false,"needs":[["store_v2_orders_read_only","store_v2_orders"]],
        "count":4,"would_deny":1,"first_seen":10,"last_seen":20}]}"#,
    )
    .expect("write");
    let l = Learner::open(&lc).expect("an old file opens");
    record(&l, "svc", &Method::GET, "/v2/orders", false);
    let snap = l.snapshot();
    assert_eq!(snap.len(), 1, "{snap:?}");
    assert_eq!((snap[0].family.as_str(), snap[0].count), ("api", 5));
    assert_eq!(snap[0].shown(), "GET /v2/orders");
}
