//! The JSON API, through the real HTTP server, on both engines, every response checked
//! against the contract.

pub mod auth;
mod csrf;
mod internal;
pub mod internal_lifecycle;
mod keys;
pub mod organizations;
mod sessions;
mod user;
