//! The scope table: every OAuth scope bcgate knows, its family and its level.
//!
//! A family is a group of routes (Products, Orders, …) named by its
//! modify-level scope. A read-level scope grants the family's reads; a
//! modify-level scope grants everything and so implies its read twin.

use std::collections::HashMap;

use super::TableError;

/// Index of a family in the scope table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FamilyId(u16);

/// A set of families, small enough to copy and intersect in a few instructions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FamilySet([u64; 4]);

/// The most families a table may hold (the size of [`FamilySet`]).
pub const MAX_FAMILIES: usize = 256;

impl FamilySet {
    pub fn insert(&mut self, id: FamilyId) {
        let i = usize::from(id.0);
        self.0[i / 64] |= 1 << (i % 64);
    }

    pub fn contains(&self, id: FamilyId) -> bool {
        let i = usize::from(id.0);
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    pub fn intersects(&self, other: &FamilySet) -> bool {
        self.0.iter().zip(other.0.iter()).any(|(a, b)| a & b != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    pub fn iter(&self) -> impl Iterator<Item = FamilyId> + '_ {
        (0..MAX_FAMILIES)
            .filter(|i| self.0[i / 64] & (1 << (i % 64)) != 0)
            .filter_map(|i| u16::try_from(i).ok().map(FamilyId))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Grants GET, HEAD and the POSTs a route marks as reads.
    Read,
    /// Grants every method.
    Modify,
}

#[derive(Debug, Clone)]
pub struct Scope {
    pub name: String,
    pub family: FamilyId,
    pub level: Level,
}

#[derive(Debug, Clone)]
struct Family {
    name: String,
    read: Vec<String>,
    modify: Vec<String>,
}

/// What a set of scopes grants: `read` includes every family of `modify`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grants {
    pub read: FamilySet,
    pub modify: FamilySet,
}

impl Grants {
    /// The families that grant an operation of this kind.
    pub fn for_op(&self, write: bool) -> &FamilySet {
        if write { &self.modify } else { &self.read }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ScopeTable {
    scopes: HashMap<String, Scope>,
    families: Vec<Family>,
    family_by_name: HashMap<String, FamilyId>,
    /// Rows in file order, for printing.
    order: Vec<String>,
}

impl ScopeTable {
    /// Parses `data/scopes.txt`: `SCOPE FAMILY LEVEL [# note]` per line.
    pub fn parse(text: &str) -> Result<Self, TableError> {
        let mut table = Self::default();
        for (n, line) in text.lines().enumerate() {
            let line_no = n + 1;
            let data = line.split('#').next().unwrap_or("").trim();
            // Scope names contain ':' (bcgate:graphql_read) but never '#'.
            if data.is_empty() {
                continue;
            }
            let err = |msg: String| TableError { line: line_no, msg };
            let cols: Vec<&str> = data.split_whitespace().collect();
            let [name, family, level] = cols.as_slice() else {
                return Err(err(format!("expected SCOPE FAMILY LEVEL, got {data:?}")));
            };
            let level = match *level {
                "read" => Level::Read,
                "modify" => Level::Modify,
                other => return Err(err(format!("level must be read or modify, got {other:?}"))),
            };
            if table.scopes.contains_key(*name) {
                return Err(err(format!("scope {name} listed twice")));
            }
            let id = match table.family_by_name.get(*family) {
                Some(id) => *id,
                None => {
                    if table.families.len() >= MAX_FAMILIES {
                        return Err(err(format!("more than {MAX_FAMILIES} families")));
                    }
                    let id = FamilyId(u16::try_from(table.families.len()).unwrap_or(u16::MAX));
                    table.families.push(Family {
                        name: (*family).to_string(),
                        read: Vec::new(),
                        modify: Vec::new(),
                    });
                    table.family_by_name.insert((*family).to_string(), id);
                    id
                }
            };
            let fam = &mut table.families[usize::from(id.0)];
            match level {
                Level::Read => fam.read.push((*name).to_string()),
                Level::Modify => fam.modify.push((*name).to_string()),
            }
            table.order.push((*name).to_string());
            table.scopes.insert(
                (*name).to_string(),
                Scope {
                    name: (*name).to_string(),
                    family: id,
                    level,
                },
            );
        }
        Ok(table)
    }

    pub fn get(&self, name: &str) -> Option<&Scope> {
        self.scopes.get(name)
    }

    /// A family by its canonical name (its modify scope, or its only scope).
    pub fn family(&self, name: &str) -> Option<FamilyId> {
        self.family_by_name.get(name).copied()
    }

    pub fn family_name(&self, id: FamilyId) -> &str {
        self.families
            .get(usize::from(id.0))
            .map_or("?", |f| f.name.as_str())
    }

    /// What these scope names grant; the error is the first unknown name.
    pub fn grants<'a, I>(&self, names: I) -> Result<Grants, &'a str>
    where
        I: IntoIterator<Item = &'a str>,
    {
        let mut g = Grants::default();
        for name in names {
            let scope = self.scopes.get(name).ok_or(name)?;
            g.read.insert(scope.family);
            if scope.level == Level::Modify {
                g.modify.insert(scope.family);
            }
        }
        Ok(g)
    }

    /// The scopes any one of which would grant an operation on these families:
    /// for reads the read-level names first, then the modify-level ones.
    pub fn required(&self, families: &FamilySet, write: bool) -> Vec<String> {
        let mut out = Vec::new();
        for id in families.iter() {
            if let Some(f) = self.families.get(usize::from(id.0)) {
                if !write {
                    out.extend(f.read.iter().cloned());
                }
                out.extend(f.modify.iter().cloned());
            }
        }
        out
    }

    /// Scopes in table order.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.order.iter().filter_map(|n| self.scopes.get(n))
    }

    /// A close known name for an unknown one, for config errors.
    pub fn suggest(&self, unknown: &str) -> Option<&str> {
        self.order
            .iter()
            .map(|n| {
                (
                    edit_distance(&n.to_ascii_lowercase(), &unknown.to_ascii_lowercase()),
                    n,
                )
            })
            .filter(|(d, _)| *d <= 3)
            .min_by_key(|(d, _)| *d)
            .map(|(_, n)| n.as_str())
    }
}

/// Levenshtein distance over bytes (scope names are ASCII).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
