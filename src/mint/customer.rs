//! The current-customer JWT a storefront hands a signed-in shopper
//! (`/customer/current.jwt?app_client_id=…`), verified with the store's app
//! client secret: who the customer is, when bcgate may act as them.

use base64::Engine;
use serde::Deserialize;

use crate::error::ProxyError;
use crate::secret::Secret;

/// Clock skew allowed on the token's `exp`.
pub const LEEWAY_SECS: u64 = 30;

/// The signed-in customer a verified current-customer JWT names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// `customer.id`, always positive.
    pub id: u64,
    /// `customer.email`, when the token has it.
    pub email: Option<String>,
    /// `customer.group_id` (a string in BigCommerce's tokens, a number in some).
    pub group_id: Option<String>,
    /// `store_hash`: the store whose storefront issued it.
    pub store_hash: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    customer: ClaimCustomer,
    #[serde(default)]
    store_hash: Option<String>,
}

#[derive(Deserialize)]
struct ClaimCustomer {
    id: serde_json::Value,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    group_id: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
}

fn refuse(reason: &str) -> ProxyError {
    ProxyError::InvalidCustomerToken(reason.to_owned())
}

/// Verifies a current-customer JWT for the app `client_id` whose client
/// secret is `secret`: HS256 only, signed with `secret`, `aud` = `client_id`,
/// `exp` present and not past, `customer.id` a positive integer. The error
/// says what failed, never the token. A caller acting for one store should
/// use [`verify_current_customer_for_store`], which also checks the store.
pub fn verify_current_customer(
    jwt: &str,
    client_id: &str,
    secret: &Secret,
) -> Result<Customer, ProxyError> {
    use jsonwebtoken::errors::ErrorKind;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    // The algorithm is read first so that `none` and every other algorithm
    // are refused as such, before any key is involved.
    let head = jwt.split('.').next().unwrap_or_default();
    let alg = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<JoseHeader>(&bytes).ok())
        .ok_or_else(|| refuse("malformed"))?
        .alg;
    if alg != "HS256" {
        return Err(refuse("not signed with HS256"));
    }
    if secret.expose_bytes().is_empty() {
        return Err(refuse("signed with another key"));
    }
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = LEEWAY_SECS;
    v.validate_exp = true;
    v.validate_nbf = false;
    v.set_audience(&[client_id]);
    v.set_required_spec_claims(&["exp", "aud"]);
    let data =
        jsonwebtoken::decode::<Claims>(jwt, &DecodingKey::from_secret(secret.expose_bytes()), &v)
            .map_err(|e| {
            refuse(match e.kind() {
                ErrorKind::ExpiredSignature => "expired",
                ErrorKind::InvalidSignature => "signed with another key",
                ErrorKind::InvalidAudience => "for another client id",
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    "not signed with HS256"
                }
                _ => "malformed",
            })
        })?;
    if data.header.alg != Algorithm::HS256 {
        return Err(refuse("not signed with HS256"));
    }
    let Claims {
        customer,
        store_hash,
    } = data.claims;
    let id = customer
        .id
        .as_u64()
        .filter(|id| *id > 0)
        .ok_or_else(|| refuse("malformed (customer.id is not a positive integer)"))?;
    let group_id = match customer.group_id {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    Ok(Customer {
        id,
        email: customer.email,
        group_id,
        store_hash,
    })
}

/// [`verify_current_customer`], and the token must not name another store
/// than `store_hash`: one app (one client id and secret) may be installed
/// in many stores, and a shopper of one must not act as the customer with
/// the same id in another.
pub fn verify_current_customer_for_store(
    jwt: &str,
    store_hash: &str,
    client_id: &str,
    secret: &Secret,
) -> Result<Customer, ProxyError> {
    let customer = verify_current_customer(jwt, client_id, secret)?;
    match customer.store_hash.as_deref() {
        Some(h) if !h.eq_ignore_ascii_case(store_hash) => Err(refuse("for another store")),
        _ => Ok(customer),
    }
}
