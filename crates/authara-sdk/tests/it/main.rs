//! The SDK against the real `authara` binary (SQLite in a temporary directory, a free port per
//! test): verification with HS256 and EdDSA, the axum and actix-web integrations, webhooks,
//! the internal API client, and the example application.
// Integration tests always build with cfg(test); saying so lets clippy's allow-unwrap-in-tests
// and allow-expect-in-tests (clippy.toml) cover the harness and the test bodies that
// `on_both_algorithms!` calls, which are not `#[test]` functions themselves (rust-clippy#11119).
#![cfg(test)]

mod actix_app;
mod axum_app;
mod client;
mod example;
mod harness;
mod verify;
mod webhooks;
