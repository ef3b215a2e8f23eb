//! SQLite snapshots: `VACUUM INTO` (a consistent copy taken inside one read transaction, while
//! the server keeps writing), reading a snapshot's schema version, and the exclusive check that
//! `authara restore` makes before it replaces a database.

use std::path::Path;
use std::time::Duration;

use sqlx::ConnectOptions as _;
use sqlx::Connection as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use super::{Db, Store, StoreError};

/// What a snapshot file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// (version, name) of every migration recorded in it.
    pub applied: Vec<(i64, String)>,
    /// `PRAGMA quick_check` answered `ok`.
    pub intact: bool,
}

impl SnapshotInfo {
    /// Its schema version (the highest recorded migration; 0 for none).
    pub fn version(&self) -> i64 {
        self.applied.iter().map(|(v, _)| *v).max().unwrap_or(0)
    }
}

impl Store {
    /// Writes a consistent copy of the SQLite database to `to`, which must not exist or be empty
    /// (SQLite refuses otherwise). Other connections keep reading and writing meanwhile.
    /// `None` on PostgreSQL (its snapshots are `pg_dump`'s).
    pub async fn sqlite_snapshot(&self, to: &Path) -> Result<Option<()>, StoreError> {
        let Db::Sqlite { read, .. } = &self.db else { return Ok(None) };
        let to = to.to_str().ok_or_else(|| StoreError::Other(sqlx::Error::Protocol("path is not UTF-8".into())))?;
        sqlx::query("VACUUM INTO $1").bind(to).execute(read).await?;
        Ok(Some(()))
    }
}

/// Connections of other authara processes to this PostgreSQL database (a running server), seen
/// by the `application_name` every authara connection carries. `None` on SQLite.
pub async fn postgres_other_sessions(store: &Store) -> Result<Option<i64>, StoreError> {
    let Db::Postgres { pool, .. } = &store.db else { return Ok(None) };
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND application_name = 'authara' AND pid <> pg_backend_pid()",
    )
    .fetch_one(pool)
    .await?;
    Ok(Some(n))
}

async fn open_plain(path: &Path, read_only: bool) -> Result<SqliteConnection, StoreError> {
    Ok(SqliteConnectOptions::new()
        .filename(path)
        .read_only(read_only)
        .busy_timeout(Duration::ZERO)
        .disable_statement_logging()
        .connect()
        .await?)
}

/// Reads a SQLite snapshot's recorded migrations and checks its pages, without changing it.
pub async fn inspect_sqlite_snapshot(path: &Path) -> Result<SnapshotInfo, StoreError> {
    let mut c = open_plain(path, true).await?;
    let check: String = sqlx::query_scalar("PRAGMA quick_check").fetch_one(&mut c).await?;
    let has_table: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'authara_schema_version'")
            .fetch_optional(&mut c)
            .await?;
    let applied = if has_table.is_some() {
        sqlx::query_as("SELECT version, name FROM authara_schema_version ORDER BY version").fetch_all(&mut c).await?
    } else {
        Vec::new()
    };
    c.close().await?;
    Ok(SnapshotInfo { applied, intact: check == "ok" })
}

/// Proves that no other connection has the SQLite database at `path` open: leaving WAL mode
/// needs the only connection, so this fails with `Busy` while a server (or any tool) holds it.
/// On success the database is checkpointed, in rollback-journal mode, with no `-wal` file left.
pub async fn sqlite_not_in_use(path: &Path) -> Result<(), StoreError> {
    let mut c = open_plain(path, false).await?;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode = DELETE").fetch_one(&mut c).await?;
    c.close().await?;
    if mode.eq_ignore_ascii_case("delete") {
        Ok(())
    } else {
        Err(StoreError::Busy(sqlx::Error::Protocol(format!("journal mode stayed {mode}"))))
    }
}

/// PostgreSQL: renames the configured schema to `aside` (before a restore); `false` when it does
/// not exist. `None` on SQLite.
pub async fn postgres_rename_schema(store: &Store, from: &str, to: &str) -> Result<Option<bool>, StoreError> {
    let Db::Postgres { pool, .. } = &store.db else { return Ok(None) };
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM information_schema.schemata WHERE schema_name = $1")
        .bind(from)
        .fetch_optional(pool)
        .await?;
    if exists.is_none() {
        return Ok(Some(false));
    }
    // Identifiers cannot be bound; both are lowercase SQL identifiers (config checks the schema,
    // the caller builds `to` from it and digits).
    sqlx::raw_sql(&format!("ALTER SCHEMA \"{from}\" RENAME TO \"{to}\"")).execute(pool).await?;
    Ok(Some(true))
}
