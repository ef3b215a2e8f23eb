//! Middleware applied to every route.

pub mod edge;
