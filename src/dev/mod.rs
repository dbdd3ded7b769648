//! `bcgate dev`: the real server, with a config made in memory, in front of
//! a mock BigCommerce ([`MockBigCommerce`]) whose certificate comes from a CA
//! made at run time ([`DevCa`]); it prints the keys and the `curl` lines that show an
//! allowed and a denied request. With `--tls` the proxy listener serves
//! HTTPS too, with a certificate from the same CA, which is written out so
//! that an SDK (which speaks only HTTPS) can trust it. The mock and the CA
//! are the `bcgate-testkit` crate, the integration tests' upstream too; this
//! module (feature `dev`, on by default; `without_feature.rs` otherwise) is
//! only what puts bcgate in front.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::config::{
    AdminFile, ClientFile, Config, FileConfig, ServerFile, StoreFile, TlsFile, UpstreamFile,
};
use crate::identify::{key_sha256, new_key};
use crate::secret::StoreToken;
use bcgate_testkit::ca::DevCa;
use bcgate_testkit::mock::MockBigCommerce;

/// The dev store's hash.
const STORE_HASH: &str = "dev123";
/// The dev store's alias.
const STORE_ALIAS: &str = "dev";
/// The dev clients: name and its one scope.
const CLIENTS: [(&str, &str); 2] = [
    ("catalog-reader", "store_v2_products_read_only"),
    ("catalog-editor", "store_v2_products"),
];
/// The body of the example `POST`.
const PRODUCT: &str = r#"{"name":"Dev T-shirt","type":"physical","weight":1,"price":19.99}"#;

/// A dev client and its key (printed: it is the user's to paste).
struct DevClient {
    name: &'static str,
    scope: &'static str,
    key: String,
}

/// Runs `bcgate dev` until SIGTERM or SIGINT: a fresh CA, store token and
/// client keys each time. Nothing is written to disk, except with `tls`
/// (`--tls --ca-out PATH`): the CA certificate to PATH, and the proxy's own
/// certificate and key to a private temporary directory removed on exit.
pub fn run(listen: SocketAddr, admin: SocketAddr, tls: Option<&Path>) -> Result<(), String> {
    let ca = DevCa::new();
    let tls_files = match tls {
        Some(ca_out) => Some(DevTlsFiles::write(&ca, ca_out, listen)?),
        None => None,
    };
    let token = store_token()?;
    let mock = MockBigCommerce::start_at(
        &ca,
        &[(STORE_HASH, token.as_str())],
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .map_err(|e| format!("cannot start the mock BigCommerce: {e}"))?;
    // A long session must not grow: the mock keeps no record of requests.
    mock.set_recording(false);
    let clients = CLIENTS
        .iter()
        .map(|&(name, scope)| {
            Ok(DevClient {
                name,
                scope,
                key: new_key()?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let file = FileConfig {
        server: ServerFile {
            listen: listen.to_string(),
            tls: tls_files.as_ref().map(|f| TlsFile {
                cert: f.dir.join("bcgate.pem"),
                key: f.dir.join("bcgate.key"),
                client_ca: None,
            }),
            ..ServerFile::default()
        },
        admin: Some(AdminFile {
            listen: admin.to_string(),
        }),
        upstream: UpstreamFile {
            base_url: mock.base_url(),
            // The mock serves every host under a path prefix; real
            // BigCommerce hosts must never see a dev session's requests.
            payments_url: mock.url("/payments-host"),
            b2b_url: mock.url("/b2b-host"),
            ca_pem: Some(ca.ca_pem()),
            ..UpstreamFile::default()
        },
        stores: vec![StoreFile {
            hash: STORE_HASH.into(),
            alias: Some(STORE_ALIAS.into()),
            token_env: None,
            token_file: None,
            token: Some(StoreToken::new(&token).map_err(|e| format!("dev store token: {e}"))?),
            scopes: None,
            client_id: None,
            client_secret_env: None,
            client_secret_file: None,
            channels: Vec::new(),
        }],
        clients: clients
            .iter()
            .map(|c| ClientFile {
                name: c.name.into(),
                key_sha256: Some(key_sha256(&c.key)),
                unix_uid: None,
                tls_subject: None,
                stores: vec![STORE_HASH.into()],
                default_store: Some(STORE_HASH.into()),
                scopes: vec![c.scope.into()],
                quota_weight: None,
                quota_max_share: None,
                mode: None,
                accounts: Vec::new(),
            })
            .collect(),
        routes: Vec::new(),
        app: None,
        token_store: None,
        quota: None,
        learn: None,
        accounts: Vec::new(),
        mint: Default::default(),
    };
    drop(token);
    let config = Config::from_memory(file, "bcgate dev").map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let bound = crate::server::bind(config).await?;
        print!(
            "{}",
            banner(
                &bound.proxy_url(),
                bound.admin_url().as_deref(),
                &mock.base_url(),
                &clients,
                tls_files.as_ref().map(|f| f.ca_out.as_path()),
            )
        );
        bound.serve().await
    })?;
    // The mock stops only after bcgate has drained.
    drop(mock);
    drop(tls_files);
    Ok(())
}

/// `bcgate dev --tls`: the CA written where the user asked, and the proxy's
/// certificate and key in a directory only this user can read, removed when
/// `bcgate dev` stops (the key is a throwaway, but still a key).
struct DevTlsFiles {
    /// `--ca-out`, absolute, for the banner's lines to paste.
    ca_out: PathBuf,
    dir: PathBuf,
}

impl DevTlsFiles {
    fn write(ca: &DevCa, ca_out: &Path, listen: SocketAddr) -> Result<Self, String> {
        std::fs::write(ca_out, ca.ca_pem())
            .map_err(|e| format!("--ca-out {}: {e}", ca_out.display()))?;
        let ca_out = std::path::absolute(ca_out)
            .map_err(|e| format!("--ca-out {}: {e}", ca_out.display()))?;
        // The names an SDK may dial: the loopback ones, and the listen
        // address itself when it is a specific other one.
        let ip = listen.ip().to_string();
        let mut sans = vec!["localhost", "127.0.0.1", "::1"];
        if !listen.ip().is_unspecified() && !sans.contains(&ip.as_str()) {
            sans.push(&ip);
        }
        let leaf = ca.issue_leaf(&sans);
        let mut nonce = [0u8; 8];
        getrandom::getrandom(&mut nonce).map_err(|e| format!("no randomness: {e}"))?;
        let dir = std::env::temp_dir().join(format!("bcgate-dev-{}", hex::encode(nonce)));
        let mut builder = std::fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let files = DevTlsFiles { ca_out, dir };
        for (name, pem) in [
            ("bcgate.pem", &leaf.cert_pem),
            ("bcgate.key", &leaf.key_pem),
        ] {
            let path = files.dir.join(name);
            std::fs::write(&path, pem).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(files)
    }
}

impl Drop for DevTlsFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `bcgate mock` until SIGTERM or SIGINT: the mock alone on `listen`,
/// recording nothing, with its CA written to `ca_out` and each `HASH=VAR`
/// store's token read from the environment (so no token is on a command line).
pub fn run_mock(
    listen: SocketAddr,
    ca_out: &std::path::Path,
    stores: &[String],
) -> Result<(), String> {
    let mut tokens = Vec::new();
    for spec in stores {
        let (hash, var) = spec
            .split_once('=')
            .filter(|(h, v)| crate::config::is_store_name(h) && !v.is_empty())
            .ok_or_else(|| format!("--store {spec:?}: expected HASH=ENV_VAR"))?;
        let token = std::env::var(var).map_err(|_| format!("--store {hash}: {var} is not set"))?;
        tokens.push((hash.to_owned(), Zeroizing::new(token)));
    }
    let ca = DevCa::new();
    std::fs::write(ca_out, ca.ca_pem())
        .map_err(|e| format!("--ca-out {}: {e}", ca_out.display()))?;
    let pairs: Vec<(&str, &str)> = tokens
        .iter()
        .map(|(h, t)| (h.as_str(), t.as_str()))
        .collect();
    let mock = MockBigCommerce::start_at(&ca, &pairs, listen)
        .map_err(|e| format!("cannot start the mock BigCommerce on {listen}: {e}"))?;
    mock.set_recording(false);
    println!("bcgate: mock BigCommerce listening on {}", mock.base_url());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(crate::server::shutdown_signal());
    drop(mock);
    Ok(())
}

/// A random store token, 64 hex digits, known to the mock and to bcgate only.
fn store_token() -> Result<Zeroizing<String>, String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::getrandom(&mut bytes[..]).map_err(|e| format!("no randomness: {e}"))?;
    Ok(Zeroizing::new(hex::encode(&bytes[..])))
}

/// What to paste. It is given the client keys but never the store token, so
/// it cannot print it.
fn banner(
    proxy: &str,
    admin: Option<&str>,
    mock: &str,
    clients: &[DevClient],
    ca_out: Option<&Path>,
) -> String {
    let products = format!("{proxy}/stores/{STORE_HASH}/v3/catalog/products");
    let cacert = ca_out
        .map(|p| format!("--cacert {} ", shell_quote(&p.display().to_string())))
        .unwrap_or_default();
    let get = |key: &str| format!("curl {cacert}-H 'X-Auth-Token: {key}' {products}");
    let post = |key: &str| {
        format!(
            "curl {cacert}-X POST -H 'X-Auth-Token: {key}' -H 'Content-Type: application/json' -d '{PRODUCT}' {products}"
        )
    };
    let (reader, editor) = match clients {
        [reader, editor, ..] => (reader.key.as_str(), editor.key.as_str()),
        _ => ("KEY", "KEY"),
    };
    let mut out = String::new();
    let disk = match ca_out {
        None => "Nothing is written to disk".to_owned(),
        Some(p) => format!(
            "bcgate serves HTTPS with a certificate from the same CA, written to\n{} for its clients to trust (bcgate's own key is in a private temporary\ndirectory, removed on exit)",
            p.display()
        ),
    };
    let _ = writeln!(
        out,
        "\nbcgate dev: the real bcgate, with a config made in memory, in front of a mock\n\
         BigCommerce at {mock} (certificate from a CA made for this run).\n\
         {disk}. The store token lives only in this process and is never shown.\n"
    );
    let _ = writeln!(out, "store:  {STORE_HASH} (alias {STORE_ALIAS})");
    for c in clients {
        let _ = writeln!(
            out,
            "client: {:<15} key {}  scopes {}",
            c.name, c.key, c.scope
        );
    }
    let _ = writeln!(
        out,
        "\nAllowed: the reader lists products (200; the mock answers with what it received):\n\n  {}\n",
        get(reader)
    );
    let _ = writeln!(
        out,
        "Denied: the reader creates a product (403 scope_denied):\n\n  {}\n",
        post(reader)
    );
    let _ = writeln!(
        out,
        "Allowed: the editor creates it (200):\n\n  {}\n",
        post(editor)
    );
    let _ = writeln!(
        out,
        "Also try: no key (401), /stores/nope/v3/catalog/products (404), /v3/catalog/products\n\
         (the client's default store), ?mock_status=429 (a rate-limited answer, passed through)."
    );
    if let Some(ca) = ca_out {
        let addr = proxy.split_once("://").map_or(proxy, |(_, a)| a);
        let ca = shell_quote(&ca.display().to_string());
        let _ = writeln!(
            out,
            "SDKs (docs/sdks.md): export these where your script runs, as the reader:\n\n  \
             export BC_API_ENDPOINT={addr} REQUESTS_CA_BUNDLE={ca}\n  \
             export BCGATE_ADDR={addr} BCGATE_CA_FILE={ca}\n  \
             export BC_STORE_HASH={STORE_HASH} BCGATE_KEY={reader}\n\n\
             (the first line is what the python bigcommerce SDK reads, the second what the\n\
             node-bigcommerce agent recipe reads).\n"
        );
    }
    if let Some(admin) = admin {
        let _ = writeln!(out, "Metrics: {admin}/metrics   readiness: {admin}/readyz");
    }
    let _ = writeln!(out, "Stop with Ctrl-C.\n");
    out
}

/// `text` as one shell word: as is when it is plain, else single-quoted.
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,=@%".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_names_every_client_and_has_three_curl_lines() {
        let clients = [
            DevClient {
                name: "catalog-reader",
                scope: "store_v2_products_read_only",
                key: "bcg_reader".into(),
            },
            DevClient {
                name: "catalog-editor",
                scope: "store_v2_products",
                key: "bcg_editor".into(),
            },
        ];
        let text = banner(
            "http://127.0.0.1:8080",
            Some("http://127.0.0.1:9090"),
            "https://127.0.0.1:4443",
            &clients,
            None,
        );
        let curls: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("curl "))
            .collect();
        assert_eq!(curls.len(), 3, "{text}");
        assert!(curls[0].contains("X-Auth-Token: bcg_reader") && !curls[0].contains("POST"));
        assert!(curls[1].contains("X-Auth-Token: bcg_reader") && curls[1].contains("-X POST"));
        assert!(curls[2].contains("X-Auth-Token: bcg_editor") && curls[2].contains("-X POST"));
        for c in curls {
            assert!(c.ends_with("http://127.0.0.1:8080/stores/dev123/v3/catalog/products"));
        }
        assert!(text.contains("client: catalog-reader"));
        assert!(text.contains("store:  dev123 (alias dev)"));
    }

    #[test]
    fn tls_banner_points_curl_and_the_sdks_at_the_written_ca() {
        let clients = [
            DevClient {
                name: "catalog-reader",
                scope: "store_v2_products_read_only",
                key: "bcg_reader".into(),
            },
            DevClient {
                name: "catalog-editor",
                scope: "store_v2_products",
                key: "bcg_editor".into(),
            },
        ];
        let text = banner(
            "https://127.0.0.1:8443",
            None,
            "https://127.0.0.1:4443",
            &clients,
            Some(Path::new("/home/a b/dev-ca.pem")),
        );
        let curls: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("curl "))
            .collect();
        assert_eq!(curls.len(), 3, "{text}");
        for c in curls {
            assert!(
                c.starts_with("curl --cacert '/home/a b/dev-ca.pem' "),
                "{c}"
            );
        }
        let exports: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("export "))
            .collect();
        assert_eq!(
            exports,
            [
                "export BC_API_ENDPOINT=127.0.0.1:8443 REQUESTS_CA_BUNDLE='/home/a b/dev-ca.pem'",
                "export BCGATE_ADDR=127.0.0.1:8443 BCGATE_CA_FILE='/home/a b/dev-ca.pem'",
                "export BC_STORE_HASH=dev123 BCGATE_KEY=bcg_reader",
            ]
        );
    }

    #[test]
    fn shell_quote_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(shell_quote("/tmp/dev-ca.pem"), "/tmp/dev-ca.pem");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
