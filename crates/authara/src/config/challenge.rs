//! Email verification challenges at signup: lifetimes, attempts and resends.

use std::time::Duration;

use super::declare_vars;
use super::reader::Reader;

declare_vars! {
    /// Verify emails with a code at signup.
    ENABLED = contract("AUTHARA_CHALLENGE_ENABLED", "false");
    /// Challenge lifetime.
    TTL = contract("AUTHARA_CHALLENGE_TTL", "30m");
    /// Code lifetime; at most `AUTHARA_CHALLENGE_TTL`.
    VERIFICATION_CODE_TTL = contract("AUTHARA_CHALLENGE_VERIFICATION_CODE_TTL", "10m");
    /// Wrong codes allowed.
    MAX_ATTEMPTS = contract("AUTHARA_CHALLENGE_MAX_ATTEMPTS", "5");
    /// Resends allowed.
    MAX_RESENDS = contract("AUTHARA_CHALLENGE_MAX_RESENDS", "3");
    /// Minimum time between resends.
    MIN_RESEND_INTERVAL = contract("AUTHARA_CHALLENGE_MIN_RESEND_INTERVAL", "30s");
}

/// `AUTHARA_CHALLENGE_*`.
#[derive(Debug, Clone)]
pub struct ChallengeConfig {
    /// `AUTHARA_CHALLENGE_ENABLED`.
    pub enabled: bool,
    /// `AUTHARA_CHALLENGE_TTL`.
    pub ttl: Duration,
    /// `AUTHARA_CHALLENGE_VERIFICATION_CODE_TTL`.
    pub code_ttl: Duration,
    /// `AUTHARA_CHALLENGE_MAX_ATTEMPTS`.
    pub max_attempts: u32,
    /// `AUTHARA_CHALLENGE_MAX_RESENDS`.
    pub max_resends: u32,
    /// `AUTHARA_CHALLENGE_MIN_RESEND_INTERVAL`.
    pub min_resend_interval: Duration,
}

/// Reads this area.
pub(super) fn build(r: &mut Reader<'_>) -> ChallengeConfig {
    let challenge = ChallengeConfig {
        enabled: r.bool(&ENABLED),
        ttl: r.duration(&TTL),
        code_ttl: r.duration(&VERIFICATION_CODE_TTL),
        max_attempts: r.positive(&MAX_ATTEMPTS),
        max_resends: r.non_negative(&MAX_RESENDS),
        min_resend_interval: r.duration_non_negative(&MIN_RESEND_INTERVAL),
    };
    r.ensure(challenge.code_ttl <= challenge.ttl, &VERIFICATION_CODE_TTL, format!("must not exceed {}", TTL.name));
    challenge
}
