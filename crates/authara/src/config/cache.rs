//! The cache behind rate limits and revocation cut-offs: in-process, or Redis.

use super::reader::Reader;
use super::{SecretString, declare_vars};

declare_vars! {
    /// `noop` (in-process: one instance; limits and revocations live in this process) or `redis`
    /// (several instances: shared rate limits, revocations announced to every instance; see
    /// docs/instances.md).
    PROVIDER = contract("AUTHARA_CACHE_PROVIDER", "noop");
    /// Redis host (with `AUTHARA_CACHE_PROVIDER=redis`).
    REDIS_HOST = contract("AUTHARA_REDIS_HOST", "localhost");
    /// Redis port (with `AUTHARA_CACHE_PROVIDER=redis`).
    REDIS_PORT = contract("AUTHARA_REDIS_PORT", "6379");
    /// Redis password, or `AUTHARA_REDIS_PASSWORD_FILE` (with `AUTHARA_CACHE_PROVIDER=redis`).
    REDIS_PASSWORD = contract("AUTHARA_REDIS_PASSWORD", "");
    /// Redis database number (with `AUTHARA_CACHE_PROVIDER=redis`).
    REDIS_DB = contract("AUTHARA_REDIS_DB", "0");
}

/// `AUTHARA_CACHE_PROVIDER` and the Redis connection.
#[derive(Debug, Clone)]
pub enum CacheConfig {
    /// In-process rate limits and revocation cut-offs (one instance).
    Memory,
    /// A shared Redis.
    Redis {
        /// `AUTHARA_REDIS_HOST`.
        host: String,
        /// `AUTHARA_REDIS_PORT`.
        port: u16,
        /// `AUTHARA_REDIS_PASSWORD`.
        password: Option<SecretString>,
        /// `AUTHARA_REDIS_DB`.
        db: u32,
    },
}

/// Reads this area.
pub(super) fn build(r: &mut Reader<'_>) -> CacheConfig {
    match r.string(&PROVIDER).to_ascii_lowercase().as_str() {
        "noop" => CacheConfig::Memory,
        "redis" => CacheConfig::Redis {
            host: r.string(&REDIS_HOST),
            port: r.port(&REDIS_PORT),
            password: r.secret(&REDIS_PASSWORD),
            db: r.non_negative(&REDIS_DB),
        },
        other => {
            r.invalid(&PROVIDER, format!("expected noop or redis, got {other:?}"));
            CacheConfig::Memory
        }
    }
}
