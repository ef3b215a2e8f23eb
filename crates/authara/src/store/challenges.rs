//! Email verification challenges.

use uuid::Uuid;

use super::{Store, StoreError, Tx, TxInner, on_tx};
use crate::domain::{ChallengePurpose, EmailAddress, UserId};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChallengeRow {
    pub id: Uuid,
    pub purpose: ChallengePurpose,
    pub email: String,
    pub user_id: Option<UserId>,
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
    /// The invitation a signup challenge accepts when verified.
    pub invitation_id: Option<Uuid>,
}

/// A challenge to insert.
#[derive(Debug, Clone)]
pub struct NewChallenge<'a> {
    pub id: Uuid,
    pub purpose: ChallengePurpose,
    pub email: &'a EmailAddress,
    pub user_id: Option<UserId>,
    pub password_hash: Option<&'a str>,
    pub opaque: bool,
    pub now_ms: i64,
    pub expires_at_ms: i64,
    pub max_attempts: i32,
    pub max_resends: i32,
    pub invitation_id: Option<Uuid>,
}

const SELECT: &str = "SELECT id, purpose, email, user_id, password_hash, opaque, expires_at_ms, consumed_at_ms, \
     attempt_count, max_attempts, resend_count, max_resends, last_sent_at_ms, code_hash, code_expires_at_ms, \
     invitation_id FROM challenges WHERE id = $1";
const SELECT_FOR_UPDATE: &str = "SELECT id, purpose, email, user_id, password_hash, opaque, expires_at_ms, consumed_at_ms, \
     attempt_count, max_attempts, resend_count, max_resends, last_sent_at_ms, code_hash, code_expires_at_ms, \
     invitation_id FROM challenges WHERE id = $1 FOR UPDATE";
const INSERT: &str = "INSERT INTO challenges (id, purpose, email, user_id, password_hash, opaque, created_at_ms, \
     expires_at_ms, max_attempts, max_resends, invitation_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
const SET_CODE: &str =
    "UPDATE challenges SET code_hash = $2, code_expires_at_ms = $3, last_sent_at_ms = $4 WHERE id = $1";
const FAILED_ATTEMPT: &str = "UPDATE challenges SET attempt_count = attempt_count + 1 WHERE id = $1";
const CONSUME: &str = "UPDATE challenges SET consumed_at_ms = $2 WHERE id = $1 AND consumed_at_ms IS NULL";
const RESENT: &str = "UPDATE challenges SET resend_count = resend_count + 1 WHERE id = $1";
const CANCEL_FOR_USER: &str = "UPDATE challenges SET consumed_at_ms = $3 WHERE user_id = $1 AND purpose = $2 \
     AND consumed_at_ms IS NULL";
const DELETE_EXPIRED: &str = "expires_at_ms < $1";

impl Store {
    /// Deletes expired challenges (their email jobs go with them).
    pub async fn delete_expired_challenges(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.delete_batched("challenges", DELETE_EXPIRED, &[now_ms]).await
    }
}

impl Tx {
    pub async fn insert_challenge(&mut self, c: &NewChallenge<'_>) -> Result<(), StoreError> {
        on_tx!(self, conn => sqlx::query(INSERT).bind(c.id).bind(c.purpose.as_str()).bind(c.email.as_str()).bind(c.user_id)
            .bind(c.password_hash).bind(c.opaque).bind(c.now_ms).bind(c.expires_at_ms).bind(c.max_attempts)
            .bind(c.max_resends).bind(c.invitation_id).execute(&mut *conn).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Reads a challenge and locks it until commit (`FOR UPDATE` on PostgreSQL; SQLite's write
    /// transaction already excludes other writers).
    pub async fn challenge_for_update(&mut self, id: Uuid) -> Result<Option<ChallengeRow>, StoreError> {
        Ok(match &mut self.0 {
            TxInner::Sqlite(t) => sqlx::query_as(SELECT).bind(id).fetch_optional(&mut **t).await?,
            TxInner::Postgres(t) => sqlx::query_as(SELECT_FOR_UPDATE).bind(id).fetch_optional(&mut **t).await?,
        })
    }

    /// Replaces the challenge's code (one code per challenge) and records when it was issued.
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

    pub async fn challenge_resent(&mut self, id: Uuid) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(RESENT).bind(id).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Ends every open challenge of a user for a purpose (a newer one replaces them).
    pub async fn cancel_challenges(
        &mut self,
        user_id: UserId,
        purpose: ChallengePurpose,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        Ok(on_tx!(self, c => sqlx::query(CANCEL_FOR_USER).bind(user_id).bind(purpose.as_str()).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?)
    }
}
