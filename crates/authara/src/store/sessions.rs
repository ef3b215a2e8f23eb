//! Sessions: creation, listing, revocation, cleanup.

use super::{Store, StoreError, Tx, TxInner, on_db, on_tx};
use crate::domain::{OrgId, SessionId, UserId};

#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub id: SessionId,
    pub user_id: UserId,
    pub organization_id: OrgId,
    pub user_agent: &'a str,
    pub ip: Option<&'a str>,
    pub now_ms: i64,
    pub expires_at_ms: i64,
    /// What the sign-in proved (RFC 8176 values, space-separated).
    pub amr: &'a str,
    /// The sign-in used a second factor.
    pub mfa: bool,
}

/// When a session was signed in, and when its second factor was last used (privileged
/// changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionAuth {
    pub created_at_ms: i64,
    pub mfa_at_ms: Option<i64>,
}

/// A session as the account page lists it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionInfo {
    pub id: SessionId,
    pub user_agent: String,
    pub ip: Option<String>,
    pub created_at_ms: i64,
    pub last_used_at_ms: i64,
}

/// A session's owner and liveness (switching organization).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionState {
    pub id: SessionId,
    pub user_id: UserId,
    pub expires_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
    pub amr: String,
    pub auth_time_ms: i64,
}

const INSERT: &str = "INSERT INTO sessions (id, user_id, active_organization_id, user_agent, ip, created_at_ms, \
     last_used_at_ms, expires_at_ms, amr, auth_time_ms, mfa_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $6, $9)";
const AUTH: &str = "SELECT created_at_ms, mfa_at_ms FROM sessions WHERE id = $1 AND revoked_at_ms IS NULL";
const STEPPED_UP: &str = "UPDATE sessions SET amr = $2, auth_time_ms = $3, mfa_at_ms = $3 WHERE id = $1";
const TOUCH: &str = "UPDATE sessions SET last_used_at_ms = $2 WHERE id = $1";
const REVOKE: &str = "UPDATE sessions SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL";
const REVOKE_USER: &str =
    "UPDATE sessions SET revoked_at_ms = $2 WHERE user_id = $1 AND revoked_at_ms IS NULL RETURNING id";
const LIST_ACTIVE: &str = "SELECT id, user_agent, ip, created_at_ms, last_used_at_ms FROM sessions \
     WHERE user_id = $1 AND revoked_at_ms IS NULL AND expires_at_ms > $2 ORDER BY created_at_ms DESC, id";
const REVOKE_OWN: &str =
    "UPDATE sessions SET revoked_at_ms = $3 WHERE id = $1 AND user_id = $2 AND revoked_at_ms IS NULL";
const REVOKE_OTHERS: &str =
    "UPDATE sessions SET revoked_at_ms = $3 WHERE user_id = $1 AND id <> $2 AND revoked_at_ms IS NULL RETURNING id";
const ACTIVE_COUNT: &str =
    "SELECT COUNT(*) FROM sessions WHERE user_id = $1 AND revoked_at_ms IS NULL AND expires_at_ms > $2";
const CLEAN: &str = "expires_at_ms < $1 OR revoked_at_ms < $2";
/// The refresh tokens of the sessions [`CLEAN`] deletes.
const CLEAN_TOKENS: &str = "session_id IN (SELECT id FROM sessions WHERE expires_at_ms < $1 OR revoked_at_ms < $2)";
const STARTED_AT: &str = "SELECT created_at_ms FROM sessions WHERE id = $1 AND revoked_at_ms IS NULL";
const RECENTLY_REVOKED: &str =
    "SELECT id FROM sessions WHERE revoked_at_ms >= $1 UNION SELECT id FROM ended_sessions WHERE ended_at_ms >= $1";
const CLEAN_ENDED: &str = "ended_at_ms < $1";
const STATE: &str = "SELECT id, user_id, expires_at_ms, revoked_at_ms, amr, auth_time_ms FROM sessions WHERE id = $1";
const STATE_FOR_UPDATE: &str =
    "SELECT id, user_id, expires_at_ms, revoked_at_ms, amr, auth_time_ms FROM sessions WHERE id = $1 FOR UPDATE";
const SET_ACTIVE_ORG: &str = "UPDATE sessions SET active_organization_id = $2 WHERE id = $1";

impl Store {
    /// Active sessions of a user, newest first.
    pub async fn active_sessions(&self, user_id: UserId, now_ms: i64) -> Result<Vec<SessionInfo>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(LIST_ACTIVE).bind(user_id).bind(now_ms).fetch_all(p).await)?)
    }

    /// When a live (unrevoked) session was created, i.e. when its login happened.
    pub async fn session_started_at(&self, id: SessionId) -> Result<Option<i64>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_scalar(STARTED_AT).bind(id).fetch_optional(p).await)?)
    }

    /// When a live session was signed in and last used a second factor.
    pub async fn session_auth(&self, id: SessionId) -> Result<Option<SessionAuth>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(AUTH).bind(id).fetch_optional(p).await)?)
    }

    /// Active (not revoked, not expired) sessions of a user.
    pub async fn active_session_count(&self, user_id: UserId, now_ms: i64) -> Result<i64, StoreError> {
        Ok(on_db!(self, p => sqlx::query_scalar(ACTIVE_COUNT).bind(user_id).bind(now_ms).fetch_one(p).await)?)
    }

    /// Sessions revoked at or after `since_ms`, and those deleted since with their organization or
    /// user (the revocation feed, and the list rebuilt at start).
    pub async fn sessions_revoked_since(&self, since_ms: i64) -> Result<Vec<SessionId>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_scalar(RECENTLY_REVOKED).bind(since_ms).fetch_all(p).await)?)
    }

    /// Deletes expired sessions, sessions revoked before `revoked_before_ms` (kept until then so
    /// a restart can rebuild the revocation list), and expired refresh tokens, in batches.
    /// Returns (sessions, tokens) deleted.
    pub async fn cleanup_sessions(&self, now_ms: i64, revoked_before_ms: i64) -> Result<(u64, u64), StoreError> {
        // Tokens first, the expired ones and, on SQLite, those of the sessions about to go (a
        // revoked session's consumed tokens live on until they expire): a session's delete would
        // otherwise cascade to all of its tokens in one batch (50 sessions took 433 ms on SQLite
        // at a million users, 33 ms after this). PostgreSQL keeps the cascade (its sessions'
        // batches stayed under 23 ms there): it planned this pass as a scan of the whole token
        // table (16.8 s at a million users) once the sessions' tokens were already gone.
        let mut tokens = self
            .delete_batched_in_order("refresh_tokens", "expires_at_ms < $1", Some("expires_at_ms"), &[now_ms])
            .await?;
        if self.engine() == super::Engine::Sqlite {
            tokens += self.delete_batched("refresh_tokens", CLEAN_TOKENS, &[now_ms, revoked_before_ms]).await?;
        }
        let sessions = self.delete_batched("sessions", CLEAN, &[now_ms, revoked_before_ms]).await?;
        self.delete_batched("ended_sessions", CLEAN_ENDED, &[revoked_before_ms]).await?;
        Ok((sessions, tokens))
    }
}

impl Tx {
    pub async fn insert_session(&mut self, s: &NewSession<'_>) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(INSERT).bind(s.id).bind(s.user_id).bind(s.organization_id)
            .bind(s.user_agent).bind(s.ip).bind(s.now_ms).bind(s.expires_at_ms).bind(s.amr)
            .bind(s.mfa.then_some(s.now_ms)).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// A second factor was just used in this session (step-up): its `amr` and times change.
    pub async fn session_stepped_up(&mut self, id: SessionId, amr: &str, now_ms: i64) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(STEPPED_UP).bind(id).bind(amr).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Reads a session and locks it until commit (`FOR UPDATE` on PostgreSQL; SQLite's write
    /// transaction already excludes other writers).
    pub async fn session_for_update(&mut self, id: SessionId) -> Result<Option<SessionState>, StoreError> {
        Ok(match &mut self.0 {
            TxInner::Sqlite(t) => sqlx::query_as(STATE).bind(id).fetch_optional(&mut **t).await?,
            TxInner::Postgres(t) => sqlx::query_as(STATE_FOR_UPDATE).bind(id).fetch_optional(&mut **t).await?,
        })
    }

    /// Moves a session to another organization (the caller checked the membership).
    pub async fn set_session_org(&mut self, id: SessionId, org: OrgId) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(SET_ACTIVE_ORG).bind(id).bind(org).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn touch_session(&mut self, session_id: SessionId, now_ms: i64) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(TOUCH).bind(session_id).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Revokes one session; `false` if it was already revoked or does not exist.
    pub async fn revoke_session(&mut self, session_id: SessionId, now_ms: i64) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(REVOKE).bind(session_id).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Revokes every session of a user and returns their ids.
    pub async fn revoke_user_sessions(&mut self, user_id: UserId, now_ms: i64) -> Result<Vec<SessionId>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_scalar(REVOKE_USER).bind(user_id).bind(now_ms).fetch_all(&mut *c).await)?)
    }

    /// Revokes a session of this user (not someone else's) and deletes its refresh tokens.
    pub async fn revoke_own_session(
        &mut self,
        user_id: UserId,
        session_id: SessionId,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(REVOKE_OWN).bind(session_id).bind(user_id).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        if n == 1 {
            self.delete_session_refresh_tokens(session_id).await?;
        }
        Ok(n == 1)
    }

    /// Revokes every other session of the user, deleting their refresh tokens; returns their ids.
    pub async fn revoke_other_sessions(
        &mut self,
        user_id: UserId,
        keep: SessionId,
        now_ms: i64,
    ) -> Result<Vec<SessionId>, StoreError> {
        let ids: Vec<SessionId> = on_tx!(self, c => sqlx::query_scalar(REVOKE_OTHERS).bind(user_id).bind(keep).bind(now_ms)
            .fetch_all(&mut *c).await)?;
        for id in &ids {
            self.delete_session_refresh_tokens(*id).await?;
        }
        Ok(ids)
    }
}
