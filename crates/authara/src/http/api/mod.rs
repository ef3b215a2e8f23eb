//! JSON handlers, by contract area.

pub mod auth;
pub mod health;
pub mod sessions;
pub mod user;
