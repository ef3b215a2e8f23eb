//! Organization invitations. The raw token is never stored, only its SHA-256; the status is not
//! stored either but computed from the times when read ([`InvitationRow::status`]).
//!
//! Locking: the `_for_update` reads lock the row until commit on PostgreSQL (`FOR UPDATE`), so
//! two acceptances or revocations of one invitation run one after the other; SQLite's write
//! transaction (`BEGIN IMMEDIATE`) already excludes other writers.

use uuid::Uuid;

use super::{Store, StoreError, Tx, TxInner, on_db, on_tx};
use crate::domain::{EmailAddress, InvitationStatus, OrgId, OrgRole, UserId};

/// An invitation as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InvitationRow {
    pub id: Uuid,
    pub organization_id: OrgId,
    /// Normalized (trimmed, lowercased).
    pub email: String,
    pub role: OrgRole,
    pub invited_by: Option<UserId>,
    pub accepted_by: Option<UserId>,
    pub revoked_by: Option<UserId>,
    /// A JSON object, stored and forwarded as the application gave it.
    pub metadata: String,
    pub expires_at_ms: i64,
    pub accepted_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl InvitationRow {
    /// The status at `now_ms`: accepted > revoked > expired > pending.
    pub fn status(&self, now_ms: i64) -> InvitationStatus {
        InvitationStatus::at(self.accepted_at_ms, self.revoked_at_ms, self.expires_at_ms, now_ms)
    }
}

/// An invitation to insert.
#[derive(Debug, Clone)]
pub struct NewInvitation<'a> {
    pub id: Uuid,
    pub organization_id: OrgId,
    pub email: &'a str,
    pub role: OrgRole,
    pub token_hash: &'a [u8],
    pub invited_by: Option<UserId>,
    pub metadata: &'a str,
    pub expires_at_ms: i64,
    pub now_ms: i64,
}

macro_rules! select {
    ($where:literal) => {
        concat!(
            "SELECT id, organization_id, email, role, invited_by, accepted_by, revoked_by, metadata, expires_at_ms, \
             accepted_at_ms, revoked_at_ms, created_at_ms, updated_at_ms FROM organization_invitations ",
            $where
        )
    };
}

const BY_ID: &str = select!("WHERE id = $1");
const BY_ID_FOR_UPDATE: &str = select!("WHERE id = $1 FOR UPDATE");
const BY_TOKEN: &str = select!("WHERE token_hash = $1");
const BY_TOKEN_FOR_UPDATE: &str = select!("WHERE token_hash = $1 FOR UPDATE");
const IN_ORG: &str = select!("WHERE organization_id = $1 AND id = $2");
const IN_ORG_FOR_UPDATE: &str = select!("WHERE organization_id = $1 AND id = $2 FOR UPDATE");
/// The one invitation of an address that is neither accepted nor revoked (it may be expired).
const ACTIVE_FOR_EMAIL: &str =
    select!("WHERE organization_id = $1 AND email = $2 AND accepted_at_ms IS NULL AND revoked_at_ms IS NULL");
const ACTIVE_FOR_EMAIL_FOR_UPDATE: &str = select!(
    "WHERE organization_id = $1 AND email = $2 AND accepted_at_ms IS NULL AND revoked_at_ms IS NULL FOR UPDATE"
);
/// Newest first.
const OF_ORG: &str = select!("WHERE organization_id = $1 ORDER BY created_at_ms DESC, id");
const INSERT: &str = "INSERT INTO organization_invitations (id, organization_id, email, role, token_hash, invited_by, \
     metadata, expires_at_ms, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)";
const REVOKE: &str = "UPDATE organization_invitations SET revoked_at_ms = $3, revoked_by = $2, updated_at_ms = $3 \
     WHERE id = $1 AND accepted_at_ms IS NULL AND revoked_at_ms IS NULL";
const ACCEPT: &str = "UPDATE organization_invitations SET accepted_at_ms = $3, accepted_by = $2, updated_at_ms = $3 \
     WHERE id = $1 AND accepted_at_ms IS NULL AND revoked_at_ms IS NULL";

impl Store {
    pub async fn invitation_by_id(&self, id: Uuid) -> Result<Option<InvitationRow>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(BY_ID).bind(id).fetch_optional(p).await)?)
    }

    /// The invitation whose token hashes to `token_hash`.
    pub async fn invitation_by_token(&self, token_hash: &[u8]) -> Result<Option<InvitationRow>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(BY_TOKEN).bind(token_hash).fetch_optional(p).await)?)
    }

    /// An invitation of this organization (another organization's is `None`).
    pub async fn invitation_in_org(&self, org: OrgId, id: Uuid) -> Result<Option<InvitationRow>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(IN_ORG).bind(org).bind(id).fetch_optional(p).await)?)
    }

    /// Every invitation of an organization, newest first.
    pub async fn invitations_of(&self, org: OrgId) -> Result<Vec<InvitationRow>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(OF_ORG).bind(org).fetch_all(p).await)?)
    }
}

impl Tx {
    /// Inserts an invitation; a second active invitation for the address is `Conflict`.
    pub async fn insert_invitation(&mut self, i: &NewInvitation<'_>) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(INSERT).bind(i.id).bind(i.organization_id).bind(i.email).bind(i.role.as_str())
            .bind(i.token_hash).bind(i.invited_by).bind(i.metadata).bind(i.expires_at_ms).bind(i.now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Reads an invitation by id and locks it until commit.
    pub async fn invitation_for_update(&mut self, id: Uuid) -> Result<Option<InvitationRow>, StoreError> {
        Ok(match &mut self.0 {
            TxInner::Sqlite(t) => sqlx::query_as(BY_ID).bind(id).fetch_optional(&mut **t).await?,
            TxInner::Postgres(t) => sqlx::query_as(BY_ID_FOR_UPDATE).bind(id).fetch_optional(&mut **t).await?,
        })
    }

    /// Reads the invitation of a token and locks it until commit.
    pub async fn invitation_by_token_for_update(
        &mut self,
        token_hash: &[u8],
    ) -> Result<Option<InvitationRow>, StoreError> {
        Ok(match &mut self.0 {
            TxInner::Sqlite(t) => sqlx::query_as(BY_TOKEN).bind(token_hash).fetch_optional(&mut **t).await?,
            TxInner::Postgres(t) => {
                sqlx::query_as(BY_TOKEN_FOR_UPDATE).bind(token_hash).fetch_optional(&mut **t).await?
            }
        })
    }

    /// Reads an invitation of this organization and locks it until commit.
    pub async fn invitation_in_org_for_update(
        &mut self,
        org: OrgId,
        id: Uuid,
    ) -> Result<Option<InvitationRow>, StoreError> {
        Ok(match &mut self.0 {
            TxInner::Sqlite(t) => sqlx::query_as(IN_ORG).bind(org).bind(id).fetch_optional(&mut **t).await?,
            TxInner::Postgres(t) => {
                sqlx::query_as(IN_ORG_FOR_UPDATE).bind(org).bind(id).fetch_optional(&mut **t).await?
            }
        })
    }

    /// The address's invitation that is neither accepted nor revoked, locked until commit.
    pub async fn active_invitation_for_update(
        &mut self,
        org: OrgId,
        email: &EmailAddress,
    ) -> Result<Option<InvitationRow>, StoreError> {
        let email = email.as_str();
        Ok(match &mut self.0 {
            TxInner::Sqlite(t) => {
                sqlx::query_as(ACTIVE_FOR_EMAIL).bind(org).bind(email).fetch_optional(&mut **t).await?
            }
            TxInner::Postgres(t) => {
                sqlx::query_as(ACTIVE_FOR_EMAIL_FOR_UPDATE).bind(org).bind(email).fetch_optional(&mut **t).await?
            }
        })
    }

    /// Revokes an invitation that is neither accepted nor revoked; `false` otherwise.
    pub async fn revoke_invitation(&mut self, id: Uuid, by: Option<UserId>, now_ms: i64) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(REVOKE).bind(id).bind(by).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Marks an invitation accepted by `by`, if it is neither accepted nor revoked.
    pub async fn accept_invitation(&mut self, id: Uuid, by: UserId, now_ms: i64) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(ACCEPT).bind(id).bind(by).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}
