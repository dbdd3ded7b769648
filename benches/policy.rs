//! Criterion benches for bcgate's per-request decision and header rewrite.
//!
//! `cargo bench --bench policy` runs:
//!
//! - `decision/typical`: `GET /stores/abc123/v3/catalog/products` by a
//!   read-only catalog client, store scopes stated (the common case): the
//!   proxy's decision (`bcgate::decide`): canonical check + store + route
//!   lookup + authorize (client, then store token).
//! - `decision/worst`: the slowest route of the built-in table, found at start
//!   by timing every route (parameters instantiated with plain values and,
//!   where the trie has a literal sibling, with that literal to force
//!   backtracking); printed to stderr with the five slowest.
//! - `decision/unknown_route`: a path not in the table (two trie walks, then an
//!   error value).
//! - `decision/{storefront,b2b}`: a storefront GraphQL request (the private
//!   token's scopes and channel are part of the decision) and a B2B route.
//! - `decision/table`: every route of the table once per iteration; the
//!   throughput line (elem/s) gives the mean per decision (1e9 / elem/s ns).
//! - `decision_parts/{typical,worst}/{check_canonical,lookup,authorize}`:
//!   the three steps of a decision on their own.
//! - `rewrite/upstream_request`: the upstream header rewrite on a realistic
//!   13-header request (credentials, `Connection` naming a header, forwarding
//!   claims); `rewrite/clone_only` is the cost of the input clone, for reference.

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};

use bcgate::config::{Client, Config};
use bcgate::decide::{Ask, Canonical, FamilyHeaders, Gate};
use bcgate::path::check_canonical;
use bcgate::policy::{BodyFacts, GraphqlKind, Holder, Lookup, Policy, Request, Route};
use bcgate::rewrite::upstream_request;
use bcgate::secret::StoreToken;

const STORE_PREFIX: &str = "/stores/abc123";

/// One request to decide on: method, full path as received, API path after the store.
#[derive(Debug, Clone)]
struct Case {
    method: Method,
    full_path: String,
    api_path_start: usize,
    body: BodyFacts,
    template: String,
}

impl Case {
    fn new(method: Method, api_path: &str, body: BodyFacts, template: &str) -> Self {
        Self {
            method,
            full_path: format!("{STORE_PREFIX}{api_path}"),
            api_path_start: STORE_PREFIX.len(),
            body,
            template: template.to_owned(),
        }
    }

    fn api_path(&self) -> &str {
        &self.full_path[self.api_path_start..]
    }
}

/// The decision bcgate makes per request before any I/O, as the proxy makes
/// it ([`bcgate::decide`]): canonical path, store, route lookup, the client's
/// scopes and then the store token's.
fn decide(cfg: &Config, client: &Client, case: &Case) -> bool {
    decision(cfg, client, case).is_ok()
}

/// The decision's refusal code (`None`: allowed), for an assertion.
fn refusal(cfg: &Config, client: &Client, case: &Case) -> Option<&'static str> {
    decision(cfg, client, case).err()
}

fn decision(cfg: &Config, client: &Client, case: &Case) -> Result<(), &'static str> {
    let Ok(path) = Canonical::new(&case.full_path) else {
        return Err("bad_request");
    };
    let gate = Gate::of(cfg, &|_| Ok(None));
    let ask = Ask {
        client,
        mode: client.mode,
        method: &case.method,
        path,
        query: None,
        headers: FamilyHeaders::default(),
    };
    match bcgate::decide::decide(&gate, ask, case.body) {
        Ok(_) => Ok(()),
        Err(d) => Err(d.error.code()),
    }
}

/// A config with store `abc123` (token scopes `store_scopes`) and client
/// `name` (`client_scopes`, default store abc123), loaded as `bcgate explain`
/// loads it (no token is read).
fn gate_config(name: &str, client_scopes: &[&str], store_scopes: &[&str]) -> Config {
    let list = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("{n:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = format!(
        r#"
[[stores]]
hash = "abc123"
token_env = "BENCH_NEVER_READ"
scopes = [{store}]
channels = [{{ id = 1, origin = "https://shop.example.com" }}]

[[clients]]
name = "{name}"
key_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
stores = ["abc123"]
default_store = "abc123"
scopes = [{client}]
"#,
        store = list(store_scopes),
        client = list(client_scopes),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bcgate.toml");
    std::fs::write(&path, text).expect("write the bench config");
    Config::load_without_secrets(&path).expect("the bench config")
}

fn holders<'a>(cfg: &'a Config, client: &'a Client) -> (Holder<'a>, Option<Holder<'a>>) {
    let store = cfg.stores.get("abc123").expect("store abc123");
    (
        Holder {
            label: &client.label,
            grants: &client.grants,
        },
        store.grants.as_ref().map(|g| Holder {
            label: &store.label,
            grants: g,
        }),
    )
}

/// The body facts a route's policy looks at, set so that the decision passes.
fn body_for(route: &Route) -> BodyFacts {
    if route.flags.graphql {
        BodyFacts::Graphql(GraphqlKind::Query)
    } else if route.flags.scripts_visibility
        && (route.method == Method::POST || route.method == Method::PUT)
    {
        BodyFacts::Script {
            needs_checkout_content: false,
        }
    } else {
        BodyFacts::None
    }
}

fn segments(template: &str) -> Vec<&str> {
    template.trim_start_matches('/').split('/').collect()
}

fn is_param(seg: &str) -> bool {
    seg.starts_with('{')
}

/// Literal segments that follow each template prefix anywhere in the table:
/// a parameter instantiated with one of them makes the matcher try the
/// literal branch first and backtrack.
fn literal_siblings(routes: &[&Route]) -> BTreeMap<Vec<String>, BTreeSet<String>> {
    let mut out: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    for r in routes {
        let segs = segments(&r.template);
        for (i, seg) in segs.iter().enumerate() {
            if !is_param(seg) {
                let prefix = segs[..i].iter().map(|s| s.to_string()).collect();
                out.entry(prefix).or_default().insert((*seg).to_owned());
            }
        }
    }
    out
}

/// A realistic value for a parameter (v2 and v3 ids are numbers).
fn plain_value(i: usize) -> String {
    format!("{}", 1000 + i * 17)
}

/// Instantiates a template; `adversarial` picks, for each parameter, a
/// literal sibling at that trie position when there is one (the longest
/// such literal, as a tie-breaker).
fn instantiate(
    template: &str,
    siblings: &BTreeMap<Vec<String>, BTreeSet<String>>,
    adversarial: bool,
) -> String {
    let segs = segments(template);
    let mut path = String::new();
    let mut prefix: Vec<String> = Vec::new();
    for (i, seg) in segs.iter().enumerate() {
        path.push('/');
        let value = if is_param(seg) {
            let sib = if adversarial {
                siblings
                    .get(&prefix)
                    .and_then(|s| s.iter().max_by_key(|l| l.len()).cloned())
            } else {
                None
            };
            sib.unwrap_or_else(|| plain_value(i))
        } else {
            (*seg).to_owned()
        };
        path.push_str(&value);
        prefix.push((*seg).to_owned());
    }
    path
}

/// Every route of the table as a case, plus adversarial variants that still
/// resolve to their own template. Cases that resolve elsewhere are dropped.
fn table_cases(policy: &Policy) -> (Vec<Case>, Vec<Case>) {
    let routes: Vec<&Route> = policy.routes.iter().collect();
    let siblings = literal_siblings(&routes);
    let resolves_to_self = |case: &Case| {
        matches!(
            policy.routes.lookup(&case.method, case.api_path()),
            Lookup::Found(r) if *r.template == *case.template && r.method == case.method
        )
    };
    let mut plain = Vec::new();
    let mut adversarial = Vec::new();
    for r in &routes {
        let body = body_for(r);
        let plain_path = instantiate(&r.template, &siblings, false);
        let adv_path = instantiate(&r.template, &siblings, true);
        let case = Case::new(r.method.clone(), &plain_path, body, &r.template);
        if resolves_to_self(&case) {
            plain.push(case);
        }
        let adv = Case::new(r.method.clone(), &adv_path, body, &r.template);
        if adv_path != plain_path && resolves_to_self(&adv) {
            adversarial.push(adv);
        }
    }
    (plain, adversarial)
}

/// Median ns per decision of one case, from a few short timed loops.
fn time_case(cfg: &Config, client: &Client, case: &Case) -> f64 {
    const ITERS: u32 = 2_000;
    let mut samples: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..ITERS {
                black_box(decide(cfg, client, black_box(case)));
            }
            t.elapsed().as_nanos() as f64 / f64::from(ITERS)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn bench_decision(c: &mut Criterion) {
    // Typical: a read-only catalog client; the store's token scopes are stated.
    let typical_cfg = gate_config(
        "inventory-sync",
        &["store_v2_products_read_only"],
        &["store_v2_products", "store_v2_orders_read_only"],
    );
    let client = typical_cfg
        .clients
        .by_name("inventory-sync")
        .expect("the client");
    let typical = Case::new(
        Method::GET,
        "/v3/catalog/products",
        BodyFacts::None,
        "/v3/catalog/products",
    );
    assert!(
        decide(&typical_cfg, client, &typical),
        "typical request is allowed"
    );

    // The whole table, by a client (and store) holding every scope.
    let every: Vec<String> = Policy::builtin()
        .expect("built-in tables parse")
        .scopes
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let every: Vec<&str> = every.iter().map(String::as_str).collect();
    let all_cfg = gate_config("all", &every, &every);
    let all_client = all_cfg.clients.by_name("all").expect("the client");
    let policy = &all_cfg.policy;
    let (plain, adversarial) = table_cases(policy);
    let denied = plain
        .iter()
        .filter(|case| !decide(&all_cfg, all_client, case))
        .count();
    eprintln!(
        "decision: {} routes in the table, {} instantiated ({} adversarial variants); \
         {} of them denied even with every scope (not_proxied)",
        policy.routes.len(),
        plain.len(),
        adversarial.len(),
        denied
    );

    // Find the worst case by timing every case once.
    let mut timed: Vec<(f64, &Case)> = plain
        .iter()
        .chain(adversarial.iter())
        .map(|case| (time_case(&all_cfg, all_client, case), case))
        .collect();
    timed.sort_by(|a, b| b.0.total_cmp(&a.0));
    // Single passes are noisy: time the 20 slowest again, longer, and rank by that.
    timed.truncate(20);
    for (ns, case) in &mut timed {
        *ns = (0..5)
            .map(|_| time_case(&all_cfg, all_client, case))
            .fold(f64::INFINITY, f64::min);
    }
    timed.sort_by(|a, b| b.0.total_cmp(&a.0));
    eprintln!("decision: slowest cases (best of 5 timed loops each):");
    for (ns, case) in timed.iter().take(5) {
        eprintln!(
            "  {ns:7.1} ns  {} {}  (template {})",
            case.method, case.full_path, case.template
        );
    }
    let worst = timed.first().map(|(_, c)| (*c).clone()).expect("a case");
    eprintln!(
        "decision: worst = {} {} (template {})",
        worst.method, worst.full_path, worst.template
    );

    let unknown = Case::new(
        Method::GET,
        "/v3/catalog/products/123/not-a-thing/456",
        BodyFacts::None,
        "-",
    );

    let mut g = c.benchmark_group("decision");
    g.throughput(Throughput::Elements(1));
    g.bench_function("typical", |b| {
        b.iter(|| decide(&typical_cfg, client, black_box(&typical)));
    });
    g.bench_function("worst", |b| {
        b.iter(|| decide(&all_cfg, all_client, black_box(&worst)));
    });
    g.bench_function("unknown_route", |b| {
        b.iter(|| decide(&typical_cfg, client, black_box(&unknown)));
    });
    // The other families' decisions: a storefront request (which private
    // token: the client's storefront scopes, the channel) and a B2B route.
    let storefront = Case::new(
        Method::POST,
        "/storefront/graphql",
        BodyFacts::None,
        "/storefront/graphql",
    );
    let b2b = Case::new(
        Method::GET,
        "/b2b/v3/io/companies/1042/attachments",
        BodyFacts::None,
        "/companies/{companyId}/attachments",
    );
    for (name, case) in [("storefront", &storefront), ("b2b", &b2b)] {
        let refused = refusal(&all_cfg, all_client, case);
        assert!(refused.is_none(), "{name} is refused: {refused:?}");
        g.bench_function(name, |b| {
            b.iter(|| decide(&all_cfg, all_client, black_box(case)));
        });
    }
    g.throughput(Throughput::Elements(plain.len() as u64));
    g.bench_function("table", |b| {
        b.iter(|| {
            let mut allowed = 0usize;
            for case in &plain {
                allowed += usize::from(decide(&all_cfg, all_client, black_box(case)));
            }
            allowed
        });
    });
    g.finish();

    // Where a decision's time goes, for the typical and the worst case.
    let mut g = c.benchmark_group("decision_parts");
    for (name, case, cfg, client) in [
        ("typical", &typical, &typical_cfg, client),
        ("worst", &worst, &all_cfg, all_client),
    ] {
        let (client, store) = holders(cfg, client);
        let route = match policy.routes.lookup(&case.method, case.api_path()) {
            Lookup::Found(r) => r,
            Lookup::Unknown | Lookup::CaseMismatch => panic!("{name}: route not found"),
        };
        g.bench_function(format!("{name}/check_canonical"), |b| {
            b.iter(|| check_canonical(black_box(&case.full_path)).is_ok());
        });
        g.bench_function(format!("{name}/lookup"), |b| {
            b.iter(|| {
                matches!(
                    policy
                        .routes
                        .lookup(black_box(&case.method), black_box(case.api_path())),
                    Lookup::Found(_)
                )
            });
        });
        g.bench_function(format!("{name}/authorize"), |b| {
            b.iter(|| {
                policy
                    .authorize(
                        client,
                        store,
                        black_box(&Request {
                            method: &case.method,
                            route,
                            body: case.body,
                        }),
                    )
                    .is_ok()
            });
        });
    }
    g.finish();
}

/// What an SDK behind a load balancer typically sends, plus a caller trying
/// to smuggle credentials and forwarding claims.
fn realistic_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut put = |name: &'static str, value: &'static str| {
        h.append(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    };
    put("host", "bcgate.internal:8080");
    put("user-agent", "python-requests/2.32.3");
    put("accept", "application/json");
    put("accept-encoding", "gzip, deflate");
    put("content-type", "application/json");
    put("x-auth-token", "perf-key-inventory-sync-8d41b7c2a9e3");
    put("x-auth-client", "inventory-sync");
    put("connection", "keep-alive, x-trace-hop");
    put("x-trace-hop", "1");
    put("cookie", "session=abc; theme=dark");
    put("x-forwarded-for", "10.1.2.3");
    put("x-request-id", "req-7f3a9c2e-0001");
    put(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    );
    h
}

fn bench_rewrite(c: &mut Criterion) {
    let token = StoreToken::new("perf-store-token-abc123-5f2c9e1d").expect("token");
    let host = HeaderValue::from_static("api.bigcommerce.com");
    let inject = [(
        HeaderName::from_static("x-auth-token"),
        token.header_value(),
    )];
    let request_id = HeaderValue::from_static("req-7f3a9c2e-0001");
    let input = realistic_headers();
    {
        let mut h = input.clone();
        upstream_request(&mut h, &host, &inject, &request_id);
        for gone in [
            "x-auth-client",
            "cookie",
            "x-forwarded-for",
            "x-trace-hop",
            "connection",
        ] {
            assert!(!h.contains_key(gone), "{gone} must be stripped");
        }
        assert_eq!(h[header::HOST], "api.bigcommerce.com");
        eprintln!("rewrite: {} headers in, {} out", input.len(), h.len());
    }

    let mut g = c.benchmark_group("rewrite");
    g.bench_function("upstream_request", |b| {
        b.iter_batched_ref(
            || input.clone(),
            |h| upstream_request(h, &host, &inject, &request_id),
            BatchSize::SmallInput,
        );
    });
    g.bench_function("clone_only", |b| {
        b.iter(|| black_box(&input).clone());
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_decision, bench_rewrite
}
criterion_main!(benches);
