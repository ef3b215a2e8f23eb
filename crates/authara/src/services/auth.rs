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
use crate::config::MfaPolicy;
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
    /// An admin-audience token without a second factor while `AUTHARA_MFA_REQUIRED` is on (a
    /// session from before the policy): the console sends its holder to enrol or verify.
    #[error("a second factor is required")]
    SecondFactorRequired,
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
        if self.core.config.mfa.required != MfaPolicy::Off
            && claims.aud.iter().any(|a| a == Audience::Admin.as_str())
            && !claims.amr.as_deref().is_some_and(|amr| amr.iter().any(|m| m == "mfa"))
        {
            return Err(AuthError::SecondFactorRequired);
        }
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
    /// The user has a second factor and has not used it in this session recently: a password
    /// is not enough (step-up, `POST /mfa/verify`).
    #[error("a recent second factor is required")]
    SecondFactorRequired,
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a session may do now about sensitive changes (see `Core::require_privileged`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// A recent sign-in (or, with a second factor, its recent use): nothing more to ask.
    Now,
    /// The current password would do.
    Password,
    /// The user has a second factor: only a code makes the session privileged (step-up).
    SecondFactor,
}

impl Core {
    /// Where `who`'s session stands for sensitive changes: without a second factor, a sign-in
    /// within `AUTHARA_PRIVILEGED_SESSION_MAX_AGE` is privileged, else the current password is
    /// asked for; with one, only its use within that time (at sign-in, or a step-up) is.
    pub(crate) async fn privilege(&self, who: &Principal) -> Result<Privilege, StoreError> {
        let Some(auth) = self.store.session_auth(who.session_id()).await? else {
            return Ok(Privilege::Password);
        };
        let now = self.now_ms();
        let max = ms(self.config.session.privileged_max_age);
        let recent = |at: i64| now.saturating_sub(at) <= max;
        let factor = self.store.totp(who.user_id()).await?.is_some_and(|t| t.confirmed_at_ms.is_some());
        Ok(match (factor, auth.mfa_at_ms) {
            (true, Some(at)) if recent(at) => Privilege::Now,
            (true, _) => Privilege::SecondFactor,
            (false, _) if recent(auth.created_at_ms) => Privilege::Now,
            (false, _) => Privilege::Password,
        })
    }

    /// The privileged-session rule (design.md decision 11, as Ory Kratos): changing the password
    /// or email, removing a sign-in method and deleting the account need either
    /// `current_password`, checked here (rate limited per user), or a login within
    /// `AUTHARA_PRIVILEGED_SESSION_MAX_AGE`. A stolen session older than that cannot take the
    /// account over. For a user with a second factor, the password is not enough: the session
    /// must have used the second factor within that time (see [`Core::privilege`]).
    pub(crate) async fn require_privileged(
        &self,
        who: &Principal,
        current_password: Option<&str>,
    ) -> Result<(), ReauthError> {
        let given = current_password.filter(|p| !p.is_empty());
        match (self.privilege(who).await?, given) {
            (Privilege::SecondFactor, _) => Err(ReauthError::SecondFactorRequired),
            (Privilege::Now, None) => Ok(()),
            (Privilege::Password, None) => Err(ReauthError::Required),
            // A password given is checked, recent sign-in or not.
            (Privilege::Now | Privilege::Password, Some(given)) => {
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
                if ok { Ok(()) } else { Err(ReauthError::WrongPassword) }
            }
        }
    }
}
