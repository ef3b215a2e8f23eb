//! Deleting what has outlived its use (the cleanup workers), in bounded batches.
//!
//! why: one `DELETE` over a large backlog (a first cleanup after an import or an upgrade, audit
//! rows reaching their retention) holds SQLite's only write lock, or PostgreSQL's row locks and
//! a long transaction, for as long as it runs, and every sign-in and refresh waits behind it.
//! Each batch here is its own transaction of at most [`BATCH_ROWS`] rows found through an index,
//! and other writers get their turn between batches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Db, Store, StoreError, on_tx};

/// Rows one batch deletes at most.
pub const BATCH_ROWS: u64 = 1000;

static BATCHES: AtomicU64 = AtomicU64::new(0);
static LONGEST_US: AtomicU64 = AtomicU64::new(0);

/// Batches run by this process since the last call, and the longest one's time (from its
/// transaction's start, write lock taken, to its commit); resets both.
pub fn take_batch_stats() -> (u64, Duration) {
    (BATCHES.swap(0, Ordering::Relaxed), Duration::from_micros(LONGEST_US.swap(0, Ordering::Relaxed)))
}

impl Store {
    /// Deletes the rows of `table` that match `cond` (`$1`, `$2`… bound to `binds`), in batches.
    /// Returns the rows deleted.
    pub(crate) async fn delete_batched(&self, table: &str, cond: &str, binds: &[i64]) -> Result<u64, StoreError> {
        // A row's physical address: the rowid on SQLite (no table here is WITHOUT ROWID), the ctid
        // on PostgreSQL, so one statement serves every table whatever its key.
        let sql = match &self.db {
            Db::Sqlite { .. } => {
                format!(
                    "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE {cond} LIMIT {BATCH_ROWS})"
                )
            }
            Db::Postgres { .. } => format!(
                "DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE {cond} LIMIT {BATCH_ROWS}))"
            ),
        };
        let mut total = 0;
        loop {
            let mut tx = self.begin().await?;
            let started = Instant::now();
            let n = on_tx!(tx, c => {
                let mut q = sqlx::query(&sql);
                for b in binds {
                    q = q.bind(*b);
                }
                q.execute(&mut *c).await.map(|r| r.rows_affected())
            })?;
            tx.commit().await?;
            let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            BATCHES.fetch_add(1, Ordering::Relaxed);
            LONGEST_US.fetch_max(us, Ordering::Relaxed);
            total += n;
            if n < BATCH_ROWS {
                return Ok(total);
            }
            // Writers queued for the connection (SQLite) go first.
            tokio::task::yield_now().await;
        }
    }
}
