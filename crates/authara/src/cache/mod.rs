//! The cache seam: rate-limit counters, revocation cut-offs, and the bounded in-process maps that
//! keep hot reads off the database (verified tokens, profiles, user states).
//!
//! One provider per process, chosen by `AUTHARA_CACHE_PROVIDER`: `memory` (the `noop` of the
//! contract: everything in this process) or `redis` (limit windows shared by every instance,
//! revocations and changes announced to every instance; see `cache/redis.rs` for what
//! happens while Redis is away). Callers do not know which one runs.

mod bounded;
mod limiter;
mod redis;
mod views;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

pub use bounded::BoundedMap;
pub use limiter::{Decision, INTERNAL_AUTH_FAILURES_PER_IP, LimitKey, Limiter, Scope};
pub use redis::{Announcement, Subscription};
pub use views::{PROFILE_TTL_MS, USER_STATE_TTL_MS, UserState, UserViews};

use crate::config::{CacheConfig, RateLimitConfig};
use crate::domain::{OrgId, SessionId, UserId};

/// What the health check reports for the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheHealth {
    pub kind: &'static str,
    pub up: bool,
    pub detail: Option<String>,
}

/// Revoked sessions are remembered at most this many at once (the list only needs to outlive
/// the access tokens of each entry; older entries are dropped first).
const REVOKED_CAPACITY: usize = 100_000;

/// Redis provider: every instance reads the sessions revoked lately from the database this often
/// (the revocation feed), whatever Redis does, so a revocation whose announcement never reached
/// an instance (the revoking instance was cut off from Redis) is still applied there.
pub const REVOCATION_FEED_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The guaranteed bound, in milliseconds: a session revoked on any instance is refused by every
/// instance once this long has passed since the revocation committed. An instance whose last
/// successful feed read started longer ago than this checks each access token's session in the
/// database until a read succeeds again.
pub const REVOCATION_WINDOW_MS: i64 = 3_000;

/// Each feed read goes back this far before the previous read's start: it covers a revoking
/// transaction that committed after its clock reading (its `revoked_at_ms`), and clocks of
/// instances that disagree (by less than this, minus the transaction's duration).
pub const REVOCATION_FEED_OVERLAP_MS: i64 = 30_000;

/// The process's cache provider.
#[derive(Debug)]
pub struct Cache {
    provider: Provider,
    limiter: Limiter,
    /// Revoked session → until when its access tokens could still be presented.
    revoked: BoundedMap<SessionId, ()>,
    /// Until when revocations dropped from a full `revoked` map could still matter: the
    /// authenticator reads sessions from the database until then.
    revocations_lost_until_ms: AtomicI64,
    /// How long a revocation matters: one access-token lifetime, plus a second of clock slack.
    revocation_ttl_ms: i64,
    /// When the last successful read of the revocation feed started (Redis provider).
    feed_read_at_ms: AtomicI64,
}

#[derive(Debug)]
enum Provider {
    Memory,
    Redis(Arc<redis::Redis>),
}

/// Why the configured provider cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{0}")]
    Redis(String),
}

/// One access-token lifetime plus a second of clock slack.
fn revocation_ttl(access_ttl_ms: i64) -> i64 {
    access_ttl_ms.saturating_add(1000)
}

impl Cache {
    /// The provider the configuration asks for.
    pub fn from_config(
        cache: &CacheConfig,
        limits: &RateLimitConfig,
        access_ttl_ms: i64,
    ) -> Result<Arc<Self>, CacheError> {
        match cache {
            CacheConfig::Memory => Ok(Arc::new(Self::memory(limits, access_ttl_ms))),
            CacheConfig::Redis { host, port, password, db } => {
                let redis = redis::Redis::new(
                    host,
                    *port,
                    password.as_ref().map(|p| p.expose_secret()),
                    i64::from(*db),
                    revocation_ttl(access_ttl_ms),
                )
                .map_err(CacheError::Redis)?;
                let mut cache = Self::memory(limits, access_ttl_ms);
                cache.provider = Provider::Redis(Arc::new(redis));
                Ok(Arc::new(cache))
            }
        }
    }

    /// Everything in this process (one instance).
    pub fn memory(limits: &RateLimitConfig, access_ttl_ms: i64) -> Self {
        Cache {
            provider: Provider::Memory,
            limiter: Limiter::new(limits),
            revoked: BoundedMap::new(REVOKED_CAPACITY),
            revocations_lost_until_ms: AtomicI64::new(0),
            revocation_ttl_ms: revocation_ttl(access_ttl_ms),
            feed_read_at_ms: AtomicI64::new(i64::MIN),
        }
    }

    /// How long after a revocation the session's access tokens could still be presented (one
    /// access-token lifetime, plus a second): how far back revocations are loaded and kept.
    pub fn revocation_ttl_ms(&self) -> i64 {
        self.revocation_ttl_ms
    }

    pub fn kind(&self) -> &'static str {
        match self.provider {
            Provider::Memory => "memory",
            Provider::Redis(_) => "redis",
        }
    }

    fn redis(&self) -> Option<&Arc<redis::Redis>> {
        match &self.provider {
            Provider::Memory => None,
            Provider::Redis(r) => Some(r),
        }
    }

    pub async fn health(&self) -> CacheHealth {
        match self.redis() {
            None => CacheHealth { kind: self.kind(), up: true, detail: None },
            Some(r) => {
                let (up, detail) = r.health().await;
                CacheHealth { kind: self.kind(), up, detail }
            }
        }
    }

    /// Counts an attempt in `scope` and says whether it may proceed.
    pub async fn check_limit(&self, scope: Scope, key: &LimitKey, now_ms: i64) -> Decision {
        let plan = self.limiter.plan(scope, key);
        if let Some(r) = self.redis()
            && let Some(wait_ms) = r.limit(&plan).await
        {
            return match u64::try_from(wait_ms) {
                Ok(0) | Err(_) => Decision::Allowed,
                Ok(ms) => Decision::Blocked { retry_after_secs: ms.div_ceil(1000).max(1) },
            };
        }
        self.limiter.check_plan(&plan, now_ms)
    }

    /// Whether an attempt in `scope` would be refused now, without counting it (for limits
    /// that count failures only: the caller counts each failure with [`Cache::check_limit`]).
    pub async fn peek_limit(&self, scope: Scope, key: &LimitKey, now_ms: i64) -> Decision {
        let plan = self.limiter.plan(scope, key);
        if let Some(r) = self.redis()
            && let Some(wait_ms) = r.peek(&plan).await
        {
            return match u64::try_from(wait_ms) {
                Ok(0) | Err(_) => Decision::Allowed,
                Ok(ms) => Decision::Blocked { retry_after_secs: ms.div_ceil(1000).max(1) },
            };
        }
        self.limiter.peek_plan(&plan, now_ms)
    }

    /// Access tokens of `session` stop working from now on, on every instance (the tokens
    /// already issued live at most one access-token lifetime, so the entry expires after that).
    pub async fn revoke_session(&self, session: SessionId, now_ms: i64) {
        self.revoke_sessions(&[session], now_ms).await;
    }

    /// [`Cache::revoke_session`] for several sessions, announced in one round trip.
    pub async fn revoke_sessions(&self, sessions: &[SessionId], now_ms: i64) {
        for sid in sessions {
            self.remember_revoked(*sid, now_ms);
        }
        if let Some(r) = self.redis() {
            r.announce_revoked(sessions).await;
        }
    }

    /// Announces revocations already remembered here to the other instances (Redis only).
    pub async fn announce_revoked(&self, sessions: &[SessionId]) {
        if let Some(r) = self.redis() {
            r.announce_revoked(sessions).await;
        }
    }

    /// Records a revocation in this process only (one read back from the database, or one
    /// another instance announced).
    pub fn remember_revoked(&self, session: SessionId, now_ms: i64) {
        let until = now_ms.saturating_add(self.revocation_ttl_ms);
        if self.revoked.insert(session, (), now_ms, until) {
            tracing::warn!("revocation list full; checking sessions in the database for one access-token lifetime");
            self.revocations_lost_until_ms.fetch_max(until, Ordering::Relaxed);
        }
    }

    /// Tells the other instances that cached reads of `user` are stale (in the background:
    /// callers are synchronous and the change is already committed).
    pub fn announce_user_changed(&self, user: UserId) {
        self.announce_in_background(Announcement::User(user));
    }

    /// Tells the other instances that cached profiles showing `org` are stale.
    pub fn announce_org_changed(&self, org: OrgId) {
        self.announce_in_background(Announcement::Org(org));
    }

    fn announce_in_background(&self, what: Announcement) {
        if let Some(r) = self.redis().cloned()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                r.announce(what).await;
            });
        }
    }

    /// True while the in-process revocation list may miss a revocation: announcements from
    /// other instances may be lost (Redis is configured but the subscriber is not connected and
    /// caught up), the revocation feed has not been read for [`REVOCATION_WINDOW_MS`] (another
    /// instance may have revoked a session it could not announce), or a full list dropped live
    /// entries. The authenticator then reads the session's state from the database.
    pub fn store_check_needed(&self, now_ms: i64) -> bool {
        now_ms < self.revocations_lost_until_ms.load(Ordering::Relaxed)
            || self.redis().is_some_and(|r| {
                !r.listening()
                    || now_ms.saturating_sub(self.feed_read_at_ms.load(Ordering::Relaxed)) > REVOCATION_WINDOW_MS
            })
    }

    /// Whether this process reads the revocation feed (the Redis provider: other instances
    /// revoke sessions too).
    pub fn follows_revocation_feed(&self) -> bool {
        self.redis().is_some()
    }

    /// A read of the revocation feed that started at `started_ms` succeeded: every revocation
    /// committed before then is in the list.
    pub fn revocation_feed_read(&self, started_ms: i64) {
        self.feed_read_at_ms.fetch_max(started_ms, Ordering::Relaxed);
    }

    /// Subscribes to other instances' announcements (`None` with the memory provider).
    pub async fn subscribe(&self) -> Option<Result<Subscription, String>> {
        Some(self.redis()?.subscribe().await)
    }

    /// Marks the subscriber as connected and caught up (or not).
    pub fn set_listening(&self, on: bool) {
        if let Some(r) = self.redis() {
            r.set_listening(on);
        }
    }

    pub fn is_session_revoked(&self, session: SessionId, now_ms: i64) -> bool {
        self.revoked.get(&session, now_ms).is_some()
    }

    /// Memory the limiter holds, in entries (for the bench and the docs' bound).
    pub fn limiter_entries(&self) -> usize {
        self.limiter.entries()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis_cache() -> Arc<Cache> {
        let vars =
            [("AUTHARA_CACHE_PROVIDER", "redis"), ("AUTHARA_REDIS_HOST", "127.0.0.1"), ("AUTHARA_REDIS_PORT", "1")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        let config = crate::config::load_from_map(&vars).unwrap().0;
        Cache::from_config(&config.cache, &config.rate_limits, 600_000).unwrap()
    }

    #[test]
    fn sessions_are_read_from_the_database_while_the_revocation_feed_is_stale() {
        let cache = redis_cache();
        cache.set_listening(true);
        let now = 1_000_000;
        assert!(cache.store_check_needed(now), "no feed read yet");
        cache.revocation_feed_read(now);
        assert!(!cache.store_check_needed(now + REVOCATION_WINDOW_MS), "fresh: the list is enough");
        assert!(cache.store_check_needed(now + REVOCATION_WINDOW_MS + 1), "stale: the database decides");
        cache.revocation_feed_read(now - 10_000);
        assert!(cache.store_check_needed(now + REVOCATION_WINDOW_MS + 1), "an older read does not move it back");
        cache.set_listening(false);
        assert!(cache.store_check_needed(now), "a subscriber away: the database decides");
        let memory = Cache::memory(&crate::config::load_from_map(&Default::default()).unwrap().0.rate_limits, 600_000);
        assert!(!memory.follows_revocation_feed() && !memory.store_check_needed(now), "one instance: nothing to read");
    }
}
