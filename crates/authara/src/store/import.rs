//! Bulk writes of `authara import`: a batch row, then the users of a chunk with everything they
//! own, in the caller's transaction, and the batch's removal.
//!
//! PostgreSQL receives each table of a chunk as one `INSERT … SELECT FROM UNNEST(arrays)` (one
//! round trip per table and chunk); SQLite, in process, runs one prepared insert per row, which
//! costs microseconds. Existence checks take their list as arrays (PostgreSQL `= ANY`) or as a
//! JSON array (SQLite `json_each`), so every statement's text is fixed.

use uuid::Uuid;

use super::{Store, StoreError, Tx, TxInner, on_db, on_tx};
use crate::domain::{OrgId, UserId};

/// A user of a chunk.
#[derive(Debug, Clone)]
pub struct ImportUser {
    pub id: UserId,
    pub email: String,
    pub username: String,
    pub created_at_ms: i64,
    pub email_verified_at_ms: Option<i64>,
}

/// A row of `auth_providers`: a password hash, or an identity at a sign-in provider.
#[derive(Debug, Clone)]
pub struct ImportCredential {
    pub user_id: UserId,
    pub provider: String,
    pub subject: Option<String>,
    pub password_hash: Option<String>,
    pub created_at_ms: i64,
}

/// An organization the batch creates.
#[derive(Debug, Clone)]
pub struct ImportOrg {
    pub id: OrgId,
    pub name: String,
    /// `personal` or `team`.
    pub kind: &'static str,
    pub created_by: Option<UserId>,
    pub created_at_ms: i64,
}

/// A membership (`role`: owner, admin or member).
#[derive(Debug, Clone)]
pub struct ImportMembership {
    pub org_id: OrgId,
    pub user_id: UserId,
    pub role: &'static str,
    pub created_at_ms: i64,
}

/// A platform role (`admin`, `auditor`, `monitor`).
#[derive(Debug, Clone)]
pub struct ImportRole {
    pub user_id: UserId,
    pub role: &'static str,
    pub created_at_ms: i64,
}

/// Everything one chunk writes; organizations come before the memberships that name them.
#[derive(Debug, Clone, Default)]
pub struct ImportChunk {
    pub users: Vec<ImportUser>,
    pub credentials: Vec<ImportCredential>,
    pub orgs: Vec<ImportOrg>,
    pub memberships: Vec<ImportMembership>,
    pub roles: Vec<ImportRole>,
}

/// A batch as `authara import --undo` and the tests see it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ImportBatch {
    pub id: String,
    pub source: String,
    pub users: i64,
    pub organizations: i64,
    pub created_at_ms: i64,
    pub completed_at_ms: Option<i64>,
}

const INSERT_BATCH: &str = "INSERT INTO import_batches (id, source, created_at_ms) VALUES ($1, $2, $3)";
const COUNT_BATCH: &str =
    "UPDATE import_batches SET users = users + $2, organizations = organizations + $3 WHERE id = $1";
const COMPLETE_BATCH: &str = "UPDATE import_batches SET completed_at_ms = $2 WHERE id = $1";
const BATCH: &str =
    "SELECT id, source, users, organizations, created_at_ms, completed_at_ms FROM import_batches WHERE id = $1";
const DELETE_BATCH_ORGS: &str = "DELETE FROM organizations WHERE import_batch = $1";
/// The sessions an undo takes with it, for the revocation feed (see `ended_sessions`).
const END_BATCH_SESSIONS: &str = "INSERT INTO ended_sessions (id, ended_at_ms) SELECT id, $2 FROM sessions \
     WHERE (user_id IN (SELECT id FROM users WHERE import_batch = $1) \
     OR active_organization_id IN (SELECT id FROM organizations WHERE import_batch = $1)) AND expires_at_ms > $2 \
     ON CONFLICT (id) DO NOTHING";
const DELETE_BATCH_USERS: &str = "DELETE FROM users WHERE import_batch = $1";
const DELETE_BATCH: &str = "DELETE FROM import_batches WHERE id = $1";

const SQLITE_USER: &str = "INSERT INTO users (id, email, username, username_normalized, created_at_ms, updated_at_ms, \
     email_verified_at_ms, import_batch) VALUES ($1, $2, $3, $4, $5, $5, $6, $7)";
const SQLITE_CREDENTIAL: &str = "INSERT INTO auth_providers (id, user_id, provider, provider_user_id, password_hash, \
     created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $6)";
const SQLITE_ORG: &str = "INSERT INTO organizations (id, name, kind, created_by_user_id, created_at_ms, updated_at_ms, \
     import_batch) VALUES ($1, $2, $3, $4, $5, $5, $6)";
/// Memberships carry a copy of the member's account (migration 25); written here from the user
/// row the same chunk inserted, so the per-row trigger that fills a missing copy stays idle. The
/// user is joined on the left: a membership naming no user is refused (the copy's NOT NULL),
/// never skipped.
const SQLITE_MEMBERSHIP: &str = "INSERT INTO organization_memberships (organization_id, user_id, role, created_at_ms, \
     updated_at_ms, member_email, member_username, member_disabled_at_ms) \
     SELECT $1, $2, $3, $4, $4, u.email, u.username, u.disabled_at_ms FROM (SELECT 1) LEFT JOIN users u ON u.id = $2";
const SQLITE_ROLE: &str = "INSERT INTO user_platform_roles (user_id, role, created_at_ms) VALUES ($1, $2, $3)";

const PG_USERS: &str = "INSERT INTO users (id, email, username, username_normalized, created_at_ms, updated_at_ms, \
     email_verified_at_ms, import_batch) \
     SELECT id, email, username, lower(username), created, created, verified, $6 \
     FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::bigint[]) AS t(id, email, username, created, verified)";
const PG_CREDENTIALS: &str = "INSERT INTO auth_providers (id, user_id, provider, provider_user_id, password_hash, \
     created_at_ms, updated_at_ms) SELECT id, user_id, provider, subject, hash, created, created \
     FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::bigint[]) \
     AS t(id, user_id, provider, subject, hash, created)";
const PG_ORGS: &str = "INSERT INTO organizations (id, name, kind, created_by_user_id, created_at_ms, updated_at_ms, \
     import_batch) SELECT id, name, kind, created_by, created, created, $6 \
     FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::bigint[]) AS t(id, name, kind, created_by, created)";
const PG_MEMBERSHIPS: &str = "INSERT INTO organization_memberships (organization_id, user_id, role, created_at_ms, \
     updated_at_ms, member_email, member_username, member_disabled_at_ms) \
     SELECT t.org, t.user_id, t.role, t.created, t.created, u.email, u.username, u.disabled_at_ms \
     FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::bigint[]) AS t(org, user_id, role, created) \
     LEFT JOIN users u ON u.id = t.user_id";
const PG_ROLES: &str = "INSERT INTO user_platform_roles (user_id, role, created_at_ms) \
     SELECT user_id, role, created FROM UNNEST($1::uuid[], $2::text[], $3::bigint[]) AS t(user_id, role, created)";

const SQLITE_TAKEN_EMAILS: &str = "SELECT email FROM users WHERE email IN (SELECT value FROM json_each($1))";
const PG_TAKEN_EMAILS: &str = "SELECT email FROM users WHERE email = ANY($1::text[])";
const SQLITE_TAKEN_USERNAMES: &str = "SELECT username FROM users WHERE username IN (SELECT value FROM json_each($1))";
const PG_TAKEN_USERNAMES: &str = "SELECT username FROM users WHERE username = ANY($1::text[])";
/// Identities as `provider:subject` (provider names hold no `:`).
const SQLITE_TAKEN_IDENTITIES: &str = "SELECT provider || ':' || provider_user_id FROM auth_providers \
     WHERE provider_user_id IS NOT NULL AND provider || ':' || provider_user_id IN (SELECT value FROM json_each($1))";
const PG_TAKEN_IDENTITIES: &str = "SELECT provider || ':' || provider_user_id FROM auth_providers \
     WHERE provider_user_id IS NOT NULL AND provider || ':' || provider_user_id = ANY($1::text[])";

fn uuids(ids: impl Iterator<Item = Uuid>) -> Vec<Uuid> {
    ids.collect()
}

impl Store {
    /// Which of `emails` already have an account.
    pub async fn taken_emails(&self, emails: &[String]) -> Result<Vec<String>, StoreError> {
        self.taken(emails, SQLITE_TAKEN_EMAILS, PG_TAKEN_EMAILS).await
    }

    /// Which of `usernames` are taken.
    pub async fn taken_usernames(&self, usernames: &[String]) -> Result<Vec<String>, StoreError> {
        self.taken(usernames, SQLITE_TAKEN_USERNAMES, PG_TAKEN_USERNAMES).await
    }

    /// Which of the `provider:subject` identities are linked to an account already.
    pub async fn taken_identities(&self, keys: &[String]) -> Result<Vec<String>, StoreError> {
        self.taken(keys, SQLITE_TAKEN_IDENTITIES, PG_TAKEN_IDENTITIES).await
    }

    async fn taken(&self, values: &[String], sqlite: &str, postgres: &str) -> Result<Vec<String>, StoreError> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        Ok(match &self.db {
            super::Db::Sqlite { read, .. } => {
                let json =
                    serde_json::to_string(values).map_err(|e| StoreError::Other(sqlx::Error::Encode(e.into())))?;
                sqlx::query_scalar(sqlite).bind(json).fetch_all(read).await?
            }
            super::Db::Postgres { pool, .. } => sqlx::query_scalar(postgres).bind(values).fetch_all(pool).await?,
        })
    }

    /// The batch with this id.
    pub async fn import_batch(&self, id: &str) -> Result<Option<ImportBatch>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(BATCH).bind(id).fetch_optional(p).await)?)
    }
}

impl Tx {
    /// Records a new batch (before its first chunk).
    pub async fn insert_import_batch(&mut self, id: &str, source: &str, now_ms: i64) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(INSERT_BATCH).bind(id).bind(source).bind(now_ms).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Marks the batch complete.
    pub async fn complete_import_batch(&mut self, id: &str, now_ms: i64) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(COMPLETE_BATCH).bind(id).bind(now_ms).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Writes one chunk of batch `batch`. A unique violation (an email, username or identity
    /// taken since it was checked) is `Conflict`; the caller rolls the chunk back.
    pub async fn import_chunk(&mut self, batch: &str, chunk: &ImportChunk) -> Result<(), StoreError> {
        match &mut self.0 {
            TxInner::Sqlite(t) => {
                let c = &mut **t;
                for u in &chunk.users {
                    sqlx::query(SQLITE_USER)
                        .bind(u.id)
                        .bind(&u.email)
                        .bind(&u.username)
                        .bind(u.username.to_lowercase())
                        .bind(u.created_at_ms)
                        .bind(u.email_verified_at_ms)
                        .bind(batch)
                        .execute(&mut *c)
                        .await?;
                }
                for p in &chunk.credentials {
                    sqlx::query(SQLITE_CREDENTIAL)
                        .bind(Uuid::new_v4())
                        .bind(p.user_id)
                        .bind(&p.provider)
                        .bind(&p.subject)
                        .bind(&p.password_hash)
                        .bind(p.created_at_ms)
                        .execute(&mut *c)
                        .await?;
                }
                for o in &chunk.orgs {
                    sqlx::query(SQLITE_ORG)
                        .bind(o.id)
                        .bind(&o.name)
                        .bind(o.kind)
                        .bind(o.created_by)
                        .bind(o.created_at_ms)
                        .bind(batch)
                        .execute(&mut *c)
                        .await?;
                }
                for m in &chunk.memberships {
                    sqlx::query(SQLITE_MEMBERSHIP)
                        .bind(m.org_id)
                        .bind(m.user_id)
                        .bind(m.role)
                        .bind(m.created_at_ms)
                        .execute(&mut *c)
                        .await?;
                }
                for r in &chunk.roles {
                    sqlx::query(SQLITE_ROLE)
                        .bind(r.user_id)
                        .bind(r.role)
                        .bind(r.created_at_ms)
                        .execute(&mut *c)
                        .await?;
                }
            }
            TxInner::Postgres(t) => {
                let c = &mut **t;
                let users = &chunk.users;
                sqlx::query(PG_USERS)
                    .bind(uuids(users.iter().map(|u| u.id.as_uuid())))
                    .bind(users.iter().map(|u| u.email.as_str()).collect::<Vec<_>>())
                    .bind(users.iter().map(|u| u.username.as_str()).collect::<Vec<_>>())
                    .bind(users.iter().map(|u| u.created_at_ms).collect::<Vec<_>>())
                    .bind(users.iter().map(|u| u.email_verified_at_ms).collect::<Vec<_>>())
                    .bind(batch)
                    .execute(&mut *c)
                    .await?;
                let creds = &chunk.credentials;
                sqlx::query(PG_CREDENTIALS)
                    .bind(creds.iter().map(|_| Uuid::new_v4()).collect::<Vec<_>>())
                    .bind(uuids(creds.iter().map(|p| p.user_id.as_uuid())))
                    .bind(creds.iter().map(|p| p.provider.as_str()).collect::<Vec<_>>())
                    .bind(creds.iter().map(|p| p.subject.as_deref()).collect::<Vec<_>>())
                    .bind(creds.iter().map(|p| p.password_hash.as_deref()).collect::<Vec<_>>())
                    .bind(creds.iter().map(|p| p.created_at_ms).collect::<Vec<_>>())
                    .execute(&mut *c)
                    .await?;
                let orgs = &chunk.orgs;
                sqlx::query(PG_ORGS)
                    .bind(uuids(orgs.iter().map(|o| o.id.as_uuid())))
                    .bind(orgs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>())
                    .bind(orgs.iter().map(|o| o.kind).collect::<Vec<_>>())
                    .bind(orgs.iter().map(|o| o.created_by.map(UserId::as_uuid)).collect::<Vec<_>>())
                    .bind(orgs.iter().map(|o| o.created_at_ms).collect::<Vec<_>>())
                    .bind(batch)
                    .execute(&mut *c)
                    .await?;
                let ms = &chunk.memberships;
                sqlx::query(PG_MEMBERSHIPS)
                    .bind(uuids(ms.iter().map(|m| m.org_id.as_uuid())))
                    .bind(uuids(ms.iter().map(|m| m.user_id.as_uuid())))
                    .bind(ms.iter().map(|m| m.role).collect::<Vec<_>>())
                    .bind(ms.iter().map(|m| m.created_at_ms).collect::<Vec<_>>())
                    .execute(&mut *c)
                    .await?;
                let roles = &chunk.roles;
                sqlx::query(PG_ROLES)
                    .bind(uuids(roles.iter().map(|r| r.user_id.as_uuid())))
                    .bind(roles.iter().map(|r| r.role).collect::<Vec<_>>())
                    .bind(roles.iter().map(|r| r.created_at_ms).collect::<Vec<_>>())
                    .execute(&mut *c)
                    .await?;
            }
        }
        let (users, orgs) = (chunk.users.len() as i64, chunk.orgs.len() as i64);
        on_tx!(self, c => sqlx::query(COUNT_BATCH).bind(batch).bind(users).bind(orgs).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Removes the batch: its organizations (with their memberships, invitations and sessions),
    /// its users (with their credentials, roles, sessions and passkeys), then the batch row.
    /// Returns the (users, organizations) removed, `None` for an unknown batch.
    pub async fn undo_import_batch(&mut self, id: &str, now_ms: i64) -> Result<Option<(u64, u64)>, StoreError> {
        let found: Option<String> = on_tx!(self, c => sqlx::query_scalar("SELECT id FROM import_batches WHERE id = $1").bind(id).fetch_optional(&mut *c).await)?;
        if found.is_none() {
            return Ok(None);
        }
        on_tx!(self, c => sqlx::query(END_BATCH_SESSIONS).bind(id).bind(now_ms).execute(&mut *c).await.map(|_| ()))?;
        let orgs = on_tx!(self, c => sqlx::query(DELETE_BATCH_ORGS).bind(id).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        let users = on_tx!(self, c => sqlx::query(DELETE_BATCH_USERS).bind(id).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        on_tx!(self, c => sqlx::query(DELETE_BATCH).bind(id).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(Some((users, orgs)))
    }
}
