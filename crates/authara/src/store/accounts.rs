//! Users, password credentials, platform roles, organizations and memberships.

use uuid::Uuid;

use super::{Store, StoreError, Tx, on_db, on_tx};

/// A user as the services see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub created_at_ms: i64,
    pub disabled_at_ms: Option<i64>,
}

type UserTuple = (Uuid, String, String, i64, Option<i64>);

fn user((id, email, username, created_at_ms, disabled_at_ms): UserTuple) -> UserRow {
    UserRow { id, email, username, created_at_ms, disabled_at_ms }
}

/// A user to insert.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub id: Uuid,
    pub email: &'a str,
    pub username: &'a str,
    pub now_ms: i64,
}

const USER_BY_ID: &str = "SELECT id, email, username, created_at_ms, disabled_at_ms FROM users WHERE id = $1";
const USER_BY_EMAIL: &str = "SELECT id, email, username, created_at_ms, disabled_at_ms FROM users WHERE email = $1";
const LOGIN_LOOKUP: &str = "SELECT u.id, u.email, u.username, u.created_at_ms, u.disabled_at_ms, p.password_hash \
     FROM users u LEFT JOIN auth_providers p ON p.user_id = u.id AND p.provider = 'password' WHERE u.email = $1";
const PASSWORD_HASH: &str = "SELECT password_hash FROM auth_providers WHERE user_id = $1 AND provider = 'password'";
const ROLES: &str = "SELECT role FROM user_platform_roles WHERE user_id = $1 ORDER BY role";
const REPLACE_HASH: &str = "UPDATE auth_providers SET password_hash = $3, updated_at_ms = $4 \
     WHERE user_id = $1 AND provider = 'password' AND password_hash = $2";
const ORG_NAME: &str = "SELECT name FROM organizations WHERE id = $1";
const INSERT_USER: &str = "INSERT INTO users (id, email, username, username_normalized, created_at_ms, updated_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (email) DO NOTHING RETURNING id";
const SET_PASSWORD: &str = "INSERT INTO auth_providers (id, user_id, provider, password_hash, created_at_ms, updated_at_ms) \
     VALUES ($1, $2, 'password', $3, $4, $4) \
     ON CONFLICT (user_id, provider) DO UPDATE SET password_hash = excluded.password_hash, updated_at_ms = excluded.updated_at_ms";
const GRANT_ROLE: &str = "INSERT INTO user_platform_roles (user_id, role, created_at_ms) VALUES ($1, $2, $3) \
     ON CONFLICT (user_id, role) DO NOTHING";
const INSERT_ORG: &str = "INSERT INTO organizations (id, name, kind, created_by_user_id, created_at_ms, updated_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $5)";
const INSERT_MEMBERSHIP: &str = "INSERT INTO organization_memberships (organization_id, user_id, role, created_at_ms, updated_at_ms) \
     VALUES ($1, $2, $3, $4, $4)";
/// The user's own personal organization first, else the earliest membership (behavior.md §2.3).
const DEFAULT_MEMBERSHIP: &str = "SELECT m.organization_id, m.role FROM organization_memberships m \
     JOIN organizations o ON o.id = m.organization_id WHERE m.user_id = $1 \
     ORDER BY CASE WHEN o.kind = 'personal' AND o.created_by_user_id = $1 THEN 0 ELSE 1 END, m.created_at_ms, m.organization_id \
     LIMIT 1";
const MEMBERSHIP_ROLE: &str = "SELECT role FROM organization_memberships WHERE organization_id = $1 AND user_id = $2";
const USER_COUNT: &str = "SELECT COUNT(*) FROM users";
const SET_USERNAME: &str = "UPDATE users SET username = $2, username_normalized = $3, updated_at_ms = $4 WHERE id = $1";
const SET_EMAIL: &str = "UPDATE users SET email = $2, updated_at_ms = $3 WHERE id = $1";
const DELETE_USER: &str = "DELETE FROM users WHERE id = $1";
const OTHER_ACTIVE_ADMINS: &str = "SELECT COUNT(*) FROM user_platform_roles r JOIN users u ON u.id = r.user_id \
     WHERE r.role = 'admin' AND u.disabled_at_ms IS NULL AND u.id <> $1";
/// Organizations the user created that are left without members, removed with the account.
const DELETE_EMPTY_ORGS: &str = "DELETE FROM organizations WHERE created_by_user_id = $1 AND NOT EXISTS \
     (SELECT 1 FROM organization_memberships m WHERE m.organization_id = organizations.id AND m.user_id <> $1)";

impl Store {
    pub async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRow>, StoreError> {
        let row: Option<UserTuple> = on_db!(self, p => sqlx::query_as(USER_BY_ID).bind(id).fetch_optional(p).await)?;
        Ok(row.map(user))
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, StoreError> {
        let row: Option<UserTuple> =
            on_db!(self, p => sqlx::query_as(USER_BY_EMAIL).bind(email).fetch_optional(p).await)?;
        Ok(row.map(user))
    }

    /// The user with this (normalized) email and their password hash, if any.
    pub async fn login_lookup(&self, email: &str) -> Result<Option<(UserRow, Option<String>)>, StoreError> {
        type Row = (Uuid, String, String, i64, Option<i64>, Option<String>);
        let row: Option<Row> = on_db!(self, p => sqlx::query_as(LOGIN_LOOKUP).bind(email).fetch_optional(p).await)?;
        Ok(row.map(|(id, email, username, c, d, hash)| (user((id, email, username, c, d)), hash)))
    }

    pub async fn password_hash(&self, user_id: Uuid) -> Result<Option<String>, StoreError> {
        let row: Option<Option<String>> =
            on_db!(self, p => sqlx::query_scalar(PASSWORD_HASH).bind(user_id).fetch_optional(p).await)?;
        Ok(row.flatten())
    }

    /// Platform role names (`admin`, `auditor`, `monitor`), sorted.
    pub async fn user_roles(&self, user_id: Uuid) -> Result<Vec<String>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_scalar(ROLES).bind(user_id).fetch_all(p).await)?)
    }

    /// Replaces a password hash only if it is still `old` (a rehash must not undo a change).
    pub async fn replace_password_hash(
        &self,
        user_id: Uuid,
        old: &str,
        new: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let n = on_tx!(&mut tx, c => sqlx::query(REPLACE_HASH).bind(user_id).bind(old).bind(new).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(n == 1)
    }

    pub async fn org_name(&self, org_id: Uuid) -> Result<Option<String>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_scalar(ORG_NAME).bind(org_id).fetch_optional(p).await)?)
    }

    pub async fn user_count(&self) -> Result<i64, StoreError> {
        Ok(on_db!(self, p => sqlx::query_scalar(USER_COUNT).fetch_one(p).await)?)
    }
}

impl Tx {
    /// Inserts a user; `false` when the email is taken. A taken username is `Conflict`.
    pub async fn insert_user(&mut self, u: &NewUser<'_>) -> Result<bool, StoreError> {
        let id: Option<Uuid> = on_tx!(self, c => sqlx::query_scalar(INSERT_USER)
            .bind(u.id).bind(u.email).bind(u.username).bind(u.username.trim().to_lowercase()).bind(u.now_ms)
            .fetch_optional(&mut *c).await)?;
        Ok(id.is_some())
    }

    pub async fn user_by_id(&mut self, id: Uuid) -> Result<Option<UserRow>, StoreError> {
        let row: Option<UserTuple> =
            on_tx!(self, c => sqlx::query_as(USER_BY_ID).bind(id).fetch_optional(&mut *c).await)?;
        Ok(row.map(user))
    }

    pub async fn user_roles(&mut self, user_id: Uuid) -> Result<Vec<String>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_scalar(ROLES).bind(user_id).fetch_all(&mut *c).await)?)
    }

    /// Creates or replaces the password credential.
    pub async fn set_password_hash(&mut self, user_id: Uuid, hash: &str, now_ms: i64) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(SET_PASSWORD).bind(Uuid::new_v4()).bind(user_id).bind(hash).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn grant_role(&mut self, user_id: Uuid, role: &str, now_ms: i64) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(GRANT_ROLE).bind(user_id).bind(role).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn insert_org(
        &mut self,
        id: Uuid,
        name: &str,
        kind: &str,
        created_by: Uuid,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(INSERT_ORG).bind(id).bind(name).bind(kind).bind(created_by).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn insert_membership(
        &mut self,
        org: Uuid,
        user: Uuid,
        role: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(INSERT_MEMBERSHIP).bind(org).bind(user).bind(role).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Renames a user; a taken username is `Conflict`.
    pub async fn set_username(&mut self, user_id: Uuid, username: &str, now_ms: i64) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(SET_USERNAME).bind(user_id).bind(username).bind(username.to_lowercase()).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Changes a user's email; a taken email is `Conflict`.
    pub async fn set_email(&mut self, user_id: Uuid, email: &str, now_ms: i64) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(SET_EMAIL).bind(user_id).bind(email).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Active admins other than this user.
    pub async fn other_active_admins(&mut self, user_id: Uuid) -> Result<i64, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_scalar(OTHER_ACTIVE_ADMINS).bind(user_id).fetch_one(&mut *c).await)?)
    }

    /// Deletes a user (sessions, tokens, memberships and credentials cascade) and the
    /// organizations only they belonged to.
    pub async fn delete_user(&mut self, user_id: Uuid) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(DELETE_EMPTY_ORGS).bind(user_id).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        on_tx!(self, c => sqlx::query(DELETE_USER).bind(user_id).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// (organization id, role) of the organization a new session starts in.
    pub async fn default_membership(&mut self, user_id: Uuid) -> Result<Option<(Uuid, String)>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_as(DEFAULT_MEMBERSHIP).bind(user_id).fetch_optional(&mut *c).await)?)
    }

    pub async fn membership_role(&mut self, org: Uuid, user: Uuid) -> Result<Option<String>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_scalar(MEMBERSHIP_ROLE).bind(org).bind(user).fetch_optional(&mut *c).await)?)
    }
}
