//! Signing in: the one completion every method goes through, and the account-takeover paths
//! it closes.

pub mod completion;
mod takeover;
