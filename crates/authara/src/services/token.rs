//! Access tokens: JWTs with `kid`, claims exactly as behavior.md §2.1, HS256 (default) or EdDSA.
//!
//! Validation pins the algorithm per key (an HMAC kid only verifies HS256, the Ed25519 kid only
//! EdDSA), so `alg: none` and algorithm confusion fail; unknown kids, wrong issuer or audience,
//! and expiry (against the injected clock, no leeway) are rejected.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cache::BoundedMap;
use crate::config::JwtAlgorithm;
pub use crate::domain::Audience;
use crate::domain::{OrgId, OrgRole, PlatformRole, SessionId, UserId};
use crate::services::keys::SigningKeys;

/// Access-token claims, in the reference's field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sid: Uuid,
    pub org_id: Uuid,
    pub org_role: String,
    /// `null` when the user has no platform role.
    pub roles: Option<Vec<String>>,
    pub iss: String,
    pub sub: Uuid,
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    /// What the sign-in proved (RFC 8176: `pwd`, `otp`, `hwk`, `swk`, `fed`, and `mfa` with a
    /// second factor). Absent from tokens of sessions older than two-step verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// When the user last authenticated in this session (unix seconds; a step-up renews it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

/// Why a token was refused (all answer 401; the variants are for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown key id")]
    UnknownKey,
    #[error("bad signature or algorithm")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    #[error("invalid claims")]
    InvalidClaims,
    #[error("signing failed")]
    Signing,
}

/// What an access token says, in typed form, for minting.
#[derive(Debug, Clone, Copy)]
pub struct Grant<'a> {
    pub user: UserId,
    pub session: SessionId,
    pub org: OrgId,
    pub org_role: OrgRole,
    pub roles: &'a [PlatformRole],
    pub audience: Audience,
    /// The session's `amr` (space-separated) and authentication time.
    pub amr: &'a str,
    pub auth_time_ms: i64,
}

pub struct TokenService {
    issuer: String,
    ttl_secs: i64,
    algorithm: Algorithm,
    active_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, (Algorithm, DecodingKey)>,
    jwks: bytes::Bytes,
    key_count: usize,
    verified: VerifiedCache,
}

/// How many verified tokens are remembered. Claims of tokens whose signature, key and fixed
/// claims were already checked, keyed by the token's exact text (only tokens that verified get
/// in, so the map cannot be filled with junk). A repeated session check skips the base64 and
/// JSON decoding and the HMAC; expiry, audience and revocation are still checked on every call.
/// The same idea as the JWT cache of API gateways.
const VERIFIED_CACHE_MAX: usize = 4096;

type VerifiedCache = BoundedMap<Box<str>, Arc<AccessClaims>>;

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService").field("active_kid", &self.active_kid).finish_non_exhaustive()
    }
}

impl TokenService {
    pub fn new(
        keys: &SigningKeys,
        algorithm: JwtAlgorithm,
        issuer: &str,
        ttl: std::time::Duration,
    ) -> Result<Self, String> {
        let mut verifying = HashMap::new();
        for (kid, secret) in &keys.keys {
            verifying.insert(kid.clone(), (Algorithm::HS256, DecodingKey::from_secret(secret.expose_secret())));
        }
        let mut jwks_keys = Vec::new();
        let (alg, signing) = match (algorithm, &keys.ed25519) {
            (JwtAlgorithm::EdDsa, Some(ed)) => {
                let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&ed.public);
                let decoding = DecodingKey::from_ed_components(&x).map_err(|e| e.to_string())?;
                verifying.insert(ed.kid.clone(), (Algorithm::EdDSA, decoding));
                jwks_keys.push(serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "x": x, "kid": ed.kid, "alg": "EdDSA", "use": "sig"
                }));
                (Algorithm::EdDSA, EncodingKey::from_ed_der(ed.pkcs8.expose_secret()))
            }
            (JwtAlgorithm::EdDsa, None) => return Err("EdDSA selected but no Ed25519 key loaded".to_owned()),
            (JwtAlgorithm::Hs256, _) => {
                let secret = keys
                    .keys
                    .iter()
                    .find(|(k, _)| *k == keys.active_kid)
                    .map(|(_, s)| s)
                    .ok_or_else(|| format!("active kid {} has no key", keys.active_kid))?;
                (Algorithm::HS256, EncodingKey::from_secret(secret.expose_secret()))
            }
        };
        let jwks = serde_json::to_vec(&serde_json::json!({ "keys": jwks_keys })).map_err(|e| e.to_string())?;
        Ok(Self {
            issuer: issuer.to_owned(),
            ttl_secs: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
            algorithm: alg,
            active_kid: keys.active_kid.clone(),
            signing,
            key_count: verifying.len(),
            verifying,
            jwks: jwks.into(),
            verified: BoundedMap::new(VERIFIED_CACHE_MAX),
        })
    }

    pub fn active_kid(&self) -> &str {
        &self.active_kid
    }

    pub fn algorithm_name(&self) -> &'static str {
        match self.algorithm {
            Algorithm::EdDSA => "EdDSA",
            _ => "HS256",
        }
    }

    pub fn key_count(&self) -> usize {
        self.key_count
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// The JWKS document (public keys only; HMAC secrets are never published).
    pub fn jwks(&self) -> bytes::Bytes {
        self.jwks.clone()
    }

    /// Mints an access token at `now_ms`.
    pub fn mint(&self, g: &Grant<'_>, now_ms: i64) -> Result<String, TokenError> {
        let iat = now_ms.div_euclid(1000);
        let claims = AccessClaims {
            sid: g.session.0,
            org_id: g.org.0,
            org_role: g.org_role.as_str().to_owned(),
            roles: if g.roles.is_empty() { None } else { Some(g.roles.iter().map(|r| r.claim().to_owned()).collect()) },
            iss: self.issuer.clone(),
            sub: g.user.0,
            aud: vec![g.audience.as_str().to_owned()],
            exp: iat + self.ttl_secs,
            iat,
            amr: (!g.amr.is_empty()).then(|| g.amr.split(' ').map(str::to_owned).collect()),
            auth_time: (g.auth_time_ms > 0).then(|| g.auth_time_ms.div_euclid(1000)),
        };
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.active_kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.signing).map_err(|_| TokenError::Signing)
    }

    /// Verifies signature, key, issuer, audience (`None` = either) and expiry at `now_ms`.
    pub fn verify(
        &self,
        token: &str,
        audience: Option<Audience>,
        now_ms: i64,
    ) -> Result<Arc<AccessClaims>, TokenError> {
        let claims = match self.verified.get(token, now_ms) {
            Some(c) => c,
            None => {
                let c = Arc::new(self.verify_signature(token)?);
                self.check_fixed_claims(&c)?;
                let until = c.exp.saturating_mul(1000).saturating_add(1);
                self.verified.insert(token.into(), c.clone(), now_ms, until);
                c
            }
        };
        if now_ms > claims.exp.saturating_mul(1000) {
            return Err(TokenError::Expired);
        }
        let aud_ok = match audience {
            Some(a) => claims.aud.iter().any(|x| x == a.as_str()),
            None => claims.aud.iter().any(|x| Audience::parse(x).is_ok()),
        };
        if !aud_ok {
            return Err(TokenError::WrongAudience);
        }
        Ok(claims)
    }

    /// The checks that depend only on the token: issuer, ids, known roles.
    fn check_fixed_claims(&self, claims: &AccessClaims) -> Result<(), TokenError> {
        if claims.iss != self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if claims.sub.is_nil()
            || claims.sid.is_nil()
            || claims.org_id.is_nil()
            || claims.org_role.trim().is_empty()
            || OrgRole::parse(&claims.org_role).is_err()
            || claims.roles.iter().flatten().any(|r| PlatformRole::from_claim(r).is_none())
        {
            return Err(TokenError::InvalidClaims);
        }
        Ok(())
    }

    /// Checks only the signature and key (no expiry): logout uses it to find the session of
    /// an expired access token.
    pub fn verify_signature(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let (alg, key) = self.verifying.get(&kid).ok_or(TokenError::UnknownKey)?;
        if header.alg != *alg {
            return Err(TokenError::BadSignature);
        }
        let mut validation = Validation::new(*alg);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<AccessClaims>(token, key, &validation).map(|d| d.claims).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature | jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                TokenError::BadSignature
            }
            jsonwebtoken::errors::ErrorKind::Json(_) => TokenError::InvalidClaims,
            _ => TokenError::Malformed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretBytes;
    use crate::services::keys::Ed25519Key;

    fn keys(active: &str) -> SigningKeys {
        SigningKeys {
            active_kid: active.to_owned(),
            keys: vec![
                ("old".to_owned(), SecretBytes::new(vec![1; 32])),
                ("new".to_owned(), SecretBytes::new(vec![2; 32])),
            ],
            ed25519: None,
            generated: Vec::new(),
        }
    }

    fn svc(active: &str) -> TokenService {
        TokenService::new(&keys(active), JwtAlgorithm::Hs256, "authara", std::time::Duration::from_secs(600)).unwrap()
    }

    const NOW: i64 = 1_800_000_000_000;

    fn grant(roles: &[PlatformRole], audience: Audience) -> Grant<'_> {
        Grant {
            user: UserId::new(),
            session: SessionId::new(),
            org: OrgId::new(),
            org_role: OrgRole::Owner,
            roles,
            audience,
            amr: "pwd otp mfa",
            auth_time_ms: NOW - 5_000,
        }
    }

    fn mint(s: &TokenService, aud: Audience) -> String {
        s.mint(&grant(&[PlatformRole::Admin], aud), NOW).unwrap()
    }

    fn part(token: &str, i: usize) -> serde_json::Value {
        let raw = token.split('.').nth(i).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw).unwrap()).unwrap()
    }

    #[test]
    fn claims_and_header_are_the_contracts() {
        let s = svc("new");
        let t = mint(&s, Audience::App);
        let h = part(&t, 0);
        assert_eq!(h["alg"], "HS256");
        assert_eq!(h["kid"], "new");
        assert_eq!(h["typ"], "JWT");
        let c = part(&t, 1);
        let keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
        // The contract's claims, and RFC 8176's `amr` with `auth_time` (OpenID Connect Core §2).
        let mut expected =
            vec!["sid", "org_id", "org_role", "roles", "iss", "sub", "aud", "exp", "iat", "amr", "auth_time"];
        expected.sort_unstable();
        let mut got = keys.clone();
        got.sort_unstable();
        assert_eq!(got, expected);
        assert_eq!(c["aud"], serde_json::json!(["app"]));
        assert_eq!(c["roles"], serde_json::json!(["authara:admin"]));
        assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 600);
        assert_eq!(c["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
        assert_eq!(c["auth_time"].as_i64().unwrap(), (NOW - 5_000) / 1000);
        let none = s.mint(&grant(&[], Audience::App), NOW).unwrap();
        assert!(part(&none, 1)["roles"].is_null(), "roles is null without platform roles");
    }

    #[test]
    fn verification_rejects_every_forgery() {
        let s = svc("new");
        let t = mint(&s, Audience::App);
        assert!(s.verify(&t, Some(Audience::App), NOW).is_ok());
        assert_eq!(s.verify(&t, Some(Audience::Admin), NOW), Err(TokenError::WrongAudience));
        assert_eq!(s.verify(&t, Some(Audience::App), NOW + 601_000), Err(TokenError::Expired));
        assert!(s.verify(&t, Some(Audience::App), NOW + 600_000).is_ok(), "valid up to exp");

        // Tampered payload.
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        let mut claims = part(&t, 1);
        claims["sub"] = serde_json::json!(Uuid::new_v4());
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
        assert_eq!(s.verify(&parts.join("."), Some(Audience::App), NOW), Err(TokenError::BadSignature));

        // alg: none.
        let none_header =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"new","typ":"JWT"}"#);
        let forged = format!("{none_header}.{}.", t.split('.').nth(1).unwrap());
        assert!(s.verify(&forged, Some(Audience::App), NOW).is_err());

        // Unknown kid, signed with a key we do not have.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("ghost".to_owned());
        let claims: AccessClaims = serde_json::from_value(part(&t, 1)).unwrap();
        let ghost = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&[9; 32])).unwrap();
        assert_eq!(s.verify(&ghost, Some(Audience::App), NOW), Err(TokenError::UnknownKey));

        // Wrong issuer, same key.
        let other_iss =
            TokenService::new(&keys("new"), JwtAlgorithm::Hs256, "someone-else", std::time::Duration::from_secs(600))
                .unwrap();
        assert_eq!(s.verify(&mint(&other_iss, Audience::App), Some(Audience::App), NOW), Err(TokenError::WrongIssuer));
    }

    #[test]
    fn the_verified_cache_is_bounded_and_skips_no_per_call_check() {
        let s = svc("new");
        let t = mint(&s, Audience::App);
        assert!(s.verify(&t, Some(Audience::App), NOW).is_ok());
        assert!(s.verified.get(&Box::from(t.as_str()), NOW).is_some(), "a verified token is remembered");
        assert_eq!(s.verify(&t, Some(Audience::Admin), NOW), Err(TokenError::WrongAudience));
        assert_eq!(s.verify(&t, Some(Audience::App), NOW + 601_000), Err(TokenError::Expired));
        // A refused token is not remembered and stays refused.
        let other_iss =
            TokenService::new(&keys("new"), JwtAlgorithm::Hs256, "someone-else", std::time::Duration::from_secs(600))
                .unwrap();
        let foreign = mint(&other_iss, Audience::App);
        for _ in 0..2 {
            assert_eq!(s.verify(&foreign, Some(Audience::App), NOW), Err(TokenError::WrongIssuer));
        }
        assert!(s.verified.get(&Box::from(foreign.as_str()), NOW).is_none());
        // Bounded: many distinct tokens never grow it past its size.
        for _ in 0..VERIFIED_CACHE_MAX + 10 {
            assert!(s.verify(&mint(&s, Audience::App), Some(Audience::App), NOW).is_ok());
        }
        let len = s.verified.len();
        assert!(len <= VERIFIED_CACHE_MAX, "{len} entries");
    }

    #[test]
    fn rotated_keys_still_verify() {
        let before = svc("old");
        let t = mint(&before, Audience::App);
        let after = svc("new");
        assert!(after.verify(&t, Some(Audience::App), NOW).is_ok(), "a token signed by the old kid verifies");
        assert_eq!(part(&mint(&after, Audience::App), 0)["kid"], "new");
    }

    #[test]
    fn eddsa_signs_publishes_jwks_and_refuses_algorithm_confusion() {
        let (ed, _) = Ed25519Key::generate().unwrap();
        let mut k = keys("new");
        k.active_kid = ed.kid.clone();
        k.ed25519 = Some(ed.clone());
        let s = TokenService::new(&k, JwtAlgorithm::EdDsa, "authara", std::time::Duration::from_secs(600)).unwrap();
        let t = mint(&s, Audience::App);
        assert_eq!(part(&t, 0)["alg"], "EdDSA");
        assert!(s.verify(&t, Some(Audience::App), NOW).is_ok());
        let jwks: serde_json::Value = serde_json::from_slice(&s.jwks()).unwrap();
        assert_eq!(jwks["keys"][0]["kid"], ed.kid);
        assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 1, "HMAC secrets are never published");

        // An HS256 token whose kid names the Ed25519 key, keyed with the public key bytes.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(ed.kid.clone());
        let claims: AccessClaims = serde_json::from_value(part(&t, 1)).unwrap();
        let confused = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&ed.public)).unwrap();
        assert_eq!(s.verify(&confused, Some(Audience::App), NOW), Err(TokenError::BadSignature));
        // Old HS256 tokens keep verifying after the switch to EdDSA.
        assert!(s.verify(&mint(&svc("old"), Audience::App), Some(Audience::App), NOW).is_ok());
    }
}
