//! The integration suite: one binary; `README.md` says where a behaviour's test goes.
// Integration tests always build with cfg(test); saying so lets clippy's allow-unwrap-in-tests
// and allow-expect-in-tests (clippy.toml) cover the harness and the test bodies that
// `on_both_engines!` calls, which are not `#[test]` functions themselves (rust-clippy#11119).
#![cfg(test)]

// The harness: the in-process server and its client, the real binary, the contract checker, and
// the local receivers the tests talk to.
mod app;
mod contract;
mod harness;
mod receiver;
mod smtp;

// One folder per area of the code, each with its API, page, store and race tests.
mod accounts;
mod admin;
mod csrf;
mod email;
mod forward_auth;
mod instances;
mod internal;
mod mfa;
pub mod oauth;
mod operations;
mod organizations;
pub mod passkeys;
mod sessions;
mod signin;
mod webhooks;

// What holds across every area.
mod cross_cutting;
