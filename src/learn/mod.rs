//! Learn mode: a client in `mode = "learn"` has its requests
//! forwarded when only its own scopes would refuse them, and every request is
//! recorded (route template and the scopes that would grant it), so that
//! `bcgate recommend` can compute the least scopes the service needs.
//!
//! Only the client's scope decision changes. The store allowlist, canonical
//! paths, unknown and never-proxied routes, body rules and the store token's
//! known scopes refuse exactly as in enforce mode.

pub mod recommend;
mod record;
pub mod redis;
#[cfg(test)]
mod tests;

pub use record::{Learner, Observation, Observations, SHUTDOWN_FLUSH_LIMIT, load};

use crate::config::Client;
pub use crate::config::Mode;
use crate::error::{ProxyError, ScopeDenial};
use crate::policy::{Holder, Policy, Request};

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
    req: &Request<'_>,
    would_deny: Option<&ScopeDenial>,
) {
    if let Some(denial) = would_deny {
        tracing::info!(
            target: "bcgate::learn",
            client = client.name.as_str(),
            method = req.method.as_str(),
            route = &*req.route.template,
            required = denial.required.join("|").as_str(),
            "would deny in enforce mode (learn mode forwards it)"
        );
    }
    learner.record(policy, &client.name, req, would_deny);
}
