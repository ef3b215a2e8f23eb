//! Sessions and refresh tokens: lifetimes, rotation and the concurrent-refresh grace.

use std::time::Duration;

use super::jwt::ACCESS_TOKEN_TTL_MINUTES;
use super::reader::Reader;
use super::{declare_vars, duration};

declare_vars! {
    /// Absolute session lifetime in days.
    SESSION_TTL_DAYS = contract("AUTHARA_SESSION_TTL_DAYS", "60");
    /// Refresh token lifetime in days; at most `AUTHARA_SESSION_TTL_DAYS`.
    REFRESH_TOKEN_TTL_DAYS = contract("AUTHARA_REFRESH_TOKEN_TTL_DAYS", "14");
    /// `off` (also `disabled`, `0`), `always` (also a negative duration) or a duration between rotations.
    REFRESH_TOKEN_ROTATION_INTERVAL = contract("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "24h");
    /// Two refreshes of one token inside this window are a race, not reuse.
    REFRESH_TOKEN_REUSE_GRACE = extra("AUTHARA_REFRESH_TOKEN_REUSE_GRACE", "10s");
    /// A session is privileged this long after its login: changing the password or email and
    /// deleting the account need a login this recent or the current password.
    PRIVILEGED_SESSION_MAX_AGE = extra("AUTHARA_PRIVILEGED_SESSION_MAX_AGE", "15m");
}

/// `AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationPolicy {
    /// A refresh token is used until it expires.
    Never,
    /// Every refresh issues a new refresh token.
    Always,
    /// A refresh token older than this is replaced at its next use.
    Every(Duration),
}

/// Session and refresh token settings.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// `AUTHARA_SESSION_TTL_DAYS`.
    pub session_ttl: Duration,
    /// `AUTHARA_REFRESH_TOKEN_TTL_DAYS`.
    pub refresh_ttl: Duration,
    /// `AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL`.
    pub rotation: RotationPolicy,
    /// `AUTHARA_REFRESH_TOKEN_REUSE_GRACE`: concurrent refreshes inside it are not reuse.
    pub reuse_grace: Duration,
    /// `AUTHARA_PRIVILEGED_SESSION_MAX_AGE`.
    pub privileged_max_age: Duration,
}

/// Reads this area; access tokens must live shorter than refresh tokens.
pub(super) fn build(r: &mut Reader<'_>, access_ttl: Duration) -> SessionConfig {
    let session_days = r.positive(&SESSION_TTL_DAYS);
    let refresh_days = r.positive(&REFRESH_TOKEN_TTL_DAYS);
    r.ensure(
        refresh_days <= session_days,
        &REFRESH_TOKEN_TTL_DAYS,
        format!("must not exceed {}", SESSION_TTL_DAYS.name),
    );
    let refresh_ttl = Duration::from_secs(u64::from(refresh_days) * 86_400);
    r.ensure(access_ttl < refresh_ttl, &ACCESS_TOKEN_TTL_MINUTES, "must be shorter than the refresh token lifetime");
    let rotation_raw = r.string(&REFRESH_TOKEN_ROTATION_INTERVAL);
    let rotation = match rotation_raw.to_ascii_lowercase().as_str() {
        "0" | "disabled" | "off" => RotationPolicy::Never,
        "always" => RotationPolicy::Always,
        other => match duration::parse(other) {
            Ok(d) if d.negative => RotationPolicy::Always,
            Ok(d) => RotationPolicy::Every(d.magnitude),
            Err(e) => {
                r.invalid(&REFRESH_TOKEN_ROTATION_INTERVAL, format!("expected off, always or a duration: {e}"));
                RotationPolicy::Always
            }
        },
    };
    SessionConfig {
        session_ttl: Duration::from_secs(u64::from(session_days) * 86_400),
        refresh_ttl,
        rotation,
        reuse_grace: r.duration_non_negative(&REFRESH_TOKEN_REUSE_GRACE),
        privileged_max_age: r.duration_non_negative(&PRIVILEGED_SESSION_MAX_AGE),
    }
}
