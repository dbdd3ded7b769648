//! Unit tests of the window rules and the fair queue, without sockets.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, StatusCode};

use super::fair::{FairQueue, Full};
use super::window::{
    Ask, MAX_REPORTED_MS, Report, Take, WINDOW_GUARD_MS, Window, allowance, paced_at,
    retry_after_ms,
};
use super::{Budget, Governor};
use crate::error::ProxyError;

fn ask(client: &str, id: u64) -> Ask<'_> {
    Ask {
        client,
        max_share: None,
        id,
        divisor: 1,
        stale_ms: 60_000,
    }
}

fn report(left: u64, reset_ms: u64) -> Report {
    Report {
        left,
        quota: 10,
        window_ms: 1_000,
        reset_ms,
    }
}

/// A window that has seen one answer at t=0: quota 10 per 1000 ms, ends at
/// t=1005 (the reported 1000 and the guard), so it started at t=5.
fn known() -> Window {
    let mut w = Window::default();
    assert_eq!(w.take(0, &ask("a", 1)), Take::Granted);
    w.observe(0, 1, Some(&report(9, 1_000)), false);
    w
}

#[test]
fn headers_make_a_report_only_when_all_four_are_there() {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("x-rate-limit-requests-left", "7"),
        ("x-rate-limit-requests-quota", "150"),
        ("x-rate-limit-time-window-ms", "30000"),
        ("x-rate-limit-time-reset-ms", "1234"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    assert_eq!(
        Report::from_headers(&h),
        Some(Report {
            left: 7,
            quota: 150,
            window_ms: 30_000,
            reset_ms: 1_234
        })
    );
    h.insert("x-rate-limit-requests-left", HeaderValue::from_static("-3"));
    assert_eq!(Report::from_headers(&h), None);
    h.remove("x-rate-limit-requests-left");
    assert_eq!(Report::from_headers(&h), None);
    h.insert("x-retry-after", HeaderValue::from_static("2"));
    assert_eq!(retry_after_ms(&h), Some(2_000));
    h.insert("x-retry-after", HeaderValue::from_static("soon"));
    assert_eq!(retry_after_ms(&h), None);
}

#[test]
fn an_unknown_store_gets_one_probe_at_a_time() {
    let mut w = Window::default();
    assert_eq!(w.take(0, &ask("a", 1)), Take::Granted);
    assert!(matches!(w.take(1, &ask("b", 2)), Take::Wait { .. }));
    w.observe(5, 1, Some(&report(9, 995)), false);
    // One grant is the window's start burst: the next is paced (100 ms per unit).
    assert_eq!(w.take(105, &ask("b", 2)), Take::Granted);
}

/// Late enough in [`known`]'s window that all of it is allowed.
const LATE: u64 = 950;

#[test]
fn grants_stop_at_the_quota_and_resume_at_the_reset() {
    let mut w = known();
    // 1 used by the probe; 9 more, answered at once.
    for id in 2..=10 {
        assert_eq!(w.take(LATE, &ask("a", id)), Take::Granted, "grant {id}");
        w.observe(LATE, id, Some(&report(10 - id, 50)), false);
    }
    assert_eq!(w.take(960, &ask("a", 11)), Take::Wait { ms: 45 });
    // The reported reset passes, but not the guard after it.
    assert_eq!(
        w.take(1_000, &ask("a", 11)),
        Take::Wait {
            ms: WINDOW_GUARD_MS
        }
    );
    // A whole new window.
    assert_eq!(w.take(1_005, &ask("a", 11)), Take::Granted);
    assert_eq!(w.reset_at, 2_005);
}

#[test]
fn requests_in_flight_count_against_the_upstream_view() {
    let mut w = known();
    // Another API client of the store used 5: the upstream says 4 left.
    w.observe(LATE, 99, Some(&report(4, 50)), false);
    for id in 2..=5 {
        assert_eq!(w.take(LATE, &ask("a", id)), Take::Granted, "grant {id}");
    }
    // seen 6 + 4 in flight = 10: nothing more until an answer comes back.
    assert!(matches!(w.take(LATE, &ask("a", 6)), Take::Wait { .. }));
}

#[test]
fn a_new_window_counts_what_is_still_in_flight() {
    let mut w = known();
    for id in 2..=4 {
        assert_eq!(w.take(990, &ask("a", id)), Take::Granted);
    }
    // Three sent just before the reset may land in the next window upstream:
    // they are its first grants, past its start burst of one, so the next
    // is paced as the fourth (3 × 100 ms after the start at 1005).
    assert_eq!(w.take(1_006, &ask("a", 5)), Take::Wait { ms: 299 });
    assert_eq!((w.reset_at, w.used), (2_005, 3));
    assert_eq!(w.take(1_305, &ask("a", 5)), Take::Granted);
    assert_eq!(w.used, 4);
}

#[test]
fn the_earliest_report_of_a_window_is_kept() {
    let mut w = known();
    // A later-read report of the same window says it ends later: ignored.
    w.observe(100, 0, Some(&report(8, 960)), false);
    assert_eq!(w.reset_at, 1_005);
    // A report read sooner after it was written moves the end earlier.
    w.observe(200, 0, Some(&report(8, 790)), false);
    assert_eq!(w.reset_at, 995);
    // A report of the next window (the upstream already reset) starts it.
    w.observe(1_000, 0, Some(&report(9, 995)), false);
    assert_eq!((w.reset_at, w.seen), (2_000, 1));
}

#[test]
fn a_reset_rounded_down_never_opens_the_window_early() {
    // The upstream's window ends at `end_us` (microseconds on bcgate's
    // clock); a report read at `read_us` says the whole milliseconds left,
    // rounded down, and bcgate's clock reads whole milliseconds too.
    for end_us in [1_000_000, 1_000_001, 1_000_500, 1_000_999] {
        for read_us in (0..3_000).map(|i| end_us - 1 - i * 331) {
            let mut w = Window::default();
            assert_eq!(w.take(0, &ask("a", 1)), Take::Granted);
            let r = Report {
                left: 9,
                quota: 10,
                window_ms: 1_000,
                reset_ms: (end_us - read_us) / 1_000,
            };
            w.observe(read_us / 1_000, 1, Some(&r), false);
            // The window opens when the clock reads reset_at, at the earliest
            // reset_at × 1000 µs: after the upstream's end.
            assert!(
                w.reset_at * 1_000 > end_us,
                "end {end_us} µs, read at {read_us} µs: opens at {} ms",
                w.reset_at
            );
        }
    }
}

#[test]
fn a_429_exhausts_the_window_and_one_without_headers_blocks() {
    let mut w = known();
    assert_eq!(w.take(LATE, &ask("a", 2)), Take::Granted);
    w.observe(LATE, 2, Some(&report(3, 50)), true);
    assert_eq!(w.take(LATE + 1, &ask("a", 3)), Take::Wait { ms: 54 });
    let mut w = known();
    w.block(10, 500);
    assert_eq!(w.take(11, &ask("a", 2)), Take::Wait { ms: 499 });
    assert_eq!(w.take(510, &ask("a", 2)), Take::Granted);
}

#[test]
fn the_local_share_is_the_quota_divided_by_the_replicas() {
    let mut w = known();
    let mut granted = 1;
    for id in 2..=10 {
        let a = Ask {
            divisor: 2,
            ..ask("a", id)
        };
        if w.take(LATE, &a) == Take::Granted {
            w.observe(LATE, id, Some(&report(10 - id, 50)), false);
            granted += 1;
        }
    }
    assert_eq!(granted, 5);
}

#[test]
fn a_client_cap_leaves_the_rest_to_others() {
    let mut w = known();
    let capped = |id| Ask {
        max_share: Some(0.3),
        ..ask("greedy", id)
    };
    for id in 2..=4 {
        assert_eq!(w.take(LATE, &capped(id)), Take::Granted);
    }
    assert!(matches!(w.take(LATE, &capped(5)), Take::Capped { .. }));
    assert_eq!(w.take(LATE, &ask("other", 6)), Take::Granted);
}

#[test]
fn stale_grants_stop_counting() {
    let mut w = known();
    for id in 2..=10 {
        assert_eq!(w.take(LATE, &ask("a", id)), Take::Granted);
    }
    let short = Ask {
        stale_ms: 20,
        ..ask("a", 11)
    };
    // All nine still in flight at 1000 are older than 20 ms; the window's
    // own count still says 10 used.
    assert!(matches!(w.take(1_000, &short), Take::Wait { .. }));
    assert_eq!(w.in_flight(), 0);
}

#[test]
fn grants_are_paced_over_the_window() {
    // 30 per 1500 ms: 1 at once, then one every 50 ms, all 30 by 1450 ms.
    assert_eq!(allowance(30, 1_500, 0), 1);
    assert_eq!(allowance(30, 1_500, 49), 1);
    assert_eq!(allowance(30, 1_500, 50), 2);
    // Half a window unused: half of it at once.
    assert_eq!(allowance(30, 1_500, 750), 16);
    assert_eq!(allowance(30, 1_500, 1_450), 30);
    assert_eq!(allowance(30, 1_500, 9_999), 30);
    assert_eq!((paced_at(30, 1_500, 0), paced_at(30, 1_500, 1)), (0, 50));
    assert_eq!(paced_at(30, 1_500, 29), 1_450);
    assert_eq!(paced_at(7, 1_000, 3), 429);
    // A tiny quota still has a grant at the start.
    assert_eq!(allowance(1, 1_000, 0), 1);
    for used in 0..30 {
        let at = paced_at(30, 1_500, used);
        assert!(allowance(30, 1_500, at) > used, "{used}");
        assert!(at == 0 || allowance(30, 1_500, at - 1) <= used, "{used}");
    }
}

/// One client of [`simulate`]: name, weight, workers, pause (ms) after each answer.
type SimClient = (&'static str, u32, usize, u64);

/// A store whose upstream allows `quota` per `window_ms` (fixed windows
/// from t=0, reset reported rounded down) served through one [`Window`] and
/// [`FairQueue`] as the pump uses them, on a 1 ms clock: each request
/// reaches the upstream 1 ms after its grant and is answered `latency` ms
/// after it; each worker sends again after its pause. Returns the requests
/// per client that reached the upstream in windows 1.. (0 starts cold), the
/// upstream's 429s, and the longest wait for a grant per client.
fn simulate(
    clients: &[SimClient],
    quota: u64,
    window_ms: u64,
    windows: u64,
    latency: u64,
) -> (HashMap<&'static str, u64>, u64, HashMap<&'static str, u64>) {
    #[derive(Clone, Copy)]
    enum State {
        Idle { until: u64 },
        Queued { since: u64 },
        Sent { id: u64, at: u64 },
    }
    let mut waits: HashMap<&'static str, u64> = HashMap::new();
    let mut workers: Vec<(usize, State)> = clients
        .iter()
        .enumerate()
        .flat_map(|(c, client)| (0..client.2).map(move |_| (c, State::Idle { until: 0 })))
        .collect();
    let (mut w, mut q) = (Window::default(), FairQueue::new(1_000));
    let mut upstream: HashMap<u64, u64> = HashMap::new();
    let (mut served, mut throttled, mut next_id) = (HashMap::new(), 0, 0);
    for now in 0..windows * window_ms {
        for (i, (c, state)) in workers.iter_mut().enumerate() {
            match *state {
                State::Sent { id, at } if now == at + 1 + latency => {
                    let arrived = at + 1;
                    let used = upstream.entry(arrived / window_ms).or_default();
                    let over = *used >= quota;
                    *used += u64::from(!over);
                    throttled += u64::from(over);
                    if !over && arrived >= window_ms {
                        *served.entry(clients[*c].0).or_default() += 1;
                    }
                    let r = Report {
                        left: quota - *used,
                        quota,
                        window_ms,
                        reset_ms: window_ms - arrived % window_ms,
                    };
                    w.observe(now, id, Some(&r), over);
                    *state = State::Idle {
                        until: now + clients[*c].3,
                    };
                }
                State::Idle { until } if now >= until => {
                    q.push(clients[*c].0, clients[*c].1, i).expect("room");
                    *state = State::Queued { since: now };
                }
                _ => {}
            }
        }
        while let Some((client, seq)) = q.peek(|_| false).map(|(c, s)| (c.to_owned(), s)) {
            next_id += 1;
            if w.take(now, &ask(&client, next_id)) != Take::Granted {
                break;
            }
            let (_, i) = q.serve(seq).expect("queued");
            if let State::Queued { since } = workers[i].1 {
                let wait = waits.entry(clients[workers[i].0].0).or_default();
                *wait = (*wait).max(now - since);
            }
            workers[i].1 = State::Sent {
                id: next_id,
                at: now,
            };
        }
    }
    (served, throttled, waits)
}

fn shares(served: &HashMap<&str, u64>) -> HashMap<String, f64> {
    let total: u64 = served.values().sum();
    served
        .iter()
        .map(|(c, n)| ((*c).to_owned(), *n as f64 / total as f64))
        .collect()
}

fn assert_near(shares: &HashMap<String, f64>, want: &[(&str, f64)], within: f64) {
    for (c, share) in want {
        let got = shares.get(*c).copied().unwrap_or(0.0);
        assert!(
            (got - share).abs() <= within,
            "{c}: {got:.3}, not {share:.3}: {shares:?}"
        );
    }
}

#[test]
fn weights_hold_whatever_the_clients_concurrency() {
    let weighted = [("alpha", 0.25), ("beta", 0.25), ("gamma", 0.5)];
    for workers in [[4, 4, 4], [2, 2, 2], [1, 6, 2], [16, 16, 16]] {
        let clients = [
            ("alpha", 1, workers[0], 0),
            ("beta", 1, workers[1], 0),
            ("gamma", 2, workers[2], 0),
        ];
        let (served, throttled, _) = simulate(&clients, 30, 1_500, 5, 2);
        assert_eq!(throttled, 0, "{workers:?}");
        assert_eq!(
            served.values().sum::<u64>(),
            4 * 30,
            "{workers:?}: {served:?}"
        );
        assert_near(&shares(&served), &weighted, 0.02);
    }
}

#[test]
fn at_bigcommerce_rates_a_few_weighted_workers_get_their_share() {
    // 150 per 30 s, 300 ms per call: a weight-4 checkout with 2 workers
    // against a weight-1 service with 8.
    let clients = [("service", 1, 8, 0), ("checkout", 4, 2, 0)];
    let (served, throttled, _) = simulate(&clients, 150, 30_000, 4, 300);
    assert_eq!(throttled, 0);
    assert_near(
        &shares(&served),
        &[("checkout", 0.8), ("service", 0.2)],
        0.03,
    );
}

#[test]
fn a_client_alone_gets_the_whole_window_and_a_light_one_leaves_its_share() {
    let (served, throttled, _) = simulate(&[("alone", 1, 3, 0)], 30, 1_500, 4, 2);
    assert_eq!((served["alone"], throttled), (3 * 30, 0));
    // alpha pauses 300 ms between requests (under 5 a window, its share is
    // 7.5): each is served at the next paced grant (50 ms apart, a little
    // more across a window's guard), and beta and gamma share the rest 1:2.
    let clients = [("alpha", 1, 1, 300), ("beta", 1, 4, 0), ("gamma", 2, 4, 0)];
    let (served, throttled, waits) = simulate(&clients, 30, 1_500, 5, 2);
    assert_eq!(throttled, 0);
    assert!(waits["alpha"] <= 60, "alpha waited {waits:?}");
    assert!((16..=20).contains(&served["alpha"]), "{served:?}");
    assert_eq!(served.values().sum::<u64>(), 4 * 30, "{served:?}");
    let rest = (120 - served["alpha"]) as f64 / 120.0;
    assert_near(
        &shares(&served),
        &[("beta", rest / 3.0), ("gamma", rest * 2.0 / 3.0)],
        0.02,
    );
}

#[test]
fn the_fair_queue_serves_by_weight() {
    let mut q = FairQueue::new(100);
    for i in 0..12 {
        q.push("a", 1, i).expect("room");
        q.push("b", 1, i).expect("room");
        q.push("c", 2, i).expect("room");
    }
    let mut served: HashMap<String, Vec<i32>> = HashMap::new();
    for _ in 0..16 {
        let (_, seq) = q.peek(|_| false).expect("waiting");
        let (client, item) = q.serve(seq).expect("served");
        served.entry(client).or_default().push(item);
    }
    assert_eq!(served["a"].len(), 4);
    assert_eq!(served["b"].len(), 4);
    assert_eq!(served["c"].len(), 8);
    // Each client's own requests in arrival (deadline) order.
    for items in served.values() {
        assert!(items.windows(2).all(|p| p[0] < p[1]), "{items:?}");
    }
}

#[test]
fn a_late_client_is_not_pushed_behind_a_backlog() {
    let mut q = FairQueue::new(100);
    for i in 0..50 {
        q.push("greedy", 1, i).expect("room");
    }
    for _ in 0..10 {
        let (_, seq) = q.peek(|_| false).expect("waiting");
        q.serve(seq);
    }
    q.push("polite", 1, 0).expect("room");
    let mut order = Vec::new();
    for _ in 0..3 {
        let (client, seq) = q.peek(|_| false).expect("waiting");
        order.push(client.to_owned());
        q.serve(seq);
    }
    assert!(order.contains(&"polite".to_owned()), "{order:?}");
}

#[test]
fn a_client_back_from_a_pause_keeps_one_turn_of_credit_and_no_more() {
    let mut q = FairQueue::new(100);
    let next = |q: &mut FairQueue<i32>| {
        let (_, seq) = q.peek(|_| false).expect("waiting");
        q.serve(seq).expect("served").0
    };
    for i in 0..20 {
        q.push("busy", 1, i).expect("room");
    }
    q.push("light", 1, 0).expect("room");
    let first: Vec<String> = (0..2).map(|_| next(&mut q)).collect();
    assert!(first.contains(&"light".to_owned()), "{first:?}");
    // light is away (its request in flight) while busy is served 3 times.
    for _ in 0..3 {
        assert_eq!(next(&mut q), "busy");
    }
    // Back, it goes first, not behind busy's next turn.
    q.push("light", 1, 1).expect("room");
    assert_eq!(next(&mut q), "light");
    // Away long, then 3 at once: one turn of credit, then turns alternate.
    for _ in 0..6 {
        assert_eq!(next(&mut q), "busy");
    }
    for i in 2..5 {
        q.push("light", 1, i).expect("room");
    }
    let order: Vec<String> = (0..5).map(|_| next(&mut q)).collect();
    assert_eq!(order, ["light", "busy", "light", "busy", "light"]);
}

#[test]
fn the_fair_queue_is_bounded_skips_and_forgets() {
    let mut q = FairQueue::new(2);
    let s1 = q.push("a", 1, 1).expect("room");
    q.push("b", 1, 2).expect("room");
    assert_eq!(q.push("c", 1, 3), Err(Full));
    assert_eq!(
        q.peek(|c| c == "a").map(|(c, _)| c.to_owned()),
        Some("b".into())
    );
    assert_eq!(q.remove(s1), Some(1));
    assert_eq!(q.remove(s1), None);
    assert_eq!(q.len(), 1);
    // a gave its turn back: its next request is not behind a newcomer's.
    q.set_limit(3);
    q.push("a", 1, 3).expect("room");
    q.push("d", 1, 4).expect("room");
    let mut order = Vec::new();
    while let Some((c, seq)) = q.peek(|_| false).map(|(c, s)| (c.to_owned(), s)) {
        q.serve(seq);
        order.push(c);
    }
    assert_eq!(order, ["b", "a", "d"]);
    // Removing by item, and the turns come back: e queues at the front again.
    for i in 0..3 {
        q.push("e", 1, 10 + i).expect("room");
    }
    assert_eq!(q.remove_where(|i| *i >= 10), vec![12, 11, 10]);
    assert!(q.is_empty());
}

#[test]
fn config_errors_name_the_quota_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("t"), "token-for-config-test").expect("token file");
    let path = dir.path().join("bcgate.toml");
    let load = |client: &str, quota: &str| {
        let toml = format!(
            "[[stores]]\nhash = \"abc\"\ntoken_file = \"t\"\n\n[[clients]]\nname = \"c\"\n\
             key_sha256 = \"{}\"\nstores = [\"abc\"]\n{client}\n[quota]\n{quota}\n",
            "ab".repeat(32)
        );
        std::fs::write(&path, toml).expect("config");
        crate::config::Config::load(&path)
    };
    let cfg = load("quota_weight = 3\nquota_max_share = 0.5", "").expect("valid");
    let q = cfg.quota.as_ref().expect("[quota]");
    assert_eq!(
        (q.max_wait.as_millis(), q.max_queue, q.retries, q.replicas),
        (2_000, 1_000, 1, 1)
    );
    let c = cfg.clients.by_name("c").expect("client");
    assert_eq!((c.quota_weight, c.quota_max_share), (3, Some(0.5)));
    for (client, quota, key) in [
        ("quota_weight = 0", "", "clients[0].quota_weight"),
        ("quota_weight = 1001", "", "clients[0].quota_weight"),
        ("quota_max_share = 1.5", "", "clients[0].quota_max_share"),
        ("quota_max_share = 0.0", "", "clients[0].quota_max_share"),
        ("", "replicas = 0", "quota.replicas"),
        ("", "max_queue = 0", "quota.max_queue"),
        ("", "retries = 11", "quota.retries"),
        ("", "redis_url = \"rediss://h:1/0\"", "quota.redis_url"),
        ("", "nope = 1", "quota"),
    ] {
        let err = load(client, quota).expect_err(key);
        assert_eq!(err.key, key, "{err}");
    }
}

#[test]
fn the_quota_config_never_shows_the_redis_password() {
    let cfg = crate::config::QuotaConfig {
        max_wait: std::time::Duration::from_secs(2),
        max_queue: 1,
        retries: 1,
        replicas: 2,
        redis_url: Some(
            crate::secret::Secret::text("redis://user:s3cret-pw@10.0.0.5:6379/0").expect("url"),
        ),
    };
    let shown = format!("{cfg:?}");
    assert!(
        !shown.contains("s3cret-pw") && shown.contains("10.0.0.5:6379"),
        "{shown}"
    );
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_static(v));
    }
    h
}

/// B2B Edition's headers as its docs show them.
const B2B_DOCS: [(&str, &str); 4] = [
    ("x-requests-allocated", "150 times/60 s"),
    ("x-requests-window-length", "0 times"),
    ("x-requests-remaining", "150 times"),
    ("x-request-window-resets-after", "0.3973509933774834 s"),
];

#[test]
fn b2b_headers_make_a_report_in_their_own_formats() {
    let h = headers(&B2B_DOCS);
    // Seconds rounded up to the millisecond: never a window opened early.
    assert_eq!(
        Report::from_b2b_headers(&h),
        Some(Report {
            left: 150,
            quota: 150,
            window_ms: 60_000,
            reset_ms: 398,
        })
    );
    // The other host's headers are not this budget's, nor the reverse.
    assert_eq!(Report::from_headers(&h), None);
    let api = headers(&[
        ("x-rate-limit-requests-left", "7"),
        ("x-rate-limit-requests-quota", "150"),
        ("x-rate-limit-time-window-ms", "30000"),
        ("x-rate-limit-time-reset-ms", "1234"),
    ]);
    assert_eq!(Report::from_b2b_headers(&api), None);
    assert_eq!(Budget::B2b.report(&h), Report::from_b2b_headers(&h));
    assert_eq!(Budget::Api.report(&api), Report::from_headers(&api));

    // Whitespace and a missing unit are tolerated; whole seconds are exact.
    let h = headers(&[
        ("x-requests-allocated", " 40times / 30s "),
        ("x-requests-remaining", "0"),
        ("x-request-window-resets-after", "12 s"),
    ]);
    assert_eq!(
        Report::from_b2b_headers(&h),
        Some(Report {
            left: 0,
            quota: 40,
            window_ms: 30_000,
            reset_ms: 12_000,
        })
    );
}

#[test]
fn unreadable_b2b_headers_make_no_report() {
    let mut broken: Vec<[(&str, &str); 3]> = Vec::new();
    let good = [
        ("x-requests-allocated", "150 times/60 s"),
        ("x-requests-remaining", "12 times"),
        ("x-request-window-resets-after", "3.5 s"),
    ];
    for (i, bad) in [
        "150 times",
        "150 times/",
        "/60 s",
        "0 times/60 s",
        "150 times/0 s",
        "-1 times/60 s",
        "150 times/-60 s",
        "150 times/NaN s",
        "150 times/inf s",
        "many times/60 s",
        "150 times/60 min",
        "-3 times",
        "soon",
        "1 e",
    ]
    .into_iter()
    .enumerate()
    {
        // The allocation cases for the first header, the rest spread over the others.
        let mut h = good;
        let at = if i < 10 { 0 } else { 1 + i % 2 };
        h[at].1 = bad;
        broken.push(h);
    }
    for h in broken {
        assert_eq!(Report::from_b2b_headers(&headers(&h)), None, "{h:?}");
    }
    for missing in 0..3 {
        let mut h = headers(&good);
        h.remove(good[missing].0);
        assert_eq!(
            Report::from_b2b_headers(&h),
            None,
            "without {}",
            good[missing].0
        );
    }
    let mut h = headers(&good);
    h.insert(
        "x-request-window-resets-after",
        HeaderValue::from_bytes(b"3.5 \xff").expect("an opaque value"),
    );
    assert_eq!(Report::from_b2b_headers(&h), None);
}

#[test]
fn absurd_windows_are_clamped_so_no_time_overflows() {
    let h = headers(&[
        ("x-requests-allocated", "150 times/1e300 s"),
        ("x-requests-remaining", "1 times"),
        ("x-request-window-resets-after", "1e300 s"),
    ]);
    let r = Report::from_b2b_headers(&h).expect("a report");
    assert_eq!(
        (r.window_ms, r.reset_ms),
        (MAX_REPORTED_MS, MAX_REPORTED_MS)
    );
    let h = headers(&[
        ("x-rate-limit-requests-left", "7"),
        ("x-rate-limit-requests-quota", "150"),
        ("x-rate-limit-time-window-ms", "18446744073709551615"),
        ("x-rate-limit-time-reset-ms", "18446744073709551615"),
    ]);
    let r = Report::from_headers(&h).expect("a report");
    assert_eq!(
        (r.window_ms, r.reset_ms),
        (MAX_REPORTED_MS, MAX_REPORTED_MS)
    );
    // Learning from it does not overflow the clock.
    let mut w = Window::default();
    assert_eq!(w.take(u64::MAX / 2, &ask("a", 1)), Take::Granted);
    w.observe(u64::MAX / 2, 1, Some(&r), false);
    assert!(matches!(
        w.take(u64::MAX / 2 + 1, &ask("a", 2)),
        Take::Wait { .. } | Take::Granted
    ));
}

#[test]
fn a_429_is_retried_after_its_own_budgets_reset() {
    let b2b = headers(&[
        ("x-requests-allocated", "150 times/60 s"),
        ("x-requests-remaining", "0 times"),
        ("x-request-window-resets-after", "1.2 s"),
    ]);
    assert_eq!(super::retry_wait_ms(Budget::B2b, &b2b), 1_200);
    // The api budget does not read B2B Edition's headers.
    assert_eq!(
        super::retry_wait_ms(Budget::Api, &b2b),
        super::window::BACKPRESSURE_MS
    );
    let mut b2b = b2b;
    b2b.remove("x-requests-allocated");
    b2b.insert("x-retry-after", HeaderValue::from_static("3"));
    assert_eq!(super::retry_wait_ms(Budget::B2b, &b2b), 3_000);
}

#[test]
fn each_budget_has_its_own_label_and_redis_keys() {
    assert_eq!(Budget::Api.label("abc123"), "abc123");
    assert_eq!(Budget::B2b.label("abc123"), "abc123/b2b");
    let api = super::redis::key_prefix("abc123", Budget::Api);
    let b2b = super::redis::key_prefix("abc123", Budget::B2b);
    // The api keys are the ones bcgate always used: a rolling upgrade shares them.
    assert_eq!(api, "bcgate:quota:{abc123}");
    assert_eq!(b2b, "bcgate:quota:{abc123}:b2b");
    // Same hash tag (one cluster slot per store), no key of one is the other's.
    for suffix in [":w", ":p", ":c"] {
        assert_ne!(format!("{api}{suffix}"), format!("{b2b}{suffix}"));
        assert!(!format!("{b2b}{suffix}").starts_with(&format!("{api}{suffix}")));
    }
    use crate::family::Family;
    assert_eq!(Budget::of(Family::Api), Some(Budget::Api));
    assert_eq!(Budget::of(Family::B2b), Some(Budget::B2b));
    for f in [Family::Payments, Family::Storefront, Family::Account] {
        assert_eq!(Budget::of(f), None, "{f}");
    }
}

/// A governor with `[quota]` (no Redis) and its one client.
fn governed(max_wait_ms: u64) -> (Governor, crate::config::Config) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("t"), "token-for-governor-test").expect("token file");
    let path = dir.path().join("bcgate.toml");
    let toml = format!(
        "[[stores]]\nhash = \"abc\"\ntoken_file = \"t\"\n\n[[clients]]\nname = \"c\"\n\
         key_sha256 = \"{}\"\nstores = [\"abc\"]\n\n[quota]\nmax_wait_ms = {max_wait_ms}\n",
        "ab".repeat(32)
    );
    std::fs::write(&path, toml).expect("config");
    let cfg = crate::config::Config::load(&path).expect("config");
    let gov = Governor::next(cfg.quota.as_ref(), Duration::from_secs(10), None).expect("governor");
    (gov, cfg)
}

/// Spends `store`'s `budget` down to nothing: one grant, answered with
/// `answer` (the budget's headers saying nothing is left for 50 s).
async fn exhaust(gov: &Governor, budget: Budget, answer: &HeaderMap) {
    let sg = gov.store(budget, "abc");
    let (take, grant) = gov.take(&sg, "c", None).await;
    assert_eq!(take, Take::Granted);
    gov.observe(
        budget,
        "abc",
        Some((&sg, grant)),
        Some((StatusCode::OK, answer)),
    );
}

fn spent_api() -> HeaderMap {
    headers(&[
        ("x-rate-limit-requests-left", "0"),
        ("x-rate-limit-requests-quota", "150"),
        ("x-rate-limit-time-window-ms", "60000"),
        ("x-rate-limit-time-reset-ms", "50000"),
    ])
}

fn spent_b2b() -> HeaderMap {
    headers(&[
        ("x-requests-allocated", "150 times/60 s"),
        ("x-requests-remaining", "0 times"),
        ("x-request-window-resets-after", "50 s"),
    ])
}

#[tokio::test]
async fn exhausting_the_api_budget_leaves_b2b_untouched_and_back() {
    for (spent, answer, other) in [
        (Budget::Api, spent_api(), Budget::B2b),
        (Budget::B2b, spent_b2b(), Budget::Api),
    ] {
        let (gov, cfg) = governed(200);
        let settings = cfg.quota.as_ref().expect("[quota]");
        let client = cfg.clients.by_name("c").expect("client");
        exhaust(&gov, spent, &answer).await;
        let deadline = Instant::now() + settings.max_wait;
        let started = Instant::now();
        let refused = gov
            .admit(settings, spent, "abc", client, deadline)
            .await
            .expect_err("the spent budget refuses");
        // At once: nothing before the deadline, no useless wait.
        assert!(started.elapsed() < Duration::from_millis(150));
        let ProxyError::QuotaExhausted(d) = &refused else {
            panic!("{refused:?}");
        };
        assert_eq!(
            (d.b2b, d.store.as_str(), d.quota),
            (spent == Budget::B2b, "abc", 150)
        );
        assert!(d.reset_ms > 40_000, "{d:?}");
        // The other budget of the same store: granted at once, twice.
        for _ in 0..2 {
            let permit = gov
                .admit(
                    settings,
                    other,
                    "abc",
                    client,
                    Instant::now() + settings.max_wait,
                )
                .await
                .unwrap_or_else(|e| panic!("{other:?} after {spent:?} was spent: {e}"));
            permit.finish(None);
        }
        // The spent one's window is as it was: the other's answers did not touch it.
        let sg = gov.store(spent, "abc");
        assert!(matches!(gov.take(&sg, "c", None).await.0, Take::Wait { ms } if ms > 40_000));
    }
}

#[tokio::test]
async fn only_the_api_hosts_401_marks_the_token_unhealthy() {
    let (gov, _cfg) = governed(200);
    let unhealthy = |gov: &Governor| {
        gov.checks()
            .iter()
            .any(|(name, ok, _)| name.contains("token health") && !ok)
    };
    let empty = HeaderMap::new();
    gov.observe(
        Budget::B2b,
        "abc",
        None,
        Some((StatusCode::UNAUTHORIZED, &empty)),
    );
    assert!(!unhealthy(&gov), "a B2B Edition 401 is about B2B access");
    gov.observe(
        Budget::Api,
        "abc",
        None,
        Some((StatusCode::UNAUTHORIZED, &empty)),
    );
    assert!(unhealthy(&gov));
}

#[test]
fn bcgates_own_b2b_429_reads_back_as_b2b_editions_headers() {
    let err = ProxyError::QuotaExhausted(Box::new(crate::error::QuotaDenial {
        client: "b2b-sync".into(),
        store: "abc123".into(),
        b2b: true,
        waited_ms: 0,
        quota: 150,
        window_ms: 60_000,
        reset_ms: 41_250,
    }));
    let resp = err.to_response("rid");
    // Parsed back as bcgate parses B2B Edition's own answers.
    let report = super::window::Report::from_b2b_headers(resp.headers()).expect("a report");
    assert_eq!(
        (report.left, report.quota, report.window_ms, report.reset_ms),
        (0, 150, 60_000, 41_250)
    );
}
