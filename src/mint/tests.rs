//! The mint's requests and answers, the cache's rules against a fake
//! transport (counting, failing and holding mints on a gate), the upstream
//! client as a transport against the mock BigCommerce, and current.jwt.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use tokio::sync::Semaphore;

use super::requests::{
    impersonation_token_request, parse_answer, pat_request, private_token_request, unix_now,
};
use super::*;
use crate::secret::StoreToken;

const LIFETIME: Duration = Duration::from_secs(1000);
const RENEW: Duration = Duration::from_secs(300);

fn store_token() -> StoreToken {
    StoreToken::new("store-api-token-value").expect("token")
}

fn text(s: &Secret) -> &str {
    s.expose()
}

/// What the fake answers with.
#[derive(Clone)]
enum Mode {
    /// Each mint gets a new token naming the store, kind and channel.
    Mint,
    Status(u16),
    Fail(ProxyError),
}

/// One request the fake received.
#[derive(Debug, Clone)]
struct Sent {
    hash: String,
    path: String,
    token: String,
    body: serde_json::Value,
}

/// A transport that counts calls, records them, answers per its mode and,
/// with a gate, holds every answer until the gate opens.
struct Fake {
    calls: AtomicUsize,
    sent: Mutex<Vec<Sent>>,
    mode: Mutex<Mode>,
    gate: Option<Semaphore>,
}

impl Fake {
    fn new() -> Arc<Self> {
        Self::with(Mode::Mint, false)
    }

    fn with(mode: Mode, gated: bool) -> Arc<Self> {
        Arc::new(Self {
            calls: AtomicUsize::new(0),
            sent: Mutex::new(Vec::new()),
            mode: Mutex::new(mode),
            gate: gated.then(|| Semaphore::new(0)),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
    }

    fn open(&self) {
        if let Some(g) = &self.gate {
            g.add_permits(Semaphore::MAX_PERMITS / 2);
        }
    }

    fn sent(&self) -> Vec<Sent> {
        self.sent.lock().expect("sent").clone()
    }
}

impl Transport for Fake {
    fn send(
        &self,
        store_hash: &str,
        req: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Answer> + Send + '_>> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let body: serde_json::Value = serde_json::from_slice(req.body()).expect("JSON body");
        let sent = Sent {
            hash: store_hash.to_owned(),
            path: req.uri().path().to_owned(),
            token: req.headers()["x-auth-token"]
                .to_str()
                .expect("ascii")
                .to_owned(),
            body: body.clone(),
        };
        self.sent.lock().expect("sent").push(sent.clone());
        Box::pin(async move {
            if let Some(g) = &self.gate {
                drop(g.acquire().await.expect("gate"));
            }
            let mode = self.mode.lock().expect("mode").clone();
            match mode {
                Mode::Fail(e) => Err(e),
                Mode::Status(s) => Ok((
                    StatusCode::from_u16(s).expect("status"),
                    Bytes::from_static(br#"{"status":500,"title":"no"}"#),
                )),
                Mode::Mint => {
                    let channel = body["channel_ids"][0].as_u64().unwrap_or(0);
                    let kind = sent.path.rsplit('/').next().unwrap_or_default().to_owned();
                    let token = format!("minted-{n}-{}-{kind}-{channel}", sent.hash);
                    let answer = if sent.path.ends_with("access_tokens") {
                        serde_json::json!({"data": {"id": token}, "meta": {}})
                    } else {
                        serde_json::json!({"data": {"token": token}, "meta": {}})
                    };
                    Ok((StatusCode::OK, Bytes::from(answer.to_string())))
                }
            }
        })
    }
}

/// A clock that moves only when told to.
#[derive(Clone)]
struct Clock {
    base: Instant,
    offset_ms: Arc<AtomicU64>,
}

impl Clock {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            offset_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Sets the time to `s` seconds after the start.
    fn at(&self, s: u64) {
        self.offset_ms.store(s * 1000, Ordering::SeqCst);
    }

    fn mint(&self, max: usize) -> Mint {
        let c = self.clone();
        Mint::with_clock(max, move || {
            c.base + Duration::from_millis(c.offset_ms.load(Ordering::SeqCst))
        })
    }
}

fn private(channel: u32) -> TokenKey {
    TokenKey::Private {
        channel,
        scopes: StorefrontScopes::new(true, false, false),
    }
}

async fn get(
    mint: &Mint,
    fake: &Fake,
    hash: &str,
    key: TokenKey,
) -> Result<Arc<Secret>, ProxyError> {
    mint.storefront(fake, hash, &store_token(), key, LIFETIME, RENEW)
        .await
}

// ---- requests and answers ----

#[test]
fn requests_are_the_documented_ones() {
    let t = store_token();
    let check = |req: &Request<Bytes>, path: &str| -> serde_json::Value {
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.uri(), path);
        let h = req.headers();
        assert_eq!(h["x-auth-token"], "store-api-token-value");
        assert!(h["x-auth-token"].is_sensitive());
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(h["accept"], "application/json");
        serde_json::from_slice(req.body()).expect("JSON body")
    };
    let pat = pat_request(&t, 4_294_967_301);
    assert_eq!(
        check(&pat, "/v3/payments/access_tokens"),
        serde_json::json!({"order": {"id": 4_294_967_301u64}})
    );
    let all = StorefrontScopes::new(true, true, true);
    let private = private_token_request(&t, 7, all, 1_900_000_000);
    assert_eq!(
        check(&private, "/v3/storefront/api-token-private"),
        serde_json::json!({"channel_ids": [7], "expires_at": 1_900_000_000u64,
                           "scopes": ["Unauthenticated", "Customer", "B2B"]})
    );
    let some = StorefrontScopes::new(false, true, true);
    let private = private_token_request(&t, 1, some, 5);
    assert_eq!(
        check(&private, "/v3/storefront/api-token-private")["scopes"],
        serde_json::json!(["Customer", "B2B"])
    );
    let cit = impersonation_token_request(&t, 2, 1_900_000_000);
    assert_eq!(
        check(&cit, "/v3/storefront/api-token-customer-impersonation"),
        serde_json::json!({"channel_ids": [2], "expires_at": 1_900_000_000u64})
    );
}

#[test]
fn storefront_scopes_come_from_the_grants_in_bigcommerce_order() {
    let s = StorefrontScopes::from_grants([
        "storefront:B2B",
        "store_v2_orders",
        "storefront:impersonate",
        "storefront:Unauthenticated",
        "storefront:customer",
        "B2B",
        "Customer",
    ]);
    assert_eq!(s.names(), ["Unauthenticated", "B2B"]);
    assert!(s.unauthenticated() && s.b2b() && !s.customer());
    assert_eq!(s, StorefrontScopes::new(true, false, true));
    assert_eq!(format!("{s:?}"), r#"{"Unauthenticated", "B2B"}"#);
    let none = StorefrontScopes::from_grants(["storefront:impersonate"]);
    assert!(none.is_empty());
    assert!(none.names().is_empty());
    let every = StorefrontScopes::from_grants([
        "storefront:Customer",
        "storefront:B2B",
        "storefront:Unauthenticated",
    ]);
    assert_eq!(every.names(), ["Unauthenticated", "Customer", "B2B"]);
}

#[test]
fn answers_give_the_token_or_an_error_without_it() {
    let ok = |kind, status, body: &str| parse_answer(kind, "abc123", status, body.as_bytes());
    let t = ok(
        MintKind::PrivateToken,
        StatusCode::OK,
        r#"{"data":{"token":"eyJ.private.sig"},"meta":{}}"#,
    )
    .expect("token");
    assert_eq!(text(&t), "eyJ.private.sig");
    let t = ok(
        MintKind::PaymentAccessToken,
        StatusCode::CREATED,
        r#"{"data":{"id":"eyJ.pat.sig"},"meta":{}}"#,
    )
    .expect("PAT");
    assert_eq!(text(&t), "eyJ.pat.sig");
    let t = ok(
        MintKind::ImpersonationToken,
        StatusCode::OK,
        r#"{"data":{"token":"eyJ.cit.sig"}}"#,
    )
    .expect("CIT");
    assert_eq!(text(&t), "eyJ.cit.sig");

    // The store token refused: the store's problem, said as such.
    assert_eq!(
        ok(MintKind::PrivateToken, StatusCode::UNAUTHORIZED, "{}"),
        Err(ProxyError::StoreTokenRefused("abc123".into()))
    );
    let e = ok(
        MintKind::PrivateToken,
        StatusCode::FORBIDDEN,
        r#"{"title":"secret-body-text"}"#,
    )
    .expect_err("403");
    let ProxyError::MintFailed(why) = &e else {
        panic!("{e:?}")
    };
    assert!(
        why.starts_with("a storefront private token: BigCommerce answered 403"),
        "{why}"
    );
    assert!(why.contains("store_storefront_api"), "{why}");
    let e = ok(
        MintKind::PaymentAccessToken,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
    )
    .expect_err("422");
    assert_eq!(
        e,
        ProxyError::MintFailed("a payment access token: BigCommerce answered 422".into())
    );
    assert_eq!(e.status(), StatusCode::BAD_GATEWAY);

    // A success without a usable token (wrong field, not JSON, not a header value).
    for (kind, body) in [
        (
            MintKind::PaymentAccessToken,
            r#"{"data":{"token":"leaked-token-1"}}"#,
        ),
        (
            MintKind::PrivateToken,
            r#"{"data":{"id":"leaked-token-2"}}"#,
        ),
        (MintKind::ImpersonationToken, r#"{"data":{"token":""}}"#),
        (
            MintKind::ImpersonationToken,
            r#"{"data":{"token":"leaked\u0001token-3"}}"#,
        ),
        (MintKind::PrivateToken, "leaked-token-4 is not JSON"),
        (MintKind::PrivateToken, r#"{"token":"leaked-token-5"}"#),
        (MintKind::PrivateToken, r#"{"data":{"token":5}}"#),
    ] {
        let e = ok(kind, StatusCode::OK, body).expect_err(body);
        let shown = format!("{e:?} {e} {}", e.detail());
        assert!(matches!(e, ProxyError::MintFailed(_)), "{shown}");
        assert!(shown.contains(kind.what()), "{shown}");
        assert!(
            !shown.contains("leaked") && !shown.contains("secret-body"),
            "{shown}"
        );
    }
}

// ---- the cache ----

#[tokio::test]
async fn pats_are_minted_per_call_and_never_kept() {
    let fake = Fake::new();
    let mint = Mint::new();
    let t = store_token();
    let a = mint.pat(&*fake, "abc123", &t, 101).await.expect("PAT");
    let b = mint.pat(&*fake, "abc123", &t, 101).await.expect("PAT");
    assert_eq!(fake.calls(), 2);
    assert_ne!(a, b);
    assert!(mint.is_empty());
    let sent = fake.sent();
    assert_eq!(sent[0].path, "/v3/payments/access_tokens");
    assert_eq!(sent[0].hash, "abc123");
    assert_eq!(sent[0].token, "store-api-token-value");
    assert_eq!(sent[0].body, serde_json::json!({"order": {"id": 101}}));
    fake.set(Mode::Status(401));
    assert_eq!(
        mint.pat(&*fake, "abc123", &t, 101).await,
        Err(ProxyError::StoreTokenRefused("abc123".into()))
    );
}

#[tokio::test]
async fn a_storefront_token_is_minted_once_and_kept() {
    let fake = Fake::new();
    let mint = Mint::new();
    let a = get(&mint, &fake, "abc123", private(1))
        .await
        .expect("token");
    let b = get(&mint, &fake, "abc123", private(1))
        .await
        .expect("token");
    assert_eq!(fake.calls(), 1);
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(mint.len(), 1);
    // What was asked: this store, this channel and scopes, the lifetime.
    let sent = &fake.sent()[0];
    assert_eq!(sent.path, "/v3/storefront/api-token-private");
    assert_eq!(sent.token, "store-api-token-value");
    assert_eq!(sent.body["channel_ids"], serde_json::json!([1]));
    assert_eq!(sent.body["scopes"], serde_json::json!(["Unauthenticated"]));
    let asked = sent.body["expires_at"].as_u64().expect("expires_at");
    let want = unix_now() + LIFETIME.as_secs();
    assert!(asked <= want && asked + 5 >= want, "{asked} vs {want}");
}

#[tokio::test]
async fn a_token_is_renewed_before_it_expires_and_never_handed_out_after() {
    // Lifetime 1000 s, renewed 300 s before: renewed from 700 s, and never
    // handed out from 970 s (the 30 s margin).
    let clock = Clock::new();
    let mint = clock.mint(MAX_CACHED);
    let fake = Fake::new();
    let first = get(&mint, &fake, "abc123", private(1))
        .await
        .expect("first");
    clock.at(699);
    let same = get(&mint, &fake, "abc123", private(1))
        .await
        .expect("cached");
    assert!(Arc::ptr_eq(&first, &same));
    assert_eq!(fake.calls(), 1);
    clock.at(701);
    let second = get(&mint, &fake, "abc123", private(1))
        .await
        .expect("renewed");
    assert_eq!(fake.calls(), 2);
    assert_ne!(*first, *second);

    // Renewal fails: the old token serves while it is valid, and the
    // failed renewal is not retried by every request at once.
    fake.set(Mode::Status(500));
    clock.at(701 + 701);
    let kept = get(&mint, &fake, "abc123", private(1))
        .await
        .expect("old token");
    assert!(Arc::ptr_eq(&kept, &second));
    assert_eq!(fake.calls(), 3);
    clock.at(701 + 703);
    get(&mint, &fake, "abc123", private(1))
        .await
        .expect("old token");
    assert_eq!(fake.calls(), 3, "retried within the pause after a failure");
    clock.at(701 + 710);
    get(&mint, &fake, "abc123", private(1))
        .await
        .expect("old token");
    assert_eq!(fake.calls(), 4);
    // Past its expiry it is never returned, whatever the mint says.
    clock.at(701 + 970);
    let e = get(&mint, &fake, "abc123", private(1))
        .await
        .expect_err("expired");
    assert!(matches!(e, ProxyError::MintFailed(_)), "{e:?}");
    assert_eq!(mint.len(), 0);
    fake.set(Mode::Mint);
    let third = get(&mint, &fake, "abc123", private(1)).await.expect("new");
    assert_ne!(*third, *second);
}

#[tokio::test]
async fn concurrent_callers_share_one_mint() {
    let fake = Fake::with(Mode::Mint, true);
    let mint = Mint::new();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (mint, fake) = (mint.clone(), fake.clone());
            tokio::spawn(async move { get(&mint, &fake, "abc123", private(1)).await })
        })
        .collect();
    // The test runtime runs every task until it waits (on the gate, or on
    // the mint under way) before this timer fires.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(fake.calls(), 1);
    fake.open();
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.expect("task").expect("token"));
    }
    assert_eq!(fake.calls(), 1);
    assert!(tokens.iter().all(|t| Arc::ptr_eq(t, &tokens[0])));
}

#[tokio::test]
async fn a_failed_mint_fails_its_waiters_and_the_next_call_retries() {
    let fake = Fake::with(
        Mode::Fail(ProxyError::UpstreamUnavailable("cannot connect".into())),
        true,
    );
    let mint = Mint::new();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (mint, fake) = (mint.clone(), fake.clone());
            tokio::spawn(async move {
                get(
                    &mint,
                    &fake,
                    "abc123",
                    TokenKey::Impersonation { channel: 1 },
                )
                .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    fake.open();
    for t in tasks {
        let e = t.await.expect("task").expect_err("failed mint");
        assert_eq!(
            e,
            ProxyError::MintFailed("a customer impersonation token: cannot connect".into())
        );
    }
    assert_eq!(fake.calls(), 1, "the waiters shared the one failure");
    fake.set(Mode::Mint);
    get(
        &mint,
        &fake,
        "abc123",
        TokenKey::Impersonation { channel: 1 },
    )
    .await
    .expect("retried");
    assert_eq!(fake.calls(), 2);
    // A refused store token is the store's problem, not a failed mint.
    fake.set(Mode::Status(401));
    let e = get(&mint, &fake, "zzz999", private(1))
        .await
        .expect_err("401");
    assert_eq!(e, ProxyError::StoreTokenRefused("zzz999".into()));
}

#[tokio::test]
async fn a_refused_token_is_replaced_but_a_late_report_keeps_the_newer() {
    let fake = Fake::new();
    let mint = Mint::new();
    let key = private(1);
    let first = get(&mint, &fake, "abc123", key).await.expect("first");
    // Reports about another store or key drop nothing.
    mint.refused("other1", key, &first);
    mint.refused("abc123", private(2), &first);
    assert!(Arc::ptr_eq(
        &first,
        &get(&mint, &fake, "abc123", key).await.expect("kept")
    ));
    assert_eq!(fake.calls(), 1);

    // A copy of the token (not the cached value itself) is recognised.
    let copy = Secret::new(first.expose()).expect("copy");
    mint.refused("abc123", key, &copy);
    let second = get(&mint, &fake, "abc123", key).await.expect("second");
    assert_eq!(fake.calls(), 2);
    assert_ne!(*first, *second);
    // A request that used the first token reports late: the second stays.
    mint.refused("abc123", key, &first);
    let still = get(&mint, &fake, "abc123", key)
        .await
        .expect("second again");
    assert!(Arc::ptr_eq(&still, &second));
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn every_store_channel_and_scope_set_has_its_own_token() {
    let fake = Fake::new();
    let mint = Mint::new();
    let scopes = |u, c, b| StorefrontScopes::new(u, c, b);
    let keys = [
        (
            "abc123",
            TokenKey::Private {
                channel: 1,
                scopes: scopes(true, false, false),
            },
        ),
        (
            "abc123",
            TokenKey::Private {
                channel: 1,
                scopes: scopes(true, true, false),
            },
        ),
        (
            "abc123",
            TokenKey::Private {
                channel: 1,
                scopes: scopes(false, false, true),
            },
        ),
        (
            "abc123",
            TokenKey::Private {
                channel: 2,
                scopes: scopes(true, false, false),
            },
        ),
        ("abc123", TokenKey::Impersonation { channel: 1 }),
        ("abc123", TokenKey::Impersonation { channel: 2 }),
        (
            "def456",
            TokenKey::Private {
                channel: 1,
                scopes: scopes(true, false, false),
            },
        ),
        ("def456", TokenKey::Impersonation { channel: 1 }),
    ];
    let mut first = Vec::new();
    for (hash, key) in keys {
        first.push(get(&mint, &fake, hash, key).await.expect("token"));
    }
    assert_eq!(fake.calls(), keys.len());
    assert_eq!(mint.len(), keys.len());
    for _ in 0..2 {
        for ((hash, key), want) in keys.iter().zip(&first) {
            let got = get(&mint, &fake, hash, *key).await.expect("token");
            assert!(Arc::ptr_eq(&got, want), "{hash} {key:?}");
            // The fake names store, kind and channel in each token it mints.
            let kind = match key {
                TokenKey::Private { .. } => "api-token-private",
                TokenKey::Impersonation { .. } => "api-token-customer-impersonation",
            };
            assert!(
                got.expose()
                    .ends_with(&format!("-{hash}-{kind}-{}", key.channel())),
                "{hash} {key:?} got another key's token"
            );
        }
    }
    assert_eq!(fake.calls(), keys.len());
    for (sent, (hash, key)) in fake.sent().iter().zip(keys) {
        assert_eq!(sent.hash, hash);
        if let TokenKey::Private { scopes, .. } = key {
            assert_eq!(sent.body["scopes"], serde_json::json!(scopes.names()));
        } else {
            assert!(sent.body.get("scopes").is_none());
        }
    }

    // Forgetting a store forgets its tokens only.
    mint.forget_store("abc123");
    assert_eq!(mint.len(), 2);
    get(
        &mint,
        &fake,
        "def456",
        TokenKey::Impersonation { channel: 1 },
    )
    .await
    .expect("kept");
    assert_eq!(fake.calls(), keys.len());
    get(
        &mint,
        &fake,
        "abc123",
        TokenKey::Impersonation { channel: 1 },
    )
    .await
    .expect("minted again");
    assert_eq!(fake.calls(), keys.len() + 1);
}

#[tokio::test]
async fn the_cache_is_bounded_and_drops_expired_tokens_first() {
    let clock = Clock::new();
    let mint = clock.mint(4);
    let fake = Fake::new();
    let short = Duration::from_secs(100);
    let t = store_token();
    // Two tokens that expire soon, two that last.
    for ch in [1, 2] {
        mint.storefront(
            &*fake,
            "abc123",
            &t,
            private(ch),
            short,
            Duration::from_secs(10),
        )
        .await
        .expect("short");
    }
    for ch in [3, 4] {
        get(&mint, &fake, "abc123", private(ch))
            .await
            .expect("long");
    }
    assert_eq!(mint.len(), 4);
    clock.at(200);
    assert_eq!(mint.len(), 2, "the short ones expired");
    for ch in [5, 6] {
        get(&mint, &fake, "abc123", private(ch)).await.expect("new");
    }
    assert_eq!(mint.len(), 4);
    let calls = fake.calls();
    for ch in [3, 4, 5, 6] {
        get(&mint, &fake, "abc123", private(ch))
            .await
            .expect("kept");
    }
    assert_eq!(fake.calls(), calls, "the valid tokens were kept");
    // Full of valid tokens: the one that expires soonest goes.
    get(&mint, &fake, "abc123", private(7)).await.expect("new");
    assert_eq!(mint.len(), 4);
    for _ in 0..3 {
        for ch in 8..20 {
            get(&mint, &fake, "xyz789", private(ch)).await.expect("new");
        }
    }
    assert_eq!(mint.len(), 4);
}

#[tokio::test]
async fn nothing_that_holds_a_token_prints_it() {
    let fake = Fake::new();
    let mint = Mint::new();
    let t = get(&mint, &fake, "abc123", private(1))
        .await
        .expect("token");
    let pat = mint
        .pat(&*fake, "abc123", &store_token(), 9)
        .await
        .expect("PAT");
    let bearer = bearer(&t);
    let pat_auth = pat_authorization(&pat);
    assert_eq!(bearer, format!("Bearer {}", t.expose()).as_str());
    assert_eq!(pat_auth, format!("PAT {}", pat.expose()).as_str());
    assert!(bearer.is_sensitive() && pat_auth.is_sensitive());
    let shown = format!(
        "{mint:?} {t:?} {t} {pat:?} {pat} {bearer:?} {pat_auth:?} {:?} {:?}",
        private(1),
        fake.sent()
            .iter()
            .map(|s| (&s.hash, &s.path))
            .collect::<Vec<_>>()
    );
    assert!(!shown.contains("minted-"), "{shown}");
    assert!(!shown.contains("store-api-token"), "{shown}");
}

// ---- the upstream client as the transport ----

#[tokio::test]
async fn the_upstream_client_sends_mints_to_the_store_on_the_api_origin() {
    let ca = bcgate_testkit::ca::DevCa::new();
    let mock =
        bcgate_testkit::mock::MockBigCommerce::start(&ca, &[("abc123", "store-api-token-value")]);
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("ca.pem"), ca.ca_pem()).expect("ca");
    let digest = "ab".repeat(32);
    let toml = format!(
        "[upstream]\nbase_url = \"{}\"\nca_file = \"ca.pem\"\n\
         [[stores]]\nhash = \"abc123\"\ntoken_env = \"BCGATE_MINT_TEST_UNSET\"\n\
         [[clients]]\nname = \"c\"\nkey_sha256 = \"{digest}\"\nstores = [\"abc123\"]\n",
        mock.base_url()
    );
    let path = dir.path().join("bcgate.toml");
    std::fs::write(&path, toml).expect("config");
    let config = crate::config::Config::load_without_secrets(&path).expect("config");
    let client = UpstreamClient::new(&config.upstream).expect("client");

    let (status, body) = Transport::send(&client, "abc123", pat_request(&store_token(), 77))
        .await
        .expect("answer");
    assert_eq!(status, StatusCode::CREATED);
    let answer: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert!(
        answer["data"]["id"].as_str().is_some_and(|t| !t.is_empty()),
        "a PAT in data.id"
    );
    let got = mock.only_request();
    assert_eq!(got.method, "POST");
    assert_eq!(got.path, "/stores/abc123/v3/payments/access_tokens");
    assert_eq!(got.tokens(), ["store-api-token-value"]);
    assert_eq!(
        got.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(got.header("accept").as_deref(), Some("application/json"));
    assert_eq!(got.host(), Some(mock.addr.to_string()));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&got.body).expect("body"),
        serde_json::json!({"order": {"id": 77}})
    );

    // Through the cache: a PAT is minted for the order (201 is a success).
    let pat = Mint::new()
        .pat(&client, "abc123", &store_token(), 77)
        .await
        .expect("a PAT");
    assert!(!pat.expose().is_empty() && pat.expose() != "store-api-token-value");

    // A 401 reaches the parser as a refused store token; an answer too large is cut.
    let with_query = |q: &str| {
        let mut req = pat_request(&store_token(), 1);
        *req.uri_mut() = format!("/v3/payments/access_tokens?{q}")
            .parse()
            .expect("uri");
        req
    };
    let (status, _) = Transport::send(&client, "abc123", with_query("mock_status=401"))
        .await
        .expect("answer");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let e = Transport::send(
        &client,
        "abc123",
        with_query(&format!("mock_bytes={}", MAX_ANSWER_BYTES + 1)),
    )
    .await
    .expect_err("too large");
    assert!(
        matches!(&e, ProxyError::UpstreamUnavailable(why) if why.contains("larger than")),
        "{e:?}"
    );
}

// ---- current.jwt ----

const CLIENT_ID: &str = "6sv16tfx3j5gsopm42ss5dd67g2srvq";

fn client_secret() -> Secret {
    Secret::text("the-apps-client-secret").expect("secret")
}

fn claims(exp: u64) -> serde_json::Value {
    let now = unix_now();
    serde_json::json!({
        "customer": {"id": 4927, "email": "john.doe@example.com", "group_id": "6"},
        "iss": "bc/apps",
        "sub": "abc123",
        "iat": now,
        "exp": exp,
        "version": 1,
        "aud": CLIENT_ID,
        "application_id": "6sv16tasdgr2b5hs5dd67g2srvq",
        "store_hash": "abc123",
        "operation": "current_customer"
    })
}

fn sign(alg: jsonwebtoken::Algorithm, secret: &str, claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode")
}

fn reason(jwt: &str) -> String {
    match verify_current_customer(jwt, CLIENT_ID, &client_secret()) {
        Err(ProxyError::InvalidCustomerToken(why)) => {
            assert!(
                jwt.is_empty() || !why.contains(jwt),
                "the reason repeats the token"
            );
            why
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_current_customer_token_names_its_customer() {
    use jsonwebtoken::Algorithm::HS256;
    let now = unix_now();
    let jwt = sign(HS256, "the-apps-client-secret", &claims(now + 900));
    let want = Customer {
        id: 4927,
        email: Some("john.doe@example.com".into()),
        group_id: Some("6".into()),
        store_hash: Some("abc123".into()),
    };
    assert_eq!(
        verify_current_customer(&jwt, CLIENT_ID, &client_secret()),
        Ok(want.clone())
    );
    assert_eq!(
        verify_current_customer_for_store(&jwt, "abc123", CLIENT_ID, &client_secret()),
        Ok(want)
    );
    // Within the leeway; a numeric group; no email.
    let mut c = claims(now - 10);
    c["customer"] = serde_json::json!({"id": 1, "group_id": 0});
    let got = verify_current_customer(
        &sign(HS256, "the-apps-client-secret", &c),
        CLIENT_ID,
        &client_secret(),
    )
    .expect("valid");
    assert_eq!(
        (got.id, got.email, got.group_id),
        (1, None, Some("0".into()))
    );
}

#[test]
fn a_current_customer_token_is_refused_for_each_fault() {
    use base64::Engine;
    use jsonwebtoken::Algorithm::{HS256, HS384, HS512};
    let now = unix_now();
    let secret = "the-apps-client-secret";
    assert_eq!(reason(&sign(HS256, secret, &claims(now - 120))), "expired");
    assert_eq!(
        reason(&sign(HS256, "another-apps-secret", &claims(now + 900))),
        "signed with another key"
    );
    let mut other_app = claims(now + 900);
    other_app["aud"] = "another-client-id".into();
    assert_eq!(
        reason(&sign(HS256, secret, &other_app)),
        "for another client id"
    );
    for alg in [HS384, HS512] {
        assert_eq!(
            reason(&sign(alg, secret, &claims(now + 900))),
            "not signed with HS256"
        );
    }
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let payload = b64(claims(now + 900).to_string().as_bytes());
    for alg in ["none", "None", "RS256"] {
        let head = b64(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes());
        assert_eq!(
            reason(&format!("{head}.{payload}.")),
            "not signed with HS256"
        );
    }
    // An HS256 header on a payload signed for another one.
    let good = sign(HS256, secret, &claims(now + 900));
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged = b64(claims(now + 9000).to_string().as_bytes());
    parts[1] = &forged;
    assert_eq!(reason(&parts.join(".")), "signed with another key");

    let mut no_exp = claims(now);
    no_exp.as_object_mut().expect("object").remove("exp");
    assert_eq!(reason(&sign(HS256, secret, &no_exp)), "malformed");
    let mut no_aud = claims(now + 900);
    no_aud.as_object_mut().expect("object").remove("aud");
    assert_eq!(reason(&sign(HS256, secret, &no_aud)), "malformed");
    for id in [
        serde_json::json!(0),
        serde_json::json!(-5),
        serde_json::json!("4927"),
        serde_json::json!(1.5),
        serde_json::Value::Null,
    ] {
        let mut c = claims(now + 900);
        c["customer"]["id"] = id.clone();
        assert!(
            reason(&sign(HS256, secret, &c)).starts_with("malformed"),
            "customer.id {id}"
        );
    }
    let mut no_customer = claims(now + 900);
    no_customer
        .as_object_mut()
        .expect("object")
        .remove("customer");
    assert_eq!(reason(&sign(HS256, secret, &no_customer)), "malformed");
    for junk in ["", "a.b.c", "not a jwt", "....", &payload] {
        assert_eq!(reason(junk), "malformed", "{junk:?}");
    }

    // Another store's shopper, with the same app installed there.
    let mut elsewhere = claims(now + 900);
    elsewhere["store_hash"] = "def456".into();
    let jwt = sign(HS256, secret, &elsewhere);
    assert!(verify_current_customer(&jwt, CLIENT_ID, &client_secret()).is_ok());
    assert_eq!(
        verify_current_customer_for_store(&jwt, "abc123", CLIENT_ID, &client_secret()),
        Err(ProxyError::InvalidCustomerToken("for another store".into()))
    );
}
