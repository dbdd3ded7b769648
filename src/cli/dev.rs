//! `bcgate dev` and `bcgate mock`: the mock BigCommerce, with bcgate in
//! front of it or alone.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub(super) struct DevArgs {
    /// Proxy address (default 127.0.0.1:8080, or 127.0.0.1:8443 with `--tls`).
    #[arg(long)]
    pub(super) listen: Option<SocketAddr>,
    /// Admin address (`/metrics`, `/healthz`, `/readyz`).
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub(super) admin: SocketAddr,
    /// Serve HTTPS on the proxy address, with a certificate from this run's
    /// CA (what the BigCommerce SDKs need: they speak only HTTPS).
    #[arg(long)]
    pub(super) tls: bool,
    /// With `--tls`: where to write that CA's certificate (PEM), for the
    /// clients to trust.
    #[arg(long, requires = "tls", default_value_if("tls", "true", "dev-ca.pem"))]
    pub(super) ca_out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(super) struct MockArgs {
    /// Address the mock listens on (TLS).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub(super) listen: SocketAddr,
    /// Where to write the CA certificate (PEM) that signed the mock's certificate.
    #[arg(long)]
    pub(super) ca_out: PathBuf,
    /// `HASH=ENV_VAR`, repeatable.
    #[arg(long = "store", required = true)]
    pub(super) stores: Vec<String>,
}

pub(super) fn dev(
    args: &DevArgs,
    config_given: bool,
    format: crate::log::Format,
) -> Result<String, String> {
    if config_given {
        return Err("bcgate dev makes its config in memory; --config does not apply".into());
    }
    let ca_out = args.ca_out.as_deref();
    let port = if ca_out.is_some() { 8443 } else { 8080 };
    let listen = args
        .listen
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], port)));
    crate::log::init(format);
    crate::dev::run(listen, args.admin, ca_out)?;
    Ok(String::new())
}

pub(super) fn mock(args: &MockArgs) -> Result<String, String> {
    crate::dev::run_mock(args.listen, &args.ca_out, &args.stores).map(|()| String::new())
}
