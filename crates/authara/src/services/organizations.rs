//! Organizations (behavior.md §9): the signed-in user's memberships, switching the session's
//! organization (§2.6), public management of the token's organization (§9.5), the internal
//! API's team creation and invitations (§9.3, §9.6), and invitation acceptance.
//!
//! Every change records its domain event in its own transaction. Invitation tokens are 32 random
//! bytes (base64url); only their SHA-256 is stored, and the invitation email receives the raw
//! token sealed inside its email job, never in the event that webhooks deliver.

use serde_json::{Map, Value};
use uuid::Uuid;

pub use crate::store::invitations::InvitationRow;
pub use crate::store::organizations::{MemberRow, MembershipRow, OrgRow, UserMembershipRow};

use super::Core;
use super::audit::Actor;
use super::auth::Principal;
use super::events::{DomainEvent, InvitationFacts, InvitationMail};
use super::sessions::{ClientInfo, Issued, hash_refresh_token, new_refresh_token};
use super::token::{Grant, TokenError};
use crate::clock::ms;
use crate::config::OrgMode;
use crate::domain::{Audience, EmailAddress, InvitationStatus, OrgId, OrgKind, OrgRole, UserId};
use crate::store::accounts::{NewOrg, UserRow};
use crate::store::invitations::NewInvitation;
use crate::store::refresh::NewRefresh;
use crate::store::{StoreError, Tx};

/// Longest organization name, in characters.
pub const MAX_NAME_CHARS: usize = 255;

/// Why an organization operation was refused. Each variant is one answer of the contract.
#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    /// The organization mode does not offer this (behavior.md §9.2).
    #[error("not available in this organization mode")]
    ModeForbids,
    /// Public management acts on the session's organization only.
    #[error("the organization is not the session's")]
    NotActiveOrganization,
    #[error("not a member of this organization")]
    NotMember,
    #[error("owner or admin role required")]
    NotManager,
    #[error("only your own memberships can be listed")]
    NotSelf,
    /// The session's organization is gone or the user left it.
    #[error("no longer a member of the session's organization")]
    MembershipGone,
    #[error("the name must not be blank, longer than 255 characters or hold control characters")]
    InvalidName,
    #[error("actor_user_id must not be the nil UUID")]
    InvalidActor,
    /// Invitations grant `member` or `admin`; `owner` is the creator's.
    #[error("the role must be member or admin")]
    InvalidRole,
    #[error("the actor is not a member of the organization")]
    ActorNotMember,
    #[error("the actor may not invite to this organization")]
    ActorNotAllowed,
    #[error("organization not found")]
    OrganizationNotFound,
    #[error("user not found")]
    UserNotFound,
    #[error("membership not found")]
    MembershipNotFound,
    #[error("invitation not found")]
    InvitationNotFound,
    #[error("already a member of the organization")]
    AlreadyMember,
    #[error("an invitation for this email is already pending")]
    InvitationAlreadyPending,
    #[error("the invitation was already accepted")]
    InvitationAlreadyAccepted,
    #[error("the invitation was revoked")]
    InvitationRevoked,
    #[error("the invitation has expired")]
    InvitationExpired,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a session could not switch organization.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("switching is only available in multi mode")]
    ModeForbids,
    /// Revoked, expired, or not the caller's.
    #[error("session revoked or expired")]
    SessionInvalid,
    #[error("not a member of the target organization")]
    NotMember,
    #[error("user disabled")]
    Disabled,
    #[error("audience not permitted")]
    AudienceForbidden,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an invitation cannot be accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("invitations are disabled in this organization mode")]
    Disabled,
    #[error("unknown invitation")]
    Unknown,
    #[error("the invitation is for another email address")]
    WrongEmail,
    #[error("the invitation was accepted by someone else")]
    AcceptedByOther,
    #[error("the invitation was revoked")]
    Revoked,
    #[error("the invitation has expired")]
    Expired,
    /// `single` mode: a user who already belongs to an organization cannot join another.
    #[error("already a member of an organization")]
    AlreadyInAnOrganization,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An invitation as the API shows it.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub row: InvitationRow,
    pub status: InvitationStatus,
    pub metadata: Map<String, Value>,
    /// Only when the invitation was just created (create and resend).
    pub invite_url: Option<String>,
}

/// An invitation as its hosted pages show it.
#[derive(Debug, Clone)]
pub struct InvitationPreview {
    pub invitation: Invitation,
    /// The organization's name.
    pub organization: String,
    /// Whether an account uses the invited address.
    pub account_exists: bool,
}

/// What an internal caller asks to invite.
#[derive(Debug, Clone)]
pub struct NewInvite {
    pub actor: UserId,
    pub email: EmailAddress,
    pub role: OrgRole,
    pub metadata: Map<String, Value>,
}

/// The outcome of an acceptance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub organization_id: OrgId,
    /// `false` when the user already was a member, or this user had accepted already.
    pub membership_created: bool,
}

/// Who may use an organization-scoped route (behavior.md §9.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Member,
    Manager,
}

/// The SHA-256 stored for an invitation token (hashed as refresh tokens are).
fn token_hash(token: &str) -> [u8; 32] {
    super::sessions::hash_refresh_token(token.trim())
}

/// Invitation tokens are made as refresh tokens are: 32 random bytes, base64url (43 characters).
fn new_token() -> String {
    super::sessions::new_refresh_token()
}

fn metadata_of(row: &InvitationRow) -> Map<String, Value> {
    match serde_json::from_str(&row.metadata) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// A name trimmed, not blank, at most [`MAX_NAME_CHARS`], without control characters (it goes
/// into email subjects).
fn org_name(raw: &str) -> Result<&str, OrgError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        Err(OrgError::InvalidName)
    } else {
        Ok(name)
    }
}

/// Organizations.
#[derive(Clone)]
pub struct Organizations {
    core: Core,
}

impl Organizations {
    pub(crate) fn new(core: Core) -> Self {
        Self { core }
    }

    fn mode(&self) -> OrgMode {
        self.core.config.org_mode
    }

    fn invitation(&self, row: InvitationRow, invite_url: Option<String>) -> Invitation {
        let status = row.status(self.core.now_ms());
        let metadata = metadata_of(&row);
        Invitation { row, status, metadata, invite_url }
    }

    /// `GET /organizations` and the account's organization list: every membership, oldest first.
    pub async fn mine(&self, who: &Principal) -> Result<Vec<UserMembershipRow>, StoreError> {
        self.core.store.user_memberships(who.user_id()).await
    }

    /// `GET /organizations/current/members`.
    pub async fn current_members(&self, who: &Principal) -> Result<Vec<MemberRow>, OrgError> {
        if self.mode() == OrgMode::Personal {
            return Err(OrgError::ModeForbids);
        }
        let store = &self.core.store;
        store.membership(who.org_id(), who.user_id()).await?.ok_or(OrgError::MembershipGone)?;
        Ok(store.members(who.org_id()).await?)
    }

    /// The caller's membership in `org`, which must be the session's organization.
    async fn access(&self, who: &Principal, org: OrgId, level: Level) -> Result<MembershipRow, OrgError> {
        if org != who.org_id() {
            return Err(OrgError::NotActiveOrganization);
        }
        let membership = self.core.store.membership(org, who.user_id()).await?.ok_or(OrgError::NotMember)?;
        if level == Level::Manager && !membership.role.is_manager() {
            return Err(OrgError::NotManager);
        }
        Ok(membership)
    }

    /// `GET /organizations/{id}`.
    pub async fn get(&self, who: &Principal, org: OrgId) -> Result<OrgRow, OrgError> {
        self.access(who, org, Level::Member).await?;
        self.core.store.org_by_id(org).await?.ok_or(OrgError::OrganizationNotFound)
    }

    /// `PATCH /organizations/{id}`: renames, recording `organization.updated`.
    pub async fn rename(&self, who: &Principal, org: OrgId, name: &str) -> Result<OrgRow, OrgError> {
        self.access(who, org, Level::Manager).await?;
        let name = org_name(name)?;
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        let row = tx.rename_org(org, name, now).await?.ok_or(OrgError::OrganizationNotFound)?;
        let event = DomainEvent::OrganizationUpdated {
            org_id: row.id,
            name: &row.name,
            kind: row.kind,
            created_by: row.created_by_user_id,
        };
        self.core.record(&mut tx, &event).await?;
        tx.commit().await?;
        self.core.users.forget_org(org);
        self.core.cache.announce_org_changed(org);
        Ok(row)
    }

    /// `GET /organizations/{id}/members`.
    pub async fn members(&self, who: &Principal, org: OrgId) -> Result<Vec<MemberRow>, OrgError> {
        self.access(who, org, Level::Member).await?;
        if self.mode() == OrgMode::Personal {
            return Err(OrgError::ModeForbids);
        }
        Ok(self.core.store.members(org).await?)
    }

    /// `GET /organizations/{id}/members/{userID}`.
    pub async fn member(&self, who: &Principal, org: OrgId, user: UserId) -> Result<MemberRow, OrgError> {
        self.access(who, org, Level::Member).await?;
        if self.mode() == OrgMode::Personal {
            return Err(OrgError::ModeForbids);
        }
        self.core.store.member(org, user).await?.ok_or(OrgError::MembershipNotFound)
    }

    /// `GET /organizations/{id}/invitations`: every status, newest first.
    pub async fn invitations(&self, who: &Principal, org: OrgId) -> Result<Vec<Invitation>, OrgError> {
        self.access(who, org, Level::Manager).await?;
        if self.mode() == OrgMode::Personal {
            return Err(OrgError::ModeForbids);
        }
        let rows = self.core.store.invitations_of(org).await?;
        Ok(rows.into_iter().map(|r| self.invitation(r, None)).collect())
    }

    /// `GET /organizations/{id}/invitations/{invitationID}`.
    pub async fn invitation_of(&self, who: &Principal, org: OrgId, id: Uuid) -> Result<Invitation, OrgError> {
        self.access(who, org, Level::Manager).await?;
        if self.mode() == OrgMode::Personal {
            return Err(OrgError::ModeForbids);
        }
        let row = self.core.store.invitation_in_org(org, id).await?.ok_or(OrgError::InvitationNotFound)?;
        Ok(self.invitation(row, None))
    }

    /// `POST /organizations/{id}/invitations/{invitationID}/revoke`, recording
    /// `organization.invitation.revoked`.
    pub async fn revoke(&self, who: &Principal, org: OrgId, id: Uuid) -> Result<Invitation, OrgError> {
        self.access(who, org, Level::Manager).await?;
        if self.mode() == OrgMode::Personal {
            return Err(OrgError::ModeForbids);
        }
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        let mut row = tx.invitation_in_org_for_update(org, id).await?.ok_or(OrgError::InvitationNotFound)?;
        match row.status(now) {
            InvitationStatus::Accepted => return Err(OrgError::InvitationAlreadyAccepted),
            InvitationStatus::Revoked => return Err(OrgError::InvitationRevoked),
            InvitationStatus::Expired => return Err(OrgError::InvitationExpired),
            InvitationStatus::Pending => {}
        }
        tx.revoke_invitation(row.id, Some(who.user_id()), now).await?;
        (row.revoked_at_ms, row.revoked_by, row.updated_at_ms) = (Some(now), Some(who.user_id()), now);
        let metadata = Value::Object(metadata_of(&row));
        self.core.record(&mut tx, &revoked_event(&row, &metadata, Some(who.user_id()), now)).await?;
        tx.commit().await?;
        Ok(self.invitation(row, None))
    }

    /// `GET /users/{userID}/memberships`: the caller's own only.
    pub async fn memberships_of(&self, who: &Principal, user: UserId) -> Result<Vec<UserMembershipRow>, OrgError> {
        if user != who.user_id() {
            return Err(OrgError::NotSelf);
        }
        Ok(self.core.store.user_memberships(user).await?)
    }

    /// `POST /organizations/{id}/switch` (behavior.md §2.6): moves the session to `org`, replaces
    /// all its refresh tokens with one for `org`, and mints an access token there. The previous
    /// access token stays valid until it expires.
    pub async fn switch(&self, who: &Principal, org: OrgId, audience: Audience) -> Result<Issued, SwitchError> {
        if self.mode() != OrgMode::Multi {
            return Err(SwitchError::ModeForbids);
        }
        let now = self.core.now_ms();
        let user_id = who.user_id();
        let mut tx = self.core.store.begin().await?;
        let session = tx.session_for_update(who.session_id()).await?.ok_or(SwitchError::SessionInvalid)?;
        if session.user_id != user_id || session.revoked_at_ms.is_some() || session.expires_at_ms <= now {
            return Err(SwitchError::SessionInvalid);
        }
        let membership = tx.membership(org, user_id).await?.ok_or(SwitchError::NotMember)?;
        let user = tx.user_by_id(user_id).await?.ok_or(SwitchError::SessionInvalid)?;
        if user.disabled_at_ms.is_some() {
            return Err(SwitchError::Disabled);
        }
        let roles = tx.user_roles(user_id).await?;
        if !audience.permits(&roles) {
            return Err(SwitchError::AudienceForbidden);
        }
        tx.set_session_org(session.id, org).await?;
        tx.delete_session_refresh_tokens(session.id).await?;
        let refresh_token = new_refresh_token();
        let ttl = ms(self.core.config.session.refresh_ttl);
        tx.insert_refresh(&NewRefresh {
            session_id: session.id,
            organization_id: org,
            token_hash: &hash_refresh_token(&refresh_token),
            now_ms: now,
            expires_at_ms: now.saturating_add(ttl).min(session.expires_at_ms),
        })
        .await?;
        let grant =
            Grant { user: user_id, session: session.id, org, org_role: membership.role, roles: &roles, audience };
        let access_token = self.core.tokens.mint(&grant, now)?;
        tx.commit().await?;
        Ok(Issued { access_token, refresh_token })
    }

    /// Internal `POST /organizations` (behavior.md §9.6): a team organization owned by
    /// `created_by`, recording `organization.created` and the initial membership.
    pub async fn create_team(&self, created_by: UserId, name: &str) -> Result<(OrgRow, MembershipRow), OrgError> {
        if self.mode() != OrgMode::Multi {
            return Err(OrgError::ModeForbids);
        }
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        tx.user_by_id(created_by).await?.ok_or(OrgError::UserNotFound)?;
        let name = org_name(name)?;
        let id = OrgId::new();
        tx.insert_org(&NewOrg { id, name, kind: OrgKind::Team, created_by, now_ms: now }).await?;
        tx.insert_membership(id, created_by, OrgRole::Owner, now).await?;
        let created =
            DomainEvent::OrganizationCreated { org_id: id, name, kind: OrgKind::Team, created_by: Some(created_by) };
        self.core.record(&mut tx, &created).await?;
        let membership = DomainEvent::MembershipCreated {
            org_id: id,
            user_id: created_by,
            role: OrgRole::Owner,
            is_initial: true,
            invitation_id: None,
            metadata: None,
        };
        self.core.record(&mut tx, &membership).await?;
        tx.commit().await?;
        let org = OrgRow {
            id,
            name: name.to_owned(),
            kind: OrgKind::Team,
            created_by_user_id: Some(created_by),
            created_at_ms: now,
            updated_at_ms: now,
        };
        let membership = MembershipRow {
            organization_id: id,
            user_id: created_by,
            role: OrgRole::Owner,
            created_at_ms: now,
            updated_at_ms: now,
        };
        Ok((org, membership))
    }

    /// Internal `POST /organizations/{id}/invitations`, with the checks in the order of
    /// behavior.md §9.3 (the email, role and metadata were parsed by the caller). An expired
    /// invitation for the same address is revoked silently (no event), as the reference does.
    pub async fn invite(&self, org: OrgId, req: &NewInvite) -> Result<Invitation, OrgError> {
        if req.role == OrgRole::Owner {
            return Err(OrgError::InvalidRole);
        }
        if self.mode() == OrgMode::Personal {
            return Err(OrgError::ActorNotAllowed);
        }
        if req.actor.0.is_nil() {
            return Err(OrgError::InvalidActor);
        }
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        let org_row = tx.org_by_id(org).await?.ok_or(OrgError::OrganizationNotFound)?;
        let actor = tx.membership(org, req.actor).await?.ok_or(OrgError::ActorNotMember)?;
        if !actor.role.is_manager() {
            return Err(OrgError::ActorNotAllowed);
        }
        if tx.is_member_by_email(org, &req.email).await? {
            return Err(OrgError::AlreadyMember);
        }
        if let Some(active) = tx.active_invitation_for_update(org, &req.email).await? {
            if active.expires_at_ms > now {
                return Err(OrgError::InvitationAlreadyPending);
            }
            tx.revoke_invitation(active.id, Some(req.actor), now).await?;
        }
        let metadata = Value::Object(req.metadata.clone());
        let invitation =
            self.issue(&mut tx, &org_row, req.email.as_str(), req.role, &metadata, Some(req.actor), now).await?;
        tx.commit().await?;
        Ok(invitation)
    }

    /// Internal `POST /organizations/{id}/invitations/{invitationID}/resend`: revokes the
    /// invitation (revoked by its inviter) and issues a fresh one with the same address, role,
    /// metadata and inviter, recording `revoked` then `created`. An expired one may be resent.
    pub async fn resend(&self, org: OrgId, id: Uuid) -> Result<Invitation, OrgError> {
        if self.mode() == OrgMode::Personal {
            return Err(OrgError::ModeForbids);
        }
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        let org_row = tx.org_by_id(org).await?.ok_or(OrgError::OrganizationNotFound)?;
        let old = tx.invitation_in_org_for_update(org, id).await?.ok_or(OrgError::InvitationNotFound)?;
        match old.status(now) {
            InvitationStatus::Accepted => return Err(OrgError::InvitationAlreadyAccepted),
            InvitationStatus::Revoked => return Err(OrgError::InvitationRevoked),
            InvitationStatus::Expired | InvitationStatus::Pending => {}
        }
        if tx.is_member_by_email(org, &EmailAddress::from_stored(old.email.clone())).await? {
            return Err(OrgError::AlreadyMember);
        }
        let metadata = Value::Object(metadata_of(&old));
        tx.revoke_invitation(old.id, old.invited_by, now).await?;
        self.core.record(&mut tx, &revoked_event(&old, &metadata, old.invited_by, now)).await?;
        let invitation = self.issue(&mut tx, &org_row, &old.email, old.role, &metadata, old.invited_by, now).await?;
        tx.commit().await?;
        Ok(invitation)
    }

    /// Inserts a pending invitation with a new token and records `organization.invitation.created`,
    /// whose email job carries the token sealed.
    #[expect(clippy::too_many_arguments, reason = "one invitation's fields, used by create and resend")]
    async fn issue(
        &self,
        tx: &mut Tx,
        org: &OrgRow,
        email: &str,
        role: OrgRole,
        metadata: &Value,
        invited_by: Option<UserId>,
        now: i64,
    ) -> Result<Invitation, OrgError> {
        let id = Uuid::new_v4();
        let token = new_token();
        let expires_at_ms = now.saturating_add(ms(self.core.config.organizations.invitation_ttl));
        let metadata_text = metadata.to_string();
        let new = NewInvitation {
            id,
            organization_id: org.id,
            email,
            role,
            token_hash: &token_hash(&token),
            invited_by,
            metadata: &metadata_text,
            expires_at_ms,
            now_ms: now,
        };
        match tx.insert_invitation(&new).await {
            // A concurrent create won the one active invitation per address.
            Err(StoreError::Conflict) => return Err(OrgError::InvitationAlreadyPending),
            other => other?,
        }
        let event = DomainEvent::InvitationCreated {
            invitation: InvitationFacts { id, org_id: org.id, email, role, metadata },
            invited_by,
            expires_at_ms,
            mail: InvitationMail {
                sealed_token: self.core.secrets.seal(token.as_bytes(), id.as_bytes()),
                organization_name: &org.name,
            },
        };
        self.core.record(tx, &event).await?;
        let row = InvitationRow {
            id,
            organization_id: org.id,
            email: email.to_owned(),
            role,
            invited_by,
            accepted_by: None,
            revoked_by: None,
            metadata: metadata_text,
            expires_at_ms,
            accepted_at_ms: None,
            revoked_at_ms: None,
            created_at_ms: now,
            updated_at_ms: now,
        };
        let url = invite_url(&self.core.config.public_url, &token);
        Ok(self.invitation(row, Some(url)))
    }

    /// A pending invitation for `email` behind `code` (signup with `invitation_code`), read
    /// without a lock: the acceptance checks it again, locked.
    pub(crate) async fn pending_for(&self, code: &str, email: &EmailAddress) -> Result<InvitationRow, AcceptError> {
        if self.mode() == OrgMode::Personal {
            return Err(AcceptError::Disabled);
        }
        let row = self.core.store.invitation_by_token(&token_hash(code)).await?.ok_or(AcceptError::Unknown)?;
        self.acceptable(&row, email, None)?;
        Ok(row)
    }

    /// The invitation behind `code`, locked in `tx`, if `email` may accept it now.
    pub(crate) async fn lock_by_code(
        &self,
        tx: &mut Tx,
        code: &str,
        email: &EmailAddress,
    ) -> Result<InvitationRow, AcceptError> {
        if self.mode() == OrgMode::Personal {
            return Err(AcceptError::Disabled);
        }
        let row = tx.invitation_by_token_for_update(&token_hash(code)).await?.ok_or(AcceptError::Unknown)?;
        self.acceptable(&row, email, None)?;
        Ok(row)
    }

    /// The invitation `id` (a verified signup challenge's), locked in `tx`.
    pub(crate) async fn lock_by_id(&self, tx: &mut Tx, id: Uuid) -> Result<InvitationRow, AcceptError> {
        if self.mode() == OrgMode::Personal {
            return Err(AcceptError::Disabled);
        }
        tx.invitation_for_update(id).await?.ok_or(AcceptError::Unknown)
    }

    /// `Ok(true)` when `email` may accept `row` now, `Ok(false)` when `user` accepted it already.
    fn acceptable(&self, row: &InvitationRow, email: &EmailAddress, user: Option<UserId>) -> Result<bool, AcceptError> {
        if row.email != email.as_str() {
            return Err(AcceptError::WrongEmail);
        }
        match row.status(self.core.now_ms()) {
            InvitationStatus::Pending => Ok(true),
            InvitationStatus::Accepted if user.is_some() && row.accepted_by == user => Ok(false),
            InvitationStatus::Accepted => Err(AcceptError::AcceptedByOther),
            InvitationStatus::Revoked => Err(AcceptError::Revoked),
            InvitationStatus::Expired => Err(AcceptError::Expired),
        }
    }

    /// Accepts `row` (locked in `tx`) for `user` (behavior.md §9.3): joins the organization with
    /// the invitation's role unless already a member, marks the invitation accepted, and records
    /// `organization.invitation.accepted` and, when a membership was created,
    /// `organization.membership.created`. Accepting again as the same user changes nothing.
    pub(crate) async fn accept_in(
        &self,
        tx: &mut Tx,
        row: &InvitationRow,
        user: &UserRow,
    ) -> Result<Accepted, AcceptError> {
        let org = row.organization_id;
        if self.mode() == OrgMode::Personal {
            return Err(AcceptError::Disabled);
        }
        let email = EmailAddress::from_stored(user.email.clone());
        if !self.acceptable(row, &email, Some(user.id))? {
            return Ok(Accepted { organization_id: org, membership_created: false });
        }
        let now = self.core.now_ms();
        let already = tx.membership(org, user.id).await?.is_some();
        if !already && self.mode() == OrgMode::Single && tx.membership_count(user.id).await? > 0 {
            return Err(AcceptError::AlreadyInAnOrganization);
        }
        let created = !already && tx.join_org(org, user.id, row.role, now).await?;
        tx.accept_invitation(row.id, user.id, now).await?;
        let metadata = Value::Object(metadata_of(row));
        let facts = InvitationFacts { id: row.id, org_id: org, email: &row.email, role: row.role, metadata: &metadata };
        self.core
            .record(
                tx,
                &DomainEvent::InvitationAccepted { invitation: facts, accepted_by: user.id, accepted_at_ms: now },
            )
            .await?;
        if created {
            let event = DomainEvent::MembershipCreated {
                org_id: org,
                user_id: user.id,
                role: row.role,
                is_initial: false,
                invitation_id: Some(row.id),
                metadata: Some(&metadata),
            };
            self.core.record(tx, &event).await?;
        }
        Ok(Accepted { organization_id: org, membership_created: created })
    }

    /// What the invitation pages show: the invitation behind `token`, its organization's name,
    /// and whether its address has an account already; `None` for a token that is not one.
    pub async fn preview(&self, token: &str) -> Result<Option<InvitationPreview>, StoreError> {
        let store = &self.core.store;
        let Some(row) = store.invitation_by_token(&token_hash(token)).await? else { return Ok(None) };
        let Some(organization) = store.org_name(row.organization_id).await? else { return Ok(None) };
        let account_exists = store.user_by_email(&EmailAddress::from_stored(row.email.clone())).await?.is_some();
        Ok(Some(InvitationPreview { invitation: self.invitation(row, None), organization, account_exists }))
    }

    /// The pending invitation behind `code`, whoever it is for (the hosted pages sign up or sign
    /// in as its address), read without a lock: the acceptance checks it again, locked.
    pub(crate) async fn pending(&self, code: &str) -> Result<InvitationRow, AcceptError> {
        if self.mode() == OrgMode::Personal {
            return Err(AcceptError::Disabled);
        }
        let row = self.core.store.invitation_by_token(&token_hash(code)).await?.ok_or(AcceptError::Unknown)?;
        let email = EmailAddress::from_stored(row.email.clone());
        self.acceptable(&row, &email, None)?;
        Ok(row)
    }

    /// With the allowlist on, puts the address of a pending invitation on the list (behavior.md
    /// §5.5), audited as `allowlist.email_added`, in the caller's transaction: it commits or
    /// rolls back with the signup or login it admits.
    pub(crate) async fn admit_in(
        &self,
        tx: &mut Tx,
        row: &InvitationRow,
        email: &EmailAddress,
        client: &ClientInfo,
    ) -> Result<(), StoreError> {
        tx.allow_email(email.as_str(), None, self.core.now_ms()).await?;
        let meta = serde_json::json!({ "email": email.as_str(), "invitation_id": row.id });
        self.core.audit(tx, &Actor::anonymous(client), "allowlist.email_added", None, meta).await
    }

    /// A signed-in user accepts the invitation behind `token` (the hosted accept page).
    pub async fn accept(&self, who: &Principal, token: &str) -> Result<Accepted, AcceptError> {
        let mut tx = self.core.store.begin().await?;
        let user = tx.user_by_id(who.user_id()).await?.ok_or(AcceptError::Unknown)?;
        let row = tx.invitation_by_token_for_update(&token_hash(token)).await?.ok_or(AcceptError::Unknown)?;
        let accepted = self.accept_in(&mut tx, &row, &user).await?;
        tx.commit().await?;
        Ok(accepted)
    }
}

/// `PUBLIC_URL/auth/invitations/accept?token=…` (the token is base64url: nothing to encode).
pub(crate) fn invite_url(public_url: &str, token: &str) -> String {
    format!("{}/auth/invitations/accept?token={token}", public_url.trim_end_matches('/'))
}

fn revoked_event<'a>(row: &'a InvitationRow, metadata: &'a Value, by: Option<UserId>, now: i64) -> DomainEvent<'a> {
    DomainEvent::InvitationRevoked {
        invitation: InvitationFacts {
            id: row.id,
            org_id: row.organization_id,
            email: &row.email,
            role: row.role,
            metadata,
        },
        revoked_by: by,
        revoked_at_ms: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_url_safe_characters_and_hash_trimmed() {
        let t = new_token();
        assert_eq!(t.len(), 43);
        assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(token_hash(&format!(" {t}\n")), token_hash(&t));
        assert_ne!(new_token(), t);
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(org_name("  Acme  ").ok(), Some("Acme"));
        assert!(org_name("   ").is_err());
        assert!(org_name("a\r\nBcc: x").is_err());
        assert!(org_name(&"é".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(org_name(&"é".repeat(MAX_NAME_CHARS + 1)).is_err());
    }

    #[test]
    fn invite_urls() {
        assert_eq!(invite_url("https://a.example/", "tok"), "https://a.example/auth/invitations/accept?token=tok");
    }
}
