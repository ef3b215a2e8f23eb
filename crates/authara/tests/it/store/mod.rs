//! The store's invariants, on both engines, below the services: what a caller of the store may
//! rely on whatever runs above it.

mod refresh;
mod users;
