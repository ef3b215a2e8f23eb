//! Users, password credentials, platform roles, organizations and memberships.

use super::{Store, StoreError, Tx, on_db, on_tx};
use crate::domain::{EmailAddress, OrgId, OrgKind, OrgRole, PlatformRole, UserId};

/// A user as the services see it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub username: String,
    pub created_at_ms: i64,
    pub disabled_at_ms: Option<i64>,
}

/// A user with their password hash, if they have one (login).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LoginRow {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub password_hash: Option<String>,
    /// When the owner last set the password (device cookies older than this are void).
    pub password_changed_at_ms: i64,
}

/// A user to insert.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub id: UserId,
    pub email: &'a EmailAddress,
    pub username: &'a str,
    /// The address is proven as the account is made (an email code, a verified provider
    /// email, an invitation's link).
    pub verified: bool,
    pub now_ms: i64,
}

/// An organization to insert.
#[derive(Debug, Clone)]
pub struct NewOrg<'a> {
    pub id: OrgId,
    pub name: &'a str,
    pub kind: OrgKind,
    pub created_by: UserId,
    pub now_ms: i64,
}

/// A membership: the organization and the member's role in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Membership {
    pub organization_id: OrgId,
    pub role: OrgRole,
}

const USER_BY_ID: &str = "SELECT id, email, username, created_at_ms, disabled_at_ms FROM users WHERE id = $1";
const USER_BY_EMAIL: &str = "SELECT id, email, username, created_at_ms, disabled_at_ms FROM users WHERE email = $1";
const LOGIN_LOOKUP: &str = "SELECT u.id, u.email, u.username, u.created_at_ms, u.disabled_at_ms, p.password_hash, \
     u.password_changed_at_ms \
     FROM users u LEFT JOIN auth_providers p ON p.user_id = u.id AND p.provider = 'password' WHERE u.email = $1";
const PASSWORD_HASH: &str = "SELECT password_hash FROM auth_providers WHERE user_id = $1 AND provider = 'password'";
const ROLES: &str = "SELECT role FROM user_platform_roles WHERE user_id = $1 ORDER BY role";
const REPLACE_HASH: &str = "UPDATE auth_providers SET password_hash = $3, updated_at_ms = $4 \
     WHERE user_id = $1 AND provider = 'password' AND password_hash = $2";
const ORG_NAME: &str = "SELECT name FROM organizations WHERE id = $1";
const INSERT_USER: &str = "INSERT INTO users (id, email, username, username_normalized, created_at_ms, updated_at_ms, \
     email_verified_at_ms, password_changed_at_ms) VALUES ($1, $2, $3, $4, $5, $5, $6, $5) \
     ON CONFLICT (email) DO NOTHING RETURNING id";
/// Records the first proof of the address; no row when it was proven before.
const PROVE_ADDRESS: &str = "UPDATE users SET email_verified_at_ms = $2 WHERE id = $1 AND email_verified_at_ms IS NULL";
const ADDRESS_PROVEN_NOW: &str = "UPDATE users SET email_verified_at_ms = $2 WHERE id = $1";
const ADDRESS_PROVEN: &str = "SELECT email_verified_at_ms FROM users WHERE id = $1";
const PASSWORD_CHANGED_AT: &str = "SELECT password_changed_at_ms FROM users WHERE id = $1";
const PASSWORD_CHANGED: &str = "UPDATE users SET password_changed_at_ms = $2 WHERE id = $1";
const DELETE_PASSWORD: &str = "DELETE FROM auth_providers WHERE user_id = $1 AND provider = 'password'";
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
/// The ways a user can sign in (the shared rule of unlinking a provider and deleting a passkey,
/// behavior.md §7.3): a password with a hash, provider identities with a subject, and passkeys.
/// On PostgreSQL the user row is locked first (`LOCK_USER_PG`), so two removals cannot both see
/// the other's method and leave none.
const SIGN_IN_METHODS: &str = "SELECT \
     (SELECT COUNT(*) FROM auth_providers WHERE user_id = $1 AND provider = 'password' \
        AND password_hash IS NOT NULL AND password_hash <> '') \
     + (SELECT COUNT(*) FROM auth_providers WHERE user_id = $1 AND provider <> 'password' \
        AND provider_user_id IS NOT NULL AND provider_user_id <> '') \
     + (SELECT COUNT(*) FROM passkeys WHERE user_id = $1)";
const LOCK_USER_PG: &str = "SELECT id FROM users WHERE id = $1 FOR UPDATE";
const USER_COUNT: &str = "SELECT COUNT(*) FROM users";
const SET_USERNAME: &str = "UPDATE users SET username = $2, username_normalized = $3, updated_at_ms = $4 WHERE id = $1";
const SET_EMAIL: &str = "UPDATE users SET email = $2, updated_at_ms = $3 WHERE id = $1";
const SET_DISABLED: &str = "UPDATE users SET disabled_at_ms = $2, updated_at_ms = $3 WHERE id = $1";
const DELETE_USER: &str = "DELETE FROM users WHERE id = $1";
/// The sessions a user's deletion takes with it (see `ended_sessions`).
const END_USER_SESSIONS: &str = "INSERT INTO ended_sessions (id, ended_at_ms) \
     SELECT id, $2 FROM sessions WHERE user_id = $1 AND expires_at_ms > $2 ON CONFLICT (id) DO NOTHING";
const OTHER_ACTIVE_ADMINS: &str = "SELECT COUNT(*) FROM user_platform_roles r JOIN users u ON u.id = r.user_id \
     WHERE r.role = 'admin' AND u.disabled_at_ms IS NULL AND u.id <> $1";
/// Organizations the user created that are left without members, removed with the account.
const DELETE_EMPTY_ORGS: &str = "DELETE FROM organizations WHERE created_by_user_id = $1 AND NOT EXISTS \
     (SELECT 1 FROM organization_memberships m WHERE m.organization_id = organizations.id AND m.user_id <> $1)";

fn roles(names: Vec<String>) -> Result<Vec<PlatformRole>, StoreError> {
    names.into_iter().map(|r| PlatformRole::try_from(r).map_err(StoreError::from)).collect()
}

impl Store {
    pub async fn user_by_id(&self, id: UserId) -> Result<Option<UserRow>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(USER_BY_ID).bind(id).fetch_optional(p).await)?)
    }

    pub async fn user_by_email(&self, email: &EmailAddress) -> Result<Option<UserRow>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(USER_BY_EMAIL).bind(email.as_str()).fetch_optional(p).await)?)
    }

    /// The user with this email and their password hash, if any.
    pub async fn login_lookup(&self, email: &EmailAddress) -> Result<Option<LoginRow>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(LOGIN_LOOKUP).bind(email.as_str()).fetch_optional(p).await)?)
    }

    pub async fn password_hash(&self, user_id: UserId) -> Result<Option<String>, StoreError> {
        let row: Option<Option<String>> =
            on_db!(self, p => sqlx::query_scalar(PASSWORD_HASH).bind(user_id).fetch_optional(p).await)?;
        Ok(row.flatten())
    }

    /// Platform roles, sorted.
    pub async fn user_roles(&self, user_id: UserId) -> Result<Vec<PlatformRole>, StoreError> {
        roles(on_db!(self, p => sqlx::query_scalar(ROLES).bind(user_id).fetch_all(p).await)?)
    }

    /// Replaces a password hash only if it is still `old` (a rehash must not undo a change).
    pub async fn replace_password_hash(
        &self,
        user_id: UserId,
        old: &str,
        new: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let n = on_tx!(tx, c => sqlx::query(REPLACE_HASH).bind(user_id).bind(old).bind(new).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(n == 1)
    }

    pub async fn org_name(&self, org_id: OrgId) -> Result<Option<String>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_scalar(ORG_NAME).bind(org_id).fetch_optional(p).await)?)
    }

    /// Number of accounts.
    pub async fn user_count(&self) -> Result<i64, StoreError> {
        Ok(on_db!(self, p => sqlx::query_scalar(USER_COUNT).fetch_one(p).await)?)
    }
}

impl Tx {
    /// How many ways the user has to sign in (behavior.md §7.3, §8): password rows with a
    /// hash, external providers with a provider id, passkeys. Locks the user first on
    /// PostgreSQL (SQLite's write transaction already excludes other writers), so a removal
    /// that checks this count in its transaction cannot race another one.
    pub async fn count_sign_in_methods(&mut self, user_id: UserId) -> Result<i64, StoreError> {
        if let super::TxInner::Postgres(t) = &mut self.0 {
            sqlx::query(LOCK_USER_PG).bind(user_id).fetch_optional(&mut **t).await?;
        }
        Ok(on_tx!(self, c => sqlx::query_scalar(SIGN_IN_METHODS).bind(user_id).fetch_one(&mut *c).await)?)
    }

    /// Inserts a user; `false` when the email is taken. A taken username is `Conflict`.
    pub async fn insert_user(&mut self, u: &NewUser<'_>) -> Result<bool, StoreError> {
        let id: Option<UserId> = on_tx!(self, c => sqlx::query_scalar(INSERT_USER)
            .bind(u.id).bind(u.email.as_str()).bind(u.username).bind(u.username.trim().to_lowercase()).bind(u.now_ms)
            .bind(u.verified.then_some(u.now_ms)).fetch_optional(&mut *c).await)?;
        Ok(id.is_some())
    }

    pub async fn user_by_id(&mut self, id: UserId) -> Result<Option<UserRow>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_as(USER_BY_ID).bind(id).fetch_optional(&mut *c).await)?)
    }

    pub async fn password_hash(&mut self, user_id: UserId) -> Result<Option<String>, StoreError> {
        let row: Option<Option<String>> =
            on_tx!(self, c => sqlx::query_scalar(PASSWORD_HASH).bind(user_id).fetch_optional(&mut *c).await)?;
        Ok(row.flatten().filter(|h| !h.is_empty()))
    }

    pub async fn user_roles(&mut self, user_id: UserId) -> Result<Vec<PlatformRole>, StoreError> {
        roles(on_tx!(self, c => sqlx::query_scalar(ROLES).bind(user_id).fetch_all(&mut *c).await)?)
    }

    /// Creates or replaces the password credential, as its owner sets it (device cookies issued
    /// before stop vouching for their browser).
    pub async fn set_password_hash(&mut self, user_id: UserId, hash: &str, now_ms: i64) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(SET_PASSWORD).bind(uuid::Uuid::new_v4()).bind(user_id).bind(hash).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        on_tx!(self, c => sqlx::query(PASSWORD_CHANGED).bind(user_id).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Removes the password credential; `true` when there was one.
    pub async fn delete_password(&mut self, user_id: UserId, now_ms: i64) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(DELETE_PASSWORD).bind(user_id).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        on_tx!(self, c => sqlx::query(PASSWORD_CHANGED).bind(user_id).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Records that the user's address is proven now; `true` only the first time.
    pub async fn prove_address(&mut self, user_id: UserId, now_ms: i64) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(PROVE_ADDRESS).bind(user_id).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Records that the user's (new) address is proven now, whatever was proven before (an
    /// email change proves the address it moves to).
    pub async fn set_address_proven(&mut self, user_id: UserId, now_ms: i64) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(ADDRESS_PROVEN_NOW).bind(user_id).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// When the user's address was first proven, if it was.
    pub async fn address_proven_at(&mut self, user_id: UserId) -> Result<Option<i64>, StoreError> {
        let row: Option<Option<i64>> =
            on_tx!(self, c => sqlx::query_scalar(ADDRESS_PROVEN).bind(user_id).fetch_optional(&mut *c).await)?;
        Ok(row.flatten())
    }

    /// When the user's password last changed (0 when the user is gone).
    pub async fn password_changed_at(&mut self, user_id: UserId) -> Result<i64, StoreError> {
        let row: Option<i64> =
            on_tx!(self, c => sqlx::query_scalar(PASSWORD_CHANGED_AT).bind(user_id).fetch_optional(&mut *c).await)?;
        Ok(row.unwrap_or_default())
    }

    pub async fn grant_role(&mut self, user_id: UserId, role: PlatformRole, now_ms: i64) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(GRANT_ROLE).bind(user_id).bind(role.as_str()).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn insert_org(&mut self, o: &NewOrg<'_>) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(INSERT_ORG).bind(o.id).bind(o.name).bind(o.kind.as_str()).bind(o.created_by)
            .bind(o.now_ms).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn insert_membership(
        &mut self,
        org: OrgId,
        user: UserId,
        role: OrgRole,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(INSERT_MEMBERSHIP).bind(org).bind(user).bind(role.as_str()).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Renames a user; a taken username is `Conflict`.
    pub async fn set_username(&mut self, user_id: UserId, username: &str, now_ms: i64) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(SET_USERNAME).bind(user_id).bind(username).bind(username.to_lowercase()).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Changes a user's email; a taken email is `Conflict`.
    pub async fn set_email(&mut self, user_id: UserId, email: &EmailAddress, now_ms: i64) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(SET_EMAIL).bind(user_id).bind(email.as_str()).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Disables (`Some(at)`) or enables (`None`) a user; `false` if there is no such user.
    pub async fn set_user_disabled(
        &mut self,
        user_id: UserId,
        disabled_at_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(SET_DISABLED).bind(user_id).bind(disabled_at_ms).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Active admins other than this user.
    pub async fn other_active_admins(&mut self, user_id: UserId) -> Result<i64, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_scalar(OTHER_ACTIVE_ADMINS).bind(user_id).fetch_one(&mut *c).await)?)
    }

    /// Deletes a user (sessions, tokens, memberships and credentials cascade) and the
    /// organizations only they belonged to. The sessions' ids stay in `ended_sessions`, read by
    /// the revocation feed.
    pub async fn delete_user(&mut self, user_id: UserId, now_ms: i64) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(END_USER_SESSIONS).bind(user_id).bind(now_ms).execute(&mut *c).await.map(|_| ()))?;
        on_tx!(self, c => sqlx::query(DELETE_EMPTY_ORGS).bind(user_id).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        on_tx!(self, c => sqlx::query(DELETE_USER).bind(user_id).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The organization a new session starts in, with the user's role there.
    pub async fn default_membership(&mut self, user_id: UserId) -> Result<Option<Membership>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_as(DEFAULT_MEMBERSHIP).bind(user_id).fetch_optional(&mut *c).await)?)
    }
}
