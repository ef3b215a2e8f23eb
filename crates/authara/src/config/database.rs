//! The store: embedded SQLite by default, PostgreSQL when `POSTGRESQL_HOST` is set, and the
//! connection pool.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::reader::Reader;
use super::server::APP_ENV;
use super::{SecretString, declare_vars};

declare_vars! {
    /// PostgreSQL host, or a directory holding its Unix socket when it starts with `/`; unset means embedded SQLite.
    HOST = contract("POSTGRESQL_HOST", "");
    /// PostgreSQL port (required with `POSTGRESQL_HOST`).
    PORT = contract("POSTGRESQL_PORT", "");
    /// PostgreSQL database (required with `POSTGRESQL_HOST`).
    DATABASE = contract("POSTGRESQL_DATABASE", "");
    /// PostgreSQL user (required with `POSTGRESQL_HOST`).
    USERNAME = contract("POSTGRESQL_USERNAME", "");
    /// PostgreSQL password (or `POSTGRESQL_PASSWORD_FILE`); may be empty for socket or trust setups.
    PASSWORD = contract("POSTGRESQL_PASSWORD", "");
    /// Schema holding authara's tables, a lowercase SQL identifier.
    SCHEMA = contract("POSTGRESQL_SCHEMA", "authara");
    /// Session time zone.
    TIMEZONE = contract("POSTGRESQL_TIMEZONE", "UTC");
    /// Log every SQL statement (dev only).
    LOG_SQL = contract("POSTGRESQL_LOG_SQL", "false");
    /// Pool size.
    MAX_OPEN_CONNS = contract("AUTHARA_DB_MAX_OPEN_CONNS", "40");
    /// Idle connections kept (validated; the pool bounds idle connections by `AUTHARA_DB_CONN_MAX_IDLE_TIME`).
    MAX_IDLE_CONNS = contract("AUTHARA_DB_MAX_IDLE_CONNS", "20");
    /// Connection lifetime.
    CONN_MAX_LIFETIME = contract("AUTHARA_DB_CONN_MAX_LIFETIME", "30m");
    /// Idle connection lifetime.
    CONN_MAX_IDLE_TIME = contract("AUTHARA_DB_CONN_MAX_IDLE_TIME", "5m");
}

/// Which store, and how to reach it.
#[derive(Debug, Clone)]
pub enum DatabaseConfig {
    /// The embedded default: `<data_dir>/authara.db`.
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// PostgreSQL (`POSTGRESQL_HOST` is set).
    Postgres(PostgresConfig),
}

/// `POSTGRESQL_*`.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// Host name, or a directory holding the server's Unix socket when it starts with `/`.
    pub host: String,
    /// `POSTGRESQL_PORT`.
    pub port: u16,
    /// `POSTGRESQL_DATABASE`.
    pub database: String,
    /// `POSTGRESQL_USERNAME`.
    pub username: String,
    /// `POSTGRESQL_PASSWORD`, empty when not given.
    pub password: SecretString,
    /// `POSTGRESQL_SCHEMA`.
    pub schema: String,
    /// `POSTGRESQL_TIMEZONE`.
    pub timezone: String,
    /// `POSTGRESQL_LOG_SQL`.
    pub log_sql: bool,
}

/// `AUTHARA_DB_*`: the connection pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// `AUTHARA_DB_MAX_OPEN_CONNS`.
    pub max_open: u32,
    /// `AUTHARA_DB_MAX_IDLE_CONNS`.
    pub max_idle: u32,
    /// `AUTHARA_DB_CONN_MAX_LIFETIME`.
    pub max_lifetime: Duration,
    /// `AUTHARA_DB_CONN_MAX_IDLE_TIME`.
    pub max_idle_time: Duration,
}

/// Reads the store's settings; SQLite lives in `data_dir`.
pub(super) fn build(r: &mut Reader<'_>, data_dir: &Path, prod: bool) -> DatabaseConfig {
    let Some(host) = r.raw(&HOST) else {
        return DatabaseConfig::Sqlite { path: data_dir.join("authara.db") };
    };
    let why = format!(" when {} is set", HOST.name);
    let port = if r.raw(&PORT).is_none() {
        r.error(format!("{} is required{why}", PORT.name));
        5432
    } else {
        r.port(&PORT)
    };
    let database = r.required(&DATABASE, &why);
    let username = r.required(&USERNAME, &why);
    // Socket and trust setups have no password; an empty one is allowed.
    let password = r.secret(&PASSWORD).unwrap_or_default();
    let schema = r.string(&SCHEMA);
    r.ensure(
        is_identifier(&schema),
        &SCHEMA,
        format!("{schema:?} must be a lowercase SQL identifier ([a-z_][a-z0-9_]*)"),
    );
    let timezone = r.string(&TIMEZONE);
    let log_sql = r.bool(&LOG_SQL);
    r.ensure(!(prod && log_sql), &LOG_SQL, format!("must be false when {}=prod", APP_ENV.name));
    DatabaseConfig::Postgres(PostgresConfig { host, port, database, username, password, schema, timezone, log_sql })
}

/// Reads the pool's settings.
pub(super) fn build_pool(r: &mut Reader<'_>) -> PoolConfig {
    let pool = PoolConfig {
        max_open: r.positive(&MAX_OPEN_CONNS),
        max_idle: r.non_negative(&MAX_IDLE_CONNS),
        max_lifetime: r.duration_non_negative(&CONN_MAX_LIFETIME),
        max_idle_time: r.duration_non_negative(&CONN_MAX_IDLE_TIME),
    };
    r.ensure(pool.max_idle <= pool.max_open, &MAX_IDLE_CONNS, format!("must not exceed {}", MAX_OPEN_CONNS.name));
    pool
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && s.len() <= 63
}
