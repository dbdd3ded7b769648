//! Unit tests of the window rules and the fair queue, without sockets.

use std::collections::HashMap;

use http::{HeaderMap, HeaderValue};

use super::fair::{FairQueue, Full};
use super::window::{Ask, Report, Take, Window, retry_after_ms};

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

/// A window that has seen one answer at t=0: quota 10 per 1000 ms, ends at t=1000.
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
    assert_eq!(w.take(6, &ask("b", 2)), Take::Granted);
}

#[test]
fn grants_stop_at_the_quota_and_resume_at_the_reset() {
    let mut w = known();
    // 1 used by the probe; 9 more, answered at once.
    for id in 2..=10 {
        assert_eq!(w.take(10, &ask("a", id)), Take::Granted, "grant {id}");
        w.observe(10, id, Some(&report(10 - id, 990)), false);
    }
    assert_eq!(w.take(20, &ask("a", 11)), Take::Wait { ms: 980 });
    // The reset passes: a whole new window.
    assert_eq!(w.take(1_000, &ask("a", 11)), Take::Granted);
    assert_eq!(w.reset_at, 2_000);
}

#[test]
fn requests_in_flight_count_against_the_upstream_view() {
    let mut w = known();
    // Another API client of the store used 5: the upstream says 4 left.
    w.observe(1, 99, Some(&report(4, 999)), false);
    for id in 2..=5 {
        assert_eq!(w.take(2, &ask("a", id)), Take::Granted, "grant {id}");
    }
    // seen 6 + 4 in flight = 10: nothing more until an answer comes back.
    assert!(matches!(w.take(3, &ask("a", 6)), Take::Wait { .. }));
}

#[test]
fn a_new_window_counts_what_is_still_in_flight() {
    let mut w = known();
    for id in 2..=4 {
        assert_eq!(w.take(990, &ask("a", id)), Take::Granted);
    }
    // Three sent just before the reset may land in the next window upstream.
    assert_eq!(w.take(1_001, &ask("a", 5)), Take::Granted);
    assert_eq!(w.used, 4);
}

#[test]
fn the_earliest_report_of_a_window_is_kept() {
    let mut w = known();
    // A later-read report of the same window says it ends later: ignored.
    w.observe(100, 0, Some(&report(8, 960)), false);
    assert_eq!(w.reset_at, 1_000);
    // A report read sooner after it was written moves the end earlier.
    w.observe(200, 0, Some(&report(8, 790)), false);
    assert_eq!(w.reset_at, 990);
    // A report of the next window (the upstream already reset) starts it.
    w.observe(1_000, 0, Some(&report(9, 995)), false);
    assert_eq!((w.reset_at, w.seen), (1_995, 1));
}

#[test]
fn a_429_exhausts_the_window_and_one_without_headers_blocks() {
    let mut w = known();
    assert_eq!(w.take(1, &ask("a", 2)), Take::Granted);
    w.observe(2, 2, Some(&report(3, 998)), true);
    assert!(matches!(w.take(3, &ask("a", 3)), Take::Wait { ms: 997 }));
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
        if w.take(5, &a) == Take::Granted {
            w.observe(5, id, Some(&report(10 - id, 995)), false);
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
        assert_eq!(w.take(5, &capped(id)), Take::Granted);
    }
    assert!(matches!(w.take(5, &capped(5)), Take::Capped { .. }));
    assert_eq!(w.take(5, &ask("other", 6)), Take::Granted);
}

#[test]
fn stale_grants_stop_counting() {
    let mut w = known();
    for id in 2..=10 {
        assert_eq!(w.take(5, &ask("a", id)), Take::Granted);
    }
    let short = Ask {
        stale_ms: 100,
        ..ask("a", 11)
    };
    // All nine still in flight at 900 are older than 100 ms; the window's
    // own count still says 10 used.
    assert!(matches!(w.take(900, &short), Take::Wait { .. }));
    assert_eq!(w.in_flight(), 0);
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
        redis_url: Some("redis://user:s3cret-pw@10.0.0.5:6379/0".into()),
    };
    let shown = format!("{cfg:?}");
    assert!(
        !shown.contains("s3cret-pw") && shown.contains("10.0.0.5:6379"),
        "{shown}"
    );
}
