//! JSON handlers, by contract area.

pub mod health;
