//! The command line (DESIGN §4): `run`, `check`, `keygen`, `explain`,
//! `routes`, `recommend` (learn mode's least scopes), `healthcheck` for
//! container health probes, and `dev` (bcgate in front of a mock
//! BigCommerce, to try it out).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use http::Method;

use crate::config::{self, Config};
use crate::decide;
use crate::identify::{key_sha256, new_key};
use crate::learn::Mode;
use crate::policy::{self, BodyFacts, Lookup, Policy, Route};
use crate::token_store::OpenTokenStore;

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
    Dev {
        /// Proxy address (default 127.0.0.1:8080, or 127.0.0.1:8443 with `--tls`).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Admin address (`/metrics`, `/healthz`, `/readyz`).
        #[arg(long, default_value = "127.0.0.1:9090")]
        admin: SocketAddr,
        /// Serve HTTPS on the proxy address, with a certificate from this run's
        /// CA (what the BigCommerce SDKs need: they speak only HTTPS).
        #[arg(long)]
        tls: bool,
        /// With `--tls`: where to write that CA's certificate (PEM), for the
        /// clients to trust.
        #[arg(long, requires = "tls", default_value_if("tls", "true", "dev-ca.pem"))]
        ca_out: Option<PathBuf>,
    },
    /// Serve only the mock BigCommerce (the one `dev` and the tests use), for
    /// load benchmarks: its CA goes to `--ca-out`, each store's token is read
    /// from the environment variable `--store HASH=VAR` names.
    Mock {
        /// Address the mock listens on (TLS).
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// Where to write the CA certificate (PEM) that signed the mock's certificate.
        #[arg(long)]
        ca_out: PathBuf,
        /// `HASH=ENV_VAR`, repeatable.
        #[arg(long = "store", required = true)]
        stores: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RecommendFormat {
    Text,
    Toml,
}

#[derive(Debug, Subcommand)]
enum TokensAction {
    /// Every store with a token: hash, scopes, installed at, source (config|installed).
    List,
    /// Delete an installed store's token (a running bcgate reads the file
    /// again on SIGHUP or config reload).
    Delete {
        /// The store hash.
        hash: String,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let path = config::resolve_path(cli.config.clone());
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(&path, cli.log_format),
        Command::Check => check(&path),
        Command::Keygen { json } => keygen(json),
        Command::Explain {
            method,
            path: req_path,
            client,
            body,
        } => explain(
            &path,
            &method,
            &req_path,
            client.as_deref(),
            body.as_deref(),
        ),
        Command::Routes => routes(),
        Command::Recommend { client, format } => recommend(&path, client.as_deref(), format),
        Command::Tokens { action } => tokens(&path, action),
        Command::Healthcheck { url } => healthcheck(&url),
        Command::Dev {
            listen,
            admin,
            tls: _,
            ca_out,
        } => dev(
            cli.config.is_some(),
            listen,
            admin,
            ca_out.as_deref(),
            cli.log_format,
        ),
        Command::Mock {
            listen,
            ca_out,
            stores,
        } => crate::dev::run_mock(listen, &ca_out, &stores).map(|()| String::new()),
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

fn run(path: &std::path::Path, format: crate::log::Format) -> Result<String, String> {
    crate::log::init(format);
    let config = Config::load(path).map_err(|e| e.to_string())?;
    // On one CPU (a pinned sidecar) the multi-thread scheduler only adds its
    // cross-thread bookkeeping; the current-thread one runs the same tasks.
    let one_cpu = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let mut builder = if one_cpu {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(crate::server::run(config))?;
    Ok(String::new())
}

fn dev(
    config_given: bool,
    listen: Option<SocketAddr>,
    admin: SocketAddr,
    ca_out: Option<&std::path::Path>,
    format: crate::log::Format,
) -> Result<String, String> {
    if config_given {
        return Err("bcgate dev makes its config in memory; --config does not apply".into());
    }
    let port = if ca_out.is_some() { 8443 } else { 8080 };
    let listen = listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], port)));
    crate::log::init(format);
    crate::dev::run(listen, admin, ca_out)?;
    Ok(String::new())
}

/// A bare HTTP/1.1 GET on loopback-style URLs: enough for a health probe,
/// and it keeps the runtime image free of curl.
fn healthcheck(url: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let uri: http::Uri = url.parse().map_err(|_| format!("bad URL {url:?}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("healthcheck speaks plain http:// only".into());
    }
    let authority = uri.authority().ok_or("the URL names no host")?;
    let port = authority.port_u16().unwrap_or(80);
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let timeout = std::time::Duration::from_secs(3);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .map_err(|e| format!("{authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority}: no address"))?;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("{authority}: {e}"))?;
    let _ = stream.set_read_timeout(Some(timeout));
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("{authority}: {e}"))?;
    let mut head = [0u8; 12];
    stream
        .read_exact(&mut head)
        .map_err(|e| format!("{authority}: {e}"))?;
    match &head[9..12] {
        b"200" => Ok(String::new()),
        status => Err(format!(
            "{url} answered {}",
            String::from_utf8_lossy(status)
        )),
    }
}

fn check(path: &std::path::Path) -> Result<String, String> {
    let cfg = Config::load(path).map_err(|e| e.to_string())?;
    crate::forward::Upstream::new(&cfg.upstream)?;
    let mut out = String::new();
    let _ = writeln!(out, "{}: OK", path.display());
    let _ = writeln!(
        out,
        "listen:   {}{}",
        cfg.server.listen,
        if cfg.server.tls.is_some() {
            " (TLS)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "upstream: {}", cfg.upstream.base_url);
    let _ = writeln!(out, "stores:");
    for s in cfg.stores.iter() {
        let alias = s
            .alias
            .as_deref()
            .map(|a| format!(" alias {a}"))
            .unwrap_or_default();
        let scopes = s
            .scopes
            .as_ref()
            .map_or("(not stated)".to_string(), |v| v.join(", "));
        let _ = writeln!(
            out,
            "  {}{alias}: token from {}; token scopes: {scopes}",
            s.hash, s.token_source
        );
    }
    let _ = writeln!(out, "clients:");
    for c in cfg.clients.iter() {
        let stores = match &c.stores {
            policy::StoreAllow::All => "*".to_string(),
            policy::StoreAllow::Only(v) => v.join(", "),
        };
        let default = c
            .default_store
            .as_deref()
            .map(|d| format!(" (default {d})"))
            .unwrap_or_default();
        let mode = match c.mode {
            crate::learn::Mode::Learn => "; mode learn",
            crate::learn::Mode::Enforce => "",
        };
        let _ = writeln!(
            out,
            "  {}: stores {stores}{default}; scopes {}{}{mode}",
            c.name,
            c.scopes.join(", "),
            c.identity
        );
    }
    if let Some(l) = &cfg.learn {
        let kept = match crate::learn::load(&l.backend) {
            Ok(obs) => format!("{} kept now", obs.len()),
            // A Redis that is down now is not a config error.
            Err(e) if matches!(l.backend, crate::config::LearnBackend::Redis(_)) => {
                format!("not reachable now: {e}")
            }
            Err(e) => return Err(e),
        };
        let _ = writeln!(
            out,
            "learn:    observations in {} ({kept}; max {})",
            l.backend, l.max_entries
        );
    }
    if let Some(app) = &cfg.app {
        let _ = writeln!(
            out,
            "app:      {}{} (redirect_uri {}); client {}; secret from {}; scopes {}",
            app.listen,
            if app.tls.is_some() { " (TLS)" } else { "" },
            app.redirect_uri,
            app.client_id,
            app.client_secret_source,
            app.scopes.join(", ")
        );
    }
    if let Some(q) = &cfg.quota {
        let sharing = match &q.redis_url {
            Some(url) => format!(
                "shared through Redis {} (else 1/{} each)",
                crate::token_store::redact_url(url.expose()),
                q.replicas
            ),
            None => format!("1/{} of each store's quota per replica", q.replicas),
        };
        let weights: Vec<String> = cfg
            .clients
            .iter()
            .map(|c| match c.quota_max_share {
                Some(cap) => format!("{} {} (at most {cap})", c.name, c.quota_weight),
                None => format!("{} {}", c.name, c.quota_weight),
            })
            .collect();
        let _ = writeln!(
            out,
            "quota:    wait up to {} ms, {} waiting per store, {} retries; {sharing}; weights {}",
            q.max_wait.as_millis(),
            q.max_queue,
            q.retries,
            weights.join(", ")
        );
    }
    if let Some(ts) = &cfg.token_store {
        let store = match ts.open_once() {
            Ok(store) => Some(store),
            // A Redis that is down now is not a config error.
            Err(e) if matches!(ts.backend, crate::config::TokenStoreBackend::Redis(_)) => {
                let _ = writeln!(out, "token store: not reachable now: {e}");
                None
            }
            Err(e) => return Err(e),
        };
        let installed = store.as_ref().map(|s| s.list()).unwrap_or_default();
        if let Some(store) = &store {
            let _ = writeln!(
                out,
                "token store: {} ({} installed)",
                store.location(),
                installed.len()
            );
        }
        for i in &installed {
            let _ = writeln!(
                out,
                "  {}: installed; scopes {}",
                i.hash,
                i.scopes.join(", ")
            );
            if cfg.stores.get(&i.hash).is_some() {
                let _ = writeln!(
                    out,
                    "  warning: store {} is in [[stores]] and in the token store; the config's token wins",
                    i.hash
                );
            }
        }
    }
    let operator: Vec<&Route> = cfg
        .policy
        .routes
        .iter()
        .filter(|r| r.origin == policy::Origin::Operator)
        .collect();
    let _ = writeln!(
        out,
        "routes: {} ({} from [[routes]])",
        cfg.policy.routes.len(),
        operator.len()
    );
    for r in operator {
        let _ = writeln!(
            out,
            "  {} {} -> {}",
            r.method,
            r.template,
            r.family_names.join(" | ")
        );
    }
    Ok(out)
}

fn open_token_store(cfg: &Config) -> Result<crate::token_store::TokenStore, String> {
    cfg.token_store
        .as_ref()
        .ok_or_else(|| "the config has no [token_store]".to_string())?
        .open_once()
}

fn tokens(path: &std::path::Path, action: TokensAction) -> Result<String, String> {
    let cfg = Config::load(path).map_err(|e| e.to_string())?;
    let store = open_token_store(&cfg)?;
    let mut out = String::new();
    match action {
        TokensAction::List => {
            let _ = writeln!(
                out,
                "{:<20} {:<10} {:<22} scopes",
                "STORE", "SOURCE", "INSTALLED AT"
            );
            for s in cfg.stores.iter() {
                let scopes = s
                    .scopes
                    .as_ref()
                    .map_or("(not stated)".to_string(), |v| v.join(" "));
                let _ = writeln!(out, "{:<20} {:<10} {:<22} {scopes}", s.hash, "config", "-");
            }
            for i in store.list() {
                let source = if cfg.stores.get(&i.hash).is_some() {
                    "installed (config wins)"
                } else {
                    "installed"
                };
                let _ = writeln!(
                    out,
                    "{:<20} {:<10} {:<22} {}",
                    i.hash,
                    source,
                    utc(i.installed_at),
                    i.scopes.join(" ")
                );
            }
        }
        TokensAction::Delete { hash } => {
            if !store.delete(&hash)? {
                return Err(format!(
                    "store {hash:?} is not in the token store {}",
                    store.location()
                ));
            }
            let when = match store {
                crate::token_store::TokenStore::File(_) => "on SIGHUP",
                crate::token_store::TokenStore::Redis(_) => "within a second",
            };
            let _ = writeln!(
                out,
                "deleted the token of store {hash}; a running bcgate forgets it {when}"
            );
        }
    }
    Ok(out)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc(secs: u64) -> String {
    let (y, m, d) = crate::log::text::civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn keygen(json: bool) -> Result<String, String> {
    let key = new_key()?;
    if json {
        let mut line =
            serde_json::json!({"key": key.as_str(), "key_sha256": key_sha256(&key)}).to_string();
        line.push('\n');
        return Ok(line);
    }
    Ok(format!(
        "key:        {key}\nkey_sha256: {}\n\nGive the key to the service (as its X-Auth-Token); put key_sha256 in its [[clients]] entry.\n",
        key_sha256(&key)
    ))
}

/// The scopes that grant a method on a route, in words.
fn needs(policy: &Policy, route: &Route, method: &Method) -> String {
    if route.flags.not_proxied {
        return "never proxied (storefront-style API)".into();
    }
    if route.flags.graphql {
        return "bcgate:graphql_read for a query, bcgate:graphql_write for a mutation".into();
    }
    let mut s = policy
        .scopes
        .required(&route.families, route.is_write(method))
        .join(" | ");
    if route.flags.scripts_visibility {
        s.push_str(" (+ store_content_checkout when visibility is checkout/all_pages, or a PUT without visibility)");
    }
    s
}

/// A refusal as `explain` prints it: what the proxy answers.
fn refusal(e: &crate::error::ProxyError) -> String {
    format!(
        "denied ({} {}): {}",
        e.status().as_u16(),
        e.code(),
        e.detail()
    )
}

/// The decision of [`crate::decide`] for one client in one mode, in words.
fn verdict(
    gate: &decide::Gate<'_>,
    ask: decide::Ask<'_, '_>,
    body: Option<&str>,
    assumed: &mut Option<&'static str>,
) -> String {
    let routed = match decide::route(gate, ask) {
        Ok(r) => r,
        Err(d) => return refusal(&d.error),
    };
    let facts = match (routed.body_need(), body) {
        (None, _) => BodyFacts::None,
        (Some(need), Some(body)) => match decide::body_facts(need, body.as_bytes(), false) {
            Ok(f) => f,
            Err(e) => return refusal(&e),
        },
        (Some(need), None) => {
            *assumed = Some(match need {
                decide::BodyNeed::Graphql => {
                    "the body is a GraphQL query (give --body to decide on yours)"
                }
                decide::BodyNeed::Script { .. } => {
                    "the script's visibility needs no Checkout Content (give --body to decide on yours)"
                }
            });
            decide::assumed_facts(need)
        }
    };
    match routed.authorize(facts) {
        Err(d) => refusal(&d.error),
        Ok(d) => match (ask.mode, d.would_deny) {
            (Mode::Enforce, _) => format!("allowed on store '{}'", d.store.hash),
            (Mode::Learn, None) => format!("forwarded to store '{}', recorded", d.store.hash),
            (Mode::Learn, Some(denial)) => format!(
                "forwarded to store '{}', recorded and counted as would_deny ({})",
                d.store.hash,
                crate::error::ProxyError::ScopeDenied(denial).detail()
            ),
        },
    }
}

/// `bcgate explain`: the route, the scopes it needs and, per client, what
/// the proxy would answer in enforce and in learn mode — by the proxy's own
/// decision ([`crate::decide`]). Needs no store token; the token store is
/// read only for a store the config does not list. Fails (after printing
/// what it knows) when it cannot show the clients.
fn explain(
    path: &std::path::Path,
    method: &str,
    req_path: &str,
    client: Option<&str>,
    body: Option<&str>,
) -> Result<String, String> {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("bad method {method:?}"))?;
    let (path_only, query) = match req_path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (req_path, None),
    };
    let mut out = String::new();
    let canonical = match decide::Canonical::new(path_only) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(
                out,
                "{method} {path_only}: {} (before the caller is identified: the same for every client)",
                refusal(&e)
            );
            return Ok(out);
        }
    };
    let loaded = Config::load_without_secrets(path);
    let builtin = Policy::builtin().map_err(|e| e.to_string())?;
    let policy = loaded.as_ref().map_or(builtin, |c| &c.policy);
    let (_, api_path) = crate::route::split_store(canonical.as_str());
    match policy.routes.lookup(&method, api_path) {
        Lookup::Found(route) => {
            let _ = writeln!(
                out,
                "route:  {} {} ({:?})",
                route.method, route.template, route.origin
            );
            let _ = writeln!(out, "needs:  {}", needs(policy, route, &method));
            if let Some(note) = &route.note {
                let _ = writeln!(out, "note:   {note}");
            }
        }
        Lookup::Unknown => {
            let _ = writeln!(
                out,
                "route:  none: {method} {api_path} is not in the route table (an operator can map it in [[routes]])"
            );
        }
        Lookup::CaseMismatch => {
            let _ = writeln!(
                out,
                "route:  none: {method} {api_path} differs from a known route in case"
            );
        }
    }
    let fail = |out: &str, why: String| {
        // What is known is still worth showing; the exit status says it is incomplete.
        let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
        Err(why)
    };
    let cfg = match &loaded {
        Ok(cfg) => cfg,
        Err(e) => return fail(&out, format!("cannot show which clients may send it: {e}")),
    };
    if let Some(name) = client
        && cfg.clients.by_name(name).is_none()
    {
        return fail(
            &out,
            format!("no client named {name:?} in {}", path.display()),
        );
    }
    // The token store is opened (with its key) only if a decision asks for
    // a store the config does not list.
    let token_store = std::sync::OnceLock::new();
    let unreadable = std::sync::Mutex::new(None::<String>);
    let installed = |hash: &str| {
        let Some(ts) = &cfg.token_store else {
            return Ok(None);
        };
        match token_store.get_or_init(|| ts.open_once()) {
            Ok(store) => Ok(store
                .get(hash)
                .map(|inst| std::sync::Arc::new(crate::app::as_store(&inst, &cfg.policy)))),
            Err(e) => {
                *unreadable
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(format!(
                    "store '{hash}' is not in [[stores]], and the token store that would hold it cannot be read: {e}"
                ));
                Ok(None)
            }
        }
    };
    let gate = decide::Gate {
        policy: &cfg.policy,
        stores: &cfg.stores,
        installed: &installed,
    };
    let mut assumed = None;
    let mut cannot_tell = None;
    let _ = writeln!(out, "clients:");
    for c in cfg
        .clients
        .iter()
        .filter(|c| client.is_none_or(|n| n == c.name))
    {
        let mut line = |mode| {
            let ask = decide::Ask {
                client: c,
                mode,
                method: &method,
                path: canonical,
                query,
            };
            let v = verdict(&gate, ask, body, &mut assumed);
            match unreadable
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
            {
                Some(why) => {
                    let line = format!("cannot tell: {why}");
                    cannot_tell = Some(why);
                    line
                }
                None => v,
            }
        };
        let enforce = line(Mode::Enforce);
        let learn = line(Mode::Learn);
        let _ = writeln!(
            out,
            "  {} (mode {}):\n    enforce: {enforce}\n    learn:   {learn}",
            c.name, c.mode
        );
    }
    if let Some(a) = assumed {
        let _ = writeln!(out, "assumes: {a}");
    }
    match cannot_tell {
        Some(why) => fail(&out, why),
        None => Ok(out),
    }
}

fn recommend(
    path: &std::path::Path,
    client: Option<&str>,
    format: RecommendFormat,
) -> Result<String, String> {
    use crate::learn::recommend;
    let cfg = Config::load(path).map_err(|e| e.to_string())?;
    let learn = cfg
        .learn
        .as_ref()
        .ok_or_else(|| format!("{}: no [learn] section, so no observations", path.display()))?;
    if let Some(name) = client
        && cfg.clients.by_name(name).is_none()
    {
        return Err(format!("no client named {name:?} in {}", path.display()));
    }
    let mut by_client: std::collections::BTreeMap<String, Vec<crate::learn::Observation>> =
        Default::default();
    for o in crate::learn::load(&learn.backend)? {
        if client.is_none_or(|n| n == o.client) {
            by_client.entry(o.client.clone()).or_default().push(o);
        }
    }
    let reports: Vec<recommend::ClientReport> = by_client
        .iter()
        .map(|(name, obs)| {
            let configured = cfg
                .clients
                .by_name(name)
                .map(|c| (c.scopes.as_slice(), c.mode.as_str()));
            recommend::report(&cfg.policy.scopes, name, configured, obs)
        })
        .collect();
    let source = learn.backend.to_string().replace(['\n', '\r'], " ");
    Ok(match format {
        RecommendFormat::Text => recommend::text(&reports, &utc),
        RecommendFormat::Toml => recommend::toml(&reports, &source),
    })
}

fn routes() -> Result<String, String> {
    let policy = Policy::builtin().map_err(|e| e.to_string())?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<7} {:<70} scopes (any one grants)",
        "METHOD", "PATH"
    );
    for r in policy.routes.iter() {
        let _ = writeln!(
            out,
            "{:<7} {:<70} {}",
            r.method.as_str(),
            r.template,
            needs(policy, r, &r.method)
        );
    }
    let _ = writeln!(
        out,
        "\nHEAD follows GET; v2 paths may end in .json or .xml.\n\nscopes (scope family level):"
    );
    for s in policy.scopes.iter() {
        let level = match s.level {
            policy::Level::Read => "read",
            policy::Level::Modify => "modify",
        };
        let _ = writeln!(
            out,
            "  {:<50} {:<45} {level}",
            s.name,
            policy.scopes.family_name(s.family)
        );
    }
    Ok(out)
}
