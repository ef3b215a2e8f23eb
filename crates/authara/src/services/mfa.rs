//! Two-step verification: an authenticator app (TOTP, RFC 6238: SHA-1, 6 digits, 30 s, ±1 step)
//! and recovery codes.
//!
//! - The 160-bit secret is sealed under a key derived from the signing keys (`Secrets::seal_factor`),
//!   never in a log, an event or a webhook.
//! - Each accepted time step is recorded with a compare-and-set in the transaction that uses it
//!   (`Tx::accept_totp_step`): a code is good once, across instances and concurrent submissions
//!   (RFC 6238 §5.2).
//! - Recovery codes are 16 characters of an unambiguous alphabet (80 bits), shown once. The first
//!   two characters pick the row; the code is checked against a salted SHA-256 of it: one hash per
//!   attempt. Each is used once.
//! - Attempts are limited per user; 100 consecutive failures lock the app factor until a recovery
//!   code is used or an administrator resets it (NIST SP 800-63B).
//!
//! [`Factors`] holds what the sign-in completion (`services::signin`) and the account's own
//! management ([`Mfa`]) share.

use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use uuid::Uuid;

use super::Core;
use super::audit::Actor;
use super::auth::{Principal, Privilege, ReauthError};
use super::events::{DomainEvent, MfaChange};
use super::sessions::{Issued, SessionError, Sessions};
use super::token::TokenError;
use crate::cache::{LimitKey, Scope};
use crate::config::MfaPolicy;
use crate::domain::{ClientInfo, PlatformRole, UserId};
use crate::store::accounts::UserRow;
use crate::store::mfa::TotpRow;
use crate::store::{StoreError, Tx};

/// How long a sign-in waits for its second step.
pub const CHALLENGE_TTL_MS: i64 = 5 * 60_000;
/// Consecutive failures that lock the app factor.
pub const LOCK_AFTER: i32 = 100;
const STEP_SECS: i64 = 30;
const RECOVERY_CODES: usize = 10;
/// Crockford's base32, lowercase: no i, l, o or u to mistake.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// The characters of a recovery code that pick its row.
const LOOKUP_LEN: usize = 2;
/// How long an unfinished setup is shown again rather than replaced.
pub const SETUP_REUSE_MS: i64 = 10 * 60_000;

#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    #[error("two-step verification is not on for this account")]
    NotEnabled,
    #[error("two-step verification is already on")]
    AlreadyEnabled,
    #[error("no authenticator setup is in progress")]
    NoSetup,
    /// A wrong, replayed, expired or malformed code.
    #[error("the code is incorrect")]
    InvalidCode,
    /// Too many consecutive failures: a recovery code (or an administrator) unlocks it.
    #[error("the authenticator app is locked after too many incorrect codes")]
    Locked,
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    /// Unknown, expired, used, or made in another browser.
    #[error("unknown or expired sign-in")]
    UnknownChallenge,
    /// A stored secret that no configured key opens (the key that sealed it was removed).
    #[error("a second-factor secret that no configured key opens")]
    KeyMissing,
    #[error(transparent)]
    Reauth(#[from] ReauthError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What proves the second factor.
#[derive(Debug, Clone, Copy)]
pub enum Proof<'a> {
    /// A code from the authenticator app.
    Totp(&'a str),
    /// One of the recovery codes.
    Recovery(&'a str),
}

impl Proof<'_> {
    /// The name the audit log shows.
    pub fn method(&self) -> &'static str {
        match self {
            Proof::Totp(_) => "totp",
            Proof::Recovery(_) => "recovery_code",
        }
    }
}

/// A new app factor to enter: the secret as text, the `otpauth://` URI, and that URI as a QR
/// code (SVG, rendered here).
#[derive(Debug, Clone)]
pub struct Setup {
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

/// Where a user's two-step verification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MfaStatus {
    pub totp_enabled: bool,
    pub recovery_remaining: i64,
    /// The policy requires a second factor of this user (`AUTHARA_MFA_REQUIRED`).
    pub required: bool,
    pub locked: bool,
}

/// A second factor that checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Used {
    /// After a recovery code: how many are left.
    pub recovery_left: Option<i64>,
}

/// A new random app secret: 160 bits.
fn new_secret() -> Vec<u8> {
    let mut s = vec![0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut s);
    s
}

/// A recovery code, `xxxx-xxxx-xxxx-xxxx`.
fn new_recovery_code() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let chars: Vec<char> = bytes.iter().map(|b| ALPHABET[usize::from(b % 32)] as char).collect();
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

/// A recovery code as typed, normalized (lowercase, no separators); `None` when it cannot be one.
fn normalize_recovery(code: &str) -> Option<String> {
    let c: String = code.chars().filter(|c| !matches!(c, '-' | ' ')).flat_map(char::to_lowercase).collect();
    (c.len() == 16 && c.bytes().all(|b| ALPHABET.contains(&b))).then_some(c)
}

/// salt ‖ SHA-256(salt ‖ code).
fn hash_recovery(code: &str) -> Vec<u8> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let mut out = salt.to_vec();
    out.extend_from_slice(&Sha256::new().chain_update(salt).chain_update(code.as_bytes()).finalize());
    out
}

fn recovery_matches(stored: &[u8], code: &str) -> bool {
    if stored.len() != 48 {
        return false;
    }
    let (salt, hash) = stored.split_at(16);
    let given = Sha256::new().chain_update(salt).chain_update(code.as_bytes()).finalize();
    bool::from(given.as_slice().ct_eq(hash))
}

/// The app's code for time step `step`.
fn code_at(secret: &[u8], step: i64) -> Option<String> {
    let totp = totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        STEP_SECS as u64,
        secret.to_vec(),
        None,
        String::new(),
    );
    u64::try_from(step.checked_mul(STEP_SECS)?).ok().map(|t| totp.generate(t))
}

/// The time step (one before, the current, one after) whose code `code` is; `None` otherwise.
fn matching_step(secret: &[u8], code: &str, now_ms: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = now_ms.div_euclid(1000).div_euclid(STEP_SECS);
    let mut found = None;
    // Every candidate is compared (no early exit on the first match).
    for step in [now - 1, now, now + 1] {
        if let Some(expected) = code_at(secret, step)
            && bool::from(expected.as_bytes().ct_eq(code.as_bytes()))
        {
            found = found.or(Some(step));
        }
    }
    found
}

/// What the sign-in completion and the account's management share.
#[derive(Clone)]
pub struct Factors {
    core: Core,
}

impl Factors {
    pub(crate) fn new(core: Core) -> Self {
        Self { core }
    }

    /// The user's confirmed app factor, if any.
    pub(crate) async fn confirmed_in(&self, tx: &mut Tx, user: UserId) -> Result<Option<TotpRow>, StoreError> {
        Ok(tx.totp_for_update(user).await?.filter(|t| t.confirmed_at_ms.is_some()))
    }

    /// Whether the policy (`AUTHARA_MFA_REQUIRED`) requires a second factor of a user with
    /// these platform roles: with `admins`, of everyone who may open the console.
    pub(crate) fn required(&self, roles: &[PlatformRole]) -> bool {
        match self.core.config.mfa.required {
            MfaPolicy::Off => false,
            MfaPolicy::All => true,
            MfaPolicy::Admins => !roles.is_empty(),
        }
    }

    /// Counts a second-factor attempt of `user` (a few a minute).
    pub(crate) async fn limit(&self, user: UserId) -> Result<(), MfaError> {
        let key = LimitKey { ip: None, target: Some(format!("mfa:{user}")) };
        self.core
            .limit(Scope::SecondFactor, &key)
            .await
            .map_err(|retry_after_secs| MfaError::RateLimited { retry_after_secs })
    }

    /// Checks `proof` for `user` in `tx` (which it takes, and hands back on success). A wrong
    /// code is counted in a transaction of its own after `tx` is dropped (so the count survives),
    /// audited, and locks the app factor at [`LOCK_AFTER`].
    pub(crate) async fn prove(
        &self,
        mut tx: Tx,
        user: &UserRow,
        proof: Proof<'_>,
        client: &ClientInfo,
    ) -> Result<(Tx, Used), MfaError> {
        self.limit(user.id).await?;
        let now = self.core.now_ms();
        let ok = match proof {
            Proof::Totp(code) => {
                let Some(row) = tx.totp_for_update(user.id).await? else { return Err(MfaError::NotEnabled) };
                if row.locked_at_ms.is_some() {
                    return Err(MfaError::Locked);
                }
                let (secret, current) =
                    self.core.secrets.open_factor(&row.secret_sealed, user.id.0).map_err(|_| MfaError::KeyMissing)?;
                let step = matching_step(&secret, code, now);
                let accepted = match step {
                    Some(step) => tx.accept_totp_step(user.id, step).await?,
                    None => false,
                };
                if accepted && !current {
                    tx.reseal_totp(user.id, &self.core.secrets.seal_factor(&secret, user.id.0)).await?;
                }
                accepted.then_some(Used { recovery_left: None })
            }
            Proof::Recovery(code) => match normalize_recovery(code) {
                None => None,
                Some(code) => {
                    let lookup = &code[..LOOKUP_LEN];
                    match tx.recovery_code(user.id, lookup).await? {
                        Some(stored) if recovery_matches(&stored, &code) => {
                            if tx.use_recovery_code(user.id, lookup, now).await? {
                                tx.unlock_totp(user.id).await?;
                                let left = tx.recovery_codes_left(user.id).await?;
                                let event = DomainEvent::SecondFactor {
                                    user_id: user.id,
                                    email: &user.email,
                                    change: MfaChange::RecoveryCodeUsed { left },
                                };
                                self.core.record(&mut tx, &Actor::user(user.id, client), &event).await?;
                                Some(Used { recovery_left: Some(left) })
                            } else {
                                None
                            }
                        }
                        _ => None,
                    }
                }
            },
        };
        match ok {
            Some(used) => Ok((tx, used)),
            None => {
                drop(tx);
                Err(self.failed(user, proof, client).await?)
            }
        }
    }

    /// Counts and audits a wrong second factor; the error to answer.
    async fn failed(&self, user: &UserRow, proof: Proof<'_>, client: &ClientInfo) -> Result<MfaError, StoreError> {
        let mut tx = self.core.store.begin().await?;
        let (failures, locked) = match proof {
            Proof::Totp(_) => tx.totp_failed(user.id, LOCK_AFTER, self.core.now_ms()).await?,
            Proof::Recovery(_) => (0, false),
        };
        let detail = serde_json::json!({ "second_factor": proof.method(), "consecutive_failures": failures });
        let event =
            DomainEvent::SignInFailed { user_id: Some(user.id), email: &user.email, method: proof.method(), detail };
        self.core.record(&mut tx, &Actor::anonymous(client), &event).await?;
        if locked && failures == LOCK_AFTER {
            let event = DomainEvent::SecondFactor { user_id: user.id, email: &user.email, change: MfaChange::Locked };
            self.core.record(&mut tx, &Actor::system(), &event).await?;
        }
        tx.commit().await?;
        Ok(if locked { MfaError::Locked } else { MfaError::InvalidCode })
    }

    /// The remembered-browser cookie of `user`: valid `days` days, bound to the user, their
    /// password and their factor (changing either voids it).
    pub(crate) fn remember_token(&self, user: UserId, factor: &TotpRow, password_changed_at_ms: i64) -> String {
        use base64::Engine as _;
        let issued = self.core.now_ms();
        let tag = self.remember_tag(user, issued, factor, password_changed_at_ms);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{issued}.{}", user.0.simple(), b64.encode(&tag[..16]))
    }

    /// Whether `token` is a remembered-browser cookie of `user`, still valid.
    pub(crate) fn remembered(&self, token: &str, user: UserId, factor: &TotpRow, password_changed_at_ms: i64) -> bool {
        use base64::Engine as _;
        let days = self.core.config.mfa.remember_days;
        if days == 0 {
            return false;
        }
        let mut parts = token.split('.');
        let (Some(uid), Some(issued), Some(tag), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let (Ok(uid), Ok(issued)) = (Uuid::parse_str(uid), issued.parse::<i64>()) else { return false };
        let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag) else { return false };
        let now = self.core.now_ms();
        let max_age = i64::from(days).saturating_mul(86_400_000);
        let expected = self.remember_tag(user, issued, factor, password_changed_at_ms);
        uid == user.0
            && now.saturating_sub(issued) <= max_age
            && tag.len() == 16
            && bool::from(expected[..16].ct_eq(tag.as_slice()))
    }

    fn remember_tag(&self, user: UserId, issued: i64, factor: &TotpRow, password_changed_at_ms: i64) -> Vec<u8> {
        self.core.secrets.remember_tag(&[
            user.0.as_bytes(),
            &issued.to_be_bytes(),
            &factor.confirmed_at_ms.unwrap_or_default().to_be_bytes(),
            &password_changed_at_ms.to_be_bytes(),
        ])
    }

    /// A new app secret for `user`, stored unconfirmed (replacing an unfinished one).
    pub(crate) async fn start_setup(&self, tx: &mut Tx, user: &UserRow) -> Result<Setup, MfaError> {
        let secret = new_secret();
        let sealed = self.core.secrets.seal_factor(&secret, user.id.0);
        if !tx.set_pending_totp(user.id, &sealed, self.core.now_ms()).await? {
            return Err(MfaError::AlreadyEnabled);
        }
        Ok(self.describe(&secret, &user.email))
    }

    /// The unfinished setup of `user` started less than [`SETUP_REUSE_MS`] ago, shown again (a
    /// reloaded page, a mistyped code), or a new one.
    pub(crate) async fn current_or_new_setup(&self, tx: &mut Tx, user: &UserRow) -> Result<Setup, MfaError> {
        if let Some(setup) = self.pending_setup(tx, user).await? {
            return Ok(setup);
        }
        self.start_setup(tx, user).await
    }

    /// The unfinished setup of `user`, if one was started less than [`SETUP_REUSE_MS`] ago.
    pub(crate) async fn pending_setup(&self, tx: &mut Tx, user: &UserRow) -> Result<Option<Setup>, MfaError> {
        let Some(row) = tx.totp_for_update(user.id).await? else { return Ok(None) };
        if row.confirmed_at_ms.is_some() {
            return Err(MfaError::AlreadyEnabled);
        }
        if self.core.now_ms().saturating_sub(row.updated_at_ms) > SETUP_REUSE_MS {
            return Ok(None);
        }
        let (secret, _) =
            self.core.secrets.open_factor(&row.secret_sealed, user.id.0).map_err(|_| MfaError::KeyMissing)?;
        Ok(Some(self.describe(&secret, &user.email)))
    }

    /// Whether `code` is one of `user`'s unused recovery codes (not using it): the "I saved
    /// them" check after they are shown.
    pub(crate) async fn holds_recovery_code(&self, tx: &mut Tx, user: UserId, code: &str) -> Result<bool, MfaError> {
        self.limit(user).await?;
        let Some(code) = normalize_recovery(code) else { return Ok(false) };
        Ok(tx.recovery_code(user, &code[..LOOKUP_LEN]).await?.is_some_and(|stored| recovery_matches(&stored, &code)))
    }

    fn describe(&self, secret: &[u8], account: &str) -> Setup {
        let issuer = self.core.config.ui.product_name.replace(':', " ");
        let totp = totp_rs::TOTP::new_unchecked(
            totp_rs::Algorithm::SHA1,
            6,
            1,
            STEP_SECS as u64,
            secret.to_vec(),
            Some(issuer),
            account.to_owned(),
        );
        let uri = totp.get_url();
        let qr_svg = qrcode::QrCode::new(uri.as_bytes())
            .map(|q| {
                q.render::<qrcode::render::svg::Color<'_>>()
                    .min_dimensions(200, 200)
                    .quiet_zone(true)
                    .dark_color(qrcode::render::svg::Color("#000000"))
                    .light_color(qrcode::render::svg::Color("#ffffff"))
                    .build()
            })
            .unwrap_or_default();
        Setup { secret: totp.get_secret_base32(), otpauth_uri: uri, qr_svg }
    }

    /// Confirms the unconfirmed factor of `user` with a current code (the step is recorded);
    /// new recovery codes come back, shown once. Mails the owner.
    pub(crate) async fn confirm(
        &self,
        tx: &mut Tx,
        user: &UserRow,
        code: &str,
        client: &ClientInfo,
    ) -> Result<Option<Vec<String>>, MfaError> {
        let Some(row) = tx.totp_for_update(user.id).await? else { return Err(MfaError::NoSetup) };
        if row.confirmed_at_ms.is_some() {
            return Err(MfaError::AlreadyEnabled);
        }
        let (secret, _) =
            self.core.secrets.open_factor(&row.secret_sealed, user.id.0).map_err(|_| MfaError::KeyMissing)?;
        let Some(step) = matching_step(&secret, code, self.core.now_ms()) else { return Ok(None) };
        if !tx.accept_totp_step(user.id, step).await? {
            return Ok(None);
        }
        tx.confirm_totp(user.id, self.core.now_ms()).await?;
        let codes = self.new_recovery_codes(tx, user.id).await?;
        let event = DomainEvent::SecondFactor { user_id: user.id, email: &user.email, change: MfaChange::Enabled };
        self.core.record(tx, &Actor::user(user.id, client), &event).await?;
        self.core.forget_user(user.id);
        Ok(Some(codes))
    }

    async fn new_recovery_codes(&self, tx: &mut Tx, user: UserId) -> Result<Vec<String>, StoreError> {
        let mut codes = Vec::new();
        let mut rows = Vec::new();
        while codes.len() < RECOVERY_CODES {
            let code = new_recovery_code();
            let plain = normalize_recovery(&code).unwrap_or_default();
            let lookup = plain[..LOOKUP_LEN].to_owned();
            if rows.iter().any(|(l, _)| *l == lookup) {
                continue;
            }
            rows.push((lookup, hash_recovery(&plain)));
            codes.push(code);
        }
        tx.replace_recovery_codes(user, &rows, self.core.now_ms()).await?;
        Ok(codes)
    }
}

/// A user's own two-step verification (the account page and `/auth/api/v1/mfa/*`) and step-up.
/// (The administrator's reset is `Admin::reset_second_factor`.)
#[derive(Clone)]
pub struct Mfa {
    core: Core,
    factors: Factors,
    sessions: Sessions,
}

impl Mfa {
    pub(crate) fn new(core: Core, factors: Factors, sessions: Sessions) -> Self {
        Self { core, factors, sessions }
    }

    /// `GET /mfa`.
    pub async fn status(&self, user: UserId, roles: &[PlatformRole]) -> Result<MfaStatus, StoreError> {
        let totp = self.core.store.totp(user).await?;
        let enabled = totp.as_ref().is_some_and(|t| t.confirmed_at_ms.is_some());
        Ok(MfaStatus {
            totp_enabled: enabled,
            recovery_remaining: if enabled { self.core.store.recovery_codes_left(user).await? } else { 0 },
            required: self.factors.required(roles),
            locked: totp.is_some_and(|t| t.locked_at_ms.is_some()),
        })
    }

    async fn user(&self, tx: &mut Tx, who: &Principal) -> Result<UserRow, MfaError> {
        tx.user_by_id(who.user_id()).await?.ok_or(MfaError::Session(SessionError::Disabled))
    }

    /// `POST /mfa/totp/setup` (privileged session: recent, or `current_password`): a new
    /// secret; a new setup replaces an unfinished one.
    pub async fn setup(&self, who: &Principal, current_password: Option<&str>) -> Result<Setup, MfaError> {
        self.core.require_privileged(who, current_password).await?;
        let mut tx = self.core.store.begin().await?;
        let user = self.user(&mut tx, who).await?;
        let setup = self.factors.start_setup(&mut tx, &user).await?;
        tx.commit().await?;
        Ok(setup)
    }

    /// The setup the account page shows again after a mistyped code (see
    /// `Factors::pending_setup`).
    pub async fn pending_setup(&self, who: &Principal) -> Result<Option<Setup>, MfaError> {
        let mut tx = self.core.store.begin().await?;
        let user = self.user(&mut tx, who).await?;
        self.factors.pending_setup(&mut tx, &user).await
    }

    /// Whether `code` is one of the caller's unused recovery codes (nothing is used).
    pub async fn holds_recovery_code(&self, who: &Principal, code: &str) -> Result<bool, MfaError> {
        let mut tx = self.core.store.begin().await?;
        self.factors.holds_recovery_code(&mut tx, who.user_id(), code).await
    }

    /// Where the caller's session stands for sensitive changes.
    pub async fn privilege(&self, who: &Principal) -> Result<Privilege, StoreError> {
        self.core.privilege(who).await
    }

    /// `POST /mfa/totp/confirm`: the setup's current code turns it on; the recovery codes.
    pub async fn confirm(&self, who: &Principal, code: &str, client: &ClientInfo) -> Result<Vec<String>, MfaError> {
        self.factors.limit(who.user_id()).await?;
        let mut tx = self.core.store.begin().await?;
        let user = self.user(&mut tx, who).await?;
        match self.factors.confirm(&mut tx, &user, code, client).await? {
            Some(codes) => {
                // The code just typed is a fresh second factor for this session.
                let amr = stepped_amr(who);
                tx.session_stepped_up(who.session_id(), &amr, self.core.now_ms()).await?;
                tx.commit().await?;
                Ok(codes)
            }
            None => Err(MfaError::InvalidCode),
        }
    }

    /// `POST /mfa/totp/disable`: a current code or a recovery code (the code in the request is
    /// the fresh second factor, so any session may do it; never without one). Mails the owner.
    pub async fn disable(&self, who: &Principal, proof: Proof<'_>, client: &ClientInfo) -> Result<(), MfaError> {
        let mut tx = self.core.store.begin().await?;
        let user = self.user(&mut tx, who).await?;
        if self.factors.confirmed_in(&mut tx, user.id).await?.is_none() {
            return Err(MfaError::NotEnabled);
        }
        let (mut tx, _) = self.factors.prove(tx, &user, proof, client).await?;
        tx.delete_mfa(user.id).await?;
        let event = DomainEvent::SecondFactor {
            user_id: user.id,
            email: &user.email,
            change: MfaChange::Disabled { by_admin: false },
        };
        self.core.record(&mut tx, &Actor::user(user.id, client), &event).await?;
        tx.commit().await?;
        self.core.forget_user(user.id);
        Ok(())
    }

    /// `POST /mfa/recovery-codes` (privileged, with a current code): a new set; the old one is void.
    pub async fn regenerate(&self, who: &Principal, code: &str, client: &ClientInfo) -> Result<Vec<String>, MfaError> {
        self.core.require_privileged(who, None).await?;
        let mut tx = self.core.store.begin().await?;
        let user = self.user(&mut tx, who).await?;
        if self.factors.confirmed_in(&mut tx, user.id).await?.is_none() {
            return Err(MfaError::NotEnabled);
        }
        let (mut tx, _) = self.factors.prove(tx, &user, Proof::Totp(code), client).await?;
        let codes = self.factors.new_recovery_codes(&mut tx, user.id).await?;
        let event = DomainEvent::SecondFactor {
            user_id: user.id,
            email: &user.email,
            change: MfaChange::RecoveryCodesRegenerated,
        };
        self.core.record(&mut tx, &Actor::user(user.id, client), &event).await?;
        tx.commit().await?;
        Ok(codes)
    }

    /// `POST /mfa/verify` (step-up): a current code (or a recovery code) for a signed-in session;
    /// new tokens whose `amr` has `otp` and `mfa` and whose `auth_time` is now. Sensitive changes
    /// then need nothing more for `AUTHARA_PRIVILEGED_SESSION_MAX_AGE`.
    pub async fn step_up(&self, who: &Principal, proof: Proof<'_>, client: &ClientInfo) -> Result<Issued, MfaError> {
        let mut tx = self.core.store.begin().await?;
        let user = self.user(&mut tx, who).await?;
        if self.factors.confirmed_in(&mut tx, user.id).await?.is_none() {
            return Err(MfaError::NotEnabled);
        }
        let (mut tx, _) = self.factors.prove(tx, &user, proof, client).await?;
        let amr = stepped_amr(who);
        let issued = self.sessions.reissue(&mut tx, who, &amr).await?;
        tx.commit().await?;
        Ok(issued)
    }
}

/// A session's `amr` after a second factor: what its sign-in proved, with `otp` and `mfa`.
fn stepped_amr(who: &Principal) -> String {
    let mut amr: Vec<String> = who.claims().amr.clone().unwrap_or_default();
    for extra in ["otp", "mfa"] {
        if !amr.iter().any(|a| a == extra) {
            amr.push(extra.to_owned());
        }
    }
    amr.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1, truncated to 6 digits.
    #[test]
    fn codes_are_rfc_6238() {
        let secret = b"12345678901234567890";
        for (t, full) in [(59, "94287082"), (1_111_111_109, "07081804"), (1_234_567_890, "89005924")] {
            assert_eq!(code_at(secret, t / STEP_SECS).unwrap(), full[2..], "t={t}");
        }
    }

    #[test]
    fn one_step_either_side_is_accepted_two_are_not() {
        let secret = b"12345678901234567890";
        let now_ms = 1_234_567_890_000;
        let step = 1_234_567_890 / STEP_SECS;
        for (offset, ok) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = code_at(secret, step + offset).unwrap();
            assert_eq!(matching_step(secret, &code, now_ms).is_some(), ok, "offset {offset}");
        }
        assert_eq!(matching_step(secret, "12345", now_ms), None);
        assert_eq!(matching_step(secret, "abcdef", now_ms), None);
    }

    #[test]
    fn recovery_codes_are_80_bits_typed_forgivingly_and_hashed_with_salt() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 19);
        assert_eq!(code.matches('-').count(), 3);
        let plain = normalize_recovery(&code).unwrap();
        assert_eq!(normalize_recovery(&code.to_uppercase().replace('-', " ")).as_deref(), Some(plain.as_str()));
        assert_eq!(normalize_recovery("not-a-code"), None);
        let (a, b) = (hash_recovery(&plain), hash_recovery(&plain));
        assert_ne!(a, b, "salted");
        assert!(recovery_matches(&a, &plain) && recovery_matches(&b, &plain));
        assert!(!recovery_matches(&a, &normalize_recovery(&new_recovery_code()).unwrap()));
    }
}
