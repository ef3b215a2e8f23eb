//! Two-step verification (migration 14): authenticator-app factors, recovery codes, and the
//! sign-ins waiting for their second step.

use uuid::Uuid;

use super::{Store, StoreError, Tx, TxInner, on_db, on_tx};
use crate::domain::{OrgId, UserId};

/// A user's authenticator-app factor.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TotpRow {
    pub user_id: UserId,
    pub secret_sealed: String,
    pub confirmed_at_ms: Option<i64>,
    pub last_step: i64,
    pub failures: i32,
    pub locked_at_ms: Option<i64>,
    pub updated_at_ms: i64,
}

/// A sign-in waiting for its second step.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MfaChallengeRow {
    pub id: Uuid,
    pub user_id: UserId,
    pub binding_hash: Vec<u8>,
    pub purpose: String,
    pub audience: String,
    pub organization_id: Option<OrgId>,
    pub method: String,
    pub amr: String,
    pub detail: String,
    pub password_login: bool,
    pub expires_at_ms: i64,
    pub consumed_at_ms: Option<i64>,
}

/// A challenge to insert.
#[derive(Debug, Clone)]
pub struct NewMfaChallenge<'a> {
    pub id: Uuid,
    pub user_id: UserId,
    pub binding_hash: &'a [u8],
    pub purpose: &'a str,
    pub audience: &'a str,
    pub organization_id: Option<OrgId>,
    pub method: &'a str,
    pub amr: &'a str,
    pub detail: &'a str,
    pub password_login: bool,
    pub expires_at_ms: i64,
    pub now_ms: i64,
}

const TOTP: &str = "SELECT user_id, secret_sealed, confirmed_at_ms, last_step, failures, locked_at_ms, updated_at_ms \
     FROM mfa_totp WHERE user_id = $1";
const UPSERT_PENDING: &str = "INSERT INTO mfa_totp (user_id, secret_sealed, created_at_ms, updated_at_ms) \
     VALUES ($1, $2, $3, $3) ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, \
     confirmed_at_ms = NULL, last_step = 0, failures = 0, locked_at_ms = NULL, updated_at_ms = excluded.updated_at_ms \
     WHERE mfa_totp.confirmed_at_ms IS NULL";
const CONFIRM: &str =
    "UPDATE mfa_totp SET confirmed_at_ms = $2, updated_at_ms = $2 WHERE user_id = $1 AND confirmed_at_ms IS NULL";
/// The compare-and-set that makes each time step good for one use.
const ACCEPT_STEP: &str = "UPDATE mfa_totp SET last_step = $2, failures = 0 WHERE user_id = $1 AND last_step < $2";
const FAILED: &str = "UPDATE mfa_totp SET failures = failures + 1, \
     locked_at_ms = CASE WHEN failures + 1 >= $2 AND locked_at_ms IS NULL THEN $3 ELSE locked_at_ms END \
     WHERE user_id = $1 RETURNING failures, locked_at_ms";
const UNLOCK: &str = "UPDATE mfa_totp SET failures = 0, locked_at_ms = NULL WHERE user_id = $1";
const RESEAL: &str = "UPDATE mfa_totp SET secret_sealed = $2 WHERE user_id = $1";
const DELETE_TOTP: &str = "DELETE FROM mfa_totp WHERE user_id = $1";
const DELETE_CODES: &str = "DELETE FROM mfa_recovery_codes WHERE user_id = $1";
const INSERT_CODE: &str =
    "INSERT INTO mfa_recovery_codes (user_id, lookup, code_hash, created_at_ms) VALUES ($1, $2, $3, $4)";
const CODE: &str = "SELECT code_hash FROM mfa_recovery_codes WHERE user_id = $1 AND lookup = $2 AND used_at_ms IS NULL";
const USE_CODE: &str =
    "UPDATE mfa_recovery_codes SET used_at_ms = $3 WHERE user_id = $1 AND lookup = $2 AND used_at_ms IS NULL";
const REMAINING: &str = "SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = $1 AND used_at_ms IS NULL";
const CHALLENGE_COLUMNS: &str = "id, user_id, binding_hash, purpose, audience, organization_id, method, amr, detail, \
     password_login, expires_at_ms, consumed_at_ms";
const INSERT_CHALLENGE: &str = "INSERT INTO mfa_challenges (id, user_id, binding_hash, purpose, audience, \
     organization_id, method, amr, detail, password_login, expires_at_ms, created_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
const CONSUME_CHALLENGE: &str =
    "UPDATE mfa_challenges SET consumed_at_ms = $2 WHERE id = $1 AND consumed_at_ms IS NULL";
const CLEAN_CHALLENGES: &str = "expires_at_ms < $1";

impl Store {
    pub async fn totp(&self, user: UserId) -> Result<Option<TotpRow>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(TOTP).bind(user).fetch_optional(p).await)?)
    }

    /// Unused recovery codes of a user.
    pub async fn recovery_codes_left(&self, user: UserId) -> Result<i64, StoreError> {
        Ok(on_db!(self, p => sqlx::query_scalar(REMAINING).bind(user).fetch_one(p).await)?)
    }

    pub async fn mfa_challenge(&self, id: Uuid) -> Result<Option<MfaChallengeRow>, StoreError> {
        let sql = format!("SELECT {CHALLENGE_COLUMNS} FROM mfa_challenges WHERE id = $1");
        Ok(on_db!(self, p => sqlx::query_as(&sql).bind(id).fetch_optional(p).await)?)
    }

    /// Deletes sign-ins that waited for their second step longer than they could (`before_ms`).
    pub async fn cleanup_mfa_challenges(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.delete_batched("mfa_challenges", CLEAN_CHALLENGES, &[before_ms]).await
    }
}

impl Tx {
    /// The user's factor, locked until commit (PostgreSQL; SQLite's transaction excludes other
    /// writers already).
    pub async fn totp_for_update(&mut self, user: UserId) -> Result<Option<TotpRow>, StoreError> {
        Ok(match &mut self.0 {
            TxInner::Sqlite(t) => sqlx::query_as(TOTP).bind(user).fetch_optional(&mut **t).await?,
            TxInner::Postgres(t) => {
                sqlx::query_as(&format!("{TOTP} FOR UPDATE")).bind(user).fetch_optional(&mut **t).await?
            }
        })
    }

    /// Starts (or restarts) an unconfirmed factor; `false` when a confirmed one exists.
    pub async fn set_pending_totp(&mut self, user: UserId, sealed: &str, now_ms: i64) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(UPSERT_PENDING).bind(user).bind(sealed).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn confirm_totp(&mut self, user: UserId, now_ms: i64) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(CONFIRM).bind(user).bind(now_ms).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Records `step` as used: `false` when it (or a later one) was already (a replayed code).
    pub async fn accept_totp_step(&mut self, user: UserId, step: i64) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(ACCEPT_STEP).bind(user).bind(step).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Counts a failure; locks the factor at `lock_after` consecutive ones. (failures, locked?)
    pub async fn totp_failed(&mut self, user: UserId, lock_after: i32, now_ms: i64) -> Result<(i32, bool), StoreError> {
        let row: Option<(i32, Option<i64>)> = on_tx!(self, c => sqlx::query_as(FAILED).bind(user).bind(lock_after)
            .bind(now_ms).fetch_optional(&mut *c).await)?;
        Ok(row.map_or((0, false), |(n, locked)| (n, locked.is_some())))
    }

    pub async fn unlock_totp(&mut self, user: UserId) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(UNLOCK).bind(user).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn reseal_totp(&mut self, user: UserId, sealed: &str) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(RESEAL).bind(user).bind(sealed).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Removes the factor and the recovery codes; `true` when there was a factor.
    pub async fn delete_mfa(&mut self, user: UserId) -> Result<bool, StoreError> {
        let n =
            on_tx!(self, c => sqlx::query(DELETE_TOTP).bind(user).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        on_tx!(self, c => sqlx::query(DELETE_CODES).bind(user).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Replaces the user's recovery codes with these (lookup, hash) pairs.
    pub async fn replace_recovery_codes(
        &mut self,
        user: UserId,
        codes: &[(String, Vec<u8>)],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(DELETE_CODES).bind(user).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        for (lookup, hash) in codes {
            on_tx!(self, c => sqlx::query(INSERT_CODE).bind(user).bind(lookup).bind(hash).bind(now_ms)
                .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        }
        Ok(())
    }

    /// The hash stored for an unused recovery code with this lookup.
    pub async fn recovery_code(&mut self, user: UserId, lookup: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_scalar(CODE).bind(user).bind(lookup).fetch_optional(&mut *c).await)?)
    }

    /// Marks a recovery code used; `false` when it already was (a concurrent use won).
    pub async fn use_recovery_code(&mut self, user: UserId, lookup: &str, now_ms: i64) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(USE_CODE).bind(user).bind(lookup).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn recovery_codes_left(&mut self, user: UserId) -> Result<i64, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_scalar(REMAINING).bind(user).fetch_one(&mut *c).await)?)
    }

    pub async fn insert_mfa_challenge(&mut self, m: &NewMfaChallenge<'_>) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(INSERT_CHALLENGE).bind(m.id).bind(m.user_id).bind(m.binding_hash).bind(m.purpose)
            .bind(m.audience).bind(m.organization_id).bind(m.method).bind(m.amr).bind(m.detail).bind(m.password_login)
            .bind(m.expires_at_ms).bind(m.now_ms).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// A waiting sign-in, locked until commit.
    pub async fn mfa_challenge_for_update(&mut self, id: Uuid) -> Result<Option<MfaChallengeRow>, StoreError> {
        let sql = format!("SELECT {CHALLENGE_COLUMNS} FROM mfa_challenges WHERE id = $1");
        Ok(match &mut self.0 {
            TxInner::Sqlite(t) => sqlx::query_as(&sql).bind(id).fetch_optional(&mut **t).await?,
            TxInner::Postgres(t) => {
                sqlx::query_as(&format!("{sql} FOR UPDATE")).bind(id).fetch_optional(&mut **t).await?
            }
        })
    }

    pub async fn consume_mfa_challenge(&mut self, id: Uuid, now_ms: i64) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(CONSUME_CHALLENGE).bind(id).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}
