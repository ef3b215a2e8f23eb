//! The signed-in user's own account: the profile behind `GET /user`, username, password,
//! deletion. Also the per-user views cached between requests.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use super::Core;
use super::audit::Actor;
use super::auth::{Principal, ReauthError};
use super::events::DomainEvent;
use super::password::HashError;
use super::sessions::ClientInfo;
use super::sessions::Sessions;
use crate::cache::BoundedMap;
use crate::domain::{NewPassword, OrgId, PlatformRole, SessionId, UserId, Username};
use crate::store::StoreError;
use crate::store::accounts::UserRow;

/// What `GET /user` shows besides the token: the user and the name of their organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub user: UserRow,
    pub org_name: String,
}

/// How long a profile read for `GET /user` is reused. Session checks are the hot path of an
/// auth server; two queries per check would make the database their bottleneck. Changes made
/// on this instance drop the entry at once; other instances see them within twice this time
/// (an expired entry is still served while one request reads it again, so that expiry does
/// not send every concurrent request to the database at once).
pub const PROFILE_TTL_MS: i64 = 2_000;
/// How long a user's state read from the store is trusted by access checks (same rule).
pub(crate) const USER_STATE_TTL_MS: i64 = 2_000;
const CAPACITY: usize = 50_000;

/// A user's state as access checks need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UserState {
    Active,
    Disabled,
}

/// Per-user reads cached between requests, dropped together when the user changes.
#[derive(Debug)]
pub(crate) struct UserViews {
    pub(crate) states: BoundedMap<UserId, UserState>,
    profiles: BoundedMap<(UserId, OrgId), Arc<Profile>>,
    /// Profile keys being read again right now.
    refreshing: Mutex<HashSet<(UserId, OrgId)>>,
}

impl Default for UserViews {
    fn default() -> Self {
        Self { states: BoundedMap::new(CAPACITY), profiles: BoundedMap::new(CAPACITY), refreshing: Mutex::default() }
    }
}

impl UserViews {
    pub(crate) fn forget(&self, user: UserId) {
        self.states.remove(&user);
        self.profiles.remove_where(|(u, _)| *u == user);
    }

    /// Drops every profile showing this organization (after a rename).
    pub(crate) fn forget_org(&self, org: OrgId) {
        self.profiles.remove_where(|(_, o)| *o == org);
    }

    /// True for the one caller that should read the key again.
    fn claim(&self, key: (UserId, OrgId)) -> bool {
        self.refreshing.lock().unwrap_or_else(PoisonError::into_inner).insert(key)
    }

    fn release(&self, key: (UserId, OrgId)) {
        self.refreshing.lock().unwrap_or_else(PoisonError::into_inner).remove(&key);
    }
}

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
    #[error("user not found")]
    Gone,
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The user's own account.
#[derive(Clone)]
pub struct Profiles {
    core: Core,
    sessions: Sessions,
}

impl Profiles {
    pub(crate) fn new(core: Core, sessions: Sessions) -> Self {
        Self { core, sessions }
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
    pub async fn change_username(&self, who: &Principal, username: &Username) -> Result<(), ProfileError> {
        let user_id = who.user_id();
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        match tx.set_username(user_id, username.as_str(), now).await {
            Err(StoreError::Conflict) => return Err(ProfileError::UsernameTaken),
            other => other?,
        }
        self.core.record(&mut tx, &DomainEvent::UserUpdated { user_id }).await?;
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
        tx.set_password_hash(user_id, &hash, now).await?;
        let others = tx.revoke_other_sessions(user_id, who.session_id(), now).await?;
        self.core.record(&mut tx, &DomainEvent::UserUpdated { user_id }).await?;
        let email = tx.user_by_id(user_id).await?.map(|u| u.email).unwrap_or_default();
        let meta = serde_json::json!({ "revoked_sessions": others.len() });
        self.core
            .audit(&mut tx, &Actor::user(user_id, client), "user.password_changed", Some((user_id, &email)), meta)
            .await?;
        tx.commit().await?;
        self.sessions.revoked(&others).await;
        Ok(others.len())
    }

    /// Deletes the account and everything that belongs only to it, in one transaction that
    /// records `user.deleted`. `confirmation` must be the account's email; the session must be
    /// privileged (a recent login, or `current_password`).
    pub async fn delete_account(
        &self,
        who: &Principal,
        confirmation: &str,
        current_password: Option<&str>,
    ) -> Result<(), ProfileError> {
        let user_id = who.user_id();
        self.core.require_privileged(who, current_password).await?;
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        let user = tx.user_by_id(user_id).await?.ok_or(ProfileError::Gone)?;
        if confirmation.trim().to_lowercase() != user.email {
            return Err(ProfileError::ConfirmationMismatch);
        }
        let roles = tx.user_roles(user_id).await?;
        if roles.contains(&PlatformRole::Admin) && tx.other_active_admins(user_id).await? == 0 {
            return Err(ProfileError::LastAdmin);
        }
        let sessions: Vec<SessionId> = tx.revoke_user_sessions(user_id, now).await?;
        tx.delete_user(user_id).await?;
        self.core.record(&mut tx, &DomainEvent::UserDeleted { user_id }).await?;
        tx.commit().await?;
        self.core.forget_user(user_id);
        self.sessions.revoked(&sessions).await;
        Ok(())
    }
}
