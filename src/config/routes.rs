//! `[[routes]]`: the operator's routes.

use std::sync::Arc;

use http::Method;

use super::validate::{Validator, unknown_scope};
use super::{ConfigError, RouteFile};
use crate::policy::{Level, Origin, Policy, Route, RouteFlags, table};

impl Validator<'_> {
    /// An operator route grants exactly what its named scope's level grants:
    /// a read-level scope makes any method a read; a modify-level scope on a
    /// GET requires the modify level.
    pub(super) fn route(
        &self,
        policy: &Policy,
        i: usize,
        r: &RouteFile,
    ) -> Result<Route, ConfigError> {
        let method = Method::from_bytes(r.method.as_bytes())
            .ok()
            .filter(|m| {
                [
                    Method::GET,
                    Method::POST,
                    Method::PUT,
                    Method::PATCH,
                    Method::DELETE,
                ]
                .contains(m)
            })
            .ok_or_else(|| {
                self.err(
                    format!("routes[{i}].method"),
                    "must be GET, POST, PUT, PATCH or DELETE",
                )
            })?;
        table::split_template(&r.path).map_err(|e| self.err(format!("routes[{i}].path"), e))?;
        let scope = policy.scopes.get(&r.scope).ok_or_else(|| {
            self.err(
                format!("routes[{i}].scope"),
                unknown_scope(policy, &r.scope),
            )
        })?;
        let family = policy.scopes.family_name(scope.family).to_string();
        let families = table::families_of(&policy.scopes, std::slice::from_ref(&family))
            .map_err(|e| self.err(format!("routes[{i}].scope"), e))?;
        let reads = method == Method::GET;
        let flags = RouteFlags {
            read: scope.level == Level::Read && !reads,
            modify: scope.level == Level::Modify && reads,
            ..RouteFlags::default()
        };
        Ok(Route {
            method,
            template: Arc::from(r.path.as_str()),
            families,
            family_names: vec![family],
            flags,
            origin: Origin::Operator,
            note: Some(format!("operator route, scope {}", r.scope)),
        })
    }
}
