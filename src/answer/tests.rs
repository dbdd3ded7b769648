use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;

use super::*;
use crate::mint::Answer as TransportAnswer;

const SECRET: &str = "client-secret-for-tests-Qx7";

fn secret() -> Secret {
    Secret::new(SECRET).expect("secret")
}

fn rejects(path: &str) -> bool {
    check_redirect_to(path).is_err()
}

#[test]
fn redirect_to_is_a_path_on_the_same_storefront() {
    for ok in [
        "/",
        "/account.php",
        "/login.php?action=logout",
        "/cart.php?x=1&y=%20z#frag",
        "/a%2Fb",
        "/caf%C3%A9",
        "/@evil.example",
    ] {
        assert!(check_redirect_to(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "account.php",
        "https://evil.example/",
        "javascript:alert(1)",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/a\\b",
        "/a\tb",
        "/\t/evil.example",
        "/a b",
        "/a\nb",
        "/a\u{7f}",
        "/café",
        "/%2F%2Fevil.example",
        "/%2fevil.example",
        "%2F%2Fevil.example",
        "/%5Cevil.example",
        "/a%5Cb",
        "/a%0D%0ASet-Cookie:x",
        "/a%09b",
    ] {
        assert!(rejects(bad), "{bad:?} was accepted");
    }
    assert!(rejects(&format!("/{}", "a".repeat(MAX_REDIRECT_BYTES))));
    assert!(check_redirect_to(&format!("/{}", "a".repeat(MAX_REDIRECT_BYTES - 1))).is_ok());
}

#[test]
fn a_login_request_is_read_strictly() {
    let r = parse_login_request(
        br#"{"customer_id": 42, "channel_id": 2, "redirect_to": "/cart.php", "request_ip": "203.0.113.9"}"#,
    )
    .expect("valid");
    assert_eq!(
        r,
        LoginRequest {
            customer_id: 42,
            channel_id: Some(2),
            redirect_to: Some("/cart.php".into()),
            request_ip: Some("203.0.113.9".parse().expect("ip")),
        }
    );
    assert_eq!(
        parse_login_request(br#"{"customer_id":1}"#).map(|r| r.channel_id),
        Ok(None)
    );
    for bad in [
        &br#"{}"#[..],
        br#"[]"#,
        br#""x""#,
        br#"{"customer_id": 0}"#,
        br#"{"customer_id": -1}"#,
        br#"{"customer_id": 1.5}"#,
        br#"{"customer_id": "42"}"#,
        br#"{"customer_id": 1, "customer_id": 2}"#,
        br#"{"customer_id": 1, "channel_id": 0}"#,
        br#"{"customer_id": 1, "channel_id": 4294967296}"#,
        br#"{"customer_id": 1, "redirect_to": "//evil"}"#,
        br#"{"customer_id": 1, "redirect_to": 5}"#,
        br#"{"customer_id": 1, "request_ip": "not-an-ip"}"#,
        br#"{"customer_id": 1, "operation": "other"}"#,
        br#"{"customer_id": 1} trailing"#,
        b"",
    ] {
        let e = parse_login_request(bad).expect_err(&String::from_utf8_lossy(bad));
        assert_eq!(e.code(), "bad_request");
    }
}

#[test]
fn a_current_customer_request_is_one_token() {
    assert_eq!(
        parse_current_customer_request(br#"{"token":"a.b.c"}"#).map(|t| t.to_string()),
        Ok("a.b.c".to_owned())
    );
    for bad in [
        &br#"{}"#[..],
        br#"{"token": 1}"#,
        br#"{"token":"a","token":"b"}"#,
        br#"{"token":"a","x":1}"#,
    ] {
        assert!(parse_current_customer_request(bad).is_err());
    }
}

fn decode_part(jwt: &str, i: usize) -> Value {
    let part = jwt.split('.').nth(i).expect("part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

#[test]
fn the_login_jwt_has_bigcommerce_s_header_and_claims_and_verifies_with_the_secret() {
    let req = LoginRequest {
        customer_id: 42,
        channel_id: Some(2),
        redirect_to: Some("/cart.php".into()),
        request_ip: Some("2001:db8::1".parse().expect("ip")),
    };
    let claims = LoginClaims::new("client-id-1", "abc123", 1_700_000_000, 2, &req);
    let jwt = customer_login_jwt(&claims, &secret()).expect("signed");
    let jwt = jwt.expose();
    assert_eq!(
        decode_part(jwt, 0),
        json!({"alg": "HS256", "typ": "JWT"}),
        "header"
    );
    let c = decode_part(jwt, 1);
    assert_eq!(c["iss"], "client-id-1");
    assert_eq!(c["iat"], 1_700_000_000u64);
    assert_eq!(c["operation"], "customer_login");
    assert_eq!(c["store_hash"], "abc123");
    assert_eq!(c["customer_id"], 42);
    assert_eq!(c["channel_id"], 2);
    assert_eq!(c["redirect_to"], "/cart.php");
    assert_eq!(c["request_ip"], "2001:db8::1");
    assert!(c["jti"].as_str().is_some_and(|j| j.len() == 36));

    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    let key = |s: &str| jsonwebtoken::DecodingKey::from_secret(s.as_bytes());
    assert!(jsonwebtoken::decode::<Value>(jwt, &key(SECRET), &v).is_ok());
    assert!(jsonwebtoken::decode::<Value>(jwt, &key("another secret"), &v).is_err());

    // Optional claims are left out, not sent as null.
    let bare = LoginRequest {
        customer_id: 7,
        channel_id: None,
        redirect_to: None,
        request_ip: None,
    };
    let claims = LoginClaims::new("client-id-1", "abc123", 1, 1, &bare);
    let jwt = customer_login_jwt(&claims, &secret()).expect("signed");
    let c = decode_part(jwt.expose(), 1);
    let keys: Vec<&String> = c.as_object().expect("object").keys().collect();
    for absent in ["redirect_to", "request_ip"] {
        assert!(!keys.iter().any(|k| *k == absent), "{absent}: {c}");
    }
    // The channel whose origin the link is on is always named.
    assert_eq!(c["channel_id"], 1);
}

#[test]
fn every_jti_is_a_fresh_v4_uuid() {
    let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_jti()).collect();
    assert_eq!(ids.len(), 1000);
    for id in ids.iter().take(20) {
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "{id}");
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{id}");
    }
}

#[test]
fn iat_is_on_bigcommerce_s_clock_and_never_in_its_future() {
    // BigCommerce 10 minutes ahead: its whole second read as the answer arrived.
    let local_ms = 1_700_000_000_250;
    let bc_true_ms = local_ms + 600_000;
    let offset = offset_ms(bc_true_ms / 1000, local_ms);
    assert!(offset <= 600_000 && offset > 599_000, "{offset}");
    // Later, on this host's clock: the iat is BigCommerce's second, not ours.
    for later in [0, 1, 999, 1000, 30_000, 599_999] {
        let iat = bc_iat(local_ms + later, offset);
        let bc_now_s = ((bc_true_ms + later) / 1000) as u64;
        assert!(
            iat <= bc_now_s,
            "iat {iat} in BigCommerce's future {bc_now_s}"
        );
        assert!(bc_now_s - iat <= 1, "iat {iat} too far behind {bc_now_s}");
    }
    // Behind us, too.
    let offset = offset_ms((local_ms - 90_000) / 1000, local_ms);
    assert_eq!(
        bc_iat(local_ms, offset),
        ((local_ms - 90_000) / 1000) as u64
    );
    assert_eq!(bc_iat(0, -5_000), 0);
}

/// A transport answering `/v2/time` with `time`, counting calls.
struct FakeClock {
    status: StatusCode,
    body: &'static str,
    calls: AtomicUsize,
    saw_token: Mutex<Vec<String>>,
}

impl Transport for FakeClock {
    fn send(
        &self,
        _store: &str,
        req: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = TransportAnswer> + Send + '_>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        assert_eq!(req.uri().path(), "/v2/time");
        assert_eq!(req.method(), Method::GET);
        if let Some(t) = req.headers().get(X_AUTH_TOKEN) {
            self.saw_token
                .lock()
                .expect("lock")
                .push(t.to_str().unwrap_or("").to_owned());
        }
        let answer = Ok((self.status, Bytes::from_static(self.body.as_bytes())));
        Box::pin(async move { answer })
    }
}

fn fake(status: StatusCode, body: &'static str) -> FakeClock {
    FakeClock {
        status,
        body,
        calls: AtomicUsize::new(0),
        saw_token: Mutex::new(Vec::new()),
    }
}

#[tokio::test]
async fn the_clock_offset_is_read_with_the_store_token_and_cached_per_store() {
    let clocks = Clocks::default();
    let t = fake(StatusCode::OK, r#"{"time": 4102444800}"#);
    let token = Secret::new("store-token-x").expect("token");
    let a = clocks.offset(&t, "abc", &token).await.expect("offset");
    let b = clocks.offset(&t, "abc", &token).await.expect("offset");
    assert_eq!(a, b);
    assert_eq!(t.calls.load(Ordering::SeqCst), 1, "cached");
    assert!(a > 0, "the fake clock is in 2100");
    clocks.offset(&t, "def", &token).await.expect("offset");
    assert_eq!(t.calls.load(Ordering::SeqCst), 2, "per store");
    assert_eq!(
        *t.saw_token.lock().expect("lock"),
        vec!["store-token-x".to_owned(); 2]
    );
    // A stale entry is read again.
    clocks.0.lock().expect("lock").insert(
        "abc".into(),
        (
            0,
            Instant::now()
                .checked_sub(CLOCK_REFRESH + Duration::from_secs(1))
                .expect("instant"),
        ),
    );
    assert_eq!(clocks.fresh("abc"), None);
    clocks.offset(&t, "abc", &token).await.expect("offset");
    assert_eq!(t.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_clock_that_cannot_be_read_is_an_error_and_not_cached() {
    let clocks = Clocks::default();
    let token = Secret::new("store-token-x").expect("token");
    let refused = fake(StatusCode::UNAUTHORIZED, "{}");
    assert_eq!(
        clocks
            .offset(&refused, "abc", &token)
            .await
            .map_err(|e| e.code()),
        Err("store_token_refused")
    );
    for (status, body) in [
        (StatusCode::INTERNAL_SERVER_ERROR, "{}"),
        (StatusCode::OK, r#"{"time":"soon"}"#),
        (StatusCode::OK, "not json"),
    ] {
        let t = fake(status, body);
        assert_eq!(
            clocks.offset(&t, "abc", &token).await.map_err(|e| e.code()),
            Err("upstream_unavailable")
        );
    }
    assert_eq!(clocks.fresh("abc"), None);
}
