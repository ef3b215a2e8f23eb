//! Passkeys (behavior.md §8): WebAuthn registration and discoverable sign-in through
//! `webauthn-rs`, and the user's own list (rename, delete).
//!
//! The relying party is `PUBLIC_URL`: its host is the RP ID, the URL itself the one allowed
//! origin. Without a `PUBLIC_URL` whose host is a domain name (WebAuthn does not accept IP
//! addresses) passkeys are unavailable and every ceremony answers [`PasskeyError::Unavailable`].
//!
//! Ceremony state lives in `webauthn_challenges` (five minutes), so any instance can finish
//! what another started. A finish locks the row, verifies, and consumes it in the same
//! transaction as what it writes; a failed verification rolls back, leaving the ceremony
//! retryable until it expires.

use std::sync::Arc;

use serde_json::{Value, json};
use uuid::Uuid;
use webauthn_rs::prelude::{
    Credential, DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder, WebauthnError,
};

use super::Core;
use super::accounts::Completion;
use super::audit::Actor;
use super::auth::{Principal, ReauthError};
use super::events::{Credential as SignInMethod, DomainEvent};
use super::sessions::SessionError;
use super::signin::{Method, SignIns, StartIn, Verified};
use crate::cache::{LimitKey, Scope};
use crate::clock::http_date;
use crate::domain::ClientInfo;
use crate::domain::{Audience, UserId};
use crate::store::passkeys::{NewPasskey, PasskeyRow, PasskeyUse};
use crate::store::{StoreError, Tx};

/// How long a ceremony may take (the options' `timeout` is the same).
const CEREMONY_TTL_MS: i64 = 5 * 60 * 1000;
/// Ceremony rows stay this long past their expiry before the cleanup worker deletes them.
const CEREMONY_KEEP_MS: i64 = 60 * 60 * 1000;
/// Longest passkey name, in characters.
pub const MAX_NAME_CHARS: usize = 255;

const REGISTRATION: &str = "registration";
const AUTHENTICATION: &str = "authentication";

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// No usable `PUBLIC_URL` (see the module docs).
    #[error("passkeys are not available on this server")]
    Unavailable,
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    /// Unknown, expired, consumed, of another purpose or of another user.
    #[error("unknown or expired passkey ceremony")]
    InvalidChallenge,
    /// The credential did not verify (origin, RP ID, challenge, flags, signature, unknown
    /// credential, malformed data).
    #[error("the passkey could not be verified")]
    InvalidCredential,
    /// The signature counter went backwards: the passkey was flagged as possibly cloned.
    #[error("the passkey's signature counter went backwards")]
    PossibleClone,
    #[error("this passkey is already registered")]
    AlreadyExists,
    #[error("passkey not found")]
    NotFound,
    #[error("the last way to sign in cannot be removed")]
    LastMethod,
    #[error("a passkey name is 1 to 255 printable characters")]
    InvalidName,
    #[error(transparent)]
    Reauth(#[from] ReauthError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a client needs to run a ceremony: the options for `navigator.credentials.*` and the id
/// to finish it with.
#[derive(Debug, Clone)]
pub struct Ceremony {
    pub challenge_id: Uuid,
    /// `{"publicKey": {…}}` (plus `mediation` for a sign-in), binary fields base64url.
    pub options: Value,
}

/// A registration to finish.
#[derive(Debug, Clone, Default)]
pub struct Registration<'a> {
    pub name: Option<&'a str>,
    /// What the page knows about the device (`navigator.userAgentData.platform`, …).
    pub platform_hint: Option<&'a str>,
}

/// Passkeys.
#[derive(Clone)]
pub struct Passkeys {
    core: Core,
    signins: SignIns,
    webauthn: Option<Arc<Webauthn>>,
}

/// The relying party of `public_url`, if it can be one.
fn relying_party(public_url: &str) -> Option<Webauthn> {
    let origin = Url::parse(public_url).ok()?;
    let Some(rp_id) = origin.domain().map(str::to_owned) else {
        tracing::info!("passkeys off: the host of PUBLIC_URL is not a domain name");
        return None;
    };
    match WebauthnBuilder::new(&rp_id, &origin).and_then(|b| b.rp_name("Authara").build()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "passkeys unavailable: PUBLIC_URL is not a WebAuthn origin");
            None
        }
    }
}

/// Options sent to browsers require a discoverable credential and user verification
/// (behavior.md §8), whatever the library's passkey defaults are.
fn require_resident_key(options: &mut Value) {
    if let Some(pk) = options.get_mut("publicKey").and_then(Value::as_object_mut) {
        let sel = pk.entry("authenticatorSelection").or_insert_with(|| json!({}));
        if let Some(sel) = sel.as_object_mut() {
            sel.insert("residentKey".into(), json!("required"));
            sel.insert("requireResidentKey".into(), json!(true));
            sel.insert("userVerification".into(), json!("required"));
        }
    }
}

impl Passkeys {
    pub(crate) fn new(core: Core, signins: SignIns) -> Self {
        let webauthn = relying_party(&core.config.public_url).map(Arc::new);
        Self { core, signins, webauthn }
    }

    /// Whether passkeys work on this server (pages hide them otherwise).
    pub fn available(&self) -> bool {
        self.webauthn.is_some()
    }

    fn webauthn(&self) -> Result<&Webauthn, PasskeyError> {
        self.webauthn.as_deref().ok_or(PasskeyError::Unavailable)
    }

    async fn limit(&self, scope: Scope, client: &ClientInfo) -> Result<(), PasskeyError> {
        let key = LimitKey { ip: client.ip, target: None };
        self.core.limit(scope, &key).await.map_err(|retry_after_secs| PasskeyError::RateLimited { retry_after_secs })
    }

    async fn save_ceremony(&self, user: Option<UserId>, purpose: &str, state: &str) -> Result<Uuid, StoreError> {
        let now = self.core.now_ms();
        let id = Uuid::new_v4();
        let mut tx = self.core.store.begin().await?;
        tx.insert_ceremony(id, user, purpose, state, now, now + CEREMONY_TTL_MS).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Locks the ceremony `id` in `tx` and returns its state if it is live, of `purpose`, and
    /// (for a registration) `user`'s.
    async fn open_ceremony(
        &self,
        tx: &mut Tx,
        id: Uuid,
        purpose: &str,
        user: Option<UserId>,
    ) -> Result<String, PasskeyError> {
        let row = tx.ceremony_for_update(id).await?.ok_or(PasskeyError::InvalidChallenge)?;
        let live = row.consumed_at_ms.is_none() && row.expires_at_ms > self.core.now_ms();
        if !live || row.purpose != purpose || row.user_id != user {
            return Err(PasskeyError::InvalidChallenge);
        }
        Ok(row.session_data)
    }

    /// `POST /passkeys/register/options`: a registration for the signed-in user, excluding
    /// the passkeys they already have. Adding a passkey is a sensitive change: the session
    /// must be privileged (a recent sign-in).
    pub async fn start_registration(&self, who: &Principal) -> Result<Ceremony, PasskeyError> {
        let webauthn = self.webauthn()?;
        self.core.require_privileged(who, None).await?;
        let user = self.core.store.user_by_id(who.user_id()).await?.ok_or(PasskeyError::InvalidChallenge)?;
        let exclude = self.core.store.passkey_credential_ids(user.id).await?;
        let exclude = (!exclude.is_empty()).then(|| exclude.into_iter().map(Into::into).collect());
        let display = if user.username.is_empty() { &user.email } else { &user.username };
        let (ccr, state) = webauthn
            .start_passkey_registration(user.id.0, &user.email, display, exclude)
            .map_err(|_| PasskeyError::InvalidCredential)?;
        let mut options = serde_json::to_value(&ccr).map_err(|_| PasskeyError::InvalidCredential)?;
        require_resident_key(&mut options);
        let state = serde_json::to_string(&state).map_err(|_| PasskeyError::InvalidCredential)?;
        let challenge_id = self.save_ceremony(Some(user.id), REGISTRATION, &state).await?;
        Ok(Ceremony { challenge_id, options })
    }

    /// `POST /passkeys/register/finish`: verifies the new credential (origin, RP ID,
    /// challenge, user verification) and stores it, consuming the ceremony.
    pub async fn finish_registration(
        &self,
        who: &Principal,
        challenge_id: Uuid,
        credential: Value,
        reg: &Registration<'_>,
        client: &ClientInfo,
    ) -> Result<PasskeyRow, PasskeyError> {
        let webauthn = self.webauthn()?;
        let name = match reg.name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) => Some(valid_name(n)?),
            None => None,
        };
        let credential: RegisterPublicKeyCredential =
            serde_json::from_value(credential).map_err(|_| PasskeyError::InvalidCredential)?;
        let user_id = who.user_id();
        let mut tx = self.core.store.begin().await?;
        let state = self.open_ceremony(&mut tx, challenge_id, REGISTRATION, Some(user_id)).await?;
        let state: PasskeyRegistration = serde_json::from_str(&state).map_err(|_| PasskeyError::InvalidChallenge)?;
        // A failure returns with the transaction dropped: the ceremony stays usable.
        let passkey = webauthn.finish_passkey_registration(&credential, &state).map_err(|e| match e {
            // webauthn-rs's name for a credential of the ceremony's `excludeCredentials`: one of
            // this user's own passkeys, registered again.
            WebauthnError::CredentialAlteredAlgFromRequest => PasskeyError::AlreadyExists,
            e => {
                tracing::debug!(error = %e, "passkey registration refused");
                PasskeyError::InvalidCredential
            }
        })?;
        let cred: Credential = passkey.clone().into();
        if !cred.user_verified {
            return Err(PasskeyError::InvalidCredential);
        }
        let now = self.core.now_ms();
        let name = match name {
            Some(n) => n,
            None => generated_name(reg.platform_hint, &client.user_agent, cred.backup_eligible, now),
        };
        let record = serde_json::to_string(&passkey).map_err(|_| PasskeyError::InvalidCredential)?;
        let format = serde_json::to_value(&cred.attestation_format)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "none".to_owned());
        let transports =
            serde_json::to_string(&cred.transports.clone().unwrap_or_default()).unwrap_or_else(|_| "[]".to_owned());
        let id = Uuid::new_v4();
        let inserted = tx
            .insert_passkey(&NewPasskey {
                id,
                user_id,
                credential_id: cred.cred_id.as_ref(),
                credential: &record,
                name: &name,
                aaguid: None,
                attestation_format: &format,
                transports: &transports,
                sign_count: i64::from(cred.counter),
                user_verified: cred.user_verified,
                backup_eligible: cred.backup_eligible,
                backup_state: cred.backup_state,
                now_ms: now,
            })
            .await;
        match inserted {
            Err(StoreError::Conflict) => return Err(PasskeyError::AlreadyExists),
            other => other?,
        }
        tx.consume_ceremony(challenge_id, now).await?;
        let email = tx.user_by_id(user_id).await?.map(|u| u.email).unwrap_or_default();
        let credential = SignInMethod::Passkey { id, name: &name, synced: cred.backup_eligible };
        let event = DomainEvent::CredentialAdded { user_id, email: &email, credential };
        self.core.record(&mut tx, &Actor::user(user_id, client), &event).await?;
        tx.commit().await?;
        Ok(PasskeyRow {
            id,
            user_id,
            name,
            created_at_ms: now,
            last_used_at_ms: None,
            backup_eligible: cred.backup_eligible,
            backup_state: cred.backup_state,
            clone_warning: false,
        })
    }

    /// `POST /passkeys/authenticate/options`: a discoverable sign-in (no `allowCredentials`),
    /// rate limited per IP (`passkey_login`).
    pub async fn start_authentication(&self, client: &ClientInfo) -> Result<Ceremony, PasskeyError> {
        let webauthn = self.webauthn()?;
        self.limit(Scope::PasskeyLogin, client).await?;
        let (rcr, state) = webauthn.start_discoverable_authentication().map_err(|_| PasskeyError::InvalidCredential)?;
        let options = serde_json::to_value(&rcr).map_err(|_| PasskeyError::InvalidCredential)?;
        let state = serde_json::to_string(&state).map_err(|_| PasskeyError::InvalidCredential)?;
        let challenge_id = self.save_ceremony(None, AUTHENTICATION, &state).await?;
        Ok(Ceremony { challenge_id, options })
    }

    /// `POST /passkeys/authenticate/finish`: verifies the assertion against the passkey its
    /// user handle and credential id name, updates the passkey's counter and flags, and starts a
    /// session, consuming the ceremony, in one transaction. Rate limited per IP
    /// (`passkey_login_finish`). A counter that went backwards flags the passkey (committed)
    /// and refuses the sign-in.
    pub async fn finish_authentication(
        &self,
        challenge_id: Uuid,
        credential: Value,
        audience: Audience,
        client: &ClientInfo,
    ) -> Result<Completion, PasskeyError> {
        let webauthn = self.webauthn()?;
        self.limit(Scope::PasskeyLoginFinish, client).await?;
        let credential: PublicKeyCredential =
            serde_json::from_value(credential).map_err(|_| PasskeyError::InvalidCredential)?;
        let (user_uuid, credential_id) =
            webauthn.identify_discoverable_authentication(&credential).map_err(|_| PasskeyError::InvalidCredential)?;
        let user_id = UserId(user_uuid);
        let mut tx = self.core.store.begin().await?;
        let state = self.open_ceremony(&mut tx, challenge_id, AUTHENTICATION, None).await?;
        let state: DiscoverableAuthentication =
            serde_json::from_str(&state).map_err(|_| PasskeyError::InvalidChallenge)?;
        let stored = tx.passkey_for_update(credential_id, user_id).await?.ok_or(PasskeyError::InvalidCredential)?;
        let mut passkey: Passkey =
            serde_json::from_str(&stored.credential).map_err(|_| PasskeyError::InvalidCredential)?;
        let now = self.core.now_ms();
        let result = match webauthn.finish_discoverable_authentication(
            &credential,
            state,
            &[DiscoverableKey::from(&passkey)],
        ) {
            Ok(r) => r,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                tx.set_passkey_clone_warning(stored.id, now).await?;
                let email = tx.user_by_id(user_id).await?.map(|u| u.email).unwrap_or_default();
                let event = DomainEvent::PasskeyCloneWarning {
                    user_id,
                    email: &email,
                    id: stored.id,
                    stored_counter: stored.sign_count,
                };
                self.core.record(&mut tx, &Actor::anonymous(client), &event).await?;
                tx.commit().await?;
                tracing::warn!(passkey_id = %stored.id, "passkey signature counter went backwards; sign-in refused");
                return Err(PasskeyError::PossibleClone);
            }
            Err(e) => {
                tracing::debug!(error = %e, "passkey assertion refused");
                return Err(PasskeyError::InvalidCredential);
            }
        };
        if !result.user_verified() {
            return Err(PasskeyError::InvalidCredential);
        }
        passkey.update_credential(&result);
        let record = serde_json::to_string(&passkey).map_err(|_| PasskeyError::InvalidCredential)?;
        tx.passkey_used(&PasskeyUse {
            id: stored.id,
            credential: &record,
            sign_count: i64::from(result.counter()),
            user_verified: result.user_verified(),
            backup_eligible: result.backup_eligible(),
            backup_state: result.backup_state(),
            now_ms: now,
        })
        .await?;
        let user = tx.user_by_id(user_id).await?.ok_or(PasskeyError::InvalidCredential)?;
        tx.consume_ceremony(challenge_id, now).await?;
        let method = Method::Passkey { id: stored.id, synced: result.backup_eligible() };
        let verified = Verified::new(user, method).with("passkey_id", stored.id.to_string());
        Ok(self.signins.complete(tx, verified, audience, StartIn::Default, client).await?)
    }

    /// The user's passkeys, oldest first.
    pub async fn list(&self, user_id: UserId) -> Result<Vec<PasskeyRow>, StoreError> {
        self.core.store.passkeys_of(user_id).await
    }

    /// Renames one of the signed-in user's passkeys.
    pub async fn rename(&self, who: &Principal, id: Uuid, name: &str, client: &ClientInfo) -> Result<(), PasskeyError> {
        let name = valid_name(name.trim())?;
        let user_id = who.user_id();
        let mut tx = self.core.store.begin().await?;
        if !tx.rename_passkey(user_id, id, &name, self.core.now_ms()).await? {
            return Err(PasskeyError::NotFound);
        }
        let email = tx.user_by_id(user_id).await?.map(|u| u.email).unwrap_or_default();
        let event = DomainEvent::PasskeyRenamed { user_id, email: &email, id, name: &name };
        self.core.record(&mut tx, &Actor::user(user_id, client), &event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes one of the signed-in user's passkeys: a privileged session (a recent sign-in, or
    /// `current_password`), and never the last way to sign in.
    pub async fn delete(
        &self,
        who: &Principal,
        id: Uuid,
        current_password: Option<&str>,
        client: &ClientInfo,
    ) -> Result<(), PasskeyError> {
        self.core.require_privileged(who, current_password).await?;
        let user_id = who.user_id();
        let mut tx = self.core.store.begin().await?;
        let name = tx.passkey_name(user_id, id).await?.ok_or(PasskeyError::NotFound)?;
        if tx.count_sign_in_methods(user_id).await? <= 1 {
            return Err(PasskeyError::LastMethod);
        }
        tx.delete_passkey(user_id, id).await?;
        let email = tx.user_by_id(user_id).await?.map(|u| u.email).unwrap_or_default();
        let credential = SignInMethod::Passkey { id, name: &name, synced: false };
        let event = DomainEvent::CredentialRemoved { user_id, email: &email, credential };
        self.core.record(&mut tx, &Actor::user(user_id, client), &event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes ceremonies that expired more than an hour ago (the cleanup worker).
    pub async fn cleanup(&self) -> Result<u64, StoreError> {
        self.core.store.cleanup_ceremonies(self.core.now_ms() - CEREMONY_KEEP_MS).await
    }
}

/// A passkey name: trimmed, 1 to 255 characters, no control, bidirectional or other invisible
/// characters (the name is shown in the account page and the security emails).
fn valid_name(name: &str) -> Result<String, PasskeyError> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME_CHARS || crate::domain::has_hidden_characters(name) {
        return Err(PasskeyError::InvalidName);
    }
    Ok(name.to_owned())
}

/// `"<platform> • <authenticator type> • <Mon YYYY>"` (behavior.md §8), from the page's
/// platform hint or else the User-Agent, and whether the credential can be synced.
pub fn generated_name(platform_hint: Option<&str>, user_agent: &str, synced: bool, now_ms: i64) -> String {
    let hint = platform_hint.unwrap_or_default().to_ascii_lowercase();
    let ua = user_agent;
    let has = |h: &str, u: &str| hint.contains(h) || ua.contains(u);
    let platform = if has("iphone", "iPhone") {
        "iPhone"
    } else if has("ipad", "iPad") {
        "iPad"
    } else if has("android", "Android") {
        "Android Phone"
    } else if has("mac", "Macintosh") {
        "Mac"
    } else if has("windows", "Windows") {
        "Windows PC"
    } else if has("chrome os", "CrOS") {
        "Chromebook"
    } else if has("linux", "Linux") {
        "Linux PC"
    } else {
        "This Device"
    };
    let kind = match platform {
        _ if synced => "Synced Passkey",
        "iPhone" | "iPad" => "Face ID",
        "Mac" => "Touch ID",
        "Windows PC" => "Windows Hello",
        "Android Phone" => "Android Biometrics",
        "Chromebook" => "ChromeOS Biometrics",
        _ => "Device Passkey",
    };
    // "Mon, 23 Nov 2026 18:33:04 GMT" → "Nov 2026"
    let date = http_date(now_ms);
    let month_year: Vec<&str> = date.split(' ').skip(2).take(2).collect();
    format!("{platform} • {kind} • {}", month_year.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_platform_and_the_kind_of_passkey() {
        let nov_2026 = 1_795_000_000_000;
        let mac = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36";
        assert_eq!(generated_name(None, mac, false, nov_2026), "Mac • Touch ID • Nov 2026");
        assert_eq!(generated_name(None, mac, true, nov_2026), "Mac • Synced Passkey • Nov 2026");
        assert_eq!(generated_name(Some("Windows"), "", false, nov_2026), "Windows PC • Windows Hello • Nov 2026");
        assert_eq!(generated_name(None, "curl/8", false, nov_2026), "This Device • Device Passkey • Nov 2026");
    }

    #[test]
    fn names_are_bounded_and_printable() {
        assert!(valid_name("").is_err());
        assert!(valid_name(&"x".repeat(256)).is_err());
        assert!(valid_name("a\u{7}b").is_err());
        assert_eq!(valid_name(&"é".repeat(255)).ok().map(|n| n.chars().count()), Some(255));
    }

    #[test]
    fn options_require_a_discoverable_credential_and_user_verification() {
        let mut o = json!({"publicKey": {"authenticatorSelection": {"residentKey": "discouraged", "requireResidentKey": false}}});
        require_resident_key(&mut o);
        assert_eq!(
            o["publicKey"]["authenticatorSelection"],
            json!({"residentKey": "required", "requireResidentKey": true, "userVerification": "required"})
        );
    }

    #[test]
    fn the_relying_party_is_the_public_url_of_a_domain() {
        assert!(relying_party("https://auth.example.com").is_some());
        assert!(relying_party("http://localhost:8080").is_some());
        assert!(relying_party("http://127.0.0.1:8080").is_none(), "WebAuthn needs a domain, not an IP address");
        assert!(relying_party("").is_none());
    }
}
