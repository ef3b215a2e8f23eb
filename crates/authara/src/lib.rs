//! authara: a self-hosted authentication server.

pub mod app;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod services;
pub mod store;
pub mod telemetry;
pub mod worker;

/// This build's version, reported by `/auth/version` and `/auth/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
