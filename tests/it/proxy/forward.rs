//! Forward: streaming, upstream failures, redirects, body limits and
//! stalls, rate-limit headers, request ids.

use super::*;

// ---------------------------------------------------------------------------
// Forward

#[tokio::test]
async fn five_mib_bodies_stream_byte_exact_both_ways() {
    let fx = fixture();
    let payload = noise(5 * 1024 * 1024 + 3, 42);
    let path = "/stores/abc123/v3/catalog/products?mock_echo=1";
    for (what, http) in [("h1", plain_client()), ("h2c", h2c_client())] {
        let resp = send(
            http.post(fx.gate.url(path))
                .header("x-auth-token", ADMIN.key)
                .header("content-type", "application/octet-stream")
                .body(payload.clone()),
        )
        .await;
        assert_eq!(resp.status, 200, "{what}: {}", resp.text());
        assert_eq!(
            resp.header("content-type"),
            Some("application/octet-stream")
        );
        assert_eq!(resp.body.len(), payload.len(), "{what}: echoed length");
        assert!(
            resp.body.as_ref() == payload.as_slice(),
            "{what}: echo differs"
        );
        let rec = fx.take_one();
        assert!(rec.body_complete, "{what}");
        assert!(rec.body == payload, "{what}: upstream body differs");
    }
    // A streamed (chunked) request body.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        payload.chunks(256 * 1024).map(|c| Ok(c.to_vec())).collect();
    let resp = send(
        fx.req(
            Method::PUT,
            "/stores/abc123/v3/catalog/products/1?mock_echo=1",
            &ADMIN,
        )
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        ))),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        resp.body.as_ref() == payload.as_slice(),
        "chunked echo differs"
    );
    assert!(fx.take_one().body == payload);

    // A large response body.
    let n = 6 * 1024 * 1024 + 1;
    let resp = fx
        .get(
            &format!("/stores/abc123/v3/catalog/products?mock_bytes={n}"),
            &ADMIN,
        )
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), n);
    assert!(
        resp.body.as_ref() == pattern(n).as_slice(),
        "mock_bytes differs"
    );
}

#[tokio::test]
async fn upstream_down_is_502() {
    let down = unused_addr();
    let fx = fixture_with(Opts {
        upstream: Some(format!("https://{down}")),
        ..Opts::default()
    });
    let started = Instant::now();
    let resp = fx.get("/stores/abc123/v3/catalog/products", &ADMIN).await;
    assert_problem(&resp, 502, "upstream_unavailable");
    assert_no_secret_in(&resp, "502");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn upstream_tls_failure_is_502() {
    // bcgate trusts another CA than the one that signed the mock's certificate.
    let fx = fixture_with(Opts {
        upstream_ca: Some(TestCa::new()),
        ..Opts::default()
    });
    let resp = fx.get("/stores/abc123/v3/catalog/products", &ADMIN).await;
    assert_problem(&resp, 502, "upstream_unavailable");
    fx.assert_not_forwarded("TLS failure");
}

#[tokio::test]
async fn slow_upstream_is_504() {
    let fx = fixture_with(Opts {
        request_timeout_ms: 1_500,
        ..Opts::default()
    });
    let started = Instant::now();
    let resp = fx
        .get(
            "/stores/abc123/v3/catalog/products?mock_delay_ms=8000",
            &ADMIN,
        )
        .await;
    assert_problem(&resp, 504, "upstream_timeout");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1_400) && took < Duration::from_secs(7),
        "timed out after {took:?}"
    );
    // A fast one through the same process still works.
    let resp = fx
        .get(
            "/stores/abc123/v3/catalog/products?mock_delay_ms=100",
            &ADMIN,
        )
        .await;
    assert_ok(&resp, "fast request after a timeout");
}

#[tokio::test]
async fn redirects_are_rewritten_on_host_and_refused_off_host() {
    let fx = fixture();
    let enc = |s: &str| {
        s.replace('%', "%25")
            .replace(':', "%3A")
            .replace('/', "%2F")
            .replace('?', "%3F")
            .replace('=', "%3D")
            .replace('&', "%26")
    };
    // Off-host: answered 502, Location never shown.
    for target in [
        "https://evil.example/steal".to_owned(),
        format!(
            "https://127.0.0.1:{}/stores/abc123/v3/x",
            unused_addr().port()
        ),
        "//evil.example/stores/abc123/v3/x".to_owned(),
    ] {
        let path = format!(
            "/stores/abc123/v3/catalog/products?mock_redirect={}",
            enc(&target)
        );
        let resp = fx.get(&path, &ADMIN).await;
        let body = assert_problem(&resp, 502, "upstream_unavailable");
        assert!(resp.header("location").is_none(), "{target}");
        assert!(!body.to_string().contains("evil.example/steal"));
    }
    fx.mock.clear();

    // On-host, absolute and relative: rewritten to a bcgate path with the real hash.
    for (via, target, expected) in [
        (
            "/stores/abc123",
            fx.mock.url("/stores/abc123/v3/catalog/products/9?page=2"),
            "/stores/abc123/v3/catalog/products/9?page=2",
        ),
        (
            "/stores/eu",
            fx.mock.url("/stores/abc123/v3/catalog/products/10"),
            "/stores/abc123/v3/catalog/products/10",
        ),
        (
            "/stores/abc123",
            "/stores/abc123/v3/catalog/products/11".to_owned(),
            "/stores/abc123/v3/catalog/products/11",
        ),
    ] {
        let path = format!("{via}/v3/catalog/products?mock_redirect={}", enc(&target));
        let resp = fx.get(&path, &ADMIN).await;
        assert_eq!(resp.status, 302, "{target}: {}", resp.text());
        let location = resp.header("location").unwrap_or_default();
        assert_eq!(location, expected, "rewritten Location for {target}");
    }
    // No redirect was followed: exactly one upstream request per call.
    assert_eq!(fx.mock.requests().len(), 3);
}

#[tokio::test]
async fn bodies_over_max_body_bytes_are_413() {
    let limit: usize = 1024 * 1024;
    let fx = fixture_with(Opts {
        max_body_bytes: limit as u64,
        ..Opts::default()
    });
    let big = noise(2 * limit, 9);
    let path = "/stores/abc123/v3/catalog/products?mock_echo=1";

    // With Content-Length.
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: api.bigcommerce.com\r\nX-Auth-Token: {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        ADMIN.key,
        big.len()
    )
    .into_bytes();
    req.extend_from_slice(&big);
    let resp = raw_request(fx.gate.addr, &req);
    assert_eq!(resp.status, 413, "{}", resp.body_text());
    check_problem_body(&resp.json(), 413, "body_too_large");
    fx.assert_not_forwarded("Content-Length over the limit");

    // Chunked, no Content-Length.
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: api.bigcommerce.com\r\nX-Auth-Token: {}\r\n\
         Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        ADMIN.key
    )
    .into_bytes();
    for chunk in big.chunks(64 * 1024) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let resp = raw_request(fx.gate.addr, &req);
    assert_eq!(resp.status, 413, "{}", resp.body_text());
    check_problem_body(&resp.json(), 413, "body_too_large");
    // The upstream may have seen the start of a streamed body, never all of it.
    for rec in fx.mock.requests() {
        assert!(
            !(rec.body_complete && rec.body.len() > limit),
            "a body over the limit reached the upstream whole"
        );
    }
    fx.mock.clear();

    // Under the limit is fine, both ways.
    let ok = noise(limit / 2, 10);
    let resp = send(
        fx.req(Method::POST, path, &ADMIN)
            .header("content-type", "application/octet-stream")
            .body(ok.clone()),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.body.as_ref() == ok.as_slice());
}

#[tokio::test]
async fn rate_limit_headers_and_upstream_errors_pass_through() {
    let fx = fixture();
    let mut lefts = Vec::new();
    for _ in 0..2 {
        let resp = fx.get("/stores/abc123/v3/catalog/products", &ADMIN).await;
        assert_ok(&resp, "rate limit");
        assert_eq!(
            resp.header("x-rate-limit-requests-quota"),
            Some(QUOTA.to_string().as_str())
        );
        assert_eq!(
            resp.header("x-rate-limit-time-window-ms"),
            Some(WINDOW_MS.to_string().as_str())
        );
        assert!(resp.header("x-rate-limit-time-reset-ms").is_some());
        lefts.push(
            resp.header("x-rate-limit-requests-left")
                .expect("X-Rate-Limit-Requests-Left passes through")
                .parse::<u32>()
                .expect("number"),
        );
    }
    assert!(lefts[1] < lefts[0], "{lefts:?}");

    let resp = fx
        .get("/stores/abc123/v3/catalog/products?mock_status=429", &ADMIN)
        .await;
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("x-retry-after"), Some(RETRY_AFTER));
    assert!(resp.header("x-rate-limit-requests-left").is_some());
    assert_eq!(resp.json()["type"], BC_ERROR_TYPE, "upstream's own body");

    for status in [404u16, 422, 500, 503] {
        let resp = fx
            .get(
                &format!("/stores/abc123/v3/catalog/products?mock_status={status}"),
                &ADMIN,
            )
            .await;
        assert_eq!(resp.status, status);
        assert_eq!(resp.json()["type"], BC_ERROR_TYPE, "upstream's own body");
        assert!(resp.header("x-request-id").is_some());
    }
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let fx = fixture();
    let id = "req-0123456789abcdef";
    let resp = send(
        fx.req(Method::GET, "/stores/abc123/v3/catalog/products", &ADMIN)
            .header("x-request-id", id),
    )
    .await;
    assert_ok(&resp, "request id");
    assert_eq!(resp.header("x-request-id"), Some(id));
    assert!(
        fx.gate.wait_for_log(id, Duration::from_secs(5)),
        "the request id appears in the access log:\n{}",
        fx.gate.logs()
    );

    let resp = send(
        fx.http
            .get(fx.gate.url("/stores/abc123/v3/catalog/products"))
            .header("x-request-id", id),
    )
    .await;
    let body = assert_problem(&resp, 401, "unauthenticated");
    assert_eq!(body["request_id"], id);

    let mut seen = Vec::new();
    for bad in [None, Some("has spaces in it"), Some(&*"x".repeat(500))] {
        let mut req = fx.req(Method::GET, "/stores/abc123/v3/catalog/products", &ADMIN);
        if let Some(bad) = bad {
            req = req.header("x-request-id", bad);
        }
        let resp = send(req).await;
        let got = resp
            .header("x-request-id")
            .expect("every response has X-Request-Id")
            .to_owned();
        assert!(!got.is_empty());
        if let Some(bad) = bad {
            assert_ne!(got, bad, "an invalid request id is replaced");
        }
        seen.push(got);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "generated ids are distinct");
}

#[tokio::test]
async fn body_limit_holds_over_h2c() {
    let limit: usize = 256 * 1024;
    let fx = fixture_with(Opts {
        max_body_bytes: limit as u64,
        ..Opts::default()
    });
    let big = noise(4 * limit, 11);
    let url = fx
        .gate
        .url("/stores/abc123/v3/catalog/products?mock_echo=1");
    // Known length
    let resp = send(
        h2c_client()
            .post(&url)
            .header("x-auth-token", ADMIN.key)
            .header("content-type", "application/octet-stream")
            .body(big.clone()),
    )
    .await;
    assert_problem(&resp, 413, "body_too_large");
    // Streamed, no length
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
    match try_send(
        h2c_client()
            .post(&url)
            .header("x-auth-token", ADMIN.key)
            .header("content-type", "application/octet-stream")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            ))),
    )
    .await
    {
        Ok(resp) => {
            assert_problem(&resp, 413, "body_too_large");
        }
        Err(e) => panic!("streamed over-limit body over h2c: no 413 response ({e})"),
    }
    for rec in fx.mock.requests() {
        assert!(
            !(rec.body_complete && rec.body.len() > limit),
            "a body over the limit reached the upstream whole"
        );
    }
}

#[tokio::test]
async fn a_stalled_body_is_408_for_streamed_and_inspected_bodies() {
    let fx = fixture_with(Opts {
        env: vec![("BCGATE__SERVER__BODY_READ_TIMEOUT_MS", "500".into())],
        ..Opts::default()
    });
    for path in [
        // Streamed straight through to the upstream.
        "/stores/abc123/v3/catalog/products",
        // Read whole first, for the GraphQL policy.
        "/stores/abc123/graphql",
    ] {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: api.bigcommerce.com\r\nX-Auth-Token: {}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a\"",
            ADMIN.key
        );
        let started = Instant::now();
        let resp = raw_exchange(fx.gate.addr, req.as_bytes(), false).expect("a response");
        assert_eq!(resp.status, 408, "{path}: {}", resp.body_text());
        check_problem_body(&resp.json(), 408, "body_timeout");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path}: answered after {:?}",
            started.elapsed()
        );
    }
    // bcgate keeps serving.
    let resp = fx.get("/stores/abc123/v3/catalog/products", &READER).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
}
