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
pub use limiter::{Decision, LimitKey, Limiter, Scope};
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
    /// caught up), or a full list dropped live entries. The authenticator then reads the
    /// session's state from the database.
    pub fn store_check_needed(&self, now_ms: i64) -> bool {
        now_ms < self.revocations_lost_until_ms.load(Ordering::Relaxed) || self.redis().is_some_and(|r| !r.listening())
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
