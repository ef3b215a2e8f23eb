//! Who is on the other end of a request, as services record it.

use std::net::IpAddr;

/// The client of a request: its address (the trusted one, see `http::extract::Client`) and its
/// user agent, as sessions and audit rows keep them.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: String,
    /// The browser's "remember this browser" cookie (`authara_mfa_remember`), as it came: a
    /// sign-in of the user it names may skip the second step here (`services::mfa`).
    pub remembered: Option<String>,
}
