//! The cache seam: rate-limit counters, revocation cut-offs, and the bounded in-process maps that
//! keep hot reads off the database (verified tokens, profiles, user states).
//!
//! One provider per process, chosen by `AUTHARA_CACHE_PROVIDER`: `memory` (the `noop` of the
//! contract: everything in this process) now; the Redis provider plugs in behind the same
//! [`Cache`] (shared counters, revocations published to every instance) without touching callers.

mod bounded;
mod limiter;

use std::sync::Arc;

pub use bounded::BoundedMap;
pub use limiter::{Decision, LimitKey, Limiter, Scope};

use crate::config::{CacheConfig, RateLimitConfig};
use crate::domain::SessionId;

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
    access_ttl_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    Memory,
}

/// Why the configured provider cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("AUTHARA_CACHE_PROVIDER=redis is not supported by this build yet; use noop (in-process)")]
    Unsupported,
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
            CacheConfig::Redis { .. } => Err(CacheError::Unsupported),
        }
    }

    /// Everything in this process (one instance).
    pub fn memory(limits: &RateLimitConfig, access_ttl_ms: i64) -> Self {
        Cache {
            provider: Provider::Memory,
            limiter: Limiter::new(limits),
            revoked: BoundedMap::new(REVOKED_CAPACITY),
            access_ttl_ms,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self.provider {
            Provider::Memory => "memory",
        }
    }

    pub async fn health(&self) -> CacheHealth {
        CacheHealth { kind: self.kind(), up: true, detail: None }
    }

    /// Counts an attempt in `scope` and says whether it may proceed.
    pub async fn check_limit(&self, scope: Scope, key: &LimitKey, now_ms: i64) -> Decision {
        self.limiter.check(scope, key, now_ms)
    }

    /// Access tokens of `session` stop working from now on (the tokens already issued live at
    /// most one access-token lifetime, so the entry expires after that).
    pub async fn revoke_session(&self, session: SessionId, now_ms: i64) {
        self.revoked.insert(session, (), now_ms, now_ms.saturating_add(self.access_ttl_ms).saturating_add(1000));
    }

    pub fn is_session_revoked(&self, session: SessionId, now_ms: i64) -> bool {
        self.revoked.get(&session, now_ms).is_some()
    }

    /// Memory the limiter holds, in entries (for the bench and the docs' bound).
    pub fn limiter_entries(&self) -> usize {
        self.limiter.entries()
    }
}
