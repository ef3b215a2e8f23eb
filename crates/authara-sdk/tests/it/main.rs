//! The SDK against the real `authara` binary (SQLite in a temporary directory, a free port per
//! test): verification with HS256 and EdDSA, the axum and actix-web integrations, webhooks,
//! the internal API client, and the example application.

mod harness;
mod verify;
mod axum_app;
mod actix_app;
mod webhooks;
mod client;
