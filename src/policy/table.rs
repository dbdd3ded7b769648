//! The route table: which families grant each (method, path template), and
//! the matcher that finds the template for a request path.
//!
//! Matching walks a segment trie. At every level a literal segment is tried
//! before a parameter, so `/v3/carts/settings` is never `/v3/carts/{cartId}`;
//! once a literal path names an endpoint, the parameter sibling is not tried
//! even if the method is missing there (fail closed).

use std::sync::Arc;

use http::Method;

use super::TableError;
use super::scopes::{FamilySet, ScopeTable};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteFlags {
    /// A non-GET method that only reads, so read-level scopes grant it.
    pub read: bool,
    /// Even GET and HEAD need a modify-level scope.
    pub modify: bool,
    /// Storefront-style API: never forwarded with a store token.
    pub not_proxied: bool,
    /// Scripts: `visibility` in the body may require Checkout Content too.
    pub scripts_visibility: bool,
    /// GraphQL Admin: the document decides read or write.
    pub graphql: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// From `data/routes.txt` or `data/b2b-routes.txt`, derived from BigCommerce's specs.
    Builtin,
    /// From the operator's `[[routes]]`.
    Operator,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    /// The template as written in the table, e.g. `/v3/catalog/products/{product_id}`.
    pub template: Arc<str>,
    /// Any one of these families grants the route (at the right level).
    pub families: FamilySet,
    /// The families by name, as written, for printing.
    pub family_names: Vec<String>,
    pub flags: RouteFlags,
    pub origin: Origin,
    /// The hand-made decision written next to the row, if any.
    pub note: Option<String>,
}

impl Route {
    /// Whether this method on this route counts as a write (needs modify level).
    pub fn is_write(&self, method: &Method) -> bool {
        let reading = (*method == Method::GET || *method == Method::HEAD) && !self.flags.modify;
        !(reading || self.flags.read)
    }
}

#[derive(Debug, Default, Clone)]
struct Node {
    /// Sorted by segment for binary search.
    literals: Vec<(Box<str>, Node)>,
    param: Option<Box<Node>>,
    /// Index into `RouteTable::routes` per method.
    methods: Vec<(Method, usize)>,
}

/// The outcome of a lookup.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    Found(&'a Route),
    /// No template for this path, or none for this method on it.
    Unknown,
    /// It would match if the case of a literal segment were different.
    CaseMismatch,
}

#[derive(Debug, Default, Clone)]
pub struct RouteTable {
    routes: Vec<Route>,
    root: Node,
}

/// BigCommerce v2 accepts a format suffix on the last segment.
const V2_SUFFIXES: [&str; 2] = [".json", ".xml"];

impl RouteTable {
    /// Parses `data/routes.txt`: `METHOD PATH SCOPES FLAGS [# note]` per line.
    pub fn parse(text: &str, scopes: &ScopeTable) -> Result<Self, TableError> {
        let mut table = Self::default();
        for (n, line) in text.lines().enumerate() {
            let line_no = n + 1;
            let (data, note) = match line.split_once('#') {
                Some((d, note)) => (d.trim(), Some(note.trim().to_string())),
                None => (line.trim(), None),
            };
            if data.is_empty() {
                continue;
            }
            let err = |msg: String| TableError { line: line_no, msg };
            let cols: Vec<&str> = data.split_whitespace().collect();
            let [method, path, fams, flags] = cols.as_slice() else {
                return Err(err(format!(
                    "expected METHOD PATH SCOPES FLAGS, got {data:?}"
                )));
            };
            let method = Method::from_bytes(method.as_bytes())
                .map_err(|_| err(format!("bad method {method:?}")))?;
            let family_names: Vec<String> = if *fams == "-" {
                Vec::new()
            } else {
                fams.split(',').map(str::to_string).collect()
            };
            let families = families_of(scopes, &family_names).map_err(err)?;
            let flags = parse_flags(flags).map_err(err)?;
            if families.is_empty() && !flags.not_proxied {
                return Err(err(format!(
                    "{method} {path} has no scope and is not not_proxied"
                )));
            }
            let route = Route {
                method,
                template: Arc::from(*path),
                families,
                family_names,
                flags,
                origin: Origin::Builtin,
                note: note.filter(|n| !n.is_empty()),
            };
            if table.insert(route).map_err(err)?.is_some() {
                return Err(err(format!("{path} is listed twice for one method")));
            }
        }
        Ok(table)
    }

    /// Adds a route, replacing the one with the same method and path shape;
    /// returns the replaced route.
    pub fn insert(&mut self, route: Route) -> Result<Option<Route>, String> {
        let path = route.template.to_string();
        let segments = split_template(&path)?;
        let mut node = &mut self.root;
        for seg in segments {
            node = if seg.starts_with('{') {
                node.param.get_or_insert_with(Box::default)
            } else {
                let pos = match node.literals.binary_search_by(|(s, _)| (**s).cmp(seg)) {
                    Ok(pos) => pos,
                    Err(pos) => {
                        node.literals.insert(pos, (seg.into(), Node::default()));
                        pos
                    }
                };
                &mut node.literals[pos].1
            };
        }
        if let Some(slot) = node.methods.iter_mut().find(|(m, _)| *m == route.method) {
            let old = std::mem::replace(&mut self.routes[slot.1], route);
            return Ok(Some(old));
        }
        node.methods.push((route.method.clone(), self.routes.len()));
        self.routes.push(route);
        Ok(None)
    }

    /// Finds the route for `method` on `path` (the part after `/stores/{store}`,
    /// already checked by the route stage: starts with `/`, no empty segments).
    pub fn lookup(&self, method: &Method, path: &str) -> Lookup<'_> {
        let path = strip_v2_suffix(path);
        let method = if *method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        let Some(rest) = path.strip_prefix('/') else {
            return Lookup::Unknown;
        };
        match find(&self.root, rest, false) {
            Some(node) => node
                .methods
                .iter()
                .find(|(m, _)| m == method)
                .and_then(|(_, i)| self.routes.get(*i))
                .map_or(Lookup::Unknown, Lookup::Found),
            None if find(&self.root, rest, true).is_some() => Lookup::CaseMismatch,
            None => Lookup::Unknown,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

/// Resolves family names (each must be a family of the scope table).
pub fn families_of(scopes: &ScopeTable, names: &[String]) -> Result<FamilySet, String> {
    let mut set = FamilySet::default();
    for name in names {
        let id = scopes
            .family(name)
            .ok_or_else(|| format!("{name:?} is not a scope family in the scope table"))?;
        set.insert(id);
    }
    Ok(set)
}

fn parse_flags(text: &str) -> Result<RouteFlags, String> {
    let mut flags = RouteFlags::default();
    if text == "-" {
        return Ok(flags);
    }
    for f in text.split(',') {
        match f {
            "read" => flags.read = true,
            "modify" => flags.modify = true,
            "not_proxied" => flags.not_proxied = true,
            "scripts_visibility" => flags.scripts_visibility = true,
            "graphql" => flags.graphql = true,
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    Ok(flags)
}

/// Checks a template's shape and splits it into segments.
pub fn split_template(path: &str) -> Result<Vec<&str>, String> {
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| format!("path {path:?} must start with '/'"))?;
    let segments: Vec<&str> = rest.split('/').collect();
    for seg in &segments {
        let is_param = seg.len() > 2
            && seg.starts_with('{')
            && seg.ends_with('}')
            && !seg[1..seg.len() - 1].contains(['{', '}']);
        let is_literal = !seg.is_empty()
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        if !is_param && !is_literal {
            return Err(format!(
                "path {path:?}: segment {seg:?} must be a literal or a whole {{parameter}}"
            ));
        }
    }
    Ok(segments)
}

fn strip_v2_suffix(path: &str) -> &str {
    if !path.starts_with("/v2/") {
        return path;
    }
    for suffix in V2_SUFFIXES {
        if let Some(stripped) = path.strip_suffix(suffix) {
            // Only a suffix on a non-empty last segment.
            if !stripped.ends_with('/') {
                return stripped;
            }
        }
    }
    path
}

fn find<'a>(node: &'a Node, rest: &str, ignore_case: bool) -> Option<&'a Node> {
    let (seg, tail) = match rest.split_once('/') {
        Some((seg, tail)) => (seg, Some(tail)),
        None => (rest, None),
    };
    if seg.is_empty() {
        return None;
    }
    let descend = |child: &'a Node| match tail {
        Some(t) => find(child, t, ignore_case),
        None => (!child.methods.is_empty()).then_some(child),
    };
    if ignore_case {
        for (lit, child) in &node.literals {
            if lit.eq_ignore_ascii_case(seg)
                && let Some(found) = descend(child)
            {
                return Some(found);
            }
        }
    } else if let Ok(i) = node.literals.binary_search_by(|(s, _)| (**s).cmp(seg))
        && let Some(found) = descend(&node.literals[i].1)
    {
        return Some(found);
    }
    node.param.as_deref().and_then(descend)
}
