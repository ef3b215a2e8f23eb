//! Reading the environment into a [`Config`], area by area, collecting every problem before
//! giving up.

use std::collections::HashMap;

use super::reader::Reader;
use super::{
    Config, access, all_vars, backup, cache, challenge, database, email, jwt, limits, mfa, oauth, organizations,
    password, server, session, sites, webhooks,
};

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
    let mut r = Reader::new(vars);
    let config = build(&mut r);
    if r.errors.is_empty() {
        let warnings = unknown_variables(vars, &config.oauth.providers);
        Ok((config, warnings))
    } else {
        Err(ConfigErrors(r.errors))
    }
}

/// Warnings for `AUTHARA_*` / `POSTGRESQL_*` variables (or their `_FILE` forms) that no area
/// declares; `AUTHARA_TEST_*` belong to the test suites.
/// The variables of each listed OpenID provider (`AUTHARA_OAUTH_<NAME>_*`) are known too.
fn unknown_variables(vars: &HashMap<String, String>, providers: &[oauth::ProviderConfig]) -> Vec<String> {
    let mut warnings: Vec<String> = vars
        .keys()
        .filter(|k| k.starts_with("AUTHARA_") || k.starts_with("POSTGRESQL_"))
        .filter(|k| !k.starts_with("AUTHARA_TEST_"))
        .filter(|k| {
            let base = k.strip_suffix("_FILE").unwrap_or(k);
            !all_vars().any(|v| v.name == *k || v.name == base) && !oauth::is_provider_var(k, providers)
        })
        .map(|k| format!("unknown variable {k} is ignored (typo?)"))
        .collect();
    warnings.sort();
    warnings
}

/// Every area in turn; the cross-area rules are in the area that owns the checked variable.
fn build(r: &mut Reader<'_>) -> Config {
    let server = server::build(r);
    let prod = server.prod();
    let database = database::build(r, &server.data_dir, prod);
    let pool = database::build_pool(r);
    let cache = cache::build(r);
    let jwt = jwt::build(r, prod);
    let session = session::build(r, jwt.access_ttl);
    let (org_mode, organizations) = organizations::build(r);
    let access = access::build(r, prod);
    let oauth = oauth::build(r, prod);
    let rate_limits = limits::build(r);
    let webhooks = webhooks::build(r, prod);
    let challenge = challenge::build(r);
    let email = email::build(r, prod, challenge.enabled);
    let (password_hash, password_hash_queue) = password::build(r);
    let backup = backup::build(r);
    let mfa = mfa::build(r);
    let sites = sites::build(r, prod, &server.public_url);
    Config {
        app_env: server.app_env,
        log_level: server.log_level,
        bind: server.bind,
        data_dir: server.data_dir,
        database,
        pool,
        cache,
        public_url: server.public_url,
        default_return_to: server.default_return_to,
        trust_proxy_headers: server.trust_proxy_headers,
        jwt,
        session,
        org_mode,
        organizations,
        internal_api_token: access.internal_api_token,
        oauth,
        rate_limits,
        webhooks,
        allowlist_enabled: access.allowlist_enabled,
        admin_audit_retention_days: access.admin_audit_retention_days,
        challenge,
        email,
        http: server.http,
        ui: server.ui,
        password_hash,
        password_hash_queue,
        backup,
        mfa,
        sites,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{
        AppEnv, CacheConfig, DatabaseConfig, EmailProvider, HashParams, JwtKeySource, RotationPolicy, SmtpConfig,
        SmtpTls,
    };

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
    fn every_declared_variable_is_known_and_its_default_is_valid() {
        // Every declared variable set to its default (or a valid value where it has none), with
        // every optional part switched on: the defaults parse, nothing is reported unknown.
        let mut vars: HashMap<String, String> = all_vars().map(|v| (v.name.to_owned(), v.default.to_owned())).collect();
        let key = "k1:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=";
        for (name, value) in [
            ("LOG_LEVEL", "info"),
            ("PUBLIC_URL", "https://example.com"),
            ("POSTGRESQL_HOST", "/run/postgresql"),
            ("POSTGRESQL_PORT", "5432"),
            ("POSTGRESQL_DATABASE", "authara"),
            ("POSTGRESQL_USERNAME", "authara"),
            ("AUTHARA_CACHE_PROVIDER", "redis"),
            ("AUTHARA_JWT_KEYS", key),
            ("AUTHARA_JWT_ACTIVE_KEY_ID", "k1"),
            ("AUTHARA_OAUTH_PROVIDERS", "google"),
            ("AUTHARA_OAUTH_GOOGLE_CLIENT_ID", "client"),
            ("AUTHARA_WEBHOOK_URL", "https://hooks.example.com/x"),
            ("AUTHARA_WEBHOOK_SECRET", "0123456789abcdef0123456789abcdef"),
            ("AUTHARA_EMAIL_PROVIDER", "smtp"),
            ("AUTHARA_EMAIL_FROM", "auth@example.com"),
            ("AUTHARA_EMAIL_SMTP_HOST", "smtp.example.com"),
        ] {
            vars.insert(name.to_owned(), value.to_owned());
        }
        let (c, warnings) = load_from_map(&vars).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(matches!(c.database, DatabaseConfig::Postgres(_)));
        assert!(matches!(c.cache, CacheConfig::Redis { port: 6379, db: 0, .. }));
        assert!(matches!(c.email.provider, EmailProvider::Smtp(SmtpConfig { port: 587, tls: true, .. })));
        assert!(c.webhooks.is_some());
        assert_eq!(c.password_hash, HashParams::default());
        assert_eq!(c.rate_limits.login_ip.limit, 5);
        assert_eq!(c.http.max_body_bytes, 65_536);
    }

    /// The prod settings every check below starts from (valid as they are).
    fn prod_vars() -> Vec<(&'static str, &'static str)> {
        vec![
            ("APP_ENV", "prod"),
            ("AUTHARA_JWT_KEYS", "k1:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="),
            ("AUTHARA_JWT_ACTIVE_KEY_ID", "k1"),
            ("AUTHARA_JWT_ISSUER", "https://app.example.com"),
            ("PUBLIC_URL", "https://app.example.com"),
        ]
    }

    fn prod_with(extra: &[(&'static str, &'static str)]) -> Result<(Config, Vec<String>), ConfigErrors> {
        let mut vars = prod_vars();
        vars.extend_from_slice(extra);
        load(&vars)
    }

    #[test]
    fn prod_webhooks_need_https_unless_plain_http_is_allowed() {
        let secret = ("AUTHARA_WEBHOOK_SECRET", "0123456789abcdef0123456789abcdef");
        let e = prod_with(&[("AUTHARA_WEBHOOK_URL", "http://hooks.internal/x"), secret]).unwrap_err();
        assert!(e.0.iter().any(|m| m.starts_with("AUTHARA_WEBHOOK_URL: must use https")), "{e}");
        assert!(!e.to_string().contains("hooks.internal"), "the URL (it may hold a key) is not echoed: {e}");
        let (c, _) = prod_with(&[
            ("AUTHARA_WEBHOOK_URL", "http://hooks.internal/x"),
            secret,
            ("AUTHARA_WEBHOOK_ALLOW_HTTP", "true"),
        ])
        .unwrap();
        assert!(c.webhooks.unwrap().insecure_http_in_prod);
        let (c, _) = prod_with(&[("AUTHARA_WEBHOOK_URL", "https://hooks.example.com/x"), secret]).unwrap();
        assert!(!c.webhooks.unwrap().insecure_http_in_prod);
        let (c, _) =
            load(&[("AUTHARA_WEBHOOK_URL", "http://127.0.0.1:9/x"), ("AUTHARA_WEBHOOK_SECRET", "short")]).unwrap();
        assert!(!c.webhooks.unwrap().insecure_http_in_prod, "dev takes plain http without a word");
    }

    #[test]
    fn prod_needs_an_internal_api_token_of_32_characters() {
        let e = prod_with(&[("AUTHARA_INTERNAL_API_TOKEN", "0123456789abcdef0123456789abcde")]).unwrap_err();
        assert!(e.0.iter().any(|m| m.starts_with("AUTHARA_INTERNAL_API_TOKEN: must be at least 32 characters")), "{e}");
        assert!(!e.to_string().contains("0123456789abcdef"), "the token is not echoed: {e}");
        assert!(prod_with(&[("AUTHARA_INTERNAL_API_TOKEN", "0123456789abcdef0123456789abcdef")]).is_ok());
        assert!(prod_with(&[]).is_ok(), "no token: every internal call is refused");
        assert!(load(&[("AUTHARA_INTERNAL_API_TOKEN", "dev")]).is_ok(), "dev takes a short one");
    }

    #[test]
    fn smtp_tls_mode_follows_the_port_unless_named() {
        let smtp = |extra: &[(&'static str, &'static str)]| {
            let mut vars = vec![
                ("AUTHARA_EMAIL_PROVIDER", "smtp"),
                ("AUTHARA_EMAIL_FROM", "auth@example.com"),
                ("AUTHARA_EMAIL_SMTP_HOST", "smtp.example.com"),
            ];
            vars.extend_from_slice(extra);
            load(&vars).map(|(c, _)| match c.email.provider {
                EmailProvider::Smtp(s) => s.tls_mode,
                EmailProvider::Noop => unreachable!("smtp was configured"),
            })
        };
        assert_eq!(smtp(&[]).unwrap(), Some(SmtpTls::StartTls));
        assert_eq!(smtp(&[("AUTHARA_EMAIL_SMTP_PORT", "465")]).unwrap(), Some(SmtpTls::Implicit));
        assert_eq!(
            smtp(&[("AUTHARA_EMAIL_SMTP_PORT", "2465"), ("AUTHARA_EMAIL_SMTP_TLS_MODE", "implicit")]).unwrap(),
            Some(SmtpTls::Implicit)
        );
        assert_eq!(
            smtp(&[("AUTHARA_EMAIL_SMTP_PORT", "465"), ("AUTHARA_EMAIL_SMTP_TLS_MODE", "STARTTLS")]).unwrap(),
            Some(SmtpTls::StartTls)
        );
        assert_eq!(smtp(&[("AUTHARA_EMAIL_SMTP_TLS", "false")]).unwrap(), None);
        let e = smtp(&[("AUTHARA_EMAIL_SMTP_TLS", "false"), ("AUTHARA_EMAIL_SMTP_TLS_MODE", "implicit")]).unwrap_err();
        assert!(e.0.iter().any(|m| m.starts_with("AUTHARA_EMAIL_SMTP_TLS_MODE: ")), "{e}");
        for tls in ["true", "false"] {
            let e = smtp(&[("AUTHARA_EMAIL_SMTP_TLS", tls), ("AUTHARA_EMAIL_SMTP_TLS_MODE", "ssl")]).unwrap_err();
            assert!(e.0.iter().any(|m| m.contains("expected auto, starttls or implicit")), "{e}");
        }
    }

    #[test]
    fn the_smtp_ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (not_pem, missing) = (dir.path().join("ca.txt"), dir.path().join("absent.pem"));
        std::fs::write(&not_pem, "not a certificate").unwrap();
        let corrupt = dir.path().join("corrupt.pem");
        std::fs::write(&corrupt, "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n").unwrap();
        for path in [&not_pem, &missing, &corrupt] {
            let e = load(&[
                ("AUTHARA_EMAIL_PROVIDER", "smtp"),
                ("AUTHARA_EMAIL_FROM", "auth@example.com"),
                ("AUTHARA_EMAIL_SMTP_HOST", "smtp.example.com"),
                ("AUTHARA_EMAIL_SMTP_CA_FILE", path.to_str().unwrap()),
            ])
            .unwrap_err();
            assert!(e.0.iter().any(|m| m.starts_with("AUTHARA_EMAIL_SMTP_CA_FILE: ")), "{e}");
        }
    }
}
