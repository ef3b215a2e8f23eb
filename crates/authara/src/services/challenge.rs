//! Email challenges: verified signup, password reset, email change (behavior.md §6).
//!
//! A challenge is written with its outbox job in one transaction. The 6-digit code is made by
//! the email worker when it sends (so no code rests in plain text anywhere), stored as an HMAC,
//! and compared in constant time. Unknown or taken emails get an opaque challenge that looks the
//! same from outside, sends nothing and can never be verified.

use rand::Rng as _;
use ring::hmac;
use uuid::Uuid;

use super::Services;
use super::accounts::SignedIn;
use super::emails::{EMAIL_CHANGE_CODE, PASSWORD_RESET_CODE, SIGNUP_CODE};
use super::input::{is_valid_email, normalize_email, password_problem};
use super::password::HashError;
use super::ratelimit::Decision;
use super::sessions::{ClientInfo, SessionError};
use super::token::Audience;
use crate::clock::ms;
use crate::store::challenges::{ChallengeRow, NewChallenge};
use crate::store::{StoreError, Tx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Signup,
    PasswordReset,
    EmailChange,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Signup => "signup",
            Purpose::PasswordReset => "password_reset",
            Purpose::EmailChange => "email_change",
        }
    }

    fn template(self) -> &'static str {
        match self {
            Purpose::Signup => SIGNUP_CODE,
            Purpose::PasswordReset => PASSWORD_RESET_CODE,
            Purpose::EmailChange => EMAIL_CHANGE_CODE,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChallengeError {
    /// The flow is off (signup challenges while `AUTHARA_CHALLENGE_ENABLED=false`).
    #[error("not available")]
    Unavailable,
    #[error("{0}")]
    Invalid(&'static str),
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    #[error("the code is incorrect")]
    Incorrect,
    #[error("the code has expired; ask for a new one")]
    Expired,
    #[error("too many incorrect codes; start again")]
    TooManyAttempts,
    #[error("this code was already used")]
    AlreadyUsed,
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A uniformly random 6-digit code.
pub fn new_code() -> String {
    format!("{:06}", rand::thread_rng().gen_range(0..1_000_000))
}

/// HMAC of the code, bound to its challenge.
pub fn code_hash(key: &hmac::Key, challenge: Uuid, code: &str) -> Vec<u8> {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(challenge.as_bytes());
    ctx.update(code.as_bytes());
    ctx.sign().as_ref().to_vec()
}

fn is_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

impl Services {
    fn limit(&self, d: Decision) -> Result<(), ChallengeError> {
        match d {
            Decision::Allowed => Ok(()),
            Decision::Blocked { retry_after_secs } => Err(ChallengeError::RateLimited { retry_after_secs }),
        }
    }

    async fn create_challenge(
        &self,
        tx: &mut Tx,
        purpose: Purpose,
        email: &str,
        user_id: Option<Uuid>,
        password_hash: Option<&str>,
        opaque: bool,
    ) -> Result<Uuid, StoreError> {
        let now = self.now_ms();
        let c = &self.config.challenge;
        let id = Uuid::new_v4();
        tx.insert_challenge(&NewChallenge {
            id,
            purpose: purpose.as_str(),
            email,
            user_id,
            password_hash,
            opaque,
            now_ms: now,
            expires_at_ms: now.saturating_add(ms(c.ttl)),
            max_attempts: i32::try_from(c.max_attempts).unwrap_or(i32::MAX),
            max_resends: if opaque { 0 } else { i32::try_from(c.max_resends).unwrap_or(i32::MAX) },
        })
        .await?;
        if !opaque {
            tx.enqueue_email(Some(id), email, purpose.template(), "{}", now).await?;
        }
        Ok(id)
    }

    /// Checks a code in `tx` (challenge row locked). A wrong code is counted and committed
    /// before the error returns; on success the caller completes the action and commits.
    async fn check_code(
        &self,
        mut tx: Tx,
        id: Uuid,
        purpose: Purpose,
        code: &str,
    ) -> Result<(Tx, ChallengeRow), ChallengeError> {
        let now = self.now_ms();
        let c = tx.challenge_for_update(id).await?.ok_or(ChallengeError::Invalid("unknown or expired challenge"))?;
        if c.consumed_at_ms.is_some() {
            return Err(ChallengeError::AlreadyUsed);
        }
        if now > c.expires_at_ms {
            return Err(ChallengeError::Expired);
        }
        if c.attempt_count >= c.max_attempts {
            return Err(ChallengeError::TooManyAttempts);
        }
        if c.purpose != purpose.as_str() {
            return Err(ChallengeError::Invalid("unknown or expired challenge"));
        }
        let expected = match (&c.code_hash, c.code_expires_at_ms) {
            (Some(h), Some(exp)) if !c.opaque => {
                if now > exp {
                    return Err(ChallengeError::Expired);
                }
                Some(h.clone())
            }
            _ => None,
        };
        let given = code_hash(&self.code_key, id, code);
        let ok = expected.is_some_and(|e| bool::from(subtle::ConstantTimeEq::ct_eq(e.as_slice(), given.as_slice())));
        if !ok {
            tx.challenge_failed_attempt(id).await?;
            tx.commit().await?;
            return Err(ChallengeError::Incorrect);
        }
        Ok((tx, c))
    }

    /// `POST /signup/challenges`: `challenge_id` for a new email and for a taken one alike.
    pub async fn start_signup(
        &self,
        email: &str,
        password: &str,
        invitation_code: Option<&str>,
        client: &ClientInfo,
    ) -> Result<Uuid, ChallengeError> {
        if !self.config.challenge.enabled {
            return Err(ChallengeError::Unavailable);
        }
        let email = normalize_email(email);
        if !is_valid_email(&email) {
            return Err(ChallengeError::Invalid("a valid email address is required"));
        }
        if let Some(p) = password_problem(password) {
            return Err(ChallengeError::Invalid(p));
        }
        if invitation_code.is_some_and(|c| !c.trim().is_empty()) {
            return Err(ChallengeError::Invalid("invalid invitation code"));
        }
        self.limit(self.limits.signup.check(client.ip.as_deref().unwrap_or_default(), &email, self.now_ms()))?;
        let hash = self.hasher.hash(password).await?;
        let taken = self.store.user_by_email(&email).await?.is_some();
        let mut tx = self.store.begin().await?;
        let id = self.create_challenge(&mut tx, Purpose::Signup, &email, None, Some(&hash), taken).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// `POST /signup/challenges/verify`: creates the account and its session with the
    /// challenge consumed, all in one transaction.
    pub async fn verify_signup(&self, id: Uuid, code: &str, client: &ClientInfo) -> Result<SignedIn, ChallengeError> {
        if !self.config.challenge.enabled {
            return Err(ChallengeError::Unavailable);
        }
        if !is_code(code) {
            return Err(ChallengeError::Invalid("the code is 6 digits"));
        }
        self.limit(self.limits.challenge_verify.check(client.ip.as_deref().unwrap_or_default(), "", self.now_ms()))?;
        let tx = self.store.begin().await?;
        let (mut tx, c) = self.check_code(tx, id, Purpose::Signup, code).await?;
        let user = self
            .create_user(&mut tx, &c.email, c.password_hash.as_deref())
            .await?
            .ok_or(ChallengeError::Invalid("an account with this email already exists"))?;
        let tokens = self.create_session(&mut tx, &user, Audience::App, client).await?;
        tx.consume_challenge(id, self.now_ms()).await?;
        tx.commit().await?;
        Ok(SignedIn { user, tokens })
    }

    /// `POST /password-reset/challenges`: always a `challenge_id`, known email or not, at the
    /// same cost (the new password is hashed either way).
    pub async fn start_password_reset(
        &self,
        email: &str,
        new_password: &str,
        client: &ClientInfo,
    ) -> Result<Uuid, ChallengeError> {
        let email = normalize_email(email);
        if !is_valid_email(&email) {
            return Err(ChallengeError::Invalid("a valid email address is required"));
        }
        if let Some(p) = password_problem(new_password) {
            return Err(ChallengeError::Invalid(p));
        }
        self.limit(self.limits.password_reset.check(client.ip.as_deref().unwrap_or_default(), &email, self.now_ms()))?;
        let hash = self.hasher.hash(new_password).await?;
        let user = self.store.user_by_email(&email).await?;
        let mut tx = self.store.begin().await?;
        let id = match &user {
            Some(u) => {
                self.create_challenge(&mut tx, Purpose::PasswordReset, &email, Some(u.id), Some(&hash), false).await?
            }
            None => self.create_challenge(&mut tx, Purpose::PasswordReset, &email, None, None, true).await?,
        };
        tx.commit().await?;
        Ok(id)
    }

    /// `POST /password-reset/challenges/verify`: sets the new password and revokes every
    /// session of the account.
    pub async fn verify_password_reset(&self, id: Uuid, code: &str, client: &ClientInfo) -> Result<(), ChallengeError> {
        if !is_code(code) {
            return Err(ChallengeError::Invalid("the code is 6 digits"));
        }
        self.limit(self.limits.challenge_verify.check(client.ip.as_deref().unwrap_or_default(), "", self.now_ms()))?;
        let now = self.now_ms();
        let tx = self.store.begin().await?;
        let (mut tx, c) = self.check_code(tx, id, Purpose::PasswordReset, code).await?;
        let (Some(user_id), Some(hash)) = (c.user_id, c.password_hash.as_deref()) else {
            return Err(ChallengeError::Invalid("unknown or expired challenge"));
        };
        tx.set_password_hash(user_id, hash, now).await?;
        let revoked = tx.revoke_user_sessions(user_id, now).await?;
        tx.consume_challenge(id, now).await?;
        tx.commit().await?;
        revoked.iter().for_each(|sid| self.revoked.revoke(*sid, now));
        Ok(())
    }

    /// `POST /challenges/resend`: queues a new code when allowed; says nothing either way.
    pub async fn resend_challenge(&self, id: Uuid, client: &ClientInfo) -> Result<bool, ChallengeError> {
        self.limit(self.limits.challenge_resend.check(client.ip.as_deref().unwrap_or_default(), "", self.now_ms()))?;
        let now = self.now_ms();
        let mut tx = self.store.begin().await?;
        let Some(c) = tx.challenge_for_update(id).await? else { return Ok(false) };
        let too_soon =
            c.last_sent_at_ms.is_some_and(|t| now < t.saturating_add(ms(self.config.challenge.min_resend_interval)));
        if c.opaque
            || c.consumed_at_ms.is_some()
            || now > c.expires_at_ms
            || c.resend_count >= c.max_resends
            || too_soon
        {
            return Ok(false);
        }
        let template = match c.purpose.as_str() {
            "signup" => SIGNUP_CODE,
            "password_reset" => PASSWORD_RESET_CODE,
            _ => EMAIL_CHANGE_CODE,
        };
        tx.challenge_resent(id, now).await?;
        tx.enqueue_email(Some(id), &c.email, template, "{}", now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Starts an email change for a signed-in user; the code goes to the new address.
    pub async fn start_email_change(&self, user_id: Uuid, new_email: &str) -> Result<Uuid, ChallengeError> {
        let email = normalize_email(new_email);
        if !is_valid_email(&email) {
            return Err(ChallengeError::Invalid("a valid email address is required"));
        }
        let current = self.store.user_by_id(user_id).await?.ok_or(ChallengeError::Invalid("unknown user"))?;
        if current.email == email {
            return Err(ChallengeError::Invalid("that is already your email address"));
        }
        let taken = self.store.user_by_email(&email).await?.is_some();
        let mut tx = self.store.begin().await?;
        let id = self.create_challenge(&mut tx, Purpose::EmailChange, &email, Some(user_id), None, taken).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn verify_email_change(
        &self,
        user_id: Uuid,
        id: Uuid,
        code: &str,
        client: &ClientInfo,
    ) -> Result<(), ChallengeError> {
        if !is_code(code) {
            return Err(ChallengeError::Invalid("the code is 6 digits"));
        }
        self.limit(self.limits.challenge_verify.check(client.ip.as_deref().unwrap_or_default(), "", self.now_ms()))?;
        let tx = self.store.begin().await?;
        let (mut tx, c) = self.check_code(tx, id, Purpose::EmailChange, code).await?;
        if c.user_id != Some(user_id) {
            return Err(ChallengeError::Invalid("unknown or expired challenge"));
        }
        match tx.set_email(user_id, &c.email, self.now_ms()).await {
            Err(StoreError::Conflict) => return Err(ChallengeError::Invalid("that email address is taken")),
            other => other?,
        }
        tx.consume_challenge(id, self.now_ms()).await?;
        tx.commit().await?;
        self.profiles.forget_user(user_id);
        Ok(())
    }
}
