//! The email outbox: jobs written with the change that causes them, claimed by workers.
//!
//! Claims differ by engine, side by side below: PostgreSQL skips rows other workers hold
//! (`FOR UPDATE SKIP LOCKED`), so instances sharing a database never claim one job twice;
//! SQLite has one writer, and the claim runs inside its `BEGIN IMMEDIATE` transaction.

use uuid::Uuid;

use super::{Store, StoreError, Tx, TxInner, on_db, on_tx};
use crate::domain::JobStatus;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EmailJob {
    pub id: Uuid,
    pub challenge_id: Option<Uuid>,
    /// The domain event the email renders.
    pub event_id: Option<Uuid>,
    pub to_email: String,
    pub template: String,
    /// What the template needs besides the event (a JSON object; sealed where secret).
    pub template_data: String,
    /// Attempts including the one this claim starts.
    pub attempt_count: i32,
}

/// An email job to write with its event.
#[derive(Debug, Clone)]
pub struct NewEmailJob<'a> {
    pub challenge_id: Option<Uuid>,
    pub event_id: Uuid,
    pub to: &'a str,
    pub template: &'a str,
    /// A JSON object.
    pub data: &'a str,
    pub now_ms: i64,
}

const INSERT: &str = "INSERT INTO email_jobs (id, challenge_id, event_id, to_email, template, template_data, status, \
     next_attempt_at_ms, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $7, 'pending', $6, $6, $6)";
const RECLAIM: &str = "UPDATE email_jobs SET status = 'pending', next_attempt_at_ms = $1, updated_at_ms = $1 \
     WHERE status = 'sending' AND processing_started_at_ms < $2";
const CLAIM_PG: &str = "UPDATE email_jobs SET status = 'sending', processing_started_at_ms = $1, \
     attempt_count = attempt_count + 1, updated_at_ms = $1 WHERE id = (SELECT id FROM email_jobs \
     WHERE status = 'pending' AND next_attempt_at_ms <= $1 ORDER BY next_attempt_at_ms, created_at_ms \
     LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, challenge_id, event_id, to_email, template, template_data, attempt_count";
const CLAIM_SQLITE: &str = "UPDATE email_jobs SET status = 'sending', processing_started_at_ms = $1, \
     attempt_count = attempt_count + 1, updated_at_ms = $1 WHERE id = (SELECT id FROM email_jobs \
     WHERE status = 'pending' AND next_attempt_at_ms <= $1 ORDER BY next_attempt_at_ms, created_at_ms \
     LIMIT 1) RETURNING id, challenge_id, event_id, to_email, template, template_data, attempt_count";
const SENT: &str = "UPDATE email_jobs SET status = 'sent', sent_at_ms = $2, last_error = NULL, updated_at_ms = $2 \
     WHERE id = $1 AND status = 'sending'";
const RETRY: &str = "UPDATE email_jobs SET status = 'pending', next_attempt_at_ms = $2, last_error = $3, updated_at_ms = $4 \
     WHERE id = $1 AND status = 'sending'";
const FAILED: &str = "UPDATE email_jobs SET status = 'failed', last_error = $2, updated_at_ms = $3 \
     WHERE id = $1 AND status = 'sending'";
const CLEAN: &str = "(status = 'sent' AND sent_at_ms < $1) \
     OR (status = 'failed' AND updated_at_ms < $2)";
const COUNTS: &str = "SELECT status, COUNT(*) FROM email_jobs GROUP BY status";

impl Tx {
    /// Writes an email job in the caller's transaction.
    pub async fn enqueue_email(&mut self, j: &NewEmailJob<'_>) -> Result<Uuid, StoreError> {
        let id = crate::domain::time_ordered_uuid();
        on_tx!(self, c => sqlx::query(INSERT).bind(id).bind(j.challenge_id).bind(j.event_id).bind(j.to).bind(j.template)
            .bind(j.now_ms).bind(j.data).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(id)
    }
}

impl Store {
    /// Returns jobs stuck in `sending` since before `stale_before_ms` (a worker died mid-send)
    /// to the queue, then claims the next due job, in one transaction.
    pub async fn claim_email(&self, now_ms: i64, stale_before_ms: i64) -> Result<Option<EmailJob>, StoreError> {
        let mut tx = self.begin().await?;
        let reclaimed = on_tx!(tx, c => sqlx::query(RECLAIM).bind(now_ms).bind(stale_before_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        if reclaimed > 0 {
            tracing::warn!(jobs = reclaimed, "reclaimed email jobs abandoned mid-send");
        }
        let row: Option<EmailJob> = match &mut tx.0 {
            TxInner::Sqlite(t) => sqlx::query_as(CLAIM_SQLITE).bind(now_ms).fetch_optional(&mut **t).await?,
            TxInner::Postgres(t) => sqlx::query_as(CLAIM_PG).bind(now_ms).fetch_optional(&mut **t).await?,
        };
        tx.commit().await?;
        Ok(row)
    }

    pub async fn email_sent(&self, id: Uuid, now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        on_tx!(tx, c => sqlx::query(SENT).bind(id).bind(now_ms).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        tx.commit().await
    }

    pub async fn email_retry(&self, id: Uuid, next_at_ms: i64, error: &str, now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        on_tx!(tx, c => sqlx::query(RETRY).bind(id).bind(next_at_ms).bind(error).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        tx.commit().await
    }

    pub async fn email_failed(&self, id: Uuid, error: &str, now_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        on_tx!(tx, c => sqlx::query(FAILED).bind(id).bind(error).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        tx.commit().await
    }

    /// Deletes sent jobs older than `sent_before_ms` and failed ones older than `failed_before_ms`.
    pub async fn cleanup_emails(&self, sent_before_ms: i64, failed_before_ms: i64) -> Result<u64, StoreError> {
        self.delete_batched("email_jobs", CLEAN, &[sent_before_ms, failed_before_ms]).await
    }

    /// Jobs per status (`pending`, `sending`, `sent`, `failed`).
    pub async fn email_counts(&self) -> Result<std::collections::HashMap<JobStatus, i64>, StoreError> {
        let rows: Vec<(JobStatus, i64)> = on_db!(self, p => sqlx::query_as(COUNTS).fetch_all(p).await)?;
        Ok(rows.into_iter().collect())
    }
}
