//! Sessions and refresh tokens (stored only as SHA-256 hashes).

use std::sync::LazyLock;

use uuid::Uuid;

use super::{Store, StoreError, Tx, on_db, on_tx};

#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub organization_id: Uuid,
    pub user_agent: &'a str,
    pub ip: Option<&'a str>,
    pub now_ms: i64,
    pub expires_at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct NewRefresh<'a> {
    pub session_id: Uuid,
    pub organization_id: Uuid,
    pub token_hash: &'a [u8],
    pub now_ms: i64,
    pub expires_at_ms: i64,
}

/// A refresh token with the session it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRow {
    pub id: Uuid,
    pub session_id: Uuid,
    pub organization_id: Uuid,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub consumed_at_ms: Option<i64>,
    pub user_id: Uuid,
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
    pub org_role: Option<String>,
    /// Platform roles, sorted.
    pub roles: Vec<String>,
}

type RefreshTuple = (Uuid, Uuid, Uuid, i64, i64, Option<i64>, Uuid, i64, Option<i64>);

const REFRESH_COLS: &str = "SELECT t.id, t.session_id, t.organization_id, t.created_at_ms, t.expires_at_ms, t.consumed_at_ms, \
     s.user_id, s.expires_at_ms, s.revoked_at_ms FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
     WHERE t.token_hash = $1";
/// Everything a refresh decides on, in one statement: the token, its session, the user's
/// disabled flag, their role in the token's organization and their platform roles, and whether
/// the statement rotated the token (see [`Tx::rotate_refresh_if_due`]). The engines differ only
/// in how they aggregate the roles (`string_agg` / `group_concat`) and in how the rotation is
/// written, so the statements are built from one text with those pieces filled in.
const REFRESH_CONTEXT: &str = "SELECT t.id, t.session_id, t.organization_id, t.created_at_ms, t.expires_at_ms, \
     t.consumed_at_ms, s.user_id, s.expires_at_ms, s.revoked_at_ms, s.last_used_at_ms, u.disabled_at_ms, m.role, \
     (SELECT {AGG} FROM user_platform_roles r WHERE r.user_id = s.user_id), {ROTATED} \
     FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id JOIN users u ON u.id = s.user_id \
     LEFT JOIN organization_memberships m ON m.organization_id = t.organization_id AND m.user_id = s.user_id \
     WHERE t.token_hash = $1";
const SQLITE_AGG: &str = "group_concat(r.role, ',')";
const PG_AGG: &str = "string_agg(r.role, ',')";
static REFRESH_CONTEXT_SQLITE: LazyLock<String> =
    LazyLock::new(|| REFRESH_CONTEXT.replace("{AGG}", SQLITE_AGG).replace("{ROTATED}", "FALSE"));
static REFRESH_CONTEXT_PG: LazyLock<String> = LazyLock::new(|| {
    format!("{} FOR UPDATE OF t", REFRESH_CONTEXT.replace("{AGG}", PG_AGG).replace("{ROTATED}", "FALSE"))
});
/// The optimistic rotation: consume the token if it is unconsumed, unexpired and was created at
/// or before `$3` (the rotation policy), insert the successor (`$4` id, `$5` hash, expiring at
/// `$6` or with the session), then read the context. `$2` is now.
const ROTATE_IF_DUE: &str = "UPDATE refresh_tokens SET consumed_at_ms = $2 \
     WHERE token_hash = $1 AND consumed_at_ms IS NULL AND expires_at_ms >= $2 AND created_at_ms <= $3";
const INSERT_SUCCESSOR: &str = "INSERT INTO refresh_tokens (id, session_id, organization_id, token_hash, created_at_ms, expires_at_ms) \
     SELECT $4, t.session_id, t.organization_id, $5, $2, {MIN}($6, s.expires_at_ms) \
     FROM {FROM} JOIN sessions s ON s.id = t.session_id";
/// SQLite: three statements in one call. `changes()` is the row count of the statement before:
/// the successor is inserted only if the token was consumed, and the context reports whether
/// the successor was inserted. The transaction holds the database's write lock.
static ROTATE_IF_DUE_SQLITE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{ROTATE_IF_DUE}; {} WHERE t.token_hash = $1 AND changes() = 1; {}",
        INSERT_SUCCESSOR.replace("{MIN}", "min").replace("{FROM}", "refresh_tokens t"),
        REFRESH_CONTEXT.replace("{AGG}", SQLITE_AGG).replace("{ROTATED}", "changes() = 1")
    )
});
/// PostgreSQL: one statement with data-modifying CTEs. The outer query reads the snapshot from
/// before the update (the token as presented); the update holds the row lock until commit.
static ROTATE_IF_DUE_PG: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH c AS ({ROTATE_IF_DUE} RETURNING session_id, organization_id), i AS ({} RETURNING 1) {}",
        INSERT_SUCCESSOR.replace("{MIN}", "LEAST").replace("{FROM}", "c t"),
        REFRESH_CONTEXT.replace("{AGG}", PG_AGG).replace("{ROTATED}", "EXISTS (SELECT 1 FROM i)")
    )
});
const INSERT_SESSION: &str = "INSERT INTO sessions (id, user_id, active_organization_id, user_agent, ip, created_at_ms, \
     last_used_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $6, $7)";
const INSERT_REFRESH: &str = "INSERT INTO refresh_tokens (id, session_id, organization_id, token_hash, created_at_ms, expires_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6)";
const CONSUME: &str = "UPDATE refresh_tokens SET consumed_at_ms = $2 WHERE id = $1 AND consumed_at_ms IS NULL";
const TOUCH: &str = "UPDATE sessions SET last_used_at_ms = $2 WHERE id = $1";
const REVOKE: &str = "UPDATE sessions SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL";
const REVOKE_USER: &str =
    "UPDATE sessions SET revoked_at_ms = $2 WHERE user_id = $1 AND revoked_at_ms IS NULL RETURNING id";
const DELETE_USER_TOKENS: &str =
    "DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions WHERE user_id = $1)";
const LIST_ACTIVE: &str = "SELECT id, user_agent, ip, created_at_ms, last_used_at_ms FROM sessions \
     WHERE user_id = $1 AND revoked_at_ms IS NULL AND expires_at_ms > $2 ORDER BY created_at_ms DESC, id";
const REVOKE_OWN: &str =
    "UPDATE sessions SET revoked_at_ms = $3 WHERE id = $1 AND user_id = $2 AND revoked_at_ms IS NULL";
const REVOKE_OTHERS: &str =
    "UPDATE sessions SET revoked_at_ms = $3 WHERE user_id = $1 AND id <> $2 AND revoked_at_ms IS NULL RETURNING id";
const DELETE_SESSION_TOKENS: &str = "DELETE FROM refresh_tokens WHERE session_id = $1";
const SESSION_ACTIVE: &str =
    "SELECT COUNT(*) FROM sessions WHERE user_id = $1 AND revoked_at_ms IS NULL AND expires_at_ms > $2";
const CLEAN_SESSIONS: &str = "DELETE FROM sessions WHERE expires_at_ms < $1 OR revoked_at_ms < $2";
const RECENTLY_REVOKED: &str = "SELECT id FROM sessions WHERE revoked_at_ms >= $1";
const CLEAN_TOKENS: &str = "DELETE FROM refresh_tokens WHERE expires_at_ms < $1";

fn refresh(t: RefreshTuple) -> RefreshRow {
    RefreshRow {
        id: t.0,
        session_id: t.1,
        organization_id: t.2,
        created_at_ms: t.3,
        expires_at_ms: t.4,
        consumed_at_ms: t.5,
        user_id: t.6,
        session_expires_at_ms: t.7,
        session_revoked_at_ms: t.8,
    }
}

type ContextRow = (
    Uuid,
    Uuid,
    Uuid,
    i64,
    i64,
    Option<i64>,
    Uuid,
    i64,
    Option<i64>,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    bool,
);

fn context(r: ContextRow) -> (RefreshContext, bool) {
    let mut roles: Vec<String> =
        r.12.unwrap_or_default().split(',').filter(|x| !x.is_empty()).map(str::to_owned).collect();
    roles.sort_unstable();
    let ctx = RefreshContext {
        token: refresh((r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8)),
        session_last_used_at_ms: r.9,
        user_disabled: r.10.is_some(),
        org_role: r.11,
        roles,
    };
    (ctx, r.13)
}

/// A session as the account page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: Uuid,
    pub user_agent: String,
    pub ip: Option<String>,
    pub created_at_ms: i64,
    pub last_used_at_ms: i64,
}

impl Store {
    /// Active sessions of a user, newest first.
    pub async fn active_sessions(&self, user_id: Uuid, now_ms: i64) -> Result<Vec<SessionInfo>, StoreError> {
        let rows: Vec<(Uuid, String, Option<String>, i64, i64)> =
            on_db!(self, p => sqlx::query_as(LIST_ACTIVE).bind(user_id).bind(now_ms).fetch_all(p).await)?;
        Ok(rows
            .into_iter()
            .map(|(id, user_agent, ip, created_at_ms, last_used_at_ms)| SessionInfo {
                id,
                user_agent,
                ip,
                created_at_ms,
                last_used_at_ms,
            })
            .collect())
    }

    /// Looks up a refresh token (no lock), e.g. to find the session at logout.
    pub async fn refresh_by_hash(&self, hash: &[u8]) -> Result<Option<RefreshRow>, StoreError> {
        let row: Option<RefreshTuple> =
            on_db!(self, p => sqlx::query_as(REFRESH_COLS).bind(hash).fetch_optional(p).await)?;
        Ok(row.map(refresh))
    }

    /// Active (not revoked, not expired) sessions of a user.
    pub async fn active_session_count(&self, user_id: Uuid, now_ms: i64) -> Result<i64, StoreError> {
        Ok(on_db!(self, p => sqlx::query_scalar(SESSION_ACTIVE).bind(user_id).bind(now_ms).fetch_one(p).await)?)
    }

    /// Sessions revoked at or after `since_ms` (to rebuild the revocation list at start).
    pub async fn sessions_revoked_since(&self, since_ms: i64) -> Result<Vec<Uuid>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_scalar(RECENTLY_REVOKED).bind(since_ms).fetch_all(p).await)?)
    }

    /// Deletes expired sessions, sessions revoked before `revoked_before_ms` (kept until then so
    /// a restart can rebuild the revocation list), and expired refresh tokens, in one transaction.
    /// Consumed tokens that have not expired stay: they detect reuse. Returns rows deleted.
    pub async fn cleanup_sessions(&self, now_ms: i64, revoked_before_ms: i64) -> Result<(u64, u64), StoreError> {
        let mut tx = self.begin().await?;
        let sessions = on_tx!(&mut tx, c => sqlx::query(CLEAN_SESSIONS).bind(now_ms).bind(revoked_before_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        let tokens = on_tx!(&mut tx, c => sqlx::query(CLEAN_TOKENS).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok((sessions, tokens))
    }
}

impl Tx {
    pub async fn insert_session(&mut self, s: &NewSession<'_>) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(INSERT_SESSION).bind(s.id).bind(s.user_id).bind(s.organization_id)
            .bind(s.user_agent).bind(s.ip).bind(s.now_ms).bind(s.expires_at_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn insert_refresh(&mut self, r: &NewRefresh<'_>) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(INSERT_REFRESH).bind(Uuid::new_v4()).bind(r.session_id).bind(r.organization_id)
            .bind(r.token_hash).bind(r.now_ms).bind(r.expires_at_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Looks up a refresh token and locks it until commit. PostgreSQL takes a row lock
    /// (`FOR UPDATE OF t`); SQLite needs none, the transaction already holds the write lock
    /// (`BEGIN IMMEDIATE`), so concurrent refreshes of one token run one after the other.
    pub async fn refresh_for_update(&mut self, hash: &[u8]) -> Result<Option<RefreshRow>, StoreError> {
        let row: Option<RefreshTuple> = match self {
            Tx::Sqlite(t) => sqlx::query_as(REFRESH_COLS).bind(hash).fetch_optional(&mut **t).await?,
            Tx::Postgres(t) => {
                sqlx::query_as(&format!("{REFRESH_COLS} FOR UPDATE OF t")).bind(hash).fetch_optional(&mut **t).await?
            }
        };
        Ok(row.map(refresh))
    }

    /// [`RefreshContext`] of a token, with the token row locked until commit (`FOR UPDATE OF t`
    /// on PostgreSQL; SQLite's write transaction already excludes other writers).
    pub async fn refresh_context_for_update(&mut self, hash: &[u8]) -> Result<Option<RefreshContext>, StoreError> {
        let row: Option<ContextRow> = match self {
            Tx::Sqlite(t) => sqlx::query_as(&REFRESH_CONTEXT_SQLITE).bind(hash).fetch_optional(&mut **t).await?,
            Tx::Postgres(t) => sqlx::query_as(&REFRESH_CONTEXT_PG).bind(hash).fetch_optional(&mut **t).await?,
        };
        Ok(row.map(|r| context(r).0))
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
                    .bind(Uuid::new_v4())
                    .bind(successor_hash)
                    .bind(successor_expires_at_ms)
            };
        }
        let row = match self {
            Tx::Sqlite(t) => bind_all!(&ROTATE_IF_DUE_SQLITE).fetch_optional(&mut **t).await?,
            Tx::Postgres(t) => bind_all!(&ROTATE_IF_DUE_PG).fetch_optional(&mut **t).await?,
        };
        match row.map(context) {
            Some((ctx, false))
                if matches!(self, Tx::Postgres(_))
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

    pub async fn touch_session(&mut self, session_id: Uuid, now_ms: i64) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(TOUCH).bind(session_id).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Revokes one session; `false` if it was already revoked or does not exist.
    pub async fn revoke_session(&mut self, session_id: Uuid, now_ms: i64) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(REVOKE).bind(session_id).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Revokes every session of a user and returns their ids.
    pub async fn revoke_user_sessions(&mut self, user_id: Uuid, now_ms: i64) -> Result<Vec<Uuid>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_scalar(REVOKE_USER).bind(user_id).bind(now_ms).fetch_all(&mut *c).await)?)
    }

    /// Revokes a session of this user (not someone else's) and deletes its refresh tokens.
    pub async fn revoke_own_session(
        &mut self,
        user_id: Uuid,
        session_id: Uuid,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(REVOKE_OWN).bind(session_id).bind(user_id).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        if n == 1 {
            on_tx!(self, c => sqlx::query(DELETE_SESSION_TOKENS).bind(session_id)
                .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        }
        Ok(n == 1)
    }

    /// Revokes every other session of the user, deleting their refresh tokens; returns their ids.
    pub async fn revoke_other_sessions(
        &mut self,
        user_id: Uuid,
        keep: Uuid,
        now_ms: i64,
    ) -> Result<Vec<Uuid>, StoreError> {
        let ids: Vec<Uuid> = on_tx!(self, c => sqlx::query_scalar(REVOKE_OTHERS).bind(user_id).bind(keep).bind(now_ms)
            .fetch_all(&mut *c).await)?;
        for id in &ids {
            on_tx!(self, c => sqlx::query(DELETE_SESSION_TOKENS).bind(*id)
                .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        }
        Ok(ids)
    }

    pub async fn delete_user_refresh_tokens(&mut self, user_id: Uuid) -> Result<u64, StoreError> {
        Ok(on_tx!(self, c => sqlx::query(DELETE_USER_TOKENS).bind(user_id)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?)
    }
}
