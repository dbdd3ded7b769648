//! A callback's `signed_payload_jwt`, verified strictly.

use serde::Deserialize;

use crate::token_store::is_store_hash;

/// Clock skew allowed on a signed payload's `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 60;

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    user: Option<ClaimUser>,
}

#[derive(Deserialize)]
struct ClaimUser {
    #[serde(default)]
    email: Option<String>,
}

/// Why a signed payload was refused (said on the 401 page; no secret in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtRefusal {
    Missing,
    Expired,
    NotYetValid,
    Signature,
    Algorithm,
    Audience,
    Issuer,
    Subject,
    Malformed,
}

impl JwtRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "no signed_payload_jwt was sent",
            Self::Expired => "the signed payload has expired",
            Self::NotYetValid => "the signed payload is not valid yet",
            Self::Signature => "the signature does not verify with the app's client secret",
            Self::Algorithm => "the signed payload is not HS256",
            Self::Audience => "the signed payload is for another app (aud)",
            Self::Issuer => "the signed payload was not issued by BigCommerce (iss)",
            Self::Subject => "the signed payload does not name a store (sub)",
            Self::Malformed => "the signed payload is malformed or lacks a required claim",
        }
    }
}

/// The store hash a BigCommerce `signed_payload_jwt` is for, and who sent
/// it, after strict verification.
pub fn verify_signed_payload(
    jwt: &str,
    client_id: &str,
    secret: &str,
) -> Result<(String, Option<String>), JwtRefusal> {
    use jsonwebtoken::errors::ErrorKind;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = LEEWAY_SECS;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.set_audience(&[client_id]);
    v.set_issuer(&["bc"]);
    v.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
    let data =
        jsonwebtoken::decode::<Claims>(jwt, &DecodingKey::from_secret(secret.as_bytes()), &v)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => JwtRefusal::Expired,
                ErrorKind::ImmatureSignature => JwtRefusal::NotYetValid,
                ErrorKind::InvalidSignature => JwtRefusal::Signature,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    JwtRefusal::Algorithm
                }
                ErrorKind::InvalidAudience => JwtRefusal::Audience,
                ErrorKind::InvalidIssuer => JwtRefusal::Issuer,
                ErrorKind::InvalidSubject => JwtRefusal::Subject,
                _ => JwtRefusal::Malformed,
            })?;
    // The header must say HS256 exactly (the library checks it against
    // the one allowed algorithm; this restates the rule where it is read).
    if data.header.alg != Algorithm::HS256 {
        return Err(JwtRefusal::Algorithm);
    }
    let hash = data
        .claims
        .sub
        .strip_prefix("stores/")
        .filter(|h| is_store_hash(h))
        .ok_or(JwtRefusal::Subject)?;
    Ok((hash.to_owned(), data.claims.user.and_then(|u| u.email)))
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::*;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    const SECRET: &str = "s3cret";
    const ID: &str = "client-1";

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn jwt(alg: Algorithm, secret: &str, claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("encode")
    }

    fn claims(sub: &str, aud: &str, iss: &str, nbf: u64, exp: u64) -> serde_json::Value {
        serde_json::json!({"sub": sub, "aud": aud, "iss": iss, "nbf": nbf, "iat": nbf, "exp": exp,
                           "user": {"id": 1, "email": "a@example.com"}})
    }

    #[test]
    fn signed_payloads_verify_strictly() {
        let n = now();
        let ok = jwt(
            Algorithm::HS256,
            SECRET,
            claims("stores/abc1", ID, "bc", n, n + 60),
        );
        assert_eq!(
            verify_signed_payload(&ok, ID, SECRET),
            Ok(("abc1".into(), Some("a@example.com".into())))
        );
        let cases = [
            (
                jwt(
                    Algorithm::HS256,
                    "other",
                    claims("stores/abc1", ID, "bc", n, n + 60),
                ),
                JwtRefusal::Signature,
            ),
            (
                jwt(
                    Algorithm::HS256,
                    SECRET,
                    claims("stores/abc1", ID, "bc", n - 600, n - 120),
                ),
                JwtRefusal::Expired,
            ),
            (
                jwt(
                    Algorithm::HS256,
                    SECRET,
                    claims("stores/abc1", ID, "bc", n + 600, n + 900),
                ),
                JwtRefusal::NotYetValid,
            ),
            (
                jwt(
                    Algorithm::HS256,
                    SECRET,
                    claims("stores/abc1", "x", "bc", n, n + 60),
                ),
                JwtRefusal::Audience,
            ),
            (
                jwt(
                    Algorithm::HS256,
                    SECRET,
                    claims("stores/abc1", ID, "x", n, n + 60),
                ),
                JwtRefusal::Issuer,
            ),
            (
                jwt(
                    Algorithm::HS256,
                    SECRET,
                    claims("abc1", ID, "bc", n, n + 60),
                ),
                JwtRefusal::Subject,
            ),
            (
                jwt(
                    Algorithm::HS256,
                    SECRET,
                    claims("stores/ABC", ID, "bc", n, n + 60),
                ),
                JwtRefusal::Subject,
            ),
            (
                jwt(
                    Algorithm::HS512,
                    SECRET,
                    claims("stores/abc1", ID, "bc", n, n + 60),
                ),
                JwtRefusal::Algorithm,
            ),
        ];
        for (token, want) in cases {
            assert_eq!(verify_signed_payload(&token, ID, SECRET), Err(want));
        }
        use base64::Engine;
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let none = format!(
            "{}.{}.",
            b64(br#"{"alg":"none","typ":"JWT"}"#),
            b64(claims("stores/abc1", ID, "bc", n, n + 60)
                .to_string()
                .as_bytes())
        );
        assert!(verify_signed_payload(&none, ID, SECRET).is_err());
        // A payload without nbf is refused (BigCommerce always sends one).
        let no_nbf = jwt(
            Algorithm::HS256,
            SECRET,
            serde_json::json!({"sub": "stores/abc1", "aud": ID, "iss": "bc", "exp": n + 60}),
        );
        assert_eq!(
            verify_signed_payload(&no_nbf, ID, SECRET),
            Err(JwtRefusal::Malformed)
        );
    }
}
