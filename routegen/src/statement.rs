//! Scope statements as the specs write them in markdown: tables with a
//! `Parameter` column, and bullet lists under "Requires at least one of the
//! following scopes" or "Required Scopes".

/// One scope reference, before it is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawRef {
    /// A scope name, with the permission its table row gives it (lists give none).
    Scope {
        name: String,
        permission: Option<String>,
    },
    /// A permission and UI name (`* \`Manage\` \`Storefront API Tokens\``).
    Ui { permission: String, ui_name: String },
}

/// Every row of every markdown table in `text` that has a `Parameter` column.
pub fn tables(text: &str) -> Vec<RawRef> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].starts_with('|') {
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && lines[i].starts_with('|') {
            i += 1;
        }
        let block = &lines[start..i];
        let Some((header, rest)) = block.split_first() else {
            continue;
        };
        let header = cells(header);
        let Some(param) = header
            .iter()
            .position(|c| c.eq_ignore_ascii_case("parameter"))
        else {
            continue;
        };
        let perm = header
            .iter()
            .position(|c| c.eq_ignore_ascii_case("permission"));
        for row in rest {
            let row = cells(row);
            if is_separator(&row) {
                continue;
            }
            let name = row.get(param).map(|c| unquote(c)).unwrap_or_default();
            if name.is_empty() {
                continue;
            }
            let permission = perm
                .and_then(|p| row.get(p))
                .map(|c| c.trim().to_owned())
                .filter(|p| !p.is_empty());
            out.push(RawRef::Scope {
                name: name.to_owned(),
                permission,
            });
        }
    }
    out
}

/// The bullets under "Requires at least one of the following scopes" or
/// "Required Scopes". A bullet that is neither one backticked scope name nor a
/// backticked permission and UI name is an error.
pub fn lists(text: &str) -> Result<Vec<RawRef>, String> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let lower = line.to_ascii_lowercase();
        if !(lower.contains("requires at least one of the following scopes")
            || lower.contains("required scopes"))
        {
            continue;
        }
        let mut seen = false;
        for bullet in &lines[i + 1..] {
            let item = bullet
                .strip_prefix("* ")
                .or_else(|| bullet.strip_prefix("- "));
            match item {
                Some(item) => {
                    seen = true;
                    let ticks = backticked(item);
                    match ticks.as_slice() {
                        [name] => out.push(RawRef::Scope {
                            name: (*name).to_owned(),
                            permission: None,
                        }),
                        [permission, ui_name] => out.push(RawRef::Ui {
                            permission: (*permission).to_owned(),
                            ui_name: (*ui_name).to_owned(),
                        }),
                        _ => return Err(format!("cannot read the scope bullet {bullet:?}")),
                    }
                }
                None if bullet.is_empty() && !seen => continue,
                None => break,
            }
        }
        if !seen {
            return Err(format!("no scope bullets follow {line:?}"));
        }
    }
    Ok(out)
}

fn cells(line: &str) -> Vec<&str> {
    let line = line.trim();
    let line = line.strip_prefix('|').unwrap_or(line);
    let line = line.strip_suffix('|').unwrap_or(line);
    line.split('|').map(str::trim).collect()
}

fn is_separator(row: &[&str]) -> bool {
    row.iter()
        .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':' | ' ')))
}

fn unquote(cell: &str) -> &str {
    cell.trim().trim_matches('`').trim()
}

fn backticked(text: &str) -> Vec<&str> {
    text.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.trim())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(name: &str, permission: Option<&str>) -> RawRef {
        RawRef::Scope {
            name: name.to_owned(),
            permission: permission.map(str::to_owned),
        }
    }

    #[test]
    fn reads_scope_tables_and_skips_other_tables() {
        let text = "### OAuth scopes\n\n| UI Name | Permission | Parameter |\n|:--|:--|:--|\n|  Products | modify | `store_v2_products` |\n| Store logs | read-only | store_logs_read_only |\n\n### Authentication header\n\n| Header | Argument | Description |\n|:--|:--|:--|\n| `X-Auth-Token` | `access_token` | see |\n";
        assert_eq!(
            tables(text),
            vec![
                scope("store_v2_products", Some("modify")),
                scope("store_logs_read_only", Some("read-only")),
            ]
        );
    }

    #[test]
    fn reads_indented_tables_with_trailing_space() {
        let text = "Updates.\n\n#### OAuth Scopes\n| UI Name   | Permission | Parameter    |\n|-----------|------------|--------------|     \n| Information & Settings   | modify     | `store_v2_information`   |";
        assert_eq!(
            tables(text),
            vec![scope("store_v2_information", Some("modify"))]
        );
    }

    #[test]
    fn reads_any_of_lists() {
        let text = "Capture.\nRequires at least one of the following scopes:\n* `store_v2_orders`\n* `store_v2_transactions`   \n\n**Notes:**\n* `not_a_scope`";
        assert_eq!(
            lists(text),
            Ok(vec![
                scope("store_v2_orders", None),
                scope("store_v2_transactions", None)
            ])
        );
    }

    #[test]
    fn reads_required_scopes_by_ui_name() {
        let text = "Creates.\n\n**Required Scopes**\n* `Manage` `Storefront API Tokens`\n\n> NOTE";
        assert_eq!(
            lists(text),
            Ok(vec![RawRef::Ui {
                permission: "Manage".to_owned(),
                ui_name: "Storefront API Tokens".to_owned()
            }])
        );
    }

    #[test]
    fn an_unreadable_bullet_is_an_error() {
        assert!(lists("Required Scopes\n* Manage the tokens").is_err());
        assert!(lists("Required Scopes\n\nsome prose").is_err());
    }
}
