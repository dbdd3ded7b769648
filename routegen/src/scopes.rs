//! The scope table: oauth-scopes.tsv (api-accounts.mdx) plus the hand rows.

use std::collections::{BTreeMap, HashMap};

use crate::Level;
use crate::decisions::Decisions;

/// One row of scopes.txt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRow {
    pub name: String,
    pub family: String,
    pub level: Level,
    pub note: Option<String>,
}

/// All scopes, in output order, with lookups.
#[derive(Debug, Clone, Default)]
pub struct ScopeTable {
    pub rows: Vec<ScopeRow>,
    by_name: HashMap<String, usize>,
    /// (UI name, scope index) for the TSV rows.
    ui_names: Vec<(String, usize)>,
}

/// The level a permission word gives, as tables write it
/// (`read-only`, `modify`, `Manage`, `read and modify \`transactions\``, `create preview`, ...).
pub fn permission_level(permission: &str) -> Option<Level> {
    let p = permission.to_ascii_lowercase();
    let modify = [
        "modify", "manage", "create", "write", "full", "standard", "delete",
    ];
    if modify.iter().any(|w| p.contains(w)) {
        Some(Level::Modify)
    } else if p.starts_with("read") {
        Some(Level::Read)
    } else {
        None
    }
}

impl ScopeTable {
    /// Builds the table from the TSV text and the hand rows of `decisions`.
    /// `used_tsv_levels[i]` is set when `decisions.tsv_levels[i]` was applied.
    pub fn build(
        tsv: &str,
        decisions: &Decisions,
        used_tsv_levels: &mut [bool],
        problems: &mut Vec<String>,
    ) -> ScopeTable {
        struct Tsv {
            name: String,
            level: Option<Level>,
            note: Option<String>,
            ui_name: String,
            partners: Vec<String>,
        }
        let mut tsv_rows: Vec<Tsv> = Vec::new();
        for (n, line) in tsv.lines().enumerate().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').map(str::trim).collect();
            let col = |i: usize| cols.get(i).copied().unwrap_or("");
            let name = col(0).to_owned();
            let permission = col(1);
            let mut note = None;
            let level = if permission.is_empty() {
                let hand = decisions
                    .tsv_levels
                    .iter()
                    .position(|(scope, _, _)| *scope == name);
                match hand {
                    Some(i) => {
                        used_tsv_levels[i] = true;
                        note = Some(decisions.tsv_levels[i].2.to_owned());
                        Some(decisions.tsv_levels[i].1)
                    }
                    None => {
                        problems.push(format!(
                            "oauth-scopes.tsv line {}: {name} has no permission; give it a level in decisions.rs tsv_levels",
                            n + 1
                        ));
                        None
                    }
                }
            } else {
                let level = permission_level(permission);
                if level.is_none() {
                    problems.push(format!(
                        "oauth-scopes.tsv line {}: unknown permission {permission:?} for {name}",
                        n + 1
                    ));
                }
                level
            };
            let partners = col(5)
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            tsv_rows.push(Tsv {
                name,
                level,
                note,
                ui_name: col(2).to_owned(),
                partners,
            });
        }

        // Families: groups of scopes sharing a UI name (same_ui_name_scopes), named
        // after their first modify-level member in api-accounts.mdx order.
        let index: HashMap<&str, usize> = tsv_rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.as_str(), i))
            .collect();
        let mut group: Vec<usize> = (0..tsv_rows.len()).collect();
        fn root(group: &mut [usize], mut i: usize) -> usize {
            while group[i] != i {
                group[i] = group[group[i]];
                i = group[i];
            }
            i
        }
        for (i, row) in tsv_rows.iter().enumerate() {
            for partner in &row.partners {
                match index.get(partner.as_str()) {
                    Some(&j) => {
                        let (a, b) = (root(&mut group, i), root(&mut group, j));
                        group[a.max(b)] = a.min(b);
                    }
                    None => problems.push(format!(
                        "oauth-scopes.tsv: {} names partner {partner}, which has no row",
                        row.name
                    )),
                }
            }
        }
        let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for i in 0..tsv_rows.len() {
            let r = root(&mut group, i);
            members.entry(r).or_default().push(i);
        }
        let mut family_of: HashMap<usize, String> = HashMap::new();
        for list in members.values() {
            let modify = list
                .iter()
                .find(|&&i| tsv_rows[i].level == Some(Level::Modify));
            let family = match (modify, list.as_slice()) {
                (Some(&i), _) => tsv_rows[i].name.clone(),
                (None, [only]) => tsv_rows[*only].name.clone(),
                (None, _) => {
                    let names: Vec<&str> =
                        list.iter().map(|&i| tsv_rows[i].name.as_str()).collect();
                    problems.push(format!(
                        "oauth-scopes.tsv: the family {names:?} has no modify-level scope to name it"
                    ));
                    tsv_rows[list[0]].name.clone()
                }
            };
            for &i in list {
                family_of.insert(i, family.clone());
            }
        }

        let mut table = ScopeTable::default();
        for (i, row) in tsv_rows.iter().enumerate() {
            let Some(level) = row.level else { continue };
            let family = family_of
                .get(&i)
                .cloned()
                .unwrap_or_else(|| row.name.clone());
            table.push(
                ScopeRow {
                    name: row.name.clone(),
                    family,
                    level,
                    note: row.note.clone(),
                },
                problems,
            );
            if let Some(&idx) = table.by_name.get(&row.name) {
                table.ui_names.push((row.ui_name.clone(), idx));
            }
        }
        for hand in decisions.hand_scopes {
            table.push(
                ScopeRow {
                    name: hand.name.to_owned(),
                    family: hand.family.to_owned(),
                    level: hand.level,
                    note: Some(hand.reason.to_owned()),
                },
                problems,
            );
        }
        // A hand family must be named after one of its modify scopes, or be a
        // single read scope of its own.
        for row in &table.rows {
            match table.get(&row.family) {
                Some(head) if head.family == row.family => {
                    if head.level != Level::Modify && head.name != row.name {
                        problems.push(format!(
                            "scope {}: its family {} is not a modify-level scope",
                            row.name, row.family
                        ));
                    }
                }
                _ => problems.push(format!(
                    "scope {}: its family {} is not a scope of that family",
                    row.name, row.family
                )),
            }
        }
        table
    }

    fn push(&mut self, row: ScopeRow, problems: &mut Vec<String>) {
        if self.by_name.contains_key(&row.name) {
            problems.push(format!("scope {} is listed twice", row.name));
            return;
        }
        self.by_name.insert(row.name.clone(), self.rows.len());
        self.rows.push(row);
    }

    pub fn get(&self, name: &str) -> Option<&ScopeRow> {
        self.by_name.get(name).map(|&i| &self.rows[i])
    }

    /// Whether `family` is the FAMILY of some scope.
    pub fn is_family(&self, family: &str) -> bool {
        self.get(family).is_some_and(|r| r.family == family)
    }

    /// Whether some scope of `family` is modify-level.
    pub fn family_has_modify(&self, family: &str) -> bool {
        self.rows
            .iter()
            .any(|r| r.family == family && r.level == Level::Modify)
    }

    /// The TSV scope with this UI name (case-insensitive) and level.
    pub fn by_ui_name(&self, ui_name: &str, level: Level) -> Vec<&ScopeRow> {
        self.ui_names
            .iter()
            .filter(|(ui, _)| ui.eq_ignore_ascii_case(ui_name))
            .map(|&(_, i)| &self.rows[i])
            .filter(|r| r.level == level)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decisions::DECISIONS;

    const TSV: &str = "scope\tpermission\tui_name\tresources\tsection\tsame_ui_name_scopes\n\
store_themes_manage\tmodify\tThemes\tThemes V3\tS\tstore_themes_read_only\n\
store_themes_read_only\tread-only\tThemes\tThemes V3\tS\tstore_themes_manage\n\
store_metafield_write\tstandard\tMetafields Access\tx\tS\tstore_metafield_write_all\n\
store_metafield_write_all\tfull\tMetafields Access\tx\tS\tstore_metafield_write\n\
account_users_read\tread-only\tAccount Users\tx\tA\taccount_users_write; account_users_delete\n\
account_users_write\twrite\tAccount Users\tx\tA\taccount_users_read; account_users_delete\n\
account_users_delete\tdelete\tAccount Users\tx\tA\taccount_users_read; account_users_write\n\
store_payments_methods_read\tread-only\tPayments - Get accepted methods\tx\tS\t\n\
default\t\t\tWebhooks\tprose\t\n";

    fn table() -> (ScopeTable, Vec<String>) {
        let mut problems = Vec::new();
        let mut used = vec![false; DECISIONS.tsv_levels.len()];
        let t = ScopeTable::build(TSV, &DECISIONS, &mut used, &mut problems);
        (t, problems)
    }

    fn family_level(t: &ScopeTable, name: &str) -> (String, Level) {
        let row = t.get(name).expect("scope in table");
        (row.family.clone(), row.level)
    }

    #[test]
    fn families_come_from_the_pairs_not_the_names() {
        let (t, problems) = table();
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(
            family_level(&t, "store_themes_read_only"),
            ("store_themes_manage".to_owned(), Level::Read)
        );
        assert_eq!(
            family_level(&t, "store_metafield_write_all"),
            ("store_metafield_write".to_owned(), Level::Modify)
        );
        assert_eq!(
            family_level(&t, "account_users_delete"),
            ("account_users_write".to_owned(), Level::Modify)
        );
        assert_eq!(
            family_level(&t, "account_users_read"),
            ("account_users_write".to_owned(), Level::Read)
        );
        assert_eq!(
            family_level(&t, "store_payments_methods_read"),
            ("store_payments_methods_read".to_owned(), Level::Read)
        );
        assert_eq!(
            family_level(&t, "default"),
            ("default".to_owned(), Level::Modify)
        );
        assert_eq!(
            family_level(&t, "bcgate:graphql_read"),
            ("bcgate:graphql_write".to_owned(), Level::Read)
        );
    }

    #[test]
    fn permission_words() {
        assert_eq!(permission_level("read-only"), Some(Level::Read));
        assert_eq!(permission_level("Read-only"), Some(Level::Read));
        assert_eq!(
            permission_level("read `transactions` and `payment_methods`"),
            Some(Level::Read)
        );
        assert_eq!(
            permission_level("read and modify `payment_methods`"),
            Some(Level::Modify)
        );
        assert_eq!(permission_level("create preview"), Some(Level::Modify));
        assert_eq!(permission_level("Manage"), Some(Level::Modify));
        assert_eq!(permission_level("sometimes"), None);
    }
}
