//! Every validation error, in process: a config text, the key the error
//! must name and a fragment of its message. The spawn-the-binary cases in
//! tests/cli.rs check the same errors as an operator sees them.

use std::path::{Path, PathBuf};

use super::{Config, ConfigError, Listen, Mode, file};

/// A client key digest (64 hex digits).
const DIGEST: &str = "abababababababababababababababababababababababababababababababab";
/// A variable no test sets.
pub(super) const UNSET: &str = "BCGATE_CONFIG_TEST_VARIABLE_THAT_IS_NEVER_SET";

/// A directory holding the files configs refer to: `t` (a store token),
/// `empty`, `key` (a good token store key), `badkey`, `shortkey`, `secret`
/// (an app client secret) and `cert` (any file: validation only checks
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

use cases::{APP, CLIENT, STORE, TOKEN_STORE, cases};

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
