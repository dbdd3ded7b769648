//! Smoke test of the mock BigCommerce alone, over real TLS. Needs no bcgate.

use crate::support;

use std::time::{Duration, Instant};

use support::mock::{BC_ERROR_TYPE, QUOTA, RETRY_AFTER, WINDOW_MS, pattern};
use support::{MockBigCommerce, TestCa, client, client_h1, noise, send, try_send};

const HASH_A: &str = "abc123";
const TOKEN_A: &str = "mock-token-aaaa";
const HASH_B: &str = "def456";
const TOKEN_B: &str = "mock-token-bbbb";

fn start() -> (TestCa, MockBigCommerce) {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start(&ca, &[(HASH_A, TOKEN_A), (HASH_B, TOKEN_B)]);
    (ca, mock)
}

#[tokio::test]
async fn ok_response_shape_and_recording() {
    let (ca, mock) = start();
    let http = client(&ca);
    let resp = send(
        http.get(mock.url("/stores/abc123/v3/catalog/products?limit=2"))
            .header("x-auth-token", TOKEN_A)
            .header("x-dup", "one")
            .header("x-dup", "two"),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.version, http::Version::HTTP_2, "ALPN should pick h2");
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let body = resp.json();
    assert_eq!(body["data"]["method"], "GET");
    assert_eq!(body["data"]["path"], "/stores/abc123/v3/catalog/products");
    assert!(body["meta"].is_object());

    let rec = mock.only_request();
    assert_eq!(rec.method, "GET");
    assert_eq!(rec.uri, "/stores/abc123/v3/catalog/products?limit=2");
    assert_eq!(rec.query.as_deref(), Some("limit=2"));
    assert_eq!(rec.store(), Some(HASH_A));
    assert_eq!(rec.tokens(), vec![TOKEN_A.to_owned()]);
    assert_eq!(rec.header_all("x-dup"), vec!["one", "two"]);
    assert_eq!(rec.host().as_deref(), Some(mock.addr.to_string().as_str()));
    assert_eq!(rec.version, http::Version::HTTP_2);

    mock.clear();
    assert!(mock.requests().is_empty());

    // HTTP/1.1 too, and graphql is routable.
    let h1 = client_h1(&ca);
    let resp = send(
        h1.post(mock.url("/stores/def456/graphql"))
            .header("x-auth-token", TOKEN_B)
            .body(r#"{"query":"{ store { name } }"}"#),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.version, http::Version::HTTP_11);
    let rec = mock.only_request();
    assert_eq!(rec.version, http::Version::HTTP_11);
    assert_eq!(rec.body, br#"{"query":"{ store { name } }"}"#);
    assert!(rec.body_complete);
    assert_eq!(rec.host().as_deref(), Some(mock.addr.to_string().as_str()));
}

#[tokio::test]
async fn auth_errors_and_unknown_paths() {
    let (ca, mock) = start();
    let http = client(&ca);
    let check_401 = |resp: &support::Resp| {
        assert_eq!(resp.status, 401, "{}", resp.text());
        let body = resp.json();
        assert_eq!(body["status"], 401);
        assert_eq!(body["type"], BC_ERROR_TYPE);
        assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(body["errors"].is_object());
        assert!(resp.header("x-rate-limit-requests-left").is_some());
    };
    // missing
    check_401(&send(http.get(mock.url("/stores/abc123/v3/catalog/products"))).await);
    // wrong
    check_401(
        &send(
            http.get(mock.url("/stores/abc123/v3/catalog/products"))
                .header("x-auth-token", "nope"),
        )
        .await,
    );
    // another store's token
    check_401(
        &send(
            http.get(mock.url("/stores/abc123/v3/catalog/products"))
                .header("x-auth-token", TOKEN_B),
        )
        .await,
    );
    // two tokens, even if one is right
    check_401(
        &send(
            http.get(mock.url("/stores/abc123/v3/catalog/products"))
                .header("x-auth-token", TOKEN_A)
                .header("x-auth-token", TOKEN_A),
        )
        .await,
    );
    for path in [
        "/",
        "/v3/catalog/products",
        "/stores/abc123",
        "/stores/abc123/v4/x",
        "/stores/zzz999/v3/catalog/products",
    ] {
        let resp = send(http.get(mock.url(path)).header("x-auth-token", TOKEN_A)).await;
        assert_eq!(resp.status, 404, "{path}: {}", resp.text());
        assert_eq!(resp.json()["status"], 404);
        assert!(resp.header("x-rate-limit-requests-quota").is_some());
    }
    assert_eq!(mock.requests().len(), 9, "every request is recorded");
}

#[tokio::test]
async fn rate_limit_headers_count_down_per_store() {
    let (ca, mock) = start();
    let http = client(&ca);
    let get = |hash: &str, token: &str| {
        http.get(mock.url(&format!("/stores/{hash}/v2/orders")))
            .header("x-auth-token", token.to_owned())
    };
    let mut lefts = Vec::new();
    for _ in 0..3 {
        let resp = send(get(HASH_A, TOKEN_A)).await;
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.header("x-rate-limit-requests-quota"),
            Some(QUOTA.to_string().as_str())
        );
        assert_eq!(
            resp.header("x-rate-limit-time-window-ms"),
            Some(WINDOW_MS.to_string().as_str())
        );
        let reset: u64 = resp
            .header("x-rate-limit-time-reset-ms")
            .expect("reset header")
            .parse()
            .expect("reset is a number");
        assert!(reset <= WINDOW_MS);
        lefts.push(
            resp.header("x-rate-limit-requests-left")
                .expect("left header")
                .parse::<u32>()
                .expect("left is a number"),
        );
    }
    assert_eq!(lefts, vec![QUOTA - 1, QUOTA - 2, QUOTA - 3]);
    // Another store has its own window.
    let resp = send(get(HASH_B, TOKEN_B)).await;
    assert_eq!(
        resp.header("x-rate-limit-requests-left"),
        Some((QUOTA - 1).to_string().as_str())
    );
}

#[tokio::test]
async fn behaviours_by_query_parameter() {
    let (ca, mock) = start();
    let http = client(&ca);
    let url = |q: &str| mock.url(&format!("/stores/abc123/v3/catalog/products?{q}"));

    // mock_status
    let resp = send(
        http.get(url("mock_status=503"))
            .header("x-auth-token", TOKEN_A),
    )
    .await;
    assert_eq!(resp.status, 503);
    assert_eq!(resp.json()["status"], 503);
    assert_eq!(resp.json()["type"], BC_ERROR_TYPE);
    let resp = send(
        http.get(url("mock_status=429"))
            .header("x-auth-token", TOKEN_A),
    )
    .await;
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("x-retry-after"), Some(RETRY_AFTER));
    let resp = send(
        http.delete(url("mock_status=204"))
            .header("x-auth-token", TOKEN_A),
    )
    .await;
    assert_eq!(resp.status, 204);
    assert!(resp.body.is_empty());

    // mock_redirect (percent-encoded target)
    let resp = send(
        http.get(url(
            "mock_redirect=https%3A%2F%2Felsewhere.example%2Fx%3Fa%3D1",
        ))
        .header("x-auth-token", TOKEN_A),
    )
    .await;
    assert_eq!(resp.status, 302);
    assert_eq!(
        resp.header("location"),
        Some("https://elsewhere.example/x?a=1")
    );

    // A value that cannot be a header is a 400, not a panic in the mock.
    for q in [
        "mock_redirect=%0Ahttps://x",
        "mock_status=429&mock_retry_after=%0D2",
    ] {
        let resp = send(http.get(url(q)).header("x-auth-token", TOKEN_A)).await;
        assert_eq!(resp.status, 400, "{q}: {}", resp.text());
        assert_eq!(resp.json()["type"], BC_ERROR_TYPE, "{q}");
    }
    // A piece size near usize::MAX does not overflow: the 3 bytes come in one piece.
    let resp = send(
        http.get(url(
            "mock_trickle_ms=1&mock_bytes=3&mock_chunk=18446744073709551615",
        ))
        .header("x-auth-token", TOKEN_A),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert!(resp.body.as_ref() == pattern(3).as_slice());

    // mock_echo, byte-exact, with the request's content type, both protocols
    let payload = noise(3 * 1024 * 1024 + 17, 7);
    for http in [client(&ca), client_h1(&ca)] {
        mock.clear();
        let resp = send(
            http.put(url("mock_echo=1"))
                .header("x-auth-token", TOKEN_A)
                .header("content-type", "application/x-test")
                .body(payload.clone()),
        )
        .await;
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("content-type"), Some("application/x-test"));
        assert!(resp.body.as_ref() == payload.as_slice(), "echo differs");
        let rec = mock.only_request();
        assert!(rec.body_complete);
        assert!(rec.body == payload, "recorded body differs");
    }

    // mock_bytes
    let resp = send(
        http.get(url("mock_bytes=200001"))
            .header("x-auth-token", TOKEN_A),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), 200_001);
    assert!(resp.body.as_ref() == pattern(200_001).as_slice());

    // mock_delay_ms
    let started = Instant::now();
    let resp = send(
        http.get(url("mock_delay_ms=400"))
            .header("x-auth-token", TOKEN_A),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(400));

    // The delay is after auth: a bad token is refused at once.
    let started = Instant::now();
    let resp = send(
        http.get(url("mock_delay_ms=5000"))
            .header("x-auth-token", "bad"),
    )
    .await;
    assert_eq!(resp.status, 401);
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn untrusted_ca_and_nothing_listening() {
    let (_ca, mock) = start();
    let other = TestCa::new();
    let err = try_send(
        client(&other)
            .get(mock.url("/stores/abc123/v3/catalog/products"))
            .header("x-auth-token", TOKEN_A),
    )
    .await
    .expect_err("a client of another CA must not trust the mock");
    assert!(!err.is_empty());
    assert!(mock.requests().is_empty());

    let down = support::unused_addr();
    let err = try_send(client(&other).get(format!("https://{down}/stores/abc123/v3/x")))
        .await
        .expect_err("nothing listens there");
    assert!(!err.is_empty());
}

#[tokio::test]
async fn hop_by_hop_response_headers_over_http1() {
    let ca = TestCa::new();
    let mock = MockBigCommerce::start_h1(&ca, &[(HASH_A, TOKEN_A)]);
    let resp = send(
        client(&ca)
            .get(mock.url("/stores/abc123/v3/catalog/products?mock_hop=1"))
            .header("x-auth-token", TOKEN_A),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.version, http::Version::HTTP_11, "h1-only mock");
    assert_eq!(resp.header("x-mock-hop"), Some("hop-value"));
    assert_eq!(resp.header("x-mock-kept"), Some("kept-value"));
    assert!(resp.header("keep-alive").is_some());
    assert_eq!(mock.only_request().version, http::Version::HTTP_11);
}
