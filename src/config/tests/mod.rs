//! Every validation error, in process: a config text, the key the error
//! must name and a fragment of its message. The spawn-the-binary cases in
//! tests/cli.rs check the same errors as an operator sees them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Config, ConfigError, Listen, Mode, file};

/// A client key digest (64 hex digits).
const DIGEST: &str = "abababababababababababababababababababababababababababababababab";
/// A variable no test sets.
pub(super) const UNSET: &str = "BCGATE_CONFIG_TEST_VARIABLE_THAT_IS_NEVER_SET";

/// A directory holding the files configs refer to: `t` (a store token),
/// `empty`, `key` (a good token store key), `badkey`, `shortkey`, `secret`
/// (an app client secret), `store-secret` (a store's client secret),
/// `account-token` and `cert` (any file: validation only checks
/// that TLS files exist).
struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in [
            ("t", "store-token-for-config-tests\n"),
            ("empty", " \n"),
            ("key", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n"),
            ("badkey", "not base64 at all!"),
            ("shortkey", "AQEBAQ=="),
            ("secret", "app-client-secret\n"),
            ("store-secret", "store-client-secret\n"),
            ("account-token", "account-token-for-config-tests\n"),
            ("cert", "not read by validation"),
        ] {
            std::fs::write(dir.path().join(name), text).expect("fixture file");
        }
        Self { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("bcgate.toml")
    }

    /// Loads `text` as the config file, `KEY` replaced by [`DIGEST`].
    fn load(&self, text: &str) -> Result<Config, ConfigError> {
        let path = self.path();
        std::fs::write(&path, text.replace("KEY", DIGEST)).expect("config file");
        Config::load(&path)
    }

    fn load_without_secrets(&self, text: &str) -> Result<Config, ConfigError> {
        let path = self.path();
        std::fs::write(&path, text.replace("KEY", DIGEST)).expect("config file");
        Config::load_without_secrets(&path)
    }
}

mod cases;

use cases::{ACCOUNT, APP, CLIENT, STORE, TOKEN_STORE, cases};

#[test]
fn every_validation_error_names_its_key_and_says_why() {
    let dir = Dir::new();
    let mut failures = Vec::new();
    for (text, key, fragment) in cases() {
        match dir.load(&text) {
            Ok(_) => failures.push(format!("accepted:\n{text}")),
            Err(e) => {
                if e.key != key || !e.msg.contains(fragment) || e.env.is_some() {
                    failures.push(format!(
                        "want {key:?} / {fragment:?}\n got {:?} / {:?}\nfor:\n{text}",
                        e.key, e.msg
                    ));
                }
                let shown = e.to_string();
                let expect = if key.is_empty() {
                    format!("{}: ", dir.path().display())
                } else {
                    format!("{}: {key}: ", dir.path().display())
                };
                if !shown.starts_with(&expect) {
                    failures.push(format!("shown as {shown:?}, not after {expect:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_fixtures_alone_are_a_valid_config() {
    let dir = Dir::new();
    let cfg = dir
        .load(&format!(
            "{STORE}\n{CLIENT}mode = \"learn\"\n{TOKEN_STORE}\n{APP}\n[learn]\npath = \"obs\"\n[quota]\n"
        ))
        .expect("valid");
    let client = cfg.clients.by_name("c").expect("client");
    assert_eq!(client.mode, Mode::Learn);
    assert_eq!(
        cfg.stores
            .get("abc123")
            .expect("store")
            .token
            .header_value(),
        "store-token-for-config-tests"
    );
    let app = cfg.app.as_ref().expect("[app]");
    assert_eq!(app.client_secret.expose(), "app-client-secret");
    assert!(
        !format!("{cfg:?}").contains("app-client-secret"),
        "Debug redacts the client secret"
    );
    assert!(
        !format!("{cfg:?}").contains("store-token-for"),
        "Debug redacts the store token"
    );
    let key = cfg
        .token_store
        .as_ref()
        .expect("[token_store]")
        .key()
        .expect("key");
    assert_eq!(key.expose_bytes(), [1u8; 32]);
    assert!(!format!("{key:?}").contains('1'));
}

#[test]
fn no_such_file_names_the_file_and_no_key() {
    let e = Config::load(Path::new("/nonexistent/bcgate.toml")).expect_err("missing");
    assert_eq!(
        (e.key.as_str(), e.msg.as_str()),
        ("", "no such config file")
    );
    assert_eq!(
        e.to_string(),
        "/nonexistent/bcgate.toml: no such config file"
    );
}

#[test]
fn without_secrets_nothing_is_read_and_missing_files_pass() {
    let dir = Dir::new();
    let text = format!(
        "[[stores]]\nhash = \"abc\"\ntoken_env = \"{UNSET}\"\n[[stores]]\nhash = \"def\"\ntoken_file = \"missing\"\n\
         [token_store]\nkind = \"file\"\npath = \"tokens\"\nkey_env = \"{UNSET}\"\n\
         [app]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://g.example\"\nclient_id = \"id\"\n\
         client_secret_env = \"{UNSET}\"\nscopes = [\"store_v2_products\"]\n"
    );
    assert!(dir.load(&text).is_err(), "a server needs the secrets");
    let cfg = dir.load_without_secrets(&text).expect("explain needs none");
    assert_eq!(cfg.stores.iter().count(), 2);
    // The rules that need no secret still hold.
    let e = dir
        .load_without_secrets("[[stores]]\nhash = \"ABC\"\ntoken_file = \"missing\"\n")
        .expect_err("bad hash");
    assert_eq!(e.key, "stores[0].hash");
}

#[test]
fn a_file_error_is_blamed_on_the_variable_that_set_the_key() {
    let dir = Dir::new();
    let vars = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
    // serde gives the key; blame_env matches it against the variables' names.
    let e = dir
        .load("[server]\nmax_body_bytes = \"x\"\n")
        .expect_err("bad type");
    assert_eq!(e.key, "server.max_body_bytes");
    let blamed = e
        .clone()
        .blame_env(vars(&["BCGATE__SERVER__LISTEN", "BCGATE__SERVER__MAX_BODY_BYTES"]).into_iter());
    assert_eq!(
        blamed.env.as_deref(),
        Some("BCGATE__SERVER__MAX_BODY_BYTES")
    );
    assert!(blamed.to_string().starts_with(
        "environment variable BCGATE__SERVER__MAX_BODY_BYTES (server.max_body_bytes): invalid type"
    ));
    let innocent = e.blame_env(vars(&["BCGATE__SERVER__LISTEN", "PATH"]).into_iter());
    assert_eq!(
        innocent.env, None,
        "an override of another key is not to blame"
    );
    // An unknown field is reported on its table; the variable that named it is blamed.
    let e = dir
        .load("[server]\nbogus_option = 1\n")
        .expect_err("unknown");
    let blamed = e.blame_env(vars(&["BCGATE__SERVER__BOGUS_OPTION"]).into_iter());
    assert_eq!(blamed.env.as_deref(), Some("BCGATE__SERVER__BOGUS_OPTION"));
    assert_eq!(blamed.key, "server.bogus_option");
    let e = dir
        .load("[servr]\nlisten = \"x\"\n")
        .expect_err("unknown section");
    let blamed = e.blame_env(vars(&["BCGATE__SERVR__LISTEN"]).into_iter());
    assert_eq!(blamed.env.as_deref(), Some("BCGATE__SERVR__LISTEN"));
}

#[test]
fn relative_paths_are_resolved_against_the_config_file() {
    let dir = Dir::new();
    let cfg = dir
        .load("[server]\nlisten = \"unix:gate.sock\"\n")
        .expect("valid");
    assert_eq!(
        cfg.server.listen,
        Listen::Unix(dir.dir.path().join("gate.sock"))
    );
    assert_eq!(cfg.path.as_deref(), Some(dir.path().as_path()));
}

#[test]
fn the_file_form_rejects_unknown_keys_in_every_section() {
    for section in [
        "server",
        "upstream",
        "quota",
        "learn",
        "app",
        "token_store",
        "admin",
        "mint",
    ] {
        let text = format!("[{section}]\nnot_a_key = 1\n");
        let e = match toml_to_file(&text) {
            Ok(_) => panic!("[{section}] accepted an unknown key"),
            Err(e) => e,
        };
        assert!(
            e.msg.contains("unknown field `not_a_key`"),
            "{section}: {e}"
        );
    }
}

/// Only the file form, without validation.
fn toml_to_file(text: &str) -> Result<file::FileConfig, ConfigError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("f.toml");
    std::fs::write(&path, text).expect("config file");
    file::read(&path)
}

#[test]
fn redis_passwords_are_kept_as_secrets() {
    let dir = Dir::new();
    let cfg = dir
        .load(&format!(
            "{STORE}\n{CLIENT}mode = \"learn\"\n[learn]\n\
             [token_store]\nkind = \"redis\"\nurl = \"redis://:hunter2@db:6379/0\"\nkey_file = \"key\"\n\
             [quota]\nredis_url = \"redis://u:hunter3@db:6379/1\"\n"
        ))
        .expect("valid");
    let shown = format!("{cfg:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("hunter3"),
        "{shown}"
    );
    assert!(
        shown.contains("redis://db:6379/0"),
        "the host stays visible: {shown}"
    );
    let learn = cfg.learn.as_ref().expect("[learn]");
    assert_eq!(learn.backend.to_string(), "redis://db:6379/0");
    let quota = cfg.quota.as_ref().expect("[quota]");
    let url = quota.redis_url.as_ref().expect("redis_url");
    assert_eq!(url.expose(), "redis://u:hunter3@db:6379/1");
    assert_eq!(url.to_string(), "[REDACTED]");
}

/// A store with a client secret and channels, an account, a client of
/// both, other hosts and `[mint]`: every new key at once.
const EVERY_HOST: &str = "\
[upstream]
payments_url = \"https://payments.example/prefix/\"
b2b_url = \"https://b2b.example:8443\"

[[stores]]
hash = \"abc123\"
token_file = \"t\"
client_id = \"store-client-id\"
client_secret_file = \"store-secret\"
channels = [
  { id = 7, origin = \"https://seven.example\" },
  { id = 1, origin = \"https://shop.example/en/\" },
]

[[accounts]]
uuid = \"ACCOUNT\"
token_file = \"account-token\"

[[clients]]
name = \"c\"
key_sha256 = \"KEY\"
stores = [\"abc123\"]
accounts = [\"ACCOUNT\"]

[mint]
token_lifetime_s = 7200
renew_before_s = 600
";

#[test]
fn every_host_secret_channel_and_account_reaches_the_runtime_form() {
    let dir = Dir::new();
    let cfg = dir
        .load(&EVERY_HOST.replace("ACCOUNT", ACCOUNT))
        .expect("valid");
    let up = &cfg.upstream;
    assert_eq!(up.payments.base_url, "https://payments.example/prefix/");
    assert_eq!(up.payments.authority.as_str(), "payments.example");
    assert_eq!(up.payments.base_path, "/prefix");
    assert_eq!(up.payments.host, "payments.example");
    assert_eq!(up.b2b.authority.as_str(), "b2b.example:8443");
    assert_eq!(up.b2b.host, "b2b.example:8443");
    assert_eq!(up.b2b.base_path, "");
    let api = up.api_origin();
    assert_eq!(
        (
            api.base_url.as_str(),
            api.authority.as_str(),
            api.base_path.as_str()
        ),
        ("https://api.bigcommerce.com", "api.bigcommerce.com", "")
    );
    assert_eq!(api.host, up.host);

    let store = cfg.stores.get("abc123").expect("store");
    assert_eq!(store.client_id.as_deref(), Some("store-client-id"));
    assert_eq!(
        store.client_secret.as_ref().map(|s| s.expose()),
        Some("store-client-secret")
    );
    let secret_file = dir.dir.path().join("store-secret");
    assert_eq!(
        store.client_secret_source.as_deref(),
        Some(format!("file {}", secret_file.display()).as_str())
    );
    // Channel 1 is the default even when listed second; an unknown id is none.
    assert_eq!(store.channel(None).map(|c| c.id), Some(1));
    let one = store.channel(Some(1)).expect("channel 1");
    assert_eq!(one.origin.authority.as_str(), "shop.example");
    assert_eq!(one.origin.base_path, "/en");
    assert_eq!(store.channel(Some(7)).map(|c| c.id), Some(7));
    assert!(store.channel(Some(2)).is_none());
    assert!(store.channel(Some(0)).is_none());

    let account = cfg.accounts.get(ACCOUNT).expect("account");
    assert_eq!(account.uuid, ACCOUNT);
    assert_eq!(
        account.token.header_value(),
        "account-token-for-config-tests"
    );
    assert_eq!(
        account.token_file.as_deref(),
        Some(dir.dir.path().join("account-token").as_path())
    );
    assert!(cfg.accounts.get(&ACCOUNT.to_uppercase()).is_none());
    assert_eq!(cfg.accounts.iter().count(), 1);
    let client = cfg.clients.by_name("c").expect("client");
    assert_eq!(client.accounts, [ACCOUNT]);

    assert_eq!(cfg.mint.token_lifetime, Duration::from_secs(7200));
    assert_eq!(cfg.mint.renew_before, Duration::from_secs(600));

    // A reload re-reads every secret file, so each is one to watch.
    let mut files: Vec<&Path> = cfg.secret_files().collect();
    files.sort();
    let mut want = [
        dir.dir.path().join("account-token"),
        secret_file.clone(),
        dir.dir.path().join("t"),
    ];
    want.sort();
    assert_eq!(files, want.iter().map(PathBuf::as_path).collect::<Vec<_>>());
}

#[test]
fn no_client_secret_or_account_token_is_shown_by_debug() {
    let dir = Dir::new();
    let cfg = dir
        .load(&EVERY_HOST.replace("ACCOUNT", ACCOUNT))
        .expect("valid");
    let shown = format!("{cfg:?}");
    for secret in [
        "store-client-secret",
        "account-token-for-config-tests",
        "store-token-for",
    ] {
        assert!(!shown.contains(secret), "Debug shows {secret:?}");
    }
    // What is not secret stays visible, so the Debug form is not just empty.
    assert!(shown.contains("store-client-id"), "{shown}");
    assert!(shown.contains(ACCOUNT), "{shown}");
    assert!(shown.contains("shop.example"), "{shown}");
}

#[test]
fn the_new_keys_default_to_bigcommerce_and_no_channels() {
    let dir = Dir::new();
    let cfg = dir.load(&format!("{STORE}\n{CLIENT}")).expect("valid");
    assert_eq!(
        cfg.upstream.payments,
        super::Origin::parse("https://payments.bigcommerce.com").expect("origin")
    );
    assert_eq!(cfg.upstream.b2b.host, "api-b2b.bigcommerce.com");
    assert_eq!(cfg.mint, super::MintConfig::default());
    assert_eq!(cfg.mint.token_lifetime, Duration::from_secs(86_400));
    assert_eq!(cfg.mint.renew_before, Duration::from_secs(3_600));
    let store = cfg.stores.get("abc123").expect("store");
    assert!(store.client_id.is_none() && store.client_secret.is_none());
    assert!(store.channel(None).is_none());
    assert!(cfg.accounts.iter().next().is_none());
    assert!(
        cfg.clients
            .by_name("c")
            .expect("client")
            .accounts
            .is_empty()
    );
    assert_eq!(cfg.secret_files().count(), 1, "the store token file only");
}

#[test]
fn without_channel_1_the_first_configured_is_the_default() {
    let dir = Dir::new();
    let cfg = dir
        .load(&format!(
            "{STORE}channels = [{{ id = 3, origin = \"https://three.example\" }}, \
             {{ id = 2, origin = \"https://two.example\" }}]\n"
        ))
        .expect("valid");
    let store = cfg.stores.get("abc123").expect("store");
    assert_eq!(store.channel(None).map(|c| c.id), Some(3));
    assert_eq!(
        store.channel(Some(2)).map(|c| c.origin.authority.as_str()),
        Some("two.example")
    );
}

#[test]
fn without_secrets_client_secrets_and_account_tokens_are_not_read() {
    let dir = Dir::new();
    let text = format!(
        "[[stores]]\nhash = \"abc\"\ntoken_file = \"t\"\nclient_id = \"id\"\nclient_secret_env = \"{UNSET}\"\n\
         [[stores]]\nhash = \"def\"\ntoken_file = \"t\"\nclient_id = \"id\"\nclient_secret_file = \"missing\"\n\
         [[accounts]]\nuuid = \"{ACCOUNT}\"\ntoken_env = \"{UNSET}\"\n"
    );
    assert!(dir.load(&text).is_err(), "a server needs the secrets");
    let cfg = dir.load_without_secrets(&text).expect("explain needs none");
    let abc = cfg.stores.get("abc").expect("store");
    assert_eq!(
        abc.client_secret_source.as_deref(),
        Some(format!("env {UNSET}").as_str())
    );
    assert!(cfg.accounts.get(ACCOUNT).is_some());
    assert_eq!(cfg.secret_files().count(), 0, "nothing was read");
    // The rules that need no secret still hold.
    let e = dir
        .load_without_secrets(&format!(
            "[[accounts]]\nuuid = \"{}\"\ntoken_env = \"{UNSET}\"\n",
            ACCOUNT.to_uppercase()
        ))
        .expect_err("bad uuid");
    assert_eq!(e.key, "accounts[0].uuid");
}

#[test]
fn a_store_signs_with_its_own_client_secret_and_an_installed_one_with_the_apps() {
    let dir = Dir::new();
    let cfg = dir
        .load(&format!(
            "{STORE}client_id = \"own-id\"\nclient_secret_file = \"store-secret\"\n\
             [[stores]]\nhash = \"plain\"\ntoken_file = \"t\"\n{TOKEN_STORE}\n{APP}"
        ))
        .expect("valid");
    let own = cfg.stores.get("abc123").expect("store");
    let (id, secret) = cfg.store_client(own).expect("its own");
    assert_eq!((id, secret.expose()), ("own-id", "store-client-secret"));
    // A configured store without a client secret does not borrow the app's:
    // its token is not the app's.
    let plain = cfg.stores.get("plain").expect("store");
    assert!(cfg.store_client(plain).is_none());
    let installed = super::Store {
        hash: "installed1".into(),
        alias: None,
        token: crate::secret::StoreToken::new("x").expect("token"),
        token_source: "installed".into(),
        token_file: None,
        scopes: None,
        grants: None,
        label: String::new(),
        client_id: None,
        client_secret: None,
        client_secret_source: None,
        client_secret_file: None,
        channels: Vec::new(),
    };
    let (id, secret) = cfg.store_client(&installed).expect("the app's");
    assert_eq!((id, secret.expose()), ("id", "app-client-secret"));
    let without_app = dir.load(&format!("{STORE}\n")).expect("valid");
    assert!(without_app.store_client(&installed).is_none());
}

#[test]
fn an_origin_keeps_its_path_prefix_and_refuses_what_would_leak() {
    use super::{Origin, OriginError};
    let o = Origin::parse("https://mock.test:8443/storefront/abc/1/").expect("origin");
    assert_eq!(o.base_path, "/storefront/abc/1");
    assert_eq!(o.host, "mock.test:8443");
    assert_eq!(o.scheme, http::uri::Scheme::HTTPS);
    for (url, want) in [
        ("http://127.0.0.1:1/", OriginError::NotHttps),
        ("ftp://x.example", OriginError::NotHttps),
        ("//x.example/a", OriginError::NotHttps),
        ("https://x.example/?a=1", OriginError::Query),
        ("https://x.example/a#b", OriginError::Fragment),
        ("https://:443", OriginError::NoHost),
        ("https://a:b@x.example", OriginError::UserInfo),
        ("https://x .example", OriginError::NotAUrl),
        ("", OriginError::NotAUrl),
    ] {
        assert_eq!(Origin::parse(url), Err(want), "{url:?}");
    }
}
