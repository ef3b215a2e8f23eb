//! Sign-in with providers: Google's ID tokens (the contract's flow), and the authorization-code
//! flow with PKCE for Google, GitHub and any OpenID Connect issuer.
//!
//! Whatever the flow, a provider gives us an [`Identity`] (provider, subject, verified email),
//! and the same rules decide what happens (behavior.md §7.3):
//! - an identity already linked signs its user in (the email is not compared or updated);
//! - an identity whose email belongs to an account is never linked on the strength of the
//!   email: the owner proves the account with its password (or an already-linked identity) on
//!   the recovery-link page, and only then is it linked;
//! - otherwise a new account is created (no password), with its first organization per mode.
//!
//! Linking from the account page and unlinking need a privileged session; unlinking refuses
//! to remove the last way to sign in.

pub mod client;
mod flow;
mod invited;
pub mod issuer;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;
use uuid::Uuid;

use self::client::{ProviderError, ProviderHttp};
use self::issuer::{IdTokenError, Issuer};
use super::Core;
use super::accounts::{Accounts, SignedIn};
use super::audit::Actor;
use super::auth::{Principal, ReauthError};
use super::organizations::{AcceptError, Organizations};
use super::password::{HashError, Verified};
use super::sessions::{ClientInfo, SessionError, Sessions};
use crate::cache::{LimitKey, Scope};
use crate::config::{ProviderConfig, ProviderKind};
use crate::domain::{Audience, EmailAddress, UserId};
use crate::store::StoreError;
use crate::store::providers::{LinkedProvider, NewPendingLink};

pub use self::flow::{Finished, Started};
pub use self::invited::{InvitationPage, InvitationTarget};

/// How long an account-recovery link waits for its owner (behavior.md §7.2).
const RECOVERY_LINK_TTL_MS: i64 = 10 * 60_000;

const PURPOSE_RECOVERY: &str = "account_recovery_link";
const PURPOSE_AUTHENTICATED: &str = "authenticated_link";
/// How long an authenticated link waits (behavior.md §7.2).
const AUTHENTICATED_LINK_TTL_MS: i64 = 5 * 60_000;

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The provider is not configured (or has no code flow).
    #[error("provider not configured")]
    Disabled,
    /// A required field is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// The ID token (or code exchange result) failed verification.
    #[error("invalid identity: {0}")]
    InvalidToken(String),
    /// The provider did not vouch for the email.
    #[error("the provider has not verified this email")]
    EmailUnverified,
    /// The allowlist refuses this email.
    #[error("this email may not sign in")]
    NotAllowed,
    /// An account has this email, without this identity: the owner must prove it first.
    #[error("an account with this email exists; link required")]
    LinkRequired,
    /// The flow's `state` is missing, forged, replayed, expired or bound to another browser.
    #[error("invalid or expired sign-in state")]
    InvalidState,
    /// The provider answered the authorization with an error (the user cancelled, …).
    #[error("the provider refused: {0}")]
    Denied(String),
    /// The provider could not be reached or answered nonsense.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The identity is linked to another account.
    #[error("this identity is linked to another account")]
    LinkedElsewhere,
    /// The user already has an identity at this provider.
    #[error("already linked to this provider")]
    AlreadyLinked,
    /// The user has no credential at this provider.
    #[error("not linked to this provider")]
    NotLinked,
    /// Removing this would leave no way to sign in.
    #[error("the last sign-in method cannot be removed")]
    LastMethod,
    /// A recovery or authenticated link that is unknown, expired, used, or someone else's.
    #[error("invalid or expired link")]
    UnknownLink,
    #[error("incorrect password")]
    WrongPassword,
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    /// The signed-in session of a link flow is gone or is another one.
    #[error("the session that started this link is no longer signed in")]
    SessionChanged,
    /// The invitation cannot be accepted (unknown, expired, withdrawn, used, another
    /// address's, or not in this mode).
    #[error(transparent)]
    Invitation(#[from] AcceptError),
    /// From an invitation's signup page: the invited address (or this identity) has an account.
    #[error("an account with the invited email exists")]
    InvitedAccountExists,
    /// From an invitation's login page: no account has the invited address.
    #[error("no account has the invited email")]
    InvitedNoAccount,
    /// Signing in on an invitation is for `multi` mode only.
    #[error("signing in on an invitation is only available in multi mode")]
    InvitationLoginOff,
    #[error(transparent)]
    Reauth(#[from] ReauthError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<IdTokenError> for OAuthError {
    fn from(e: IdTokenError) -> Self {
        match e {
            IdTokenError::Provider(p) => OAuthError::Provider(p),
            other => OAuthError::InvalidToken(other.to_string()),
        }
    }
}

/// Who a provider says signed in.
#[derive(Debug, Clone)]
pub struct Identity {
    pub provider: String,
    pub subject: String,
    pub email: EmailAddress,
}

/// What a provider sign-in led to.
#[derive(Debug)]
pub enum SignInOutcome {
    SignedIn(SignedIn),
    /// The email belongs to an account without this identity; the owner proves it on the
    /// recovery-link page (`/auth/provider-links/confirm?link_id=`).
    LinkRequired {
        link_id: Uuid,
    },
}

/// A recovery link, as its confirmation page shows it.
#[derive(Debug, Clone)]
pub struct RecoveryLink {
    pub id: Uuid,
    pub provider: String,
    pub provider_display: String,
    pub email: String,
    pub return_to: Option<String>,
}

/// A provider as pages list it.
#[derive(Debug, Clone)]
pub struct ProviderInfo {
    pub name: String,
    pub display_name: String,
    /// `/auth/oauth/{name}/start` works.
    pub code_flow: bool,
}

/// The service.
#[derive(Clone)]
pub struct OAuth {
    core: Core,
    sessions: Sessions,
    accounts: Accounts,
    organizations: Organizations,
    http: ProviderHttp,
    /// One issuer per OpenID provider (Google included), by provider name.
    issuers: Arc<HashMap<String, Issuer>>,
}

impl OAuth {
    pub(crate) fn new(
        core: Core,
        sessions: Sessions,
        accounts: Accounts,
        organizations: Organizations,
    ) -> Result<Self, String> {
        let http = ProviderHttp::new()?;
        let issuers = core
            .config
            .oauth
            .providers
            .iter()
            .filter(|p| matches!(p.kind, ProviderKind::Google | ProviderKind::Oidc))
            .map(|p| (p.name.clone(), Issuer::new(&p.issuer, http.clone())))
            .collect();
        Ok(Self { core, sessions, accounts, organizations, http, issuers: Arc::new(issuers) })
    }

    fn provider(&self, name: &str) -> Result<&ProviderConfig, OAuthError> {
        self.core.config.oauth.provider(name).ok_or(OAuthError::Disabled)
    }

    fn issuer(&self, name: &str) -> Result<&Issuer, OAuthError> {
        self.issuers.get(name).ok_or(OAuthError::Disabled)
    }

    /// The configured providers, in the listed order.
    pub fn providers(&self) -> Vec<ProviderInfo> {
        self.core
            .config
            .oauth
            .providers
            .iter()
            .map(|p| ProviderInfo {
                name: p.name.clone(),
                display_name: p.display_name.clone(),
                code_flow: p.code_flow(),
            })
            .collect()
    }

    /// The brand name of a provider (its name when it is no longer configured).
    pub fn display_name(&self, name: &str) -> String {
        self.core.config.oauth.provider(name).map_or_else(|| name.to_owned(), |p| p.display_name.clone())
    }

    /// Google's client id, when Google is configured.
    pub fn google_client_id(&self) -> Option<&str> {
        self.core.config.oauth.google().map(|p| p.client_id.as_str())
    }

    /// Verifies a Google ID token (`credential`) against the nonce the browser holds
    /// (behavior.md §7): signature, `iss`, `aud`, `exp`, `nonce`, `sub`, `email`,
    /// `email_verified`.
    pub async fn verify_google(&self, credential: &str, nonce: &str) -> Result<Identity, OAuthError> {
        let google = self.core.config.oauth.google().ok_or(OAuthError::Disabled)?;
        if credential.trim().is_empty() {
            return Err(OAuthError::Missing("credential"));
        }
        if nonce.trim().is_empty() {
            return Err(OAuthError::Missing("nonce"));
        }
        let claims =
            self.issuer("google")?.verify(credential.trim(), &google.client_id, nonce, self.core.now_ms()).await?;
        let verified = claims.email_verified();
        identity("google", claims.sub, claims.email.as_deref(), verified)
    }

    /// Signs in with a verified identity (behavior.md §7.3). With `recovery`, an email that
    /// belongs to another account makes a recovery link (carrying `recovery` as its return_to)
    /// instead of failing with `LinkRequired`.
    pub async fn sign_in(
        &self,
        identity: &Identity,
        audience: Audience,
        client: &ClientInfo,
        recovery: Option<&str>,
    ) -> Result<SignInOutcome, OAuthError> {
        let method = json!({ "method": identity.provider, "audience": audience.as_str() });
        if let Some(user) = self.core.store.user_by_provider(&identity.provider, &identity.subject).await? {
            if !self.core.allowed(&EmailAddress::from_stored(user.email.clone())).await? {
                return Err(OAuthError::NotAllowed);
            }
            let mut tx = self.core.store.begin().await?;
            let tokens = self.sessions.create(&mut tx, &user, audience, client).await?;
            self.core
                .audit(&mut tx, &Actor::user(user.id, client), "user.login", Some((user.id, &user.email)), method)
                .await?;
            tx.commit().await?;
            return Ok(SignInOutcome::SignedIn(SignedIn { user, tokens, device: None }));
        }
        if let Some(existing) = self.core.store.user_by_email(&identity.email).await? {
            let Some(return_to) = recovery else { return Err(OAuthError::LinkRequired) };
            let link_id = self.create_recovery_link(existing.id, identity, return_to).await?;
            return Ok(SignInOutcome::LinkRequired { link_id });
        }
        if !self.core.allowed(&identity.email).await? {
            return Err(OAuthError::NotAllowed);
        }
        if audience != Audience::App {
            // A new account has no admin role: the session would be refused anyway.
            return Err(OAuthError::Session(SessionError::AudienceForbidden));
        }
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        let Some(user) = self.accounts.create_user(&mut tx, &identity.email, None).await? else {
            // The email was taken in between: the same answer as above, next time.
            return Err(OAuthError::LinkRequired);
        };
        match tx.link_provider(user.id, &identity.provider, &identity.subject, now).await {
            Err(StoreError::Conflict) => return Err(OAuthError::LinkedElsewhere),
            other => other?,
        }
        let tokens = self.sessions.create(&mut tx, &user, audience, client).await?;
        let mut meta = method;
        meta["created"] = json!(true);
        self.core
            .audit(&mut tx, &Actor::user(user.id, client), "user.login", Some((user.id, &user.email)), meta)
            .await?;
        tx.commit().await?;
        Ok(SignInOutcome::SignedIn(SignedIn { user, tokens, device: None }))
    }

    /// Records an account-recovery link (behavior.md §7.2): `identity` may be linked to the
    /// account `user` once its owner proves it, then the browser goes on to `return_to`.
    pub(super) async fn create_recovery_link(
        &self,
        user: UserId,
        identity: &Identity,
        return_to: &str,
    ) -> Result<Uuid, OAuthError> {
        let link_id = Uuid::new_v4();
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        tx.insert_pending_link(&NewPendingLink {
            id: link_id,
            user_id: user,
            session_id: None,
            provider: &identity.provider,
            provider_user_id: Some(&identity.subject),
            provider_email: Some(identity.email.as_str()),
            provider_email_verified: true,
            purpose: PURPOSE_RECOVERY,
            return_to: Some(return_to),
            expires_at_ms: now.saturating_add(RECOVERY_LINK_TTL_MS),
            now_ms: now,
        })
        .await?;
        tx.commit().await?;
        Ok(link_id)
    }

    /// A valid (unconsumed, unexpired) recovery link, for its confirmation page.
    pub async fn recovery_link(&self, id: &str) -> Result<RecoveryLink, OAuthError> {
        let id = Uuid::parse_str(id.trim()).map_err(|_| OAuthError::UnknownLink)?;
        let row = self.core.store.pending_link(id).await?.ok_or(OAuthError::UnknownLink)?;
        if row.purpose != PURPOSE_RECOVERY || row.consumed_at_ms.is_some() || row.expires_at_ms <= self.core.now_ms() {
            return Err(OAuthError::UnknownLink);
        }
        Ok(RecoveryLink {
            id: row.id,
            provider_display: self.display_name(&row.provider),
            provider: row.provider,
            email: row.provider_email.unwrap_or_default(),
            return_to: row.return_to,
        })
    }

    /// `POST /auth/provider-links/confirm`: the owner of the account proves it with its
    /// password (rate limit `login` on the link's email); the identity is linked and a session
    /// starts, in one transaction that consumes the link.
    pub async fn confirm_with_password(
        &self,
        link_id: &str,
        password: &str,
        audience: Audience,
        client: &ClientInfo,
    ) -> Result<(SignedIn, Option<String>), OAuthError> {
        let link = self.recovery_link(link_id).await?;
        let key = LimitKey { ip: client.ip, target: Some(link.email.clone()) };
        self.core
            .limit(Scope::Login, &key)
            .await
            .map_err(|retry_after_secs| OAuthError::RateLimited { retry_after_secs })?;
        let row = self.core.store.pending_link(link.id).await?.ok_or(OAuthError::UnknownLink)?;
        let stored = self.core.store.password_hash(row.user_id).await?;
        let ok = match stored {
            Some(stored) if password.len() <= super::password::MAX_PASSWORD_BYTES => {
                self.core.hasher.verify(password, &stored).await? != Verified::No
            }
            _ => {
                self.core.hasher.verify_dummy(password).await?;
                false
            }
        };
        if !ok {
            let meta = json!({ "method": "password", "link": link.provider });
            self.core
                .audit_alone(&Actor::anonymous(client), "user.login_failed", Some((row.user_id, &link.email)), meta)
                .await;
            return Err(OAuthError::WrongPassword);
        }
        self.finish_recovery(link.id, row.user_id, "password", audience, client).await
    }

    /// `flow=proof` of Google's page callback (behavior.md §7.2): the owner proves the account
    /// behind a recovery link by signing in with a Google identity already linked to it.
    pub async fn confirm_with_identity(
        &self,
        link_id: &str,
        proof: &Identity,
        audience: Audience,
        client: &ClientInfo,
    ) -> Result<(SignedIn, Option<String>), OAuthError> {
        let link = self.recovery_link(link_id).await?;
        let row = self.core.store.pending_link(link.id).await?.ok_or(OAuthError::UnknownLink)?;
        let owner = self.core.store.user_by_provider(&proof.provider, &proof.subject).await?;
        if owner.is_none_or(|u| u.id != row.user_id) {
            return Err(OAuthError::LinkedElsewhere);
        }
        self.finish_recovery(link.id, row.user_id, &proof.provider, audience, client).await
    }

    /// Consumes a recovery link whose owner proved the account, links its identity and starts a
    /// session, in one transaction. A link made on an invitation's login page (its `return_to`)
    /// accepts the invitation in that transaction too, and the session starts in the invited
    /// organization (behavior.md §9.3).
    async fn finish_recovery(
        &self,
        link_id: Uuid,
        owner: UserId,
        proof: &str,
        audience: Audience,
        client: &ClientInfo,
    ) -> Result<(SignedIn, Option<String>), OAuthError> {
        let allowed = match self.core.store.user_by_id(owner).await? {
            Some(user) => self.core.allowed(&EmailAddress::from_stored(user.email)).await?,
            None => return Err(OAuthError::UnknownLink),
        };
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        let row = tx.pending_link_for_update(link_id).await?.ok_or(OAuthError::UnknownLink)?;
        if row.user_id != owner
            || row.purpose != PURPOSE_RECOVERY
            || row.consumed_at_ms.is_some()
            || row.expires_at_ms <= now
            || !tx.consume_pending_link(row.id, now).await?
        {
            return Err(OAuthError::UnknownLink);
        }
        let user = tx.user_by_id(row.user_id).await?.ok_or(OAuthError::UnknownLink)?;
        let subject = row.provider_user_id.as_deref().ok_or(OAuthError::UnknownLink)?;
        self.link_in(&mut tx, user.id, &row.provider, subject, now).await?;
        let invitation = row.return_to.as_deref().and_then(InvitationTarget::parse);
        let (org, audience) = match &invitation {
            Some(target) => {
                (Some(self.accept_for(&mut tx, &target.token, &user, allowed, client).await?), Audience::App)
            }
            None => (None, audience),
        };
        let tokens = self.sessions.create_in(&mut tx, &user, org, audience, client).await?;
        let actor = Actor::user(user.id, client);
        let meta = json!({ "provider": row.provider, "proof": proof });
        self.core.audit(&mut tx, &actor, "user.provider_linked", Some((user.id, &user.email)), meta).await?;
        let mut meta = json!({ "method": row.provider, "audience": audience.as_str() });
        if org.is_some() {
            meta["invitation"] = json!(true);
        }
        self.core.audit(&mut tx, &actor, "user.login", Some((user.id, &user.email)), meta).await?;
        tx.commit().await?;
        self.core.forget_user(user.id);
        Ok((SignedIn { user, tokens, device: None }, row.return_to))
    }

    /// `POST /auth/providers/google/link/start`: a pending link bound to the signed-in user and
    /// session, five minutes, for Google's page callback (`flow=link`). Privileged session only.
    pub async fn start_google_link(&self, who: &Principal) -> Result<Uuid, OAuthError> {
        if self.core.config.oauth.google().is_none() {
            return Err(OAuthError::Disabled);
        }
        self.core.require_privileged(who, None).await?;
        let id = Uuid::new_v4();
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        tx.insert_pending_link(&NewPendingLink {
            id,
            user_id: who.user_id(),
            session_id: Some(who.session_id()),
            provider: "google",
            provider_user_id: None,
            provider_email: None,
            provider_email_verified: false,
            purpose: PURPOSE_AUTHENTICATED,
            return_to: None,
            expires_at_ms: now.saturating_add(AUTHENTICATED_LINK_TTL_MS),
            now_ms: now,
        })
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// `flow=link` of Google's page callback: the pending link must be this user's and this
    /// session's, for Google, unexpired and unused; it is consumed as the identity is linked.
    pub async fn complete_google_link(
        &self,
        link_id: &str,
        identity: &Identity,
        who: &Principal,
        client: &ClientInfo,
    ) -> Result<(), OAuthError> {
        let id = Uuid::parse_str(link_id.trim()).map_err(|_| OAuthError::UnknownLink)?;
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        let row = tx.pending_link_for_update(id).await?.ok_or(OAuthError::UnknownLink)?;
        if row.purpose != PURPOSE_AUTHENTICATED
            || row.provider != identity.provider
            || row.user_id != who.user_id()
            || row.session_id != Some(who.session_id())
            || row.consumed_at_ms.is_some()
            || row.expires_at_ms <= now
            || !tx.consume_pending_link(row.id, now).await?
        {
            return Err(OAuthError::UnknownLink);
        }
        let user = tx.user_by_id(row.user_id).await?.ok_or(OAuthError::UnknownLink)?;
        self.link_in(&mut tx, user.id, &identity.provider, &identity.subject, now).await?;
        let meta = json!({ "provider": identity.provider, "proof": "session" });
        self.core
            .audit(&mut tx, &Actor::user(user.id, client), "user.provider_linked", Some((user.id, &user.email)), meta)
            .await?;
        tx.commit().await?;
        self.core.forget_user(user.id);
        Ok(())
    }

    /// Links `subject` at `provider` to `user` in `tx`, with the constraints of §7.3.
    async fn link_in(
        &self,
        tx: &mut crate::store::Tx,
        user: UserId,
        provider: &str,
        subject: &str,
        now: i64,
    ) -> Result<(), OAuthError> {
        if let Some(owner) = tx.user_by_provider(provider, subject).await? {
            return Err(if owner.id == user { OAuthError::AlreadyLinked } else { OAuthError::LinkedElsewhere });
        }
        match tx.link_provider(user, provider, subject, now).await {
            Err(StoreError::Conflict) => Err(OAuthError::AlreadyLinked),
            other => Ok(other?),
        }
    }

    /// Whether the user has a password.
    pub async fn has_password(&self, user: UserId) -> Result<bool, StoreError> {
        Ok(self.core.store.password_hash(user).await?.is_some_and(|h| !h.is_empty()))
    }

    /// Deletes code flows that were started and never finished.
    pub async fn cleanup(&self) -> Result<u64, StoreError> {
        self.core.store.delete_expired_flows(self.core.now_ms()).await
    }

    /// The user's provider identities.
    pub async fn linked(&self, user: UserId) -> Result<Vec<LinkedProvider>, StoreError> {
        self.core.store.linked_providers(user).await
    }

    /// Removes the user's credential at `provider` (a provider identity, or `password`), unless
    /// it is their last way to sign in. Needs a privileged session.
    pub async fn unlink(
        &self,
        who: &Principal,
        provider: &str,
        current_password: Option<&str>,
        client: &ClientInfo,
    ) -> Result<(), OAuthError> {
        self.core.require_privileged(who, current_password).await?;
        let user_id = who.user_id();
        let mut tx = self.core.store.begin().await?;
        let user = tx.user_by_id(user_id).await?.ok_or(OAuthError::NotLinked)?;
        if tx.count_sign_in_methods(user_id).await? <= 1 {
            // Whether or not `provider` is the one left, nothing may be removed from one method.
            return Err(OAuthError::LastMethod);
        }
        if !tx.unlink_provider(user_id, provider).await? {
            return Err(OAuthError::NotLinked);
        }
        let meta = json!({ "provider": provider });
        self.core
            .audit(&mut tx, &Actor::user(user_id, client), "user.provider_unlinked", Some((user_id, &user.email)), meta)
            .await?;
        tx.commit().await?;
        self.core.forget_user(user_id);
        Ok(())
    }
}

/// An identity from a provider's claims: a subject and a verified, valid email.
fn identity(provider: &str, sub: String, email: Option<&str>, verified: bool) -> Result<Identity, OAuthError> {
    if sub.trim().is_empty() {
        return Err(OAuthError::InvalidToken("empty subject".to_owned()));
    }
    let email = email
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| OAuthError::InvalidToken("no email".to_owned()))?;
    if !verified {
        return Err(OAuthError::EmailUnverified);
    }
    let email = EmailAddress::parse(email).map_err(|_| OAuthError::InvalidToken("invalid email".to_owned()))?;
    Ok(Identity { provider: provider.to_owned(), subject: sub, email })
}
