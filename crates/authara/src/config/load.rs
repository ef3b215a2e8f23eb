//! Reading the environment into a [`Config`], collecting every problem before giving up.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;

use super::*;

/// Every problem found in the configuration, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The process environment, with `.env` (in the working directory) filling what is unset.
/// Returns the configuration and warnings (unknown variables that look like ours).
pub fn load_from_env() -> Result<(Config, Vec<String>), ConfigErrors> {
    let mut vars: HashMap<String, String> =
        std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect();
    if let Ok(iter) = dotenvy::from_filename_iter(".env") {
        for item in iter {
            match item {
                Ok((k, v)) => {
                    vars.entry(k).or_insert(v);
                }
                Err(e) => return Err(ConfigErrors(vec![format!(".env: {e}")])),
            }
        }
    }
    load_from_map(&vars)
}

/// Builds the configuration from a map of variables (tests use this directly).
pub fn load_from_map(vars: &HashMap<String, String>) -> Result<(Config, Vec<String>), ConfigErrors> {
    let mut r = Reader { vars, errors: Vec::new() };
    let config = build(&mut r);
    if r.errors.is_empty() { Ok((config, unknown_variables(vars))) } else { Err(ConfigErrors(r.errors)) }
}

fn unknown_variables(vars: &HashMap<String, String>) -> Vec<String> {
    let mut warnings: Vec<String> = vars
        .keys()
        .filter(|k| k.starts_with("AUTHARA_") || k.starts_with("POSTGRESQL_"))
        .filter(|k| !k.starts_with("AUTHARA_TEST_"))
        .filter(|k| {
            let base = k.strip_suffix("_FILE").unwrap_or(k);
            !KNOWN_VARIABLES.iter().chain(EXTRA_VARIABLES).any(|(n, _)| *n == base)
        })
        .map(|k| format!("unknown variable {k} is ignored (typo?)"))
        .collect();
    warnings.sort();
    warnings
}

struct Reader<'a> {
    vars: &'a HashMap<String, String>,
    errors: Vec<String>,
}

impl Reader<'_> {
    /// The trimmed value, `None` when unset or blank. `NAME_FILE` is read for secrets.
    fn raw(&mut self, name: &str) -> Option<String> {
        let v = self.vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        v.map(str::to_owned)
    }

    fn secret(&mut self, name: &str) -> Option<SecretString> {
        if let Some(v) = self.vars.get(name).filter(|v| !v.is_empty()) {
            return Some(SecretString::new(v.clone()));
        }
        let file_var = format!("{name}_FILE");
        let path = self.raw(&file_var)?;
        match std::fs::read_to_string(&path) {
            Ok(s) => Some(SecretString::new(s.trim_end_matches(['\r', '\n']).to_owned())),
            Err(e) => {
                self.errors.push(format!("{file_var}: cannot read {path}: {e}"));
                None
            }
        }
    }

    fn string(&mut self, name: &str, default: &str) -> String {
        self.raw(name).unwrap_or_else(|| default.to_owned())
    }

    fn required(&mut self, name: &str, why: &str) -> String {
        match self.raw(name) {
            Some(v) => v,
            None => {
                self.errors.push(format!("{name} is required{why}"));
                String::new()
            }
        }
    }

    fn parse<T: FromStr>(&mut self, name: &str, default: T, what: &str) -> T {
        match self.raw(name) {
            None => default,
            Some(v) => match v.parse() {
                Ok(x) => x,
                Err(_) => {
                    self.errors.push(format!("{name}: expected {what}, got {v:?}"));
                    default
                }
            },
        }
    }

    fn int(&mut self, name: &str, default: i64) -> i64 {
        self.parse(name, default, "an integer")
    }

    /// An integer > 0 that fits in u32.
    fn positive(&mut self, name: &str, default: u32) -> u32 {
        let v = self.int(name, i64::from(default));
        match u32::try_from(v) {
            Ok(x) if x > 0 => x,
            _ => {
                self.errors.push(format!("{name}: must be greater than 0, got {v}"));
                default
            }
        }
    }

    fn non_negative(&mut self, name: &str, default: u32) -> u32 {
        let v = self.int(name, i64::from(default));
        match u32::try_from(v) {
            Ok(x) => x,
            Err(_) => {
                self.errors.push(format!("{name}: must be 0 or more, got {v}"));
                default
            }
        }
    }

    fn port(&mut self, name: &str, default: u16) -> u16 {
        let v = self.int(name, i64::from(default));
        match u16::try_from(v) {
            Ok(p) if p > 0 => p,
            _ => {
                self.errors.push(format!("{name}: must be a port between 1 and 65535, got {v}"));
                default
            }
        }
    }

    /// Go's `strconv.ParseBool` forms.
    fn bool(&mut self, name: &str, default: bool) -> bool {
        match self.raw(name).as_deref() {
            None => default,
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => true,
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => false,
            Some(v) => {
                self.errors.push(format!("{name}: expected true or false, got {v:?}"));
                default
            }
        }
    }

    fn duration_raw(&mut self, name: &str, default: &str) -> Option<duration::SignedDuration> {
        let v = self.string(name, default);
        match duration::parse(&v) {
            Ok(d) => Some(d),
            Err(e) => {
                self.errors.push(format!("{name}: {e}"));
                None
            }
        }
    }

    /// A duration > 0.
    fn duration(&mut self, name: &str, default: &str) -> Duration {
        let fallback = duration::parse(default).map(|d| d.magnitude).unwrap_or_default();
        match self.duration_raw(name, default) {
            Some(d) if !d.negative && !d.magnitude.is_zero() => d.magnitude,
            Some(_) => {
                self.errors.push(format!("{name}: must be a duration greater than 0"));
                fallback
            }
            None => fallback,
        }
    }

    fn duration_non_negative(&mut self, name: &str, default: &str) -> Duration {
        match self.duration_raw(name, default) {
            Some(d) if !d.negative => d.magnitude,
            Some(_) => {
                self.errors.push(format!("{name}: must not be negative"));
                Duration::ZERO
            }
            None => Duration::ZERO,
        }
    }

    fn limit(&mut self, prefix: &str, limit: u32, window: &str) -> Limit {
        Limit {
            limit: self.positive(&format!("{prefix}_LIMIT"), limit),
            window: self.duration(&format!("{prefix}_WINDOW"), window),
        }
    }

    fn csv(&mut self, name: &str, allowed: &[&str]) -> Vec<String> {
        let Some(v) = self.raw(name) else {
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        for item in v.split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()) {
            if !allowed.contains(&item.as_str()) {
                self.errors.push(format!("{name}: unknown value {item:?} (allowed: {})", allowed.join(", ")));
            } else if out.contains(&item) {
                self.errors.push(format!("{name}: {item:?} is listed twice"));
            } else {
                out.push(item);
            }
        }
        out
    }

    fn check(&mut self, ok: bool, message: impl Into<String>) {
        if !ok {
            self.errors.push(message.into());
        }
    }
}

fn build(r: &mut Reader<'_>) -> Config {
    let app_env = match r.string("APP_ENV", "dev").to_ascii_lowercase().as_str() {
        "dev" => AppEnv::Dev,
        "prod" => AppEnv::Prod,
        other => {
            r.errors.push(format!("APP_ENV: expected dev or prod, got {other:?}"));
            AppEnv::Dev
        }
    };
    let prod = app_env == AppEnv::Prod;
    let log_level = r.string("LOG_LEVEL", if prod { "info" } else { "debug" }).to_ascii_lowercase();
    r.check(
        matches!(log_level.as_str(), "debug" | "info" | "warn" | "error"),
        format!("LOG_LEVEL: expected debug, info, warn or error, got {log_level:?}"),
    );

    let bind_raw = r.string("AUTHARA_BIND", "0.0.0.0:8080");
    let bind = match bind_raw.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            r.errors.push(format!("AUTHARA_BIND: expected an address like 0.0.0.0:8080, got {bind_raw:?}"));
            SocketAddr::from(([0, 0, 0, 0], 8080))
        }
    };
    let data_dir = PathBuf::from(r.string("AUTHARA_DATA_DIR", "./data"));

    let database = build_database(r, &data_dir, prod);
    let pool = PoolConfig {
        max_open: r.positive("AUTHARA_DB_MAX_OPEN_CONNS", 40),
        max_idle: r.non_negative("AUTHARA_DB_MAX_IDLE_CONNS", 20),
        max_lifetime: r.duration_non_negative("AUTHARA_DB_CONN_MAX_LIFETIME", "30m"),
        max_idle_time: r.duration_non_negative("AUTHARA_DB_CONN_MAX_IDLE_TIME", "5m"),
    };
    r.check(pool.max_idle <= pool.max_open, "AUTHARA_DB_MAX_IDLE_CONNS: must not exceed AUTHARA_DB_MAX_OPEN_CONNS");

    let cache = match r.string("AUTHARA_CACHE_PROVIDER", "noop").to_ascii_lowercase().as_str() {
        "noop" => CacheConfig::Memory,
        "redis" => CacheConfig::Redis {
            host: r.string("AUTHARA_REDIS_HOST", "localhost"),
            port: r.port("AUTHARA_REDIS_PORT", 6379),
            password: r.secret("AUTHARA_REDIS_PASSWORD"),
            db: r.non_negative("AUTHARA_REDIS_DB", 0),
        },
        other => {
            r.errors.push(format!("AUTHARA_CACHE_PROVIDER: expected noop or redis, got {other:?}"));
            CacheConfig::Memory
        }
    };

    let public_url = match r.raw("PUBLIC_URL") {
        Some(u) => {
            if let Err(e) = validate_public_url(&u) {
                r.errors.push(format!("PUBLIC_URL: {e}"));
            }
            u
        }
        None if prod => {
            r.errors.push("PUBLIC_URL is required when APP_ENV=prod".to_owned());
            String::new()
        }
        None => format!("http://localhost:{}", bind.port()),
    };
    let default_return_to = r.string("AUTHARA_DEFAULT_RETURN_TO", "/");
    r.check(
        is_safe_return_path(&default_return_to),
        format!(
            "AUTHARA_DEFAULT_RETURN_TO: {default_return_to:?} is not a safe relative path (must start with a single /)"
        ),
    );
    let trust_proxy_headers = r.bool("AUTHARA_TRUST_PROXY_HEADERS", false);

    let jwt = build_jwt(r, prod);
    let session = build_session(r, jwt.access_ttl);

    let org_mode = match r.string("AUTHARA_ORG_MODE", "single").to_ascii_lowercase().as_str() {
        "personal" => OrgMode::Personal,
        "single" => OrgMode::Single,
        "multi" => OrgMode::Multi,
        other => {
            r.errors.push(format!("AUTHARA_ORG_MODE: expected personal, single or multi, got {other:?}"));
            OrgMode::Single
        }
    };
    let organizations = OrganizationConfig {
        public_management_enabled: r.bool("AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED", false),
        invitation_ttl: r.duration("AUTHARA_ORGANIZATION_INVITATION_TTL", "168h"),
        invitation_email_include_code: r.bool("AUTHARA_INVITATION_EMAIL_INCLUDE_CODE", false),
    };
    let internal_api_token = r.secret("AUTHARA_INTERNAL_API_TOKEN");

    let providers = r.csv("AUTHARA_OAUTH_PROVIDERS", &["google"]);
    let oauth_google_client_id = if providers.iter().any(|p| p == "google") {
        Some(r.required("AUTHARA_OAUTH_GOOGLE_CLIENT_ID", " when AUTHARA_OAUTH_PROVIDERS contains google"))
    } else {
        None
    };

    let rate_limits = RateLimitConfig {
        login_ip: r.limit("AUTHARA_RATE_LIMIT_LOGIN_IP", 5, "1m"),
        login_email: r.limit("AUTHARA_RATE_LIMIT_LOGIN_EMAIL", 10, "1h"),
        signup_ip: r.limit("AUTHARA_RATE_LIMIT_SIGNUP_IP", 3, "1h"),
        signup_email: r.limit("AUTHARA_RATE_LIMIT_SIGNUP_EMAIL", 3, "24h"),
        password_reset_ip: r.limit("AUTHARA_RATE_LIMIT_PASSWORD_RESET_IP", 5, "1h"),
        password_reset_email: r.limit("AUTHARA_RATE_LIMIT_PASSWORD_RESET_EMAIL", 3, "24h"),
        passkey_login_ip: r.limit("AUTHARA_RATE_LIMIT_PASSKEY_LOGIN_IP", 30, "10m"),
        challenge_verify_ip: r.limit("AUTHARA_RATE_LIMIT_CHALLENGE_VERIFY_IP", 30, "10m"),
        challenge_resend_ip: r.limit("AUTHARA_RATE_LIMIT_CHALLENGE_RESEND_IP", 10, "1h"),
        cleanup_every: r.positive("AUTHARA_RATE_LIMIT_CLEANUP_EVERY", 200),
        max_entries: r.positive("AUTHARA_RATE_LIMIT_MAX_ENTRIES", 50_000),
    };

    let webhooks = build_webhooks(r, prod);
    let allowlist_enabled = r.bool("AUTHARA_ACCESS_POLICY_ALLOWLIST_ENABLED", false);
    let admin_audit_retention_days = r.positive("AUTHARA_ADMIN_AUDIT_RETENTION_DAYS", 180);

    let challenge = ChallengeConfig {
        enabled: r.bool("AUTHARA_CHALLENGE_ENABLED", false),
        ttl: r.duration("AUTHARA_CHALLENGE_TTL", "30m"),
        code_ttl: r.duration("AUTHARA_CHALLENGE_VERIFICATION_CODE_TTL", "10m"),
        max_attempts: r.positive("AUTHARA_CHALLENGE_MAX_ATTEMPTS", 5),
        max_resends: r.non_negative("AUTHARA_CHALLENGE_MAX_RESENDS", 3),
        min_resend_interval: r.duration_non_negative("AUTHARA_CHALLENGE_MIN_RESEND_INTERVAL", "30s"),
    };
    r.check(
        challenge.code_ttl <= challenge.ttl,
        "AUTHARA_CHALLENGE_VERIFICATION_CODE_TTL: must not exceed AUTHARA_CHALLENGE_TTL",
    );

    let email = build_email(r, prod);
    if prod && challenge.enabled && matches!(email.provider, EmailProvider::Noop) {
        r.errors.push(
            "AUTHARA_EMAIL_PROVIDER: must not be noop when APP_ENV=prod and AUTHARA_CHALLENGE_ENABLED=true".to_owned(),
        );
    }

    let http = HttpConfig {
        request_timeout: r.duration("AUTHARA_REQUEST_TIMEOUT", "30s"),
        shutdown_timeout: r.duration("AUTHARA_SHUTDOWN_TIMEOUT", "10s"),
        max_body_bytes: r.positive("AUTHARA_MAX_BODY_BYTES", 65_536) as usize,
    };

    let password_hash = HashParams {
        memory_kib: r.positive("AUTHARA_PASSWORD_HASH_MEMORY_KIB", 65_536),
        iterations: r.positive("AUTHARA_PASSWORD_HASH_ITERATIONS", 3),
        parallelism: r.positive("AUTHARA_PASSWORD_HASH_PARALLELISM", 4),
    };
    r.check(
        password_hash.memory_kib >= 8 * password_hash.parallelism,
        "AUTHARA_PASSWORD_HASH_MEMORY_KIB: must be at least 8 x AUTHARA_PASSWORD_HASH_PARALLELISM",
    );

    let ui = UiConfig {
        product_name: r.string("AUTHARA_UI_PRODUCT_NAME", "authara"),
        primary_color: r.string("AUTHARA_UI_PRIMARY_COLOR", "#4f46e5").to_ascii_lowercase(),
    };
    r.check(
        ui.primary_color.len() == 7
            && ui.primary_color.starts_with('#')
            && ui.primary_color[1..].bytes().all(|b| b.is_ascii_hexdigit()),
        format!("AUTHARA_UI_PRIMARY_COLOR: expected #rrggbb, got {:?}", ui.primary_color),
    );
    r.check(
        ui.product_name.chars().count() <= 60 && !ui.product_name.chars().any(char::is_control),
        "AUTHARA_UI_PRODUCT_NAME: at most 60 printable characters",
    );

    Config {
        ui,
        password_hash,
        app_env,
        log_level,
        bind,
        data_dir,
        database,
        pool,
        cache,
        public_url,
        default_return_to,
        trust_proxy_headers,
        jwt,
        session,
        org_mode,
        organizations,
        internal_api_token,
        oauth_google_client_id,
        rate_limits,
        webhooks,
        allowlist_enabled,
        admin_audit_retention_days,
        challenge,
        email,
        http,
    }
}

fn build_database(r: &mut Reader<'_>, data_dir: &std::path::Path, prod: bool) -> DatabaseConfig {
    let Some(host) = r.raw("POSTGRESQL_HOST") else {
        return DatabaseConfig::Sqlite { path: data_dir.join("authara.db") };
    };
    let why = " when POSTGRESQL_HOST is set";
    let port = if r.raw("POSTGRESQL_PORT").is_none() {
        r.errors.push(format!("POSTGRESQL_PORT is required{why}"));
        5432
    } else {
        r.port("POSTGRESQL_PORT", 5432)
    };
    let database = r.required("POSTGRESQL_DATABASE", why);
    let username = r.required("POSTGRESQL_USERNAME", why);
    // Socket and trust setups have no password; an empty one is allowed.
    let password = r.secret("POSTGRESQL_PASSWORD").unwrap_or_default();
    let schema = r.string("POSTGRESQL_SCHEMA", "authara");
    r.check(
        is_identifier(&schema),
        format!("POSTGRESQL_SCHEMA: {schema:?} must be a lowercase SQL identifier ([a-z_][a-z0-9_]*)"),
    );
    let timezone = r.string("POSTGRESQL_TIMEZONE", "UTC");
    let log_sql = r.bool("POSTGRESQL_LOG_SQL", false);
    r.check(!(prod && log_sql), "POSTGRESQL_LOG_SQL: must be false when APP_ENV=prod");
    DatabaseConfig::Postgres(PostgresConfig { host, port, database, username, password, schema, timezone, log_sql })
}

fn build_jwt(r: &mut Reader<'_>, prod: bool) -> JwtConfig {
    let issuer = match r.raw("AUTHARA_JWT_ISSUER") {
        Some(i) => i,
        None if prod => r.required("AUTHARA_JWT_ISSUER", " when APP_ENV=prod"),
        None => "authara".to_owned(),
    };
    let algorithm = match r.string("AUTHARA_JWT_ALGORITHM", "HS256").to_ascii_uppercase().as_str() {
        "HS256" => JwtAlgorithm::Hs256,
        "EDDSA" => JwtAlgorithm::EdDsa,
        other => {
            r.errors.push(format!("AUTHARA_JWT_ALGORITHM: expected HS256 or EdDSA, got {other:?}"));
            JwtAlgorithm::Hs256
        }
    };
    let ed25519_pem = r.secret("AUTHARA_JWT_EDDSA_PRIVATE_KEY");
    if prod && algorithm == JwtAlgorithm::EdDsa && ed25519_pem.is_none() {
        r.errors.push(
            "AUTHARA_JWT_EDDSA_PRIVATE_KEY is required when APP_ENV=prod and AUTHARA_JWT_ALGORITHM=EdDSA".to_owned(),
        );
    }
    let keys = match r.secret("AUTHARA_JWT_KEYS") {
        Some(raw) => {
            let keys = parse_jwt_keys(raw.expose_secret(), &mut r.errors);
            let active_kid = r.required("AUTHARA_JWT_ACTIVE_KEY_ID", " when AUTHARA_JWT_KEYS is set");
            if !active_kid.is_empty() && !keys.iter().any(|(k, _)| *k == active_kid) {
                r.errors.push(format!(
                    "AUTHARA_JWT_ACTIVE_KEY_ID: {active_kid:?} is not one of the kids in AUTHARA_JWT_KEYS"
                ));
            }
            JwtKeySource::Configured { keys, active_kid }
        }
        None if prod => {
            r.errors.push(
                "AUTHARA_JWT_KEYS is required when APP_ENV=prod (generate one with `authara keys generate`)".to_owned(),
            );
            JwtKeySource::DevGenerated
        }
        None => JwtKeySource::DevGenerated,
    };
    let minutes = r.positive("AUTHARA_ACCESS_TOKEN_TTL_MINUTES", 10);
    JwtConfig { issuer, algorithm, keys, ed25519_pem, access_ttl: Duration::from_secs(u64::from(minutes) * 60) }
}

/// `kid:base64,kid2:base64`, standard padded base64, each key at least 32 bytes.
fn parse_jwt_keys(raw: &str, errors: &mut Vec<String>) -> Vec<(String, SecretBytes)> {
    let mut keys: Vec<(String, SecretBytes)> = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((kid, b64)) = entry.split_once(':') else {
            errors.push("AUTHARA_JWT_KEYS: each entry must be kid:base64secret".to_owned());
            continue;
        };
        let kid = kid.trim();
        if kid.is_empty() {
            errors.push("AUTHARA_JWT_KEYS: a key has an empty kid".to_owned());
            continue;
        }
        match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
            Ok(bytes) if bytes.len() >= 32 => {
                if keys.iter().any(|(k, _)| k == kid) {
                    errors.push(format!("AUTHARA_JWT_KEYS: kid {kid:?} is listed twice"));
                } else {
                    keys.push((kid.to_owned(), SecretBytes::new(bytes)));
                }
            }
            Ok(bytes) => {
                errors.push(format!("AUTHARA_JWT_KEYS: key {kid:?} is {} bytes; at least 32 are required", bytes.len()))
            }
            Err(_) => errors.push(format!("AUTHARA_JWT_KEYS: key {kid:?} is not valid standard base64")),
        }
    }
    if keys.is_empty() && !errors.iter().any(|e| e.starts_with("AUTHARA_JWT_KEYS")) {
        errors.push("AUTHARA_JWT_KEYS: no key given".to_owned());
    }
    keys
}

fn build_session(r: &mut Reader<'_>, access_ttl: Duration) -> SessionConfig {
    let session_days = r.positive("AUTHARA_SESSION_TTL_DAYS", 60);
    let refresh_days = r.positive("AUTHARA_REFRESH_TOKEN_TTL_DAYS", 14);
    r.check(refresh_days <= session_days, "AUTHARA_REFRESH_TOKEN_TTL_DAYS: must not exceed AUTHARA_SESSION_TTL_DAYS");
    let refresh_ttl = Duration::from_secs(u64::from(refresh_days) * 86_400);
    r.check(
        access_ttl < refresh_ttl,
        "AUTHARA_ACCESS_TOKEN_TTL_MINUTES: must be shorter than the refresh token lifetime",
    );
    let rotation_raw = r.string("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "24h");
    let rotation = match rotation_raw.to_ascii_lowercase().as_str() {
        "0" | "disabled" | "off" => RotationPolicy::Never,
        "always" => RotationPolicy::Always,
        other => match duration::parse(other) {
            Ok(d) if d.negative => RotationPolicy::Always,
            Ok(d) => RotationPolicy::Every(d.magnitude),
            Err(e) => {
                r.errors
                    .push(format!("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL: expected off, always or a duration: {e}"));
                RotationPolicy::Always
            }
        },
    };
    SessionConfig {
        session_ttl: Duration::from_secs(u64::from(session_days) * 86_400),
        refresh_ttl,
        rotation,
        reuse_grace: r.duration_non_negative("AUTHARA_REFRESH_TOKEN_REUSE_GRACE", "10s"),
    }
}

const WEBHOOK_EVENTS: &[&str] = &[
    "user.created",
    "user.updated",
    "user.deleted",
    "organization.created",
    "organization.updated",
    "organization.deleted",
    "organization.membership.created",
    "organization.membership.updated",
    "organization.membership.deleted",
    "organization.invitation.created",
    "organization.invitation.accepted",
    "organization.invitation.revoked",
];

fn build_webhooks(r: &mut Reader<'_>, prod: bool) -> Option<WebhookConfig> {
    let url = r.raw("AUTHARA_WEBHOOK_URL");
    let secret = r.secret("AUTHARA_WEBHOOK_SECRET");
    let enabled_events = r.csv("AUTHARA_WEBHOOK_ENABLED_EVENTS", WEBHOOK_EVENTS);
    let cfg = WebhookConfig {
        url: url.clone().unwrap_or_default(),
        secret: secret.clone().unwrap_or_default(),
        enabled_events,
        timeout: r.duration("AUTHARA_WEBHOOK_TIMEOUT", "5s"),
        worker_count: r.positive("AUTHARA_WEBHOOK_WORKER_COUNT", 2),
        max_delivery_attempts: r.positive("AUTHARA_WEBHOOK_MAX_DELIVERY_ATTEMPTS", 3),
        processing_stale_after: r.duration("AUTHARA_WEBHOOK_PROCESSING_STALE_AFTER", "2m"),
        stale_reaper_interval: r.duration("AUTHARA_WEBHOOK_STALE_REAPER_INTERVAL", "1m"),
        delivered_retention: r.duration("AUTHARA_WEBHOOK_DELIVERED_RETENTION", "24h"),
        failed_retention: r.duration("AUTHARA_WEBHOOK_FAILED_RETENTION", "720h"),
        cleanup_interval: r.duration("AUTHARA_WEBHOOK_CLEANUP_INTERVAL", "1h"),
        maintenance_batch_size: r.positive("AUTHARA_WEBHOOK_MAINTENANCE_BATCH_SIZE", 1000),
    };
    r.check(
        cfg.timeout < cfg.processing_stale_after,
        "AUTHARA_WEBHOOK_TIMEOUT: must be shorter than AUTHARA_WEBHOOK_PROCESSING_STALE_AFTER",
    );
    match (url, secret) {
        (None, None) => None,
        (Some(u), Some(s)) => {
            if let Err(e) = validate_http_url(&u) {
                r.errors.push(format!("AUTHARA_WEBHOOK_URL: {e}"));
            }
            if prod && s.expose_secret().chars().count() < 32 {
                r.errors.push("AUTHARA_WEBHOOK_SECRET: must be at least 32 characters when APP_ENV=prod".to_owned());
            }
            Some(cfg)
        }
        _ => {
            r.errors.push("AUTHARA_WEBHOOK_URL and AUTHARA_WEBHOOK_SECRET must be set together".to_owned());
            None
        }
    }
}

fn build_email(r: &mut Reader<'_>, prod: bool) -> EmailConfig {
    let provider = match r.string("AUTHARA_EMAIL_PROVIDER", "noop").to_ascii_lowercase().as_str() {
        "noop" => EmailProvider::Noop,
        "smtp" => {
            let why = " when AUTHARA_EMAIL_PROVIDER=smtp";
            let from = r.required("AUTHARA_EMAIL_FROM", why);
            if !from.is_empty() && (from.contains(['\r', '\n']) || !from.contains('@')) {
                r.errors.push(format!("AUTHARA_EMAIL_FROM: {from:?} is not an email address"));
            }
            let tls = r.bool("AUTHARA_EMAIL_SMTP_TLS", true);
            r.check(!prod || tls, "AUTHARA_EMAIL_SMTP_TLS: must be true when APP_ENV=prod");
            EmailProvider::Smtp(SmtpConfig {
                from,
                host: r.required("AUTHARA_EMAIL_SMTP_HOST", why),
                port: r.port("AUTHARA_EMAIL_SMTP_PORT", 587),
                username: r.raw("AUTHARA_EMAIL_SMTP_USERNAME"),
                password: r.secret("AUTHARA_EMAIL_SMTP_PASSWORD"),
                tls,
                timeout: r.duration("AUTHARA_EMAIL_SMTP_TIMEOUT", "10s"),
            })
        }
        other => {
            r.errors.push(format!("AUTHARA_EMAIL_PROVIDER: expected noop or smtp, got {other:?}"));
            EmailProvider::Noop
        }
    };
    EmailConfig {
        provider,
        worker_count: r.positive("AUTHARA_EMAIL_WORKER_COUNT", 2),
        poll_interval: r.duration("AUTHARA_EMAIL_WORKER_POLL_INTERVAL", "2s"),
        job_max_attempts: r.positive("AUTHARA_EMAIL_JOB_MAX_ATTEMPTS", 10),
        cleanup_sent_after: r.duration("AUTHARA_EMAIL_CLEANUP_SENT_AFTER", "720h"),
        cleanup_failed_after: r.duration("AUTHARA_EMAIL_CLEANUP_FAILED_AFTER", "2160h"),
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && s.len() <= 63
}

/// `scheme://host[:port]` with http(s), no path, query or trailing slash (behavior.md §0.4).
fn validate_public_url(u: &str) -> Result<(), String> {
    validate_http_url(u)?;
    let after_scheme = u.split_once("://").map(|(_, rest)| rest).unwrap_or_default();
    if after_scheme.contains(['/', '?', '#']) {
        return Err(format!("{u:?} must be scheme://host[:port] without a path or trailing slash (and without /auth)"));
    }
    Ok(())
}

fn validate_http_url(u: &str) -> Result<(), String> {
    let Some((scheme, rest)) = u.split_once("://") else {
        return Err(format!("{u:?} is not an absolute URL"));
    };
    if !matches!(scheme, "http" | "https") {
        return Err(format!("{u:?} must use http or https"));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("{u:?} has no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<(Config, Vec<String>), ConfigErrors> {
        let vars = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        load_from_map(&vars)
    }

    #[test]
    fn no_configuration_is_the_embedded_dev_default() {
        let (c, warnings) = load(&[]).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(c.app_env, AppEnv::Dev);
        assert_eq!(c.bind.to_string(), "0.0.0.0:8080");
        assert!(matches!(&c.database, DatabaseConfig::Sqlite { path } if path.ends_with("data/authara.db")));
        assert!(matches!(c.jwt.keys, JwtKeySource::DevGenerated));
        assert_eq!(c.session.rotation, RotationPolicy::Every(Duration::from_secs(86_400)));
        assert_eq!(c.session.reuse_grace, Duration::from_secs(10));
        assert!(!c.secure_cookies());
        assert_eq!(c.log_level, "debug");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let errors = load(&[
            ("APP_ENV", "staging"),
            ("LOG_LEVEL", "loud"),
            ("AUTHARA_DB_MAX_OPEN_CONNS", "0"),
            ("AUTHARA_JWT_KEYS", "a:c2hvcnQ=,b"),
            ("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "sometimes"),
            ("AUTHARA_SESSION_TTL_DAYS", "7"),
            ("AUTHARA_REFRESH_TOKEN_TTL_DAYS", "30"),
            ("AUTHARA_CHALLENGE_TTL", "5m"),
            ("AUTHARA_WEBHOOK_URL", "https://hooks.example.com/x"),
            ("AUTHARA_WEBHOOK_ENABLED_EVENTS", "user.created,user.created,user.exploded"),
            ("AUTHARA_OAUTH_PROVIDERS", "google"),
            ("PUBLIC_URL", "https://example.com/auth"),
            ("AUTHARA_DEFAULT_RETURN_TO", "//evil.com"),
            ("AUTHARA_TRUST_PROXY_HEADERS", "yes please"),
            ("POSTGRESQL_HOST", "db"),
            ("POSTGRESQL_PORT", "70000"),
            ("POSTGRESQL_SCHEMA", "Bad-Schema"),
        ])
        .unwrap_err()
        .0;
        let expected = [
            "APP_ENV",
            "LOG_LEVEL",
            "AUTHARA_DB_MAX_OPEN_CONNS",
            "key \"a\" is 5 bytes",
            "each entry must be kid:base64secret",
            "AUTHARA_JWT_ACTIVE_KEY_ID is required",
            "AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL",
            "AUTHARA_REFRESH_TOKEN_TTL_DAYS: must not exceed",
            "AUTHARA_CHALLENGE_VERIFICATION_CODE_TTL: must not exceed",
            "AUTHARA_WEBHOOK_URL and AUTHARA_WEBHOOK_SECRET must be set together",
            "\"user.created\" is listed twice",
            "unknown value \"user.exploded\"",
            "AUTHARA_OAUTH_GOOGLE_CLIENT_ID is required",
            "PUBLIC_URL",
            "AUTHARA_DEFAULT_RETURN_TO",
            "AUTHARA_TRUST_PROXY_HEADERS",
            "POSTGRESQL_PORT: must be a port",
            "POSTGRESQL_DATABASE is required",
            "POSTGRESQL_USERNAME is required",
            "POSTGRESQL_SCHEMA",
        ];
        for e in expected {
            assert!(errors.iter().any(|got| got.contains(e)), "missing {e:?} in {errors:#?}");
        }
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    }

    #[test]
    fn prod_requires_keys_public_url_and_issuer_and_secures_cookies() {
        let errors = load(&[("APP_ENV", "prod")]).unwrap_err().0;
        for e in ["AUTHARA_JWT_KEYS is required", "PUBLIC_URL is required", "AUTHARA_JWT_ISSUER is required"] {
            assert!(errors.iter().any(|got| got.contains(e)), "missing {e:?} in {errors:#?}");
        }
        let key = "k1:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=";
        let (c, _) = load(&[
            ("APP_ENV", "prod"),
            ("AUTHARA_JWT_KEYS", key),
            ("AUTHARA_JWT_ACTIVE_KEY_ID", "k1"),
            ("AUTHARA_JWT_ISSUER", "https://example.com"),
            ("PUBLIC_URL", "https://example.com"),
        ])
        .unwrap();
        assert!(c.secure_cookies());
        assert_eq!(c.log_level, "info");
        assert!(
            matches!(&c.jwt.keys, JwtKeySource::Configured { active_kid, keys } if active_kid == "k1" && keys.len() == 1)
        );
    }

    #[test]
    fn rotation_interval_forms() {
        for (raw, want) in [
            ("off", RotationPolicy::Never),
            ("disabled", RotationPolicy::Never),
            ("0", RotationPolicy::Never),
            ("always", RotationPolicy::Always),
            ("-1s", RotationPolicy::Always),
            ("15m", RotationPolicy::Every(Duration::from_secs(900))),
        ] {
            let (c, _) = load(&[("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", raw)]).unwrap();
            assert_eq!(c.session.rotation, want, "{raw}");
        }
    }

    #[test]
    fn unknown_variables_that_look_like_ours_are_warned_about() {
        let (_, warnings) = load(&[("AUTHARA_JWT_KEY", "x"), ("POSTGRESQL_PASSWORD_FILE", "/dev/null")]).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("AUTHARA_JWT_KEY "), "{warnings:?}");
    }

    #[test]
    fn secrets_can_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        let (c, _) = load(&[("AUTHARA_INTERNAL_API_TOKEN_FILE", path.to_str().unwrap())]).unwrap();
        assert_eq!(c.internal_api_token.unwrap().expose_secret(), "s3cret");
    }

    #[test]
    fn the_variable_list_matches_contract_config_yaml() {
        let yaml = include_str!("../../../../contract/config.yaml");
        let mut contract: Vec<&str> =
            yaml.lines().filter_map(|l| l.trim().strip_prefix("- name:")).map(str::trim).collect();
        contract.sort_unstable();
        let mut ours: Vec<&str> = KNOWN_VARIABLES.iter().map(|(n, _)| *n).collect();
        ours.sort_unstable();
        assert_eq!(ours, contract);
        let docs = include_str!("../../../../docs/configuration.md");
        for (name, _) in EXTRA_VARIABLES {
            assert!(docs.contains(name), "{name} is documented in docs/configuration.md");
        }
    }
}
