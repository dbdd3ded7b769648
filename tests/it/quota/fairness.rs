//! Weighted fair shares under contention.

use super::*;

/// How one client loads the gates: `workers` loops per gate, each sending a
/// request, waiting for its answer, then pausing `pause`.
#[derive(Debug, Clone, Copy)]
struct Load {
    client: usize,
    workers: usize,
    pause: Duration,
}

const fn greedy(client: usize, workers: usize) -> Load {
    Load {
        client,
        workers,
        pause: Duration::ZERO,
    }
}

/// What a contention run saw: per client, the answers it got (status →
/// count) and the upstream requests per mock window (windows after the
/// first, which starts cold).
#[derive(Debug, Default)]
struct Contention {
    answers: HashMap<&'static str, HashMap<u16, u64>>,
    windows: Vec<HashMap<&'static str, u64>>,
    /// The longest a request of each client took, answer included.
    slowest: HashMap<&'static str, Duration>,
}

impl Contention {
    fn upstream(&self, client: &str) -> u64 {
        self.windows
            .iter()
            .map(|w| w.get(client).copied().unwrap_or(0))
            .sum()
    }

    fn total(&self) -> u64 {
        self.windows.iter().flat_map(|w| w.values()).sum()
    }

    fn share(&self, client: &str) -> f64 {
        self.upstream(client) as f64 / self.total().max(1) as f64
    }
}

/// The mock enforces `quota` per `window`; `loads` push through `gates`
/// (started with `quota_section`) from the start of the mock's first window
/// to the end of its `windows`-th.
async fn contention(
    mock: &MockBigCommerce,
    gates: &[Bcgate],
    loads: &[Load],
    quota: u32,
    window: Duration,
    windows: u32,
) -> Contention {
    let t0 = Instant::now();
    mock.enforce_quota(quota, window);
    let end = t0 + window * windows;
    let mut tasks = Vec::new();
    for gate in gates {
        for load in loads {
            let (client, key, _) = CLIENTS[load.client];
            for _ in 0..load.workers {
                let url = gate.url(PRODUCTS);
                let pause = load.pause;
                tasks.push(tokio::spawn(async move {
                    let http = plain_client();
                    let mut answers: HashMap<u16, u64> = HashMap::new();
                    let mut slowest = Duration::ZERO;
                    let mut n = 0u64;
                    while Instant::now() < end {
                        n += 1;
                        let sent = Instant::now();
                        let resp = send(
                            http.get(format!("{url}?c={client}&n={n}"))
                                .header("X-Auth-Token", key),
                        )
                        .await;
                        if resp.status == 429 {
                            assert_problem(&resp, 429, "quota_exhausted");
                        } else {
                            assert_eq!(resp.status, 200, "{}", resp.text());
                        }
                        slowest = slowest.max(sent.elapsed());
                        *answers.entry(resp.status).or_default() += 1;
                        if !pause.is_zero() {
                            tokio::time::sleep(pause).await;
                        }
                    }
                    (client, answers, slowest)
                }));
            }
        }
    }
    let mut out = Contention::default();
    for t in tasks {
        let (client, answers, slowest) = t.await.expect("client loop");
        let mine = out.answers.entry(client).or_default();
        for (status, n) in answers {
            *mine.entry(status).or_default() += n;
        }
        let s = out.slowest.entry(client).or_default();
        *s = (*s).max(slowest);
    }
    out.windows = vec![HashMap::new(); windows as usize - 1];
    for r in mock.requests() {
        let k = (r.received.duration_since(t0).as_millis() / window.as_millis()) as usize;
        let Some(counts) = k.checked_sub(1).and_then(|k| out.windows.get_mut(k)) else {
            continue;
        };
        if let Some(c) = param(&r.uri, "c").and_then(|c| CLIENTS.iter().find(|x| x.0 == c)) {
            *counts.entry(c.0).or_default() += 1;
        }
    }
    for (k, w) in out.windows.iter().enumerate() {
        println!(
            "window {}: {} upstream requests {w:?}",
            k + 1,
            w.values().sum::<u64>()
        );
    }
    println!("answers {:?}, slowest {:?}", out.answers, out.slowest);
    assert_eq!(
        mock.stats().rate_limited,
        0,
        "the upstream answered 429 (a window opened early?)"
    );
    out
}

/// Shares of the upstream requests within ±5 points of `expected`, every
/// window spent (at least `min_per_window`).
fn assert_shares(run: &Contention, expected: &[(&str, f64)], min_per_window: u64) {
    for (k, w) in run.windows.iter().enumerate() {
        let sum: u64 = w.values().sum();
        assert!(
            sum >= min_per_window,
            "window {} used only {sum}: the quota is not spent",
            k + 1
        );
    }
    for (name, want) in expected {
        let share = run.share(name);
        println!("{name}: share {share:.3}, expected {want:.3}");
        assert!(
            (share - want).abs() <= 0.05,
            "{name}'s share {share:.3} is not within 5 points of {want:.3}: {:?}",
            run.windows
        );
    }
}

/// The small windows of the contention tests: 30 requests per 1.5 s.
const SMALL_QUOTA: u32 = 30;
const SMALL_WINDOW: Duration = Duration::from_millis(1500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_hold_with_few_workers_per_client() {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    let gate = start(&ca, &mock, Some("max_wait_ms = 3000"));
    let loads = [greedy(0, 4), greedy(1, 4), greedy(2, 4)];
    let run = contention(&mock, &[gate], &loads, SMALL_QUOTA, SMALL_WINDOW, 4).await;
    assert_shares(&run, &[("alpha", 0.25), ("beta", 0.25), ("gamma", 0.5)], 28);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_hold_with_different_worker_counts_on_two_replicas() {
    let Some(exe) = redis_or_skip() else { return };
    let redis = RedisServer::start(&exe);
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    let quota = format!(
        "max_wait_ms = 3000\nreplicas = 2\nredis_url = \"{}\"",
        redis.url()
    );
    let gates = [
        start(&ca, &mock, Some(&quota)),
        start(&ca, &mock, Some(&quota)),
    ];
    // Per replica: alpha 1 worker, beta 6, gamma 2 (weights 1/1/2).
    let loads = [greedy(0, 1), greedy(1, 6), greedy(2, 2)];
    let run = contention(&mock, &gates, &loads, SMALL_QUOTA, SMALL_WINDOW, 4).await;
    assert_shares(&run, &[("alpha", 0.25), ("beta", 0.25), ("gamma", 0.5)], 28);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_alone_gets_the_whole_window() {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    let gate = start(&ca, &mock, Some("max_wait_ms = 3000"));
    let run = contention(
        &mock,
        &[gate],
        &[greedy(1, 3)],
        SMALL_QUOTA,
        SMALL_WINDOW,
        3,
    )
    .await;
    assert_shares(&run, &[("beta", 1.0)], 28);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_light_client_is_served_and_leaves_the_rest_to_the_others() {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    let gate = start(&ca, &mock, Some("max_wait_ms = 3000"));
    // alpha (weight 1 of 4: 7.5 of each window) asks for about 4 per window.
    let light = Load {
        client: 0,
        workers: 1,
        pause: Duration::from_millis(300),
    };
    let loads = [light, greedy(1, 4), greedy(2, 4)];
    let run = contention(&mock, &[gate], &loads, SMALL_QUOTA, SMALL_WINDOW, 4).await;
    let alpha = &run.answers["alpha"];
    assert_eq!(
        alpha.get(&429),
        None,
        "the light client was refused: {alpha:?}"
    );
    // Served within a few paced grants, never left for a window's end.
    assert!(
        run.slowest["alpha"] < SMALL_WINDOW / 2,
        "the light client waited {:?}",
        run.slowest["alpha"]
    );
    let light_share = run.share("alpha");
    assert!(
        light_share > 0.05 && light_share < 0.22,
        "alpha asked for less than its share: {light_share:.3}"
    );
    // The rest goes to the others by their weights (1:2).
    let rest = 1.0 - light_share;
    assert_shares(
        &run,
        &[("beta", rest / 3.0), ("gamma", rest * 2.0 / 3.0)],
        28,
    );
}
