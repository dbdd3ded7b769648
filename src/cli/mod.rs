//! The command line: `run`, `check`, `keygen`, `explain`, `routes`,
//! `recommend` (learn mode's least scopes), `tokens`, `healthcheck` for
//! container health probes, and `dev` (bcgate in front of a mock
//! BigCommerce, to try it out). One file per command or group; this one
//! holds the arguments and the dispatch.

mod dev;
mod explain;
mod healthcheck;
mod keygen;
mod run;
mod tokens;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config;
use explain::RecommendFormat;
use tokens::TokensAction;

#[derive(Debug, Parser)]
#[command(
    name = "bcgate",
    version,
    about = "Authenticating reverse proxy for the BigCommerce API"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Config file (default: $BCGATE_CONFIG, else config/bcgate.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log format: `text` (human-readable) or `json` (one object a line).
    #[arg(long, global = true, env = "BCGATE_LOG_FORMAT", default_value = "text")]
    log_format: crate::log::Format,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve (the default command).
    Run,
    /// Validate the config and print its stores, clients and scopes.
    Check,
    /// Print a new random client key and its key_sha256.
    Keygen {
        /// Print `{"key": …, "key_sha256": …}` on one line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Which route and scope a request needs, and who may send it.
    Explain {
        /// HTTP method (GET, POST, …).
        method: String,
        /// Request path as a caller sends it, e.g. /stores/abc123/v3/catalog/products.
        path: String,
        /// Show only this client's decision.
        #[arg(long)]
        client: Option<String>,
        /// The request body (JSON), for the routes whose policy reads it
        /// (GraphQL, scripts); without it a query / a non-checkout script is assumed.
        #[arg(long)]
        body: Option<String>,
        /// A request header the decision reads, as `Name: value`
        /// (repeatable): X-Bc-Customer-Id, X-Bcgate-Customer-Token (only
        /// whether it is sent), X-Bcgate-Order-Id, Content-Type.
        #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
        headers: Vec<String>,
    },
    /// Print the built-in route → scope table.
    Routes,
    /// The least scopes covering what learn mode observed, per client, and
    /// the change against the configured scopes.
    Recommend {
        /// Report only this client.
        #[arg(long)]
        client: Option<String>,
        /// `text` (the report, with a `scopes = […]` line per client) or
        /// `toml` (only a table of `scopes` per client).
        #[arg(long, value_enum, default_value = "text")]
        format: RecommendFormat,
    },
    /// The stores in the token store (`[token_store]`): list or delete.
    Tokens {
        #[command(subcommand)]
        action: TokensAction,
    },
    /// Exit 0 if URL answers 200 (for container health checks; no curl needed).
    Healthcheck {
        /// The URL to GET (plain http://).
        #[arg(default_value = "http://127.0.0.1:9090/healthz")]
        url: String,
    },
    /// Try bcgate out: serve a config made in memory in front of a mock
    /// BigCommerce, and print the keys and `curl` lines to use.
    Dev(dev::DevArgs),
    /// Serve only the mock BigCommerce (the one `dev` and the tests use), for
    /// load benchmarks: its CA goes to `--ca-out`, each store's token is read
    /// from the environment variable `--store HASH=VAR` names.
    Mock(dev::MockArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let path = config::resolve_path(cli.config.clone());
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => run::run(&path, cli.log_format),
        Command::Check => run::check(&path),
        Command::Keygen { json } => keygen::keygen(json),
        Command::Explain {
            method,
            path: req_path,
            client,
            body,
            headers,
        } => explain::explain(
            &path,
            &method,
            &req_path,
            client.as_deref(),
            body.as_deref(),
            &headers,
        ),
        Command::Routes => explain::routes(),
        Command::Recommend { client, format } => {
            explain::recommend(&path, client.as_deref(), format)
        }
        Command::Tokens { action } => tokens::tokens(&path, action),
        Command::Healthcheck { url } => healthcheck::healthcheck(&url),
        Command::Dev(args) => dev::dev(&args, cli.config.is_some(), cli.log_format),
        Command::Mock(args) => dev::mock(&args),
    };
    crate::log::flush();
    match result {
        Ok(out) => {
            // A closed pipe (`bcgate routes | head`) is not an error worth a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bcgate: {e}");
            ExitCode::FAILURE
        }
    }
}
