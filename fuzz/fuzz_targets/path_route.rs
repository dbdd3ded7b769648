//! Path canonicalization and routing: the request target as hyper would
//! parse it → the proxy's decision (`decide::Canonical`, then `decide::route`:
//! store, store allowed, route lookup) → the upstream URI.
//!
//! Invariants, whenever a path is accepted:
//! - it has no empty, `.` or `..` segment, in any encoding; no raw `\`, `;`,
//!   `?`, `#` or control byte; no escape encodes an unreserved character;
//!   every segment decodes to UTF-8 without `/`, `\`, `%`, `;` or a control
//!   character (C0, DEL or C1); an independent normalizer (the `url` crate)
//!   leaves it unchanged;
//! - the store found is the one whose hash or alias is exactly the
//!   `/stores/{name}` segment (or the default store, for any other first
//!   segment), and the API path is the rest of the path, byte for byte;
//!   a client without a default store gets `store_unknown` for the latter,
//!   and a client never gets a store it is not allowed;
//! - the URI sent upstream is `/stores/{real hash}` + that API path + the
//!   caller's query, unchanged;
//! - a route found for it matches its template segment for segment.
#![no_main]

use std::sync::OnceLock;

use bcgate::config::{Config, Stores};
use bcgate::decide::{self, Ask, Canonical, Gate};
use bcgate::forward::UpstreamClient;
use bcgate::learn::Mode;
use http::Method;
use libfuzzer_sys::fuzz_target;

/// (hash, alias) of the stores in the fixed config; the first is the default.
const STORES: [(&str, Option<&str>); 3] = [
    ("abc123", Some("eu")),
    ("def456", Some("us-east_1")),
    // Odd but valid names: a hash that is the prefix word, an alias that is a literal.
    ("stores", Some("v3")),
];
const DEFAULT: &str = "abc123";

struct Fixture {
    config: Config,
    upstream: UpstreamClient,
}

/// Clients: (name, default store); both may use every store but `stores`.
const CLIENTS: [(&str, Option<&str>); 2] = [("with-default", Some(DEFAULT)), ("no-default", None)];

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut text = String::new();
        for (hash, alias) in STORES {
            text.push_str(&format!("[[stores]]\nhash = {hash:?}\ntoken_env = \"FUZZ_NEVER_READ\"\n"));
            if let Some(a) = alias {
                text.push_str(&format!("alias = {a:?}\n"));
            }
        }
        for (i, (name, default)) in CLIENTS.iter().enumerate() {
            text.push_str(&format!(
                "[[clients]]\nname = {name:?}\nkey_sha256 = \"{:064x}\"\nstores = [\"abc123\", \"def456\"]\nscopes = []\n",
                i + 1
            ));
            if let Some(d) = default {
                text.push_str(&format!("default_store = {d:?}\n"));
            }
        }
        let dir = std::env::temp_dir().join(format!("bcgate-fuzz-route-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let path = dir.join("bcgate.toml");
        std::fs::write(&path, text).expect("write the config");
        let config = Config::load_without_secrets(&path).expect("fixture config");
        let _ = std::fs::remove_dir_all(&dir);
        let upstream = UpstreamClient::new(&config.upstream).expect("upstream client");
        Fixture { config, upstream }
    })
}

const METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    // As hyper hands it over: a parsed request target (origin or absolute form).
    if let Ok(uri) = http::Uri::try_from(data) {
        check(fx, uri.path(), uri.query());
    }
    // And any text at all as a path: the checks must not rely on the parser.
    if let Ok(text) = std::str::from_utf8(data) {
        check(fx, text, None);
    }
});

fn check(fx: &Fixture, path: &str, query: Option<&str>) {
    let Ok(canonical) = Canonical::new(path) else {
        return;
    };
    assert_canonical(path);
    let stores = &fx.config.stores;
    let gate = Gate {
        policy: &fx.config.policy,
        stores,
        installed: &|_| Ok(None),
    };
    for (name, default) in CLIENTS {
        let client = fx.config.clients.by_name(name).expect("a fixture client");
        for method in &METHODS {
            let ask = Ask {
                client,
                mode: Mode::Enforce,
                method,
                path: canonical,
                query,
            };
            match decide::route(&gate, ask) {
                Ok(routed) => {
                    check_routed(fx, path, query, default, &routed);
                    let want = if *method == Method::HEAD {
                        &Method::GET
                    } else {
                        method
                    };
                    assert_eq!(&routed.route.method, want);
                    assert!(
                        template_matches(&routed.route.template, routed.api_path),
                        "{method} {:?} matched {} whose segments differ",
                        routed.api_path,
                        routed.route.template
                    );
                }
                Err(d) => {
                    let code = d.error.code();
                    assert!(
                        matches!(
                            code,
                            "store_unknown" | "store_not_allowed" | "route_unknown" | "bad_request"
                        ),
                        "{method} {path:?}: unexpected refusal {code}"
                    );
                    if code == "store_not_allowed" {
                        let hash = d.store.as_ref().map(|s| s.hash.as_str());
                        assert_eq!(hash, Some("stores"), "{path:?}: refused an allowed store");
                    }
                }
            }
        }
    }
}

/// The store and API path of a routed request are the ones the path names.
fn check_routed(
    fx: &Fixture,
    path: &str,
    query: Option<&str>,
    default: Option<&str>,
    t: &decide::Routed<'_, '_>,
) {
    let stores = &fx.config.stores;
    let api = t.api_path;
    assert!(
        path.ends_with(api),
        "{path:?}: api path {api:?} is not its suffix"
    );
    assert_ne!(
        t.store.hash, "stores",
        "{path:?}: a store the client may not use"
    );
    let rest = &path[1..];
    let (first, after) = rest.split_once('/').unwrap_or((rest, ""));
    if first == "stores" {
        let name = after.split('/').next().unwrap_or("");
        assert_eq!(
            path,
            format!("/stores/{name}{api}"),
            "the api path is what follows the store segment"
        );
        assert_eq!(
            Some(&t.store.hash),
            owner_of(stores, name).as_ref(),
            "{path:?}: the store named {name:?} is not the one chosen"
        );
    } else {
        assert!(
            !first.eq_ignore_ascii_case("stores"),
            "{path:?}: a case variant of /stores/ was routed"
        );
        assert_eq!(
            default,
            Some(t.store.hash.as_str()),
            "{path:?}: not the default store"
        );
        assert_eq!(api, path, "{path:?}: a default-store path is the api path");
    }
    if let Ok(uri) = fx.upstream.uri(&t.store.hash, api, query) {
        let mut want = format!("/stores/{}{api}", t.store.hash);
        if let Some(q) = query {
            want.push('?');
            want.push_str(q);
        }
        let sent = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("");
        assert_eq!(
            sent, want,
            "the upstream target differs from the authorized one"
        );
    }
}

/// The hash of the one store whose hash or alias is exactly `name`.
fn owner_of(stores: &Stores, name: &str) -> Option<String> {
    let mut owners = stores
        .iter()
        .filter(|s| s.hash == name || s.alias.as_deref() == Some(name));
    let owner = owners.next().map(|s| s.hash.clone());
    assert!(owners.next().is_none(), "{name:?} names two stores");
    owner
}

fn assert_canonical(path: &str) {
    let rest = path.strip_prefix('/').expect("starts with '/'");
    for seg in rest.split('/') {
        assert!(!seg.is_empty(), "{path:?}: empty segment");
        let decoded = percent_encoding::percent_decode_str(seg).collect::<Vec<u8>>();
        let decoded = std::str::from_utf8(&decoded)
            .unwrap_or_else(|_| panic!("{path:?}: segment {seg:?} decodes to invalid UTF-8"));
        assert!(
            decoded != "." && decoded != "..",
            "{path:?}: dot segment {seg:?}"
        );
        assert!(
            !decoded.contains(['/', '\\', '%', ';']) && !decoded.chars().any(char::is_control),
            "{path:?}: segment {seg:?} decodes to a separator or control character"
        );
        let bytes = seg.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            assert!(
                b.is_ascii() && !b.is_ascii_control() && !b"\\;?#".contains(b),
                "{path:?}: raw byte {b:#04x}"
            );
            if *b == b'%' {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex digits");
                let v = u8::from_str_radix(hex, 16).expect("a valid escape");
                assert!(
                    !(v.is_ascii_alphanumeric() || b"-._~".contains(&v)),
                    "{path:?}: %{hex} encodes an unreserved character"
                );
            }
        }
    }
    // A normalizer has nothing to do on a canonical path (characters it
    // would percent-encode are left out of the comparison).
    let plain = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@/%".contains(&b));
    if plain {
        let url = url::Url::parse(&format!("http://h{path}")).expect("parses as a URL path");
        assert_eq!(url.path(), path, "a URL normalizer would change the path");
    }
}

/// Whether `api` (less a v2 format suffix) fits `template` segment by segment.
fn template_matches(template: &str, api: &str) -> bool {
    let t: Vec<&str> = template[1..].split('/').collect();
    let mut candidates = vec![api];
    if api.starts_with("/v2/") {
        for suffix in [".json", ".xml"] {
            if let Some(s) = api.strip_suffix(suffix) {
                candidates.push(s);
            }
        }
    }
    candidates.into_iter().any(|p| {
        let segs: Vec<&str> = p[1..].split('/').collect();
        segs.len() == t.len()
            && t.iter()
                .zip(&segs)
                .all(|(ts, s)| !s.is_empty() && (ts.starts_with('{') || ts == s))
    })
}
