//! Keys derived from the signing key material, so that no extra secret has to be configured
//! and every instance sharing `AUTHARA_JWT_KEYS` derives the same ones: the HMAC key of
//! verification codes, the key that seals codes inside the outbox, and the key that derives a
//! refresh token's successor. Retiring the active signing key retires them too (codes in
//! flight and grace-window replays then fail safe: a new code, a new login).

use ring::{aead, hmac};

use super::keys::SigningKeys;

/// The derived keys.
pub struct Secrets {
    code: hmac::Key,
    successor: hmac::Key,
    device: hmac::Key,
    remember: hmac::Key,
    seal: aead::LessSafeKey,
    /// Keys that seal second-factor secrets, one per configured signing key (by kid), and the
    /// active one's kid. A secret names the kid it was sealed under, so that rotating the
    /// active key does not lock anyone out: it is opened under its own key while that key is
    /// still configured, and sealed again under the active one when it is next used.
    factor: Vec<(String, aead::LessSafeKey)>,
    factor_active: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets([redacted])")
    }
}

/// Why sealed data could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sealed value is malformed or was sealed with another key")]
pub struct Unsealable;

impl Secrets {
    pub fn derive(keys: &SigningKeys) -> Result<Self, String> {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"authara derived keys\0");
        if let Some((_, secret)) = keys.keys.iter().find(|(k, _)| *k == keys.active_kid) {
            ctx.update(secret.expose_secret());
        }
        if let Some(ed) = &keys.ed25519 {
            ctx.update(ed.pkcs8.expose_secret());
        }
        let root = hmac::Key::new(hmac::HMAC_SHA256, ctx.finish().as_ref());
        let sub = |label: &[u8]| hmac::sign(&root, label);
        let seal_bytes = sub(b"seal");
        let seal = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, &seal_bytes.as_ref()[..32])
            .map_err(|_| "cannot derive the sealing key".to_owned())?;
        let factor_key = |material: &[u8]| -> Result<aead::LessSafeKey, String> {
            let root = hmac::Key::new(hmac::HMAC_SHA256, b"authara second-factor secrets");
            let bytes = hmac::sign(&root, material);
            let key = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, &bytes.as_ref()[..32])
                .map_err(|_| "cannot derive the second-factor key".to_owned())?;
            Ok(aead::LessSafeKey::new(key))
        };
        let mut factor = Vec::new();
        for (kid, secret) in &keys.keys {
            factor.push((kid.clone(), factor_key(secret.expose_secret())?));
        }
        if let Some(ed) = &keys.ed25519 {
            factor.push((ed.kid.clone(), factor_key(ed.pkcs8.expose_secret())?));
        }
        let factor_active = match &keys.ed25519 {
            Some(ed) if !keys.keys.iter().any(|(k, _)| *k == keys.active_kid) => ed.kid.clone(),
            _ => keys.active_kid.clone(),
        };
        Ok(Self {
            code: hmac::Key::new(hmac::HMAC_SHA256, sub(b"verification codes").as_ref()),
            successor: hmac::Key::new(hmac::HMAC_SHA256, sub(b"refresh successors").as_ref()),
            device: hmac::Key::new(hmac::HMAC_SHA256, sub(b"device cookies").as_ref()),
            remember: hmac::Key::new(hmac::HMAC_SHA256, sub(b"remembered browsers").as_ref()),
            seal: aead::LessSafeKey::new(seal),
            factor,
            factor_active,
        })
    }

    /// HMAC of a verification code, bound to its challenge.
    pub fn code_hash(&self, challenge: uuid::Uuid, code: &str) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.code);
        ctx.update(challenge.as_bytes());
        ctx.update(code.as_bytes());
        ctx.sign().as_ref().to_vec()
    }

    /// The successor of a refresh token: the same for every replay of the token, so that
    /// concurrent refreshes in the grace window all receive one successor (base64url, 43 chars).
    pub fn refresh_successor(&self, token: &str) -> String {
        use base64::Engine as _;
        let tag = hmac::sign(&self.successor, token.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag.as_ref()[..32])
    }

    /// A device token for `email` (OWASP "device cookies"): a random nonce, the issue time and an
    /// HMAC binding both to the account, without revealing the address.
    pub fn device_token(&self, email: &str, now_ms: i64) -> String {
        use base64::Engine as _;
        use rand::RngCore as _;
        let mut body = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut body[..16]);
        body[16..].copy_from_slice(&now_ms.to_be_bytes());
        let tag = self.device_tag(email, &body);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}", b64.encode(body), b64.encode(&tag[..16]))
    }

    /// The device id of a token issued for `email` no longer than `max_age_ms` ago, and when
    /// it was issued.
    pub fn device_id(&self, token: &str, email: &str, now_ms: i64, max_age_ms: i64) -> Option<(String, i64)> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (body_b64, tag_b64) = token.split_once('.')?;
        let body = b64.decode(body_b64).ok()?;
        let tag = b64.decode(tag_b64).ok()?;
        if body.len() != 24 || tag.len() != 16 {
            return None;
        }
        let expected = self.device_tag(email, &body);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..16], tag.as_slice())) {
            return None;
        }
        let issued = i64::from_be_bytes(body[16..].try_into().ok()?);
        (now_ms.saturating_sub(issued) <= max_age_ms).then(|| (b64.encode(&body[..16]), issued))
    }

    fn device_tag(&self, email: &str, body: &[u8]) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.device);
        ctx.update(email.as_bytes());
        ctx.update(&[0]);
        ctx.update(body);
        ctx.sign().as_ref().to_vec()
    }

    /// Seals a second-factor secret for `user`: `kid.base64url(nonce ‖ ciphertext)`.
    pub fn seal_factor(&self, plain: &[u8], user: uuid::Uuid) -> String {
        let Some((kid, key)) = self.factor.iter().find(|(k, _)| *k == self.factor_active) else {
            return String::new();
        };
        format!("{kid}.{}", seal_with(key, plain, user.as_bytes()))
    }

    /// Opens a second-factor secret of `user`; whether it was sealed under the active key
    /// (`false`: seal it again).
    pub fn open_factor(&self, sealed: &str, user: uuid::Uuid) -> Result<(Vec<u8>, bool), Unsealable> {
        let (kid, rest) = sealed.rsplit_once('.').ok_or(Unsealable)?;
        let (_, key) = self.factor.iter().find(|(k, _)| k == kid).ok_or(Unsealable)?;
        Ok((open_with(key, rest, user.as_bytes())?, kid == self.factor_active))
    }

    /// The MAC of a remembered browser's cookie over what it is bound to.
    pub fn remember_tag(&self, parts: &[&[u8]]) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.remember);
        for p in parts {
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p);
        }
        ctx.sign().as_ref().to_vec()
    }

    /// Seals `plain` (base64url of nonce ‖ ciphertext), bound to `context`.
    pub fn seal(&self, plain: &[u8], context: &[u8]) -> String {
        seal_with(&self.seal, plain, context)
    }

    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<Vec<u8>, Unsealable> {
        open_with(&self.seal, sealed, context)
    }
}

/// base64url(nonce ‖ ciphertext ‖ tag) of `plain` under `key`, bound to `context`.
fn seal_with(key: &aead::LessSafeKey, plain: &[u8], context: &[u8]) -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let mut buf = plain.to_vec();
    // Sealing in place with a fresh random nonce cannot fail for inputs this small.
    let _ = key.seal_in_place_append_tag(aead::Nonce::assume_unique_for_key(nonce), aead::Aad::from(context), &mut buf);
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
}

fn open_with(key: &aead::LessSafeKey, sealed: &str, context: &[u8]) -> Result<Vec<u8>, Unsealable> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sealed).map_err(|_| Unsealable)?;
    if raw.len() < 12 {
        return Err(Unsealable);
    }
    let (nonce, rest) = raw.split_at(12);
    let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| Unsealable)?;
    let mut buf = rest.to_vec();
    let plain = key.open_in_place(nonce, aead::Aad::from(context), &mut buf).map_err(|_| Unsealable)?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretBytes;

    fn secrets(byte: u8) -> Secrets {
        Secrets::derive(&SigningKeys {
            active_kid: "k".into(),
            keys: vec![("k".into(), SecretBytes::new(vec![byte; 32]))],
            ed25519: None,
            generated: Vec::new(),
        })
        .unwrap()
    }

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let s = secrets(1);
        let sealed = s.seal(b"123456", b"challenge-a");
        assert_eq!(s.open(&sealed, b"challenge-a").unwrap(), b"123456");
        assert!(s.open(&sealed, b"challenge-b").is_err());
        assert!(secrets(2).open(&sealed, b"challenge-a").is_err());
        assert_ne!(sealed, s.seal(b"123456", b"challenge-a"), "a fresh nonce every time");
    }

    #[test]
    fn device_tokens_belong_to_one_account_and_expire() {
        let s = secrets(1);
        let t = s.device_token("a@example.com", 1_000);
        let id = s.device_id(&t, "a@example.com", 2_000, 10_000).unwrap();
        assert_eq!(id.1, 1_000, "the issue time comes back");
        assert_eq!(s.device_id(&t, "a@example.com", 5_000, 10_000), Some(id), "stable id");
        assert!(s.device_id(&t, "b@example.com", 2_000, 10_000).is_none(), "bound to the account");
        assert!(s.device_id(&t, "a@example.com", 20_000, 10_000).is_none(), "expired");
        assert!(secrets(2).device_id(&t, "a@example.com", 2_000, 10_000).is_none(), "keyed");
        assert!(s.device_id("garbage.x", "a@example.com", 2_000, 10_000).is_none());
    }

    #[test]
    fn factor_secrets_open_under_the_key_they_were_sealed_with() {
        let user = uuid::Uuid::new_v4();
        let old = secrets(1);
        let sealed = old.seal_factor(b"JBSWY3DPEHPK3PXP", user);
        assert!(sealed.starts_with("k."), "{sealed}");
        assert_eq!(old.open_factor(&sealed, user), Ok((b"JBSWY3DPEHPK3PXP".to_vec(), true)));
        assert!(old.open_factor(&sealed, uuid::Uuid::new_v4()).is_err(), "bound to the user");
        // The active key rotated, the old one still configured: it opens, to be sealed again.
        let rotated = Secrets::derive(&SigningKeys {
            active_kid: "k2".into(),
            keys: vec![("k".into(), SecretBytes::new(vec![1; 32])), ("k2".into(), SecretBytes::new(vec![2; 32]))],
            ed25519: None,
            generated: Vec::new(),
        })
        .unwrap();
        assert_eq!(rotated.open_factor(&sealed, user), Ok((b"JBSWY3DPEHPK3PXP".to_vec(), false)));
        assert!(rotated.seal_factor(b"x", user).starts_with("k2."));
        assert!(secrets(2).open_factor(&sealed, user).is_err(), "another key does not open it");
    }

    #[test]
    fn successors_are_deterministic_and_keyed() {
        let s = secrets(1);
        assert_eq!(s.refresh_successor("t"), s.refresh_successor("t"));
        assert_ne!(s.refresh_successor("t"), s.refresh_successor("u"));
        assert_ne!(s.refresh_successor("t"), secrets(2).refresh_successor("t"));
        assert_eq!(s.refresh_successor("t").len(), 43);
    }
}
