//! Accounts: signup and login (API and pages), the signed-in user, the one-time codes (verified
//! signup, password reset, email change), password hashing, lockout, re-authentication for
//! sensitive changes, and the users table's own guarantees.

pub mod api;
mod codes;
mod email_change;
mod hashing;
mod lockout;
mod pages;
mod reauth;
pub mod store;
mod user;
