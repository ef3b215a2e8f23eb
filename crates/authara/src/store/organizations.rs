//! Organizations and memberships as the organization API reads and changes them (users' first
//! organizations are inserted with the user, in `accounts`).

use super::{Store, StoreError, Tx, on_db, on_tx};
use crate::domain::{EmailAddress, OrgId, OrgKind, OrgRole, SessionId, UserId};

/// An organization.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrgRow {
    pub id: OrgId,
    pub name: String,
    pub kind: OrgKind,
    /// `None` once the creator's account is deleted.
    pub created_by_user_id: Option<UserId>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A membership.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MembershipRow {
    pub organization_id: OrgId,
    pub user_id: UserId,
    pub role: OrgRole,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A membership with the member's account.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MemberRow {
    #[sqlx(flatten)]
    pub membership: MembershipRow,
    pub email: String,
    pub username: String,
    pub disabled_at_ms: Option<i64>,
}

/// Where a page of members starts: after this membership, in the list's order (membership
/// time, then user id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberCursor {
    pub created_at_ms: i64,
    pub user_id: UserId,
}

impl MemberCursor {
    /// The cursor after `row`.
    pub fn after(row: &MemberRow) -> Self {
        MemberCursor { created_at_ms: row.membership.created_at_ms, user_id: row.membership.user_id }
    }

    /// `<created_at_ms>.<user id>`, as [`std::fmt::Display`] writes it.
    pub fn parse(s: &str) -> Option<Self> {
        let (ms, id) = s.split_once('.')?;
        Some(MemberCursor { created_at_ms: ms.parse().ok()?, user_id: UserId(uuid::Uuid::parse_str(id).ok()?) })
    }
}

impl std::fmt::Display for MemberCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.created_at_ms, self.user_id.0)
    }
}

/// One of a user's memberships with its organization.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserMembershipRow {
    #[sqlx(flatten)]
    pub organization: OrgRow,
    pub user_id: UserId,
    pub role: OrgRole,
    pub membership_created_at_ms: i64,
    pub membership_updated_at_ms: i64,
}

impl UserMembershipRow {
    pub fn membership(&self) -> MembershipRow {
        MembershipRow {
            organization_id: self.organization.id,
            user_id: self.user_id,
            role: self.role,
            created_at_ms: self.membership_created_at_ms,
            updated_at_ms: self.membership_updated_at_ms,
        }
    }
}

const ORG_BY_ID: &str =
    "SELECT id, name, kind, created_by_user_id, created_at_ms, updated_at_ms FROM organizations WHERE id = $1";
const RENAME: &str = "UPDATE organizations SET name = $2, updated_at_ms = $3 WHERE id = $1 \
     RETURNING id, name, kind, created_by_user_id, created_at_ms, updated_at_ms";
const MEMBERSHIP: &str = "SELECT organization_id, user_id, role, created_at_ms, updated_at_ms \
     FROM organization_memberships WHERE organization_id = $1 AND user_id = $2";
/// A member's columns: the membership with its copy of the member's account (migration 25 keeps
/// the copy current), so a list is one range of `organization_memberships_by_org_time` and no
/// key lookup into users per member.
macro_rules! member_columns {
    () => {
        "SELECT organization_id, user_id, role, created_at_ms, updated_at_ms, \
         member_email AS email, member_username AS username, member_disabled_at_ms AS disabled_at_ms \
         FROM organization_memberships WHERE organization_id = $1"
    };
}
const MEMBERS: &str = concat!(member_columns!(), " ORDER BY created_at_ms, user_id");
/// The whole list on SQLite, in one row: a JSON array of `[user id, email, username, role,
/// joined, updated, disabled]`, in the list's order. Each row of a result set costs a hand-off
/// between the connection's thread and ours, with a copy of each value, which made a
/// 10,000-member list 40 ms; one row of plain values costs a few. The values are formatted in
/// Rust as for every other list; only the rows are packed here.
const MEMBERS_PACKED_SQLITE: &str = "SELECT json_group_array(json_array(hex(user_id), member_email, member_username, \
     role, created_at_ms, updated_at_ms, member_disabled_at_ms) ORDER BY created_at_ms, user_id) \
     FROM organization_memberships WHERE organization_id = $1";
const MEMBERS_FIRST: &str = concat!(member_columns!(), " ORDER BY created_at_ms, user_id LIMIT $2");
/// The next page: a range of `(organization_id, created_at_ms, user_id)`, however deep.
const MEMBERS_AFTER: &str =
    concat!(member_columns!(), " AND (created_at_ms, user_id) > ($2, $3) ORDER BY created_at_ms, user_id LIMIT $4");
const MEMBER: &str = concat!(member_columns!(), " AND user_id = $2");
/// Ordered as `GET /organizations` lists them: oldest membership first, then organization id.
const USER_MEMBERSHIPS: &str = "SELECT o.id, o.name, o.kind, o.created_by_user_id, o.created_at_ms, o.updated_at_ms, \
     m.user_id, m.role, m.created_at_ms AS membership_created_at_ms, m.updated_at_ms AS membership_updated_at_ms \
     FROM organization_memberships m JOIN organizations o ON o.id = m.organization_id \
     WHERE m.user_id = $1 ORDER BY m.created_at_ms, m.organization_id";
const MEMBER_BY_EMAIL: &str = "SELECT COUNT(*) FROM organization_memberships m JOIN users u ON u.id = m.user_id \
     WHERE m.organization_id = $1 AND u.email = $2";
const MEMBERSHIP_COUNT: &str = "SELECT COUNT(*) FROM organization_memberships WHERE user_id = $1";
const LOCK_ORG_PG: &str = "SELECT id FROM organizations WHERE id = $1 FOR UPDATE";
const OWNER_COUNT: &str = "SELECT COUNT(*) FROM organization_memberships WHERE organization_id = $1 AND role = 'owner'";
const MEMBER_COUNT: &str = "SELECT COUNT(*) FROM organization_memberships WHERE organization_id = $1";
const DELETE_MEMBERSHIP: &str =
    "DELETE FROM organization_memberships WHERE organization_id = $1 AND user_id = $2 RETURNING role";
const SET_ROLE: &str =
    "UPDATE organization_memberships SET role = $3, updated_at_ms = $4 WHERE organization_id = $1 AND user_id = $2";
/// Live sessions in an organization (of one user when `$2` is set).
const SESSIONS_IN_ORG: &str = "SELECT id FROM sessions WHERE active_organization_id = $1 \
     AND ($2 IS NULL OR user_id = $2) AND revoked_at_ms IS NULL";
const DELETE_ORG: &str = "DELETE FROM organizations WHERE id = $1";
/// The sessions an organization's deletion takes with it (see `ended_sessions`).
const END_ORG_SESSIONS: &str = "INSERT INTO ended_sessions (id, ended_at_ms) \
     SELECT id, $2 FROM sessions WHERE active_organization_id = $1 AND expires_at_ms > $2 ON CONFLICT (id) DO NOTHING";
const JOIN: &str = "INSERT INTO organization_memberships (organization_id, user_id, role, created_at_ms, updated_at_ms) \
     VALUES ($1, $2, $3, $4, $4) ON CONFLICT (organization_id, user_id) DO NOTHING RETURNING role";

/// One member as [`MEMBERS_PACKED_SQLITE`] packs it (email and username owned: JSON may escape
/// them; the id and role never need it).
type PackedMember<'a> = (&'a str, String, String, &'a str, i64, i64, Option<i64>);

/// The rows of a packed member list of `org`.
fn unpack_members(org: OrgId, packed: &str) -> Result<Vec<MemberRow>, StoreError> {
    let bad = |e: String| StoreError::Other(sqlx::Error::Decode(e.into()));
    let members: Vec<PackedMember<'_>> = serde_json::from_str(packed).map_err(|e| bad(format!("member list: {e}")))?;
    members
        .into_iter()
        .map(|(id, email, username, role, created_at_ms, updated_at_ms, disabled_at_ms)| {
            Ok(MemberRow {
                membership: MembershipRow {
                    organization_id: org,
                    user_id: UserId(uuid::Uuid::parse_str(id).map_err(|e| bad(format!("member id: {e}")))?),
                    role: OrgRole::parse(role)?,
                    created_at_ms,
                    updated_at_ms,
                },
                email,
                username,
                disabled_at_ms,
            })
        })
        .collect()
}
impl Store {
    pub async fn org_by_id(&self, id: OrgId) -> Result<Option<OrgRow>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(ORG_BY_ID).bind(id).fetch_optional(p).await)?)
    }

    pub async fn membership(&self, org: OrgId, user: UserId) -> Result<Option<MembershipRow>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(MEMBERSHIP).bind(org).bind(user).fetch_optional(p).await)?)
    }

    /// Members of an organization, oldest membership first (on SQLite read in one row, see
    /// `MEMBERS_PACKED_SQLITE`).
    pub async fn members(&self, org: OrgId) -> Result<Vec<MemberRow>, StoreError> {
        match &self.db {
            super::Db::Sqlite { read, .. } => {
                let packed: String = sqlx::query_scalar(MEMBERS_PACKED_SQLITE).bind(org).fetch_one(read).await?;
                unpack_members(org, &packed)
            }
            super::Db::Postgres { pool, .. } => Ok(sqlx::query_as(MEMBERS).bind(org).fetch_all(pool).await?),
        }
    }

    /// At most `limit` members in the order of [`Self::members`], after `after` (from the start
    /// when `None`).
    pub async fn members_page(
        &self,
        org: OrgId,
        after: Option<MemberCursor>,
        limit: u32,
    ) -> Result<Vec<MemberRow>, StoreError> {
        let limit = i64::from(limit);
        Ok(match after {
            None => on_db!(self, p => sqlx::query_as(MEMBERS_FIRST).bind(org).bind(limit).fetch_all(p).await)?,
            Some(c) => on_db!(self, p => sqlx::query_as(MEMBERS_AFTER).bind(org).bind(c.created_at_ms)
                .bind(c.user_id).bind(limit).fetch_all(p).await)?,
        })
    }

    pub async fn member(&self, org: OrgId, user: UserId) -> Result<Option<MemberRow>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(MEMBER).bind(org).bind(user).fetch_optional(p).await)?)
    }

    /// A user's memberships with their organizations, oldest membership first.
    pub async fn user_memberships(&self, user: UserId) -> Result<Vec<UserMembershipRow>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(USER_MEMBERSHIPS).bind(user).fetch_all(p).await)?)
    }
}

impl Tx {
    pub async fn org_by_id(&mut self, id: OrgId) -> Result<Option<OrgRow>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_as(ORG_BY_ID).bind(id).fetch_optional(&mut *c).await)?)
    }

    pub async fn membership(&mut self, org: OrgId, user: UserId) -> Result<Option<MembershipRow>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_as(MEMBERSHIP).bind(org).bind(user).fetch_optional(&mut *c).await)?)
    }

    /// A user's memberships with their organizations, oldest membership first.
    pub async fn user_memberships(&mut self, user: UserId) -> Result<Vec<UserMembershipRow>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_as(USER_MEMBERSHIPS).bind(user).fetch_all(&mut *c).await)?)
    }

    /// Members of an organization, oldest membership first.
    pub async fn members(&mut self, org: OrgId) -> Result<Vec<MemberRow>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_as(MEMBERS).bind(org).fetch_all(&mut *c).await)?)
    }

    /// Renames an organization; `None` if it does not exist.
    pub async fn rename_org(&mut self, id: OrgId, name: &str, now_ms: i64) -> Result<Option<OrgRow>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_as(RENAME).bind(id).bind(name).bind(now_ms).fetch_optional(&mut *c).await)?)
    }

    /// Whether the account with this email belongs to the organization.
    pub async fn is_member_by_email(&mut self, org: OrgId, email: &EmailAddress) -> Result<bool, StoreError> {
        let n: i64 = on_tx!(self, c => sqlx::query_scalar(MEMBER_BY_EMAIL).bind(org).bind(email.as_str())
            .fetch_one(&mut *c).await)?;
        Ok(n > 0)
    }

    /// How many organizations the user belongs to.
    pub async fn membership_count(&mut self, user: UserId) -> Result<i64, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_scalar(MEMBERSHIP_COUNT).bind(user).fetch_one(&mut *c).await)?)
    }

    /// Adds a member unless they already are one; `true` when a membership was created.
    pub async fn join_org(&mut self, org: OrgId, user: UserId, role: OrgRole, now_ms: i64) -> Result<bool, StoreError> {
        let created: Option<OrgRole> = on_tx!(self, c => sqlx::query_scalar(JOIN).bind(org).bind(user)
            .bind(role.as_str()).bind(now_ms).fetch_optional(&mut *c).await)?;
        Ok(created.is_some())
    }

    /// Locks the organization until commit (PostgreSQL; SQLite's write transaction already
    /// excludes other writers), so that changes to its owners are made one after the other.
    pub async fn lock_org(&mut self, org: OrgId) -> Result<bool, StoreError> {
        Ok(match &mut self.0 {
            super::TxInner::Postgres(t) => sqlx::query(LOCK_ORG_PG).bind(org).fetch_optional(&mut **t).await?.is_some(),
            super::TxInner::Sqlite(_) => self.org_by_id(org).await?.is_some(),
        })
    }

    pub async fn owner_count(&mut self, org: OrgId) -> Result<i64, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_scalar(OWNER_COUNT).bind(org).fetch_one(&mut *c).await)?)
    }

    pub async fn member_count(&mut self, org: OrgId) -> Result<i64, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_scalar(MEMBER_COUNT).bind(org).fetch_one(&mut *c).await)?)
    }

    /// Ends a membership; the role it had, `None` if there was none.
    pub async fn delete_membership(&mut self, org: OrgId, user: UserId) -> Result<Option<OrgRole>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_scalar(DELETE_MEMBERSHIP).bind(org).bind(user).fetch_optional(&mut *c).await)?)
    }

    pub async fn set_member_role(
        &mut self,
        org: OrgId,
        user: UserId,
        role: OrgRole,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(SET_ROLE).bind(org).bind(user).bind(role.as_str()).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Live sessions whose active organization is `org` (of `user` only, when given).
    pub async fn sessions_in_org(&mut self, org: OrgId, user: Option<UserId>) -> Result<Vec<SessionId>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_scalar(SESSIONS_IN_ORG).bind(org).bind(user).fetch_all(&mut *c).await)?)
    }

    /// Deletes an organization (memberships, invitations and its sessions' refresh tokens
    /// cascade).
    /// Its sessions' ids stay in `ended_sessions`, read by the revocation feed.
    pub async fn delete_org(&mut self, org: OrgId, now_ms: i64) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(END_ORG_SESSIONS).bind(org).bind(now_ms).execute(&mut *c).await.map(|_| ()))?;
        on_tx!(self, c => sqlx::query(DELETE_ORG).bind(org).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
