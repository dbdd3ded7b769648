//! bcgate's test kit: a mock BigCommerce ([`mock`]) over real TLS from a CA
//! made at run time ([`ca`]), and the current-customer JWT a storefront
//! would hand a signed-in customer ([`customer_jwt`]). `bcgate dev` and `bcgate mock` serve it to
//! users (behind bcgate's default `dev` feature); bcgate's integration tests
//! use it as their upstream. It does not depend on bcgate, so a release
//! build without the `dev` feature carries neither the mock nor rcgen.

#![forbid(unsafe_code)]

pub mod ca;
mod jwt;
pub mod mock;

pub use jwt::{customer_jwt, customer_jwt_claims, sign_hs256};
