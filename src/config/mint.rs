//! `[mint]`: how long the storefront tokens bcgate mints live, and when a
//! cached one is renewed.

use std::time::Duration;

use super::validate::Validator;
use super::{ConfigError, MintConfig, MintFile};

/// The shortest lifetime asked: a token must outlive a request or two.
const MIN_LIFETIME_S: u64 = 60;
/// The longest: a year, so `now + lifetime` is a sane timestamp and a
/// leaked token does not outlive every rotation.
const MAX_LIFETIME_S: u64 = 365 * 86_400;

impl Validator<'_> {
    pub(super) fn mint(&self, m: &MintFile) -> Result<MintConfig, ConfigError> {
        if !(MIN_LIFETIME_S..=MAX_LIFETIME_S).contains(&m.token_lifetime_s) {
            return Err(self.err(
                "mint.token_lifetime_s",
                format!("must be from {MIN_LIFETIME_S} to {MAX_LIFETIME_S} (a year)"),
            ));
        }
        if m.renew_before_s >= m.token_lifetime_s {
            return Err(self.err(
                "mint.renew_before_s",
                "must be less than mint.token_lifetime_s (else every token is renewed at once)",
            ));
        }
        Ok(MintConfig {
            token_lifetime: Duration::from_secs(m.token_lifetime_s),
            renew_before: Duration::from_secs(m.renew_before_s),
        })
    }
}
