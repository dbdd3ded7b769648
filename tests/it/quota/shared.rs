//! One quota shared by replicas and clients: the deadline 429, Redis down,
//! an unhealthy token, retries after an upstream 429, capped clients.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_weighted_clients_on_two_replicas_share_one_quota() {
    let Some(exe) = redis_or_skip() else { return };
    let redis = RedisServer::start(&exe);
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    let window = Duration::from_millis(1500);
    let t0 = Instant::now();
    mock.enforce_quota(150, window);
    let quota = format!(
        "max_wait_ms = 2000\nreplicas = 2\nredis_url = \"{}\"",
        redis.url()
    );
    let replicas = [
        start(&ca, &mock, Some(&quota)),
        start(&ca, &mock, Some(&quota)),
    ];

    // Every client pushes from 16 loops on each replica for 4.5 windows.
    let run = Duration::from_millis(6_750);
    let end = Instant::now() + run;
    let log = Arc::new(Mutex::new(HashMap::<u64, Sent>::new()));
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (replica, gate) in replicas.iter().enumerate() {
        for (client, key, _) in CLIENTS {
            for _ in 0..16 {
                let url = gate.url(PRODUCTS);
                let (log, next) = (log.clone(), next.clone());
                tasks.push(tokio::spawn(async move {
                    let http = plain_client();
                    while Instant::now() < end {
                        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
                        let took = sent.elapsed();
                        let entry = Sent {
                            client,
                            replica,
                            sent,
                            took,
                            status: resp.status,
                            arrival: arrival(&resp),
                        };
                        log.lock().expect("log").insert(n, entry);
                    }
                }));
            }
        }
    }
    for t in tasks {
        t.await.expect("client loop");
    }
    let log = log.lock().expect("log").clone();
    let stats = mock.stats();
    assert_eq!(
        stats.rate_limited, 0,
        "the upstream answered 429 {} times",
        stats.rate_limited
    );

    // Shares, over the windows after the first (which starts cold).
    let records = mock.requests();
    let mut per_window: HashMap<u64, HashMap<&str, u64>> = HashMap::new();
    for r in &records {
        let k = (r.received.duration_since(t0).as_millis() / window.as_millis()) as u64;
        let c = param(&r.uri, "c").unwrap_or("?");
        let c = CLIENTS.iter().map(|c| c.0).find(|n| *n == c).unwrap_or("?");
        *per_window.entry(k).or_default().entry(c).or_default() += 1;
    }
    let full_windows: Vec<u64> = (1..(run.as_millis() / window.as_millis()) as u64).collect();
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for k in &full_windows {
        let w = per_window.get(k).cloned().unwrap_or_default();
        let sum: u64 = w.values().sum();
        println!("window {k}: {sum} upstream requests {w:?}");
        assert!(
            sum >= 120,
            "window {k} used only {sum} of 150: the quota is not spent"
        );
        for (c, n) in w {
            *counts.entry(c).or_default() += n;
        }
    }
    let total: u64 = counts.values().sum();
    let weights: u32 = CLIENTS.iter().map(|c| c.2).sum();
    for (name, _, weight) in CLIENTS {
        let share = counts.get(name).copied().unwrap_or(0) as f64 / total as f64;
        let expected = f64::from(weight) / f64::from(weights);
        println!("{name}: share {share:.3}, weight share {expected:.3}");
        assert!(
            (share - expected).abs() <= expected * 0.10,
            "{name}'s share {share:.3} is not within 10% of {expected:.3}: {counts:?}"
        );
    }
    let own_429 = log.values().filter(|s| s.status == 429).count();
    println!(
        "{} requests sent, {} reached the upstream, {own_429} answered 429 quota_exhausted by bcgate",
        log.len(),
        records.len()
    );

    // Deadline order: of two requests of one client on one replica, sent at
    // least 20 ms apart and taken in by bcgate in that order, the earlier
    // (whose deadline is earlier) does not reach the upstream later. A grant
    // and the forward that follows it race other requests by a few ms, so
    // "later" means by more than `slack`; waiting for the wrong window costs
    // a whole window (1.5 s). Pairs where both waited make the check bite.
    let position: HashMap<u64, Instant> = records
        .iter()
        .filter_map(|r| Some((param(&r.uri, "n")?.parse().ok()?, r.received)))
        .collect();
    // (client, replica) → (sent, reached the upstream, took, arrival)
    type Group = Vec<(Instant, Instant, Duration, u64)>;
    let mut groups: HashMap<(&str, usize), Group> = HashMap::new();
    for (n, s) in &log {
        if let Some(&pos) = position.get(n) {
            groups
                .entry((s.client, s.replica))
                .or_default()
                .push((s.sent, pos, s.took, s.arrival));
        }
    }
    let gap = Duration::from_millis(20);
    let waited = Duration::from_millis(100);
    let slack = Duration::from_millis(50);
    let (mut pairs, mut waited_pairs, mut inversions) = (0u64, 0u64, Vec::new());
    for (group, mut list) in groups {
        list.sort_by_key(|e| e.0);
        for (i, a) in list.iter().enumerate() {
            for b in list[i + 1..]
                .iter()
                .filter(|b| b.0 >= a.0 + gap && b.3 > a.3)
            {
                pairs += 1;
                if a.2 >= waited && b.2 >= waited {
                    waited_pairs += 1;
                }
                if a.1 > b.1 + slack {
                    inversions.push((group, a.0.duration_since(t0), b.0.duration_since(t0)));
                }
            }
        }
    }
    println!("deadline order: {pairs} pairs, {waited_pairs} where both waited >= 100 ms");
    assert!(
        waited_pairs >= 1_000,
        "too few waiting pairs ({waited_pairs}) for the order check to mean anything"
    );
    assert!(
        inversions.is_empty(),
        "{} pairs served against deadline order, e.g. {:?}",
        inversions.len(),
        &inversions[..inversions.len().min(5)]
    );

    // What the replicas say about it.
    for gate in &replicas {
        assert_eq!(metric(gate, "bcgate_quota_shared", &[]), 1.0);
        assert_eq!(
            metric(gate, "bcgate_rate_limited_total", &[("source", "upstream")]),
            0.0
        );
        for (name, _, _) in CLIENTS {
            assert!(
                metric(gate, "bcgate_quota_granted_total", &[("client", name)]) > 0.0,
                "no grants counted for {name}"
            );
        }
        let waits = metric(gate, "bcgate_quota_wait_seconds_count", &[("store", STORE)]);
        assert!(waits > 0.0, "no waits recorded");
        let (status, check) = ready_check(gate, "quota");
        assert_eq!(status, 200);
        let detail = check.expect("a quota check")["detail"].to_string();
        assert!(detail.contains("shared through Redis"), "{detail}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_deadline_the_caller_gets_bcgates_429_with_the_sdk_headers() {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    // 1 per 3 s: one at a window's start, nothing more in it.
    mock.enforce_quota(1, Duration::from_secs(3));
    let gate = start(&ca, &mock, Some("max_wait_ms = 0"));
    let key = CLIENTS[0].1;
    let first = get(&gate, key, "i=0").await;
    assert_eq!(first.status, 200, "{}", first.text());
    fresh_window(&first, Duration::from_millis(3_000)).await;
    let mut statuses = Vec::new();
    let mut refused = None;
    for i in 1..10 {
        let started = Instant::now();
        let r = get(&gate, key, &format!("i={i}")).await;
        statuses.push(r.status);
        if r.status == 429 {
            refused = Some((r, started.elapsed()));
        }
    }
    // The window's one, then 429s.
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(ok, 1, "{statuses:?}");
    assert!(statuses[ok..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(
        mock.stats().rate_limited,
        0,
        "the upstream was sent past its quota"
    );
    let (r, took) = refused.expect("a 429");
    let body = assert_problem(&r, 429, "quota_exhausted");
    // max_wait_ms = 0: served while there is budget now, refused at once
    // after (the window is seconds long; the bound leaves room for a busy CI).
    assert!(took < Duration::from_millis(500), "took {took:?}");
    let num = |h: &str| -> u64 {
        r.header(h)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{h} missing or not a number: {:?}", r.headers))
    };
    assert_eq!(num("x-rate-limit-requests-left"), 0);
    assert_eq!(num("x-rate-limit-requests-quota"), 1);
    assert_eq!(num("x-rate-limit-time-window-ms"), 3_000);
    let reset = num("x-rate-limit-time-reset-ms");
    assert!((1..=3_000).contains(&reset), "reset {reset}");
    assert_eq!(num("x-retry-after"), reset.div_ceil(1000));
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(STORE) && detail.contains("alpha"),
        "{detail}"
    );
    assert!(!r.text().contains(TOKEN) && !r.text().contains(key));
    assert_eq!(
        metric(&gate, "bcgate_rate_limited_total", &[("source", "bcgate")]),
        (9 - ok) as f64
    );
    // Without Redis, the local share is the whole quota.
    let (_, check) = ready_check(&gate, "quota");
    let detail = check.expect("quota check")["detail"].to_string();
    assert!(
        detail.contains("local: each store's whole quota"),
        "{detail}"
    );

    // A reload keeps what the governor knows: still refused here, and the
    // upstream sees neither a request nor a 429.
    let sent = mock.requests().len();
    gate.rewrite_config(&config(
        &mock.base_url(),
        "[quota]\nmax_wait_ms = 0\nretries = 2",
    ));
    gate.signal("HUP");
    assert!(gate.wait_for_log("config reloaded", Duration::from_secs(5)));
    let r = get(&gate, key, "after=reload").await;
    assert_problem(&r, 429, "quota_exhausted");
    assert_eq!(mock.requests().len(), sent);
    assert_eq!(mock.stats().rate_limited, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_a_replica_uses_its_local_share_and_says_so() {
    let Some(exe) = redis_or_skip() else { return };
    let mut redis = RedisServer::start(&exe);
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    let window = Duration::from_secs(2);
    let t0 = Instant::now();
    mock.enforce_quota(20, window);
    let quota = format!(
        "max_wait_ms = 1500\nreplicas = 2\nredis_url = \"{}\"",
        redis.url()
    );
    let gate = start(&ca, &mock, Some(&quota));
    let key = CLIENTS[1].1;
    let r = get(&gate, key, "shared=1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(metric(&gate, "bcgate_quota_shared", &[]), 1.0);
    let (status, check) = ready_check(&gate, "quota");
    assert_eq!(status, 200);
    let detail = check.expect("quota check")["detail"].to_string();
    assert!(detail.contains("shared through Redis"), "{detail}");

    redis.kill();
    // Three loops pushing through two whole windows of the mock: this
    // replica's half of 20 in each, whatever the demand.
    let first = (t0.elapsed().as_millis() / window.as_millis()) as u32 + 1;
    let end = t0 + window * (first + 2);
    let mut loops = Vec::new();
    for _ in 0..3 {
        let url = gate.url(PRODUCTS);
        loops.push(tokio::spawn(async move {
            let http = plain_client();
            while Instant::now() < end {
                let r = send(
                    http.get(format!("{url}?down=1"))
                        .header("X-Auth-Token", key),
                )
                .await;
                if r.status != 200 {
                    assert_problem(&r, 429, "quota_exhausted");
                }
            }
        }));
    }
    for l in loops {
        l.await.expect("loop");
    }
    let mut per_window: HashMap<u32, u32> = HashMap::new();
    for r in mock.requests().iter().filter(|r| r.uri.contains("down=1")) {
        let k = (r.received.duration_since(t0).as_millis() / window.as_millis()) as u32;
        *per_window.entry(k).or_default() += 1;
    }
    for k in [first, first + 1] {
        let n = per_window.get(&k).copied().unwrap_or(0);
        assert!(
            (9..=10).contains(&n),
            "window {k}: {n} upstream requests, not the local share of a 20-request window on 2 replicas: {per_window:?}"
        );
    }
    assert_eq!(mock.stats().rate_limited, 0);
    assert_eq!(metric(&gate, "bcgate_quota_shared", &[]), 0.0);
    let (status, check) = ready_check(&gate, "quota");
    assert_eq!(status, 200, "the fallback keeps the replica ready");
    let check = check.expect("quota check");
    assert_eq!(check["ok"], false, "a failure says so: {check}");
    assert_eq!(check["affects_ready"], false, "{check}");
    let detail = check["detail"].to_string();
    assert!(
        detail.contains("Redis unreachable") && detail.contains("1/2 of each store's quota"),
        "{detail}"
    );
    assert!(gate.logs().contains("Redis unreachable"));

    // Redis back: shared again after the backoff.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let _ = get(&gate, key, "back=1").await;
        if metric(&gate, "bcgate_quota_shared", &[]) == 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never shared again:\n{}",
            gate.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, check) = ready_check(&gate, "quota");
    let detail = check.expect("quota check")["detail"].to_string();
    assert!(detail.contains("shared through Redis"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_401_marks_the_token_unhealthy_until_a_request_succeeds() {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    // Token health is kept without [quota] too.
    let gate = start(&ca, &mock, None);
    let key = CLIENTS[2].1;
    let name = format!("store {STORE} token health");
    assert_eq!(ready_check(&gate, &name).1, None);
    assert_eq!(
        ready_check(&gate, "quota").1,
        None,
        "no [quota], no quota check"
    );
    for _ in 0..3 {
        let r = get(&gate, key, "mock_status=401").await;
        assert_eq!(r.status, 401);
    }
    let (status, check) = ready_check(&gate, &name);
    assert_eq!(status, 200, "a refused token does not take the replica out");
    let detail = check.expect("token health check")["detail"].to_string();
    assert!(detail.contains("401"), "{detail}");
    assert_eq!(
        metric(&gate, "bcgate_store_token_healthy", &[("store", STORE)]),
        0.0
    );
    gate.settle_logs();
    let warned = gate
        .logs()
        .matches("the upstream refused this store's token")
        .count();
    assert_eq!(warned, 1, "logged once, not per request");

    let r = get(&gate, key, "ok=1").await;
    assert_eq!(r.status, 200);
    assert_eq!(ready_check(&gate, &name).1, None);
    assert_eq!(
        metric(&gate, "bcgate_store_token_healthy", &[("store", STORE)]),
        1.0
    );
    gate.assert_logs_free_of(&[TOKEN, key]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_request_is_sent_again_after_an_upstream_429_and_a_post_is_not() {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    mock.enforce_quota(10, Duration::from_millis(1500));
    let gate = start(&ca, &mock, Some("max_wait_ms = 4000\nretries = 1"));
    let key = CLIENTS[0].1;
    let r = get(&gate, key, "learn=1").await;
    assert_eq!(r.status, 200);

    // Another API client of the store spends the rest of the window, unseen by bcgate.
    let spend = |tag: &'static str| {
        let (ca, mock) = (&ca, &mock);
        async move {
            let r = direct(ca, mock).await;
            fresh_window(&r, Duration::from_millis(1_000)).await;
            while direct(ca, mock).await.status != 429 {}
            assert!(mock.stats().rate_limited >= 1, "{tag}");
        }
    };
    spend("GET").await;
    let limited = mock.stats().rate_limited;
    let started = Instant::now();
    let r = get(&gate, key, "retry=get").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let sent: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|q| q.uri.contains("retry=get"))
        .collect();
    assert_eq!(sent.len(), 2, "the GET is sent twice");
    assert_eq!(mock.stats().rate_limited, limited + 1);
    // The first met the 429, the second (after the reset) did not.
    let gap = sent[1].received.duration_since(sent[0].received);
    println!(
        "GET answered after {:?}, resent after {gap:?}",
        started.elapsed()
    );
    assert_eq!(
        metric(&gate, "bcgate_quota_retries_total", &[("store", STORE)]),
        1.0
    );
    assert_eq!(
        metric(
            &gate,
            "bcgate_rate_limited_total",
            &[("source", "upstream")]
        ),
        1.0
    );

    spend("POST").await;
    let limited = mock.stats().rate_limited;
    let r = send(
        plain_client()
            .post(gate.url(&format!("{PRODUCTS}?retry=post")))
            .header("X-Auth-Token", key)
            .header("content-type", "application/json")
            .body(r#"{"name":"x"}"#),
    )
    .await;
    assert_eq!(
        r.status,
        429,
        "the upstream's 429, passed through: {}",
        r.text()
    );
    assert_eq!(r.json()["title"], "You have exceeded your request quota.");
    assert!(r.header("x-retry-after").is_some());
    let posts = mock
        .requests()
        .into_iter()
        .filter(|q| q.uri.contains("retry=post"))
        .count();
    assert_eq!(posts, 1, "a POST is never sent twice");
    assert_eq!(mock.stats().rate_limited, limited + 1);
    assert_eq!(
        metric(&gate, "bcgate_quota_retries_total", &[("store", STORE)]),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_client_gets_its_share_of_the_shared_window_and_no_more() {
    let Some(exe) = redis_or_skip() else { return };
    let redis = RedisServer::start(&exe);
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    // 40 per 2 s: a grant every 50 ms, within each request's wait.
    mock.enforce_quota(40, Duration::from_secs(2));
    let quota = format!(
        "[quota]\nmax_wait_ms = 100\nredis_url = \"{}\"",
        redis.url()
    );
    let toml = config(&mock.base_url(), &quota).replace(
        "name = \"alpha\"\n",
        "name = \"alpha\"\nquota_max_share = 0.25\n",
    );
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    let gate = Bcgate::start_in(dir, &toml, &[("BC_TOKEN_Q", TOKEN)]);
    let (alpha, beta) = (CLIENTS[0].1, CLIENTS[1].1);
    let r = get(&gate, beta, "warm=1").await;
    assert_eq!(r.status, 200, "{}", r.text());
    fresh_window(&r, Duration::from_secs(3)).await;
    let mut served = 0;
    for i in 0..15 {
        let r = get(&gate, alpha, &format!("cap={i}")).await;
        match r.status {
            200 => served += 1,
            _ => {
                assert_problem(&r, 429, "quota_exhausted");
            }
        }
    }
    assert_eq!(served, 10, "a quarter of a 40-request window");
    // The rest of the window is there for the others.
    for i in 0..5 {
        let r = get(&gate, beta, &format!("other={i}")).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(mock.stats().rate_limited, 0);
    // The window is Redis's: its state and the per-client count are there.
    let mut c = redis.conn().expect("redis");
    let state: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("bcgate:quota:{{{STORE}}}:w"))
        .query(&mut c)
        .expect("HGETALL");
    assert_eq!(state.get("q").map(String::as_str), Some("40"), "{state:?}");
    let per_client: HashMap<String, u64> = redis::cmd("HGETALL")
        .arg(format!("bcgate:quota:{{{STORE}}}:c"))
        .query(&mut c)
        .expect("HGETALL");
    assert_eq!(per_client.get("alpha"), Some(&10), "{per_client:?}");
    assert_eq!(per_client.get("beta"), Some(&5), "{per_client:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_without_rate_limit_headers_holds_the_store_for_its_retry_after() {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(STORE, TOKEN)]);
    // Long enough for a paced grant (one per 200 ms of the mock's 150 per
    // 30 s), far shorter than the hold.
    let gate = start(&ca, &mock, Some("max_wait_ms = 400"));
    let key = CLIENTS[0].1;
    assert_eq!(get(&gate, key, "warm=1").await.status, 200);
    // BigCommerce's platform back-pressure: a 429 with only X-Retry-After.
    let r = get(
        &gate,
        key,
        "mock_status=429&mock_no_ratelimit=1&mock_retry_after=1",
    )
    .await;
    assert_eq!(
        r.status, 429,
        "passed through (the wait is past the deadline)"
    );
    assert!(r.header("x-rate-limit-requests-left").is_none());
    let held = Instant::now();
    let sent = mock.requests().len();
    let r = get(&gate, key, "held=1").await;
    assert_problem(&r, 429, "quota_exhausted");
    assert_eq!(mock.requests().len(), sent, "held back, not sent");
    tokio::time::sleep(Duration::from_millis(1_050).saturating_sub(held.elapsed())).await;
    let r = get(&gate, key, "after=1").await;
    assert_eq!(
        r.status,
        200,
        "served again after X-Retry-After: {}",
        r.text()
    );
}
