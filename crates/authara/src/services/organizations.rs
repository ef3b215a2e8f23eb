//! Organizations (behavior.md §9): the signed-in user's memberships, switching the session's
//! organization (§2.6), public management of the token's organization (§9.5), the internal
//! API's team creation (§9.6), and the ends of memberships (leaving). Invitations are
//! `services::invitations`.
//!
//! Every change records its domain event in its own transaction. Changes to who owns an
//! organization lock it first, so that two of them cannot both see an owner the other removes.

pub use crate::store::organizations::{MemberCursor, MemberRow, MembershipRow, OrgRow, UserMembershipRow};

/// One page of a member list: at most `limit` members after `after`.
#[derive(Debug, Clone, Copy)]
pub struct MemberPage {
    pub after: Option<MemberCursor>,
    pub limit: u32,
}

use super::Core;
use super::audit::Actor;
use super::auth::Principal;
use super::events::{DomainEvent, MembershipEnd};
use super::sessions::{Issued, Sessions, hash_refresh_token, new_refresh_token};
use super::token::{Grant, TokenError};
use crate::clock::ms;
use crate::config::OrgMode;
use crate::domain::{Audience, AuditAction, ClientInfo, OrgId, OrgKind, OrgRole, UserId};
use crate::store::accounts::NewOrg;
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
    #[error("the name must not be blank, longer than 255 characters or hold control or invisible characters")]
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
    /// The only owner cannot leave or be removed (hand the organization over first).
    #[error("the last owner cannot leave or be removed: transfer the ownership or delete the organization first")]
    LastOwner,
    /// A user's own personal organization is not left, handed over or deleted this way.
    #[error("a personal organization cannot be left, removed from, handed over or deleted")]
    PersonalOrganization,
    #[error("new_owner_user_id must not be the actor")]
    TransferToSelf,
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

/// Why a user's organizations keep the user from being deleted.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The only owner of a team organization that has other members.
    #[error("the last owner of organization {name} ({org}), which has other members: transfer or delete it first")]
    LastOwner { org: OrgId, name: String },
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

/// Who may use an organization-scoped route (behavior.md §9.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Member,
    Manager,
}

/// A name trimmed, not blank, at most [`MAX_NAME_CHARS`], without control, bidirectional or
/// other invisible characters (it goes into email subjects and onto other people's pages, where
/// an override would make the words after it read backwards).
fn org_name(raw: &str) -> Result<&str, OrgError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || crate::domain::has_hidden_characters(name) {
        Err(OrgError::InvalidName)
    } else {
        Ok(name)
    }
}

/// Organizations.
#[derive(Clone)]
pub struct Organizations {
    core: Core,
    sessions: Sessions,
}

impl Organizations {
    pub(crate) fn new(core: Core, sessions: Sessions) -> Self {
        Self { core, sessions }
    }

    fn mode(&self) -> OrgMode {
        self.core.config.org_mode
    }

    /// `GET /organizations` and the account's organization list: every membership, oldest first.
    pub async fn mine(&self, who: &Principal) -> Result<Vec<UserMembershipRow>, StoreError> {
        self.core.store.user_memberships(who.user_id()).await
    }

    /// `GET /organizations/current/members`.
    pub async fn current_members(&self, who: &Principal, page: Option<MemberPage>) -> Result<Vec<MemberRow>, OrgError> {
        if self.mode() == OrgMode::Personal {
            return Err(OrgError::ModeForbids);
        }
        let store = &self.core.store;
        store.membership(who.org_id(), who.user_id()).await?.ok_or(OrgError::MembershipGone)?;
        self.member_list(who.org_id(), page).await
    }

    /// The whole list, or one page of it.
    async fn member_list(&self, org: OrgId, page: Option<MemberPage>) -> Result<Vec<MemberRow>, OrgError> {
        let store = &self.core.store;
        Ok(match page {
            None => store.members(org).await?,
            Some(p) => store.members_page(org, p.after, p.limit).await?,
        })
    }

    /// The caller's membership in `org`, which must be the session's organization.
    pub(crate) async fn access(&self, who: &Principal, org: OrgId, level: Level) -> Result<MembershipRow, OrgError> {
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
        self.core.record(&mut tx, &Actor::system(), &event).await?;
        tx.commit().await?;
        self.core.users.forget_org(org);
        self.core.cache.announce_org_changed(org);
        Ok(row)
    }

    /// `GET /organizations/{id}/members`.
    pub async fn members(
        &self,
        who: &Principal,
        org: OrgId,
        page: Option<MemberPage>,
    ) -> Result<Vec<MemberRow>, OrgError> {
        self.access(who, org, Level::Member).await?;
        if self.mode() == OrgMode::Personal {
            return Err(OrgError::ModeForbids);
        }
        self.member_list(org, page).await
    }

    /// `GET /organizations/{id}/members/{userID}`.
    pub async fn member(&self, who: &Principal, org: OrgId, user: UserId) -> Result<MemberRow, OrgError> {
        self.access(who, org, Level::Member).await?;
        if self.mode() == OrgMode::Personal {
            return Err(OrgError::ModeForbids);
        }
        self.core.store.member(org, user).await?.ok_or(OrgError::MembershipNotFound)
    }

    /// `GET /users/{userID}/memberships`: the caller's own only.
    pub async fn memberships_of(&self, who: &Principal, user: UserId) -> Result<Vec<UserMembershipRow>, OrgError> {
        if user != who.user_id() {
            return Err(OrgError::NotSelf);
        }
        Ok(self.core.store.user_memberships(user).await?)
    }

    /// Internal `GET /users/{userID}/memberships`: any user's, as the public route shows one's
    /// own.
    pub async fn memberships_of_user(&self, user: UserId) -> Result<Vec<UserMembershipRow>, OrgError> {
        self.core.store.user_by_id(user).await?.ok_or(OrgError::UserNotFound)?;
        Ok(self.core.store.user_memberships(user).await?)
    }

    /// `POST /organizations/{id}/leave` and the account page's Leave button: the caller stops
    /// being a member of `org`. Their personal organization cannot be left, nor one they are the
    /// last owner of (hand it over or delete it first). Multi mode only (as `/capabilities`
    /// says): in single mode a member's one organization is all they have. The caller's sessions
    /// in `org` end at once, the current one included: it would be refused on its next refresh
    /// anyway.
    pub async fn leave(&self, who: &Principal, org: OrgId, client: &ClientInfo) -> Result<(), OrgError> {
        if self.mode() != OrgMode::Multi {
            return Err(OrgError::ModeForbids);
        }
        let user_id = who.user_id();
        let mut tx = self.core.store.begin().await?;
        if !tx.lock_org(org).await? {
            return Err(OrgError::NotMember);
        }
        let org_row = tx.org_by_id(org).await?.ok_or(OrgError::NotMember)?;
        let membership = tx.membership(org, user_id).await?.ok_or(OrgError::NotMember)?;
        if org_row.kind == OrgKind::Personal && org_row.created_by_user_id == Some(user_id) {
            return Err(OrgError::PersonalOrganization);
        }
        if membership.role == OrgRole::Owner && tx.owner_count(org).await? <= 1 {
            return Err(OrgError::LastOwner);
        }
        self.end_membership(&mut tx, &membership, MembershipEnd::Left, &Actor::user(user_id, client)).await?;
        tx.commit().await?;
        self.core.forget_user(user_id);
        Ok(())
    }

    /// Ends a membership in `tx`: the row, the member's sessions in that organization (at once,
    /// on every instance, once `tx` commits), and `organization.membership.deleted`.
    async fn end_membership(
        &self,
        tx: &mut Tx,
        membership: &MembershipRow,
        why: MembershipEnd,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let (org, user_id) = (membership.organization_id, membership.user_id);
        tx.delete_membership(org, user_id).await?;
        let sessions = tx.sessions_in_org(org, Some(user_id)).await?;
        self.sessions.end(tx, sessions).await?;
        let email = tx.user_by_id(user_id).await?.map(|u| u.email).unwrap_or_default();
        let event = DomainEvent::MembershipDeleted { org_id: org, user_id, role: membership.role, why, email: &email };
        self.core.record(tx, actor, &event).await?;
        Ok(())
    }

    /// The organization `org`, locked until `tx` ends, and the membership of `actor` there: the
    /// first checks of every internal change made on a member's behalf.
    async fn lock_for_actor(
        &self,
        tx: &mut Tx,
        org: OrgId,
        actor: UserId,
    ) -> Result<(OrgRow, MembershipRow), OrgError> {
        if actor.0.is_nil() {
            return Err(OrgError::InvalidActor);
        }
        if !tx.lock_org(org).await? {
            return Err(OrgError::OrganizationNotFound);
        }
        let org_row = tx.org_by_id(org).await?.ok_or(OrgError::OrganizationNotFound)?;
        let by = tx.membership(org, actor).await?.ok_or(OrgError::ActorNotMember)?;
        Ok((org_row, by))
    }

    /// [`Self::lock_for_actor`] for what only the owner of a team organization may do.
    async fn lock_for_owner(&self, tx: &mut Tx, org: OrgId, actor: UserId) -> Result<OrgRow, OrgError> {
        let (org_row, by) = self.lock_for_actor(tx, org, actor).await?;
        if by.role != OrgRole::Owner {
            return Err(OrgError::ActorNotAllowed);
        }
        if org_row.kind == OrgKind::Personal {
            return Err(OrgError::PersonalOrganization);
        }
        Ok(org_row)
    }

    /// Internal `DELETE /organizations/{id}/members/{userID}`: `actor` (an owner, or an admin
    /// removing someone who is not an owner) ends `user`'s membership. The last owner stays, as
    /// does the creator of a personal organization; the member's sessions there end at once.
    pub async fn remove_member(
        &self,
        org: OrgId,
        user: UserId,
        actor: UserId,
        client: &ClientInfo,
    ) -> Result<(), OrgError> {
        let mut tx = self.core.store.begin().await?;
        let (org_row, by) = self.lock_for_actor(&mut tx, org, actor).await?;
        if !by.role.is_manager() {
            return Err(OrgError::ActorNotAllowed);
        }
        let target = tx.membership(org, user).await?.ok_or(OrgError::MembershipNotFound)?;
        if target.role == OrgRole::Owner && by.role != OrgRole::Owner {
            return Err(OrgError::ActorNotAllowed);
        }
        if org_row.kind == OrgKind::Personal && org_row.created_by_user_id == Some(user) {
            return Err(OrgError::PersonalOrganization);
        }
        if target.role == OrgRole::Owner && tx.owner_count(org).await? <= 1 {
            return Err(OrgError::LastOwner);
        }
        let actor = Actor::internal_api(client).on_behalf_of(actor);
        self.end_membership(&mut tx, &target, MembershipEnd::Removed, &actor).await?;
        tx.commit().await?;
        self.core.forget_user(user);
        Ok(())
    }

    /// Internal `POST /organizations/{id}/ownership-transfer`: the owner `actor` hands the
    /// organization to the member `new_owner` and becomes an admin, recording
    /// `organization.membership.updated` for both. Sessions go on: access tokens issued before
    /// carry the old roles until they expire or are refreshed (a refresh reads the roles again),
    /// and this server's own checks read them from the database at once.
    pub async fn transfer_ownership(
        &self,
        org: OrgId,
        actor: UserId,
        new_owner: UserId,
        client: &ClientInfo,
    ) -> Result<(), OrgError> {
        if actor == new_owner {
            return Err(OrgError::TransferToSelf);
        }
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        self.lock_for_owner(&mut tx, org, actor).await?;
        let heir = tx.membership(org, new_owner).await?.ok_or(OrgError::MembershipNotFound)?;
        tx.set_member_role(org, new_owner, OrgRole::Owner, now).await?;
        tx.set_member_role(org, actor, OrgRole::Admin, now).await?;
        let who = Actor::internal_api(client).on_behalf_of(actor);
        let promoted = DomainEvent::MembershipUpdated {
            org_id: org,
            user_id: new_owner,
            role: OrgRole::Owner,
            previous: heir.role,
            audit: Some(AuditAction::OwnershipTransferred),
        };
        self.core.record(&mut tx, &who, &promoted).await?;
        let demoted = DomainEvent::MembershipUpdated {
            org_id: org,
            user_id: actor,
            role: OrgRole::Admin,
            previous: OrgRole::Owner,
            audit: None,
        };
        self.core.record(&mut tx, &who, &demoted).await?;
        tx.commit().await?;
        self.core.forget_user(new_owner);
        self.core.forget_user(actor);
        Ok(())
    }

    /// Internal `DELETE /organizations/{id}`: its owner `actor` deletes a team organization
    /// (see `delete_in`). A personal organization goes only with its creator's account.
    pub async fn delete(&self, org: OrgId, actor: UserId, client: &ClientInfo) -> Result<(), OrgError> {
        let mut tx = self.core.store.begin().await?;
        let org_row = self.lock_for_owner(&mut tx, org, actor).await?;
        let members = self.delete_in(&mut tx, &org_row, &Actor::internal_api(client).on_behalf_of(actor)).await?;
        tx.commit().await?;
        for m in members {
            self.core.forget_user(m);
        }
        Ok(())
    }

    /// Deletes a locked organization in `tx`: every session whose organization it is ends (at
    /// once, on every instance, once `tx` commits: its members sign in again and start in
    /// their default organization), then `organization.membership.deleted` for each member,
    /// oldest first, and `organization.deleted`. Its pending invitations go with it. Returns
    /// the members.
    async fn delete_in(&self, tx: &mut Tx, org: &OrgRow, actor: &Actor) -> Result<Vec<UserId>, StoreError> {
        let sessions = tx.sessions_in_org(org.id, None).await?;
        self.sessions.end(tx, sessions).await?;
        let members = tx.members(org.id).await?;
        for m in &members {
            let event = DomainEvent::MembershipDeleted {
                org_id: org.id,
                user_id: m.membership.user_id,
                role: m.membership.role,
                why: MembershipEnd::OrganizationDeleted,
                email: &m.email,
            };
            self.core.record(tx, actor, &event).await?;
        }
        let event = DomainEvent::OrganizationDeleted {
            org_id: org.id,
            name: &org.name,
            kind: org.kind,
            created_by: org.created_by_user_id,
        };
        self.core.record(tx, actor, &event).await?;
        tx.delete_org(org.id, self.core.now_ms()).await?;
        self.core.users.forget_org(org.id);
        self.core.cache.announce_org_changed(org.id);
        Ok(members.into_iter().map(|m| m.membership.user_id).collect())
    }

    /// What deleting `user`'s account does to their organizations, in `tx` (the one rule of
    /// the account page's deletion and the internal API's): every organization they belong to
    /// is locked (in id order, so that two deletions cannot deadlock), then
    /// - one they are the only owner of that has other members refuses the deletion
    ///   ([`OrgError::LastOwner`] naming it: hand it over or delete it first), unless it is
    ///   their own personal organization;
    /// - one they are the only owner of without other members, and their own personal
    ///   organization, are deleted with it ([`Self::delete_in`]);
    /// - their other memberships end (`organization.membership.deleted`).
    ///
    /// Nothing is written before every organization has been checked. Returns the users whose
    /// cached views must be forgotten after commit.
    pub(crate) async fn release_user(
        &self,
        tx: &mut Tx,
        user: UserId,
        actor: &Actor,
    ) -> Result<Vec<UserId>, ReleaseError> {
        let mut orgs: Vec<OrgId> = tx.user_memberships(user).await?.iter().map(|m| m.organization.id).collect();
        orgs.sort();
        for org in &orgs {
            tx.lock_org(*org).await?;
        }
        // Read again under the locks: what a concurrent change committed before them counts.
        let memberships = tx.user_memberships(user).await?;
        let mut fates = Vec::with_capacity(memberships.len());
        for m in &memberships {
            let org = &m.organization;
            let own_personal = org.kind == OrgKind::Personal && org.created_by_user_id == Some(user);
            let sole_owner = m.role == OrgRole::Owner && tx.owner_count(org.id).await? <= 1;
            let goes = own_personal || (sole_owner && tx.member_count(org.id).await? <= 1);
            if sole_owner && !goes {
                return Err(ReleaseError::LastOwner { org: org.id, name: org.name.clone() });
            }
            fates.push(goes);
        }
        let mut touched = Vec::new();
        for (m, goes) in memberships.iter().zip(fates) {
            if goes {
                touched.extend(self.delete_in(tx, &m.organization, actor).await?);
            } else {
                self.end_membership(tx, &m.membership(), MembershipEnd::UserDeleted, actor).await?;
            }
        }
        touched.retain(|u| *u != user);
        Ok(touched)
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
        let grant = Grant {
            user: user_id,
            session: session.id,
            org,
            org_role: membership.role,
            roles: &roles,
            audience,
            amr: &session.amr,
            auth_time_ms: session.auth_time_ms,
        };
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
        self.core.record(&mut tx, &Actor::system(), &created).await?;
        let membership = DomainEvent::MembershipCreated {
            org_id: id,
            user_id: created_by,
            role: OrgRole::Owner,
            is_initial: true,
            invitation_id: None,
            metadata: None,
        };
        self.core.record(&mut tx, &Actor::system(), &membership).await?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(org_name("  Acme  ").ok(), Some("Acme"));
        assert!(org_name("   ").is_err());
        assert!(org_name("a\r\nBcc: x").is_err());
        assert!(org_name(&"é".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(org_name(&"é".repeat(MAX_NAME_CHARS + 1)).is_err());
    }
}
