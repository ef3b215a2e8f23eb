//! One store API over SQLite (the embedded default) and PostgreSQL.
//!
//! Each query is plain SQL written once next to its function; `on_db!` and `on_tx!` (below) expand
//! it once per engine so that both drivers type-check it. Where the dialects differ, two
//! statements sit side by side in one `match` with a comment saying why.

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod backup;
pub mod challenges;
pub mod events;
pub mod import;
pub mod invitations;
pub mod mfa;
pub mod migrate;
pub mod org_mode;
pub mod organizations;
pub mod outbox;
pub mod passkeys;
pub mod providers;
pub mod refresh;
pub mod retention;
pub mod sessions;
pub mod webhooks;

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::ConnectOptions as _;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::config::{Config, DatabaseConfig, PostgresConfig};

/// Errors of the store layer. "Not found" is not an error here: reads return `Option`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint was violated.
    #[error("unique constraint violated")]
    Conflict,
    /// The database is unreachable or saturated (pool timeout, busy, closed): answer 503.
    #[error("database unavailable: {0}")]
    Busy(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
    /// A stored value outside its closed set (a role, kind or purpose this build does not know).
    #[error("unexpected stored value: {0}")]
    Corrupt(#[from] crate::domain::UnknownValue),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
            sqlx::Error::Database(db)
                if db.code().and_then(|c| c.parse::<i32>().ok()).is_some_and(|c| matches!(c & 0xff, 5 | 6)) =>
            {
                StoreError::Busy(e)
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => StoreError::Busy(e),
            _ => StoreError::Other(e),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) db: Db,
}

#[derive(Clone, Debug)]
pub(crate) enum Db {
    /// SQLite allows one writer: a single-connection pool for writes beside a reader pool.
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
        /// One read-write connection, opened on first use, for the checkpoints the cleanup runs
        /// between its batches (`store/retention.rs`), away from the writer's.
        checkpoint: SqlitePool,
    },
    Postgres {
        pool: PgPool,
        schema: String,
    },
}

/// Runs `$body` with `$p` bound to a read pool of either engine.
macro_rules! on_db {
    ($store:expr, $p:ident => $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite { read: $p, .. } => $body,
            $crate::store::Db::Postgres { pool: $p, .. } => $body,
        }
    };
}

pub(crate) use on_db;

/// Runs `$body` with `$c` bound to the connection of an open transaction of either engine.
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match &mut $tx.0 {
            $crate::store::TxInner::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::store::TxInner::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

/// An open write transaction. Dropping it without `commit` rolls back. Sealed: only the store's
/// own functions run SQL on it. Work registered with [`Tx::after_commit`] runs once the commit
/// succeeded (never after a rollback).
pub struct Tx(pub(crate) TxInner, Vec<Box<dyn FnOnce() + Send>>);

pub(crate) enum TxInner {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Tx {
    pub async fn commit(self) -> Result<(), StoreError> {
        match self.0 {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        for hook in self.1 {
            hook();
        }
        Ok(())
    }

    /// Runs `hook` after a successful commit (e.g. to wake a worker for what was written).
    pub fn after_commit(&mut self, hook: impl FnOnce() + Send + 'static) {
        self.1.push(Box::new(hook));
    }

    pub fn engine(&self) -> Engine {
        match self.0 {
            TxInner::Sqlite(_) => Engine::Sqlite,
            TxInner::Postgres(_) => Engine::Postgres,
        }
    }
}

/// Creates the database's directory (0700) and file (0600) when they do not exist yet, so that
/// the accounts are readable by this user only; SQLite gives the WAL and shared-memory files
/// the database file's mode.
fn private_file(path: &std::path::Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates `dir` (and its missing parents) readable by this user only (0700), if it does not
/// exist yet: the data directory holds the database and the dev signing keys.
pub fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

impl Store {
    /// Opens the pools for the configured engine. Does not migrate.
    pub async fn connect(config: &Config) -> Result<Self, StoreError> {
        match &config.database {
            DatabaseConfig::Sqlite { path } => {
                private_file(path).map_err(|e| StoreError::Other(sqlx::Error::Io(e)))?;
                Self::open_sqlite(path, config.pool.max_open).await
            }
            DatabaseConfig::Postgres(pg) => Self::open_postgres(pg, config).await,
        }
    }

    /// SQLite settings live here, in one place: WAL, synchronous=NORMAL, 5 s busy timeout,
    /// foreign keys on. No ping before handing out a connection (`test_before_acquire`): a
    /// connection to a local file cannot go stale, and each ping is a round trip to the
    /// connection's thread on every query.
    pub async fn open_sqlite(path: &std::path::Path, max_readers: u32) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            .disable_statement_logging();
        // The writer connects first so that WAL mode is set before readers open the file.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts.clone())
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(max_readers.clamp(1, 16))
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts.clone().read_only(true))
            .await?;
        let checkpoint = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(opts);
        Ok(Store { db: Db::Sqlite { read, write, checkpoint } })
    }

    async fn open_postgres(pg: &PostgresConfig, config: &Config) -> Result<Self, StoreError> {
        let mut opts = PgConnectOptions::new()
            .port(pg.port)
            .database(&pg.database)
            .username(&pg.username)
            // `authara restore` recognizes a running server by this name.
            .application_name("authara")
            .options([("search_path", format!("{},public", pg.schema).as_str()), ("timezone", pg.timezone.as_str())]);
        opts = if pg.host.starts_with('/') { opts.socket(&pg.host) } else { opts.host(&pg.host) };
        if !pg.password.is_empty() {
            opts = opts.password(pg.password.expose_secret());
        }
        if !pg.log_sql {
            opts = opts.disable_statement_logging();
        }
        let mut pool = PgPoolOptions::new()
            .max_connections(config.pool.max_open)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(5));
        // why: sqlx has no "max idle" count; idle connections are closed after the idle time,
        // which bounds them the same way in practice. Zero durations mean "no limit".
        if !config.pool.max_lifetime.is_zero() {
            pool = pool.max_lifetime(config.pool.max_lifetime);
        }
        if !config.pool.max_idle_time.is_zero() {
            pool = pool.idle_timeout(config.pool.max_idle_time);
        }
        // No ping at start (behavior.md §0.1): the schema check is the first query.
        let pool = pool.connect_lazy_with(opts);
        Ok(Store { db: Db::Postgres { pool, schema: pg.schema.clone() } })
    }

    /// A store over PostgreSQL from a connection URL (tests and tools), 8 connections at most.
    pub async fn connect_postgres_url(url: &str, schema: &str) -> Result<Self, StoreError> {
        Self::connect_postgres_url_pool(url, schema, 8).await
    }

    /// [`Self::connect_postgres_url`] with a pool of `max_connections`.
    pub async fn connect_postgres_url_pool(url: &str, schema: &str, max_connections: u32) -> Result<Self, StoreError> {
        let opts = PgConnectOptions::from_str(url)?
            .options([("search_path", format!("{schema},public").as_str())])
            .disable_statement_logging();
        let pool = PgPoolOptions::new().max_connections(max_connections).connect_with(opts).await?;
        Ok(Store { db: Db::Postgres { pool, schema: schema.to_owned() } })
    }

    pub fn engine(&self) -> Engine {
        match self.db {
            Db::Sqlite { .. } => Engine::Sqlite,
            Db::Postgres { .. } => Engine::Postgres,
        }
    }

    /// Opens a write transaction. SQLite takes the write lock up front (`BEGIN IMMEDIATE`):
    /// a deferred read-then-write transaction would otherwise fail with SQLITE_BUSY_SNAPSHOT.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match &self.db {
            Db::Sqlite { write, .. } => Tx(TxInner::Sqlite(write.begin_with("BEGIN IMMEDIATE").await?), Vec::new()),
            Db::Postgres { pool, .. } => Tx(TxInner::Postgres(pool.begin().await?), Vec::new()),
        })
    }

    /// A real round trip to the database, with its latency.
    pub async fn ping(&self, timeout: Duration) -> Result<Duration, StoreError> {
        let started = Instant::now();
        let query = async { on_db!(self, p => sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(p).await) };
        match tokio::time::timeout(timeout, query).await {
            Ok(Ok(_)) => Ok(started.elapsed()),
            Ok(Err(e)) => Err(StoreError::Busy(e)),
            Err(_) => Err(StoreError::Busy(sqlx::Error::PoolTimedOut)),
        }
    }

    /// Pool connections (in use, idle), over all of SQLite's pools.
    pub fn pool_connections(&self) -> (usize, usize) {
        let of = |size: u32, idle: usize| (usize::try_from(size).unwrap_or(0).saturating_sub(idle), idle);
        match &self.db {
            Db::Sqlite { read, write, checkpoint } => [read, write, checkpoint]
                .into_iter()
                .map(|p| of(p.size(), p.num_idle()))
                .fold((0, 0), |(u, i), (pu, pi)| (u + pu, i + pi)),
            Db::Postgres { pool, .. } => of(pool.size(), pool.num_idle()),
        }
    }

    /// Closes every pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite { read, write, checkpoint } => {
                read.close().await;
                write.close().await;
                checkpoint.close().await;
            }
            Db::Postgres { pool, .. } => pool.close().await,
        }
    }
}
