//! Webhook deliveries: the webhook consumer's queue of events.
//!
//! Claims differ by engine, side by side: PostgreSQL skips rows other workers hold
//! (`FOR UPDATE SKIP LOCKED`), so instances sharing a database never deliver one event at once;
//! SQLite has one writer. A claim takes the next due delivery whose aggregate has no earlier
//! delivery still pending or in flight, which keeps one user's (or organization's) events in
//! order. Every final transition is conditional on the claim's lease (`processing_started_at_ms`):
//! a worker whose lease was reaped cannot overwrite what another worker did since.

use uuid::Uuid;

use super::{Store, StoreError, Tx, TxInner, on_db, on_tx};
use crate::domain::DeliveryStatus;

/// A delivery to write with its event.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    pub id: Uuid,
    pub event_id: Uuid,
    pub event_seq: i64,
    pub event_type: &'a str,
    pub aggregate_id: Uuid,
    pub payload: &'a str,
    pub now_ms: i64,
}

/// A claimed delivery.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClaimedDelivery {
    pub id: Uuid,
    pub event_type: String,
    pub payload: String,
    /// Attempts including the one this claim starts.
    pub attempt_count: i32,
    /// The lease: the final update must present it.
    pub processing_started_at_ms: i64,
}

/// A delivery as operators see it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempt_count: i32,
    pub next_attempt_at_ms: i64,
    pub last_error: Option<String>,
    pub response_status: Option<i32>,
    pub latency_ms: Option<i64>,
    pub delivered_at_ms: Option<i64>,
    pub created_at_ms: i64,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Attempt<'a> {
    Delivered {
        status: i32,
        latency_ms: i64,
    },
    /// Retry at `next_at_ms`.
    Retry {
        next_at_ms: i64,
        error: &'a str,
        status: Option<i32>,
        latency_ms: i64,
    },
    Failed {
        error: &'a str,
        status: Option<i32>,
        latency_ms: i64,
    },
}

const INSERT: &str = "INSERT INTO webhook_deliveries (id, event_id, event_seq, event_type, aggregate_id, payload, status, \
     next_attempt_at_ms, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7, $7)";
const CLAIM_PG: &str = "UPDATE webhook_deliveries SET status = 'processing', processing_started_at_ms = $1, \
     attempt_count = attempt_count + 1, updated_at_ms = $1 WHERE id = (SELECT d.id FROM webhook_deliveries d \
     WHERE d.status = 'pending' AND d.next_attempt_at_ms <= $1 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e \
     WHERE e.aggregate_id = d.aggregate_id AND e.event_seq < d.event_seq AND e.status IN ('pending', 'processing')) \
     ORDER BY d.next_attempt_at_ms, d.event_seq LIMIT 1 FOR UPDATE SKIP LOCKED) \
     RETURNING id, event_type, payload, attempt_count, processing_started_at_ms";
const CLAIM_SQLITE: &str = "UPDATE webhook_deliveries SET status = 'processing', processing_started_at_ms = $1, \
     attempt_count = attempt_count + 1, updated_at_ms = $1 WHERE id = (SELECT d.id FROM webhook_deliveries d \
     WHERE d.status = 'pending' AND d.next_attempt_at_ms <= $1 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e \
     WHERE e.aggregate_id = d.aggregate_id AND e.event_seq < d.event_seq AND e.status IN ('pending', 'processing')) \
     ORDER BY d.next_attempt_at_ms, d.event_seq LIMIT 1) \
     RETURNING id, event_type, payload, attempt_count, processing_started_at_ms";
const DELIVERED: &str = "UPDATE webhook_deliveries SET status = 'delivered', delivered_at_ms = $3, response_status = $4, \
     latency_ms = $5, last_error = NULL, updated_at_ms = $3 \
     WHERE id = $1 AND status = 'processing' AND processing_started_at_ms = $2";
const RETRY: &str = "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at_ms = $4, last_error = $5, \
     response_status = $6, latency_ms = $7, updated_at_ms = $3 \
     WHERE id = $1 AND status = 'processing' AND processing_started_at_ms = $2";
const FAILED: &str = "UPDATE webhook_deliveries SET status = 'failed', last_error = $4, response_status = $5, \
     latency_ms = $6, updated_at_ms = $3 WHERE id = $1 AND status = 'processing' AND processing_started_at_ms = $2";
const REAP: &str = "UPDATE webhook_deliveries SET status = CASE WHEN attempt_count >= $3 THEN 'failed' ELSE 'pending' END, \
     next_attempt_at_ms = $1, last_error = 'processing lease expired', updated_at_ms = $1 \
     WHERE status = 'processing' AND processing_started_at_ms <= $2";
const REDELIVER: &str = "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at_ms = $2, attempt_count = 0, \
     updated_at_ms = $2 WHERE id = $1 AND status IN ('delivered', 'failed')";
const CLEAN: &str = "(status = 'delivered' AND updated_at_ms < $1) \
     OR (status = 'failed' AND updated_at_ms < $2)";
const RECENT: &str = "SELECT id, event_id, event_type, status, attempt_count, next_attempt_at_ms, last_error, \
     response_status, latency_ms, delivered_at_ms, created_at_ms FROM webhook_deliveries \
     ORDER BY created_at_ms DESC, event_seq DESC LIMIT $1";
const BY_ID: &str = "SELECT id, event_id, event_type, status, attempt_count, next_attempt_at_ms, last_error, \
     response_status, latency_ms, delivered_at_ms, created_at_ms FROM webhook_deliveries WHERE id = $1";
const COUNTS: &str = "SELECT status, COUNT(*) FROM webhook_deliveries GROUP BY status";

impl Tx {
    /// Sends a delivered or failed delivery again (same id); `false` if there is no such one.
    pub async fn redeliver(&mut self, id: Uuid, now_ms: i64) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(REDELIVER).bind(id).bind(now_ms).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn insert_delivery(&mut self, d: &NewDelivery<'_>) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(INSERT).bind(d.id).bind(d.event_id).bind(d.event_seq).bind(d.event_type)
            .bind(d.aggregate_id).bind(d.payload).bind(d.now_ms).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}

impl Store {
    /// Claims the next due delivery (see the module doc for ordering and locking).
    pub async fn claim_delivery(&self, now_ms: i64) -> Result<Option<ClaimedDelivery>, StoreError> {
        let mut tx = self.begin().await?;
        let row = match &mut tx.0 {
            TxInner::Sqlite(t) => sqlx::query_as(CLAIM_SQLITE).bind(now_ms).fetch_optional(&mut **t).await?,
            TxInner::Postgres(t) => sqlx::query_as(CLAIM_PG).bind(now_ms).fetch_optional(&mut **t).await?,
        };
        tx.commit().await?;
        Ok(row)
    }

    /// Records how an attempt ended; `false` when the lease was lost (the delivery was reaped
    /// and may be with another worker), in which case nothing is changed.
    pub async fn finish_delivery(
        &self,
        id: Uuid,
        lease_ms: i64,
        now_ms: i64,
        attempt: &Attempt<'_>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let n = match attempt {
            Attempt::Delivered { status, latency_ms } => on_tx!(tx, c => sqlx::query(DELIVERED).bind(id).bind(lease_ms)
                .bind(now_ms).bind(status).bind(latency_ms).execute(&mut *c).await.map(|r| r.rows_affected()))?,
            Attempt::Retry { next_at_ms, error, status, latency_ms } => on_tx!(tx, c => sqlx::query(RETRY).bind(id)
                .bind(lease_ms).bind(now_ms).bind(next_at_ms).bind(*error).bind(status).bind(latency_ms)
                .execute(&mut *c).await.map(|r| r.rows_affected()))?,
            Attempt::Failed { error, status, latency_ms } => on_tx!(tx, c => sqlx::query(FAILED).bind(id)
                .bind(lease_ms).bind(now_ms).bind(*error).bind(status).bind(latency_ms)
                .execute(&mut *c).await.map(|r| r.rows_affected()))?,
        };
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Returns deliveries whose worker died (in flight since before `stale_before_ms`) to the
    /// queue, or fails them when their attempts are used up. Returns how many.
    pub async fn reap_deliveries(
        &self,
        now_ms: i64,
        stale_before_ms: i64,
        max_attempts: i32,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let n = on_tx!(tx, c => sqlx::query(REAP).bind(now_ms).bind(stale_before_ms).bind(max_attempts)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(n)
    }

    pub async fn redeliver(&self, id: Uuid, now_ms: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let done = tx.redeliver(id, now_ms).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Deletes delivered rows older than `delivered_before_ms` and failed ones older than
    /// `failed_before_ms`.
    pub async fn cleanup_deliveries(&self, delivered_before_ms: i64, failed_before_ms: i64) -> Result<u64, StoreError> {
        self.delete_batched("webhook_deliveries", CLEAN, &[delivered_before_ms, failed_before_ms]).await
    }

    /// The newest deliveries.
    pub async fn recent_deliveries(&self, limit: i64) -> Result<Vec<DeliveryRow>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(RECENT).bind(limit).fetch_all(p).await)?)
    }

    pub async fn delivery(&self, id: Uuid) -> Result<Option<DeliveryRow>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(BY_ID).bind(id).fetch_optional(p).await)?)
    }

    /// Deliveries per status.
    pub async fn delivery_counts(&self) -> Result<std::collections::HashMap<DeliveryStatus, i64>, StoreError> {
        let rows: Vec<(DeliveryStatus, i64)> = on_db!(self, p => sqlx::query_as(COUNTS).fetch_all(p).await)?;
        Ok(rows.into_iter().collect())
    }
}
