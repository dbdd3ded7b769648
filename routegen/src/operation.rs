//! One management operation of a spec file → its route: the scope table or
//! prose that grants it, the decisions that change it, its flags.

use super::*;

impl Deriver<'_> {
    /// The route of one management operation.
    pub(super) fn operation(
        &mut self,
        file: &str,
        method: &str,
        path: &str,
        op: &Value,
        top_security: Option<&Value>,
        file_table: &[Entry],
    ) -> Option<Route> {
        let mut notes: Vec<String> = Vec::new();
        let where_ = format!("{file}: {method} {path}");

        // Security requirements.
        let security = op.get("security").or(top_security);
        let security_override = self
            .decisions
            .security_overrides
            .iter()
            .position(|s| s.file == file && s.method == method && s.path == path);
        match security.and_then(Value::as_sequence) {
            Some(reqs) if reqs.is_empty() => match security_override {
                Some(i) => {
                    self.used.security[i] = true;
                    notes.push(self.decisions.security_overrides[i].reason.to_owned());
                }
                None => {
                    self.problems.push(format!(
                        "{where_}: declares security: []; decide in decisions.rs security_overrides"
                    ));
                    return None;
                }
            },
            Some(reqs) if reqs.iter().all(|r| r.get("X-Auth-Token").is_some()) => {}
            _ => {
                self.problems.push(format!(
                    "{where_}: security is not X-Auth-Token: {security:?}"
                ));
                return None;
            }
        }

        // The operation's own statement.
        let description = get_str(op, "description").unwrap_or("");
        let mut raw = statement::tables(description);
        match statement::lists(description) {
            Ok(list) => raw.extend(list),
            Err(e) => self.problems.push(format!("{where_}: {e}")),
        }
        let own = self.resolve(file, &format!("{method} {path}'s description"), &raw);

        // Matching rules: the most specific one with scopes, every one with flags.
        let matching: Vec<usize> = self
            .decisions
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| rule_matches(r, file, method, path))
            .map(|(i, _)| i)
            .collect();
        let scope_rule = matching
            .iter()
            .copied()
            .filter(|&i| self.decisions.rules[i].scopes.is_some())
            .max_by_key(|&i| specificity(&self.decisions.rules[i]));

        let mut flags = BTreeSet::new();
        let (families, source): (BTreeSet<String>, Vec<Entry>) = if !own.is_empty() {
            (own.iter().map(|e| e.family.clone()).collect(), own)
        } else if !raw.is_empty() {
            // Every reference was an ignored alias or an error already reported.
            self.problems.push(format!(
                "{where_}: its own scope statement names no usable scope"
            ));
            return None;
        } else if let Some(i) = scope_rule {
            let rule = &self.decisions.rules[i];
            self.used.rules[i] = true;
            notes.push(rule.reason.to_owned());
            let families: BTreeSet<String> = rule
                .scopes
                .unwrap_or(&[])
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
            let from_table = file_table
                .iter()
                .filter(|e| families.contains(&e.family))
                .cloned()
                .collect();
            (families, from_table)
        } else {
            if description.to_ascii_lowercase().contains("scope") {
                self.problems.push(format!(
                    "{where_}: its description talks about scopes but states none routegen can read; decide with a rule in decisions.rs"
                ));
                return None;
            }
            let families: BTreeSet<String> = file_table.iter().map(|e| e.family.clone()).collect();
            if families.len() > 1 {
                self.problems.push(format!(
                    "{where_}: the file's table lists several families {families:?}; decide which with a rule in decisions.rs"
                ));
                return None;
            }
            if families.is_empty() {
                self.problems.push(format!(
                    "{where_}: no scope stated by the operation, a rule or the file's table"
                ));
                return None;
            }
            (families, file_table.to_vec())
        };
        // A prose statement must be decided by a rule naming exactly this path.
        if source_is_prose(description, &raw)
            && scope_rule.is_none_or(|i| self.decisions.rules[i].path != path)
        {
            self.problems.push(format!(
                "{where_}: states its scope in prose; decide with a rule for exactly this path"
            ));
        }

        for &i in &matching {
            let rule = &self.decisions.rules[i];
            if rule.flags.is_empty() {
                continue;
            }
            self.used.rules[i] = true;
            flags.extend(rule.flags.iter().copied());
            push_unique(&mut notes, rule.reason);
        }
        for e in &source {
            if let Some(n) = e.alias_note {
                push_unique(&mut notes, n);
            }
        }

        // A non-GET whose statement grants only read-level scopes is a read, or a spec error.
        if method != "GET"
            && !flags.contains(&Flag::Read)
            && !source.is_empty()
            && source.iter().all(|e| e.level == Level::Read)
        {
            self.problems.push(format!(
                "{where_}: only read-level scopes are stated for a {method}; flag it read (or decide otherwise) in decisions.rs"
            ));
        }

        Some(Route {
            method: method.to_owned(),
            path: path.to_owned(),
            scopes: families,
            flags,
            notes,
            file: Some(file.to_owned()),
        })
    }
}

/// A description that mentions scopes without a table or list routegen reads.
fn source_is_prose(description: &str, raw: &[RawRef]) -> bool {
    raw.is_empty() && description.to_ascii_lowercase().contains("scope")
}

fn rule_matches(rule: &Rule, file: &str, method: &str, path: &str) -> bool {
    rule.file == file
        && rule.method.is_none_or(|m| m == method)
        && (path == rule.path
            || path
                .strip_prefix(rule.path)
                .is_some_and(|rest| rest.starts_with('/')))
}

fn specificity(rule: &Rule) -> (usize, bool) {
    (rule.path.split('/').count(), rule.method.is_some())
}

/// Every segment must be fully literal or fully `{name}`.
pub(super) fn check_path(path: &str) -> Result<(), String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err("does not start with /".to_owned());
    };
    for seg in rest.split('/') {
        if seg.is_empty() {
            return Err("has an empty segment".to_owned());
        }
        let param = seg
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .is_some_and(|n| {
                !n.is_empty()
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
        let literal = seg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !param && !literal {
            return Err(format!(
                "segment {seg:?} is neither literal nor a whole {{name}}"
            ));
        }
    }
    Ok(())
}

/// Every operation of a spec's `paths` below `prefix`: (path, METHOD,
/// operation). A path or key routegen cannot read is a problem pushed to
/// `problems`, and skipped.
pub(crate) fn operations<'a>(
    name: &str,
    prefix: &str,
    paths: &'a serde_norway::Mapping,
    problems: &mut Vec<String>,
) -> Vec<(String, String, &'a serde_norway::Value)> {
    let mut out = Vec::new();
    for (spec_path, item) in paths {
        let Some(spec_path) = spec_path.as_str() else {
            problems.push(format!("{name}: a path key is not a string"));
            continue;
        };
        let path = format!("{prefix}{spec_path}");
        if let Err(e) = check_path(&path) {
            problems.push(format!("{name}: path {path}: {e}"));
            continue;
        }
        let Some(item) = item.as_mapping() else {
            problems.push(format!("{name}: path {path} is not a mapping"));
            continue;
        };
        for (key, op) in item {
            let key = key.as_str().unwrap_or("");
            if matches!(key, "parameters" | "summary" | "description") {
                continue;
            }
            if !crate::METHODS.contains(&key) {
                problems.push(format!(
                    "{name}: path {path} has {key:?}, which routegen does not handle"
                ));
                continue;
            }
            out.push((path.clone(), key.to_ascii_uppercase(), op));
        }
    }
    out
}

/// A spec file read as an OpenAPI 3 document, or `None` with a problem
/// pushed; `skip_list` names where in decisions.rs a file that is not one
/// would be listed.
pub(crate) fn openapi3(
    name: &str,
    text: &str,
    skip_list: &str,
    problems: &mut Vec<String>,
) -> Option<serde_norway::Value> {
    let doc: serde_norway::Value = match serde_norway::from_str(text) {
        Ok(doc) => doc,
        Err(e) => {
            problems.push(format!("{name}: not YAML: {e}"));
            return None;
        }
    };
    if !crate::get_str(&doc, "openapi").is_some_and(|v| v.starts_with("3.")) {
        problems.push(format!(
            "{name}: not an OpenAPI 3 document; list it in decisions.rs {skip_list} if that is right"
        ));
        return None;
    }
    Some(doc)
}
