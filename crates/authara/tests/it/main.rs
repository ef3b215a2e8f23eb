//! The integration suite: one binary; `README.md` says where a behaviour's test goes.
// Integration tests always build with cfg(test); saying so lets clippy's allow-unwrap-in-tests
// and allow-expect-in-tests (clippy.toml) cover the harness and the test bodies that
// `on_both_engines!` calls, which are not `#[test]` functions themselves (rust-clippy#11119).
#![cfg(test)]

mod app;
mod contract;
mod deploy;
mod harness;
mod receiver;
mod smtp;

mod api;
mod claims;
mod email;
mod events;
mod forward_auth;
mod hardening;

mod health;
mod instances;
mod layers;
mod metrics;
mod mfa;
mod migrations;
pub mod oauth;
mod operations;
mod pages;
pub mod passkeys;
mod serve;
mod shutdown;
mod signin;
mod store;
mod webhooks;
