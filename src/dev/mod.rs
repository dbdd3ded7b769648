//! Everything `bcgate dev` runs besides bcgate itself: a CA made at run time
//! ([`ca`]) and a mock BigCommerce ([`mock`]). The integration tests use the
//! same two, so the mock lives in one place.

pub mod ca;
pub mod mock;
