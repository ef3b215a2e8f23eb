//! Configuration: one `Config` tree built once from the environment (plus an optional `.env`).
//!
//! Every variable is listed in [`KNOWN_VARIABLES`] with one line of documentation; the names and
//! defaults come from `contract/config.yaml`, and the extras this server adds are documented in
//! `docs/configuration.md`. A test keeps the list and the contract in agreement.
//!
//! This module is the ground floor: it imports nothing else of this crate.

pub mod duration;
mod load;
pub mod password;
mod return_path;
pub mod secret;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use load::{ConfigErrors, load_from_env, load_from_map};
pub use password::HashParams;
pub use return_path::is_safe_return_path;
pub use secret::{SecretBytes, SecretString};

/// `APP_ENV`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Dev,
    Prod,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub app_env: AppEnv,
    /// `LOG_LEVEL`: debug | info | warn | error.
    pub log_level: String,
    /// `AUTHARA_BIND`: listen address (the reference hard-codes `:8080`).
    pub bind: SocketAddr,
    /// `AUTHARA_DATA_DIR`: SQLite database and generated dev keys.
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub pool: PoolConfig,
    pub cache: CacheConfig,
    /// `PUBLIC_URL` (`scheme://host[:port]`, no trailing slash). Defaults to the bind address in dev.
    pub public_url: String,
    /// `AUTHARA_DEFAULT_RETURN_TO`.
    pub default_return_to: String,
    /// `AUTHARA_TRUST_PROXY_HEADERS`.
    pub trust_proxy_headers: bool,
    pub jwt: JwtConfig,
    pub session: SessionConfig,
    /// `AUTHARA_ORG_MODE`, pinned at first boot.
    pub org_mode: OrgMode,
    pub organizations: OrganizationConfig,
    /// `AUTHARA_INTERNAL_API_TOKEN`: empty rejects every internal call.
    pub internal_api_token: Option<SecretString>,
    /// `AUTHARA_OAUTH_PROVIDERS` and the Google client id.
    pub oauth_google_client_id: Option<String>,
    pub rate_limits: RateLimitConfig,
    pub webhooks: Option<WebhookConfig>,
    /// `AUTHARA_ACCESS_POLICY_ALLOWLIST_ENABLED`.
    pub allowlist_enabled: bool,
    /// `AUTHARA_ADMIN_AUDIT_RETENTION_DAYS`.
    pub admin_audit_retention_days: u32,
    pub challenge: ChallengeConfig,
    pub email: EmailConfig,
    pub http: HttpConfig,
    pub ui: UiConfig,
    /// `AUTHARA_PASSWORD_HASH_*`: argon2id cost.
    pub password_hash: HashParams,
}

impl Config {
    pub fn is_prod(&self) -> bool {
        self.app_env == AppEnv::Prod
    }

    /// Cookies carry `Secure` only in prod (behavior.md §0.1 step 6).
    pub fn secure_cookies(&self) -> bool {
        self.is_prod()
    }
}

#[derive(Debug, Clone)]
pub enum DatabaseConfig {
    /// The embedded default: `<data_dir>/authara.db`.
    Sqlite {
        path: PathBuf,
    },
    Postgres(PostgresConfig),
}

#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// Host name, or a directory holding the server's Unix socket when it starts with `/`.
    pub host: String,
    pub port: u16,
    pub database: String,
    pub username: String,
    pub password: SecretString,
    pub schema: String,
    pub timezone: String,
    pub log_sql: bool,
}

#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub max_open: u32,
    pub max_idle: u32,
    pub max_lifetime: Duration,
    pub max_idle_time: Duration,
}

#[derive(Debug, Clone)]
pub enum CacheConfig {
    /// In-process rate limits and revocation cut-offs (one instance).
    Memory,
    Redis {
        host: String,
        port: u16,
        password: Option<SecretString>,
        db: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    Hs256,
    EdDsa,
}

#[derive(Debug, Clone)]
pub enum JwtKeySource {
    /// `AUTHARA_JWT_KEYS`: `kid:base64secret,...`, every secret at least 32 bytes.
    Configured { keys: Vec<(String, SecretBytes)>, active_kid: String },
    /// dev only: generated once and persisted in the data directory.
    DevGenerated,
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub issuer: String,
    pub algorithm: JwtAlgorithm,
    pub keys: JwtKeySource,
    /// `AUTHARA_JWT_EDDSA_PRIVATE_KEY`: PKCS#8 PEM; generated into the data dir in dev.
    pub ed25519_pem: Option<SecretString>,
    pub access_ttl: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationPolicy {
    Never,
    Always,
    Every(Duration),
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub session_ttl: Duration,
    pub refresh_ttl: Duration,
    pub rotation: RotationPolicy,
    /// `AUTHARA_REFRESH_TOKEN_REUSE_GRACE`: concurrent refreshes inside it are not reuse.
    pub reuse_grace: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgMode {
    Personal,
    Single,
    Multi,
}

impl OrgMode {
    pub fn as_str(self) -> &'static str {
        match self {
            OrgMode::Personal => "personal",
            OrgMode::Single => "single",
            OrgMode::Multi => "multi",
        }
    }
}

#[derive(Debug, Clone)]
pub struct OrganizationConfig {
    pub public_management_enabled: bool,
    pub invitation_ttl: Duration,
    pub invitation_email_include_code: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub limit: u32,
    pub window: Duration,
}

#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    pub login_ip: Limit,
    pub login_email: Limit,
    pub signup_ip: Limit,
    pub signup_email: Limit,
    pub password_reset_ip: Limit,
    pub password_reset_email: Limit,
    pub passkey_login_ip: Limit,
    pub challenge_verify_ip: Limit,
    pub challenge_resend_ip: Limit,
    pub cleanup_every: u32,
    pub max_entries: u32,
}

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    pub secret: SecretString,
    /// Empty means every event.
    pub enabled_events: Vec<String>,
    pub timeout: Duration,
    pub worker_count: u32,
    pub max_delivery_attempts: u32,
    pub processing_stale_after: Duration,
    pub stale_reaper_interval: Duration,
    pub delivered_retention: Duration,
    pub failed_retention: Duration,
    pub cleanup_interval: Duration,
    pub maintenance_batch_size: u32,
}

#[derive(Debug, Clone)]
pub struct ChallengeConfig {
    pub enabled: bool,
    pub ttl: Duration,
    pub code_ttl: Duration,
    pub max_attempts: u32,
    pub max_resends: u32,
    pub min_resend_interval: Duration,
}

#[derive(Debug, Clone)]
pub enum EmailProvider {
    Noop,
    Smtp(SmtpConfig),
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub from: String,
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub tls: bool,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub provider: EmailProvider,
    pub worker_count: u32,
    pub poll_interval: Duration,
    pub job_max_attempts: u32,
    pub cleanup_sent_after: Duration,
    pub cleanup_failed_after: Duration,
}

/// Branding of the hosted pages.
#[derive(Debug, Clone)]
pub struct UiConfig {
    /// `AUTHARA_UI_PRODUCT_NAME`, shown in titles and headers.
    pub product_name: String,
    /// `AUTHARA_UI_PRIMARY_COLOR`: `#rrggbb` for buttons and links.
    pub primary_color: String,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `AUTHARA_REQUEST_TIMEOUT`: per-request handler timeout (504 past it).
    pub request_timeout: Duration,
    /// `AUTHARA_SHUTDOWN_TIMEOUT`: how long in-flight requests may finish after SIGTERM.
    pub shutdown_timeout: Duration,
    /// `AUTHARA_MAX_BODY_BYTES`: request body limit.
    pub max_body_bytes: usize,
}

/// Every variable this server reads, with what it is for. Names from `contract/config.yaml`
/// first, then this server's own additions (documented in `docs/configuration.md`).
pub const KNOWN_VARIABLES: &[(&str, &str)] = &[
    ("APP_ENV", "dev (default) or prod"),
    ("LOG_LEVEL", "debug, info, warn or error"),
    ("POSTGRESQL_HOST", "PostgreSQL host (or socket directory); unset means embedded SQLite"),
    ("POSTGRESQL_PORT", "PostgreSQL port"),
    ("POSTGRESQL_DATABASE", "PostgreSQL database"),
    ("POSTGRESQL_USERNAME", "PostgreSQL user"),
    ("POSTGRESQL_PASSWORD", "PostgreSQL password (or POSTGRESQL_PASSWORD_FILE)"),
    ("POSTGRESQL_SCHEMA", "schema holding authara's tables"),
    ("POSTGRESQL_TIMEZONE", "session time zone"),
    ("POSTGRESQL_LOG_SQL", "log every SQL statement (dev only)"),
    ("AUTHARA_DB_MAX_OPEN_CONNS", "pool size"),
    ("AUTHARA_DB_MAX_IDLE_CONNS", "idle connections kept"),
    ("AUTHARA_DB_CONN_MAX_LIFETIME", "connection lifetime"),
    ("AUTHARA_DB_CONN_MAX_IDLE_TIME", "idle connection lifetime"),
    ("AUTHARA_CACHE_PROVIDER", "noop (in-process) or redis"),
    ("AUTHARA_REDIS_HOST", "Redis host"),
    ("AUTHARA_REDIS_PORT", "Redis port"),
    ("AUTHARA_REDIS_PASSWORD", "Redis password"),
    ("AUTHARA_REDIS_DB", "Redis database number"),
    ("PUBLIC_URL", "public origin, without /auth"),
    ("AUTHARA_DEFAULT_RETURN_TO", "where flows land without return_to"),
    ("AUTHARA_TRUST_PROXY_HEADERS", "believe X-Forwarded-For / X-Real-IP"),
    ("AUTHARA_JWT_ISSUER", "iss claim of access tokens"),
    ("AUTHARA_JWT_ACTIVE_KEY_ID", "kid that signs new tokens"),
    ("AUTHARA_JWT_KEYS", "kid:base64secret,... HS256 keys"),
    ("AUTHARA_ACCESS_TOKEN_TTL_MINUTES", "access token lifetime"),
    ("AUTHARA_SESSION_TTL_DAYS", "absolute session lifetime"),
    ("AUTHARA_REFRESH_TOKEN_TTL_DAYS", "refresh token lifetime"),
    ("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "off, always or a duration"),
    ("AUTHARA_ORG_MODE", "personal, single or multi"),
    ("AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED", "org management by clients"),
    ("AUTHARA_ORGANIZATION_INVITATION_TTL", "invitation lifetime"),
    ("AUTHARA_INVITATION_EMAIL_INCLUDE_CODE", "raw invitation code in emails"),
    ("AUTHARA_INTERNAL_API_TOKEN", "bearer token of /auth/internal/v1"),
    ("AUTHARA_OAUTH_PROVIDERS", "csv of OAuth providers (google)"),
    ("AUTHARA_OAUTH_GOOGLE_CLIENT_ID", "Google client id"),
    ("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "login attempts per IP"),
    ("AUTHARA_RATE_LIMIT_LOGIN_IP_WINDOW", "login IP window"),
    ("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT", "login attempts per email"),
    ("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_WINDOW", "login email window"),
    ("AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT", "signups per IP"),
    ("AUTHARA_RATE_LIMIT_SIGNUP_IP_WINDOW", "signup IP window"),
    ("AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_LIMIT", "signups per email"),
    ("AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_WINDOW", "signup email window"),
    ("AUTHARA_RATE_LIMIT_PASSWORD_RESET_IP_LIMIT", "password resets per IP"),
    ("AUTHARA_RATE_LIMIT_PASSWORD_RESET_IP_WINDOW", "password reset IP window"),
    ("AUTHARA_RATE_LIMIT_PASSWORD_RESET_EMAIL_LIMIT", "password resets per email"),
    ("AUTHARA_RATE_LIMIT_PASSWORD_RESET_EMAIL_WINDOW", "password reset email window"),
    ("AUTHARA_RATE_LIMIT_PASSKEY_LOGIN_IP_LIMIT", "passkey logins per IP"),
    ("AUTHARA_RATE_LIMIT_PASSKEY_LOGIN_IP_WINDOW", "passkey login window"),
    ("AUTHARA_RATE_LIMIT_CHALLENGE_VERIFY_IP_LIMIT", "code verifications per IP"),
    ("AUTHARA_RATE_LIMIT_CHALLENGE_VERIFY_IP_WINDOW", "code verification window"),
    ("AUTHARA_RATE_LIMIT_CHALLENGE_RESEND_IP_LIMIT", "code resends per IP"),
    ("AUTHARA_RATE_LIMIT_CHALLENGE_RESEND_IP_WINDOW", "code resend window"),
    ("AUTHARA_RATE_LIMIT_CLEANUP_EVERY", "limiter sweep period in calls"),
    ("AUTHARA_RATE_LIMIT_MAX_ENTRIES", "limiter memory cap"),
    ("AUTHARA_WEBHOOK_URL", "webhook endpoint"),
    ("AUTHARA_WEBHOOK_SECRET", "webhook signing secret"),
    ("AUTHARA_WEBHOOK_ENABLED_EVENTS", "csv of events; empty = all"),
    ("AUTHARA_WEBHOOK_TIMEOUT", "webhook request timeout"),
    ("AUTHARA_WEBHOOK_WORKER_COUNT", "webhook workers"),
    ("AUTHARA_WEBHOOK_MAX_DELIVERY_ATTEMPTS", "webhook attempts"),
    ("AUTHARA_WEBHOOK_PROCESSING_STALE_AFTER", "reclaim stuck deliveries after"),
    ("AUTHARA_WEBHOOK_STALE_REAPER_INTERVAL", "stuck delivery sweep period"),
    ("AUTHARA_WEBHOOK_DELIVERED_RETENTION", "keep delivered events"),
    ("AUTHARA_WEBHOOK_FAILED_RETENTION", "keep failed events"),
    ("AUTHARA_WEBHOOK_CLEANUP_INTERVAL", "webhook cleanup period"),
    ("AUTHARA_WEBHOOK_MAINTENANCE_BATCH_SIZE", "rows per cleanup batch"),
    ("AUTHARA_ACCESS_POLICY_ALLOWLIST_ENABLED", "only allowlisted emails may sign up"),
    ("AUTHARA_ADMIN_AUDIT_RETENTION_DAYS", "keep admin audit events"),
    ("AUTHARA_CHALLENGE_ENABLED", "verify emails with codes at signup"),
    ("AUTHARA_CHALLENGE_TTL", "challenge lifetime"),
    ("AUTHARA_CHALLENGE_VERIFICATION_CODE_TTL", "code lifetime"),
    ("AUTHARA_CHALLENGE_MAX_ATTEMPTS", "wrong codes allowed"),
    ("AUTHARA_CHALLENGE_MAX_RESENDS", "resends allowed"),
    ("AUTHARA_CHALLENGE_MIN_RESEND_INTERVAL", "time between resends"),
    ("AUTHARA_EMAIL_PROVIDER", "noop or smtp"),
    ("AUTHARA_EMAIL_FROM", "sender address"),
    ("AUTHARA_EMAIL_SMTP_HOST", "SMTP host"),
    ("AUTHARA_EMAIL_SMTP_PORT", "SMTP port"),
    ("AUTHARA_EMAIL_SMTP_USERNAME", "SMTP user"),
    ("AUTHARA_EMAIL_SMTP_PASSWORD", "SMTP password"),
    ("AUTHARA_EMAIL_SMTP_TLS", "require TLS"),
    ("AUTHARA_EMAIL_SMTP_TIMEOUT", "SMTP timeout"),
    ("AUTHARA_EMAIL_WORKER_COUNT", "email workers"),
    ("AUTHARA_EMAIL_WORKER_POLL_INTERVAL", "idle poll period"),
    ("AUTHARA_EMAIL_JOB_MAX_ATTEMPTS", "delivery attempts"),
    ("AUTHARA_EMAIL_CLEANUP_SENT_AFTER", "keep sent emails"),
    ("AUTHARA_EMAIL_CLEANUP_FAILED_AFTER", "keep failed emails"),
];

/// This server's additions to the contract's variables.
pub const EXTRA_VARIABLES: &[(&str, &str)] = &[
    ("AUTHARA_BIND", "listen address, default 0.0.0.0:8080"),
    ("AUTHARA_DATA_DIR", "SQLite database and dev keys, default ./data"),
    ("AUTHARA_JWT_ALGORITHM", "HS256 (default) or EdDSA"),
    ("AUTHARA_JWT_EDDSA_PRIVATE_KEY", "Ed25519 PKCS#8 PEM signing key (EdDSA)"),
    ("AUTHARA_UI_PRODUCT_NAME", "product name on the hosted pages"),
    ("AUTHARA_UI_PRIMARY_COLOR", "accent color of the hosted pages, #rrggbb"),
    ("AUTHARA_PASSWORD_HASH_MEMORY_KIB", "argon2id memory, default 65536"),
    ("AUTHARA_PASSWORD_HASH_ITERATIONS", "argon2id passes, default 3"),
    ("AUTHARA_PASSWORD_HASH_PARALLELISM", "argon2id lanes, default 4"),
    ("AUTHARA_REFRESH_TOKEN_REUSE_GRACE", "concurrent-refresh grace window, default 10s"),
    ("AUTHARA_REQUEST_TIMEOUT", "per-request timeout, default 30s"),
    ("AUTHARA_SHUTDOWN_TIMEOUT", "drain time after SIGTERM, default 10s"),
    ("AUTHARA_MAX_BODY_BYTES", "request body limit, default 65536"),
];
