//! Use cases: plain Rust types in and out, all policy here, no HTTP types.

pub mod accounts;
pub mod challenge;
pub mod emails;
pub mod input;
pub mod keys;
pub mod mailer;
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
    pub mailer: mailer::Mailer,
    pub profiles: profile::ProfileCache,
    /// Keys the HMAC of verification codes (derived from the signing key material).
    pub code_key: ring::hmac::Key,
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
        let mailer = mailer::Mailer::new(&config.email.provider, !config.is_prod())?;
        Ok(Self {
            code_key: code_key(keys),
            profiles: profile::ProfileCache::default(),
            mailer,
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

/// The verification-code HMAC key: a hash of the active signing key material, so codes need no
/// extra secret and become invalid when that key is retired.
fn code_key(keys: &keys::SigningKeys) -> ring::hmac::Key {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"authara verification codes\0");
    if let Some((_, secret)) = keys.keys.iter().find(|(k, _)| *k == keys.active_kid) {
        ctx.update(secret.expose_secret());
    }
    if let Some(ed) = &keys.ed25519 {
        ctx.update(ed.pkcs8.expose_secret());
    }
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, ctx.finish().as_ref())
}
