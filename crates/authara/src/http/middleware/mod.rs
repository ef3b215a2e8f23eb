//! Middleware applied to every route.

pub mod request_id;
pub mod security_headers;
pub mod timeout;
