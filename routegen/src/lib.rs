//! Derives bcgate's route table (`data/routes.txt`), B2B Edition route table
//! (`data/b2b-routes.txt`) and scope table (`data/scopes.txt`) from
//! BigCommerce's OpenAPI reference.
//!
//! Per operation, the granting scope families come from, in order:
//! 1. the operation's own statement (a scope table or scope list in its description);
//! 2. a hand decision by path ([`decisions::DECISIONS`] `rules`);
//! 3. the file's scope table, if it names exactly one family.
//!
//! Anything else (an unknown scope name, a multi-family table without a decision,
//! a scope given only in prose, an operation left without a scope, a decision that
//! no longer changes anything) is an error, so spec drift is loud.
//!
//! The files under `b2b-edition/` make the B2B table instead (see [`b2b`]).

pub mod b2b;
pub mod decisions;
mod operation;
mod render;
mod scopes;
mod statement;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde_norway::Value;

use decisions::{Decisions, Rule};
use operation::{openapi3, operations};
pub use scopes::ScopeRow;
use scopes::{ScopeTable, permission_level};
use statement::RawRef;

/// What a scope grants within its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// GET and HEAD, and routes flagged `read`.
    Read,
    /// Every method.
    Modify,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Read => "read",
            Level::Modify => "modify",
        }
    }
}

/// A route flag, in the order routes.txt writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flag {
    /// A non-GET method that is a read: read-level scopes grant it.
    Read,
    /// Even GET/HEAD need a modify-level scope.
    Modify,
    /// Not an api.bigcommerce.com X-Auth-Token API: never proxied with the store token.
    NotProxied,
    /// The body's `visibility` decides whether Checkout Content is needed too.
    ScriptsVisibility,
    /// GraphQL: the document decides between bcgate:graphql_read and _write.
    Graphql,
}

impl Flag {
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Read => "read",
            Flag::Modify => "modify",
            Flag::NotProxied => "not_proxied",
            Flag::ScriptsVisibility => "scripts_visibility",
            Flag::Graphql => "graphql",
        }
    }
}

/// One row of routes.txt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: String,
    pub path: String,
    /// Scope families, any one of which grants the route.
    pub scopes: BTreeSet<String>,
    pub flags: BTreeSet<Flag>,
    pub notes: Vec<String>,
    /// The spec file it comes from (`None` for hand routes).
    pub file: Option<String>,
}

/// The derived tables.
#[derive(Debug, Clone)]
pub struct Tables {
    pub scopes: Vec<ScopeRow>,
    /// Sorted by path, then method.
    pub routes: Vec<Route>,
    /// Spec files left out, with the reason.
    pub skipped: Vec<(String, String)>,
    /// The B2B Edition table (paths after `/api/v3/io`), sorted like `routes`.
    pub b2b_routes: Vec<Route>,
    /// `b2b-edition/` files that add no B2B row, with the reason.
    pub b2b_skipped: Vec<(String, String)>,
}

impl Tables {
    /// The text of data/routes.txt.
    pub fn render_routes(&self) -> String {
        render::routes(self)
    }

    /// The text of data/scopes.txt.
    pub fn render_scopes(&self) -> String {
        render::scopes(self)
    }

    /// The text of data/b2b-routes.txt.
    pub fn render_b2b_routes(&self) -> String {
        render::b2b_routes(self)
    }

    /// The route for `method` and `path` (exact template), if any.
    pub fn route(&self, method: &str, path: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| r.method == method && r.path == path)
    }

    /// The B2B route for `method` and `path` (exact template), if any.
    pub fn b2b_route(&self, method: &str, path: &str) -> Option<&Route> {
        self.b2b_routes
            .iter()
            .find(|r| r.method == method && r.path == path)
    }

    /// The scope row named `name`, if any.
    pub fn scope(&self, name: &str) -> Option<&ScopeRow> {
        self.scopes.iter().find(|s| s.name == name)
    }
}

/// Everything that stopped the derivation, one problem a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub problems: Vec<String>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cannot derive the route table:")?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl Error {
    fn one(problem: impl Into<String>) -> Error {
        Error {
            problems: vec![problem.into()],
        }
    }
}

/// Derives the tables from the BigCommerce folder (`reference/`, `oauth-scopes.tsv`).
pub fn derive(specs_dir: &Path) -> Result<Tables, Error> {
    derive_with(specs_dir, &decisions::DECISIONS)
}

/// [`derive`] with other decisions (for tests).
pub fn derive_with(specs_dir: &Path, decisions: &Decisions) -> Result<Tables, Error> {
    let tsv_path = specs_dir.join("oauth-scopes.tsv");
    let tsv = std::fs::read_to_string(&tsv_path)
        .map_err(|e| Error::one(format!("{}: {e}", tsv_path.display())))?;
    let reference = specs_dir.join("reference");
    let mut files = Vec::new();
    list_files(&reference, &reference, &mut files)
        .map_err(|e| Error::one(format!("{}: {e}", reference.display())))?;
    files.sort();
    let mut sources = Vec::new();
    for name in files {
        let path = reference.join(&name);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::one(format!("{}: {e}", path.display())))?;
        sources.push((name, text));
    }
    derive_from(&tsv, &sources, decisions)
}

/// [`derive`] from file contents: `sources` are (path under `reference/`, text).
pub fn derive_from(
    tsv: &str,
    sources: &[(String, String)],
    decisions: &Decisions,
) -> Result<Tables, Error> {
    let mut d = Deriver::new(tsv, decisions);
    for (name, text) in sources {
        if !name.starts_with(b2b::B2B_DIR) {
            d.file(name, text);
        }
    }
    let b2b = b2b::derive(sources, &decisions.b2b, &d.scopes, &mut d.problems);
    let mut tables = d.finish(sources)?;
    if sources.iter().any(|(n, _)| n.starts_with(b2b::B2B_DIR)) {
        tables
            .skipped
            .push((b2b::B2B_DIR.to_owned(), b2b::OWN_TABLE.to_owned()));
        tables.skipped.sort();
    }
    tables.b2b_routes = b2b.routes;
    tables.b2b_skipped = b2b.skipped;
    Ok(tables)
}

fn list_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path: PathBuf = entry?.path();
        if path.is_dir() {
            list_files(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(rel.join("/"));
        }
    }
    Ok(())
}

/// Whether a `skipped_files` entry names the spec file `name`: the file
/// itself, or, for an entry ending in `/`, any file below that folder.
fn names(entry: &str, name: &str) -> bool {
    if entry.ends_with('/') {
        name.starts_with(entry)
    } else {
        entry == name
    }
}

/// A scope reference after lookup.
#[derive(Debug, Clone)]
struct Entry {
    family: String,
    level: Level,
    /// The alias decision that produced it, if any.
    alias_note: Option<&'static str>,
}

/// Which decisions were applied, to find stale ones.
#[derive(Debug, Default)]
struct Used {
    rules: Vec<bool>,
    aliases: Vec<bool>,
    security: Vec<bool>,
    tsv_levels: Vec<bool>,
}

struct Deriver<'d> {
    decisions: &'d Decisions,
    scopes: ScopeTable,
    routes: BTreeMap<(String, String), Route>,
    problems: Vec<String>,
    used: Used,
    /// Scope names each file's own table names (to check hand scopes' spec_file).
    file_table_names: BTreeMap<String, BTreeSet<String>>,
}

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch"];

impl<'d> Deriver<'d> {
    fn new(tsv: &str, decisions: &'d Decisions) -> Deriver<'d> {
        let mut problems = Vec::new();
        let mut used = Used {
            rules: vec![false; decisions.rules.len()],
            aliases: vec![false; decisions.aliases.len()],
            security: vec![false; decisions.security_overrides.len()],
            tsv_levels: vec![false; decisions.tsv_levels.len()],
        };
        let scopes = ScopeTable::build(tsv, decisions, &mut used.tsv_levels, &mut problems);
        let mut d = Deriver {
            decisions,
            scopes,
            routes: BTreeMap::new(),
            problems,
            used,
            file_table_names: BTreeMap::new(),
        };
        d.check_decisions();
        d
    }

    /// Checks the decisions that do not depend on the specs.
    fn check_decisions(&mut self) {
        let mut problems = Vec::new();
        for rule in self.decisions.rules {
            for family in rule.scopes.unwrap_or(&[]) {
                if !self.scopes.is_family(family) {
                    problems.push(format!(
                        "decisions.rs rule {} {}: {family} is not a scope family",
                        rule.file, rule.path
                    ));
                }
            }
            if let Some(m) = rule.method
                && !METHODS.contains(&m.to_ascii_lowercase().as_str())
            {
                problems.push(format!(
                    "decisions.rs rule {} {}: method {m}",
                    rule.file, rule.path
                ));
            }
            for flag in rule.flags {
                if matches!(flag, Flag::NotProxied | Flag::Graphql) {
                    problems.push(format!(
                        "decisions.rs rule {} {}: flag {} is not set by rules",
                        rule.file,
                        rule.path,
                        flag.as_str()
                    ));
                }
            }
        }
        for hand in self.decisions.hand_routes {
            for family in hand.scopes {
                if !self.scopes.is_family(family) {
                    problems.push(format!(
                        "decisions.rs hand route {} {}: {family} is not a scope family",
                        hand.method, hand.path
                    ));
                }
            }
        }
        let reasons = self
            .decisions
            .rules
            .iter()
            .map(|r| r.reason)
            .chain(self.decisions.aliases.iter().map(|a| a.reason))
            .chain(self.decisions.hand_routes.iter().map(|h| h.reason))
            .chain(self.decisions.hand_scopes.iter().map(|h| h.reason))
            .chain(self.decisions.security_overrides.iter().map(|s| s.reason))
            .chain(self.decisions.not_proxied_files.iter().map(|(_, r)| *r))
            .chain(self.decisions.skipped_files.iter().map(|(_, r)| *r))
            .chain(self.decisions.tsv_levels.iter().map(|(_, _, r)| *r));
        for reason in reasons {
            if reason.trim().is_empty() || reason.contains('\n') {
                problems.push(format!(
                    "decisions.rs: a reason must be one non-empty line: {reason:?}"
                ));
            }
        }
        self.problems.extend(problems);
    }

    fn file(&mut self, name: &str, text: &str) {
        if self
            .decisions
            .skipped_files
            .iter()
            .any(|(f, _)| names(f, name))
        {
            return;
        }
        let Some(doc) = openapi3(name, text, "skipped_files", &mut self.problems) else {
            return;
        };
        let servers = doc.get("servers").and_then(Value::as_sequence);
        let url = match servers.map(|s| s.as_slice()) {
            Some([server]) => get_str(server, "url"),
            _ => None,
        };
        let Some(url) = url else {
            self.problems
                .push(format!("{name}: expected exactly one server with a url"));
            return;
        };
        let Some(server) = Server::parse(url) else {
            self.problems
                .push(format!("{name}: cannot read the server URL {url:?}"));
            return;
        };
        let not_proxied = self
            .decisions
            .not_proxied_files
            .iter()
            .find(|(f, _)| *f == name)
            .map(|(_, reason)| *reason);
        match (server.is_management(), not_proxied) {
            (true, Some(_)) => {
                self.problems.push(format!(
                    "{name}: listed in not_proxied_files but served on api.bigcommerce.com/stores/{{store_hash}}"
                ));
                return;
            }
            (false, None) => {
                self.problems.push(format!(
                    "{name}: served on {url}, not api.bigcommerce.com/stores/{{store_hash}}; list it in decisions.rs not_proxied_files or skipped_files"
                ));
                return;
            }
            _ => {}
        }

        let file_table = match not_proxied {
            Some(_) => Vec::new(),
            None => self.file_table(name, &doc),
        };
        let top_security = doc.get("security");

        let Some(paths) = doc.get("paths").and_then(Value::as_mapping) else {
            self.problems.push(format!("{name}: no paths"));
            return;
        };
        for (path, method, op) in operations(name, &server.prefix, paths, &mut self.problems) {
            let route = match not_proxied {
                Some(reason) => Some(Route {
                    method,
                    path: path.clone(),
                    scopes: BTreeSet::new(),
                    flags: BTreeSet::from([Flag::NotProxied]),
                    notes: vec![reason.to_owned()],
                    file: Some(name.to_owned()),
                }),
                None => self.operation(name, &method, &path, op, top_security, &file_table),
            };
            if let Some(route) = route {
                self.add(route);
            }
        }
    }

    /// The scope table of a management file (X-Auth-Token scheme description).
    fn file_table(&mut self, name: &str, doc: &Value) -> Vec<Entry> {
        let scheme = doc
            .get("components")
            .and_then(|c| c.get("securitySchemes"))
            .and_then(|s| s.get("X-Auth-Token"));
        let Some(scheme) = scheme else {
            self.problems
                .push(format!("{name}: no X-Auth-Token security scheme"));
            return Vec::new();
        };
        if get_str(scheme, "type") != Some("apiKey")
            || get_str(scheme, "in") != Some("header")
            || get_str(scheme, "name") != Some("X-Auth-Token")
        {
            self.problems.push(format!(
                "{name}: the X-Auth-Token scheme is not an apiKey header X-Auth-Token"
            ));
        }
        let text = get_str(scheme, "description").unwrap_or("");
        let raw = statement::tables(text);
        let names = self.file_table_names.entry(name.to_owned()).or_default();
        for r in &raw {
            if let RawRef::Scope { name: n, .. } = r {
                names.insert(n.clone());
            }
        }
        self.resolve(name, "its scope table", &raw)
    }

    /// Looks scope references up, applying aliases and checking levels.
    fn resolve(&mut self, file: &str, what: &str, raw: &[RawRef]) -> Vec<Entry> {
        let mut out = Vec::new();
        for r in raw {
            match r {
                RawRef::Scope { name, permission } => {
                    let alias = self.decisions.aliases.iter().position(|a| {
                        a.file == file
                            && a.spec_name == name
                            && match (a.permission, permission) {
                                (None, _) => true,
                                (Some(want), Some(have)) => want.eq_ignore_ascii_case(have),
                                (Some(_), None) => false,
                            }
                    });
                    let (canonical, alias_note) = match alias {
                        Some(i) => {
                            self.used.aliases[i] = true;
                            let a = &self.decisions.aliases[i];
                            match a.canonical {
                                Some(c) => (c, Some(a.reason)),
                                None => continue,
                            }
                        }
                        None => (name.as_str(), None),
                    };
                    let Some(row) = self.scopes.get(canonical) else {
                        self.problems.push(format!(
                            "{file}: {what} names {name:?}, which is neither in scopes.txt nor mapped by an alias in decisions.rs"
                        ));
                        continue;
                    };
                    let (family, level) = (row.family.clone(), row.level);
                    if let Some(p) = permission {
                        match permission_level(p) {
                            None => self.problems.push(format!(
                                "{file}: {what} gives {name} the unknown permission {p:?}"
                            )),
                            Some(l) if l != level => self.problems.push(format!(
                                "{file}: {what} gives {name} the permission {p:?}, but {canonical} is {}-level; map it with an alias in decisions.rs",
                                level.as_str()
                            )),
                            Some(_) => {}
                        }
                    }
                    out.push(Entry {
                        family,
                        level,
                        alias_note,
                    });
                }
                RawRef::Ui {
                    permission,
                    ui_name,
                } => {
                    let Some(level) = permission_level(permission) else {
                        self.problems.push(format!(
                            "{file}: {what} gives {ui_name:?} the unknown permission {permission:?}"
                        ));
                        continue;
                    };
                    match self.scopes.by_ui_name(ui_name, level).as_slice() {
                        [row] => out.push(Entry {
                            family: row.family.clone(),
                            level,
                            alias_note: None,
                        }),
                        _ => self.problems.push(format!(
                            "{file}: {what} names {permission:?} {ui_name:?}, which is not exactly one api-accounts.mdx scope"
                        )),
                    }
                }
            }
        }
        out
    }

    fn add(&mut self, route: Route) {
        let key = (route.path.clone(), route.method.clone());
        match self.routes.get_mut(&key) {
            None => {
                self.routes.insert(key, route);
            }
            Some(existing) if existing.scopes == route.scopes && existing.flags == route.flags => {
                for n in route.notes {
                    push_unique(&mut existing.notes, &n);
                }
            }
            Some(existing) => self.problems.push(format!(
                "{} {} is in {} and {} with different scopes or flags; decide in decisions.rs",
                route.method,
                route.path,
                existing.file.as_deref().unwrap_or("decisions.rs"),
                route.file.as_deref().unwrap_or("decisions.rs"),
            )),
        }
    }

    fn finish(mut self, sources: &[(String, String)]) -> Result<Tables, Error> {
        let decisions = self.decisions;
        for hand in decisions.hand_routes {
            self.add(Route {
                method: hand.method.to_owned(),
                path: hand.path.to_owned(),
                scopes: hand.scopes.iter().map(|s| (*s).to_owned()).collect(),
                flags: hand.flags.iter().copied().collect(),
                notes: vec![hand.reason.to_owned()],
                file: None,
            });
        }

        // Stale decisions.
        let present: BTreeSet<&str> = sources.iter().map(|(n, _)| n.as_str()).collect();
        for (file, _) in decisions.skipped_files {
            if !present.iter().any(|p| names(file, p)) {
                self.problems.push(format!(
                    "decisions.rs skipped_files: {file} is not in reference/"
                ));
            }
        }
        for (file, _) in decisions.not_proxied_files {
            if !present.contains(file) {
                self.problems.push(format!(
                    "decisions.rs not_proxied_files: {file} is not in reference/"
                ));
            }
        }
        for (i, rule) in decisions.rules.iter().enumerate() {
            if !self.used.rules[i] {
                self.problems.push(format!(
                    "decisions.rs rule {} {} {} changes no route",
                    rule.file,
                    rule.method.unwrap_or("*"),
                    rule.path
                ));
            }
        }
        for (i, alias) in decisions.aliases.iter().enumerate() {
            if !self.used.aliases[i] {
                self.problems.push(format!(
                    "decisions.rs alias {} {} is not used",
                    alias.file, alias.spec_name
                ));
            }
        }
        for (i, s) in decisions.security_overrides.iter().enumerate() {
            if !self.used.security[i] {
                self.problems.push(format!(
                    "decisions.rs security override {} {} {} is not used",
                    s.file, s.method, s.path
                ));
            }
        }
        for (i, (scope, _, _)) in decisions.tsv_levels.iter().enumerate() {
            if !self.used.tsv_levels[i] {
                self.problems.push(format!(
                    "decisions.rs tsv_levels: {scope} has a permission in oauth-scopes.tsv (or no row)"
                ));
            }
        }
        for hand in decisions.hand_scopes {
            if let Some(file) = hand.spec_file
                && !self
                    .file_table_names
                    .get(file)
                    .is_some_and(|names| names.contains(hand.name))
            {
                self.problems.push(format!(
                    "decisions.rs hand scope {}: {file}'s table does not name it",
                    hand.name
                ));
            }
        }

        // Every route must be grantable as written.
        for route in self.routes.values() {
            let where_ = format!("{} {}", route.method, route.path);
            if route.flags.contains(&Flag::NotProxied) {
                continue;
            }
            if route.scopes.is_empty() {
                self.problems.push(format!("{where_}: no scope"));
                continue;
            }
            if route.flags.contains(&Flag::Read) && route.method == "GET" {
                self.problems
                    .push(format!("{where_}: the read flag is for non-GET methods"));
            }
            if route.flags.contains(&Flag::Modify) && route.method != "GET" {
                self.problems
                    .push(format!("{where_}: the modify flag is for GET"));
            }
            let needs_modify = (route.method != "GET" && !route.flags.contains(&Flag::Read))
                || route.flags.contains(&Flag::Modify);
            if needs_modify
                && !route
                    .scopes
                    .iter()
                    .any(|f| self.scopes.family_has_modify(f))
            {
                self.problems.push(format!(
                    "{where_}: needs a modify-level scope, but none of {:?} has one",
                    route.scopes
                ));
            }
        }

        if !self.problems.is_empty() {
            return Err(Error {
                problems: self.problems,
            });
        }
        let mut routes: Vec<Route> = self.routes.into_values().collect();
        routes.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
        Ok(Tables {
            scopes: self.scopes.rows,
            routes,
            skipped: decisions
                .skipped_files
                .iter()
                .map(|(f, r)| ((*f).to_owned(), (*r).to_owned()))
                .collect(),
            b2b_routes: Vec::new(),
            b2b_skipped: Vec::new(),
        })
    }
}

fn push_unique(notes: &mut Vec<String>, note: &str) {
    if !notes.iter().any(|n| n == note) {
        notes.push(note.to_owned());
    }
}

fn get_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A spec file's server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Server {
    host: String,
    /// The path part after `/stores/{store_hash}` (or the whole path part).
    prefix: String,
    has_store_hash: bool,
}

impl Server {
    fn parse(url: &str) -> Option<Server> {
        let rest = url.strip_prefix("https://")?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let path = path.trim_end_matches('/');
        let (prefix, has_store_hash) = match path.strip_prefix("/stores/{store_hash}") {
            Some(p) => (p, true),
            None => (path, false),
        };
        Some(Server {
            host: host.to_owned(),
            prefix: prefix.to_owned(),
            has_store_hash,
        })
    }

    fn is_management(&self) -> bool {
        self.host == "api.bigcommerce.com" && self.has_store_hash
    }
}

#[cfg(test)]
mod tests;
