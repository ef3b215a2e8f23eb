//! HTTP: routing, extractors, middleware, JSON envelopes. Knows nothing about SQL.

pub mod api;
pub mod error;
pub mod middleware;
pub mod routes;
pub mod server;
