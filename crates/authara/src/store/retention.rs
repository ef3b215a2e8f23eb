//! Deleting what has outlived its use (the cleanup workers), in bounded batches.
//!
//! why: one `DELETE` over a large backlog (a first cleanup after an import or an upgrade, audit
//! rows reaching their retention) holds SQLite's only write lock, or PostgreSQL's row locks and
//! a long transaction, for as long as it runs, and every sign-in and refresh waits behind it.
//! Each batch here is its own transaction of rows found through an index, sized so that it
//! takes about [`BATCH_BUDGET`] (what a row costs depends on the table's indexes, the cascades
//! its delete starts and how much of the table is cached: 1,000 audit rows took 160 ms on SQLite
//! at 100,000 users, 200 rows up to 109 ms at a million), and other writers get their turn
//! between batches.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqlitePool;
use sqlx::{Connection as _, Sqlite};

use super::{Db, Store, StoreError, on_tx};

/// The time one batch should take: a sign-in or refresh waiting behind it waits at most that.
pub const BATCH_BUDGET: Duration = Duration::from_millis(10);
/// Rows of the first batch and the fewest of later ones, per engine. SQLite's are small: on a
/// cold cache at a million users one audit row's delete (five indexes, three of them random)
/// took up to 3 ms under its one write lock. PostgreSQL's batches are not exclusive, and each
/// has a fixed cost that many small ones multiply (at 10 rows a batch, 7,143 emails took 715
/// batches and 96 s at a million users). The size adapts, at most doubling, from the second
/// batch on.
const FIRST_BATCH_SQLITE: u64 = 10;
const MIN_BATCH_SQLITE: u64 = 10;
const FIRST_BATCH_PG: u64 = 50;
const MIN_BATCH_PG: u64 = 20;
pub const MAX_BATCH: u64 = 2000;

/// What the batches of one table did: each batch's time runs from its transaction's start
/// (write lock taken) to its commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchStats {
    pub table: String,
    pub batches: u64,
    pub rows: u64,
    pub longest: Duration,
    pub total: Duration,
}

static STATS: Mutex<Vec<BatchStats>> = Mutex::new(Vec::new());

/// The batches run by this process since the last call, per table in the order first seen;
/// resets them.
pub fn take_batch_stats() -> Vec<BatchStats> {
    std::mem::take(&mut *STATS.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
}

fn record(table: &str, rows: u64, took: Duration) {
    let mut all = STATS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let i = match all.iter().position(|s| s.table == table) {
        Some(i) => i,
        None => {
            all.push(BatchStats { table: table.to_owned(), ..BatchStats::default() });
            all.len() - 1
        }
    };
    let s = &mut all[i];
    s.batches += 1;
    s.rows += rows;
    s.longest = s.longest.max(took);
    s.total += took;
}

impl Store {
    /// Deletes the rows of `table` that match `cond` (`$1`, `$2`… bound to `binds`), in batches.
    /// Returns the rows deleted.
    pub(crate) async fn delete_batched(&self, table: &str, cond: &str, binds: &[i64]) -> Result<u64, StoreError> {
        self.delete_batched_in_order(table, cond, None, binds).await
    }

    /// [`Self::delete_batched`], each batch the first rows in the order of `order_by`, an indexed
    /// column the condition bounds (`created_at_ms < $1`): the batch is then read from that
    /// index, wherever the rows lie in the table. why: with `LIMIT` alone PostgreSQL may scan
    /// the table from its start when it expects matches to be common, and rows that matched late
    /// (updated, so written at the table's end) cost a whole scan: 2.8 s for one batch of audit
    /// rows at a million users.
    pub(crate) async fn delete_batched_in_order(
        &self,
        table: &str,
        cond: &str,
        order_by: Option<&str>,
        binds: &[i64],
    ) -> Result<u64, StoreError> {
        let order = order_by.map(|c| format!(" ORDER BY {c}")).unwrap_or_default();
        // A row's physical address: the rowid on SQLite (no table here is WITHOUT ROWID), the ctid
        // on PostgreSQL, so one statement serves every table whatever its key.
        let sql = |limit: u64| match &self.db {
            Db::Sqlite { .. } => format!(
                "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {cond}{order} LIMIT {limit})"
            ),
            Db::Postgres { .. } => format!(
                "DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE {cond}{order} LIMIT {limit}))"
            ),
        };
        let (mut size, min) = match &self.db {
            Db::Sqlite { .. } => (FIRST_BATCH_SQLITE, MIN_BATCH_SQLITE),
            Db::Postgres { .. } => (FIRST_BATCH_PG, MIN_BATCH_PG),
        };
        let mut total = 0;
        loop {
            let sql = sql(size);
            let (n, took) = match &self.db {
                Db::Sqlite { write, .. } => sqlite_batch(write, &sql, binds).await?,
                Db::Postgres { .. } => {
                    let mut tx = self.begin().await?;
                    let started = Instant::now();
                    let n =
                        on_tx!(tx, c => batch_query(&sql, binds).execute(&mut *c).await.map(|r| r.rows_affected()))?;
                    tx.commit().await?;
                    (n, started.elapsed())
                }
            };
            record(table, n, took);
            total += n;
            if n > 0 {
                self.checkpoint_after_batch().await;
            }
            if n < size {
                return Ok(total);
            }
            size = next_size(size, took, min);
            // Writers queued for the connection (SQLite) go first.
            tokio::task::yield_now().await;
        }
    }

    /// On SQLite, copies the WAL into the database on a connection of its own, while no batch
    /// holds the write lock (see [`sqlite_batch`]). Passive: it waits for no reader or writer,
    /// and one that fails leaves the work to the writer's own checkpoint, as before.
    async fn checkpoint_after_batch(&self) {
        if let Db::Sqlite { checkpoint, .. } = &self.db
            && let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(checkpoint).await
        {
            tracing::debug!(error = %e, "checkpoint after a cleanup batch");
        }
    }
}

/// A batch's statement with its values bound. Not a cached prepared statement: PostgreSQL would
/// switch to a generic plan after five runs, which for `created_at_ms < $1` guesses a third of
/// the table matches and scans it from the start (each batch further, 4.7 s a batch at a
/// million users); and the limit changes from batch to batch.
fn batch_query<'q, DB: sqlx::Database + sqlx::database::HasStatementCache>(
    sql: &'q str,
    binds: &[i64],
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    binds.iter().fold(sqlx::query(sql).persistent(false), |q, b| q.bind(*b))
}

/// One batch on SQLite: the delete under the write lock, then its commit, without the
/// checkpoint SQLite runs in the commit that finds the WAL past 1,000 pages. why: that
/// checkpoint copies the WAL into the database and syncs both files, and a cleanup writes pages
/// fast: at 100,000 users every other audit batch took 5 ms to delete and 37-64 ms to commit.
/// The cleanup checkpoints after each batch instead, on a connection of its own
/// ([`Store::checkpoint_after_batch`]), while the writer serves others; the WAL then starts over
/// at the next write. Returns the rows deleted and the time from the lock taken to the commit.
async fn sqlite_batch(write: &SqlitePool, sql: &str, binds: &[i64]) -> Result<(u64, Duration), StoreError> {
    let mut conn = NoAutoCheckpoint::acquire(write).await?;
    let mut tx = conn.conn.begin_with("BEGIN IMMEDIATE").await?;
    let started = Instant::now();
    let n = batch_query(sql, binds).execute(&mut *tx).await?.rows_affected();
    tx.commit().await?;
    let took = started.elapsed();
    conn.restore().await?;
    Ok((n, took))
}

/// The writer connection with the checkpoint in its commits turned off, turned back on before
/// it returns to the pool. Dropped before that (an error, a cancelled cleanup), the connection
/// is closed instead, and the pool opens a new one with SQLite's default.
struct NoAutoCheckpoint {
    conn: PoolConnection<Sqlite>,
    pages: Option<i64>,
}

impl NoAutoCheckpoint {
    async fn acquire(pool: &SqlitePool) -> Result<Self, StoreError> {
        let mut me = NoAutoCheckpoint { conn: pool.acquire().await?, pages: None };
        let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint").fetch_one(&mut *me.conn).await?;
        me.pages = Some(pages);
        sqlx::query("PRAGMA wal_autocheckpoint = 0").execute(&mut *me.conn).await?;
        Ok(me)
    }

    async fn restore(mut self) -> Result<(), StoreError> {
        if let Some(pages) = self.pages {
            sqlx::query(&format!("PRAGMA wal_autocheckpoint = {pages}")).execute(&mut *self.conn).await?;
            self.pages = None;
        }
        Ok(())
    }
}

impl Drop for NoAutoCheckpoint {
    fn drop(&mut self) {
        if self.pages.is_some() {
            self.conn.close_on_drop();
        }
    }
}

/// The next batch's rows: scaled so that it takes about [`BATCH_BUDGET`] at the rate the last
/// one ran, at most doubling, within bounds.
fn next_size(size: u64, took: Duration, min: u64) -> u64 {
    let per_row = took.as_secs_f64() / size as f64;
    let fit = if per_row > 0.0 { (BATCH_BUDGET.as_secs_f64() / per_row) as u64 } else { MAX_BATCH };
    fit.min(size * 2).clamp(min, MAX_BATCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_shrink_when_slow_and_grow_at_most_twofold_when_fast() {
        assert_eq!(next_size(1000, Duration::from_millis(160), 10), 62, "160 µs a row: 62 rows in 10 ms");
        assert_eq!(next_size(200, Duration::from_millis(1), 10), 400, "fast: doubles");
        assert_eq!(next_size(50, Duration::from_millis(5), 10), 100);
        assert_eq!(next_size(1500, Duration::from_micros(10), 10), MAX_BATCH);
        assert_eq!(next_size(100, Duration::from_secs(2), 20), 20, "never stalls");
        assert_eq!(next_size(100, Duration::from_secs(2), 10), 10);
        assert_eq!(next_size(300, Duration::ZERO, 10), 600);
    }
}
