//! Regressions of the security review: each test failed before its fix.

mod connections;
mod email_change;
mod hashing;
mod lockout;
mod reauth;
mod refresh;
mod sessions;
