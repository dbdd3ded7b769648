//! The committed data/routes.txt, data/b2b-routes.txt and data/scopes.txt
//! must be exactly what routegen derives from the BigCommerce specs.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn specs_dir() -> PathBuf {
    std::env::var_os("BCGATE_BC_SPECS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/bigcommerce"))
}

/// The first differing lines of `committed` and `derived`, and a count of the rest.
fn diff_excerpt(name: &str, committed: &str, derived: &str) -> String {
    let old: Vec<&str> = committed.lines().collect();
    let new: Vec<&str> = derived.lines().collect();
    let first = old
        .iter()
        .zip(&new)
        .position(|(a, b)| a != b)
        .unwrap_or(old.len().min(new.len()));
    let mut out = format!(
        "data/{name} differs from the derived table at line {} (committed {} lines, derived {} lines):\n",
        first + 1,
        old.len(),
        new.len()
    );
    // The run of differing lines from there (at most 5 a side).
    let run = (first..old.len().max(new.len()))
        .take_while(|&i| old.get(i) != new.get(i))
        .take(5)
        .count();
    for line in old.iter().skip(first).take(run) {
        out.push_str(&format!("  - {line}\n"));
    }
    for line in new.iter().skip(first).take(run) {
        out.push_str(&format!("  + {line}\n"));
    }
    let old_set: BTreeSet<&str> = old.iter().copied().collect();
    let new_set: BTreeSet<&str> = new.iter().copied().collect();
    out.push_str(&format!(
        "  ({} committed lines are not derived, {} derived lines are not committed)\n",
        old_set.difference(&new_set).count(),
        new_set.difference(&old_set).count()
    ));
    out
}

#[test]
fn committed_tables_match_the_specs() {
    let specs = specs_dir();
    if !specs.is_dir() {
        eprintln!("skipping drift check: {} not found", specs.display());
        return;
    }
    let tables = match routegen::derive(&specs) {
        Ok(tables) => tables,
        Err(e) => panic!("{}: {e}", specs.display()),
    };
    let mut failures = Vec::new();
    for (name, derived) in [
        ("routes.txt", tables.render_routes()),
        ("b2b-routes.txt", tables.render_b2b_routes()),
        ("scopes.txt", tables.render_scopes()),
    ] {
        let path = workspace_root().join("data").join(name);
        let committed =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if committed != derived {
            failures.push(diff_excerpt(name, &committed, &derived));
        }
    }
    assert!(
        failures.is_empty(),
        "{}the committed tables drifted from the specs or decisions: run `cargo run -p routegen` and review the diff",
        failures.concat()
    );
}

#[test]
fn diff_excerpt_names_the_first_difference() {
    let text = diff_excerpt("routes.txt", "a\nb\nc\n", "a\nB\nc\nd\n");
    assert!(
        text.contains("at line 2 (committed 3 lines, derived 4 lines)"),
        "{text}"
    );
    assert!(
        text.contains("  - b\n") && text.contains("  + B\n"),
        "{text}"
    );
    assert!(
        text.contains("(1 committed lines are not derived, 2 derived lines are not committed)"),
        "{text}"
    );
}
