//! Accounts: direct signup, password login, password change, bootstrap of admins, the one
//! place a user (with their first organization) is created, and the first proof of an address.
//!
//! Signup and login only verify someone; finishing the sign-in (policy, session, audit) is
//! `services::signin`'s.

use super::Core;
use super::audit::Actor;
use super::auth::{Principal, ReauthError};
use super::events::{DomainEvent, UserChange};
use super::invitations::{AcceptError, Invitations, Which};
use super::password::{HashError, Verified as Hash};
use super::sessions::{SessionError, Sessions};
use super::signin::{Method, SignIns, StartIn, Verified};
use crate::cache::{LimitKey, Scope};
use crate::config::OrgMode;
use crate::domain::{
    Audience, ClientInfo, EmailAddress, NewPassword, OrgId, OrgKind, OrgRole, PlatformRole, UserId, generate_username,
};
use crate::store::accounts::{NewOrg, NewUser, UserRow};
use crate::store::{StoreError, Tx};

pub use super::signin::{Completion, SignedIn};

#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    /// Direct signup is off while email challenges are on.
    #[error("direct signup unavailable")]
    Unavailable,
    /// Unknown, expired, revoked or accepted code, another email's invitation, or a mode without
    /// invitations.
    #[error("invalid invitation code")]
    InvalidInvitation,
    #[error("an account with this email already exists")]
    EmailTaken,
    /// `AUTHARA_ACCESS_POLICY_ALLOWLIST_ENABLED` and the email is not on the list.
    #[error("this email may not sign up")]
    NotAllowed,
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    /// Unknown email, wrong password, or no password set: one answer for all three.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    #[error(transparent)]
    Reauth(#[from] ReauthError),
    #[error("user not found")]
    UnknownUser,
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a password login on an invitation (the hosted invitation login page) failed.
#[derive(Debug, thiserror::Error)]
pub enum InvitedLoginError {
    /// Only `multi` mode lets an existing account accept an invitation by signing in.
    #[error("signing in on an invitation is only available in multi mode")]
    ModeForbids,
    #[error(transparent)]
    Invitation(#[from] AcceptError),
    #[error(transparent)]
    Login(#[from] LoginError),
}

impl From<StoreError> for InvitedLoginError {
    fn from(e: StoreError) -> Self {
        InvitedLoginError::Login(e.into())
    }
}

impl From<SessionError> for InvitedLoginError {
    fn from(e: SessionError) -> Self {
        InvitedLoginError::Login(e.into())
    }
}

/// The invitation a signup accepts.
#[derive(Debug, Clone, Copy)]
pub struct Invited<'a> {
    /// The invitation token (`invitation_code`, or the hosted page's `token`).
    pub code: &'a str,
    /// The session starts in the invited organization (the hosted invitation pages, behavior.md
    /// §9.3), not the default one (the API's `invitation_code`, §1.2).
    pub land_there: bool,
}

/// A password that checked out, and the device token its client keeps.
struct Checked {
    user: UserRow,
    device: String,
}

/// How long a device token vouches for a client that logged in before.
pub const DEVICE_TOKEN_MAX_AGE_MS: i64 = 365 * 86_400_000;

impl From<AcceptError> for SignupError {
    fn from(e: AcceptError) -> Self {
        match e {
            AcceptError::Store(s) => SignupError::Store(s),
            AcceptError::Disabled
            | AcceptError::Unknown
            | AcceptError::WrongEmail
            | AcceptError::AcceptedByOther
            | AcceptError::Revoked
            | AcceptError::Expired
            | AcceptError::AlreadyInAnOrganization => SignupError::InvalidInvitation,
        }
    }
}

/// Accounts.
#[derive(Clone)]
pub struct Accounts {
    core: Core,
    sessions: Sessions,
    signins: SignIns,
    invitations: Invitations,
}

impl Accounts {
    pub(crate) fn new(core: Core, sessions: Sessions, signins: SignIns, invitations: Invitations) -> Self {
        Self { core, sessions, signins, invitations }
    }

    /// Whether a new account gets its own organization: always, except an invited signup in
    /// `single` mode, which joins the invited organization only (behavior.md §9.2).
    pub(crate) fn gets_own_org(&self, invited: bool) -> bool {
        !(invited && self.core.config.org_mode == OrgMode::Single)
    }

    /// `POST /signup/direct`, and the hosted signup and invitation signup forms: rate-limit,
    /// hash, then the user, password, organization, membership, events, the accepted invitation
    /// (`invited`) and the session in one transaction. A signup on an invitation proves the
    /// address (its token came by mail); a plain one does not.
    pub async fn signup(
        &self,
        email: &EmailAddress,
        password: &NewPassword,
        invited: Option<Invited<'_>>,
        client: &ClientInfo,
    ) -> Result<Completion, SignupError> {
        if self.core.config.challenge.enabled {
            return Err(SignupError::Unavailable);
        }
        let invited = invited.map(|i| Invited { code: i.code.trim(), ..i }).filter(|i| !i.code.is_empty());
        let key = LimitKey { ip: client.ip, target: Some(email.as_str().to_owned()) };
        self.core
            .limit(Scope::Signup, &key)
            .await
            .map_err(|retry_after_secs| SignupError::RateLimited { retry_after_secs })?;
        // why (behavior.md §5.5): a pending invitation for this very email admits it to the
        // allowlist (in the transaction below); anything else off the list is refused before
        // any work.
        if invited.is_none() && !self.core.allowed(email).await? {
            return Err(SignupError::NotAllowed);
        }
        if self.core.store.user_by_email(email).await?.is_some() {
            return Err(SignupError::EmailTaken);
        }
        let hash = self.core.hasher.hash(password.expose()).await?;
        let mut tx = self.core.store.begin().await?;
        let new =
            NewAccount { email, password_hash: Some(&hash), invited: invited.is_some(), verified: invited.is_some() };
        let user = self.create_user(&mut tx, &new, &Actor::anonymous(client)).await?.ok_or(SignupError::EmailTaken)?;
        let mut verified = Verified::new(user.clone(), Method::Password).with("created", true);
        let mut start_in = StartIn::Default;
        if let Some(i) = invited {
            let accepted = self.invitations.join(&mut tx, Which::Code(i.code), &user, client).await?;
            verified = verified.with("invitation_id", accepted.invitation_id.to_string());
            if i.land_there {
                start_in = StartIn::Organization(accepted.organization_id);
            }
        }
        Ok(self.signins.complete(tx, verified, Audience::App, start_in, client).await?)
    }

    /// Creates a user with a generated username, an optional password, and the default
    /// organization of the configured mode (behavior.md §9.2), recording `user.created`,
    /// `organization.created` and `organization.membership.created`. `None` when the email is
    /// taken.
    pub(crate) async fn create_user(
        &self,
        tx: &mut Tx,
        new: &NewAccount<'_>,
        actor: &Actor,
    ) -> Result<Option<UserRow>, StoreError> {
        let now = self.core.now_ms();
        let id = UserId::new();
        let email = new.email;
        // A generated username can collide; try a few suffixes (the reference answers 500).
        let mut username = generate_username(email);
        let mut attempt = 0;
        let verified = new.verified;
        let inserted = loop {
            match tx.insert_user(&NewUser { id, email, username: &username, verified, now_ms: now }).await {
                Err(StoreError::Conflict) if attempt < 5 => {
                    attempt += 1;
                    username = generate_username(email);
                }
                other => break other?,
            }
        };
        if !inserted {
            return Ok(None);
        }
        if let Some(hash) = new.password_hash {
            tx.set_password_hash(id, hash, now).await?;
        }
        let user = UserRow { id, email: email.as_str().to_owned(), username, created_at_ms: now, disabled_at_ms: None };
        if self.gets_own_org(new.invited) {
            let username = &user.username;
            let kind = match self.core.config.org_mode {
                OrgMode::Personal | OrgMode::Multi => OrgKind::Personal,
                OrgMode::Single => OrgKind::Team,
            };
            let org_id = OrgId::new();
            let name = if username.trim().is_empty() { "Personal workspace" } else { username.trim() };
            tx.insert_org(&NewOrg { id: org_id, name, kind, created_by: id, now_ms: now }).await?;
            tx.insert_membership(org_id, id, OrgRole::Owner, now).await?;
            let created = DomainEvent::OrganizationCreated { org_id, name, kind, created_by: Some(id) };
            self.core.record(tx, actor, &created).await?;
            let membership = DomainEvent::MembershipCreated {
                org_id,
                user_id: id,
                role: OrgRole::Owner,
                is_initial: true,
                invitation_id: None,
                metadata: None,
            };
            self.core.record(tx, actor, &membership).await?;
        }
        self.core.record(tx, actor, &DomainEvent::UserCreated { user_id: id }).await?;
        Ok(Some(user))
    }

    /// Records in `tx` that `user`'s address is proven now (`how`: an email code, a verified
    /// provider identity, an invitation's token). The first time only, when `remove_earlier`:
    /// the passkeys and provider identities added before this proof are removed, and the owner
    /// is told which, by mail.
    ///
    /// why: with direct signup anyone can register someone else's address and add their own
    /// passkey or provider identity while the fresh session is privileged; when the owner later
    /// proves the address without any credential of the account (a reset by email code), those
    /// must not survive. Proofs made by someone already holding a credential of the account
    /// (a recovery link's password, a signed-in link) keep what is there: whoever holds a
    /// credential and the address is the owner.
    pub(crate) async fn prove_address(
        &self,
        tx: &mut Tx,
        user: &UserRow,
        how: &str,
        remove_earlier: bool,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let now = self.core.now_ms();
        if !tx.prove_address(user.id, now).await? {
            return Ok(());
        }
        let mut removed = Vec::new();
        if remove_earlier {
            for name in tx.delete_passkeys_before(user.id, now).await? {
                removed.push(format!("passkey “{name}”"));
            }
            for provider in tx.unlink_providers_before(user.id, now).await? {
                let shown =
                    self.core.config.oauth.provider(&provider).map_or(provider.clone(), |p| p.display_name.clone());
                removed.push(format!("{shown} sign-in"));
            }
        }
        let event = DomainEvent::AddressProven { user_id: user.id, email: &user.email, how, removed: &removed };
        self.core.record(tx, actor, &event).await?;
        if !removed.is_empty() {
            self.core.forget_user(user.id);
        }
        Ok(())
    }

    /// Ends every session of `user` in `tx` (see `Sessions::end_all`); how many.
    pub(crate) async fn end_sessions(&self, tx: &mut Tx, user: UserId) -> Result<usize, StoreError> {
        Ok(self.sessions.end_all(tx, user, None).await?.len())
    }

    /// `POST /login`, the hosted login form: the password check, then the completion in the
    /// default organization.
    pub async fn login(
        &self,
        email: &EmailAddress,
        password: &str,
        audience: Audience,
        client: &ClientInfo,
        device: Option<&str>,
    ) -> Result<Completion, LoginError> {
        let checked = self.check_password(email, password, client, device).await?;
        let tx = self.core.store.begin().await?;
        let mut verified = Verified::new(checked.user, Method::Password);
        verified.device = Some(checked.device);
        Ok(self.signins.complete(tx, verified, audience, StartIn::Default, client).await?)
    }

    /// The hosted invitation login (`multi` mode, behavior.md §9.3): a password login as the
    /// address of the pending invitation behind `code`, which it accepts (the form shows the
    /// invitation: the person acts on it); the app session starts in the invited organization.
    pub async fn login_invited(
        &self,
        code: &str,
        password: &str,
        client: &ClientInfo,
        device: Option<&str>,
    ) -> Result<Completion, InvitedLoginError> {
        if self.core.config.org_mode != OrgMode::Multi {
            return Err(InvitedLoginError::ModeForbids);
        }
        let invitation = self.invitations.pending(code).await?;
        let email = EmailAddress::from_stored(invitation.email);
        let checked = self.check_password(&email, password, client, device).await?;
        let mut tx = self.core.store.begin().await?;
        let accepted = self.invitations.join(&mut tx, Which::Code(code), &checked.user, client).await?;
        let actor = Actor::user(checked.user.id, client);
        self.prove_address(&mut tx, &checked.user, "invitation", false, &actor).await?;
        let mut verified =
            Verified::new(checked.user, Method::Password).with("invitation_id", accepted.invitation_id.to_string());
        verified.device = Some(checked.device);
        let org = StartIn::Organization(accepted.organization_id);
        Ok(self.signins.complete(tx, verified, Audience::App, org, client).await?)
    }

    /// The password check of a login: the same answer and the same cost for an unknown email, a
    /// wrong password and an account without a password; the device token the client keeps.
    ///
    /// why (design.md decision 12): a per-email limit alone lets anyone lock the owner out by
    /// failing on purpose. A client presenting a valid `device` token for this account (issued
    /// at an earlier successful login, OWASP's "device cookies", and not before the password's
    /// last change: a changed or reset password voids them) is limited on its own budget
    /// instead, so strangers' failures do not block it; everyone else shares the per-email one.
    async fn check_password(
        &self,
        email: &EmailAddress,
        password: &str,
        client: &ClientInfo,
        device: Option<&str>,
    ) -> Result<Checked, LoginError> {
        if password.len() > super::password::MAX_PASSWORD_BYTES {
            return Err(LoginError::InvalidCredentials);
        }
        let now = self.core.now_ms();
        let found = self.core.store.login_lookup(email).await?;
        let changed_at = found.as_ref().map_or(i64::MAX, |f| f.password_changed_at_ms);
        let device_id = device
            .and_then(|t| self.core.secrets.device_id(t, email.as_str(), now, DEVICE_TOKEN_MAX_AGE_MS))
            .filter(|(_, issued)| *issued >= changed_at);
        let target = match &device_id {
            Some((id, _)) => format!("device:{id}"),
            None => email.as_str().to_owned(),
        };
        let key = LimitKey { ip: client.ip, target: Some(target) };
        self.core.limit(Scope::Login, &key).await.map_err(|retry_after_secs| {
            self.core.metrics.sign_in("password", "rate_limited");
            LoginError::RateLimited { retry_after_secs }
        })?;
        let failed = |target: Option<UserId>| {
            let event = DomainEvent::SignInFailed {
                user_id: target,
                email: email.as_str(),
                method: "password",
                detail: serde_json::json!({}),
            };
            let actor = Actor::anonymous(client);
            async move {
                self.core.record_alone(&actor, &event).await;
                Err(LoginError::InvalidCredentials)
            }
        };
        let Some(found) = found else {
            self.core.hasher.verify_dummy(password).await?;
            return failed(None).await;
        };
        let Some(stored) = found.password_hash else {
            self.core.hasher.verify_dummy(password).await?;
            return failed(Some(found.user.id)).await;
        };
        let user = found.user;
        match self.core.hasher.verify(password, &stored).await? {
            Hash::No => return failed(Some(user.id)).await,
            Hash::Yes => {}
            Hash::YesRehash => self.rehash_later(user.id, password, stored),
        }
        let device = match (device, device_id) {
            (Some(kept), Some(_)) => kept.to_owned(),
            _ => self.core.secrets.device_token(email.as_str(), now),
        };
        Ok(Checked { user, device })
    }

    /// Upgrades a hash in the background so the login answers at the speed of one hash.
    fn rehash_later(&self, user_id: UserId, password: &str, old: String) {
        let core = self.core.clone();
        let password = password.to_owned();
        tokio::spawn(async move {
            let result = async {
                let new = core.hasher.hash(&password).await.map_err(|e| e.to_string())?;
                core.store.replace_password_hash(user_id, &old, &new, core.now_ms()).await.map_err(|e| e.to_string())
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(%user_id, error = %e, "password rehash failed");
            }
        });
    }

    /// `PUT /users/password`: sets the password and ends every session of the user (including
    /// the caller's), in one transaction that records `user.updated`; their access tokens stop
    /// working at once (behavior.md §2.7).
    ///
    /// why: the reference sets a new password on the strength of the access cookie alone. Here
    /// the session must be privileged: `current_password` (our optional addition to the
    /// contract's `{"password"}`) or a login within `AUTHARA_PRIVILEGED_SESSION_MAX_AGE`.
    pub async fn change_password(
        &self,
        who: &Principal,
        new_password: &NewPassword,
        current_password: Option<&str>,
        client: &ClientInfo,
    ) -> Result<usize, PasswordChangeError> {
        let user_id = who.user_id();
        self.core.require_privileged(who, current_password).await?;
        let hash = self.core.hasher.hash(new_password.expose()).await?;
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        let user = tx.user_by_id(user_id).await?.ok_or(PasswordChangeError::UnknownUser)?;
        let added = tx.password_hash(user_id).await?.is_none();
        tx.set_password_hash(user_id, &hash, now).await?;
        let revoked = self.sessions.end_all(&mut tx, user_id, None).await?.len();
        let change = UserChange::Password { revoked, added };
        self.core
            .record(
                &mut tx,
                &Actor::user(user_id, client),
                &DomainEvent::UserUpdated { user_id, email: &user.email, change },
            )
            .await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// `authara admin create`: a user with the `admin` platform role.
    /// With the allowlist on, the address is also allowlisted, so the first admin can sign in.
    pub async fn create_admin(&self, email: &EmailAddress, password: &NewPassword) -> Result<UserRow, SignupError> {
        let hash = self.core.hasher.hash(password.expose()).await?;
        let mut tx = self.core.store.begin().await?;
        let new = NewAccount { email, password_hash: Some(&hash), invited: false, verified: false };
        let actor = Actor::cli();
        let user = self.create_user(&mut tx, &new, &actor).await?.ok_or(SignupError::EmailTaken)?;
        self.grant_in(&mut tx, &user, &actor).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// `authara admin grant`: gives an existing user the `admin` role.
    pub async fn grant_admin(&self, email: &EmailAddress) -> Result<Option<UserRow>, StoreError> {
        let Some(user) = self.core.store.user_by_email(email).await? else { return Ok(None) };
        let mut tx = self.core.store.begin().await?;
        self.grant_in(&mut tx, &user, &Actor::cli()).await?;
        tx.commit().await?;
        self.core.forget_user(user.id);
        Ok(Some(user))
    }

    async fn grant_in(&self, tx: &mut Tx, user: &UserRow, actor: &Actor) -> Result<(), StoreError> {
        let now = self.core.now_ms();
        tx.grant_role(user.id, PlatformRole::Admin, now).await?;
        self.core
            .record(tx, actor, &DomainEvent::AdminRoleChanged { user_id: user.id, email: &user.email, granted: true })
            .await?;
        if self.core.config.allowlist_enabled && tx.allow_email(&user.email, None, now).await? {
            let event =
                DomainEvent::AllowlistChanged { entry: None, email: &user.email, added: true, invitation_id: None };
            self.core.record(tx, actor, &event).await?;
        }
        Ok(())
    }
}

/// An account to create.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewAccount<'a> {
    pub email: &'a EmailAddress,
    pub password_hash: Option<&'a str>,
    /// Made on an invitation: in `single` mode the account gets no organization of its own (it
    /// joins the invited one).
    pub invited: bool,
    /// The address is proven as the account is made: an email code, a verified provider
    /// identity, or an invitation's token (it came to the address by mail).
    pub verified: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFUSALS: [fn() -> AcceptError; 7] = [
        || AcceptError::Disabled,
        || AcceptError::Unknown,
        || AcceptError::WrongEmail,
        || AcceptError::AcceptedByOther,
        || AcceptError::Revoked,
        || AcceptError::Expired,
        || AcceptError::AlreadyInAnOrganization,
    ];

    /// A signup tells no invitation refusal from another (the contract's one 400), so a code
    /// cannot be probed for whose it is or whether it was accepted.
    #[test]
    fn every_invitation_refusal_is_one_signup_error() {
        for refusal in REFUSALS {
            let e = refusal();
            let shown = e.to_string();
            assert!(matches!(SignupError::from(e), SignupError::InvalidInvitation), "{shown}");
        }
    }

    /// A database failure while accepting stays a database failure (a 503 or 500, not a 400 that
    /// tells the user their code is bad).
    #[test]
    fn a_store_failure_while_accepting_is_not_a_bad_code() {
        let e = SignupError::from(AcceptError::Store(StoreError::Conflict));
        assert!(matches!(e, SignupError::Store(StoreError::Conflict)), "{e:?}");
    }

    /// On the invitation login page, store and session failures are the login's, so the page
    /// answers them as it answers a plain login.
    #[test]
    fn invited_login_failures_of_the_store_and_session_are_the_logins() {
        let e = InvitedLoginError::from(StoreError::Conflict);
        assert!(matches!(e, InvitedLoginError::Login(LoginError::Store(StoreError::Conflict))), "{e:?}");
        let e = InvitedLoginError::from(SessionError::Disabled);
        assert!(matches!(e, InvitedLoginError::Login(LoginError::Session(SessionError::Disabled))), "{e:?}");
        let e = InvitedLoginError::from(AcceptError::Expired);
        assert!(matches!(e, InvitedLoginError::Invitation(AcceptError::Expired)), "{e:?}");
    }
}
