//! Who is calling: the one place an access token becomes a [`Principal`]. Every extractor (API,
//! pages, and later admin and organizations) goes through [`Authenticator::authenticate`], so
//! signature, expiry, audience, revocation and the user's state are checked the same way
//! everywhere.

use std::sync::Arc;

use super::Core;
use super::password::{HashError, Verified};
use super::token::{AccessClaims, TokenError};
use crate::cache::{LimitKey, Scope, USER_STATE_TTL_MS, UserState};
use crate::clock::ms;
use crate::domain::{Audience, OrgId, OrgRole, PlatformRole, SessionId, UserId};
use crate::store::StoreError;

/// A signed-in caller: a verified, unrevoked access token of a live, enabled user.
#[derive(Debug, Clone)]
pub struct Principal {
    claims: Arc<AccessClaims>,
}

impl Principal {
    pub fn user_id(&self) -> UserId {
        UserId(self.claims.sub)
    }

    pub fn session_id(&self) -> SessionId {
        SessionId(self.claims.sid)
    }

    pub fn org_id(&self) -> OrgId {
        OrgId(self.claims.org_id)
    }

    /// The role in the active organization at mint time (checked to be known at verification).
    pub fn org_role(&self) -> OrgRole {
        OrgRole::parse(&self.claims.org_role).unwrap_or(OrgRole::Member)
    }

    /// Platform roles in claim form (`authara:admin`), as the token carries them.
    pub fn role_claims(&self) -> &[String] {
        self.claims.roles.as_deref().unwrap_or_default()
    }

    pub fn has_role(&self, role: PlatformRole) -> bool {
        self.role_claims().iter().any(|r| r == role.claim())
    }

    pub fn claims(&self) -> &AccessClaims {
        &self.claims
    }
}

/// Why a token does not identify a caller. All answer 401 (or a login redirect on pages).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("session revoked")]
    Revoked,
    #[error("user disabled")]
    Disabled,
    #[error("user deleted")]
    Gone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Authenticates access tokens.
#[derive(Clone)]
pub struct Authenticator {
    core: Core,
}

impl Authenticator {
    pub(crate) fn new(core: Core) -> Self {
        Self { core }
    }

    /// The caller behind `token` for `audience` (`None`: either audience).
    pub async fn authenticate(&self, token: &str, audience: Option<Audience>) -> Result<Principal, AuthError> {
        let now = self.core.now_ms();
        let claims = self.core.tokens.verify(token, audience, now)?;
        let sid = SessionId(claims.sid);
        if self.core.cache.is_session_revoked(sid, now) {
            return Err(AuthError::Revoked);
        }
        // Other instances' revocations may not reach us right now: ask the database.
        if self.core.cache.store_check_needed(now) && self.core.store.session_started_at(sid).await?.is_none() {
            self.core.cache.remember_revoked(sid, now);
            return Err(AuthError::Revoked);
        }
        let user = UserId(claims.sub);
        let views = &self.core.users;
        let state = match views.states.get(&user, now) {
            Some(s) => s,
            None => {
                let state = match self.core.store.user_by_id(user).await? {
                    None => return Err(AuthError::Gone),
                    Some(u) if u.disabled_at_ms.is_some() => UserState::Disabled,
                    Some(_) => UserState::Active,
                };
                views.states.insert(user, state, now, now.saturating_add(USER_STATE_TTL_MS));
                state
            }
        };
        match state {
            UserState::Active => Ok(Principal { claims }),
            UserState::Disabled => Err(AuthError::Disabled),
        }
    }
}

/// Why a sensitive change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReauthError {
    /// Neither a recent login nor the current password.
    #[error("re-authentication required")]
    Required,
    #[error("the current password is incorrect")]
    WrongPassword,
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Core {
    /// The privileged-session rule (design.md decision 11, as Ory Kratos): changing the password
    /// or email and deleting the account need either `current_password`, checked here (rate
    /// limited per user), or a login within `AUTHARA_PRIVILEGED_SESSION_MAX_AGE`. A stolen
    /// session older than that cannot take the account over.
    pub(crate) async fn require_privileged(
        &self,
        who: &Principal,
        current_password: Option<&str>,
    ) -> Result<(), ReauthError> {
        if let Some(given) = current_password.filter(|p| !p.is_empty()) {
            let key = LimitKey { ip: None, target: Some(format!("user:{}", who.user_id())) };
            self.limit(Scope::Reauthenticate, &key)
                .await
                .map_err(|retry_after_secs| ReauthError::RateLimited { retry_after_secs })?;
            let stored = self.store.password_hash(who.user_id()).await?;
            let ok = match stored {
                Some(stored) => self.hasher.verify(given, &stored).await? != Verified::No,
                None => {
                    self.hasher.verify_dummy(given).await?;
                    false
                }
            };
            return if ok { Ok(()) } else { Err(ReauthError::WrongPassword) };
        }
        let started = self.store.session_started_at(who.session_id()).await?.ok_or(ReauthError::Required)?;
        let age = self.now_ms().saturating_sub(started);
        if age <= ms(self.config.session.privileged_max_age) { Ok(()) } else { Err(ReauthError::Required) }
    }
}
