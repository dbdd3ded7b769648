//! `bcgate dev`: the real server, with a config made in memory, in front of
//! a mock BigCommerce ([`MockBigCommerce`]) whose certificate comes from a CA
//! made at run time ([`DevCa`]); it prints the keys and the `curl` lines that show an
//! allowed and a denied request, and one working request to each of the
//! other BigCommerce hosts (payments, a storefront, B2B Edition, an
//! account). With `--tls` the proxy listener serves
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
    AccountFile, AdminFile, ChannelFile, ClientFile, Config, FileConfig, ServerFile, StoreFile,
    TlsFile, UpstreamFile,
};
use crate::identify::{key_sha256, new_key};
use crate::secret::{Secret, StoreToken};
use bcgate_testkit::ca::DevCa;
use bcgate_testkit::mock::MockBigCommerce;

/// The dev store's hash.
const STORE_HASH: &str = "dev123";
/// The dev store's alias.
const STORE_ALIAS: &str = "dev";
/// The dev store's storefront channel.
const CHANNEL: u32 = 1;
/// The client id of the dev store's API account (the `aud` of its shoppers'
/// current.jwt); its secret is made at run time.
const CLIENT_ID: &str = "bcgate-dev";
/// The dev account (account-level GraphQL).
const ACCOUNT: &str = "de7de7de-0000-4000-8000-000000000001";
/// The customer the printed shopper token names.
const SHOPPER: u64 = 1;
/// How long the printed shopper token is valid.
const SHOPPER_TOKEN_TTL_S: i64 = 86_400;
/// The dev clients: name and scopes. The last one (`shop`) uses the other
/// hosts and may call the dev account.
const CLIENTS: [(&str, &[&str]); 3] = [
    ("catalog-reader", &["store_v2_products_read_only"]),
    ("catalog-editor", &["store_v2_products"]),
    (
        "shop",
        &[
            "store_payments_access_token_create",
            "storefront:Unauthenticated",
            "storefront:Customer",
            "b2b:read",
            "account_read",
        ],
    ),
];
/// The body of the example `POST`.
const PRODUCT: &str = r#"{"name":"Dev T-shirt","type":"physical","weight":1,"price":19.99}"#;
/// The body of the example payment: a stored card, so no card number is shown.
const PAYMENT: &str = r#"{"payment":{"instrument":{"type":"stored_card","token":"dev-stored-card"},"payment_method_id":"stripe.card"}}"#;
/// The example storefront query.
const STOREFRONT_QUERY: &str = r#"{"query":"{ site { settings { storeName } } }"}"#;
/// The example account-level query.
const ACCOUNT_QUERY: &str = r#"{"query":"{ account { id } }"}"#;

/// A dev client and its key (printed: it is the user's to paste).
struct DevClient {
    name: &'static str,
    scopes: &'static [&'static str],
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
    let token = random_hex()?;
    let account_token = random_hex()?;
    let client_secret = random_hex()?;
    let mock = MockBigCommerce::start_at(
        &ca,
        &[(STORE_HASH, token.as_str())],
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .map_err(|e| format!("cannot start the mock BigCommerce: {e}"))?;
    // A long session must not grow: the mock keeps no record of requests.
    mock.set_recording(false);
    mock.add_account(ACCOUNT, &account_token);
    let clients = CLIENTS
        .iter()
        .map(|&(name, scopes)| {
            Ok(DevClient {
                name,
                scopes,
                key: new_key()?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    // What a storefront would hand a signed-in shopper: bcgate verifies it
    // with the store's client secret, which is never shown.
    let mut claims = bcgate_testkit::customer_jwt_claims(CLIENT_ID, SHOPPER, SHOPPER_TOKEN_TTL_S);
    claims["store_hash"] = STORE_HASH.into();
    let shopper_token = bcgate_testkit::sign_hs256(&claims, &client_secret);
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
            client_id: Some(CLIENT_ID.into()),
            client_secret_env: None,
            client_secret_file: None,
            client_secret: Some(
                Secret::text(&client_secret).map_err(|e| format!("dev client secret: {e}"))?,
            ),
            channels: vec![ChannelFile {
                id: CHANNEL,
                origin: mock.storefront_origin(STORE_HASH, CHANNEL),
            }],
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
                scopes: c.scopes.iter().map(|s| (*s).to_owned()).collect(),
                quota_weight: None,
                quota_max_share: None,
                mode: None,
                accounts: if c.uses_account() {
                    vec![ACCOUNT.into()]
                } else {
                    Vec::new()
                },
            })
            .collect(),
        routes: Vec::new(),
        app: None,
        token_store: None,
        quota: None,
        learn: None,
        accounts: vec![AccountFile {
            uuid: ACCOUNT.into(),
            token_env: None,
            token_file: None,
            token: Some(
                StoreToken::new(&account_token).map_err(|e| format!("dev account token: {e}"))?,
            ),
        }],
        mint: Default::default(),
    };
    drop((token, account_token, client_secret));
    let config = Config::from_memory(file, "bcgate dev").map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let bound = crate::server::bind(config).await?;
        print!(
            "{}",
            banner(&Banner {
                proxy: &bound.proxy_url(),
                admin: bound.admin_url().as_deref(),
                mock: &mock.base_url(),
                storefront: &mock.storefront_origin(STORE_HASH, CHANNEL),
                clients: &clients,
                ca_out: tls_files.as_ref().map(|f| f.ca_out.as_path()),
                shopper_token: &shopper_token,
            })
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

impl DevClient {
    /// The client that calls the dev account (the one using every host).
    fn uses_account(&self) -> bool {
        self.scopes.contains(&"account_read")
    }
}

/// A random secret (a store or account token, a client secret), 64 hex
/// digits, known to the mock and to bcgate only.
fn random_hex() -> Result<Zeroizing<String>, String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::getrandom(&mut bytes[..]).map_err(|e| format!("no randomness: {e}"))?;
    Ok(Zeroizing::new(hex::encode(&bytes[..])))
}

/// What [`banner`] prints: never a store or account token or the client
/// secret, which it is not given.
struct Banner<'a> {
    proxy: &'a str,
    admin: Option<&'a str>,
    mock: &'a str,
    /// The dev channel's storefront origin on the mock.
    storefront: &'a str,
    clients: &'a [DevClient],
    ca_out: Option<&'a Path>,
    /// A current.jwt for the dev store's shopper (a customer's token, not
    /// bcgate's secret: printed for the storefront line).
    shopper_token: &'a str,
}

/// What to paste. It is given the client keys but never the store token, so
/// it cannot print it.
fn banner(b: &Banner<'_>) -> String {
    let (proxy, clients, ca_out) = (b.proxy, b.clients, b.ca_out);
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
    // A JSON POST with extra headers, to any path on bcgate.
    let post_json = |key: &str, headers: &[(&str, &str)], body: &str, path: &str| {
        let extra: String = headers
            .iter()
            .map(|(n, v)| format!("-H '{n}: {v}' "))
            .collect();
        format!(
            "curl {cacert}-X POST -H 'X-Auth-Token: {key}' {extra}-H 'Content-Type: application/json' -d '{body}' {proxy}{path}"
        )
    };
    let (reader, editor, shop) = match clients {
        [reader, editor, shop, ..] => (reader.key.as_str(), editor.key.as_str(), shop.key.as_str()),
        _ => ("KEY", "KEY", "KEY"),
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
         BigCommerce at {} (certificate from a CA made for this run).\n\
         {disk}. The store's token and client secret and the account's token\n\
         live only in this process and are never shown.\n",
        b.mock
    );
    let _ = writeln!(
        out,
        "store:  {STORE_HASH} (alias {STORE_ALIAS}); client_id {CLIENT_ID}; channel {CHANNEL} at {}",
        b.storefront
    );
    let _ = writeln!(out, "account: {ACCOUNT}");
    for c in clients {
        let accounts = if c.uses_account() {
            format!("  accounts {ACCOUNT}")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "client: {:<15} key {}  scopes {}{accounts}",
            c.name,
            c.key,
            c.scopes.join(",")
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
        "The other BigCommerce hosts, as the shop client (each 2xx; bcgate adds the\n\
         credential each host takes, minting it where BigCommerce requires):\n"
    );
    let _ = writeln!(
        out,
        "Payments: a payment access token minted for order 1 (201):\n\n  {}\n",
        post_json(
            shop,
            &[("X-Bcgate-Order-Id", "1")],
            PAYMENT,
            &format!("/stores/{STORE_HASH}/payments")
        )
    );
    let storefront = format!("/stores/{STORE_HASH}/storefront/graphql");
    let _ = writeln!(
        out,
        "Storefront GraphQL: a private token with the client's storefront scopes (200):\n\n  {}\n",
        post_json(shop, &[], STOREFRONT_QUERY, &storefront)
    );
    let _ = writeln!(
        out,
        "Storefront GraphQL as a signed-in shopper: the current.jwt a storefront hands\n\
         customer {SHOPPER} (valid for a day), verified with the store's client secret (200):\n\n  {}\n",
        post_json(
            shop,
            &[("X-Bcgate-Customer-Token", b.shopper_token)],
            STOREFRONT_QUERY,
            &storefront
        )
    );
    let _ = writeln!(
        out,
        "B2B Edition: the store's token with X-Store-Hash (200):\n\n  curl {cacert}-H 'X-Auth-Token: {shop}' {proxy}/stores/{STORE_HASH}/b2b/v3/io/companies\n"
    );
    let _ = writeln!(
        out,
        "Account-level GraphQL: the account's token (200):\n\n  {}\n",
        post_json(
            shop,
            &[],
            ACCOUNT_QUERY,
            &format!("/accounts/{ACCOUNT}/graphql")
        )
    );
    let _ = writeln!(
        out,
        "Also try: no key (401), /stores/nope/v3/catalog/products (404), /v3/catalog/products\n\
         (the client's default store), ?mock_status=429 (a rate-limited answer, passed through),\n\
         the storefront line with -H 'X-Bc-Customer-Id: 1' instead of the shopper's token\n\
         (403: shop lacks storefront:impersonate)."
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
    if let Some(admin) = b.admin {
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

    fn clients() -> Vec<DevClient> {
        CLIENTS
            .iter()
            .zip(["bcg_reader", "bcg_editor", "bcg_shop"])
            .map(|(&(name, scopes), key)| DevClient {
                name,
                scopes,
                key: key.into(),
            })
            .collect()
    }

    fn text(proxy: &str, ca_out: Option<&Path>) -> String {
        banner(&Banner {
            proxy,
            admin: Some("http://127.0.0.1:9090"),
            mock: "https://127.0.0.1:4443",
            storefront: "https://127.0.0.1:4443/storefront/dev123/1",
            clients: &clients(),
            ca_out,
            shopper_token: "eyJhbGciOiJIUzI1NiJ9.e30.sig",
        })
    }

    fn curls(text: &str) -> Vec<&str> {
        text.lines()
            .map(str::trim)
            .filter(|l| l.starts_with("curl "))
            .collect()
    }

    #[test]
    fn banner_names_every_client_and_has_a_curl_line_per_host() {
        let text = text("http://127.0.0.1:8080", None);
        let curls = curls(&text);
        assert_eq!(curls.len(), 8, "{text}");
        assert!(curls[0].contains("X-Auth-Token: bcg_reader") && !curls[0].contains("POST"));
        assert!(curls[1].contains("X-Auth-Token: bcg_reader") && curls[1].contains("-X POST"));
        assert!(curls[2].contains("X-Auth-Token: bcg_editor") && curls[2].contains("-X POST"));
        for c in &curls[..3] {
            assert!(c.ends_with("http://127.0.0.1:8080/stores/dev123/v3/catalog/products"));
        }
        let ends = [
            "/stores/dev123/payments",
            "/stores/dev123/storefront/graphql",
            "/stores/dev123/storefront/graphql",
            "/stores/dev123/b2b/v3/io/companies",
            "/accounts/de7de7de-0000-4000-8000-000000000001/graphql",
        ];
        for (c, end) in curls[3..].iter().zip(ends) {
            assert!(c.contains("X-Auth-Token: bcg_shop"), "{c}");
            assert!(c.ends_with(&format!("http://127.0.0.1:8080{end}")), "{c}");
        }
        assert!(curls[3].contains("-H 'X-Bcgate-Order-Id: 1'"));
        assert!(curls[5].contains("-H 'X-Bcgate-Customer-Token: eyJhbGciOiJIUzI1NiJ9.e30.sig'"));
        assert!(text.contains("client: catalog-reader"));
        assert!(text.contains(
            "client: shop            key bcg_shop  scopes store_payments_access_token_create,storefront:Unauthenticated,storefront:Customer,b2b:read,account_read  accounts de7de7de-"
        ));
        assert!(text.contains("store:  dev123 (alias dev); client_id bcgate-dev; channel 1 at https://127.0.0.1:4443/storefront/dev123/1"));
    }

    #[test]
    fn tls_banner_points_curl_and_the_sdks_at_the_written_ca() {
        let text = text(
            "https://127.0.0.1:8443",
            Some(Path::new("/home/a b/dev-ca.pem")),
        );
        let curls = curls(&text);
        assert_eq!(curls.len(), 8, "{text}");
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
