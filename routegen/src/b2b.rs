//! The B2B Edition table (data/b2b-routes.txt): every REST Management
//! operation of the specs under `reference/b2b-edition/`, each granted by one
//! bcgate family, because B2B Edition publishes no OAuth scope name.

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;

use crate::decisions::B2bDecisions;
use crate::operation::{openapi3, operations};
use crate::scopes::ScopeTable;
use crate::{Flag, METHODS, Route, get_str, names, push_unique};

/// The folder under `reference/` whose files make the B2B table.
pub const B2B_DIR: &str = "b2b-edition/";

/// The base every B2B table path is below (bcgate's `/b2b/v3/io`).
pub const B2B_SERVER: &str = "https://api-b2b.bigcommerce.com/api/v3/io";

/// Why routes.txt leaves `b2b-edition/` out.
pub const OWN_TABLE: &str = "B2B Edition's REST Management API (api-b2b.bigcommerce.com, X-Auth-Token with X-Store-Hash): its own table, data/b2b-routes.txt";

/// Security schemes that are the store's server-to-server credentials in
/// every file: the API account's token and the header naming the store.
const TOKEN_SCHEMES: &[&str] = &["X-Auth-Token", "X-Store-Hash"];

/// The B2B rows (sorted by path, then method) and the files left out, with why.
pub(crate) struct B2bTable {
    pub routes: Vec<Route>,
    pub skipped: Vec<(String, String)>,
}

/// Derives the B2B table from the `b2b-edition/` files among `sources`.
/// With no such file it is empty and nothing is checked.
pub(crate) fn derive(
    sources: &[(String, String)],
    decisions: &B2bDecisions,
    scopes: &ScopeTable,
    problems: &mut Vec<String>,
) -> B2bTable {
    let files: Vec<&(String, String)> = sources
        .iter()
        .filter(|(name, _)| name.starts_with(B2B_DIR))
        .collect();
    let mut d = Deriver {
        decisions,
        routes: BTreeMap::new(),
        copied: Vec::new(),
        used_schemes: vec![false; decisions.schemes.len()],
        problems: Vec::new(),
    };
    if !files.is_empty() {
        d.check_decisions(scopes);
        for (name, text) in &files {
            d.file(name, text);
        }
        d.finish(&files);
    }
    problems.append(&mut d.problems);
    let mut skipped: Vec<(String, String)> = decisions
        .skipped_files
        .iter()
        .chain(decisions.copies)
        .map(|(f, r)| ((*f).to_owned(), (*r).to_owned()))
        .collect();
    skipped.sort();
    B2bTable {
        routes: d.routes.into_values().collect(),
        skipped,
    }
}

struct Deriver<'d> {
    decisions: &'d B2bDecisions,
    /// Keyed (path, method): the table's order.
    routes: BTreeMap<(String, String), Route>,
    /// (file, method, path) of every operation of a copy file.
    copied: Vec<(String, String, String)>,
    used_schemes: Vec<bool>,
    problems: Vec<String>,
}

impl Deriver<'_> {
    fn check_decisions(&mut self, scopes: &ScopeTable) {
        let family = self.decisions.family;
        if !scopes.is_family(family) || !scopes.family_has_modify(family) {
            self.problems.push(format!(
                "decisions.rs b2b family: {family} is not a scope family with a modify-level scope"
            ));
        }
        for read in self.decisions.reads {
            if read.method == "GET" || !METHODS.contains(&read.method.to_ascii_lowercase().as_str())
            {
                self.problems.push(format!(
                    "decisions.rs b2b read {} {}: the read flag is for a non-GET method",
                    read.method, read.path
                ));
            }
        }
        let reasons = self
            .decisions
            .skipped_files
            .iter()
            .chain(self.decisions.copies)
            .map(|(_, r)| *r)
            .chain(self.decisions.schemes.iter().map(|s| s.reason))
            .chain(self.decisions.reads.iter().map(|r| r.reason));
        for reason in reasons {
            if reason.trim().is_empty() || reason.contains('\n') {
                self.problems.push(format!(
                    "decisions.rs b2b: a reason must be one non-empty line: {reason:?}"
                ));
            }
        }
    }

    fn file(&mut self, name: &str, text: &str) {
        let decisions = self.decisions;
        if decisions.skipped_files.iter().any(|(f, _)| names(f, name)) {
            return;
        }
        let copy = decisions.copies.iter().any(|(f, _)| *f == name);
        let Some(doc) = openapi3(name, text, "b2b skipped_files", &mut self.problems) else {
            return;
        };
        let url = match doc
            .get("servers")
            .and_then(Value::as_sequence)
            .map(|s| s.as_slice())
        {
            Some([server]) => get_str(server, "url"),
            _ => None,
        };
        let Some(url) = url else {
            self.problems
                .push(format!("{name}: expected exactly one server with a url"));
            return;
        };
        let prefix = url
            .trim_end_matches('/')
            .strip_prefix(B2B_SERVER)
            .filter(|p| p.is_empty() || p.starts_with('/'));
        let Some(prefix) = prefix else {
            self.problems.push(format!(
                "{name}: served on {url}, not below {B2B_SERVER}; list it in decisions.rs b2b skipped_files"
            ));
            return;
        };
        let top_security = doc.get("security");
        let Some(paths) = doc.get("paths").and_then(Value::as_mapping) else {
            self.problems.push(format!("{name}: no paths"));
            return;
        };
        for (path, method, op) in operations(name, prefix, paths, &mut self.problems) {
            if copy {
                self.copied.push((name.to_owned(), method, path.clone()));
                continue;
            }
            let security = op.get("security").or(top_security);
            if let Some(route) = self.operation(name, method, &path, security) {
                self.add(route);
            }
        }
    }

    /// The route of one operation, once its security is the store's token.
    fn operation(
        &mut self,
        file: &str,
        method: String,
        path: &str,
        security: Option<&Value>,
    ) -> Option<Route> {
        let where_ = format!("{file}: {method} {path}");
        let mut notes = Vec::new();
        let reqs = security.and_then(Value::as_sequence).map(|s| s.as_slice());
        let Some(reqs @ [_, ..]) = reqs else {
            self.problems.push(format!(
                "{where_}: no security requirement (or security: []); B2B routes are all sent the store's token"
            ));
            return None;
        };
        for req in reqs {
            let keys: Vec<&str> = req
                .as_mapping()
                .map(|m| m.keys().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if keys.is_empty() {
                self.problems
                    .push(format!("{where_}: an empty security requirement"));
                return None;
            }
            for key in keys {
                if TOKEN_SCHEMES.contains(&key) {
                    continue;
                }
                let decided = self
                    .decisions
                    .schemes
                    .iter()
                    .position(|s| s.file == file && s.scheme == key);
                match decided {
                    Some(i) => {
                        self.used_schemes[i] = true;
                        push_unique(&mut notes, self.decisions.schemes[i].reason);
                    }
                    None => {
                        self.problems.push(format!(
                            "{where_}: security scheme {key:?} is not X-Auth-Token or X-Store-Hash; decide in decisions.rs b2b schemes"
                        ));
                        return None;
                    }
                }
            }
        }
        let mut flags = BTreeSet::new();
        if let Some(read) = self
            .decisions
            .reads
            .iter()
            .find(|r| r.method == method && r.path == path)
        {
            flags.insert(Flag::Read);
            push_unique(&mut notes, read.reason);
        }
        Some(Route {
            method,
            path: path.to_owned(),
            scopes: BTreeSet::from([self.decisions.family.to_owned()]),
            flags,
            notes,
            file: Some(file.to_owned()),
        })
    }

    fn add(&mut self, route: Route) {
        let key = (route.path.clone(), route.method.clone());
        match self.routes.get_mut(&key) {
            None => {
                self.routes.insert(key, route);
            }
            Some(existing) if existing.flags == route.flags => {
                for n in route.notes {
                    push_unique(&mut existing.notes, &n);
                }
            }
            Some(existing) => self.problems.push(format!(
                "{} {} is in {} and {} with different flags",
                route.method,
                route.path,
                existing.file.as_deref().unwrap_or("?"),
                route.file.as_deref().unwrap_or("?"),
            )),
        }
    }

    fn finish(&mut self, files: &[&(String, String)]) {
        let decisions = self.decisions;
        for (file, method, path) in &self.copied {
            if !self.routes.contains_key(&(path.clone(), method.clone())) {
                self.problems.push(format!(
                    "{file}: {method} {path} is in no other file; take the file out of decisions.rs b2b copies"
                ));
            }
        }
        let present = |entry: &str| files.iter().any(|(n, _)| names(entry, n));
        for (file, _) in decisions.skipped_files {
            if !present(file) {
                self.problems.push(format!(
                    "decisions.rs b2b skipped_files: {file} is not in reference/"
                ));
            }
        }
        for (file, _) in decisions.copies {
            if !files.iter().any(|(n, _)| n == file) {
                self.problems.push(format!(
                    "decisions.rs b2b copies: {file} is not in reference/"
                ));
            }
        }
        for (i, s) in decisions.schemes.iter().enumerate() {
            if !self.used_schemes[i] {
                self.problems.push(format!(
                    "decisions.rs b2b scheme {} {} is not used",
                    s.file, s.scheme
                ));
            }
        }
        for read in decisions.reads {
            let key = (read.path.to_owned(), read.method.to_owned());
            if !self.routes.contains_key(&key) {
                self.problems.push(format!(
                    "decisions.rs b2b read {} {} is not a route",
                    read.method, read.path
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests;
