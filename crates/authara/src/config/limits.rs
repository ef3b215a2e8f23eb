//! Rate limits: a count per window for each guarded action, and the limiter's housekeeping.
//!
//! Every limit is read by the limiter (`cache/limiter.rs`); `passkey_login_ip` counts passkey
//! sign-in options and finishes in two separate windows.

use std::time::Duration;

use super::declare_vars;
use super::reader::Reader;

declare_vars! {
    /// Login attempts per IP per window.
    LOGIN_IP_LIMIT = contract("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "5");
    /// Login IP window.
    LOGIN_IP_WINDOW = contract("AUTHARA_RATE_LIMIT_LOGIN_IP_WINDOW", "1m");
    /// Login attempts per email per window.
    LOGIN_EMAIL_LIMIT = contract("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT", "10");
    /// Login email window.
    LOGIN_EMAIL_WINDOW = contract("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_WINDOW", "1h");
    /// Signups per IP per window.
    SIGNUP_IP_LIMIT = contract("AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT", "3");
    /// Signup IP window.
    SIGNUP_IP_WINDOW = contract("AUTHARA_RATE_LIMIT_SIGNUP_IP_WINDOW", "1h");
    /// Signups per email per window.
    SIGNUP_EMAIL_LIMIT = contract("AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_LIMIT", "3");
    /// Signup email window.
    SIGNUP_EMAIL_WINDOW = contract("AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_WINDOW", "24h");
    /// Password resets per IP per window.
    PASSWORD_RESET_IP_LIMIT = contract("AUTHARA_RATE_LIMIT_PASSWORD_RESET_IP_LIMIT", "5");
    /// Password reset IP window.
    PASSWORD_RESET_IP_WINDOW = contract("AUTHARA_RATE_LIMIT_PASSWORD_RESET_IP_WINDOW", "1h");
    /// Password resets per email per window.
    PASSWORD_RESET_EMAIL_LIMIT = contract("AUTHARA_RATE_LIMIT_PASSWORD_RESET_EMAIL_LIMIT", "3");
    /// Password reset email window.
    PASSWORD_RESET_EMAIL_WINDOW = contract("AUTHARA_RATE_LIMIT_PASSWORD_RESET_EMAIL_WINDOW", "24h");
    /// Passkey logins per IP per window.
    PASSKEY_LOGIN_IP_LIMIT = contract("AUTHARA_RATE_LIMIT_PASSKEY_LOGIN_IP_LIMIT", "30");
    /// Passkey login window.
    PASSKEY_LOGIN_IP_WINDOW = contract("AUTHARA_RATE_LIMIT_PASSKEY_LOGIN_IP_WINDOW", "10m");
    /// Code verifications per IP per window.
    CHALLENGE_VERIFY_IP_LIMIT = contract("AUTHARA_RATE_LIMIT_CHALLENGE_VERIFY_IP_LIMIT", "30");
    /// Code verification window.
    CHALLENGE_VERIFY_IP_WINDOW = contract("AUTHARA_RATE_LIMIT_CHALLENGE_VERIFY_IP_WINDOW", "10m");
    /// Code resends per IP per window.
    CHALLENGE_RESEND_IP_LIMIT = contract("AUTHARA_RATE_LIMIT_CHALLENGE_RESEND_IP_LIMIT", "10");
    /// Code resend window.
    CHALLENGE_RESEND_IP_WINDOW = contract("AUTHARA_RATE_LIMIT_CHALLENGE_RESEND_IP_WINDOW", "1h");
    /// Second-factor codes (app or recovery) per user per window, whatever the IP (100 consecutive failures lock the app factor anyway).
    MFA_USER_LIMIT = extra("AUTHARA_RATE_LIMIT_MFA_USER_LIMIT", "5");
    /// Second-factor code window.
    MFA_USER_WINDOW = extra("AUTHARA_RATE_LIMIT_MFA_USER_WINDOW", "1m");
    /// The in-process limiter sweeps expired entries every this many calls.
    CLEANUP_EVERY = contract("AUTHARA_RATE_LIMIT_CLEANUP_EVERY", "200");
    /// Memory cap of the in-process limiter, in entries.
    MAX_ENTRIES = contract("AUTHARA_RATE_LIMIT_MAX_ENTRIES", "50000");
}

/// At most `limit` calls per `window`.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Calls allowed in one window (> 0).
    pub limit: u32,
    /// The window (> 0).
    pub window: Duration,
}

/// `AUTHARA_RATE_LIMIT_*`.
#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    /// `AUTHARA_RATE_LIMIT_LOGIN_IP_*`.
    pub login_ip: Limit,
    /// `AUTHARA_RATE_LIMIT_LOGIN_EMAIL_*`.
    pub login_email: Limit,
    /// `AUTHARA_RATE_LIMIT_SIGNUP_IP_*`.
    pub signup_ip: Limit,
    /// `AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_*`.
    pub signup_email: Limit,
    /// `AUTHARA_RATE_LIMIT_PASSWORD_RESET_IP_*`.
    pub password_reset_ip: Limit,
    /// `AUTHARA_RATE_LIMIT_PASSWORD_RESET_EMAIL_*`.
    pub password_reset_email: Limit,
    /// `AUTHARA_RATE_LIMIT_PASSKEY_LOGIN_IP_*`: passkey sign-in options and finishes, each counted on its own.
    pub passkey_login_ip: Limit,
    /// `AUTHARA_RATE_LIMIT_CHALLENGE_VERIFY_IP_*`.
    pub challenge_verify_ip: Limit,
    /// `AUTHARA_RATE_LIMIT_CHALLENGE_RESEND_IP_*`.
    pub challenge_resend_ip: Limit,
    /// `AUTHARA_RATE_LIMIT_MFA_USER_*`.
    pub mfa_user: Limit,
    /// `AUTHARA_RATE_LIMIT_CLEANUP_EVERY`.
    pub cleanup_every: u32,
    /// `AUTHARA_RATE_LIMIT_MAX_ENTRIES`.
    pub max_entries: u32,
}

/// Reads this area.
pub(super) fn build(r: &mut Reader<'_>) -> RateLimitConfig {
    RateLimitConfig {
        login_ip: r.limit(&LOGIN_IP_LIMIT, &LOGIN_IP_WINDOW),
        login_email: r.limit(&LOGIN_EMAIL_LIMIT, &LOGIN_EMAIL_WINDOW),
        signup_ip: r.limit(&SIGNUP_IP_LIMIT, &SIGNUP_IP_WINDOW),
        signup_email: r.limit(&SIGNUP_EMAIL_LIMIT, &SIGNUP_EMAIL_WINDOW),
        password_reset_ip: r.limit(&PASSWORD_RESET_IP_LIMIT, &PASSWORD_RESET_IP_WINDOW),
        password_reset_email: r.limit(&PASSWORD_RESET_EMAIL_LIMIT, &PASSWORD_RESET_EMAIL_WINDOW),
        passkey_login_ip: r.limit(&PASSKEY_LOGIN_IP_LIMIT, &PASSKEY_LOGIN_IP_WINDOW),
        challenge_verify_ip: r.limit(&CHALLENGE_VERIFY_IP_LIMIT, &CHALLENGE_VERIFY_IP_WINDOW),
        challenge_resend_ip: r.limit(&CHALLENGE_RESEND_IP_LIMIT, &CHALLENGE_RESEND_IP_WINDOW),
        mfa_user: r.limit(&MFA_USER_LIMIT, &MFA_USER_WINDOW),
        cleanup_every: r.positive(&CLEANUP_EVERY),
        max_entries: r.positive(&MAX_ENTRIES),
    }
}
