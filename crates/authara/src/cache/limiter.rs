//! Fixed-window rate limits (behavior.md §5.2) in this process, with bounded memory.
//!
//! Each scope limits the client's IP, and some also the target email. The IP key is checked
//! first, then the email key, and both are counted only when both pass (a refused attempt does
//! not eat the email's budget). Keys are stored as 16-byte hashes of (scope, kind, value), so an
//! attacker's 64 KiB "email" costs the same 16 bytes as any other; IPv6 clients are keyed by
//! their /64 (one subscriber usually owns the whole /64). Blocked answers carry the seconds
//! until the window that blocked resets (the reference sends no `Retry-After`; we do).

use std::net::IpAddr;

use sha2::{Digest as _, Sha256};

use super::BoundedMap;
use crate::config::{Limit, RateLimitConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Blocked; retry after this many seconds.
    Blocked {
        retry_after_secs: u64,
    },
}

/// What is being limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Login,
    Signup,
    PasswordReset,
    ChallengeVerify,
    ChallengeResend,
    /// Checks of the current password of a signed-in user (target: the user).
    Reauthenticate,
    /// Email changes a user starts (target: the user).
    EmailChangeUser,
    /// Email changes towards one address (target: the new address).
    EmailChangeTarget,
    /// Passkey sign-in options (per IP).
    PasskeyLogin,
    /// Passkey sign-in finishes (per IP, a counter of its own).
    PasskeyLoginFinish,
    /// Provider sign-in flows started (each stores a flow row until it is finished or expires).
    OAuthStart,
    /// Second-factor codes (target: the user): a few a minute, whatever the IP.
    SecondFactor,
    /// Google ID tokens presented to sign in (the API route and the pages' callback), per IP.
    GoogleSignIn,
    /// Failed bearer tokens on the internal API, per IP (only failures count).
    InternalAuthFailure,
}

/// Email changes one user may start per hour, and one address may receive per day.
const EMAIL_CHANGE_PER_USER: Limit = Limit { limit: 5, window: std::time::Duration::from_secs(3600) };
const EMAIL_CHANGE_PER_TARGET: Limit = Limit { limit: 3, window: std::time::Duration::from_secs(86_400) };
/// Provider sign-in flows one IP may start per minute.
const OAUTH_START_PER_IP: Limit = Limit { limit: 30, window: std::time::Duration::from_secs(60) };
/// Wrong internal API tokens one IP may send per five minutes.
pub const INTERNAL_AUTH_FAILURES_PER_IP: Limit = Limit { limit: 10, window: std::time::Duration::from_secs(300) };

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Login => "login",
            Scope::Signup => "signup",
            Scope::PasswordReset => "password_reset",
            Scope::ChallengeVerify => "challenge_verify",
            Scope::ChallengeResend => "challenge_resend",
            Scope::Reauthenticate => "reauthenticate",
            Scope::EmailChangeUser => "email_change_user",
            Scope::EmailChangeTarget => "email_change_target",
            Scope::PasskeyLogin => "passkey_login",
            Scope::PasskeyLoginFinish => "passkey_login_finish",
            Scope::OAuthStart => "oauth_start",
            Scope::SecondFactor => "second_factor",
            Scope::GoogleSignIn => "google_sign_in",
            Scope::InternalAuthFailure => "internal_auth_failure",
        }
    }
}

/// Who is attempting: the client IP (if known) and, for scopes that limit it, the target.
#[derive(Debug, Clone, Default)]
pub struct LimitKey {
    pub ip: Option<IpAddr>,
    /// The target of the attempt (a normalized email, a user id): limited per scope when the
    /// scope has a per-target limit.
    pub target: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    count: u32,
    reset_at_ms: i64,
}

pub(super) type Key = [u8; 16];

/// Per-scope limits and one bounded map of windows for all of them.
#[derive(Debug)]
pub struct Limiter {
    config: RateLimitConfig,
    windows: BoundedMap<Key, Window>,
}

impl Limiter {
    pub fn new(config: &RateLimitConfig) -> Self {
        Self { config: config.clone(), windows: BoundedMap::new(config.max_entries as usize) }
    }

    /// (per-IP limit, per-target limit) of a scope.
    fn limits(&self, scope: Scope) -> (Option<Limit>, Option<Limit>) {
        let c = &self.config;
        match scope {
            Scope::Login => (Some(c.login_ip), Some(c.login_email)),
            Scope::Signup => (Some(c.signup_ip), Some(c.signup_email)),
            Scope::PasswordReset => (Some(c.password_reset_ip), Some(c.password_reset_email)),
            Scope::ChallengeVerify => (Some(c.challenge_verify_ip), None),
            Scope::ChallengeResend => (Some(c.challenge_resend_ip), None),
            Scope::Reauthenticate => (None, Some(c.login_email)),
            Scope::EmailChangeUser => (None, Some(EMAIL_CHANGE_PER_USER)),
            Scope::EmailChangeTarget => (None, Some(EMAIL_CHANGE_PER_TARGET)),
            Scope::PasskeyLogin | Scope::PasskeyLoginFinish => (Some(c.passkey_login_ip), None),
            Scope::OAuthStart => (Some(OAUTH_START_PER_IP), None),
            // Three codes are good at a time (±1 step): the 100 failures before the lock give a
            // guesser 3 chances in 10,000, over 20 minutes at the default 5 a minute.
            Scope::SecondFactor => (None, Some(c.mfa_user)),
            // As the password login's per-IP limit, in a window of its own.
            Scope::GoogleSignIn => (Some(c.login_ip), None),
            Scope::InternalAuthFailure => (Some(INTERNAL_AUTH_FAILURES_PER_IP), None),
        }
    }

    /// The windows an attempt in `scope` counts against, in checking order (IP, then target).
    pub(super) fn plan(&self, scope: Scope, key: &LimitKey) -> Vec<(Key, Limit)> {
        let (ip_limit, target_limit) = self.limits(scope);
        let ip = ip_limit.map(|l| (hash_key(scope, "ip", &ip_key(key.ip)), l));
        let target = target_limit.map(|l| (hash_key(scope, "target", key.target.as_deref().unwrap_or("")), l));
        ip.into_iter().chain(target).collect()
    }

    /// Counts an attempt at `now_ms`.
    #[cfg(test)]
    pub fn check(&self, scope: Scope, key: &LimitKey, now_ms: i64) -> Decision {
        self.check_plan(&self.plan(scope, key), now_ms)
    }

    /// Counts an attempt against windows already planned (the Redis provider's fallback).
    pub(super) fn check_plan(&self, plan: &[(Key, Limit)], now_ms: i64) -> Decision {
        for (k, limit) in plan {
            if let Some(wait) = self.blocked(k, *limit, now_ms) {
                return Decision::Blocked { retry_after_secs: wait };
            }
        }
        for (k, limit) in plan {
            self.hit(*k, *limit, now_ms);
        }
        Decision::Allowed
    }

    /// Whether an attempt would be blocked, without counting it (limits that count failures
    /// only: a blocked client is refused before anything is checked).
    pub(super) fn peek_plan(&self, plan: &[(Key, Limit)], now_ms: i64) -> Decision {
        for (k, limit) in plan {
            if let Some(wait) = self.blocked(k, *limit, now_ms) {
                return Decision::Blocked { retry_after_secs: wait };
            }
        }
        Decision::Allowed
    }

    fn blocked(&self, key: &Key, limit: Limit, now_ms: i64) -> Option<u64> {
        let w = self.windows.get(key, now_ms)?;
        (w.count >= limit.limit).then(|| u64::try_from(w.reset_at_ms - now_ms).unwrap_or(0).div_ceil(1000).max(1))
    }

    fn hit(&self, key: Key, limit: Limit, now_ms: i64) {
        let window_ms = i64::try_from(limit.window.as_millis()).unwrap_or(i64::MAX);
        self.windows.update(key, now_ms, |w| {
            let w = match w {
                Some(w) => Window { count: w.count.saturating_add(1), reset_at_ms: w.reset_at_ms },
                None => Window { count: 1, reset_at_ms: now_ms.saturating_add(window_ms) },
            };
            (w, w.reset_at_ms, ())
        });
    }

    pub fn entries(&self) -> usize {
        self.windows.len()
    }
}

/// The text an IP is limited by: the address, or its /64 for IPv6.
fn ip_key(ip: Option<IpAddr>) -> String {
    match ip {
        None => "__unknown_ip__".to_owned(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

fn hash_key(scope: Scope, kind: &str, value: &str) -> Key {
    let mut h = Sha256::new();
    h.update(scope.name().as_bytes());
    h.update([0]);
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(value.as_bytes());
    let digest = h.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limit(n: u32, secs: u64) -> Limit {
        Limit { limit: n, window: Duration::from_secs(secs) }
    }

    fn limiter(ip: Limit, email: Limit, max_entries: u32) -> Limiter {
        Limiter::new(&RateLimitConfig {
            login_ip: ip,
            login_email: email,
            signup_ip: ip,
            signup_email: email,
            password_reset_ip: ip,
            password_reset_email: email,
            passkey_login_ip: ip,
            challenge_verify_ip: ip,
            challenge_resend_ip: ip,
            mfa_user: email,
            cleanup_every: 200,
            max_entries,
        })
    }

    fn key(ip: &str, email: &str) -> LimitKey {
        LimitKey { ip: Some(ip.parse().unwrap()), target: Some(email.to_owned()) }
    }

    #[test]
    fn fixed_windows_block_then_reset() {
        let l = limiter(limit(2, 60), limit(3, 3600), 1000);
        assert_eq!(l.check(Scope::Login, &key("1.1.1.1", "a@x"), 0), Decision::Allowed);
        assert_eq!(l.check(Scope::Login, &key("1.1.1.1", "a@x"), 1_000), Decision::Allowed);
        assert_eq!(l.check(Scope::Login, &key("1.1.1.1", "a@x"), 2_000), Decision::Blocked { retry_after_secs: 58 });
        // Another IP, same email: the email window still has room for one.
        assert_eq!(l.check(Scope::Login, &key("2.2.2.2", "a@x"), 3_000), Decision::Allowed);
        assert!(matches!(
            l.check(Scope::Login, &key("3.3.3.3", "a@x"), 4_000),
            Decision::Blocked { retry_after_secs: 3596 }
        ));
        // The IP window resets after a minute; scopes count separately.
        assert_eq!(l.check(Scope::Login, &key("1.1.1.1", "b@x"), 60_000), Decision::Allowed);
        assert_eq!(l.check(Scope::Signup, &key("3.3.3.3", "a@x"), 4_000), Decision::Allowed);
    }

    #[test]
    fn blocked_attempts_do_not_count_against_the_email() {
        let l = limiter(limit(1, 60), limit(2, 3600), 1000);
        assert_eq!(l.check(Scope::Login, &key("1.1.1.1", "a@x"), 0), Decision::Allowed);
        for _ in 0..5 {
            assert!(matches!(l.check(Scope::Login, &key("1.1.1.1", "a@x"), 10), Decision::Blocked { .. }));
        }
        assert_eq!(l.check(Scope::Login, &key("2.2.2.2", "a@x"), 20), Decision::Allowed, "only allowed attempts count");
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let l = limiter(limit(2, 60), limit(100, 60), 1000);
        assert_eq!(l.check(Scope::Login, &key("2001:db8:1:2::1", "a@x"), 0), Decision::Allowed);
        assert_eq!(l.check(Scope::Login, &key("2001:db8:1:2::ffff", "b@x"), 0), Decision::Allowed);
        assert!(matches!(l.check(Scope::Login, &key("2001:db8:1:2:dead::1", "c@x"), 0), Decision::Blocked { .. }));
        assert_eq!(l.check(Scope::Login, &key("2001:db8:1:3::1", "d@x"), 0), Decision::Allowed, "another /64");
    }

    #[test]
    fn memory_stays_bounded_whatever_the_keys() {
        let l = limiter(limit(5, 60), limit(5, 60), 100);
        for i in 0..10_000 {
            let huge = format!("{}{i}@x", "a".repeat(10_000));
            l.check(Scope::Login, &key(&format!("10.0.{}.{}", i / 256, i % 256), &huge), 0);
        }
        assert!(l.entries() <= 100, "{} entries", l.entries());
    }
}
