//! Invitations (behavior.md §9.3, §9.5, §9.6): issued by the internal API, listed and revoked
//! by an organization's managers, shown on the hosted invitation pages, and accepted.
//!
//! Acceptance is composed in one place, `Invitations::join`: the invitation locked, the
//! allowlist admitting its address (§5.5), the membership and its events, in the caller's
//! transaction. It runs only where the person acts on the invitation shown to them (the hosted
//! invitation forms, the signup APIs' `invitation_code`), never at the end of a provider round
//! trip, which a link from another site can start.
//!
//! Invitation tokens are 32 random bytes (base64url); only their SHA-256 is stored, and the
//! invitation email receives the raw token sealed inside its email job, never in the event that
//! webhooks deliver.

use serde_json::{Map, Value};
use uuid::Uuid;

pub use crate::store::invitations::InvitationRow;

use super::Core;
use super::audit::Actor;
use super::auth::Principal;
use super::events::{DomainEvent, InvitationFacts, InvitationMail};
use super::organizations::{Level, OrgError, Organizations};
use crate::clock::ms;
use crate::config::OrgMode;
use crate::domain::{ClientInfo, EmailAddress, InvitationStatus, OrgId, OrgRole, UserId};
use crate::store::accounts::UserRow;
use crate::store::invitations::NewInvitation;
use crate::store::organizations::OrgRow;
use crate::store::{StoreError, Tx};

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
    pub invitation_id: Uuid,
    pub organization_id: OrgId,
    /// `false` when the user already was a member, or this user had accepted already.
    pub membership_created: bool,
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

/// Which invitation to join: by its token (forms, `invitation_code`), or by id (a verified
/// signup challenge that carried one).
#[derive(Debug, Clone, Copy)]
pub enum Which<'a> {
    Code(&'a str),
    Id(Uuid),
}

/// Invitations.
#[derive(Clone)]
pub struct Invitations {
    core: Core,
    orgs: Organizations,
}

impl Invitations {
    pub(crate) fn new(core: Core, orgs: Organizations) -> Self {
        Self { core, orgs }
    }

    fn mode(&self) -> OrgMode {
        self.core.config.org_mode
    }

    fn invitation(&self, row: InvitationRow, invite_url: Option<String>) -> Invitation {
        let status = row.status(self.core.now_ms());
        let metadata = metadata_of(&row);
        Invitation { row, status, metadata, invite_url }
    }

    async fn access(&self, who: &Principal, org: OrgId) -> Result<(), OrgError> {
        self.orgs.access(who, org, Level::Manager).await.map(|_| ())
    }

    /// Joins `user` to the invitation `which` in `tx`: locked, checked for the user's address,
    /// the address admitted to the allowlist when it is on and the address is not listed
    /// (behavior.md §5.5, audited), then accepted (§9.3). The one composition of acceptance.
    pub(crate) async fn join(
        &self,
        tx: &mut Tx,
        which: Which<'_>,
        user: &UserRow,
        client: &ClientInfo,
    ) -> Result<Accepted, AcceptError> {
        let email = EmailAddress::from_stored(user.email.clone());
        let row = match which {
            Which::Code(code) => self.lock_by_code(tx, code, &email).await?,
            Which::Id(id) => self.lock_by_id(tx, id).await?,
        };
        if !self.core.allowed_in(tx, email.as_str()).await? {
            self.admit_in(tx, &row, &email, client).await?;
        }
        self.accept_in(tx, &row, user).await
    }

    /// `GET /organizations/{id}/invitations`: every status, newest first.
    pub async fn invitations(&self, who: &Principal, org: OrgId) -> Result<Vec<Invitation>, OrgError> {
        self.access(who, org).await?;
        if self.mode() == OrgMode::Personal {
            return Err(OrgError::ModeForbids);
        }
        let rows = self.core.store.invitations_of(org).await?;
        Ok(rows.into_iter().map(|r| self.invitation(r, None)).collect())
    }

    /// `GET /organizations/{id}/invitations/{invitationID}`.
    pub async fn invitation_of(&self, who: &Principal, org: OrgId, id: Uuid) -> Result<Invitation, OrgError> {
        self.access(who, org).await?;
        if self.mode() == OrgMode::Personal {
            return Err(OrgError::ModeForbids);
        }
        let row = self.core.store.invitation_in_org(org, id).await?.ok_or(OrgError::InvitationNotFound)?;
        Ok(self.invitation(row, None))
    }

    /// `POST /organizations/{id}/invitations/{invitationID}/revoke`, recording
    /// `organization.invitation.revoked`.
    pub async fn revoke(&self, who: &Principal, org: OrgId, id: Uuid) -> Result<Invitation, OrgError> {
        self.access(who, org).await?;
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
        self.core.record(&mut tx, &Actor::system(), &revoked_event(&row, &metadata, Some(who.user_id()), now)).await?;
        tx.commit().await?;
        Ok(self.invitation(row, None))
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
        self.core.record(&mut tx, &Actor::system(), &revoked_event(&old, &metadata, old.invited_by, now)).await?;
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
        self.core.record(tx, &Actor::system(), &event).await?;
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
            return Ok(Accepted { invitation_id: row.id, organization_id: org, membership_created: false });
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
                &Actor::system(),
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
            self.core.record(tx, &Actor::system(), &event).await?;
        }
        Ok(Accepted { invitation_id: row.id, organization_id: org, membership_created: created })
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
        let event = DomainEvent::AllowlistChanged {
            entry: None,
            email: email.as_str(),
            added: true,
            invitation_id: Some(row.id),
        };
        self.core.record(tx, &Actor::anonymous(client), &event).await?;
        Ok(())
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
    fn invite_urls() {
        assert_eq!(invite_url("https://a.example/", "tok"), "https://a.example/auth/invitations/accept?token=tok");
    }
}
