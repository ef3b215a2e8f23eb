//! Checks that hold across every area: every answer matches the contract, the module graph keeps
//! its layers, no answer tells whether an account exists, and every limiter answers 429 with
//! `Retry-After`.

mod contract;
mod enumeration;
mod layers;
mod limits;
