//! Finishing a sign-in: the one owner of what happens once someone is verified.
//!
//! Each sign-in method (password, email code, passkey, a provider identity, a recovery link,
//! the invitation pages) only *verifies* someone and hands a [`Verified`] to
//! `SignIns::complete`, in the transaction that holds whatever the method wrote (a new
//! account, an accepted invitation, a consumed ceremony). The completion applies the policy
//! every sign-in shares, in that transaction:
//! - a disabled user, an address off the allowlist (an invitation admits it earlier in the
//!   same transaction), a refused audience: no session;
//! - the organization the session starts in (the user's default one, or the one an invitation
//!   just made them a member of);
//! - the session and its tokens;
//! - the second step: a user with an authenticator app proves it (a passkey with user
//!   verification is two factors already), a user the policy (`AUTHARA_MFA_REQUIRED`) requires
//!   one of enrols now; the sign-in then waits in an `mfa_challenges` row bound to this browser
//!   and ends in [`SignIns::second_factor`] or [`SignIns::enrol_confirm`], which take the same
//!   steps below;
//! - the `user.signed_in` event, which writes the `user.login` audit row;
//!
//! and commits. A step every sign-in must take is added here, and only here.

use rand::RngCore as _;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use uuid::Uuid;

use super::Core;
use super::audit::Actor;
use super::events::DomainEvent;
use super::mfa::{CHALLENGE_TTL_MS, Factors, MfaError, Proof, Setup};
use super::sessions::{Issued, NewSignIn, SessionError, Sessions};
use crate::domain::{Audience, ClientInfo, OrgId, PlatformRole};
use crate::store::Tx;
use crate::store::accounts::{Membership, UserRow};
use crate::store::mfa::{MfaChallengeRow, NewMfaChallenge};

/// How someone proved who they are (the first factor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Password,
    /// A code sent to the address (verified signup).
    EmailCode,
    /// A passkey with user verification; `synced` when it lives in a cloud keychain.
    Passkey {
        id: Uuid,
        synced: bool,
    },
    /// An identity at a sign-in provider (`google`, `github`, a configured OpenID issuer).
    Provider {
        name: String,
    },
}

impl Method {
    /// The name the audit log shows (`metadata.method`).
    pub fn name(&self) -> &str {
        match self {
            Method::Password => "password",
            Method::EmailCode => "email_code",
            Method::Passkey { .. } => "passkey",
            Method::Provider { name } => name,
        }
    }

    /// What the method proves, as RFC 8176 names it (the tokens' `amr`): a passkey with user
    /// verification is something held and something known or been, two factors in one.
    pub fn amr(&self) -> &'static str {
        match self {
            Method::Password => "pwd",
            Method::EmailCode => "otp",
            Method::Passkey { synced: false, .. } => "hwk user mfa",
            Method::Passkey { synced: true, .. } => "swk user mfa",
            Method::Provider { .. } => "fed",
        }
    }
}

/// Someone a sign-in method verified.
#[derive(Debug, Clone)]
pub struct Verified {
    pub user: UserRow,
    pub method: Method,
    /// What else the audit row shows (`created`, `invitation_id`, the recovery link's
    /// provider…): never secrets.
    pub detail: Map<String, Value>,
    /// The device cookie a password login hands its browser (see `Accounts::login`).
    pub device: Option<String>,
}

impl Verified {
    pub fn new(user: UserRow, method: Method) -> Self {
        Verified { user, method, detail: Map::new(), device: None }
    }

    /// Adds a fact to the audit row.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(key.to_owned(), value.into());
        self
    }
}

/// Where the session starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartIn {
    /// The user's default organization (behavior.md §2.3).
    Default,
    /// An organization the user belongs to (the one an invitation just made them join).
    Organization(OrgId),
}

/// A signed-in user and their new session's tokens.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: UserRow,
    pub tokens: Issued,
    /// After a password login: the device token this browser keeps.
    pub device: Option<String>,
    /// "Remember this browser" was asked for: the cookie that skips the second step here.
    pub remember: Option<String>,
}

/// A sign-in whose first factor checked out, waiting for its second step in this browser.
#[derive(Debug, Clone)]
pub struct SecondStep {
    pub challenge_id: Uuid,
    /// The browser's half (the `authara_mfa` cookie); only its hash is stored.
    pub binding: String,
    /// The user has no second factor and the policy requires one: they set it up now.
    pub enrol: bool,
    pub audience: Audience,
}

impl SecondStep {
    /// Seconds the sign-in waits.
    pub const EXPIRES_IN: i64 = CHALLENGE_TTL_MS / 1000;

    /// What the second step accepts.
    pub fn methods(&self) -> &'static [&'static str] {
        if self.enrol { &["totp_enrollment"] } else { &["totp", "recovery_code"] }
    }
}

/// How a sign-in ended.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Completion {
    SignedIn(SignedIn),
    SecondFactor(SecondStep),
}

/// The enrolment a policy requires, done during the sign-in: the session, and the recovery
/// codes to show once.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub signed: SignedIn,
    pub recovery_codes: Vec<String>,
}

/// What the completion knows once the checks shared by every sign-in pass.
struct Admitted {
    user: UserRow,
    roles: Vec<PlatformRole>,
    membership: Membership,
}

/// What finishes a sign-in after its checks: how, what it proved, what the audit row shows.
struct Finish<'a> {
    method: &'a str,
    amr: &'a str,
    mfa: bool,
    detail: Value,
    device: Option<String>,
    remember: Option<String>,
}

/// The completion of every sign-in.
#[derive(Clone)]
pub struct SignIns {
    core: Core,
    sessions: Sessions,
    factors: Factors,
}

const VERIFY: &str = "verify";
const ENROL: &str = "enroll";

impl SignIns {
    pub(crate) fn new(core: Core, sessions: Sessions, factors: Factors) -> Self {
        Self { core, sessions, factors }
    }

    /// Completes the sign-in of `v` in `tx` and commits (see the module docs). A refusal
    /// returns with `tx` dropped: nothing the method wrote in it is kept.
    pub(crate) async fn complete(
        &self,
        tx: Tx,
        v: Verified,
        audience: Audience,
        start_in: StartIn,
        client: &ClientInfo,
    ) -> Result<Completion, SessionError> {
        let method = v.method.name().to_owned();
        let done = self.complete_counted(tx, v, audience, start_in, client).await;
        let result = match &done {
            Ok(Completion::SignedIn(_)) => "success",
            Ok(Completion::SecondFactor(_)) => "mfa_required",
            Err(SessionError::Disabled) => "disabled",
            Err(SessionError::NotAllowed) => "not_allowed",
            Err(SessionError::AudienceForbidden | SessionError::NoOrganization) => "forbidden",
            Err(SessionError::Token(_) | SessionError::Store(_)) => "error",
        };
        self.core.metrics.sign_in(&method, result);
        done
    }

    async fn complete_counted(
        &self,
        mut tx: Tx,
        v: Verified,
        audience: Audience,
        start_in: StartIn,
        client: &ClientInfo,
    ) -> Result<Completion, SessionError> {
        let admitted = self.admit(&mut tx, &v.user, audience, start_in).await?;
        let user_id = admitted.user.id;
        let passkey = matches!(v.method, Method::Passkey { .. });
        if !passkey {
            let purpose = match self.factors.confirmed_in(&mut tx, user_id).await? {
                Some(factor) => {
                    // A remembered browser skips the step for the app, never for the console.
                    let remembered = match (audience, client.remembered.as_deref()) {
                        (Audience::App, Some(token)) => {
                            let changed = tx.password_changed_at(user_id).await?;
                            self.factors.remembered(token, user_id, &factor, changed)
                        }
                        _ => false,
                    };
                    (!remembered).then_some(VERIFY)
                }
                None => self.factors.required(&admitted.roles).then_some(ENROL),
            };
            if let Some(purpose) = purpose {
                return Ok(Completion::SecondFactor(self.wait(tx, &v, &admitted, audience, purpose).await?));
            }
        }
        let finish = Finish {
            method: v.method.name(),
            amr: v.method.amr(),
            mfa: passkey,
            detail: Value::Object(v.detail),
            device: v.device,
            remember: None,
        };
        Ok(Completion::SignedIn(self.finish(tx, admitted, audience, finish, client).await?))
    }

    /// The checks every sign-in shares: the user as this transaction sees it (disabled a moment
    /// ago is disabled), the allowlist, the audience, the organization the session starts in.
    async fn admit(
        &self,
        tx: &mut Tx,
        user: &UserRow,
        audience: Audience,
        start_in: StartIn,
    ) -> Result<Admitted, SessionError> {
        let user = tx.user_by_id(user.id).await?.ok_or(SessionError::Disabled)?;
        if user.disabled_at_ms.is_some() {
            return Err(SessionError::Disabled);
        }
        if !self.core.allowed_in(tx, &user.email).await? {
            return Err(SessionError::NotAllowed);
        }
        let roles = tx.user_roles(user.id).await?;
        if !audience.permits(&roles) {
            return Err(SessionError::AudienceForbidden);
        }
        let membership = match start_in {
            StartIn::Organization(org) => tx
                .membership(org, user.id)
                .await?
                .map(|m| Membership { organization_id: m.organization_id, role: m.role }),
            StartIn::Default => tx.default_membership(user.id).await?,
        }
        .ok_or(SessionError::NoOrganization)?;
        Ok(Admitted { user, roles, membership })
    }

    /// The session, its tokens, the `user.signed_in` event; commits.
    async fn finish(
        &self,
        mut tx: Tx,
        a: Admitted,
        audience: Audience,
        f: Finish<'_>,
        client: &ClientInfo,
    ) -> Result<SignedIn, SessionError> {
        let start =
            NewSignIn { user: &a.user, membership: a.membership, roles: &a.roles, audience, amr: f.amr, mfa: f.mfa };
        let (session_id, tokens) = self.sessions.start(&mut tx, &start, client).await?;
        let event = DomainEvent::SignedIn {
            user_id: a.user.id,
            email: &a.user.email,
            method: f.method,
            audience,
            session_id,
            detail: f.detail,
        };
        self.core.record(&mut tx, &Actor::user(a.user.id, client), &event).await?;
        tx.commit().await?;
        Ok(SignedIn { user: a.user, tokens, device: f.device, remember: f.remember })
    }

    /// Keeps the verified sign-in waiting for its second step (and what the method wrote in
    /// `tx`: an account it created, an invitation it accepted, a ceremony it consumed); commits.
    async fn wait(
        &self,
        mut tx: Tx,
        v: &Verified,
        a: &Admitted,
        audience: Audience,
        purpose: &str,
    ) -> Result<SecondStep, SessionError> {
        use base64::Engine as _;
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let binding = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let now = self.core.now_ms();
        let id = Uuid::new_v4();
        let detail = Value::Object(v.detail.clone()).to_string();
        tx.insert_mfa_challenge(&NewMfaChallenge {
            id,
            user_id: a.user.id,
            binding_hash: &Sha256::digest(binding.as_bytes()),
            purpose,
            audience: audience.as_str(),
            organization_id: Some(a.membership.organization_id),
            method: v.method.name(),
            amr: v.method.amr(),
            detail: &detail,
            password_login: v.device.is_some(),
            expires_at_ms: now.saturating_add(CHALLENGE_TTL_MS),
            now_ms: now,
        })
        .await?;
        tx.commit().await?;
        Ok(SecondStep { challenge_id: id, binding, enrol: purpose == ENROL, audience })
    }

    /// The waiting sign-in `id` of this browser (`binding`), for `purpose`, locked in `tx`.
    async fn waiting(
        &self,
        tx: &mut Tx,
        id: Uuid,
        binding: Option<&str>,
        purpose: &str,
    ) -> Result<(MfaChallengeRow, UserRow), MfaError> {
        let row = tx.mfa_challenge_for_update(id).await?.ok_or(MfaError::UnknownChallenge)?;
        let bound =
            binding.is_some_and(|b| bool::from(Sha256::digest(b.as_bytes()).as_slice().ct_eq(&row.binding_hash)));
        if !bound || row.consumed_at_ms.is_some() || row.expires_at_ms < self.core.now_ms() || row.purpose != purpose {
            return Err(MfaError::UnknownChallenge);
        }
        let user = tx.user_by_id(row.user_id).await?.ok_or(MfaError::UnknownChallenge)?;
        Ok((row, user))
    }

    /// `POST /login/mfa` and the login page's second step: the code (or a recovery code) for
    /// the waiting sign-in `id` of this browser; the session on success, exactly as the first
    /// factor would have given it. The time step (or recovery code) and the waiting sign-in are
    /// used in the transaction that starts the session: one code, one session.
    pub async fn second_factor(
        &self,
        id: Uuid,
        binding: Option<&str>,
        proof: Proof<'_>,
        remember: bool,
        client: &ClientInfo,
    ) -> Result<SignedIn, MfaError> {
        let mut tx = self.core.store.begin().await?;
        let (row, user) = self.waiting(&mut tx, id, binding, VERIFY).await?;
        // Turned off (or reset) since the first factor: this sign-in starts again.
        if self.factors.confirmed_in(&mut tx, user.id).await?.is_none() {
            return Err(MfaError::UnknownChallenge);
        }
        let (mut tx, used) = self.factors.prove(tx, &user, proof, client).await?;
        if !tx.consume_mfa_challenge(id, self.core.now_ms()).await? {
            return Err(MfaError::UnknownChallenge);
        }
        let audience = Audience::parse(&row.audience).map_err(|_| MfaError::UnknownChallenge)?;
        let remember = match (remember, self.core.config.mfa.remember_days > 0, audience) {
            (true, true, Audience::App) => match self.factors.confirmed_in(&mut tx, user.id).await? {
                Some(f) => {
                    let changed = tx.password_changed_at(user.id).await?;
                    Some(self.factors.remember_token(user.id, &f, changed))
                }
                None => None,
            },
            _ => None,
        };
        let second = proof.method();
        let mut detail: Map<String, Value> = serde_json::from_str(&row.detail).unwrap_or_default();
        detail.insert("second_factor".into(), second.into());
        if let Some(left) = used.recovery_left {
            detail.insert("recovery_codes_left".into(), left.into());
        }
        let signed = self.finish_waiting(tx, &row, user, audience, detail, remember, client).await;
        if signed.is_ok() {
            self.core.metrics.sign_in(second, "success");
        }
        signed
    }

    /// The policy's enrolment during a sign-in: a new app secret for the waiting sign-in `id`
    /// of this browser (a new call replaces an unfinished one; with `again`, one started in
    /// the last minutes is shown again: the page is reloaded).
    pub async fn enrol_setup(&self, id: Uuid, binding: Option<&str>, again: bool) -> Result<Setup, MfaError> {
        let mut tx = self.core.store.begin().await?;
        let (_, user) = self.waiting(&mut tx, id, binding, ENROL).await?;
        let setup = if again {
            self.factors.current_or_new_setup(&mut tx, &user).await?
        } else {
            self.factors.start_setup(&mut tx, &user).await?
        };
        tx.commit().await?;
        Ok(setup)
    }

    /// Confirms the enrolment with a current code and completes the sign-in with it as the
    /// second factor; the recovery codes, shown once.
    pub async fn enrol_confirm(
        &self,
        id: Uuid,
        binding: Option<&str>,
        code: &str,
        client: &ClientInfo,
    ) -> Result<Enrolled, MfaError> {
        let mut tx = self.core.store.begin().await?;
        let (row, user) = self.waiting(&mut tx, id, binding, ENROL).await?;
        self.factors.limit(user.id).await?;
        let Some(recovery_codes) = self.factors.confirm(&mut tx, &user, code, client).await? else {
            return Err(MfaError::InvalidCode);
        };
        if !tx.consume_mfa_challenge(id, self.core.now_ms()).await? {
            return Err(MfaError::UnknownChallenge);
        }
        let audience = Audience::parse(&row.audience).map_err(|_| MfaError::UnknownChallenge)?;
        let mut detail: Map<String, Value> = serde_json::from_str(&row.detail).unwrap_or_default();
        detail.insert("second_factor".into(), "totp_enrollment".into());
        let signed = self.finish_waiting(tx, &row, user, audience, detail, None, client).await?;
        self.core.metrics.sign_in("totp_enrollment", "success");
        Ok(Enrolled { signed, recovery_codes })
    }

    /// Deletes sign-ins that waited for their second step past their expiry (the cleanup
    /// worker); a consumed one is kept until then, so its id stays spent.
    pub async fn cleanup(&self) -> Result<u64, crate::store::StoreError> {
        self.core.store.cleanup_mfa_challenges(self.core.now_ms()).await
    }

    /// The end of a sign-in that waited: the shared checks again (a user disabled or an
    /// organization left in the meantime stops it here), then the session.
    #[allow(clippy::too_many_arguments)]
    async fn finish_waiting(
        &self,
        mut tx: Tx,
        row: &MfaChallengeRow,
        user: UserRow,
        audience: Audience,
        detail: Map<String, Value>,
        remember: Option<String>,
        client: &ClientInfo,
    ) -> Result<SignedIn, MfaError> {
        let start_in = row.organization_id.map_or(StartIn::Default, StartIn::Organization);
        let admitted = match self.admit(&mut tx, &user, audience, start_in).await {
            Err(SessionError::NoOrganization) => self.admit(&mut tx, &user, audience, StartIn::Default).await?,
            other => other?,
        };
        let amr = format!("{} otp mfa", row.amr);
        let device = row.password_login.then(|| self.core.secrets.device_token(&user.email, self.core.now_ms()));
        let finish =
            Finish { method: &row.method, amr: &amr, mfa: true, detail: Value::Object(detail), device, remember };
        Ok(self.finish(tx, admitted, audience, finish, client).await?)
    }
}
