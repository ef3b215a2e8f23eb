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
//! A verified identity is then signed in by the one completion (`services::signin`). Pending
//! links and signups are bound to the browser that made them (a random value in its
//! `authara_link` cookie, stored hashed), so a link started from another site cannot be
//! finished anywhere else. Google ID tokens sign in once: a replayed token is refused on every
//! instance until it expires.
//!
//! Linking from the account page and unlinking need a privileged session; unlinking refuses
//! to remove the last way to sign in. Adding and removing a sign-in method mails the owner.

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
use super::accounts::{Accounts, Completion, NewAccount};
use super::audit::Actor;
use super::auth::{Principal, ReauthError};
use super::events::{Credential, DomainEvent};
use super::invitations::{AcceptError, Invitations};
use super::password::{HashError, Verified as Hash};
use super::sessions::SessionError;
use super::signin::{Method, SignIns, StartIn, Verified};
use crate::cache::{LimitKey, Scope};
use crate::config::{ProviderConfig, ProviderKind};
use crate::domain::{Audience, ClientInfo, EmailAddress, UserId};
use crate::store::providers::{LinkedProvider, NewPendingLink};
use crate::store::{StoreError, Tx};

pub use self::flow::{Finished, Started};
pub use self::invited::{InvitationPage, InvitationTarget, PendingSignup, invitation_token_of, restore_return_to};

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
    /// A recovery or authenticated link that is unknown, expired, used, someone else's, or
    /// made in another browser.
    #[error("invalid or expired link")]
    UnknownLink,
    /// The Google ID token already signed someone in (a leaked token is good for nothing).
    #[error("this sign-in was already used")]
    Replayed,
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
    /// A pending invitation signup whose address got an account in the meantime.
    #[error("an account with the invited email exists")]
    InvitedAccountExists,
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
    /// Signed in, or waiting for the second step.
    SignedIn(Completion),
    /// The email belongs to an account without this identity; the owner proves it on the
    /// recovery-link page (`/auth/provider-links/confirm?link_id=`), in this browser only: it
    /// keeps `binding` in its `authara_link` cookie.
    LinkRequired { link_id: Uuid, binding: String },
    /// From an invitation page, a new identity: the invitation's signup page offers to create
    /// the account with it and join (`signup_id`), in this browser only (`binding`).
    SignupPending { signup_id: Uuid, binding: String },
}

/// A random value for a browser's `authara_link` cookie, and the hash stored with what it binds.
fn new_binding() -> (String, [u8; 32]) {
    let value = super::sessions::new_refresh_token();
    let hash = super::sessions::hash_refresh_token(&value);
    (value, hash)
}

/// Whether the browser's `authara_link` cookie is the one `stored` was made for.
fn bound(stored: Option<&[u8]>, cookie: Option<&str>) -> bool {
    match (stored, cookie.filter(|c| !c.is_empty() && c.len() <= 128)) {
        (Some(stored), Some(cookie)) => {
            let given = super::sessions::hash_refresh_token(cookie);
            bool::from(subtle::ConstantTimeEq::ct_eq(stored, given.as_slice()))
        }
        _ => false,
    }
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
    accounts: Accounts,
    signins: SignIns,
    invitations: Invitations,
    http: ProviderHttp,
    /// One issuer per OpenID provider (Google included), by provider name.
    issuers: Arc<HashMap<String, Issuer>>,
}

impl OAuth {
    pub(crate) fn new(
        core: Core,
        accounts: Accounts,
        signins: SignIns,
        invitations: Invitations,
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
        Ok(Self { core, accounts, signins, invitations, http, issuers: Arc::new(issuers) })
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
    /// `email_verified`. Every token presented counts against the client's IP, as the password
    /// login does (`AUTHARA_RATE_LIMIT_LOGIN_IP_*`, in a window of its own).
    pub async fn verify_google(
        &self,
        credential: &str,
        nonce: &str,
        client: &ClientInfo,
    ) -> Result<Identity, OAuthError> {
        let google = self.core.config.oauth.google().ok_or(OAuthError::Disabled)?;
        if credential.trim().is_empty() {
            return Err(OAuthError::Missing("credential"));
        }
        if nonce.trim().is_empty() {
            return Err(OAuthError::Missing("nonce"));
        }
        // why: the reference leaves this route unlimited; each attempt costs a signature check
        // (and a key-set fetch when the key is new) and is a sign-in like any other.
        let key = LimitKey { ip: client.ip, target: None };
        self.core
            .limit(Scope::GoogleSignIn, &key)
            .await
            .map_err(|retry_after_secs| OAuthError::RateLimited { retry_after_secs })?;
        let claims =
            self.issuer("google")?.verify(credential.trim(), &google.client_id, nonce, self.core.now_ms()).await?;
        let verified = claims.email_verified();
        let identity = identity("google", claims.sub.clone(), claims.email.as_deref(), verified)?;
        // why: the reference accepts an ID token as often as it is presented until it expires,
        // so a leaked one (a log, a proxy, a browser extension) signs in again and again. Each
        // token signs in once, on every instance sharing the database.
        let spent = super::sessions::hash_refresh_token(credential.trim());
        let expires_ms = claims.exp.saturating_mul(1000);
        if !self.core.store.spend_id_token(&spent, expires_ms).await? {
            return Err(OAuthError::Replayed);
        }
        Ok(identity)
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
        let method = Method::Provider { name: identity.provider.clone() };
        if let Some(user) = self.core.store.user_by_provider(&identity.provider, &identity.subject).await? {
            let tx = self.core.store.begin().await?;
            let signed =
                self.signins.complete(tx, Verified::new(user, method), audience, StartIn::Default, client).await;
            return Ok(SignInOutcome::SignedIn(signed.map_err(refused)?));
        }
        if let Some(existing) = self.core.store.user_by_email(&identity.email).await? {
            let Some(return_to) = recovery else { return Err(OAuthError::LinkRequired) };
            let (link_id, binding) = self.create_recovery_link(existing.id, identity, return_to).await?;
            return Ok(SignInOutcome::LinkRequired { link_id, binding });
        }
        if !self.core.allowed(&identity.email).await? {
            return Err(OAuthError::NotAllowed);
        }
        if audience != Audience::App {
            // A new account has no admin role: the session would be refused anyway.
            return Err(OAuthError::Session(SessionError::AudienceForbidden));
        }
        let mut tx = self.core.store.begin().await?;
        let new = NewAccount { email: &identity.email, password_hash: None, invited: false, verified: true };
        let Some(user) = self.accounts.create_user(&mut tx, &new, &Actor::anonymous(client)).await? else {
            // The email was taken in between: the same answer as above, next time.
            return Err(OAuthError::LinkRequired);
        };
        self.link_new(&mut tx, &user, identity, "signup", client).await?;
        let verified = Verified::new(user, method).with("created", true);
        let signed = self.signins.complete(tx, verified, audience, StartIn::Default, client).await;
        Ok(SignInOutcome::SignedIn(signed.map_err(refused)?))
    }

    /// Links `identity` to a user created in `tx` (it cannot be anyone's: `LinkedElsewhere`
    /// otherwise), recording it.
    async fn link_new(
        &self,
        tx: &mut Tx,
        user: &crate::store::accounts::UserRow,
        identity: &Identity,
        proof: &str,
        client: &ClientInfo,
    ) -> Result<(), OAuthError> {
        match tx.link_provider(user.id, &identity.provider, &identity.subject, self.core.now_ms()).await {
            Err(StoreError::Conflict) => return Err(OAuthError::LinkedElsewhere),
            other => other?,
        }
        let credential = Credential::Provider { name: &identity.provider, proof };
        let event = DomainEvent::CredentialAdded { user_id: user.id, email: &user.email, credential };
        self.core.record(tx, &Actor::user(user.id, client), &event).await?;
        Ok(())
    }

    /// Records an account-recovery link (behavior.md §7.2): `identity` may be linked to the
    /// account `user` once its owner proves it, in the browser that keeps the returned binding,
    /// then the browser goes on to `return_to`.
    pub(super) async fn create_recovery_link(
        &self,
        user: UserId,
        identity: &Identity,
        return_to: &str,
    ) -> Result<(Uuid, String), OAuthError> {
        let link_id = Uuid::new_v4();
        let (binding, binding_hash) = new_binding();
        let now = self.core.now_ms();
        // An invitation page's token is kept as its hash; the confirmation takes it back from
        // the browser (see `invited::restore_return_to`).
        let return_to = invited::return_to_at_rest(return_to);
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
            return_to: Some(&return_to),
            binding_hash: Some(&binding_hash),
            expires_at_ms: now.saturating_add(RECOVERY_LINK_TTL_MS),
            now_ms: now,
        })
        .await?;
        tx.commit().await?;
        Ok((link_id, binding))
    }

    /// A valid (unconsumed, unexpired) recovery link made in this browser (`binding`: its
    /// `authara_link` cookie), for its confirmation page.
    pub async fn recovery_link(&self, id: &str, binding: Option<&str>) -> Result<RecoveryLink, OAuthError> {
        let id = Uuid::parse_str(id.trim()).map_err(|_| OAuthError::UnknownLink)?;
        let row = self.core.store.pending_link(id).await?.ok_or(OAuthError::UnknownLink)?;
        if row.purpose != PURPOSE_RECOVERY
            || row.consumed_at_ms.is_some()
            || row.expires_at_ms <= self.core.now_ms()
            || !bound(row.binding_hash.as_deref(), binding)
        {
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
    /// password (rate limit `login` on the link's email), in the browser that made the link;
    /// the identity is linked and a session starts, in one transaction that consumes the link.
    pub async fn confirm_with_password(
        &self,
        link_id: &str,
        binding: Option<&str>,
        password: &str,
        audience: Audience,
        client: &ClientInfo,
    ) -> Result<(Completion, Option<String>), OAuthError> {
        let link = self.recovery_link(link_id, binding).await?;
        let key = LimitKey { ip: client.ip, target: Some(link.email.clone()) };
        self.core
            .limit(Scope::Login, &key)
            .await
            .map_err(|retry_after_secs| OAuthError::RateLimited { retry_after_secs })?;
        let row = self.core.store.pending_link(link.id).await?.ok_or(OAuthError::UnknownLink)?;
        let stored = self.core.store.password_hash(row.user_id).await?;
        let ok = match stored {
            Some(stored) if password.len() <= super::password::MAX_PASSWORD_BYTES => {
                self.core.hasher.verify(password, &stored).await? != Hash::No
            }
            _ => {
                self.core.hasher.verify_dummy(password).await?;
                false
            }
        };
        if !ok {
            let event = DomainEvent::SignInFailed {
                user_id: Some(row.user_id),
                email: &link.email,
                method: "password",
                detail: json!({ "link": link.provider }),
            };
            self.core.record_alone(&Actor::anonymous(client), &event).await;
            return Err(OAuthError::WrongPassword);
        }
        self.finish_recovery(link.id, binding, row.user_id, Method::Password, audience, client).await
    }

    /// `flow=proof` of Google's page callback (behavior.md §7.2): the owner proves the account
    /// behind a recovery link by signing in with a Google identity already linked to it.
    pub async fn confirm_with_identity(
        &self,
        link_id: &str,
        binding: Option<&str>,
        proof: &Identity,
        audience: Audience,
        client: &ClientInfo,
    ) -> Result<(Completion, Option<String>), OAuthError> {
        let link = self.recovery_link(link_id, binding).await?;
        let row = self.core.store.pending_link(link.id).await?.ok_or(OAuthError::UnknownLink)?;
        let owner = self.core.store.user_by_provider(&proof.provider, &proof.subject).await?;
        if owner.is_none_or(|u| u.id != row.user_id) {
            return Err(OAuthError::LinkedElsewhere);
        }
        let method = Method::Provider { name: proof.provider.clone() };
        self.finish_recovery(link.id, binding, row.user_id, method, audience, client).await
    }

    /// Consumes a recovery link whose owner proved the account (`proof`), links its identity
    /// (whose verified email proves the address too) and completes the sign-in, in one
    /// transaction; the link's `return_to` comes back.
    async fn finish_recovery(
        &self,
        link_id: Uuid,
        binding: Option<&str>,
        owner: UserId,
        proof: Method,
        audience: Audience,
        client: &ClientInfo,
    ) -> Result<(Completion, Option<String>), OAuthError> {
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        let row = tx.pending_link_for_update(link_id).await?.ok_or(OAuthError::UnknownLink)?;
        if row.user_id != owner
            || row.purpose != PURPOSE_RECOVERY
            || row.consumed_at_ms.is_some()
            || row.expires_at_ms <= now
            || !bound(row.binding_hash.as_deref(), binding)
            || !tx.consume_pending_link(row.id, now).await?
        {
            return Err(OAuthError::UnknownLink);
        }
        let user = tx.user_by_id(row.user_id).await?.ok_or(OAuthError::UnknownLink)?;
        let subject = row.provider_user_id.as_deref().ok_or(OAuthError::UnknownLink)?;
        self.link_in(&mut tx, user.id, &row.provider, subject, now).await?;
        let actor = Actor::user(user.id, client);
        let credential = Credential::Provider { name: &row.provider, proof: proof.name() };
        let event = DomainEvent::CredentialAdded { user_id: user.id, email: &user.email, credential };
        self.core.record(&mut tx, &actor, &event).await?;
        // The provider vouched for this very address, and whoever proves the link holds a
        // credential of the account: the address is proven, nothing is removed.
        self.accounts.prove_address(&mut tx, &user, &row.provider, false, &actor).await?;
        let user_id = user.id;
        let verified = Verified::new(user, proof).with("link", row.provider.clone());
        let signed = self.signins.complete(tx, verified, audience, StartIn::Default, client).await.map_err(refused)?;
        self.core.forget_user(user_id);
        Ok((signed, row.return_to))
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
            binding_hash: None,
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
        self.link_to_signed_in(tx, row.user_id, identity, client).await
    }

    /// Links `identity` to the signed-in `user` in `tx` (with the constraints of §7.3), records
    /// it, and commits. An identity whose verified email is the account's proves the address.
    pub(super) async fn link_to_signed_in(
        &self,
        mut tx: Tx,
        user: UserId,
        identity: &Identity,
        client: &ClientInfo,
    ) -> Result<(), OAuthError> {
        let now = self.core.now_ms();
        let user = tx.user_by_id(user).await?.ok_or(OAuthError::SessionChanged)?;
        self.link_in(&mut tx, user.id, &identity.provider, &identity.subject, now).await?;
        let actor = Actor::user(user.id, client);
        let credential = Credential::Provider { name: &identity.provider, proof: "session" };
        let event = DomainEvent::CredentialAdded { user_id: user.id, email: &user.email, credential };
        self.core.record(&mut tx, &actor, &event).await?;
        if identity.email.as_str() == user.email {
            self.accounts.prove_address(&mut tx, &user, &identity.provider, false, &actor).await?;
        }
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
        let credential = Credential::Provider { name: provider, proof: "session" };
        let event = DomainEvent::CredentialRemoved { user_id, email: &user.email, credential };
        self.core.record(&mut tx, &Actor::user(user_id, client), &event).await?;
        tx.commit().await?;
        self.core.forget_user(user_id);
        Ok(())
    }
}

/// A refused completion, as provider sign-ins report it.
fn refused(e: SessionError) -> OAuthError {
    match e {
        SessionError::NotAllowed => OAuthError::NotAllowed,
        other => OAuthError::Session(other),
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
