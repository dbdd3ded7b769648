//! `cargo run -p routegen`: regenerates data/routes.txt, data/b2b-routes.txt
//! and data/scopes.txt.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let specs = std::env::var_os("BCGATE_BC_SPECS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/bigcommerce"));
    let tables = match routegen::derive(&specs) {
        Ok(tables) => tables,
        Err(e) => {
            eprint!("routegen: {}: {e}", specs.display());
            return ExitCode::FAILURE;
        }
    };
    let data = root.join("data");
    for (name, text) in [
        ("routes.txt", tables.render_routes()),
        ("b2b-routes.txt", tables.render_b2b_routes()),
        ("scopes.txt", tables.render_scopes()),
    ] {
        let path = data.join(name);
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("routegen: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    println!(
        "routegen: wrote {} routes to data/routes.txt, {} to data/b2b-routes.txt and {} scopes to data/scopes.txt",
        tables.routes.len(),
        tables.b2b_routes.len(),
        tables.scopes.len()
    );
    ExitCode::SUCCESS
}
