//! Embedded, forward-only migrations with a schema version table.
//!
//! `migrations/sqlite/` and `migrations/postgres/` hold the same numbers and names; a test keeps
//! the two folders and [`MIGRATIONS`] in agreement. Each `migrate` run applies every pending
//! migration in one transaction (both engines have transactional DDL), under a lock, so two
//! instances starting together cannot apply one twice, and a run interrupted at any point (even
//! by kill -9) leaves the database exactly as it was: the previous binary still starts on it and
//! the next run applies everything again. A database holding a migration this binary does not
//! know was migrated by a newer authara and is refused, naming both versions.

use super::{Db, Store, StoreError, TxInner, on_tx};

/// One migration, with its SQL for each engine.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sqlite: include_str!(concat!("../../../../migrations/sqlite/", stringify!($version), "_", $name, ".sql")),
            postgres: include_str!(concat!(
                "../../../../migrations/postgres/",
                stringify!($version),
                "_",
                $name,
                ".sql"
            )),
        }
    };
}

/// Every migration, oldest first. File names are `<version>_<name>.sql` (version without
/// leading zeros so the macro can build the path).
/// Versions may leave gaps: a migration is applied when its version is not recorded yet, so a
/// reserved number can land later (the schema check below refuses a database missing any).
pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "init"),
    migration!(2, "accounts"),
    migration!(3, "email"),
    migration!(4, "events"),
    migration!(5, "webhooks"),
    migration!(6, "organizations"),
    migration!(7, "admin"),
    migration!(8, "oauth"),
    migration!(9, "passkeys"),
    migration!(11, "session_revocations"),
    migration!(12, "email_verified"),
    migration!(13, "sign_in"),
    migration!(14, "two_step"),
    migration!(20, "import_batches"),
    migration!(22, "invitation_tokens_at_rest"),
    migration!(23, "ended_sessions"),
    migration!(24, "scale_indexes"),
    migration!(25, "member_copies"),
];

/// The schema version this binary needs.
pub fn required_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS authara_schema_version (\
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)";

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "the database schema is at version {current}, newer than this binary supports ({required}); \
         run a newer authara or restore a matching backup"
    )]
    DatabaseNewer { current: i64, required: i64 },
    /// Migrations this binary does not know are recorded (a newer release added them below the
    /// highest version this binary has, in a gap).
    #[error(
        "the database holds migration(s) {unknown} that this binary (schema version {required}) does not know; \
         it was migrated by a newer authara: run that version or restore a matching backup"
    )]
    UnknownApplied { unknown: String, required: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where the database stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub current: i64,
    pub required: i64,
    /// (version, name) of every applied migration.
    pub applied: Vec<(i64, String)>,
}

impl Status {
    pub fn pending(&self) -> impl Iterator<Item = &'static Migration> + '_ {
        MIGRATIONS.iter().filter(|m| !self.applied.iter().any(|(v, _)| *v == m.version))
    }

    /// Applied migrations this binary does not have, as `"<version> <name>"`: a newer authara
    /// migrated the database.
    pub fn unknown(&self) -> Vec<String> {
        self.applied
            .iter()
            .filter(|(v, _)| !MIGRATIONS.iter().any(|m| m.version == *v))
            .map(|(v, name)| format!("{v} {name}"))
            .collect()
    }
}

impl Store {
    /// Reads the schema version without creating anything (a fresh database is version 0).
    pub async fn migration_status(&self) -> Result<Status, StoreError> {
        let applied: Vec<(i64, String)> = match &self.db {
            Db::Sqlite { read, .. } => {
                let exists: Option<i64> = sqlx::query_scalar(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'authara_schema_version'",
                )
                .fetch_optional(read)
                .await?;
                if exists.is_none() {
                    Vec::new()
                } else {
                    sqlx::query_as("SELECT version, name FROM authara_schema_version ORDER BY version")
                        .fetch_all(read)
                        .await?
                }
            }
            Db::Postgres { pool, schema } => {
                let exists: Option<i32> = sqlx::query_scalar(
                    "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'authara_schema_version'",
                )
                .bind(schema)
                .fetch_optional(pool)
                .await?;
                if exists.is_none() {
                    Vec::new()
                } else {
                    sqlx::query_as("SELECT version, name FROM authara_schema_version ORDER BY version")
                        .fetch_all(pool)
                        .await?
                }
            }
        };
        let current = applied.iter().map(|(v, _)| *v).max().unwrap_or(0);
        Ok(Status { current, required: required_version(), applied })
    }

    /// Applies every pending migration; a no-op when none is pending. Returns what was applied.
    pub async fn migrate(&self, now_ms: i64) -> Result<Vec<&'static Migration>, MigrateError> {
        self.migrate_to(now_ms, None).await
    }

    /// Applies the pending migrations up to `target` (every one when `None`), in one transaction.
    /// Tests use a target to build the database an older release left.
    pub async fn migrate_to(&self, now_ms: i64, target: Option<i64>) -> Result<Vec<&'static Migration>, MigrateError> {
        let mut tx = self.begin().await?;
        if let (Db::Postgres { schema, .. }, TxInner::Postgres(t)) = (&self.db, &mut tx.0) {
            // Serializes concurrent migrators across instances until commit.
            sqlx::query("SELECT pg_advisory_xact_lock(727327001)").execute(&mut **t).await.map_err(StoreError::from)?;
            sqlx::raw_sql(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .execute(&mut **t)
                .await
                .map_err(StoreError::from)?;
        }
        on_tx!(&mut tx, c => sqlx::raw_sql(VERSION_TABLE).execute(&mut *c).await.map(|r| r.rows_affected()))
            .map_err(StoreError::from)?;
        let recorded: Vec<(i64, String)> =
            on_tx!(&mut tx, c => sqlx::query_as("SELECT version, name FROM authara_schema_version")
            .fetch_all(&mut *c)
            .await)
            .map_err(StoreError::from)?;
        let status = Status {
            current: recorded.iter().map(|(v, _)| *v).max().unwrap_or(0),
            required: required_version(),
            applied: recorded,
        };
        if status.current > status.required {
            return Err(MigrateError::DatabaseNewer { current: status.current, required: status.required });
        }
        let unknown = status.unknown();
        if !unknown.is_empty() {
            return Err(MigrateError::UnknownApplied { unknown: unknown.join(", "), required: status.required });
        }
        let mut done = Vec::new();
        let wanted = |m: &&Migration| target.is_none_or(|t| m.version <= t);
        for m in status.pending().filter(wanted) {
            match &mut tx.0 {
                TxInner::Sqlite(t) => sqlx::raw_sql(m.sqlite).execute(&mut **t).await.map(|r| r.rows_affected()),
                TxInner::Postgres(t) => sqlx::raw_sql(m.postgres).execute(&mut **t).await.map(|r| r.rows_affected()),
            }
            .map_err(StoreError::from)?;
            on_tx!(&mut tx, c => sqlx::query("INSERT INTO authara_schema_version (version, name, applied_at_ms) VALUES ($1, $2, $3)")
                .bind(m.version)
                .bind(m.name)
                .bind(now_ms)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected()))
            .map_err(StoreError::from)?;
            done.push(m);
        }
        tx.commit().await?;
        Ok(done)
    }
}
