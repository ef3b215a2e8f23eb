//! Forward-auth (`/auth/verify`, docs/forward-auth.md): the answers through the real HTTP server
//! on both engines (`verify.rs`), and the three real proxies in front of the real binary and an
//! app with no login code of its own (`proxies.rs`, with the configs of the doc).

pub(crate) mod proxies;
mod verify;
