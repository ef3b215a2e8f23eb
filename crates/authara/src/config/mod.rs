//! Configuration: one [`Config`] tree built once from the environment (plus an optional `.env`).
//!
//! Each area module (`server`, `database`, `cache`, `jwt`, ...) declares its variables once as
//! [`Var`]s (name, default, one line of documentation, contract or extra) and builds its part of
//! the tree from them. [`all_vars`] is their union: the unknown-variable warning uses it, a test
//! keeps its contract variables equal to `contract/config.yaml`, and the variable reference in
//! `docs/configuration.md` is generated from it ([`markdown_reference`]).
//!
//! This module is the ground floor: it imports nothing else of this crate.

pub mod access;
pub mod backup;
pub mod cache;
pub mod challenge;
pub mod database;
pub mod duration;
pub mod email;
pub mod jwt;
pub mod limits;
mod load;
pub mod mfa;
pub mod oauth;
pub mod organizations;
pub mod password;
mod reader;
mod return_path;
pub mod secret;
pub mod server;
pub mod session;
pub mod sites;
mod vars;
pub mod webhooks;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use backup::BackupConfig;
pub use cache::CacheConfig;
pub use challenge::ChallengeConfig;
pub use database::{DatabaseConfig, PoolConfig, PostgresConfig};
pub use email::{EmailConfig, EmailProvider, SmtpConfig, SmtpTls};
pub use jwt::{JwtAlgorithm, JwtConfig, JwtKeySource};
pub use limits::{Limit, RateLimitConfig};
pub use load::{ConfigErrors, load_from_env, load_from_map};
pub use mfa::{MfaConfig, MfaPolicy};
pub use oauth::{OAuthConfig, ProviderConfig, ProviderKind};
pub use organizations::{OrgMode, OrganizationConfig};
pub use password::HashParams;
pub use return_path::is_safe_return_path;
pub use secret::{SecretBytes, SecretString};
pub use server::{AppEnv, HttpConfig, IpNet, UiConfig};
pub use session::{RotationPolicy, SessionConfig};
pub use sites::{ReturnHosts, SitesConfig};
use vars::declare_vars;
pub use vars::{AREAS, Area, Var, all_vars, markdown_reference};
pub use webhooks::WebhookConfig;

/// The whole configuration; each field names the variables it comes from.
#[derive(Debug, Clone)]
pub struct Config {
    /// `APP_ENV`.
    pub app_env: AppEnv,
    /// `LOG_LEVEL`: debug | info | warn | error.
    pub log_level: String,
    /// `AUTHARA_BIND`: listen address (the reference hard-codes `:8080`).
    pub bind: SocketAddr,
    /// `AUTHARA_DATA_DIR`: SQLite database and generated dev keys.
    pub data_dir: PathBuf,
    /// `POSTGRESQL_*`, or the embedded SQLite.
    pub database: DatabaseConfig,
    /// `AUTHARA_DB_*`.
    pub pool: PoolConfig,
    /// `AUTHARA_CACHE_PROVIDER` and `AUTHARA_REDIS_*`.
    pub cache: CacheConfig,
    /// `PUBLIC_URL` (`scheme://host[:port]`, no trailing slash). Defaults to the bind address in dev.
    pub public_url: String,
    /// `AUTHARA_DEFAULT_RETURN_TO`.
    pub default_return_to: String,
    /// `AUTHARA_TRUST_PROXY_HEADERS`.
    pub trust_proxy_headers: bool,
    /// `AUTHARA_JWT_*` and `AUTHARA_ACCESS_TOKEN_TTL_MINUTES`.
    pub jwt: JwtConfig,
    /// Session and refresh token lifetimes and rotation.
    pub session: SessionConfig,
    /// `AUTHARA_ORG_MODE`, pinned at first boot.
    pub org_mode: OrgMode,
    /// Organization management and invitations.
    pub organizations: OrganizationConfig,
    /// `AUTHARA_INTERNAL_API_TOKEN`: empty rejects every internal call.
    pub internal_api_token: Option<SecretString>,
    /// `AUTHARA_OAUTH_*`: the sign-in providers.
    pub oauth: OAuthConfig,
    /// `AUTHARA_RATE_LIMIT_*`.
    pub rate_limits: RateLimitConfig,
    /// `AUTHARA_WEBHOOK_*`, when the URL and secret are set.
    pub webhooks: Option<WebhookConfig>,
    /// `AUTHARA_ACCESS_POLICY_ALLOWLIST_ENABLED`: only listed emails may sign up or sign in.
    pub allowlist_enabled: bool,
    /// `AUTHARA_ADMIN_AUDIT_RETENTION_DAYS`: how long admin audit events are kept.
    pub admin_audit_retention_days: u32,
    /// `AUTHARA_CHALLENGE_*`.
    pub challenge: ChallengeConfig,
    /// `AUTHARA_EMAIL_*`.
    pub email: EmailConfig,
    /// HTTP timeouts and body limit.
    pub http: HttpConfig,
    /// Branding of the hosted pages.
    pub ui: UiConfig,
    /// `AUTHARA_PASSWORD_HASH_*`: argon2id cost.
    pub password_hash: HashParams,
    /// `AUTHARA_PASSWORD_HASH_QUEUE`: requests that may wait for a hashing slot.
    pub password_hash_queue: u32,
    /// `AUTHARA_BACKUP_*` and `AUTHARA_MIGRATE_SNAPSHOTS_KEEP`.
    pub backup: BackupConfig,
    pub mfa: MfaConfig,
    /// `AUTHARA_ALLOWED_RETURN_HOSTS` and `AUTHARA_COOKIE_DOMAIN`: apps on other hosts.
    pub sites: SitesConfig,
}

impl Config {
    /// `APP_ENV=prod`.
    pub fn is_prod(&self) -> bool {
        self.app_env == AppEnv::Prod
    }

    /// Cookies carry `Secure` only in prod (behavior.md §0.1 step 6).
    pub fn secure_cookies(&self) -> bool {
        self.is_prod()
    }
}
