//! HTTP: routing, extractors, middleware, JSON envelopes. Knows nothing about SQL.

pub mod api;
pub mod assets;
pub mod cookies;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod pages;
pub mod routes;
pub mod server;
