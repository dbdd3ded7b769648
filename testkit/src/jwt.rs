//! The current-customer JWT a storefront hands a signed-in customer
//! (`/customer/current.jwt?app_client_id=…`): HS256 with the app's client
//! secret, `aud` the client id. Tests make one to present to bcgate as
//! `X-Bcgate-Customer-Token`.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

/// A current-customer JWT for customer `customer_id`, valid `ttl_s` seconds
/// from now (negative: already expired), as BigCommerce signs it for the app
/// with `client_id` and `client_secret`. Its `sub` and `store_hash` are
/// `"mock"` (the secret already names the store); alter them through
/// [`customer_jwt_claims`] if a test needs them.
pub fn customer_jwt(client_id: &str, client_secret: &str, customer_id: u64, ttl_s: i64) -> String {
    sign_hs256(
        &customer_jwt_claims(client_id, customer_id, ttl_s),
        client_secret,
    )
}

/// The claims of [`customer_jwt`], for a test that alters one before signing
/// it with [`sign_hs256`] (a customer id as a string, a missing `aud`, …).
pub fn customer_jwt_claims(client_id: &str, customer_id: u64, ttl_s: i64) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    json!({
        "customer": {
            "id": customer_id,
            "email": format!("customer{customer_id}@example.com"),
            "group_id": "0",
        },
        "iss": "bc/apps",
        "sub": "mock",
        "iat": now,
        "exp": now + ttl_s,
        "version": 1,
        "aud": client_id,
        "application_id": client_id,
        "store_hash": "mock",
        "operation": "current_customer",
    })
}

/// `claims` as an HS256 JWT signed with `secret`.
pub fn sign_hs256(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signing of JSON claims cannot fail")
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::errors::ErrorKind;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};

    use super::*;

    fn verify(jwt: &str, secret: &str, aud: &str) -> Result<Value, ErrorKind> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&[aud]);
        v.leeway = 0;
        jsonwebtoken::decode::<Value>(jwt, &DecodingKey::from_secret(secret.as_bytes()), &v)
            .map(|d| d.claims)
            .map_err(|e| e.into_kind())
    }

    #[test]
    fn carries_the_documented_claims_and_verifies_only_with_its_secret_and_audience() {
        let jwt = customer_jwt("client-1", "s3cret", 4927, 900);
        let header = jsonwebtoken::decode_header(&jwt).expect("header");
        assert_eq!(header.alg, Algorithm::HS256);
        let claims = verify(&jwt, "s3cret", "client-1").expect("valid");
        assert_eq!(claims["customer"]["id"], 4927);
        assert!(claims["customer"]["email"].is_string());
        assert!(claims["customer"]["group_id"].is_string());
        assert_eq!(claims["iss"], "bc/apps");
        assert_eq!(claims["aud"], "client-1");
        assert_eq!(claims["operation"], "current_customer");
        let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
        assert_eq!(exp.zip(iat).map(|(e, i)| e - i), Some(900));

        assert_eq!(
            verify(&jwt, "other", "client-1"),
            Err(ErrorKind::InvalidSignature)
        );
        assert_eq!(
            verify(&jwt, "s3cret", "client-2"),
            Err(ErrorKind::InvalidAudience)
        );
        let expired = customer_jwt("client-1", "s3cret", 4927, -5);
        assert_eq!(
            verify(&expired, "s3cret", "client-1"),
            Err(ErrorKind::ExpiredSignature)
        );
    }

    #[test]
    fn altered_claims_are_signed_as_given() {
        let mut claims = customer_jwt_claims("client-1", 7, 60);
        claims["customer"]["id"] = json!("7");
        let jwt = sign_hs256(&claims, "s3cret");
        let back = verify(&jwt, "s3cret", "client-1").expect("valid signature");
        assert_eq!(back["customer"]["id"], "7");
    }
}
