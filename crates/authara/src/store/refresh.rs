//! Refresh tokens (stored only as SHA-256 hashes) and the rotation statement, the hottest write.
//!
//! The common refresh is one call: consume the presented token if it is due, insert its
//! successor, and read everything the service decides on (session, user, membership role,
//! platform roles) in the same round trip. The engines differ in how they aggregate roles and
//! in how the three steps are chained, so each has its own statement, assembled at compile time
//! from shared pieces (`context!`).

use uuid::Uuid;

use super::{StoreError, Tx, TxInner, on_tx};
use crate::domain::{OrgId, OrgRole, PlatformRole, SessionId, UserId};

/// A refresh token with the session it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefreshRow {
    pub id: Uuid,
    pub session_id: SessionId,
    pub organization_id: OrgId,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub consumed_at_ms: Option<i64>,
    pub user_id: UserId,
    pub session_expires_at_ms: i64,
    pub session_revoked_at_ms: Option<i64>,
}

/// A refresh token with what the refresh needs to decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshContext {
    pub token: RefreshRow,
    pub session_last_used_at_ms: i64,
    pub user_disabled: bool,
    /// The user's role in the token's organization; `None` when no longer a member.
    pub org_role: Option<OrgRole>,
    /// Platform roles, sorted.
    pub roles: Vec<PlatformRole>,
    /// What the session's sign-in proved (RFC 8176 `amr`, space-separated) and when.
    pub session_amr: String,
    pub session_auth_time_ms: i64,
}

#[derive(sqlx::FromRow)]
struct ContextRow {
    #[sqlx(flatten)]
    token: RefreshRow,
    session_last_used_at_ms: i64,
    session_amr: String,
    session_auth_time_ms: i64,
    user_disabled_at_ms: Option<i64>,
    org_role: Option<OrgRole>,
    roles: Option<String>,
    rotated: bool,
}

impl ContextRow {
    fn into_context(self) -> Result<(RefreshContext, bool), StoreError> {
        let mut roles = self
            .roles
            .unwrap_or_default()
            .split(',')
            .filter(|x| !x.is_empty())
            .map(PlatformRole::parse)
            .collect::<Result<Vec<_>, _>>()?;
        roles.sort_unstable();
        let ctx = RefreshContext {
            token: self.token,
            session_last_used_at_ms: self.session_last_used_at_ms,
            user_disabled: self.user_disabled_at_ms.is_some(),
            org_role: self.org_role,
            roles,
            session_amr: self.session_amr,
            session_auth_time_ms: self.session_auth_time_ms,
        };
        Ok((ctx, self.rotated))
    }
}

/// A refresh token to insert.
#[derive(Debug, Clone)]
pub struct NewRefresh<'a> {
    pub session_id: SessionId,
    pub organization_id: OrgId,
    pub token_hash: &'a [u8],
    pub now_ms: i64,
    pub expires_at_ms: i64,
}

/// The context query with its role aggregate and "rotated" expression filled in.
macro_rules! context {
    ($agg:literal, $rotated:literal) => {
        concat!(
            "SELECT t.id, t.session_id, t.organization_id, t.created_at_ms, t.expires_at_ms, t.consumed_at_ms, ",
            "s.user_id, s.expires_at_ms AS session_expires_at_ms, s.revoked_at_ms AS session_revoked_at_ms, ",
            "s.last_used_at_ms AS session_last_used_at_ms, s.amr AS session_amr, s.auth_time_ms AS session_auth_time_ms, ",
            "u.disabled_at_ms AS user_disabled_at_ms, m.role AS org_role, ",
            "(SELECT ",
            $agg,
            " FROM user_platform_roles r WHERE r.user_id = s.user_id) AS roles, ",
            $rotated,
            " AS rotated ",
            "FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id JOIN users u ON u.id = s.user_id ",
            "LEFT JOIN organization_memberships m ON m.organization_id = t.organization_id AND m.user_id = s.user_id ",
            "WHERE t.token_hash = $1"
        )
    };
}

/// Consume the token if it is unconsumed, unexpired and was created at or before `$3` (the
/// rotation policy); `$2` is now.
macro_rules! consume_if_due {
    () => {
        "UPDATE refresh_tokens SET consumed_at_ms = $2 \
         WHERE token_hash = $1 AND consumed_at_ms IS NULL AND expires_at_ms >= $2 AND created_at_ms <= $3"
    };
}

/// Insert the successor (`$4` id, `$5` hash), expiring at `$6` or with the session.
macro_rules! insert_successor {
    ($min:literal, $from:literal) => {
        concat!(
            "INSERT INTO refresh_tokens (id, session_id, organization_id, token_hash, created_at_ms, expires_at_ms) ",
            "SELECT $4, t.session_id, t.organization_id, $5, $2, ",
            $min,
            "($6, s.expires_at_ms) FROM ",
            $from,
            " JOIN sessions s ON s.id = t.session_id"
        )
    };
}

const CONTEXT_SQLITE: &str = context!("group_concat(r.role, ',')", "FALSE");
/// PostgreSQL locks the token row until commit; SQLite's transaction holds the write lock.
const CONTEXT_PG: &str = concat!(context!("string_agg(r.role, ',')", "FALSE"), " FOR UPDATE OF t");
/// SQLite: three statements in one call. `changes()` is the row count of the statement before:
/// the successor is inserted only if the token was consumed, and the context reports whether
/// the successor was inserted.
const ROTATE_SQLITE: &str = concat!(
    consume_if_due!(),
    "; ",
    insert_successor!("min", "refresh_tokens t"),
    " WHERE t.token_hash = $1 AND changes() = 1; ",
    context!("group_concat(r.role, ',')", "changes() = 1")
);
/// PostgreSQL: one statement with data-modifying CTEs. The outer query reads the snapshot from
/// before the update (the token as presented); the update holds the row lock until commit.
const ROTATE_PG: &str = concat!(
    "WITH c AS (",
    consume_if_due!(),
    " RETURNING session_id, organization_id), i AS (",
    insert_successor!("LEAST", "c t"),
    " RETURNING 1) ",
    context!("string_agg(r.role, ',')", "EXISTS (SELECT 1 FROM i)")
);
const INSERT: &str = "INSERT INTO refresh_tokens (id, session_id, organization_id, token_hash, created_at_ms, expires_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6)";
const BY_HASH: &str = "SELECT t.id, t.session_id, t.organization_id, t.created_at_ms, t.expires_at_ms, t.consumed_at_ms, \
     s.user_id, s.expires_at_ms AS session_expires_at_ms, s.revoked_at_ms AS session_revoked_at_ms \
     FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = $1";
const CONSUME: &str = "UPDATE refresh_tokens SET consumed_at_ms = $2 WHERE id = $1 AND consumed_at_ms IS NULL";
const DELETE_USER_TOKENS: &str =
    "DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE user_id = $1)";
const DELETE_USER_TOKENS_EXCEPT: &str =
    "DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE user_id = $1 AND id <> $2)";
const DELETE_SESSION_TOKENS: &str = "DELETE FROM refresh_tokens WHERE session_id = $1";
const LIVE_FOR_SESSION: &str =
    "SELECT COUNT(*) FROM refresh_tokens WHERE session_id = $1 AND consumed_at_ms IS NULL AND expires_at_ms >= $2";

impl super::Store {
    /// Unconsumed, unexpired refresh tokens of a session (one per rotation step).
    pub async fn live_refresh_tokens(&self, session: SessionId, now_ms: i64) -> Result<i64, StoreError> {
        Ok(
            super::on_db!(self, p => sqlx::query_scalar(LIVE_FOR_SESSION).bind(session).bind(now_ms).fetch_one(p).await)?,
        )
    }

    /// Looks up a refresh token (no lock), e.g. to find the session at logout.
    pub async fn refresh_by_hash(&self, hash: &[u8]) -> Result<Option<RefreshRow>, StoreError> {
        Ok(super::on_db!(self, p => sqlx::query_as(BY_HASH).bind(hash).fetch_optional(p).await)?)
    }
}

impl Tx {
    pub async fn insert_refresh(&mut self, r: &NewRefresh<'_>) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(INSERT).bind(crate::domain::time_ordered_uuid()).bind(r.session_id).bind(r.organization_id)
            .bind(r.token_hash).bind(r.now_ms).bind(r.expires_at_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// A token without a lock (the grace path reads the successor's state).
    pub async fn refresh_by_hash(&mut self, hash: &[u8]) -> Result<Option<RefreshRow>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_as(BY_HASH).bind(hash).fetch_optional(&mut *c).await)?)
    }

    /// [`RefreshContext`] of a token, with the token row locked until commit (`FOR UPDATE OF t`
    /// on PostgreSQL; SQLite's write transaction already excludes other writers).
    pub async fn refresh_context_for_update(&mut self, hash: &[u8]) -> Result<Option<RefreshContext>, StoreError> {
        let row: Option<ContextRow> = match &mut self.0 {
            TxInner::Sqlite(t) => sqlx::query_as(CONTEXT_SQLITE).bind(hash).fetch_optional(&mut **t).await?,
            TxInner::Postgres(t) => sqlx::query_as(CONTEXT_PG).bind(hash).fetch_optional(&mut **t).await?,
        };
        row.map(|r| r.into_context().map(|(c, _)| c)).transpose()
    }

    /// The common refresh in one round trip: if the token is unconsumed, unexpired and was
    /// created at or before `created_before_ms` (due for rotation), marks it consumed at `now_ms`
    /// and inserts the successor `successor_hash`, expiring at `successor_expires_at_ms` or with
    /// the session, whichever is first; then reads the [`RefreshContext`]. Returns whether it
    /// rotated. When it rotated, the caller still checks the context and drops the transaction
    /// to refuse. When it did not and the caller will write the token's state (it is consumed:
    /// reuse or grace; or due: a concurrent rotation won), PostgreSQL reads it again with the row
    /// locked, as [`Self::refresh_context_for_update`] does; a token that is simply not due needs
    /// no lock, and SQLite's transaction holds the write lock anyway.
    pub async fn rotate_refresh_if_due(
        &mut self,
        hash: &[u8],
        now_ms: i64,
        created_before_ms: i64,
        successor_hash: &[u8],
        successor_expires_at_ms: i64,
    ) -> Result<Option<(RefreshContext, bool)>, StoreError> {
        macro_rules! bind_all {
            ($q:expr) => {
                sqlx::query_as::<_, ContextRow>($q)
                    .bind(hash)
                    .bind(now_ms)
                    .bind(created_before_ms)
                    .bind(crate::domain::time_ordered_uuid())
                    .bind(successor_hash)
                    .bind(successor_expires_at_ms)
            };
        }
        let row = match &mut self.0 {
            TxInner::Sqlite(t) => bind_all!(ROTATE_SQLITE).fetch_optional(&mut **t).await?,
            TxInner::Postgres(t) => bind_all!(ROTATE_PG).fetch_optional(&mut **t).await?,
        };
        match row.map(ContextRow::into_context).transpose()? {
            Some((ctx, false))
                if matches!(self.0, TxInner::Postgres(_))
                    && (ctx.token.consumed_at_ms.is_some() || ctx.token.created_at_ms <= created_before_ms) =>
            {
                Ok(self.refresh_context_for_update(hash).await?.map(|c| (c, false)))
            }
            other => Ok(other),
        }
    }

    /// Marks a token consumed; `false` if it already was.
    pub async fn consume_refresh(&mut self, id: Uuid, now_ms: i64) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(CONSUME).bind(id).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn delete_user_refresh_tokens(&mut self, user_id: UserId) -> Result<u64, StoreError> {
        Ok(on_tx!(self, c => sqlx::query(DELETE_USER_TOKENS).bind(user_id)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?)
    }

    /// The refresh tokens of the user's sessions but `keep`.
    pub async fn delete_user_refresh_tokens_except(
        &mut self,
        user_id: UserId,
        keep: SessionId,
    ) -> Result<u64, StoreError> {
        Ok(on_tx!(self, c => sqlx::query(DELETE_USER_TOKENS_EXCEPT).bind(user_id).bind(keep)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?)
    }

    pub async fn delete_session_refresh_tokens(&mut self, session_id: SessionId) -> Result<u64, StoreError> {
        Ok(on_tx!(self, c => sqlx::query(DELETE_SESSION_TOKENS).bind(session_id)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?)
    }
}
