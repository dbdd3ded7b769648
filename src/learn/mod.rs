//! Learn mode: a client in `mode = "learn"` has its requests
//! forwarded when only its own scopes would refuse them, and every request is
//! recorded (API family, route template and the scopes that would grant it),
//! so that `bcgate recommend` can compute the least scopes the service needs.
//! A storefront request records the grant its credential needed (who it
//! acts as, and a private token's access scopes), not the route's.
//!
//! Only the client's scope decision changes. The store allowlist, canonical
//! paths, unknown and never-proxied routes, body rules and the store token's
//! known scopes refuse exactly as in enforce mode.

pub mod recommend;
mod record;
pub mod redis;
#[cfg(test)]
pub(crate) mod tests;

pub use record::{Learner, Observation, Observations, SHUTDOWN_FLUSH_LIMIT, load};

use crate::config::Client;
pub use crate::config::Mode;
use crate::error::{ProxyError, ScopeDenial};
use crate::family::{self, Family};
use crate::policy::{Holder, Policy, Request};

/// One forwarded request of a learn-mode client, as it is recorded.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub family: Family,
    pub req: Request<'a>,
    /// Storefront only: the grants its credential needed, instead of the
    /// route's (see `decide::Credential::storefront_grants`); 0 for the other families.
    pub storefront: u8,
}

/// Bit of [`Seen::storefront`] for `storefront:impersonate`; bits 0–2 are
/// [`family::STOREFRONT_SCOPES`] (`storefront:<Scope>`).
pub const IMPERSONATE_BIT: u8 = 1 << 3;

impl Seen<'_> {
    /// The route as a client sends it after `/stores/{store}` (or, for an
    /// account, the whole path with the uuid as a parameter).
    pub fn shown_route(&self) -> String {
        shown_route(self.family, &self.req.route.template)
    }
}

/// The storefront grants of [`Seen::storefront`] bits, as needs: each is
/// a clause of its own.
pub fn storefront_needs(bits: u8) -> Vec<Vec<String>> {
    let mut needs: Vec<Vec<String>> = family::STOREFRONT_SCOPES
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, s)| vec![format!("storefront:{s}")])
        .collect();
    if bits & IMPERSONATE_BIT != 0 {
        needs.push(vec![family::STOREFRONT_IMPERSONATE.to_owned()]);
    }
    needs
}

/// [`storefront_needs`] read back: the bits its single-scope clauses name.
pub fn storefront_bits(needs: &[Vec<String>]) -> u8 {
    let mut bits = 0;
    for clause in needs {
        let [name] = clause.as_slice() else { continue };
        if name == family::STOREFRONT_IMPERSONATE {
            bits |= IMPERSONATE_BIT;
        } else if let Some(i) = name
            .strip_prefix("storefront:")
            .and_then(|s| family::STOREFRONT_SCOPES.iter().position(|x| *x == s))
        {
            bits |= 1 << i;
        }
    }
    bits
}

/// A family by its label (`api`, `b2b`, …).
pub fn family_named(name: &str) -> Option<Family> {
    Family::ALL.into_iter().find(|f| f.as_str() == name)
}

/// A family's route template as a client sends it after `/stores/{store}`:
/// B2B Edition's under its prefix, an account's under `/accounts/{uuid}`.
pub fn shown_route(family: Family, template: &str) -> String {
    match family {
        Family::B2b => format!("{}{template}", family::B2B_PREFIX),
        Family::Account => format!("/accounts/{{uuid}}{template}"),
        Family::Api | Family::Payments | Family::Storefront | Family::Local => template.to_owned(),
    }
}

/// What the client's own scopes say about a request, in learn mode.
#[derive(Debug)]
pub enum Verdict {
    /// Enforce mode would forward it too.
    Granted,
    /// Enforce mode would answer 403 `scope_denied`; learn mode forwards it.
    WouldDeny(Box<ScopeDenial>),
}

/// The learn-mode decision without recording: the client's scope denial
/// becomes [`Verdict::WouldDeny`]; every other refusal (never-proxied
/// route, the store token lacking the scope) is returned as the error
/// enforce mode returns.
pub fn decide_learn(
    policy: &Policy,
    client: Holder<'_>,
    store: Option<Holder<'_>>,
    req: &Request<'_>,
) -> Result<Verdict, ProxyError> {
    let verdict = match policy.check_scopes(client, req) {
        Ok(()) => Verdict::Granted,
        Err(ProxyError::ScopeDenied(denial)) => Verdict::WouldDeny(denial),
        Err(e) => return Err(e),
    };
    if let Some(store) = store {
        // The store's token cannot do it anyway: forwarding would only spend
        // the store's rate limit on a certain 403.
        policy.check_scopes(store, req)?;
    }
    Ok(verdict)
}

/// What the proxy does with a forwarded request of a learn-mode client (the
/// decision itself is [`crate::decide`]'s): record it, and log a would-deny.
pub fn observe(
    policy: &Policy,
    learner: &Learner,
    client: &Client,
    seen: &Seen<'_>,
    would_deny: Option<&ScopeDenial>,
) {
    if let Some(denial) = would_deny {
        tracing::info!(
            target: "bcgate::learn",
            client = client.name.as_str(),
            family = seen.family.as_str(),
            method = seen.req.method.as_str(),
            route = seen.shown_route().as_str(),
            required = denial.required.join("|").as_str(),
            "would deny in enforce mode (learn mode forwards it)"
        );
    }
    learner.record(policy, &client.name, seen, would_deny);
}
