//! Accounts: direct signup, password login, password change, bootstrap of admins.

use uuid::Uuid;

use super::Services;
use super::input::{generate_username, is_valid_email, normalize_email, password_problem};
use super::password::{HashError, Verified};
use super::ratelimit::Decision;
use super::sessions::{ClientInfo, Issued, SessionError};
use super::token::Audience;
use crate::config::OrgMode;
use crate::store::accounts::{NewUser, UserRow};
use crate::store::{StoreError, Tx};

#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    /// Direct signup is off while email challenges are on.
    #[error("direct signup unavailable")]
    Unavailable,
    #[error("{0}")]
    Invalid(&'static str),
    #[error("an account with this email already exists")]
    EmailTaken,
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
    #[error("{0}")]
    Invalid(&'static str),
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
    #[error("{0}")]
    Invalid(&'static str),
    #[error("the current password is required")]
    CurrentRequired,
    #[error("the current password is incorrect")]
    WrongCurrent,
    #[error("user not found")]
    UnknownUser,
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new account and the session it starts with.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: UserRow,
    pub tokens: Issued,
}

impl Services {
    /// `POST /signup/direct`: validate, rate-limit, hash, then create user, password,
    /// organization, membership and session in one transaction.
    pub async fn signup(
        &self,
        email: &str,
        password: &str,
        invitation_code: Option<&str>,
        client: &ClientInfo,
    ) -> Result<SignedIn, SignupError> {
        if self.config.challenge.enabled {
            return Err(SignupError::Unavailable);
        }
        let email = normalize_email(email);
        if !is_valid_email(&email) {
            return Err(SignupError::Invalid("a valid email address is required"));
        }
        if let Some(problem) = password_problem(password) {
            return Err(SignupError::Invalid(problem));
        }
        if invitation_code.is_some_and(|c| !c.trim().is_empty()) {
            // Invitations are not issued by this server yet, so no code can be valid.
            return Err(SignupError::Invalid("invalid invitation code"));
        }
        if let Decision::Blocked { retry_after_secs } =
            self.limits.signup.check(client.ip.as_deref().unwrap_or_default(), &email, self.now_ms())
        {
            return Err(SignupError::RateLimited { retry_after_secs });
        }
        if self.store.user_by_email(&email).await?.is_some() {
            return Err(SignupError::EmailTaken);
        }
        let hash = self.hasher.hash(password).await?;
        let mut tx = self.store.begin().await?;
        let user = self.create_user(&mut tx, &email, Some(&hash)).await?.ok_or(SignupError::EmailTaken)?;
        let tokens = self.create_session(&mut tx, &user, Audience::App, client).await?;
        tx.commit().await?;
        Ok(SignedIn { user, tokens })
    }

    /// Creates a user with a generated username, an optional password, and the default
    /// organization of the configured mode (behavior.md §9.2). `None` when the email is taken.
    pub async fn create_user(
        &self,
        tx: &mut Tx,
        email: &str,
        password_hash: Option<&str>,
    ) -> Result<Option<UserRow>, StoreError> {
        let now = self.now_ms();
        let id = Uuid::new_v4();
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
        let kind = match self.config.org_mode {
            OrgMode::Personal | OrgMode::Multi => "personal",
            OrgMode::Single => "team",
        };
        let org_id = Uuid::new_v4();
        let name = if username.trim().is_empty() { "Personal workspace" } else { username.trim() };
        tx.insert_org(org_id, name, kind, id, now).await?;
        tx.insert_membership(org_id, id, "owner", now).await?;
        Ok(Some(UserRow { id, email: email.to_owned(), username, created_at_ms: now, disabled_at_ms: None }))
    }

    /// `POST /login`: the same answer and the same cost for an unknown email, a wrong
    /// password and an account without a password.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        audience: Audience,
        client: &ClientInfo,
    ) -> Result<SignedIn, LoginError> {
        let email = normalize_email(email);
        if email.is_empty() || password.is_empty() {
            return Err(LoginError::Invalid("email and password are required"));
        }
        if password.len() > 1024 {
            return Err(LoginError::InvalidCredentials);
        }
        if let Decision::Blocked { retry_after_secs } =
            self.limits.login.check(client.ip.as_deref().unwrap_or_default(), &email, self.now_ms())
        {
            return Err(LoginError::RateLimited { retry_after_secs });
        }
        let Some((user, stored)) = self.store.login_lookup(&email).await? else {
            self.hasher.verify_dummy(password).await?;
            return Err(LoginError::InvalidCredentials);
        };
        let Some(stored) = stored else {
            self.hasher.verify_dummy(password).await?;
            return Err(LoginError::InvalidCredentials);
        };
        match self.hasher.verify(password, &stored).await? {
            Verified::No => return Err(LoginError::InvalidCredentials),
            Verified::Yes => {}
            Verified::YesRehash => self.rehash_later(user.id, password, stored),
        }
        let mut tx = self.store.begin().await?;
        let tokens = self.create_session(&mut tx, &user, audience, client).await?;
        tx.commit().await?;
        Ok(SignedIn { user, tokens })
    }

    /// Upgrades a hash in the background so the login answers at the speed of one hash.
    fn rehash_later(&self, user_id: Uuid, password: &str, old: String) {
        let hasher = self.hasher.clone();
        let store = self.store.clone();
        let clock = self.clock.clone();
        let password = password.to_owned();
        tokio::spawn(async move {
            let result = async {
                let new = hasher.hash(&password).await.map_err(|e| e.to_string())?;
                store.replace_password_hash(user_id, &old, &new, clock.now_ms()).await.map_err(|e| e.to_string())
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(%user_id, error = %e, "password rehash failed");
            }
        });
    }

    /// `PUT /users/password`: sets the password, revokes every session of the user (including
    /// the caller's) and deletes their refresh tokens, in one transaction; their access tokens
    /// stop working at once on this instance (behavior.md §2.7).
    ///
    /// why: the reference sets a new password on the strength of the access cookie alone. A
    /// user who already has a password must give it as `current_password`.
    pub async fn change_password(
        &self,
        user_id: Uuid,
        new_password: &str,
        current_password: Option<&str>,
    ) -> Result<usize, PasswordChangeError> {
        if let Some(problem) = password_problem(new_password) {
            return Err(PasswordChangeError::Invalid(problem));
        }
        if let Some(stored) = self.store.password_hash(user_id).await? {
            let current = current_password.ok_or(PasswordChangeError::CurrentRequired)?;
            if self.hasher.verify(current, &stored).await? == Verified::No {
                return Err(PasswordChangeError::WrongCurrent);
            }
        }
        let hash = self.hasher.hash(new_password).await?;
        let now = self.now_ms();
        let mut tx = self.store.begin().await?;
        if tx.user_by_id(user_id).await?.is_none() {
            return Err(PasswordChangeError::UnknownUser);
        }
        tx.set_password_hash(user_id, &hash, now).await?;
        let revoked = tx.revoke_user_sessions(user_id, now).await?;
        tx.delete_user_refresh_tokens(user_id).await?;
        tx.commit().await?;
        for sid in &revoked {
            self.revoked.revoke(*sid, now);
        }
        Ok(revoked.len())
    }

    /// `authara admin create`: a user with the `admin` platform role.
    pub async fn create_admin(&self, email: &str, password: &str) -> Result<UserRow, SignupError> {
        let email = normalize_email(email);
        if !is_valid_email(&email) {
            return Err(SignupError::Invalid("a valid email address is required"));
        }
        if let Some(problem) = password_problem(password) {
            return Err(SignupError::Invalid(problem));
        }
        let hash = self.hasher.hash(password).await?;
        let mut tx = self.store.begin().await?;
        let user = self.create_user(&mut tx, &email, Some(&hash)).await?.ok_or(SignupError::EmailTaken)?;
        tx.grant_role(user.id, "admin", self.now_ms()).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// `authara admin grant`: gives an existing user the `admin` role.
    pub async fn grant_admin(&self, email: &str) -> Result<Option<UserRow>, StoreError> {
        let Some(user) = self.store.user_by_email(&normalize_email(email)).await? else { return Ok(None) };
        let mut tx = self.store.begin().await?;
        tx.grant_role(user.id, "admin", self.now_ms()).await?;
        tx.commit().await?;
        Ok(Some(user))
    }
}
