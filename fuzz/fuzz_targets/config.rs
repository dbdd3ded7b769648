//! Config loading: any bytes as the TOML file → `Config::load`.
//!
//! Invariants: it returns (never panics); an error names the file; a config
//! it accepts holds only well-formed stores and
//! clients (names as validated, default stores among the allowed ones).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use bcgate::config::Config;
use libfuzzer_sys::fuzz_target;

/// A directory of its own per fuzzing process, made and removed per input.
fn config_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        base.join(format!("bcgate-fuzz-config-{}", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = config_dir();
    std::fs::create_dir_all(dir).expect("create temp dir");
    let path = &dir.join("bcgate.toml");
    std::fs::write(path, data).expect("write the config file");
    let result = Config::load(path);
    let _ = std::fs::remove_dir_all(dir);
    match result {
        Err(e) => {
            let shown = e.to_string();
            assert!(
                shown.starts_with(&path.display().to_string()),
                "the error does not name the file: {shown}"
            );
            assert_eq!(&e.file, path);
        }
        Ok(cfg) => {
            assert_eq!(cfg.path.as_deref(), Some(path.as_path()));
            for s in cfg.stores.iter() {
                assert!(
                    !s.hash.is_empty()
                        && s.hash
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                    "store hash {:?}",
                    s.hash
                );
                assert!(cfg.stores.get(&s.hash).is_some_and(|g| g.hash == s.hash));
                if let Some(a) = &s.alias {
                    assert!(cfg.stores.get(a).is_some_and(|g| g.hash == s.hash));
                }
            }
            for c in cfg.clients.iter() {
                assert!(!c.name.is_empty());
                if let Some(d) = &c.default_store {
                    assert!(c.stores.allows(d), "default store {d:?} not allowed");
                    assert!(cfg.stores.get(d).is_some_and(|s| &s.hash == d));
                }
            }
        }
    }
});
