//! Criterion benches for bcgate's per-request decision and header rewrite.
//!
//! `cargo bench --bench policy` runs:
//!
//! - `decision/typical`: `GET /stores/abc123/v3/catalog/products` by a
//!   read-only catalog client, store scopes stated (the common case): canonical
//!   check + route lookup + authorize (client, then store token).
//! - `decision/worst`: the slowest route of the built-in table, found at start
//!   by timing every route (parameters instantiated with plain values and,
//!   where the trie has a literal sibling, with that literal to force
//!   backtracking); printed to stderr with the five slowest.
//! - `decision/unknown_route`: a path not in the table (two trie walks, then an
//!   error value).
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

use bcgate::policy::{BodyFacts, Grants, GraphqlKind, Holder, Lookup, Policy, Request, Route};
use bcgate::rewrite::upstream_request;
use bcgate::route::check_canonical;
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

/// The decision bcgate makes per request before any I/O: canonical path,
/// route lookup, scope check for the client and then the store's token.
fn decide(policy: &Policy, client: Holder<'_>, store: Option<Holder<'_>>, case: &Case) -> bool {
    if check_canonical(&case.full_path).is_err() {
        return false;
    }
    match policy.routes.lookup(&case.method, case.api_path()) {
        Lookup::Found(route) => policy
            .authorize(
                client,
                store,
                &Request {
                    method: &case.method,
                    route,
                    body: case.body,
                },
            )
            .is_ok(),
        Lookup::Unknown | Lookup::CaseMismatch => false,
    }
}

fn grants(policy: &Policy, names: &[&str]) -> Grants {
    policy
        .scopes
        .grants(names.iter().copied())
        .expect("known scope names")
}

fn all_grants(policy: &Policy) -> Grants {
    policy
        .scopes
        .grants(policy.scopes.iter().map(|s| s.name.as_str()))
        .expect("the table's own scope names")
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
fn time_case(policy: &Policy, client: Holder<'_>, store: Option<Holder<'_>>, case: &Case) -> f64 {
    const ITERS: u32 = 2_000;
    let mut samples: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..ITERS {
                black_box(decide(policy, client, store, black_box(case)));
            }
            t.elapsed().as_nanos() as f64 / f64::from(ITERS)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn bench_decision(c: &mut Criterion) {
    let policy = Policy::builtin().expect("built-in tables parse");

    // Typical: a read-only catalog client; the store's token scopes are stated.
    let client_grants = grants(policy, &["store_v2_products_read_only"]);
    let store_grants = grants(policy, &["store_v2_products", "store_v2_orders_read_only"]);
    let client = Holder {
        label: "client 'inventory-sync'",
        grants: &client_grants,
    };
    let store = Some(Holder {
        label: "the token of store 'abc123'",
        grants: &store_grants,
    });
    let typical = Case::new(
        Method::GET,
        "/v3/catalog/products",
        BodyFacts::None,
        "/v3/catalog/products",
    );
    assert!(
        decide(policy, client, store, &typical),
        "typical request is allowed"
    );

    // The whole table, by a client (and store) holding every scope.
    let all = all_grants(policy);
    let all_client = Holder {
        label: "client 'all'",
        grants: &all,
    };
    let all_store = Some(Holder {
        label: "the token of store 'abc123'",
        grants: &all,
    });
    let (plain, adversarial) = table_cases(policy);
    let denied = plain
        .iter()
        .filter(|case| !decide(policy, all_client, all_store, case))
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
        .map(|case| (time_case(policy, all_client, all_store, case), case))
        .collect();
    timed.sort_by(|a, b| b.0.total_cmp(&a.0));
    // Single passes are noisy: time the 20 slowest again, longer, and rank by that.
    timed.truncate(20);
    for (ns, case) in &mut timed {
        *ns = (0..5)
            .map(|_| time_case(policy, all_client, all_store, case))
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
        b.iter(|| decide(policy, client, store, black_box(&typical)));
    });
    g.bench_function("worst", |b| {
        b.iter(|| decide(policy, all_client, all_store, black_box(&worst)));
    });
    g.bench_function("unknown_route", |b| {
        b.iter(|| decide(policy, client, store, black_box(&unknown)));
    });
    g.throughput(Throughput::Elements(plain.len() as u64));
    g.bench_function("table", |b| {
        b.iter(|| {
            let mut allowed = 0usize;
            for case in &plain {
                allowed += usize::from(decide(policy, all_client, all_store, black_box(case)));
            }
            allowed
        });
    });
    g.finish();

    // Where a decision's time goes, for the typical and the worst case.
    let mut g = c.benchmark_group("decision_parts");
    for (name, case, client, store) in [
        ("typical", &typical, client, store),
        ("worst", &worst, all_client, all_store),
    ] {
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
    let request_id = HeaderValue::from_static("req-7f3a9c2e-0001");
    let input = realistic_headers();
    {
        let mut h = input.clone();
        upstream_request(&mut h, &token, &host, &request_id);
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
            |h| upstream_request(h, &token, &host, &request_id),
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
