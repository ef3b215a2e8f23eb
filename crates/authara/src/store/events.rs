//! Domain events, written in the caller's transaction (see `services::events`).

use uuid::Uuid;

use super::{Store, StoreError, Tx, on_db, on_tx};

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub id: Uuid,
    pub kind: &'a str,
    pub aggregate_type: &'a str,
    pub aggregate_id: Uuid,
    /// JSON object text.
    pub data: &'a str,
    pub now_ms: i64,
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRow {
    pub id: Uuid,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub aggregate_type: String,
    pub aggregate_id: Uuid,
    pub data: String,
    pub created_at_ms: i64,
}

const INSERT: &str = "INSERT INTO events (id, type, aggregate_type, aggregate_id, data, created_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq";
const BY_ID: &str = "SELECT id, type, aggregate_type, aggregate_id, data, created_at_ms FROM events WHERE id = $1";
const SINCE: &str = "SELECT id, type, aggregate_type, aggregate_id, data, created_at_ms FROM events \
     WHERE created_at_ms >= $1 ORDER BY seq LIMIT $2";
/// Events nothing waits for any more (no email job or webhook delivery left to do) and older
/// than the retention.
const CLEAN: &str = "created_at_ms < $1 AND NOT EXISTS \
     (SELECT 1 FROM email_jobs j WHERE j.event_id = events.id AND j.status IN ('pending', 'sending')) \
     AND NOT EXISTS (SELECT 1 FROM webhook_deliveries w WHERE w.event_id = events.id \
     AND w.status IN ('pending', 'processing'))";

impl Store {
    pub async fn event(&self, id: Uuid) -> Result<Option<EventRow>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(BY_ID).bind(id).fetch_optional(p).await)?)
    }

    /// Events recorded at or after `since_ms`, oldest first.
    pub async fn events_since(&self, since_ms: i64, limit: i64) -> Result<Vec<EventRow>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(SINCE).bind(since_ms).bind(limit).fetch_all(p).await)?)
    }

    /// Deletes events older than `before_ms` that no consumer still needs.
    pub async fn cleanup_events(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.delete_batched_in_order("events", CLEAN, Some("created_at_ms"), &[before_ms]).await
    }
}

impl Tx {
    /// Inserts an event; returns its sequence number.
    pub async fn insert_event(&mut self, e: &NewEvent<'_>) -> Result<i64, StoreError> {
        Ok(
            on_tx!(self, c => sqlx::query_scalar(INSERT).bind(e.id).bind(e.kind).bind(e.aggregate_type).bind(e.aggregate_id)
            .bind(e.data).bind(e.now_ms).fetch_one(&mut *c).await)?,
        )
    }
}
