//! OAuth sign-in providers.
//!
//! Parsed and validated now; the OAuth sign-in flow (not built yet) reads the Google client id.

use super::declare_vars;
use super::reader::Reader;

declare_vars! {
    /// Comma-separated OAuth providers; `google` is the only one.
    PROVIDERS = contract("AUTHARA_OAUTH_PROVIDERS", "");
    /// Google OAuth client id (required when `AUTHARA_OAUTH_PROVIDERS` contains `google`).
    GOOGLE_CLIENT_ID = contract("AUTHARA_OAUTH_GOOGLE_CLIENT_ID", "");
}

/// The providers `AUTHARA_OAUTH_PROVIDERS` accepts.
const KNOWN_PROVIDERS: &[&str] = &["google"];

/// Reads this area: the Google client id when Google is enabled.
pub(super) fn build(r: &mut Reader<'_>) -> Option<String> {
    let providers = r.csv(&PROVIDERS, KNOWN_PROVIDERS);
    if providers.iter().any(|p| p == "google") {
        Some(r.required(&GOOGLE_CLIENT_ID, &format!(" when {} contains google", PROVIDERS.name)))
    } else {
        None
    }
}
