//! Accounts: direct signup, password login, password change, bootstrap of admins, and the one
//! place a user (with their first organization) is created.

use serde_json::json;

use super::Core;
use super::audit::Actor;
use super::auth::{Principal, ReauthError};
use super::events::DomainEvent;
use super::organizations::{AcceptError, Organizations};
use super::password::{HashError, Verified};
use super::sessions::{ClientInfo, Issued, SessionError, Sessions, StartIn};
use crate::cache::{LimitKey, Scope};
use crate::config::OrgMode;
use crate::domain::{
    Audience, EmailAddress, NewPassword, OrgId, OrgKind, OrgRole, PlatformRole, UserId, generate_username,
};
use crate::store::accounts::{NewOrg, NewUser, UserRow};
use crate::store::{StoreError, Tx};

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

/// A signed-in user and their new session's tokens.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: UserRow,
    pub tokens: Issued,
    /// After a password login: the device token this client keeps (see [`Accounts::login`]).
    pub device: Option<String>,
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
    organizations: Organizations,
}

impl Accounts {
    pub(crate) fn new(core: Core, sessions: Sessions, organizations: Organizations) -> Self {
        Self { core, sessions, organizations }
    }

    /// Whether a new account gets its own organization: always, except an invited signup in
    /// `single` mode, which joins the invited organization only (behavior.md §9.2).
    pub(crate) fn gets_own_org(&self, invited: bool) -> bool {
        !(invited && self.core.config.org_mode == OrgMode::Single)
    }

    /// `POST /signup/direct`: rate-limit, hash, then create user, password, organization,
    /// membership, session and their events in one transaction. With `invitation_code`, a pending
    /// invitation for this email is accepted in the same transaction (the session starts in the
    /// user's default organization).
    pub async fn signup(
        &self,
        email: &EmailAddress,
        password: &NewPassword,
        invitation_code: Option<&str>,
        client: &ClientInfo,
    ) -> Result<SignedIn, SignupError> {
        self.signup_as(email, password, invitation_code, StartIn::Default, client).await
    }

    /// The hosted invitation signup (behavior.md §9.3): an account for the address of the
    /// pending invitation behind `code`, accepting it, with the session started in the invited
    /// organization. The allowlist admits the address on the invitation's strength (§5.5). Any
    /// problem with the invitation is `InvalidInvitation`; the page reads the invitation again to
    /// say which.
    pub async fn signup_invited(
        &self,
        code: &str,
        password: &NewPassword,
        client: &ClientInfo,
    ) -> Result<SignedIn, SignupError> {
        let invitation = self.organizations.pending(code).await?;
        let email = EmailAddress::from_stored(invitation.email);
        self.signup_as(&email, password, Some(code), StartIn::InvitedOrganization, client).await
    }

    async fn signup_as(
        &self,
        email: &EmailAddress,
        password: &NewPassword,
        invitation_code: Option<&str>,
        start_in: StartIn,
        client: &ClientInfo,
    ) -> Result<SignedIn, SignupError> {
        if self.core.config.challenge.enabled {
            return Err(SignupError::Unavailable);
        }
        let code = invitation_code.map(str::trim).filter(|c| !c.is_empty());
        let key = LimitKey { ip: client.ip, target: Some(email.as_str().to_owned()) };
        self.core
            .limit(Scope::Signup, &key)
            .await
            .map_err(|retry_after_secs| SignupError::RateLimited { retry_after_secs })?;
        // why (behavior.md §5.5): a pending invitation for this very email admits it to the
        // allowlist; anything else off the list is refused before any work.
        let allowed = self.core.allowed(email).await?;
        if !allowed && code.is_none() {
            return Err(SignupError::NotAllowed);
        }
        if self.core.store.user_by_email(email).await?.is_some() {
            return Err(SignupError::EmailTaken);
        }
        let hash = self.core.hasher.hash(password.expose()).await?;
        let mut tx = self.core.store.begin().await?;
        let invitation = match code {
            Some(code) => Some(self.organizations.lock_by_code(&mut tx, code, email).await?),
            None => None,
        };
        if !allowed && let Some(invitation) = &invitation {
            self.organizations.admit_in(&mut tx, invitation, email, client).await?;
        }
        let own_org = self.gets_own_org(invitation.is_some());
        let user = self.create_user_with(&mut tx, email, Some(&hash), own_org).await?.ok_or(SignupError::EmailTaken)?;
        let mut org = None;
        if let Some(invitation) = &invitation {
            let accepted = self.organizations.accept_in(&mut tx, invitation, &user).await?;
            org = (start_in == StartIn::InvitedOrganization).then_some(accepted.organization_id);
        }
        let tokens = self.sessions.create_in(&mut tx, &user, org, Audience::App, client).await?;
        tx.commit().await?;
        Ok(SignedIn { user, tokens, device: None })
    }

    /// Creates a user with a generated username, an optional password, and the default
    /// organization of the configured mode (behavior.md §9.2), recording `user.created`,
    /// `organization.created` and `organization.membership.created`. `None` when the email is
    /// taken.
    pub(crate) async fn create_user(
        &self,
        tx: &mut Tx,
        email: &EmailAddress,
        password_hash: Option<&str>,
    ) -> Result<Option<UserRow>, StoreError> {
        self.create_user_with(tx, email, password_hash, true).await
    }

    /// [`Self::create_user`], without the first organization when `own_org` is false (an invited
    /// signup in `single` mode, which joins the invited organization instead).
    pub(crate) async fn create_user_with(
        &self,
        tx: &mut Tx,
        email: &EmailAddress,
        password_hash: Option<&str>,
        own_org: bool,
    ) -> Result<Option<UserRow>, StoreError> {
        let now = self.core.now_ms();
        let id = UserId::new();
        // A generated username can collide; try a few suffixes (the reference answers 500).
        let mut username = generate_username(email);
        let mut attempt = 0;
        let inserted = loop {
            match tx.insert_user(&NewUser { id, email, username: &username, now_ms: now }).await {
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
        if let Some(hash) = password_hash {
            tx.set_password_hash(id, hash, now).await?;
        }
        let user = UserRow { id, email: email.as_str().to_owned(), username, created_at_ms: now, disabled_at_ms: None };
        if !own_org {
            self.core.record(tx, &DomainEvent::UserCreated { user_id: id }).await?;
            return Ok(Some(user));
        }
        let username = &user.username;
        let kind = match self.core.config.org_mode {
            OrgMode::Personal | OrgMode::Multi => OrgKind::Personal,
            OrgMode::Single => OrgKind::Team,
        };
        let org_id = OrgId::new();
        let name = if username.trim().is_empty() { "Personal workspace" } else { username.trim() };
        tx.insert_org(&NewOrg { id: org_id, name, kind, created_by: id, now_ms: now }).await?;
        tx.insert_membership(org_id, id, OrgRole::Owner, now).await?;
        self.core.record(tx, &DomainEvent::OrganizationCreated { org_id, name, kind, created_by: Some(id) }).await?;
        let membership = DomainEvent::MembershipCreated {
            org_id,
            user_id: id,
            role: OrgRole::Owner,
            is_initial: true,
            invitation_id: None,
            metadata: None,
        };
        self.core.record(tx, &membership).await?;
        self.core.record(tx, &DomainEvent::UserCreated { user_id: id }).await?;
        Ok(Some(user))
    }

    /// `POST /login`: the password check (`check_password`), then a session in the
    /// default organization, audited as `user.login`.
    pub async fn login(
        &self,
        email: &EmailAddress,
        password: &str,
        audience: Audience,
        client: &ClientInfo,
        device: Option<&str>,
    ) -> Result<SignedIn, LoginError> {
        let checked = self.check_password(email, password, client, device).await?;
        let user = checked.user;
        let mut tx = self.core.store.begin().await?;
        let tokens = self.sessions.create(&mut tx, &user, audience, client).await?;
        let meta = json!({ "method": "password", "audience": audience.as_str() });
        self.core
            .audit(&mut tx, &Actor::user(user.id, client), "user.login", Some((user.id, &user.email)), meta)
            .await?;
        tx.commit().await?;
        Ok(SignedIn { user, tokens, device: Some(checked.device) })
    }

    /// The hosted invitation login (`multi` mode, behavior.md §9.3): a password login as the
    /// address of the pending invitation behind `code` (rate limit `login` on that address, as
    /// [`Self::login`]), which accepts it; the new app session starts in the invited
    /// organization. The allowlist admits the address on the invitation's strength (§5.5).
    pub async fn login_invited(
        &self,
        code: &str,
        password: &str,
        client: &ClientInfo,
        device: Option<&str>,
    ) -> Result<SignedIn, InvitedLoginError> {
        if self.core.config.org_mode != OrgMode::Multi {
            return Err(InvitedLoginError::ModeForbids);
        }
        let invitation = self.organizations.pending(code).await?;
        let email = EmailAddress::from_stored(invitation.email);
        let checked = self.check_password(&email, password, client, device).await?;
        let user = checked.user;
        let allowed = self.core.allowed(&email).await.map_err(LoginError::from)?;
        let mut tx = self.core.store.begin().await.map_err(LoginError::from)?;
        let row = self.organizations.lock_by_code(&mut tx, code, &email).await?;
        if !allowed {
            self.organizations.admit_in(&mut tx, &row, &email, client).await.map_err(LoginError::from)?;
        }
        let accepted = self.organizations.accept_in(&mut tx, &row, &user).await?;
        let tokens = self
            .sessions
            .create_in(&mut tx, &user, Some(accepted.organization_id), Audience::App, client)
            .await
            .map_err(LoginError::from)?;
        let meta = json!({ "method": "password", "audience": Audience::App.as_str(), "invitation_id": row.id });
        self.core
            .audit(&mut tx, &Actor::user(user.id, client), "user.login", Some((user.id, &user.email)), meta)
            .await
            .map_err(LoginError::from)?;
        tx.commit().await.map_err(LoginError::from)?;
        Ok(SignedIn { user, tokens, device: Some(checked.device) })
    }

    /// The password check of a login: the same answer and the same cost for an unknown email, a
    /// wrong password and an account without a password; the device token the client keeps.
    ///
    /// why (design.md decision 12): a per-email limit alone lets anyone lock the owner out by
    /// failing on purpose. A client presenting a valid `device` token for this account (issued
    /// at an earlier successful login, OWASP's "device cookies") is limited on its own budget
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
        let device_id =
            device.and_then(|t| self.core.secrets.device_id(t, email.as_str(), now, DEVICE_TOKEN_MAX_AGE_MS));
        let target = match &device_id {
            Some(id) => format!("device:{id}"),
            None => email.as_str().to_owned(),
        };
        let key = LimitKey { ip: client.ip, target: Some(target) };
        self.core
            .limit(Scope::Login, &key)
            .await
            .map_err(|retry_after_secs| LoginError::RateLimited { retry_after_secs })?;
        let failed = |target: Option<UserId>| {
            let meta = json!({ "method": "password", "email": email.as_str() });
            let actor = Actor::anonymous(client);
            async move {
                self.core.audit_alone(&actor, "user.login_failed", target.map(|t| (t, email.as_str())), meta).await;
                Err(LoginError::InvalidCredentials)
            }
        };
        let Some(found) = self.core.store.login_lookup(email).await? else {
            self.core.hasher.verify_dummy(password).await?;
            return failed(None).await;
        };
        let Some(stored) = found.password_hash else {
            self.core.hasher.verify_dummy(password).await?;
            return failed(Some(found.user.id)).await;
        };
        let user = found.user;
        match self.core.hasher.verify(password, &stored).await? {
            Verified::No => return failed(Some(user.id)).await,
            Verified::Yes => {}
            Verified::YesRehash => self.rehash_later(user.id, password, stored),
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

    /// `PUT /users/password`: sets the password, revokes every session of the user (including
    /// the caller's) and deletes their refresh tokens, in one transaction that also records
    /// `user.updated`; their access tokens stop working at once (behavior.md §2.7).
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
        tx.set_password_hash(user_id, &hash, now).await?;
        let revoked = tx.revoke_user_sessions(user_id, now).await?;
        tx.delete_user_refresh_tokens(user_id).await?;
        self.core.record(&mut tx, &DomainEvent::UserUpdated { user_id }).await?;
        let meta = json!({ "revoked_sessions": revoked.len() });
        self.core
            .audit(&mut tx, &Actor::user(user_id, client), "user.password_changed", Some((user_id, &user.email)), meta)
            .await?;
        tx.commit().await?;
        self.sessions.revoked(&revoked).await;
        Ok(revoked.len())
    }

    /// `authara admin create`: a user with the `admin` platform role.
    /// With the allowlist on, the address is also allowlisted, so the first admin can sign in.
    pub async fn create_admin(&self, email: &EmailAddress, password: &NewPassword) -> Result<UserRow, SignupError> {
        let hash = self.core.hasher.hash(password.expose()).await?;
        let mut tx = self.core.store.begin().await?;
        let user = self.create_user(&mut tx, email, Some(&hash)).await?.ok_or(SignupError::EmailTaken)?;
        tx.grant_role(user.id, PlatformRole::Admin, self.core.now_ms()).await?;
        if self.core.config.allowlist_enabled {
            tx.allow_email(email.as_str(), None, self.core.now_ms()).await?;
        }
        tx.commit().await?;
        Ok(user)
    }

    /// `authara admin grant`: gives an existing user the `admin` role.
    pub async fn grant_admin(&self, email: &EmailAddress) -> Result<Option<UserRow>, StoreError> {
        let Some(user) = self.core.store.user_by_email(email).await? else { return Ok(None) };
        let mut tx = self.core.store.begin().await?;
        tx.grant_role(user.id, PlatformRole::Admin, self.core.now_ms()).await?;
        if self.core.config.allowlist_enabled {
            tx.allow_email(email.as_str(), None, self.core.now_ms()).await?;
        }
        tx.commit().await?;
        self.core.forget_user(user.id);
        Ok(Some(user))
    }
}
