//! `dev` in a build without the `dev` feature (lib.rs picks this file then):
//! `bcgate dev` and `bcgate mock` need the mock BigCommerce and its CA (the
//! `bcgate-testkit` crate, with rcgen), which only that feature builds in.
//! Both commands still exist and say how to get them, so a production binary
//! (`--no-default-features --features jemalloc`) carries neither the mock nor
//! a certificate generator.

const NOT_BUILT: &str = "this bcgate was built without the `dev` feature (a production build); \
     `bcgate dev` and `bcgate mock` need a default build (cargo build, or --features dev)";

/// `bcgate dev` in a build without the `dev` feature: an error that says so.
pub fn run(
    _listen: std::net::SocketAddr,
    _admin: std::net::SocketAddr,
    _tls: Option<&std::path::Path>,
) -> Result<(), String> {
    Err(NOT_BUILT.into())
}

/// `bcgate mock` in a build without the `dev` feature: an error that says so.
pub fn run_mock(
    _listen: std::net::SocketAddr,
    _ca_out: &std::path::Path,
    _stores: &[String],
) -> Result<(), String> {
    Err(NOT_BUILT.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_the_feature_both_commands_say_the_build_lacks_it() {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let dev = run(addr, addr, None).expect_err("bcgate dev without the feature");
        let mock = run_mock(addr, std::path::Path::new("ca.pem"), &[])
            .expect_err("bcgate mock without the feature");
        for e in [dev, mock] {
            assert!(e.contains("without the `dev` feature"), "{e}");
        }
    }
}
