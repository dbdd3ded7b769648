//! `bcgate recommend`: from a client's observations, the smallest scope set
//! that grants everything it was seen doing, and how that differs from the
//! scopes it is configured with. Pure functions over data.
//!
//! Each observation needs every one of its clauses met, a clause by any one
//! of its scopes: a hitting-set problem. Scopes of one family and level are
//! interchangeable, so each clause keeps one of them; a clause that contains
//! another is met whenever that one is and is dropped. What is left (a few
//! dozen clauses over a few dozen scopes) is solved exactly by branch and
//! bound, minimising the number of scopes and then the number of
//! modify-level ones, so a family only read gets its read-only scope.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use super::Observation;
use crate::policy::{FamilyId, Level, ScopeTable};

/// Search nodes after which the best set found so far is returned as is.
const SEARCH_BUDGET: u64 = 1_000_000;

/// The least scopes that cover a set of observations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recommendation {
    /// Sorted by name.
    pub scopes: Vec<String>,
    /// For each recommended scope, the `METHOD /route` it is needed for (the
    /// path after `/stores/{store}`, so B2B Edition's under `/b2b/v3/io`).
    pub routes: BTreeMap<String, BTreeSet<String>>,
    /// `false` if the search budget ran out (the set covers, but may not be least).
    pub exact: bool,
}

/// The canonical candidate for a scope name: interchangeable names
/// (same family and level) share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Class {
    Known(FamilyId, bool),
    /// A name the scope table does not know (the table changed since it was recorded).
    Unknown(usize),
}

/// The least scope set covering `observations` (one client's).
pub fn recommend(table: &ScopeTable, observations: &[Observation]) -> Recommendation {
    // Candidates in order of first appearance, so the answer is deterministic.
    let mut names: Vec<String> = Vec::new();
    let mut modify: Vec<bool> = Vec::new();
    let mut by_class: HashMap<Class, usize> = HashMap::new();
    let mut unknown: HashMap<String, usize> = HashMap::new();
    let mut candidate = |name: &str| -> usize {
        let class = match table.get(name) {
            Some(s) => Class::Known(s.family, s.level == Level::Modify),
            None => {
                let n = unknown.len();
                Class::Unknown(*unknown.entry(name.to_owned()).or_insert(n))
            }
        };
        *by_class.entry(class).or_insert_with(|| {
            names.push(name.to_owned());
            // An unknown scope costs like a modify scope: prefer known reads.
            modify.push(!matches!(class, Class::Known(_, false)));
            names.len() - 1
        })
    };
    // Each observation's clauses as candidate sets.
    let mut per_obs: Vec<Vec<Vec<usize>>> = Vec::new();
    for o in observations {
        let clauses = o
            .needs
            .iter()
            .map(|clause| {
                let mut c: Vec<usize> = clause.iter().map(|n| candidate(n)).collect();
                c.sort_unstable();
                c.dedup();
                c
            })
            .filter(|c| !c.is_empty())
            .collect();
        per_obs.push(clauses);
    }
    let mut clauses: Vec<Vec<usize>> = per_obs.iter().flatten().cloned().collect();
    clauses.sort();
    clauses.dedup();
    let reduced: Vec<Vec<usize>> = clauses
        .iter()
        .filter(|c| {
            !clauses
                .iter()
                .any(|d| d != *c && d.iter().all(|x| c.contains(x)))
        })
        .cloned()
        .collect();

    let mut search = Search {
        clauses: &reduced,
        modify: &modify,
        best: None,
        nodes: 0,
    };
    search.run(&mut Vec::new());
    let exact = search.nodes <= SEARCH_BUDGET;
    let chosen: Vec<usize> = search.best.map(|(_, _, c)| c).unwrap_or_default();

    let mut routes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (o, clauses) in observations.iter().zip(&per_obs) {
        for clause in clauses {
            for c in clause.iter().filter(|c| chosen.contains(c)) {
                routes
                    .entry(names[*c].clone())
                    .or_default()
                    .insert(o.shown());
            }
        }
    }
    let mut scopes: Vec<String> = chosen.iter().map(|c| names[*c].clone()).collect();
    scopes.sort();
    Recommendation {
        scopes,
        routes,
        exact,
    }
}

struct Search<'a> {
    clauses: &'a [Vec<usize>],
    modify: &'a [bool],
    /// (size, modify-level count, set)
    best: Option<(usize, usize, Vec<usize>)>,
    nodes: u64,
}

impl Search<'_> {
    fn run(&mut self, chosen: &mut Vec<usize>) {
        self.nodes += 1;
        if self.nodes > SEARCH_BUDGET && self.best.is_some() {
            return;
        }
        let unmet = self
            .clauses
            .iter()
            .filter(|c| !c.iter().any(|x| chosen.contains(x)))
            .min_by_key(|c| c.len());
        let Some(clause) = unmet else {
            let m = chosen.iter().filter(|c| self.modify[**c]).count();
            if self
                .best
                .as_ref()
                .is_none_or(|(n, bm, _)| (chosen.len(), m) < (*n, *bm))
            {
                self.best = Some((chosen.len(), m, chosen.clone()));
            }
            return;
        };
        // One more scope is needed: no use if that cannot beat the best size.
        if self
            .best
            .as_ref()
            .is_some_and(|(n, _, _)| chosen.len() >= *n)
        {
            return;
        }
        let mut order = clause.clone();
        order.sort_by_key(|c| (self.modify[*c], *c));
        for c in order {
            chosen.push(c);
            self.run(chosen);
            chosen.pop();
        }
    }
}

/// One client's part of the report.
#[derive(Debug, Clone)]
pub struct ClientReport {
    pub name: String,
    /// `None` when the client is no longer in the config.
    pub configured: Option<Vec<String>>,
    /// `enforce` or `learn`, when configured.
    pub mode: Option<&'static str>,
    pub requests: u64,
    pub would_deny: u64,
    pub routes: usize,
    pub first_seen: u64,
    pub last_seen: u64,
    pub recommendation: Recommendation,
    /// Recommended but not configured, each with why.
    pub add: Vec<(String, &'static str)>,
    /// Configured but not recommended, each with why.
    pub remove: Vec<(String, &'static str)>,
}

/// The report for one client; `configured` is the client's `scopes` (and
/// `mode`) from the config, if it is still there.
pub fn report(
    table: &ScopeTable,
    name: &str,
    configured: Option<(&[String], &'static str)>,
    observations: &[Observation],
) -> ClientReport {
    let rec = recommend(table, observations);
    let (add, remove) = match configured {
        None => (Vec::new(), Vec::new()),
        Some((scopes, _)) => {
            // Whether the configured scopes already grant every use of `s`
            // (a read clause lists the modify scopes too).
            let granted_now = |s: &str| {
                observations.iter().all(|o| {
                    o.needs.iter().all(|clause| {
                        !clause.iter().any(|n| n == s) || clause.iter().any(|n| scopes.contains(n))
                    })
                })
            };
            let add = rec
                .scopes
                .iter()
                .filter(|s| !scopes.contains(s))
                .map(|s| {
                    let why = if granted_now(s) {
                        "in place of a broader scope granted now"
                    } else {
                        "not granted now: enforce mode would deny"
                    };
                    (s.clone(), why)
                })
                .collect();
            let used: BTreeSet<&str> = observations
                .iter()
                .flat_map(|o| o.needs.iter().flatten())
                .map(String::as_str)
                .collect();
            let remove = scopes
                .iter()
                .filter(|s| !rec.scopes.contains(s))
                .map(|s| {
                    let why = if !used.contains(s.as_str()) {
                        "granted, never used"
                    } else if read_twin_recommended(table, s, &rec.scopes) {
                        "granted, only reads seen: its read-only scope is enough"
                    } else {
                        "granted, not needed: the recommended scopes cover its uses"
                    };
                    (s.clone(), why)
                })
                .collect();
            (add, remove)
        }
    };
    ClientReport {
        name: name.to_owned(),
        configured: configured.map(|(s, _)| s.to_vec()),
        mode: configured.map(|(_, m)| m),
        requests: observations.iter().map(|o| o.count).sum(),
        would_deny: observations.iter().map(|o| o.would_deny).sum(),
        routes: observations
            .iter()
            .map(|o| (&o.family, &o.method, &o.route))
            .collect::<BTreeSet<_>>()
            .len(),
        first_seen: observations.iter().map(|o| o.first_seen).min().unwrap_or(0),
        last_seen: observations.iter().map(|o| o.last_seen).max().unwrap_or(0),
        recommendation: rec,
        add,
        remove,
    }
}

fn read_twin_recommended(table: &ScopeTable, scope: &str, recommended: &[String]) -> bool {
    let Some(s) = table.get(scope) else {
        return false;
    };
    s.level == Level::Modify
        && recommended.iter().any(|r| {
            table
                .get(r)
                .is_some_and(|t| t.family == s.family && t.level == Level::Read)
        })
}

/// `scopes = ["a", "b"]`, the line to paste into the client's entry.
pub fn scopes_line(scopes: &[String]) -> String {
    let quoted: Vec<String> = scopes.iter().map(|s| toml_string(s)).collect();
    format!("scopes = [{}]", quoted.join(", "))
}

/// A TOML basic string (scope and client names are plain, but be safe).
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The human-readable report; `utc` formats unix seconds.
pub fn text(reports: &[ClientReport], utc: &dyn Fn(u64) -> String) -> String {
    let mut out = String::new();
    if reports.is_empty() {
        out.push_str("no observations yet\n");
    }
    for r in reports {
        let mode = r
            .mode
            .map_or("not in the config".to_owned(), |m| format!("mode {m}"));
        let _ = writeln!(out, "client '{}' ({mode})", r.name);
        let _ = writeln!(
            out,
            "  seen: {} requests on {} routes, {} would have been denied by its scopes, {} to {}",
            r.requests,
            r.routes,
            r.would_deny,
            utc(r.first_seen),
            utc(r.last_seen)
        );
        let _ = writeln!(out, "  recommended scopes:");
        for s in &r.recommendation.scopes {
            let routes: Vec<&str> = r
                .recommendation
                .routes
                .get(s)
                .map(|set| set.iter().map(String::as_str).collect())
                .unwrap_or_default();
            let _ = writeln!(out, "    {s}");
            for route in routes {
                let _ = writeln!(out, "        {route}");
            }
        }
        if !r.recommendation.exact {
            let _ = writeln!(
                out,
                "  (the search stopped early: this set covers everything but may not be the smallest)"
            );
        }
        if r.configured.is_some() {
            let _ = writeln!(out, "  against the configured scopes:");
            if r.add.is_empty() && r.remove.is_empty() {
                let _ = writeln!(out, "    no change");
            }
            for (s, why) in &r.add {
                let _ = writeln!(out, "    + {s}  ({why})");
            }
            for (s, why) in &r.remove {
                let _ = writeln!(out, "    - {s}  ({why})");
            }
        }
        let _ = writeln!(out, "  {}", scopes_line(&r.recommendation.scopes));
        out.push('\n');
    }
    out
}

/// The report as TOML: a table per client holding its recommended `scopes`.
pub fn toml(reports: &[ClientReport], source: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# bcgate recommend: least scopes for what was observed in {source}"
    );
    let _ = writeln!(
        out,
        "# paste each client's scopes line into its [[clients]] entry"
    );
    for r in reports {
        let _ = writeln!(out, "\n[{}]", toml_string(&r.name));
        let _ = writeln!(
            out,
            "# {} requests on {} routes, {} would have been denied",
            r.requests, r.routes, r.would_deny
        );
        if !r.remove.is_empty() {
            let names: Vec<&str> = r.remove.iter().map(|(s, _)| s.as_str()).collect();
            let _ = writeln!(out, "# granted now but not needed: {}", names.join(", "));
        }
        let _ = writeln!(out, "{}", scopes_line(&r.recommendation.scopes));
    }
    out
}
