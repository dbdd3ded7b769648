//! bcgate's integration tests: one test binary, a module per area. Each test
//! starts its own mock BigCommerce (`bcgate-testkit`) and its own `bcgate`
//! process, so tests of every module run side by side in this one process;
//! the few that need the machine to themselves take [`support::exclusive`].
//!
//! Run one area with a filter: `cargo test --test it proxy::`.

mod support;

mod app;
mod cli;
mod customer;
#[cfg(feature = "dev")]
mod dev;
mod error_docs;
mod explain;
mod families;
mod faults;
mod first_run;
mod learn;
mod load;
mod mock_upstream;
mod node_sdk;
mod ops;
mod overload;
mod path_property;
mod proxy;
mod python_sdk;
mod quota;
mod redis;
mod reload;
mod sdk;
mod token_store_crash;
mod upstream_h1;
