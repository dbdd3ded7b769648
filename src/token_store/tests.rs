//! Token store unit tests, against real files in temporary directories.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use super::file::{seal_plaintext, temp_path};
use super::*;

const TOKEN_A: &str = "tokenaaaa1111secretsecret";
const TOKEN_B: &str = "tokenbbbb2222secretsecret";

fn key_b64(fill: u8) -> String {
    STANDARD.encode([fill; 32])
}

fn key(fill: u8) -> TokenKey {
    TokenKey::from_base64(&key_b64(fill)).expect("a 32-byte key")
}

fn record(hash: &str, token: &str) -> Installed {
    Installed {
        hash: hash.into(),
        token: StoreToken::new(token).expect("valid token"),
        scopes: vec![
            "store_v2_products".into(),
            "store_v2_orders_read_only".into(),
        ],
        user: User {
            id: 7,
            email: "installer@example.com".into(),
        },
        owner: User {
            id: 1,
            email: "owner@example.com".into(),
        },
        account_uuid: Some("a1b2c3d4-0000-4000-8000-000000000000".into()),
        installed_at: 1_700_000_000,
    }
}

fn store_path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tokens.enc");
    (dir, path)
}

fn token_of(r: &Installed) -> String {
    String::from_utf8(r.token.header_value().as_bytes().to_vec()).expect("utf-8")
}

fn open(path: &Path, fill: u8) -> Result<FileBackend, StoreError> {
    FileBackend::open(path, key(fill))
}

/// A whole store file with one record, and the bytes of its token.
fn written_file() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
    let (dir, path) = store_path();
    let s = open(&path, 1).expect("open");
    s.put(record("abc123", TOKEN_A)).expect("put");
    let bytes = fs::read(&path).expect("read");
    (dir, path, bytes)
}

/// Asserts that an error names the file and shows no secret.
fn assert_clean(err: &StoreError, path: &Path) {
    let text = err.to_string();
    let debug = format!("{err:?}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    for secret in [TOKEN_A, TOKEN_B, &key_b64(1), &key_b64(2)] {
        assert!(
            !text.contains(secret) && !debug.contains(secret),
            "{text} / {debug}"
        );
    }
}

#[test]
fn round_trip_and_reopen() {
    let (_dir, path) = store_path();
    let s = open(&path, 1).expect("open");
    assert!(s.list().is_empty());
    s.put(record("bbb222", TOKEN_B)).expect("put");
    s.put(record("aaa111", TOKEN_A)).expect("put");
    let hashes: Vec<_> = s.list().iter().map(|r| r.hash.clone()).collect();
    assert_eq!(hashes, ["aaa111", "bbb222"]);
    assert_eq!(*s.get("aaa111").expect("there"), record("aaa111", TOKEN_A));
    assert!(s.get("zzz999").is_none());

    let again = open(&path, 1).expect("reopen");
    assert_eq!(again.list(), s.list());
    assert_eq!(token_of(&again.get("bbb222").expect("there")), TOKEN_B);
}

#[test]
fn reinstall_replaces_the_record() {
    let (_dir, path) = store_path();
    let s = open(&path, 1).expect("open");
    s.put(record("abc123", TOKEN_A)).expect("put");
    let mut newer = record("abc123", TOKEN_B);
    newer.scopes = vec!["store_v2_content".into()];
    newer.account_uuid = None;
    newer.installed_at += 60;
    s.put(newer.clone()).expect("put");
    assert_eq!(s.list().len(), 1);
    assert_eq!(*s.get("abc123").expect("there"), newer);
    let again = open(&path, 1).expect("reopen");
    assert_eq!(*again.get("abc123").expect("there"), newer);
}

#[test]
fn delete_removes_and_reports() {
    let (_dir, path) = store_path();
    let s = open(&path, 1).expect("open");
    s.put(record("abc123", TOKEN_A)).expect("put");
    s.put(record("def456", TOKEN_B)).expect("put");
    assert!(s.delete("abc123").expect("delete"));
    assert!(!s.delete("abc123").expect("delete"));
    assert!(!s.delete("nothere").expect("delete"));
    assert!(s.get("abc123").is_none());
    let again = open(&path, 1).expect("reopen");
    let hashes: Vec<_> = again.list().iter().map(|r| r.hash.clone()).collect();
    assert_eq!(hashes, ["def456"]);
    // Deleting the last store leaves a valid, empty store, not a missing file.
    assert!(again.delete("def456").expect("delete"));
    assert!(path.exists());
    assert!(open(&path, 1).expect("reopen").list().is_empty());
}

#[test]
fn a_missing_file_is_an_empty_store_and_opening_writes_nothing() {
    let (dir, path) = store_path();
    let s = open(&path, 1).expect("open");
    assert!(s.list().is_empty());
    assert_eq!(s.path(), path.as_path());
    assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 0);
}

#[test]
fn a_missing_directory_is_an_error() {
    let (_dir, path) = store_path();
    let path = path.with_file_name("nodir").join("tokens.enc");
    let err = open(&path, 1).expect_err("no directory");
    assert!(matches!(err.kind, StoreErrorKind::NoDirectory), "{err}");
    assert_clean(&err, &path);
    let err = open(&path.join(".."), 1).expect_err("not a file path");
    assert!(matches!(err.kind, StoreErrorKind::NotAFilePath), "{err}");
    let (dir, _) = store_path();
    let err = open(dir.path(), 1).expect_err("a directory");
    assert!(matches!(err.kind, StoreErrorKind::Io { .. }), "{err}");
}

#[test]
fn the_file_is_mode_0600_even_when_it_was_not() {
    let (_dir, path) = store_path();
    let s = open(&path, 1).expect("open");
    s.put(record("abc123", TOKEN_A)).expect("put");
    let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    let s = open(&path, 1).expect("a wider mode is a warning, not an error");
    s.put(record("def456", TOKEN_B)).expect("put");
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn the_file_holds_no_plaintext_and_every_write_has_a_new_nonce() {
    let (_dir, path, first) = written_file();
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(first.starts_with(b"BCGTS1"));
    for plain in [
        TOKEN_A.as_bytes(),
        b"tokenaaaa",
        b"abc123",
        b"installer@example.com",
        b"store_v2_products",
        b"\"stores\"",
    ] {
        assert!(
            !contains(&first, plain),
            "{:?} is in the file",
            String::from_utf8_lossy(plain)
        );
    }
    // Same contents again: a fresh nonce makes different ciphertext.
    let s = open(&path, 1).expect("open");
    s.put(record("abc123", TOKEN_A)).expect("put");
    let second = fs::read(&path).expect("read");
    assert_eq!(first.len(), second.len());
    assert_ne!(first[22..34], second[22..34], "nonce reused");
    assert_ne!(first[34..], second[34..]);
}

#[test]
fn the_wrong_key_is_named_as_such() {
    let (_dir, path, _) = written_file();
    let err = open(&path, 2).expect_err("wrong key");
    assert!(matches!(err.kind, StoreErrorKind::WrongKey), "{err}");
    assert!(err.to_string().contains("different key"), "{err}");
    assert_clean(&err, &path);
}

#[test]
fn every_flipped_bit_fails_clearly() {
    let (_dir, path, good) = written_file();
    for i in 0..good.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = good.clone();
            bad[i] ^= bit;
            fs::write(&path, &bad).expect("write");
            let err = open(&path, 1).expect_err("a changed byte is noticed");
            let expected_kind = match i {
                0..=4 => matches!(err.kind, StoreErrorKind::NotAStore),
                5 => matches!(err.kind, StoreErrorKind::UnsupportedVersion(_)),
                6..=13 => matches!(err.kind, StoreErrorKind::WrongKey),
                14..=21 => matches!(err.kind, StoreErrorKind::Truncated { .. }),
                _ => matches!(err.kind, StoreErrorKind::Damaged),
            };
            assert!(expected_kind, "byte {i}: {err}");
            assert_clean(&err, &path);
        }
    }
}

#[test]
fn every_truncation_and_extension_fails_clearly() {
    let (_dir, path, good) = written_file();
    for n in 0..good.len() {
        fs::write(&path, &good[..n]).expect("write");
        let err = open(&path, 1).expect_err("a short file is noticed");
        assert!(
            matches!(err.kind, StoreErrorKind::Truncated { .. }),
            "{n} bytes: {err}"
        );
        assert!(err.to_string().contains("truncated"), "{err}");
        assert_clean(&err, &path);
    }
    let mut longer = good.clone();
    longer.push(0);
    fs::write(&path, &longer).expect("write");
    let err = open(&path, 1).expect_err("a longer file is noticed");
    assert!(
        matches!(err.kind, StoreErrorKind::Truncated { .. }),
        "{err}"
    );
    fs::write(&path, b"{\"stores\":[]}").expect("write");
    let err = open(&path, 1).expect_err("plaintext is not a store");
    assert!(matches!(err.kind, StoreErrorKind::NotAStore), "{err}");
}

#[test]
fn decrypted_contents_are_checked_without_quoting_them() {
    let (_dir, path) = store_path();
    let entry = |hash: &str, extra: &str| {
        format!(
            r#"{{"hash":"{hash}","token":"{TOKEN_A}","scopes":[],"user":{{"id":1,"email":"a@b"}},"owner":{{"id":1,"email":"a@b"}},"account_uuid":null,"installed_at":0{extra}}}"#
        )
    };
    let one = |e: String| format!(r#"{{"stores":[{e}]}}"#);
    let cases = [
        (one(entry("abc", "")), "valid"),
        (one(entry("abc", r#","future":1"#)), "contents"),
        (
            one(format!("{},{}", entry("abc", ""), entry("abc", ""))),
            "duplicate",
        ),
        (one(entry("ABC", "")), "hash"),
        // A type error whose serde message would quote the token.
        (
            one(format!(
                r#"{{"hash":"abc","token":"x","scopes":"{TOKEN_A}"}}"#
            )),
            "contents",
        ),
        (one(entry("abc", "")).replace(TOKEN_A, " "), "contents"),
        ("not json".into(), "contents"),
    ];
    for (plain, want) in cases {
        fs::write(&path, &*seal_plaintext(&key(1), plain.as_bytes())).expect("write");
        if want == "valid" {
            let s = open(&path, 1).expect("the valid case opens");
            assert_eq!(token_of(&s.get("abc").expect("there")), TOKEN_A);
            continue;
        }
        let err = open(&path, 1).expect_err("refused");
        let as_wanted = match &err.kind {
            StoreErrorKind::Contents { .. } => want == "contents",
            StoreErrorKind::Duplicate(h) => want == "duplicate" && h == "abc",
            StoreErrorKind::InvalidHash(h) => want == "hash" && h == "ABC",
            _ => false,
        };
        assert!(as_wanted, "{plain}: want {want}, got {err}");
        assert_clean(&err, &path);
    }
}

#[test]
fn a_leftover_temp_file_is_ignored_then_replaced() {
    let (_dir, path) = store_path();
    open(&path, 1)
        .expect("open")
        .put(record("abc123", TOKEN_A))
        .expect("put");
    let tmp = temp_path(&path);
    assert!(!tmp.exists());
    // As a write killed before its rename would leave it: partial, any mode.
    fs::write(&tmp, b"BCGTS1 half a wri").expect("write");
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).expect("chmod");
    let s = open(&path, 1).expect("the leftover is ignored");
    assert_eq!(s.list().len(), 1);
    s.put(record("def456", TOKEN_B))
        .expect("the leftover is replaced");
    assert!(!tmp.exists());
    assert_eq!(open(&path, 1).expect("reopen").list().len(), 2);
    assert_eq!(
        fs::metadata(&path).expect("stat").permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn a_failed_write_changes_nothing() {
    let (_dir, path) = store_path();
    let s = open(&path, 1).expect("open");
    s.put(record("abc123", TOKEN_A)).expect("put");
    let before = fs::read(&path).expect("read");
    // A directory where the temporary file goes: cannot be removed or created.
    let tmp = temp_path(&path);
    fs::create_dir(&tmp).expect("mkdir");
    let err = s.put(record("abc123", TOKEN_B)).expect_err("cannot write");
    assert!(matches!(err.kind, StoreErrorKind::Io { .. }), "{err}");
    assert!(err.to_string().contains("tokens.enc.tmp"), "{err}");
    assert_clean(&err, &path);
    assert!(s.delete("abc123").is_err());
    assert_eq!(token_of(&s.get("abc123").expect("still there")), TOKEN_A);
    assert_eq!(fs::read(&path).expect("read"), before);

    fs::remove_dir(&tmp).expect("rmdir");
    s.put(record("abc123", TOKEN_B)).expect("put works again");
    assert_eq!(
        token_of(
            &open(&path, 1)
                .expect("reopen")
                .get("abc123")
                .expect("there")
        ),
        TOKEN_B
    );
}

#[test]
fn only_store_hashes_are_accepted() {
    let (_dir, path) = store_path();
    let s = open(&path, 1).expect("open");
    for bad in ["", "ABC", "abc/../x", "stores/abc", "a b", &"a".repeat(65)] {
        let err = s.put(record(bad, TOKEN_A)).expect_err("refused");
        assert!(
            matches!(err.kind, StoreErrorKind::InvalidHash(_)),
            "{bad:?}: {err}"
        );
    }
    assert!(!path.exists());
}

#[test]
fn concurrent_writers_all_land() {
    let (_dir, path) = store_path();
    let s = Arc::new(open(&path, 1).expect("open"));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    s.put(record(&format!("t{t}s{i}"), TOKEN_A)).expect("put");
                    assert!(s.get(&format!("t{t}s{i}")).is_some());
                    let _ = s.list();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("no panic");
    }
    assert_eq!(s.list().len(), 40);
    assert_eq!(open(&path, 1).expect("reopen").list().len(), 40);
}

#[test]
fn keys_are_32_bytes_of_base64() {
    let b64 = key_b64(9);
    assert!(TokenKey::from_base64(&format!("  {b64}\n")).is_ok());
    assert!(TokenKey::from_base64(&STANDARD_NO_PAD.encode([9u8; 32])).is_ok());
    assert_eq!(
        TokenKey::from_base64(&STANDARD.encode([9u8; 31])).err(),
        Some(KeyError::WrongLength(31))
    );
    assert_eq!(
        TokenKey::from_base64(&STANDARD.encode([9u8; 33])).err(),
        Some(KeyError::WrongLength(33))
    );
    assert_eq!(
        TokenKey::from_base64("").err(),
        Some(KeyError::WrongLength(0))
    );
    assert!(matches!(
        TokenKey::from_base64(&STANDARD.encode([9u8; 64])),
        Err(KeyError::WrongLength(_))
    ));
    assert_eq!(
        TokenKey::from_base64("not base64 at all!").err(),
        Some(KeyError::NotBase64)
    );
    for e in [KeyError::NotBase64, KeyError::WrongLength(31)] {
        assert!(!e.to_string().contains(&b64));
    }
    // The same bytes make the same key, wherever they came from.
    let (_dir, path, _) = written_file();
    assert!(
        FileBackend::open(
            &path,
            TokenKey::from_base64(&STANDARD_NO_PAD.encode([1u8; 32])).expect("key")
        )
        .is_ok()
    );
}

#[test]
fn nothing_prints_a_secret() {
    let (_dir, path) = store_path();
    let s = open(&path, 1).expect("open");
    s.put(record("abc123", TOKEN_A)).expect("put");
    let shown = format!(
        "{:?} {:?} {:?} {:?}",
        key(1),
        s,
        s.get("abc123").expect("there"),
        s.list()
    );
    assert!(shown.contains("[REDACTED]"), "{shown}");
    for secret in [TOKEN_A, &key_b64(1)] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

// ---------------------------------------------------------------- Redis values

#[test]
fn a_redis_value_is_a_sealed_one_store_file() {
    use super::file::{decode_one, encode_one};
    let one = Arc::new(record("abc123", TOKEN_A));
    let value = encode_one(&key(1), &one).expect("seal");
    assert!(value.starts_with(b"BCGTS1"));
    assert!(
        !value
            .windows(TOKEN_A.len())
            .any(|w| w == TOKEN_A.as_bytes())
    );
    // The same bytes open as a store file holding exactly that store.
    let (_dir, path) = store_path();
    fs::write(&path, &value[..]).expect("write");
    let file = open(&path, 1).expect("a valid store file");
    assert_eq!(file.list().len(), 1);
    assert_eq!(token_of(&file.get("abc123").expect("the store")), TOKEN_A);

    let back = decode_one(&key(1), "abc123", value.clone()).expect("open");
    assert_eq!(*back, *one);
    // Under another store's key, or with another key: refused.
    assert!(matches!(
        decode_one(&key(1), "other9", value.clone()),
        Err(StoreErrorKind::Damaged)
    ));
    assert!(matches!(
        decode_one(&key(2), "abc123", value.clone()),
        Err(StoreErrorKind::WrongKey)
    ));
    let mut flipped = value;
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(
        decode_one(&key(1), "abc123", flipped),
        Err(StoreErrorKind::Damaged)
    ));
}

#[test]
fn redis_urls_are_checked_and_shown_without_credentials() {
    assert_eq!(
        redact_url("redis://user:p%40ss@10.0.0.5:6380/2"),
        "redis://10.0.0.5:6380/2"
    );
    assert_eq!(
        redact_url("redis://127.0.0.1:6379/0"),
        "redis://127.0.0.1:6379/0"
    );
    assert!(check_redis_url("redis://127.0.0.1:6379/0").is_ok());
    let tls = check_redis_url("rediss://127.0.0.1:6379/0").expect_err("no TLS");
    assert!(tls.contains("rediss://"), "{tls}");
    assert!(check_redis_url("http://127.0.0.1/").is_err());
    // Debug of the config never shows the password.
    let cfg = crate::config::TokenStoreBackend::Redis(
        crate::secret::Secret::text("redis://:hunter2@h:1/0").expect("url"),
    );
    assert!(!format!("{cfg:?}").contains("hunter2"));
}
