//! Who is calling: the one place an access token becomes a [`Principal`]. Every extractor (API,
//! pages, and later admin and organizations) goes through [`Authenticator::authenticate`], so
//! signature, expiry, audience, revocation and the user's state are checked the same way
//! everywhere.

use std::sync::Arc;

use super::Core;
use super::profile::{USER_STATE_TTL_MS, UserState};
use super::token::{AccessClaims, TokenError};
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
        if self.core.cache.is_session_revoked(SessionId(claims.sid), now) {
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
