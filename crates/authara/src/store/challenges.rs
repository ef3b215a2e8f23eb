//! Email verification challenges.

use uuid::Uuid;

use super::{Store, StoreError, Tx, on_tx};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRow {
    pub id: Uuid,
    pub purpose: String,
    pub email: String,
    pub user_id: Option<Uuid>,
    pub password_hash: Option<String>,
    pub opaque: bool,
    pub expires_at_ms: i64,
    pub consumed_at_ms: Option<i64>,
    pub attempt_count: i32,
    pub max_attempts: i32,
    pub resend_count: i32,
    pub max_resends: i32,
    pub last_sent_at_ms: Option<i64>,
    pub code_hash: Option<Vec<u8>>,
    pub code_expires_at_ms: Option<i64>,
}

/// A challenge to insert.
#[derive(Debug, Clone)]
pub struct NewChallenge<'a> {
    pub id: Uuid,
    pub purpose: &'a str,
    pub email: &'a str,
    pub user_id: Option<Uuid>,
    pub password_hash: Option<&'a str>,
    pub opaque: bool,
    pub now_ms: i64,
    pub expires_at_ms: i64,
    pub max_attempts: i32,
    pub max_resends: i32,
}

type Row = (
    Uuid,
    String,
    String,
    Option<Uuid>,
    Option<String>,
    bool,
    i64,
    Option<i64>,
    i32,
    i32,
    i32,
    i32,
    Option<i64>,
    Option<Vec<u8>>,
    Option<i64>,
);

fn row(r: Row) -> ChallengeRow {
    ChallengeRow {
        id: r.0,
        purpose: r.1,
        email: r.2,
        user_id: r.3,
        password_hash: r.4,
        opaque: r.5,
        expires_at_ms: r.6,
        consumed_at_ms: r.7,
        attempt_count: r.8,
        max_attempts: r.9,
        resend_count: r.10,
        max_resends: r.11,
        last_sent_at_ms: r.12,
        code_hash: r.13,
        code_expires_at_ms: r.14,
    }
}

const SELECT: &str = "SELECT id, purpose, email, user_id, password_hash, opaque, expires_at_ms, consumed_at_ms, \
     attempt_count, max_attempts, resend_count, max_resends, last_sent_at_ms, code_hash, code_expires_at_ms \
     FROM challenges WHERE id = $1";
const INSERT: &str = "INSERT INTO challenges (id, purpose, email, user_id, password_hash, opaque, created_at_ms, \
     expires_at_ms, max_attempts, max_resends) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
const SET_CODE: &str =
    "UPDATE challenges SET code_hash = $2, code_expires_at_ms = $3, last_sent_at_ms = $4 WHERE id = $1";
const FAILED_ATTEMPT: &str = "UPDATE challenges SET attempt_count = attempt_count + 1 WHERE id = $1";
const CONSUME: &str = "UPDATE challenges SET consumed_at_ms = $2 WHERE id = $1 AND consumed_at_ms IS NULL";
const RESENT: &str = "UPDATE challenges SET resend_count = resend_count + 1, last_sent_at_ms = $2 WHERE id = $1";
const DELETE_EXPIRED: &str = "DELETE FROM challenges WHERE expires_at_ms < $1";

impl Store {
    /// Deletes expired challenges (their codes and email jobs go with them).
    pub async fn delete_expired_challenges(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let n = on_tx!(&mut tx, c => sqlx::query(DELETE_EXPIRED).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(n)
    }
}

impl Tx {
    pub async fn insert_challenge(&mut self, c: &NewChallenge<'_>) -> Result<(), StoreError> {
        on_tx!(self, conn => sqlx::query(INSERT).bind(c.id).bind(c.purpose).bind(c.email).bind(c.user_id)
            .bind(c.password_hash).bind(c.opaque).bind(c.now_ms).bind(c.expires_at_ms).bind(c.max_attempts)
            .bind(c.max_resends).execute(&mut *conn).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Reads a challenge and locks it until commit (`FOR UPDATE` on PostgreSQL; SQLite's write
    /// transaction already excludes other writers).
    pub async fn challenge_for_update(&mut self, id: Uuid) -> Result<Option<ChallengeRow>, StoreError> {
        let r: Option<Row> = match self {
            Tx::Sqlite(t) => sqlx::query_as(SELECT).bind(id).fetch_optional(&mut **t).await?,
            Tx::Postgres(t) => {
                sqlx::query_as(&format!("{SELECT} FOR UPDATE")).bind(id).fetch_optional(&mut **t).await?
            }
        };
        Ok(r.map(row))
    }

    /// Replaces the challenge's code (one code per challenge) and records the send.
    pub async fn set_challenge_code(
        &mut self,
        id: Uuid,
        code_hash: &[u8],
        code_expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(SET_CODE).bind(id).bind(code_hash).bind(code_expires_at_ms).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn challenge_failed_attempt(&mut self, id: Uuid) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(FAILED_ATTEMPT).bind(id).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn consume_challenge(&mut self, id: Uuid, now_ms: i64) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(CONSUME).bind(id).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn challenge_resent(&mut self, id: Uuid, now_ms: i64) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(RESENT).bind(id).bind(now_ms).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
