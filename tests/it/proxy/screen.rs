//! The screen before any decision: path tricks, smuggling shapes,
//! oversized headers.

use super::*;

// ---------------------------------------------------------------------------
// Path tricks, smuggling, limits

fn raw_get(target: &str, key: &str) -> Vec<u8> {
    format!(
        "GET {target} HTTP/1.1\r\nHost: api.bigcommerce.com\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn path_tricks_are_rejected_before_any_decision() {
    let fx = fixture();
    for target in [
        "/stores/abc123/v3/catalog/../orders",
        "/stores/abc123/v3/catalog/products/../../../v2/orders",
        "/stores/abc123/v3/catalog/%2e%2e/orders",
        "/stores/abc123/v3/catalog/%2E%2E/orders",
        "/stores/abc123/v3/catalog%2fproducts",
        "/stores/abc123//v3/catalog/products",
        "/stores/def456/../abc123/v3/catalog/products",
        "/stores/abc123/v3/catalog/products;jsessionid=1",
        "/stores/abc123/v3/Catalog/Products",
        "/stores/abc123/./v3/catalog/products",
        "https://evil.example/stores/abc123/v3/catalog/products",
        "http://127.0.0.1:1/stores/abc123/v3/catalog/products",
    ] {
        let resp = raw_request(fx.gate.addr, &raw_get(target, READER.key));
        assert_eq!(resp.status, 400, "{target}: {}", resp.body_text());
        check_problem_body(&resp.json(), 400, "bad_request");
    }
    for method in ["TRACE", "CONNECT"] {
        let target = if method == "CONNECT" {
            "api.bigcommerce.com:443"
        } else {
            "/stores/abc123/v3/catalog/products"
        };
        let req = format!(
            "{method} {target} HTTP/1.1\r\nHost: api.bigcommerce.com\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            ADMIN.key
        );
        let resp = raw_request(fx.gate.addr, req.as_bytes());
        assert_eq!(resp.status, 400, "{method}: {}", resp.body_text());
    }
    fx.assert_not_forwarded("path tricks");
}

#[tokio::test]
async fn smuggling_shapes_are_rejected() {
    let fx = fixture();
    let head = |extra: &str| {
        format!(
            "POST /stores/abc123/v3/catalog/products HTTP/1.1\r\nHost: api.bigcommerce.com\r\n\
             X-Auth-Token: {}\r\nContent-Type: application/json\r\n{extra}Connection: close\r\n\r\n",
            ADMIN.key
        )
    };
    let mut failures = Vec::new();
    for (what, req) in [
        (
            "CL+TE",
            head("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n") + "2\r\n{}\r\n0\r\n\r\n",
        ),
        (
            "TE+CL",
            head("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n") + "2\r\n{}\r\n0\r\n\r\n",
        ),
        (
            "equal Content-Lengths",
            head("Content-Length: 2\r\nContent-Length: 2\r\n") + "{}",
        ),
        (
            "conflicting Content-Length",
            head("Content-Length: 2\r\nContent-Length: 3\r\n") + "{} ",
        ),
        (
            "unknown Transfer-Encoding",
            head("Transfer-Encoding: xchunked\r\n") + "2\r\n{}\r\n0\r\n\r\n",
        ),
        (
            "obs-fold",
            head("X-Folded: a\r\n  b\r\nContent-Length: 2\r\n") + "{}",
        ),
    ] {
        // Check every shape before failing, so one report lists them all.
        match raw_exchange(fx.gate.addr, req.as_bytes(), false) {
            Ok(resp) if resp.status == 400 && resp.json()["code"] == "bad_request" => {}
            Ok(resp) => failures.push(format!("{what}: {} {}", resp.status, resp.body_text())),
            Err(e) => failures.push(format!("{what}: no response ({e})")),
        }
        let reached: Vec<String> = fx
            .mock
            .requests()
            .iter()
            .map(|r| {
                format!(
                    "{what}: reached the upstream as {} {} CL={:?} TE={:?} body={:?}",
                    r.method,
                    r.uri,
                    r.header("content-length"),
                    r.header("transfer-encoding"),
                    String::from_utf8_lossy(&r.body)
                )
            })
            .collect();
        failures.extend(reached);
        fx.mock.clear();
    }
    assert!(
        failures.is_empty(),
        "smuggling shapes not rejected:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn oversized_headers_are_431() {
    let fx = fixture();
    let huge = format!(
        "GET /stores/abc123/v3/catalog/products HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {}\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        ADMIN.key,
        "a".repeat(1024 * 1024)
    );
    // Host, X-Auth-Token and Connection plus `extra` fields; the limit is 100.
    let with_fields = |extra: usize| {
        let fields: String = (0..extra).map(|i| format!("X-H{i}: v\r\n")).collect();
        format!(
            "GET /stores/abc123/v3/catalog/products HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {}\r\n{fields}Connection: close\r\n\r\n",
            ADMIN.key
        )
    };
    let at_limit = raw_exchange(fx.gate.addr, with_fields(97).as_bytes(), false).expect("response");
    assert_eq!(at_limit.status, 200, "100 fields: {}", at_limit.body_text());
    fx.mock.clear();
    for (what, req) in [
        ("one huge header", huge),
        ("101 fields", with_fields(98)),
        ("1000 fields", with_fields(997)),
    ] {
        match raw_exchange(fx.gate.addr, req.as_bytes(), false) {
            Ok(resp) => {
                assert_eq!(resp.status, 431, "{what}: {}", resp.body_text());
                check_problem_body(&resp.json(), 431, "headers_too_large");
            }
            Err(e) => panic!("{what}: no response ({e})"),
        }
    }
    fx.assert_not_forwarded("oversized headers");
}
