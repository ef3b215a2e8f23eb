//! The signed-in user's own account: the profile behind `GET /user`, username, password,
//! deletion. Also the per-user views cached between requests.

use std::sync::Arc;

use super::Core;
use super::audit::Actor;
use super::auth::{Principal, ReauthError};
use super::events::{DomainEvent, UserChange};
use super::organizations::{Organizations, ReleaseError};
use super::password::HashError;
use super::sessions::Sessions;
use crate::cache::PROFILE_TTL_MS;
use crate::domain::{ClientInfo, NewPassword, OrgId, UserId, Username};
use crate::store::accounts::UserRow;
use crate::store::{StoreError, Tx};

/// What `GET /user` shows besides the token: the user and the name of their organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub user: UserRow,
    pub org_name: String,
}

/// The per-user views the services keep (see [`crate::cache::UserViews`]).
pub(crate) type UserViews = crate::cache::UserViews<Profile>;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("that username is taken")]
    UsernameTaken,
    #[error(transparent)]
    Reauth(#[from] ReauthError),
    #[error("the confirmation does not match the account's email")]
    ConfirmationMismatch,
    #[error("the last active administrator cannot delete their account")]
    LastAdmin,
    /// The only owner of a team organization that has other members (named).
    #[error("the last owner of organization {name}, which has other members: transfer or delete it first")]
    LastOwner { name: String },
    #[error("user not found")]
    Gone,
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an account could not be deleted (the account page's deletion and the internal API's).
#[derive(Debug, thiserror::Error)]
pub enum DeletionError {
    #[error("user not found")]
    UserNotFound,
    #[error("the last active administrator cannot be deleted")]
    LastAdmin,
    /// The only owner of a team organization that has other members.
    #[error("the user is the last owner of organization {org}, which has other members: transfer or delete it first")]
    LastOwner { org: OrgId, name: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ReleaseError> for DeletionError {
    fn from(e: ReleaseError) -> Self {
        match e {
            ReleaseError::LastOwner { org, name } => DeletionError::LastOwner { org, name },
            ReleaseError::Store(s) => DeletionError::Store(s),
        }
    }
}

impl From<DeletionError> for ProfileError {
    fn from(e: DeletionError) -> Self {
        match e {
            DeletionError::UserNotFound => ProfileError::Gone,
            DeletionError::LastAdmin => ProfileError::LastAdmin,
            DeletionError::LastOwner { name, .. } => ProfileError::LastOwner { name },
            DeletionError::Store(s) => ProfileError::Store(s),
        }
    }
}

/// The user's own account.
#[derive(Clone)]
pub struct Profiles {
    core: Core,
    sessions: Sessions,
    organizations: Organizations,
}

impl Profiles {
    pub(crate) fn new(core: Core, sessions: Sessions, organizations: Organizations) -> Self {
        Self { core, sessions, organizations }
    }

    /// The profile behind an access token; `None` when the user or organization is gone.
    pub async fn current(&self, who: &Principal) -> Result<Option<Arc<Profile>>, StoreError> {
        let now = self.core.now_ms();
        let views = &self.core.users;
        let key = (who.user_id(), who.org_id());
        match views.profiles.get_with_age(&key) {
            Some((p, at)) if now.saturating_sub(at) < PROFILE_TTL_MS => return Ok(Some(p)),
            Some((p, at)) if now.saturating_sub(at) < 2 * PROFILE_TTL_MS && !views.claim(key) => return Ok(Some(p)),
            Some(_) => {}
            None => {
                views.claim(key);
            }
        }
        let read = async {
            let (Some(user), Some(org_name)) =
                (self.core.store.user_by_id(key.0).await?, self.core.store.org_name(key.1).await?)
            else {
                return Ok(None);
            };
            let profile = Arc::new(Profile { user, org_name });
            views.profiles.insert(key, profile.clone(), now, now.saturating_add(2 * PROFILE_TTL_MS));
            Ok(Some(profile))
        }
        .await;
        views.release(key);
        read
    }

    /// The user row of the account page.
    pub async fn user(&self, who: &Principal) -> Result<UserRow, ProfileError> {
        self.core.store.user_by_id(who.user_id()).await?.ok_or(ProfileError::Gone)
    }

    /// Renames the user, recording `user.updated`.
    pub async fn change_username(
        &self,
        who: &Principal,
        username: &Username,
        client: &ClientInfo,
    ) -> Result<(), ProfileError> {
        let user_id = who.user_id();
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        match tx.set_username(user_id, username.as_str(), now).await {
            Err(StoreError::Conflict) => return Err(ProfileError::UsernameTaken),
            other => other?,
        }
        let email = tx.user_by_id(user_id).await?.map(|u| u.email).unwrap_or_default();
        let event = DomainEvent::UserUpdated { user_id, email: &email, change: UserChange::Username };
        self.core.record(&mut tx, &Actor::user(user_id, client), &event).await?;
        tx.commit().await?;
        self.core.forget_user(user_id);
        Ok(())
    }

    /// The account page's password change: needs the current password (checked and rate
    /// limited per user), and signs out every other session (the reference's page leaves them
    /// signed in), keeping this one.
    /// Whether the user has a password (a passkey-only account has none).
    pub async fn has_password(&self, user_id: crate::domain::UserId) -> Result<bool, StoreError> {
        Ok(self.core.store.password_hash(user_id).await?.is_some_and(|h| !h.is_empty()))
    }

    pub async fn change_password(
        &self,
        who: &Principal,
        current: &str,
        new: &NewPassword,
        client: &ClientInfo,
    ) -> Result<usize, ProfileError> {
        let user_id = who.user_id();
        if current.is_empty() && self.core.store.password_hash(user_id).await?.is_some() {
            return Err(ReauthError::Required.into());
        }
        self.core.require_privileged(who, Some(current)).await?;
        let hash = self.core.hasher.hash(new.expose()).await?;
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        let added = tx.password_hash(user_id).await?.is_none();
        tx.set_password_hash(user_id, &hash, now).await?;
        let revoked = self.sessions.end_all(&mut tx, user_id, Some(who.session_id())).await?.len();
        let email = tx.user_by_id(user_id).await?.map(|u| u.email).unwrap_or_default();
        let change = UserChange::Password { revoked, added };
        self.core
            .record(
                &mut tx,
                &Actor::user(user_id, client),
                &DomainEvent::UserUpdated { user_id, email: &email, change },
            )
            .await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// Deletes the account and everything that belongs only to it, in one transaction
    /// (`erase`). `confirmation` must be the account's email; the session must be
    /// privileged (a recent login, or `current_password`).
    pub async fn delete_account(
        &self,
        who: &Principal,
        confirmation: &str,
        current_password: Option<&str>,
        client: &ClientInfo,
    ) -> Result<(), ProfileError> {
        let user_id = who.user_id();
        self.core.require_privileged(who, current_password).await?;
        let mut tx = self.core.store.begin().await?;
        let user = tx.user_by_id(user_id).await?.ok_or(ProfileError::Gone)?;
        if confirmation.trim().to_lowercase() != user.email {
            return Err(ProfileError::ConfirmationMismatch);
        }
        let others = self.erase(&mut tx, &user, &Actor::user(user_id, client)).await?;
        tx.commit().await?;
        self.forget(user_id, others);
        Ok(())
    }

    /// Internal `DELETE /users/{userID}` (an application erasing a user on request): what
    /// [`Self::delete_account`] does, without the confirmation, audited as the internal API's.
    pub async fn delete_user(&self, user_id: UserId, client: &ClientInfo) -> Result<(), DeletionError> {
        let mut tx = self.core.store.begin().await?;
        let user = tx.user_by_id(user_id).await?.ok_or(DeletionError::UserNotFound)?;
        let others = self.erase(&mut tx, &user, &Actor::internal_api(client)).await?;
        tx.commit().await?;
        self.forget(user_id, others);
        Ok(())
    }

    /// The one deletion of an account, in `tx`, recording `user.deleted`. The last active
    /// administrator cannot be deleted (checked under the admin-role lock, so two
    /// administrators deleting themselves at once leave one), nor the only owner of a team
    /// organization with other members (checked under the organizations' locks; see
    /// [`Organizations::release_user`], which also deletes the organizations that go with the
    /// user). Every session ends at once, on every instance. Returns the other users whose
    /// cached views changed.
    async fn erase(&self, tx: &mut Tx, user: &UserRow, actor: &Actor) -> Result<Vec<UserId>, DeletionError> {
        if self.core.is_last_admin(tx, user).await? {
            return Err(DeletionError::LastAdmin);
        }
        let others = self.organizations.release_user(tx, user.id, actor).await?;
        self.sessions.end_all(tx, user.id, None).await?;
        // Recorded before the row goes: the audit row names the user before the row it points
        // at goes (its reference is then cleared, the address kept).
        let event = DomainEvent::UserDeleted { user_id: user.id, email: &user.email };
        self.core.record(tx, actor, &event).await?;
        tx.delete_user(user.id, self.core.now_ms()).await?;
        Ok(others)
    }

    fn forget(&self, user: UserId, others: Vec<UserId>) {
        self.core.forget_user(user);
        for other in others {
            self.core.forget_user(other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> OrgId {
        OrgId(uuid::Uuid::from_u128(7))
    }

    /// Releasing the user's organizations refuses with the organization that blocks it, named and
    /// identified, for the internal API's answer.
    #[test]
    fn a_release_refusal_names_the_organization() {
        let e = DeletionError::from(ReleaseError::LastOwner { org: org(), name: "Acme".into() });
        assert!(matches!(&e, DeletionError::LastOwner { org: o, name } if *o == org() && name == "Acme"), "{e:?}");
        let e = DeletionError::from(ReleaseError::Store(StoreError::Conflict));
        assert!(matches!(e, DeletionError::Store(StoreError::Conflict)), "{e:?}");
    }

    /// The account page shows each deletion refusal as its own: the last owner's with the
    /// organization's name, the last admin's, a user already gone.
    #[test]
    fn each_deletion_refusal_is_the_account_pages_own() {
        let e = ProfileError::from(DeletionError::LastOwner { org: org(), name: "Acme".into() });
        assert!(matches!(&e, ProfileError::LastOwner { name } if name == "Acme"), "{e:?}");
        assert!(e.to_string().contains("Acme"), "{e}");
        assert!(matches!(ProfileError::from(DeletionError::LastAdmin), ProfileError::LastAdmin));
        assert!(matches!(ProfileError::from(DeletionError::UserNotFound), ProfileError::Gone));
        let e = ProfileError::from(DeletionError::Store(StoreError::Conflict));
        assert!(matches!(e, ProfileError::Store(StoreError::Conflict)), "{e:?}");
    }
}
