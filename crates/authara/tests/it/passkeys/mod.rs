//! Passkeys through the real HTTP server, with a software authenticator that can also misbehave.

pub mod api;
pub mod authenticator;
mod pages;
