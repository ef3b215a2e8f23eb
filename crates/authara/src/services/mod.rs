//! Use cases: plain Rust types in and out, all policy here, no HTTP types.

pub mod accounts;
pub mod input;
pub mod keys;
pub mod password;
pub mod profile;
pub mod ratelimit;
pub mod return_to;
pub mod revocation;
pub mod sessions;
pub mod token;

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::store::Store;

/// What the use cases need, built once at start.
#[derive(Debug)]
pub struct Services {
    pub config: Arc<Config>,
    pub store: Store,
    pub clock: SharedClock,
    pub tokens: token::TokenService,
    pub hasher: password::PasswordHasher,
    pub revoked: revocation::RevokedSessions,
    pub limits: ratelimit::RateLimits,
}

impl Services {
    pub fn new(
        config: Arc<Config>,
        store: Store,
        clock: SharedClock,
        keys: &keys::SigningKeys,
    ) -> Result<Self, String> {
        let tokens = token::TokenService::new(keys, config.jwt.algorithm, &config.jwt.issuer, config.jwt.access_ttl)?;
        let revoked = revocation::RevokedSessions::new(tokens.ttl_secs().saturating_mul(1000) + 1000);
        Ok(Self {
            hasher: password::PasswordHasher::new(config.password_hash),
            limits: ratelimit::RateLimits::new(&config.rate_limits),
            tokens,
            revoked,
            store,
            clock,
            config,
        })
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Rebuilds the revocation list from sessions revoked within one access-token lifetime,
    /// so a restart does not revive their access tokens.
    pub async fn load_revocations(&self) -> Result<usize, crate::store::StoreError> {
        let now = self.now_ms();
        let since = now - self.tokens.ttl_secs().saturating_mul(1000) - 1000;
        let ids = self.store.sessions_revoked_since(since).await?;
        for id in &ids {
            self.revoked.revoke(*id, now);
        }
        Ok(ids.len())
    }
}
