//! `[[accounts]]`: account-level API tokens, each for one account uuid.

use std::sync::Arc;

use super::validate::Validator;
use super::{Account, AccountFile, Accounts, ConfigError};

impl Validator<'_> {
    pub(super) fn accounts(&self, files: &[AccountFile]) -> Result<Accounts, ConfigError> {
        let mut accounts = Accounts::default();
        for (i, a) in files.iter().enumerate() {
            let key = |k: &str| format!("accounts[{i}].{k}");
            if !is_account_uuid(&a.uuid) {
                return Err(self.err(
                    key("uuid"),
                    format!(
                        "{:?} is not a uuid in lowercase (8-4-4-4-12 hex digits, as in /accounts/{{uuid}}/graphql)",
                        a.uuid
                    ),
                ));
            }
            let (token, token_source, token_file) =
                self.token_of(&key, &a.token_env, &a.token_file, &a.token)?;
            let account = Arc::new(Account {
                uuid: a.uuid.clone(),
                token,
                token_source,
                token_file,
            });
            if accounts
                .by_uuid
                .insert(a.uuid.clone(), account.clone())
                .is_some()
            {
                return Err(self.err(
                    key("uuid"),
                    format!("account {:?} is configured twice", a.uuid),
                ));
            }
            accounts.list.push(account);
        }
        Ok(accounts)
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lowercase hex: one spelling
/// per account, so a path and a client's `accounts` entry compare exactly.
pub(super) fn is_account_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}
