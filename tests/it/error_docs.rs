//! Error `type` URIs point at documentation that exists: docs/errors.md has
//! one heading per code (so `#<code>` is an anchor on that page), and the
//! `type` bcgate answers with is `server.error_docs_url` + `#<code>`, the
//! default a `tag:` URI. Real process, real sockets.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use support::{Bcgate, assert_problem, key_sha256, plain_client, send};

const KEY: &str = "bcg-key-error-docs-3Jd8Qm2Wz";
const TOKEN: &str = "bc-store-token-error-docs-Kx7Pn4Rb";
const DEFAULT_BASE: &str = "tag:bcgate.invalid,2026:errors";

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()))
}

/// Every code `ProxyError::code` can return: the rows of its one table. A
/// code added there without a heading in the docs fails this test.
fn error_codes() -> Vec<String> {
    bcgate::error::ErrorKind::ALL
        .iter()
        .map(|k| k.code.to_owned())
        .collect()
}

/// The anchor GitHub (and most Markdown renderers) give a heading: lower
/// case, punctuation other than `-` and `_` dropped, spaces as `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Heading anchors of a Markdown document (fenced code skipped), with how
/// often each occurs.
fn heading_anchors(markdown: &str) -> BTreeMap<String, usize> {
    let mut anchors = BTreeMap::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            *anchors.entry(slug(&line[hashes..])).or_insert(0) += 1;
        }
    }
    anchors
}

#[test]
fn every_error_code_has_its_own_heading_in_docs_errors_md() {
    let codes = error_codes();
    assert!(
        codes.len() >= 15 && codes.iter().any(|c| c == "scope_denied"),
        "could not read the codes from src/error.rs: {codes:?}"
    );
    let docs = repo_file("docs/errors.md");
    let anchors = heading_anchors(&docs);
    for code in &codes {
        assert_eq!(
            anchors.get(code.as_str()),
            Some(&1),
            "docs/errors.md needs exactly one heading `### {code}` (anchor #{code}); anchors: {:?}",
            anchors.keys().collect::<Vec<_>>()
        );
    }
    // The page's own links to codes land on a heading too.
    for link in docs.split("](#").skip(1) {
        let anchor = link.split(')').next().unwrap_or_default();
        assert!(
            anchors.contains_key(anchor),
            "docs/errors.md links to #{anchor}, which is no heading"
        );
    }
}

fn config(server_extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
{server_extra}

[upstream]
base_url = "https://127.0.0.1:9"

[[stores]]
hash = "abc123"
token_env = "BC_TOKEN_ERROR_DOCS"

[[clients]]
name = "docs-reader"
key_sha256 = "{}"
stores = ["abc123"]
scopes = ["store_v2_products_read_only"]
"#,
        key_sha256(KEY)
    )
}

fn start(server_extra: &str) -> Bcgate {
    Bcgate::start(&config(server_extra), &[("BC_TOKEN_ERROR_DOCS", TOKEN)])
}

/// The `type` of the 401 (no key) and the 404 (unknown store) `gate` answers.
async fn types(gate: &Bcgate) -> [(String, &'static str); 2] {
    let http = plain_client();
    let unauth = send(http.get(gate.url("/stores/abc123/v3/catalog/products"))).await;
    let body = assert_problem(&unauth, 401, "unauthenticated");
    let unknown = send(
        http.get(gate.url("/stores/nope/v3/catalog/products"))
            .header("X-Auth-Token", KEY),
    )
    .await;
    let body2 = assert_problem(&unknown, 404, "store_unknown");
    [
        (
            body["type"].as_str().unwrap_or_default().to_owned(),
            "unauthenticated",
        ),
        (
            body2["type"].as_str().unwrap_or_default().to_owned(),
            "store_unknown",
        ),
    ]
}

#[tokio::test]
async fn the_type_uri_is_the_default_tag_uri_plus_the_code() {
    let gate = start("");
    for (type_, code) in types(&gate).await {
        assert_eq!(type_, format!("{DEFAULT_BASE}#{code}"));
    }
    gate.assert_logs_free_of(&[TOKEN, KEY]);
}

#[tokio::test]
async fn the_type_uri_is_built_from_the_configured_base_and_follows_a_reload() {
    let base = "https://docs.example.com/bcgate/errors.html";
    let gate = start(&format!("error_docs_url = \"{base}\""));
    for (type_, code) in types(&gate).await {
        assert_eq!(type_, format!("{base}#{code}"));
    }

    let moved = "https://wiki.example.org/ops/bcgate-errors";
    gate.rewrite_config(&config(&format!("error_docs_url = \"{moved}\"")));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = types(&gate).await;
        if now.iter().all(|(t, code)| *t == format!("{moved}#{code}")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the reload the type is still {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_bad_error_docs_url_is_refused_naming_the_key() {
    for (bad, why) in [
        ("errors.html", "absolute URI"),
        ("https://docs.example.com/errors.html#codes", "fragment"),
        ("https://docs.example.com/bcgate errors", "URI characters"),
    ] {
        let dir = support::process::temp_dir();
        let path = dir.path().join("bcgate.toml");
        std::fs::write(&path, config(&format!("error_docs_url = \"{bad}\""))).expect("write");
        let out = Bcgate::run_cli_in(
            dir.path(),
            &["check", "--config", path.to_str().unwrap_or_default()],
            &[("BC_TOKEN_ERROR_DOCS", TOKEN)],
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{bad:?} was accepted: {text}");
        assert!(
            text.contains("server.error_docs_url") && text.contains(why),
            "{bad:?}: the error should name the key and say {why:?}: {text}"
        );
    }
}
