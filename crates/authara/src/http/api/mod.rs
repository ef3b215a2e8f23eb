//! JSON handlers, by contract area.

pub mod auth;
pub mod challenges;
pub mod health;
pub mod internal;
pub mod mfa;
pub mod oauth;
pub mod organizations;
pub mod passkeys;
pub mod sessions;
pub mod user;
