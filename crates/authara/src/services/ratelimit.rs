//! In-process fixed-window rate limits (behavior.md §5.2), with bounded memory.
//!
//! One limiter per kind; the IP key is checked first, then the email key, and both are counted
//! only when both pass. Blocked answers carry the seconds until the window that blocked resets
//! (the reference sends no `Retry-After`; we do).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::Limit;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Blocked; retry after this many seconds.
    Blocked {
        retry_after_secs: u64,
    },
}

#[derive(Debug)]
struct Window {
    count: u32,
    reset_at_ms: i64,
}

#[derive(Debug, Default)]
struct Maps {
    ip: HashMap<String, Window>,
    email: HashMap<String, Window>,
    calls: u32,
}

/// One kind of limit (`login`, `signup`, ...).
#[derive(Debug)]
pub struct Limiter {
    ip: Limit,
    email: Option<Limit>,
    cleanup_every: u32,
    max_entries: usize,
    maps: Mutex<Maps>,
}

impl Limiter {
    pub fn new(ip: Limit, email: Option<Limit>, cleanup_every: u32, max_entries: u32) -> Self {
        Self {
            ip,
            email,
            cleanup_every: cleanup_every.max(1),
            max_entries: max_entries as usize,
            maps: Mutex::default(),
        }
    }

    /// Counts an attempt for `ip` (and `email`, when this kind limits emails) at `now_ms`.
    pub fn check(&self, ip: &str, email: &str, now_ms: i64) -> Decision {
        let ip_key = if ip.is_empty() { "__unknown_ip__" } else { ip };
        let email_key = if email.is_empty() { "__empty_key__" } else { email };
        let mut maps = self.maps.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        maps.calls = maps.calls.wrapping_add(1);
        if maps.calls % self.cleanup_every == 0 {
            self.sweep(&mut maps, now_ms);
        }
        if let Some(wait) = blocked(&maps.ip, ip_key, self.ip, now_ms) {
            return Decision::Blocked { retry_after_secs: wait };
        }
        if let Some(limit) = self.email
            && let Some(wait) = blocked(&maps.email, email_key, limit, now_ms)
        {
            return Decision::Blocked { retry_after_secs: wait };
        }
        hit(&mut maps.ip, ip_key, self.ip, now_ms);
        if let Some(limit) = self.email {
            hit(&mut maps.email, email_key, limit, now_ms);
        }
        Decision::Allowed
    }

    fn sweep(&self, maps: &mut Maps, now_ms: i64) {
        maps.ip.retain(|_, w| w.reset_at_ms > now_ms);
        maps.email.retain(|_, w| w.reset_at_ms > now_ms);
        // Still too many: drop arbitrary entries, IPs first (an attacker rotating IPs must not
        // grow memory without bound).
        while maps.ip.len() + maps.email.len() > self.max_entries {
            let victim = maps.ip.keys().next().cloned();
            if let Some(k) = victim {
                maps.ip.remove(&k);
            } else if let Some(k) = maps.email.keys().next().cloned() {
                maps.email.remove(&k);
            } else {
                break;
            }
        }
    }

    pub fn entries(&self) -> usize {
        let maps = self.maps.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        maps.ip.len() + maps.email.len()
    }
}

fn blocked(map: &HashMap<String, Window>, key: &str, limit: Limit, now_ms: i64) -> Option<u64> {
    let w = map.get(key)?;
    (w.reset_at_ms > now_ms && w.count >= limit.limit).then(|| {
        let ms = u64::try_from(w.reset_at_ms - now_ms).unwrap_or(0);
        ms.div_ceil(1000).max(1)
    })
}

fn hit(map: &mut HashMap<String, Window>, key: &str, limit: Limit, now_ms: i64) {
    let window_ms = i64::try_from(limit.window.as_millis()).unwrap_or(i64::MAX);
    match map.get_mut(key) {
        Some(w) if w.reset_at_ms > now_ms => w.count += 1,
        _ => {
            map.insert(key.to_owned(), Window { count: 1, reset_at_ms: now_ms.saturating_add(window_ms) });
        }
    }
}

/// The limiters of every kind, built from the configuration.
#[derive(Debug)]
pub struct RateLimits {
    pub login: Limiter,
    pub signup: Limiter,
    pub password_reset: Limiter,
    pub challenge_verify: Limiter,
    pub challenge_resend: Limiter,
}

impl RateLimits {
    pub fn new(c: &crate::config::RateLimitConfig) -> Self {
        Self {
            login: Limiter::new(c.login_ip, Some(c.login_email), c.cleanup_every, c.max_entries),
            signup: Limiter::new(c.signup_ip, Some(c.signup_email), c.cleanup_every, c.max_entries),
            password_reset: Limiter::new(
                c.password_reset_ip,
                Some(c.password_reset_email),
                c.cleanup_every,
                c.max_entries,
            ),
            challenge_verify: Limiter::new(c.challenge_verify_ip, None, c.cleanup_every, c.max_entries),
            challenge_resend: Limiter::new(c.challenge_resend_ip, None, c.cleanup_every, c.max_entries),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limit(n: u32, secs: u64) -> Limit {
        Limit { limit: n, window: Duration::from_secs(secs) }
    }

    #[test]
    fn fixed_windows_block_then_reset() {
        let l = Limiter::new(limit(2, 60), Some(limit(3, 3600)), 200, 1000);
        assert_eq!(l.check("1.1.1.1", "a@x", 0), Decision::Allowed);
        assert_eq!(l.check("1.1.1.1", "a@x", 1_000), Decision::Allowed);
        assert_eq!(l.check("1.1.1.1", "a@x", 2_000), Decision::Blocked { retry_after_secs: 58 });
        // Another IP, same email: the email window still has room for one.
        assert_eq!(l.check("2.2.2.2", "a@x", 3_000), Decision::Allowed);
        assert!(matches!(l.check("3.3.3.3", "a@x", 4_000), Decision::Blocked { retry_after_secs: 3596 }));
        // The IP window resets after a minute.
        assert_eq!(l.check("1.1.1.1", "b@x", 60_000), Decision::Allowed);
    }

    #[test]
    fn blocked_attempts_do_not_count_against_the_email() {
        let l = Limiter::new(limit(1, 60), Some(limit(2, 3600)), 200, 1000);
        assert_eq!(l.check("1.1.1.1", "a@x", 0), Decision::Allowed);
        for _ in 0..5 {
            assert!(matches!(l.check("1.1.1.1", "a@x", 10), Decision::Blocked { .. }));
        }
        assert_eq!(l.check("2.2.2.2", "a@x", 20), Decision::Allowed, "only allowed attempts count");
    }

    #[test]
    fn memory_stays_bounded() {
        let l = Limiter::new(limit(5, 60), Some(limit(5, 60)), 10, 100);
        for i in 0..10_000 {
            l.check(&format!("10.0.{}.{}", i / 256, i % 256), &format!("u{i}@x"), 0);
        }
        assert!(l.entries() <= 120, "{} entries", l.entries());
    }
}
