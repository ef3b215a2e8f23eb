//! Access tokens: issuer, signing algorithm and keys, lifetime.

use std::time::Duration;

use base64::Engine as _;

use super::reader::Reader;
use super::server::APP_ENV;
use super::{SecretBytes, SecretString, declare_vars};

declare_vars! {
    /// `iss` claim of access tokens; required in prod.
    ISSUER = contract("AUTHARA_JWT_ISSUER", "authara");
    /// `HS256` or `EdDSA`: EdDSA signs access tokens with an Ed25519 key published at
    /// `/auth/.well-known/jwks.json`; HS256 keys in `AUTHARA_JWT_KEYS` keep verifying.
    ALGORITHM = extra("AUTHARA_JWT_ALGORITHM", "HS256");
    /// HS256 keys, `kid:base64secret,...`, each secret at least 32 bytes (or `_FILE`); required in prod,
    /// generated into the data dir in dev.
    KEYS = contract("AUTHARA_JWT_KEYS", "");
    /// The kid in `AUTHARA_JWT_KEYS` that signs new tokens (required with `AUTHARA_JWT_KEYS`).
    ACTIVE_KEY_ID = contract("AUTHARA_JWT_ACTIVE_KEY_ID", "");
    /// Ed25519 signing key, PKCS#8 PEM (or `_FILE`); required in prod with EdDSA, generated
    /// (`dev-ed25519.pem` in the data dir) in dev.
    EDDSA_PRIVATE_KEY = extra("AUTHARA_JWT_EDDSA_PRIVATE_KEY", "");
    /// With `EdDSA`: whether HS256 tokens signed with `AUTHARA_JWT_KEYS` still verify (during a
    /// migration from HS256). Default `false` under EdDSA, where the HMAC keys are then optional
    /// and unused; HS256 always accepts them.
    ACCEPT_HS256 = extra("AUTHARA_JWT_ACCEPT_HS256", "");
    /// Access token lifetime in minutes; shorter than the refresh token lifetime.
    ACCESS_TOKEN_TTL_MINUTES = contract("AUTHARA_ACCESS_TOKEN_TTL_MINUTES", "10");
}

/// `AUTHARA_JWT_ALGORITHM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with the keys of `AUTHARA_JWT_KEYS`.
    Hs256,
    /// Ed25519, the public key published in the JWKS.
    EdDsa,
}

/// Where the HS256 keys come from.
#[derive(Debug, Clone)]
pub enum JwtKeySource {
    /// `AUTHARA_JWT_KEYS`: `kid:base64secret,...`, every secret at least 32 bytes.
    Configured {
        /// Every key, in the order given.
        keys: Vec<(String, SecretBytes)>,
        /// `AUTHARA_JWT_ACTIVE_KEY_ID`.
        active_kid: String,
    },
    /// No HMAC keys (EdDSA only).
    None,
    /// dev only: generated once and persisted in the data directory.
    DevGenerated,
}

/// Access token settings.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// `AUTHARA_JWT_ISSUER`.
    pub issuer: String,
    /// `AUTHARA_JWT_ALGORITHM`.
    pub algorithm: JwtAlgorithm,
    /// `AUTHARA_JWT_KEYS` and `AUTHARA_JWT_ACTIVE_KEY_ID`.
    pub keys: JwtKeySource,
    /// `AUTHARA_JWT_EDDSA_PRIVATE_KEY`: PKCS#8 PEM; generated into the data dir in dev.
    pub ed25519_pem: Option<SecretString>,
    /// `AUTHARA_ACCESS_TOKEN_TTL_MINUTES`.
    pub access_ttl: Duration,
    /// `AUTHARA_JWT_ACCEPT_HS256`: HS256 tokens verify (always true with HS256).
    pub accept_hs256: bool,
}

/// Reads this area.
pub(super) fn build(r: &mut Reader<'_>, prod: bool) -> JwtConfig {
    let when_prod = format!(" when {}=prod", APP_ENV.name);
    let issuer = match r.raw(&ISSUER) {
        Some(i) => i,
        None if prod => r.required(&ISSUER, &when_prod),
        None => ISSUER.default.to_owned(),
    };
    let algorithm = match r.string(&ALGORITHM).to_ascii_uppercase().as_str() {
        "HS256" => JwtAlgorithm::Hs256,
        "EDDSA" => JwtAlgorithm::EdDsa,
        other => {
            r.invalid(&ALGORITHM, format!("expected HS256 or EdDSA, got {other:?}"));
            JwtAlgorithm::Hs256
        }
    };
    let ed25519_pem = r.secret(&EDDSA_PRIVATE_KEY);
    if prod && algorithm == JwtAlgorithm::EdDsa && ed25519_pem.is_none() {
        r.error(format!("{} is required{when_prod} and {}=EdDSA", EDDSA_PRIVATE_KEY.name, ALGORITHM.name));
    }
    let keys = match r.secret(&KEYS) {
        Some(raw) => {
            let keys = parse_keys(r, raw.expose_secret());
            let active_kid = r.required(&ACTIVE_KEY_ID, &format!(" when {} is set", KEYS.name));
            if !active_kid.is_empty() && !keys.iter().any(|(k, _)| *k == active_kid) {
                r.invalid(&ACTIVE_KEY_ID, format!("{active_kid:?} is not one of the kids in {}", KEYS.name));
            }
            JwtKeySource::Configured { keys, active_kid }
        }
        // Under EdDSA the HMAC keys are optional: nothing signs with them.
        None if algorithm == JwtAlgorithm::EdDsa => JwtKeySource::None,
        None if prod => {
            r.error(format!("{} is required{when_prod} (generate one with `authara keys generate`)", KEYS.name));
            JwtKeySource::DevGenerated
        }
        None => JwtKeySource::DevGenerated,
    };
    let accept_hs256 = match (algorithm, r.raw(&ACCEPT_HS256)) {
        (JwtAlgorithm::Hs256, None) => true,
        (JwtAlgorithm::EdDsa, None) => false,
        (_, Some(_)) => r.bool(&ACCEPT_HS256),
    };
    if algorithm == JwtAlgorithm::Hs256 && !accept_hs256 {
        r.invalid(&ACCEPT_HS256, format!("cannot be false when {} is HS256", ALGORITHM.name));
    }
    let minutes = r.positive(&ACCESS_TOKEN_TTL_MINUTES);
    let access_ttl = Duration::from_secs(u64::from(minutes) * 60);
    JwtConfig { issuer, algorithm, keys, ed25519_pem, access_ttl, accept_hs256 }
}

/// `kid:base64,kid2:base64`, standard padded base64, each key at least 32 bytes.
fn parse_keys(r: &mut Reader<'_>, raw: &str) -> Vec<(String, SecretBytes)> {
    let mut keys: Vec<(String, SecretBytes)> = Vec::new();
    let mut reported = false;
    let mut invalid = |r: &mut Reader<'_>, message: String| {
        reported = true;
        r.invalid(&KEYS, message);
    };
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((kid, b64)) = entry.split_once(':') else {
            invalid(r, "each entry must be kid:base64secret".to_owned());
            continue;
        };
        let kid = kid.trim();
        if kid.is_empty() {
            invalid(r, "a key has an empty kid".to_owned());
            continue;
        }
        match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
            Ok(bytes) if bytes.len() >= 32 => {
                if keys.iter().any(|(k, _)| k == kid) {
                    invalid(r, format!("kid {kid:?} is listed twice"));
                } else {
                    keys.push((kid.to_owned(), SecretBytes::new(bytes)));
                }
            }
            Ok(bytes) => invalid(r, format!("key {kid:?} is {} bytes; at least 32 are required", bytes.len())),
            Err(_) => invalid(r, format!("key {kid:?} is not valid standard base64")),
        }
    }
    if keys.is_empty() && !reported {
        r.invalid(&KEYS, "no key given");
    }
    keys
}
