//! Path canonicalization and routing: the request target as hyper would
//! parse it → `route::check_canonical` → `route::target` → the upstream URI
//! and the route table lookup.
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
//! - the URI sent upstream is `/stores/{real hash}` + that API path + the
//!   caller's query, unchanged;
//! - a route found for it matches its template segment for segment.
#![no_main]

use std::sync::OnceLock;

use bcgate::config::{Config, FileConfig, StoreFile, Stores};
use bcgate::forward::Upstream;
use bcgate::policy::Lookup;
use bcgate::route;
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
    upstream: Upstream,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("bcgate-fuzz-route-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let token = dir.join("token");
        std::fs::write(&token, "fuzz-store-token").expect("write token file");
        let file = FileConfig {
            stores: STORES
                .iter()
                .map(|(hash, alias)| StoreFile {
                    hash: (*hash).to_owned(),
                    alias: alias.map(str::to_owned),
                    token_env: None,
                    token_file: Some(token.clone()),
                    token: None,
                    scopes: None,
                })
                .collect(),
            ..FileConfig::default()
        };
        let config = Config::validate(file, &dir.join("bcgate.toml")).expect("fixture config");
        let _ = std::fs::remove_dir_all(&dir);
        let upstream = Upstream::new(&config.upstream).expect("upstream client");
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
    if route::check_canonical(path).is_err() {
        return;
    }
    assert_canonical(path);
    let stores = &fx.config.stores;
    for default in [Some(DEFAULT), None] {
        let Ok(t) = route::target(path, stores, default) else {
            continue;
        };
        let api = t.api_path;
        assert!(
            path.ends_with(api),
            "{path:?}: api path {api:?} is not its suffix"
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
        for method in &METHODS {
            if let Lookup::Found(r) = fx.config.policy.routes.lookup(method, api) {
                let want = if *method == Method::HEAD {
                    &Method::GET
                } else {
                    method
                };
                assert_eq!(&r.method, want);
                assert!(
                    template_matches(&r.template, api),
                    "{method} {api:?} matched {} whose segments differ",
                    r.template
                );
            }
        }
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
