//! Use cases: plain Rust types in and out, all policy here, no HTTP types.

pub mod keys;
