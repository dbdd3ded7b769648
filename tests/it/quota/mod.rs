//! The store quota governor (`[quota]`) against the mock BigCommerce
//! enforcing a real quota (BigCommerce's 150 requests per window, the
//! window scaled down to 1.5 s): two bcgate replicas sharing one real
//! `redis-server`, three clients weighted 1/1/2 pushing as fast as they can
//! (no upstream 429, shares by weight, each client's waiting requests served
//! in deadline order); bcgate's own 429 and its headers; Redis going down
//! (local share) and back; a refused token (401) and its recovery; the retry
//! of an idempotent request after an upstream 429, and no retry of a POST;
//! shares by weight with few and with mixed workers per client (30 per
//! 1.5 s), a client alone taking every window, a light client served at
//! once and leaving the rest, none of them meeting an upstream 429;
//! a client capped by `quota_max_share` in the shared (Redis) window; a 429
//! without rate-limit headers (platform back-pressure) holding the store;
//! the store's B2B Edition budget apart from its api budget, shared through
//! Redis too.
//!
//! The Redis tests are skipped without `redis-server`, except under
//! `CI=true` (see `tests/support/redis.rs`).

mod b2b;
mod fairness;
mod shared;

use crate::support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::redis::{RedisServer, redis_or_skip};
use support::{
    Bcgate, MockBigCommerce, TestCa, assert_problem, key_sha256, plain_client, ready_check, send,
};

const STORE: &str = "q150store";
const TOKEN: &str = "bc-store-token-QUOTA-8Jd3Lq0Vx2";
const PRODUCTS: &str = "/stores/q150store/v3/catalog/products";

/// (name, key, weight)
const CLIENTS: [(&str, &str, u32); 3] = [
    ("alpha", "bcg-key-quota-alpha-4Rt8Wq", 1),
    ("beta", "bcg-key-quota-beta-7Yp2Xn", 1),
    ("gamma", "bcg-key-quota-gamma-1Ks5Vb", 2),
];

fn config(mock_url: &str, quota: &str) -> String {
    let mut clients = String::new();
    for (name, key, weight) in CLIENTS {
        clients.push_str(&format!(
            "\n[[clients]]\nname = \"{name}\"\nkey_sha256 = \"{}\"\nstores = [\"{STORE}\"]\n\
             scopes = [\"store_v2_products\"]\nquota_weight = {weight}\n",
            key_sha256(key)
        ));
    }
    let base = support::base_config(mock_url, 5000);
    format!(
        r#"
{base}
[[stores]]
hash = "{STORE}"
token_env = "BC_TOKEN_Q"

{quota}
{clients}
"#
    )
}

/// bcgate with `[quota]` and these keys, or without `[quota]` (`None`).
fn start(ca: &TestCa, mock: &MockBigCommerce, quota: Option<&str>) -> Bcgate {
    let dir = support::process::temp_dir();
    ca.write_to(dir.path());
    let quota = match quota {
        None => String::new(),
        Some(keys) => format!("[quota]\n{keys}"),
    };
    Bcgate::start_in(
        dir,
        &config(&mock.base_url(), &quota),
        &[("BC_TOKEN_Q", TOKEN)],
    )
}

fn admin_get(gate: &Bcgate, path: &str) -> (u16, String) {
    let addr = gate.admin_addr().expect("admin address printed");
    let req = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    let resp = support::raw_request(addr, req.as_bytes());
    (resp.status, resp.body_text())
}

/// The sum of the samples of `name` whose labels include all of `labels`.
fn metric(gate: &Bcgate, name: &str, labels: &[(&str, &str)]) -> f64 {
    let (status, text) = admin_get(gate, "/metrics");
    assert_eq!(status, 200, "{text}");
    let mut total = 0.0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (n, label_text) = series.split_once('{').unwrap_or((series, ""));
        if n == name
            && labels
                .iter()
                .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")))
        {
            total += value.parse::<f64>().unwrap_or(0.0);
        }
    }
    total
}

async fn get(gate: &Bcgate, key: &str, query: &str) -> support::Resp {
    send(
        plain_client()
            .get(gate.url(&format!("{PRODUCTS}?{query}")))
            .header("X-Auth-Token", key),
    )
    .await
}

/// Straight to the mock, as another API client of the store would.
async fn direct(ca: &TestCa, mock: &MockBigCommerce) -> support::Resp {
    send(
        support::client(ca)
            .get(mock.url(&format!("{PRODUCTS}?direct=1")))
            .header("X-Auth-Token", TOKEN),
    )
    .await
}

/// Sleeps into a fresh window of the mock's enforced quota when less than
/// `need` of the current one is left, judged from a response's reset header.
async fn fresh_window(resp: &support::Resp, need: Duration) {
    let reset: u64 = resp
        .header("x-rate-limit-time-reset-ms")
        .and_then(|v| v.parse().ok())
        .expect("reset header");
    if Duration::from_millis(reset) < need {
        tokio::time::sleep(Duration::from_millis(reset + 30)).await;
    }
}

/// The value of query parameter `name` in a recorded request's URI.
fn param<'a>(uri: &'a str, name: &str) -> Option<&'a str> {
    uri.split_once('?')?
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

#[derive(Debug, Clone)]
struct Sent {
    client: &'static str,
    replica: usize,
    sent: Instant,
    took: Duration,
    status: u16,
    /// The counter in bcgate's `X-Request-Id`: the order in which the replica
    /// took requests in (a new connection may be slower than a warm one).
    arrival: u64,
}

/// The counter of a generated `X-Request-Id` (16 hex digits of prefix, 16 of counter).
fn arrival(resp: &support::Resp) -> u64 {
    let id = resp.header("x-request-id").unwrap_or_default();
    id.get(16..)
        .and_then(|c| u64::from_str_radix(c, 16).ok())
        .unwrap_or_else(|| panic!("not a generated request id: {id:?}"))
}
