//! Email challenges: verified signup, password reset, email change (behavior.md §6).
//!
//! A challenge is written with its code and the event that mails it, in one transaction. The
//! 6-digit code is minted here (at creation and at each resend), stored only as an HMAC and
//! compared in constant time; the email worker receives it sealed inside the event, so no code
//! rests in plain text anywhere. Unknown or taken emails get an opaque challenge that looks the
//! same from outside, sends nothing and can never be verified.

use rand::Rng as _;
use uuid::Uuid;

use super::Core;
use super::accounts::{Accounts, Completion, NewAccount};
use super::audit::Actor;
use super::auth::{Principal, ReauthError};
use super::events::{DomainEvent, UserChange};
use super::invitations::{AcceptError, Invitations, Which};
use super::password::HashError;
use super::sessions::SessionError;
use super::signin::{Method, SignIns, StartIn, Verified};
use crate::cache::{LimitKey, Scope};
use crate::clock::ms;
use crate::domain::{Audience, ChallengePurpose, ClientInfo, EmailAddress, NewPassword, UserId};
use crate::store::challenges::{ChallengeRow, NewChallenge};
use crate::store::{StoreError, Tx};

#[derive(Debug, thiserror::Error)]
pub enum ChallengeError {
    /// The flow is off (signup challenges while `AUTHARA_CHALLENGE_ENABLED=false`).
    #[error("not available")]
    Unavailable,
    #[error("invalid invitation code")]
    InvalidInvitation,
    #[error("the code is 6 digits")]
    MalformedCode,
    #[error("unknown or expired challenge")]
    Unknown,
    #[error("that is already your email address")]
    SameEmail,
    #[error("that email address is taken")]
    EmailTaken,
    #[error("this email may not sign up")]
    NotAllowed,
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Reauth(#[from] ReauthError),
    #[error("the code is incorrect")]
    Incorrect,
    #[error("the code has expired")]
    Expired,
    #[error("too many incorrect codes")]
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

impl From<AcceptError> for ChallengeError {
    fn from(e: AcceptError) -> Self {
        match e {
            AcceptError::Store(s) => ChallengeError::Store(s),
            AcceptError::Disabled
            | AcceptError::Unknown
            | AcceptError::WrongEmail
            | AcceptError::AcceptedByOther
            | AcceptError::Revoked
            | AcceptError::Expired
            | AcceptError::AlreadyInAnOrganization => ChallengeError::InvalidInvitation,
        }
    }
}

/// What sealed email-change cancel tokens are bound to.
const CANCEL_CONTEXT: &[u8] = b"email-change-cancel";

/// A uniformly random 6-digit code.
fn new_code() -> String {
    format!("{:06}", rand::thread_rng().gen_range(0..1_000_000))
}

fn is_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// Challenges.
#[derive(Clone)]
pub struct Challenges {
    core: Core,
    accounts: Accounts,
    signins: SignIns,
    invitations: Invitations,
}

impl Challenges {
    pub(crate) fn new(core: Core, accounts: Accounts, signins: SignIns, invitations: Invitations) -> Self {
        Self { core, accounts, signins, invitations }
    }

    async fn limit(
        &self,
        scope: Scope,
        client: &ClientInfo,
        target: Option<&EmailAddress>,
    ) -> Result<(), ChallengeError> {
        let key = LimitKey { ip: client.ip, target: target.map(|e| e.as_str().to_owned()) };
        self.core.limit(scope, &key).await.map_err(|retry_after_secs| ChallengeError::RateLimited { retry_after_secs })
    }

    /// Mints a code for `challenge`, stores its HMAC, and records the event that mails it.
    async fn issue_code(
        &self,
        tx: &mut Tx,
        challenge: Uuid,
        purpose: ChallengePurpose,
        to: &EmailAddress,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        let now = self.core.now_ms();
        let code = new_code();
        let code_expires = now.saturating_add(ms(self.core.config.challenge.code_ttl)).min(expires_at_ms);
        tx.set_challenge_code(challenge, &self.core.secrets.code_hash(challenge, &code), code_expires, now).await?;
        let sealed_code = self.core.secrets.seal(code.as_bytes(), challenge.as_bytes());
        let event = DomainEvent::CodeIssued {
            challenge_id: challenge,
            purpose,
            to,
            sealed_code,
            code_expires_at_ms: code_expires,
        };
        self.core.record(tx, &Actor::system(), &event).await?;
        Ok(())
    }

    #[expect(clippy::too_many_arguments, reason = "the pending action's fields, inline in the challenge")]
    async fn create(
        &self,
        tx: &mut Tx,
        purpose: ChallengePurpose,
        email: &EmailAddress,
        user_id: Option<UserId>,
        password_hash: Option<&str>,
        opaque: bool,
        invitation_id: Option<Uuid>,
    ) -> Result<Uuid, StoreError> {
        let now = self.core.now_ms();
        let c = &self.core.config.challenge;
        let id = Uuid::new_v4();
        let expires_at_ms = now.saturating_add(ms(c.ttl));
        tx.insert_challenge(&NewChallenge {
            id,
            purpose,
            email,
            user_id,
            password_hash,
            opaque,
            now_ms: now,
            expires_at_ms,
            max_attempts: i32::try_from(c.max_attempts).unwrap_or(i32::MAX),
            max_resends: if opaque { 0 } else { i32::try_from(c.max_resends).unwrap_or(i32::MAX) },
            invitation_id,
        })
        .await?;
        if opaque {
            // A decoy carries a code lifetime like a real challenge, and a hash nothing matches,
            // so that every later answer (incorrect, expired) is the same as a real one's.
            let mut never = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut never);
            let code_expires = now.saturating_add(ms(c.code_ttl)).min(expires_at_ms);
            tx.set_challenge_code(id, &never, code_expires, now).await?;
        } else {
            self.issue_code(tx, id, purpose, email, expires_at_ms).await?;
        }
        Ok(id)
    }

    /// Checks a code in a new transaction (challenge row locked). A wrong code is counted and
    /// committed before the error returns; on success the caller completes the action and
    /// commits.
    async fn check_code(
        &self,
        id: Uuid,
        purpose: ChallengePurpose,
        code: &str,
    ) -> Result<(Tx, ChallengeRow), ChallengeError> {
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        let c = tx.challenge_for_update(id).await?.ok_or(ChallengeError::Unknown)?;
        if c.consumed_at_ms.is_some() {
            return Err(ChallengeError::AlreadyUsed);
        }
        if now > c.expires_at_ms {
            return Err(ChallengeError::Expired);
        }
        if c.attempt_count >= c.max_attempts {
            return Err(ChallengeError::TooManyAttempts);
        }
        if c.purpose != purpose {
            return Err(ChallengeError::Unknown);
        }
        let expected = match (&c.code_hash, c.code_expires_at_ms) {
            (Some(h), Some(exp)) => {
                if now > exp {
                    return Err(ChallengeError::Expired);
                }
                Some(h.clone())
            }
            _ => None,
        };
        let given = self.core.secrets.code_hash(id, code);
        let ok = expected.is_some_and(|e| bool::from(subtle::ConstantTimeEq::ct_eq(e.as_slice(), given.as_slice())));
        if !ok {
            tx.challenge_failed_attempt(id).await?;
            tx.commit().await?;
            return Err(ChallengeError::Incorrect);
        }
        Ok((tx, c))
    }

    /// `POST /signup/challenges`: `challenge_id` for a new email and for a taken one alike. For a
    /// new email, an `invitation_code` must be a pending invitation for it (else
    /// `InvalidInvitation`); verifying the challenge accepts it. A taken email gets the opaque
    /// challenge whatever the code (behavior.md §1.2). Without a password (the hosted signup
    /// with passkeys on) the account is created passwordless and its first sign-in method is the
    /// passkey added next; password reset by email stays its way back in.
    pub async fn start_signup(
        &self,
        email: &EmailAddress,
        password: Option<&NewPassword>,
        invitation_code: Option<&str>,
        client: &ClientInfo,
    ) -> Result<Uuid, ChallengeError> {
        if !self.core.config.challenge.enabled {
            return Err(ChallengeError::Unavailable);
        }
        self.limit(Scope::Signup, client, Some(email)).await?;
        let code = invitation_code.map(str::trim).filter(|c| !c.is_empty());
        // why (behavior.md §5.5): off the allowlist, only a pending invitation for this very
        // address admits it, in the challenge's own transaction below.
        let allowed = self.core.allowed(email).await?;
        let admitted_by = match code {
            _ if allowed => None,
            None => return Err(ChallengeError::NotAllowed),
            Some(code) => Some(code),
        };
        let hash = match password {
            Some(p) => Some(self.core.hasher.hash(p.expose()).await?),
            None => None,
        };
        let taken = self.core.store.user_by_email(email).await?.is_some();
        let invitation = match code {
            Some(code) if !taken => Some(self.invitations.pending_for(code, email).await?.id),
            _ => None,
        };
        let mut tx = self.core.store.begin().await?;
        if let Some(code) = admitted_by {
            let row = match self.invitations.lock_by_code(&mut tx, code, email).await {
                Ok(row) => row,
                Err(AcceptError::Store(e)) => return Err(e.into()),
                Err(_) => return Err(ChallengeError::NotAllowed),
            };
            self.invitations.admit_in(&mut tx, &row, email, client).await?;
        }
        let id =
            self.create(&mut tx, ChallengePurpose::Signup, email, None, hash.as_deref(), taken, invitation).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// `POST /signup/challenges/verify`: creates the account (its address proven by the code)
    /// and signs it in with the challenge consumed, all in one transaction; accepts the
    /// challenge's invitation, if any. The session starts in the user's default organization
    /// (the API), or in the invited one with `land_there` (the hosted code page, behavior.md
    /// §6.3).
    pub async fn verify_signup(
        &self,
        id: Uuid,
        code: &str,
        land_there: bool,
        client: &ClientInfo,
    ) -> Result<Completion, ChallengeError> {
        if !self.core.config.challenge.enabled {
            return Err(ChallengeError::Unavailable);
        }
        if !is_code(code) {
            return Err(ChallengeError::MalformedCode);
        }
        self.limit(Scope::ChallengeVerify, client, None).await?;
        let (mut tx, c) = self.check_code(id, ChallengePurpose::Signup, code).await?;
        let email = EmailAddress::from_stored(c.email.clone());
        let new = NewAccount {
            email: &email,
            password_hash: c.password_hash.as_deref(),
            invited: c.invitation_id.is_some(),
            verified: true,
        };
        let actor = Actor::anonymous(client);
        let user = self.accounts.create_user(&mut tx, &new, &actor).await?.ok_or(ChallengeError::EmailTaken)?;
        let mut verified = Verified::new(user.clone(), Method::EmailCode).with("created", true);
        let mut start_in = StartIn::Default;
        if let Some(invitation) = c.invitation_id {
            let accepted = self.invitations.join(&mut tx, Which::Id(invitation), &user, client).await?;
            verified = verified.with("invitation_id", invitation.to_string());
            if land_there {
                start_in = StartIn::Organization(accepted.organization_id);
            }
        }
        tx.consume_challenge(id, self.core.now_ms()).await?;
        Ok(self.signins.complete(tx, verified, Audience::App, start_in, client).await?)
    }

    /// `POST /password-reset/challenges`: always a `challenge_id`, known email or not, at the
    /// same cost (the new password is hashed either way).
    pub async fn start_password_reset(
        &self,
        email: &EmailAddress,
        new_password: &NewPassword,
        client: &ClientInfo,
    ) -> Result<Uuid, ChallengeError> {
        self.limit(Scope::PasswordReset, client, Some(email)).await?;
        let hash = self.core.hasher.hash(new_password.expose()).await?;
        let user = self.core.store.user_by_email(email).await?;
        let mut tx = self.core.store.begin().await?;
        let purpose = ChallengePurpose::PasswordReset;
        let id = match &user {
            Some(u) => self.create(&mut tx, purpose, email, Some(u.id), Some(&hash), false, None).await?,
            None => self.create(&mut tx, purpose, email, None, None, true, None).await?,
        };
        tx.commit().await?;
        Ok(id)
    }

    /// `POST /password-reset/challenges/verify`: sets the new password and ends every session
    /// of the account (their refresh tokens deleted, their access tokens refused at once). The
    /// code proves the address: the first such proof removes the passkeys and provider
    /// identities added before it (see `Accounts::prove_address`).
    pub async fn verify_password_reset(&self, id: Uuid, code: &str, client: &ClientInfo) -> Result<(), ChallengeError> {
        if !is_code(code) {
            return Err(ChallengeError::MalformedCode);
        }
        self.limit(Scope::ChallengeVerify, client, None).await?;
        let now = self.core.now_ms();
        let (mut tx, c) = self.check_code(id, ChallengePurpose::PasswordReset, code).await?;
        let (Some(user_id), Some(hash)) = (c.user_id, c.password_hash.as_deref()) else {
            return Err(ChallengeError::Unknown);
        };
        let user = tx.user_by_id(user_id).await?.ok_or(ChallengeError::Unknown)?;
        let actor = Actor::user(user_id, client);
        self.accounts.prove_address(&mut tx, &user, "password_reset", true, &actor).await?;
        tx.set_password_hash(user_id, hash, now).await?;
        let revoked = self.accounts.end_sessions(&mut tx, user_id).await?;
        tx.consume_challenge(id, now).await?;
        let change = UserChange::PasswordReset { revoked };
        self.core.record(&mut tx, &actor, &DomainEvent::UserUpdated { user_id, email: &user.email, change }).await?;
        tx.commit().await?;
        self.core.forget_user(user_id);
        Ok(())
    }

    /// `POST /challenges/resend`: issues a new code when allowed; says nothing either way.
    pub async fn resend(&self, id: Uuid, client: &ClientInfo) -> Result<bool, ChallengeError> {
        self.limit(Scope::ChallengeResend, client, None).await?;
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        let Some(c) = tx.challenge_for_update(id).await? else { return Ok(false) };
        let too_soon = c
            .last_sent_at_ms
            .is_some_and(|t| now < t.saturating_add(ms(self.core.config.challenge.min_resend_interval)));
        if c.opaque
            || c.consumed_at_ms.is_some()
            || now > c.expires_at_ms
            || c.resend_count >= c.max_resends
            || too_soon
        {
            return Ok(false);
        }
        tx.challenge_resent(id).await?;
        let email = EmailAddress::from_stored(c.email.clone());
        self.issue_code(&mut tx, id, c.purpose, &email, c.expires_at_ms).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Starts an email change for a signed-in user; the code goes to the new address and the
    /// current address is told, with a link that cancels the change. Needs a privileged
    /// session; limited per user and per target address; a new request replaces the user's
    /// pending one.
    pub async fn start_email_change(
        &self,
        who: &Principal,
        email: &EmailAddress,
        current_password: Option<&str>,
    ) -> Result<Uuid, ChallengeError> {
        let user_id = who.user_id();
        self.core.require_privileged(who, current_password).await?;
        let per_user = LimitKey { ip: None, target: Some(format!("user:{user_id}")) };
        let per_target = LimitKey { ip: None, target: Some(email.as_str().to_owned()) };
        for (scope, key) in [(Scope::EmailChangeUser, per_user), (Scope::EmailChangeTarget, per_target)] {
            self.core
                .limit(scope, &key)
                .await
                .map_err(|retry_after_secs| ChallengeError::RateLimited { retry_after_secs })?;
        }
        let current = self.core.store.user_by_id(user_id).await?.ok_or(ChallengeError::Unknown)?;
        if current.email == email.as_str() {
            return Err(ChallengeError::SameEmail);
        }
        let taken = self.core.store.user_by_email(email).await?.is_some();
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        tx.cancel_challenges(user_id, ChallengePurpose::EmailChange, now).await?;
        let id = self.create(&mut tx, ChallengePurpose::EmailChange, email, Some(user_id), None, taken, None).await?;
        let token = self.core.secrets.seal(id.as_bytes(), CANCEL_CONTEXT);
        let cancel_url = format!("{}/auth/email-change/cancel?token={token}", self.core.config.public_url);
        let notice = DomainEvent::EmailChangeRequested {
            user_id,
            challenge_id: id,
            to: &current.email,
            new_email: email.as_str(),
            cancel_url,
        };
        self.core.record(&mut tx, &Actor::system(), &notice).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The cancel link of an email-change notice: ends the pending change. `false` when the
    /// link is not one of ours or the change is already over.
    pub async fn cancel_email_change(&self, token: &str) -> Result<bool, ChallengeError> {
        let Ok(raw) = self.core.secrets.open(token, CANCEL_CONTEXT) else { return Ok(false) };
        let Ok(id) = Uuid::from_slice(&raw) else { return Ok(false) };
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        let Some(c) = tx.challenge_for_update(id).await? else { return Ok(false) };
        if c.purpose != ChallengePurpose::EmailChange || c.consumed_at_ms.is_some() || now > c.expires_at_ms {
            return Ok(false);
        }
        tx.consume_challenge(id, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Completes an email change, recording `user.updated`.
    pub async fn verify_email_change(
        &self,
        user_id: UserId,
        id: Uuid,
        code: &str,
        client: &ClientInfo,
    ) -> Result<(), ChallengeError> {
        if !is_code(code) {
            return Err(ChallengeError::MalformedCode);
        }
        self.limit(Scope::ChallengeVerify, client, None).await?;
        let (mut tx, c) = self.check_code(id, ChallengePurpose::EmailChange, code).await?;
        if c.user_id != Some(user_id) {
            return Err(ChallengeError::Unknown);
        }
        let now = self.core.now_ms();
        match tx.set_email(user_id, &EmailAddress::from_stored(c.email.clone()), now).await {
            Err(StoreError::Conflict) => return Err(ChallengeError::EmailTaken),
            other => other?,
        }
        tx.set_address_proven(user_id, now).await?;
        tx.consume_challenge(id, now).await?;
        let event = DomainEvent::UserUpdated { user_id, email: &c.email, change: UserChange::Email };
        self.core.record(&mut tx, &Actor::user(user_id, client), &event).await?;
        tx.commit().await?;
        self.core.forget_user(user_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_only_six_digits_pass() {
        let codes: std::collections::HashSet<String> = (0..200).map(|_| new_code()).collect();
        assert!(codes.iter().all(|c| is_code(c)), "{codes:?}");
        assert!(codes.len() > 190, "random: {} distinct of 200", codes.len());
        assert!(codes.iter().any(|c| c.starts_with('0')), "leading zeros are kept (200 draws: all miss with p < 1e-9)");
        for bad in ["12345", "1234567", "12a456", " 123456", "１２３４５６", ""] {
            assert!(!is_code(bad), "{bad:?}");
        }
    }
}
