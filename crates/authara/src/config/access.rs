//! Who may call and sign up: the internal API token, the signup allowlist, admin audit retention.
//!
//! The internal API (`/auth/internal/v1`) reads the token, signup and session creation the
//! allowlist switch, the audit retention worker the retention.

use super::reader::Reader;
use super::server::APP_ENV;
use super::{SecretString, declare_vars};

declare_vars! {
    /// Bearer token of `/auth/internal/v1` (or `_FILE`); unset rejects every internal call; at least 32 characters in prod.
    INTERNAL_API_TOKEN = contract("AUTHARA_INTERNAL_API_TOKEN", "");
    /// Only allowlisted emails may sign up.
    ACCESS_POLICY_ALLOWLIST_ENABLED = contract("AUTHARA_ACCESS_POLICY_ALLOWLIST_ENABLED", "false");
    /// Delete admin audit events after this many days (greater than 0).
    ADMIN_AUDIT_RETENTION_DAYS = contract("AUTHARA_ADMIN_AUDIT_RETENTION_DAYS", "180");
}

/// This area's part of [`super::Config`] (its fields sit at the top level of `Config`).
pub(super) struct Access {
    pub(super) internal_api_token: Option<SecretString>,
    pub(super) allowlist_enabled: bool,
    pub(super) admin_audit_retention_days: u32,
}

/// Reads this area.
pub(super) fn build(r: &mut Reader<'_>, prod: bool) -> Access {
    let internal_api_token = r.secret(&INTERNAL_API_TOKEN);
    // why: the token is the whole of the internal API's authentication (it creates organizations
    // and invitations); a short one could be guessed, however the guesses are limited.
    if prod && internal_api_token.as_ref().is_some_and(|t| t.expose_secret().chars().count() < 32) {
        r.invalid(&INTERNAL_API_TOKEN, format!("must be at least 32 characters when {}=prod", APP_ENV.name));
    }
    Access {
        internal_api_token,
        allowlist_enabled: r.bool(&ACCESS_POLICY_ALLOWLIST_ENABLED),
        admin_audit_retention_days: r.positive(&ADMIN_AUDIT_RETENTION_DAYS),
    }
}
