//! What the admin console reads and the changes only admins make.

use uuid::Uuid;

use super::accounts::UserRow;
use super::{Db, Store, StoreError, Tx, TxInner, on_db, on_tx};
use crate::domain::{JobStatus, PlatformRole, SessionId, UserId};

/// The dashboard's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub users: i64,
    pub signups_since: i64,
    pub disabled: i64,
    pub active_sessions: i64,
}

/// A session of any status, for the user detail page.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    pub id: SessionId,
    pub user_agent: String,
    pub ip: Option<String>,
    pub created_at_ms: i64,
    pub last_used_at_ms: i64,
    pub expires_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

/// A failed or failing email job.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FailedEmail {
    pub id: Uuid,
    pub to_email: String,
    pub template: String,
    pub status: JobStatus,
    pub attempt_count: i32,
    pub last_error: Option<String>,
    pub updated_at_ms: i64,
}

/// A challenge that went wrong: expired unconsumed, or out of attempts or resends.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RiskyChallenge {
    pub id: Uuid,
    pub purpose: String,
    pub email: String,
    pub opaque: bool,
    pub attempt_count: i32,
    pub max_attempts: i32,
    pub resend_count: i32,
    pub max_resends: i32,
    pub expires_at_ms: i64,
    pub created_at_ms: i64,
}

/// An allowlisted email.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AllowedEmail {
    pub id: Uuid,
    pub email: String,
    pub created_at_ms: i64,
}

const STATS: &str = "SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM users WHERE created_at_ms >= $1), \
     (SELECT COUNT(*) FROM users WHERE disabled_at_ms IS NOT NULL), \
     (SELECT COUNT(*) FROM sessions WHERE revoked_at_ms IS NULL AND expires_at_ms > $2)";
const USER_COLS: &str = "SELECT id, email, username, created_at_ms, disabled_at_ms FROM users";
/// Email prefix or username prefix, each side bounded by the index it walks, merged by email.
const SEARCH_SQLITE: &str = "SELECT id, email, username, created_at_ms, disabled_at_ms FROM ( \
     SELECT * FROM (SELECT id, email, username, created_at_ms, disabled_at_ms FROM users \
     WHERE email >= $1 AND email < $2 ORDER BY email LIMIT $3) \
     UNION SELECT * FROM (SELECT id, email, username, created_at_ms, disabled_at_ms FROM users \
     WHERE username_normalized >= $1 AND username_normalized < $2 ORDER BY username_normalized LIMIT $3)) \
     ORDER BY email LIMIT $4 OFFSET $5";
const SEARCH_PG: &str = "SELECT id, email, username, created_at_ms, disabled_at_ms FROM ( \
     (SELECT id, email, username, created_at_ms, disabled_at_ms FROM users \
     WHERE email ~>=~ $1 AND email ~<~ $2 ORDER BY email USING ~<~ LIMIT $3) \
     UNION (SELECT id, email, username, created_at_ms, disabled_at_ms FROM users \
     WHERE username_normalized ~>=~ $1 AND username_normalized ~<~ $2 ORDER BY username_normalized USING ~<~ LIMIT $3)) m \
     ORDER BY email COLLATE \"C\" LIMIT $4 OFFSET $5";
const USER_SESSIONS: &str = "SELECT id, user_agent, ip, created_at_ms, last_used_at_ms, expires_at_ms, revoked_at_ms \
     FROM sessions WHERE user_id = $1 ORDER BY created_at_ms DESC, id LIMIT 100";
const FAILED_EMAILS: &str = "SELECT id, to_email, template, status, attempt_count, last_error, updated_at_ms \
     FROM email_jobs WHERE status = 'failed' OR last_error IS NOT NULL ORDER BY updated_at_ms DESC, id LIMIT $1 OFFSET $2";
const RISKY: &str = "SELECT id, purpose, email, opaque, attempt_count, max_attempts, resend_count, max_resends, \
     expires_at_ms, created_at_ms FROM challenges WHERE consumed_at_ms IS NULL AND (opaque OR expires_at_ms < $1 \
     OR attempt_count >= max_attempts OR resend_count >= max_resends) ORDER BY created_at_ms DESC, id LIMIT $2 OFFSET $3";
const REVOKE_ROLE: &str = "DELETE FROM user_platform_roles WHERE user_id = $1 AND role = $2";
/// Locks the admin role rows so that two admins cannot demote or disable each other at once.
const LOCK_ADMINS_PG: &str = "SELECT user_id FROM user_platform_roles WHERE role = 'admin' FOR UPDATE";
const SESSION_OWNER: &str = "SELECT user_id FROM sessions WHERE id = $1";
const ALLOWED: &str = "SELECT COUNT(*) FROM allowed_emails WHERE email = $1";
const ALLOW: &str = "INSERT INTO allowed_emails (id, email, created_by_user_id, created_at_ms) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (email) DO NOTHING";
const DISALLOW: &str = "DELETE FROM allowed_emails WHERE id = $1 RETURNING email";
const ALLOWLIST: &str = "SELECT id, email, created_at_ms FROM allowed_emails \
     WHERE $1 = '' OR email LIKE '%' || $1 || '%' ESCAPE '\\' ORDER BY email LIMIT $2 OFFSET $3";

impl Store {
    pub async fn stats(&self, since_ms: i64, now_ms: i64) -> Result<Stats, StoreError> {
        let (users, signups_since, disabled, active_sessions): (i64, i64, i64, i64) =
            on_db!(self, p => sqlx::query_as(STATS).bind(since_ms).bind(now_ms).fetch_one(p).await)?;
        Ok(Stats { users, signups_since, disabled, active_sessions })
    }

    /// Users whose email or (lowercased) username starts with `prefix`, by email: each side
    /// reads at most `offset + limit` rows of its index, whatever the number of matches.
    pub async fn search_users(&self, prefix: &str, limit: i64, offset: i64) -> Result<Vec<UserRow>, StoreError> {
        // Every string that starts with `prefix` sorts (bytewise) between it and it followed by
        // the highest code point.
        let upper = format!("{prefix}\u{10FFFF}");
        let each = offset.saturating_add(limit);
        Ok(match &self.db {
            Db::Sqlite { read, .. } => {
                sqlx::query_as(SEARCH_SQLITE)
                    .bind(prefix)
                    .bind(&upper)
                    .bind(each)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(read)
                    .await?
            }
            Db::Postgres { pool, .. } => {
                sqlx::query_as(SEARCH_PG)
                    .bind(prefix)
                    .bind(&upper)
                    .bind(each)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(pool)
                    .await?
            }
        })
    }

    /// The newest users.
    pub async fn newest_users(&self, limit: i64, offset: i64) -> Result<Vec<UserRow>, StoreError> {
        let q = format!("{USER_COLS} ORDER BY created_at_ms DESC, id LIMIT $1 OFFSET $2");
        Ok(on_db!(self, p => sqlx::query_as(&q).bind(limit).bind(offset).fetch_all(p).await)?)
    }

    pub async fn user_sessions(&self, user: UserId) -> Result<Vec<SessionRow>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(USER_SESSIONS).bind(user).fetch_all(p).await)?)
    }

    pub async fn failed_emails(&self, limit: i64, offset: i64) -> Result<Vec<FailedEmail>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(FAILED_EMAILS).bind(limit).bind(offset).fetch_all(p).await)?)
    }

    pub async fn risky_challenges(
        &self,
        now_ms: i64,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<RiskyChallenge>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(RISKY).bind(now_ms).bind(limit).bind(offset).fetch_all(p).await)?)
    }

    pub async fn is_allowed(&self, email: &str) -> Result<bool, StoreError> {
        let n: i64 = on_db!(self, p => sqlx::query_scalar(ALLOWED).bind(email).fetch_one(p).await)?;
        Ok(n > 0)
    }

    /// Entries containing `search` (taken literally), by email.
    pub async fn allowlist(&self, search: &str, limit: i64, offset: i64) -> Result<Vec<AllowedEmail>, StoreError> {
        let literal = search.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        Ok(on_db!(self, p => sqlx::query_as(ALLOWLIST).bind(&literal).bind(limit).bind(offset).fetch_all(p).await)?)
    }
}

impl Tx {
    /// Whether `email` is on the allowlist, as this transaction sees it.
    pub async fn is_allowed(&mut self, email: &str) -> Result<bool, StoreError> {
        let n: i64 = on_tx!(self, c => sqlx::query_scalar(ALLOWED).bind(email).fetch_one(&mut *c).await)?;
        Ok(n > 0)
    }

    pub async fn revoke_role(&mut self, user: UserId, role: PlatformRole) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(REVOKE_ROLE).bind(user).bind(role.as_str())
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Locks the admin role until commit (PostgreSQL row locks; SQLite's write transaction
    /// already excludes other writers), before counting the admins that would remain.
    pub async fn lock_admin_role(&mut self) -> Result<(), StoreError> {
        if let TxInner::Postgres(t) = &mut self.0 {
            sqlx::query(LOCK_ADMINS_PG).fetch_all(&mut **t).await?;
        }
        Ok(())
    }

    pub async fn session_owner(&mut self, session: SessionId) -> Result<Option<UserId>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_scalar(SESSION_OWNER).bind(session).fetch_optional(&mut *c).await)?)
    }

    /// Adds an email to the allowlist; `false` if it was already there.
    pub async fn allow_email(&mut self, email: &str, by: Option<UserId>, now_ms: i64) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(ALLOW).bind(Uuid::new_v4()).bind(email).bind(by).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Removes an allowlist entry; its email, if it existed.
    pub async fn disallow_email(&mut self, id: Uuid) -> Result<Option<String>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_scalar(DISALLOW).bind(id).fetch_optional(&mut *c).await)?)
    }
}
