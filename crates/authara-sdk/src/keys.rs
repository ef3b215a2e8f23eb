//! Verification keys: HS256 secrets shared with the server, and Ed25519 public keys read from
//! its JWKS document.

use std::collections::HashMap;
use std::str::FromStr;

use base64::Engine as _;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use serde::Deserialize;

/// Why a key list or a key set document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// An entry is not `kid:base64secret`.
    #[error("each entry must be kid:base64secret")]
    Entry,
    /// An entry has an empty kid.
    #[error("a key has an empty kid")]
    EmptyKid,
    /// A kid appears twice.
    #[error("kid {0:?} is listed twice")]
    Duplicate(String),
    /// A secret is not standard (padded) base64.
    #[error("key {0:?} is not valid standard base64")]
    Base64(String),
    /// A secret is shorter than the server accepts.
    #[error("key {0:?} is shorter than 32 bytes")]
    TooShort(String),
    /// The list names no key.
    #[error("no key given")]
    Empty,
    /// A JWKS document that is not JSON of the expected shape.
    #[error("the JWKS document is malformed")]
    Jwks,
}

/// HS256 secrets, as the server's `AUTHARA_JWT_KEYS`: `kid:base64secret,kid2:base64secret`.
///
/// Give the verifier every kid the server may still sign with (during a rotation, the old and
/// the new). `Debug` shows the kids, never the secrets.
///
/// ```
/// let keys: authara_sdk::HmacKeys = "k1:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=".parse()?;
/// assert_eq!(keys.kids().collect::<Vec<_>>(), ["k1"]);
/// # Ok::<(), authara_sdk::KeyError>(())
/// ```
#[derive(Clone, Default)]
pub struct HmacKeys {
    keys: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for HmacKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmacKeys").field("kids", &self.kids().collect::<Vec<_>>()).finish()
    }
}

impl HmacKeys {
    /// Parses `kid:base64secret` entries separated by commas or new lines (the format of
    /// `AUTHARA_JWT_KEYS` and of its `_FILE` variant). Secrets are standard padded base64 of at
    /// least 32 bytes, as the server requires.
    pub fn parse(list: &str) -> Result<Self, KeyError> {
        let mut keys = HmacKeys::default();
        for entry in list.split([',', '\n']).map(str::trim).filter(|e| !e.is_empty()) {
            let (kid, b64) = entry.split_once(':').ok_or(KeyError::Entry)?;
            let kid = kid.trim();
            let secret = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| KeyError::Base64(kid.to_owned()))?;
            keys.insert(kid, secret)?;
        }
        if keys.keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(keys)
    }

    /// Adds one key (raw secret bytes, at least 32).
    pub fn insert(&mut self, kid: &str, secret: impl Into<Vec<u8>>) -> Result<(), KeyError> {
        let secret = secret.into();
        if kid.is_empty() {
            return Err(KeyError::EmptyKid);
        }
        if secret.len() < 32 {
            return Err(KeyError::TooShort(kid.to_owned()));
        }
        if self.keys.iter().any(|(k, _)| k == kid) {
            return Err(KeyError::Duplicate(kid.to_owned()));
        }
        self.keys.push((kid.to_owned(), secret));
        Ok(())
    }

    /// The key ids, in the order given.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(k, _)| k.as_str())
    }

    pub(crate) fn decoding_keys(&self) -> impl Iterator<Item = (String, DecodingKey)> + '_ {
        self.keys.iter().map(|(kid, secret)| (kid.clone(), DecodingKey::from_secret(secret)))
    }

    /// Each kid with a SHA-256 of its secret: tells two key lists apart without keeping more
    /// copies of the secrets.
    pub(crate) fn fingerprint(&self) -> impl Iterator<Item = (String, Vec<u8>)> + '_ {
        self.keys
            .iter()
            .map(|(kid, secret)| (kid.clone(), ring::digest::digest(&ring::digest::SHA256, secret).as_ref().to_vec()))
    }
}

impl FromStr for HmacKeys {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The keys a verifier holds at one moment, by algorithm: a kid only verifies the algorithm
/// of the set it is in, so a token cannot pick another algorithm for a known key.
#[derive(Default)]
pub(crate) struct KeySet {
    pub(crate) hs256: HashMap<String, DecodingKey>,
    pub(crate) eddsa: HashMap<String, DecodingKey>,
}

impl KeySet {
    pub(crate) fn len(&self) -> usize {
        self.hs256.len() + self.eddsa.len()
    }
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

/// An Ed25519 public key of a JWKS document.
pub(crate) struct JwksKey {
    pub(crate) kid: String,
    /// The public key, base64url.
    pub(crate) x: String,
    pub(crate) key: DecodingKey,
}

/// The Ed25519 keys of a JWKS document, read as jsonwebtoken's JWKs. Keys of other types or
/// uses, and entries it cannot read, are skipped (the server publishes only Ed25519 signing
/// keys); a document that is not a JWKS is an error.
pub(crate) fn parse_jwks(body: &[u8]) -> Result<Vec<JwksKey>, KeyError> {
    let doc: JwksDocument = serde_json::from_slice(body).map_err(|_| KeyError::Jwks)?;
    let mut keys: Vec<JwksKey> = Vec::new();
    for value in doc.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else { continue };
        let AlgorithmParameters::OctetKeyPair(okp) = &jwk.algorithm else { continue };
        let Some(kid) = jwk.common.key_id.as_deref().filter(|k| !k.is_empty()) else { continue };
        let usable = okp.curve == EllipticCurve::Ed25519
            && jwk.common.key_algorithm.is_none_or(|a| a == KeyAlgorithm::EdDSA)
            && jwk.common.public_key_use.as_ref().is_none_or(|u| *u == PublicKeyUse::Signature)
            && !keys.iter().any(|k| k.kid == kid);
        // An Ed25519 public key is 32 bytes (43 base64url characters); one of another length
        // could verify nothing.
        let ed25519 = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&okp.x).is_ok_and(|b| b.len() == 32);
        if !(usable && ed25519) {
            continue;
        }
        if let Ok(key) = DecodingKey::from_jwk(&jwk) {
            keys.push(JwksKey { kid: kid.to_owned(), x: okp.x.clone(), key });
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K32: &str = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=";

    #[test]
    fn the_servers_key_list_format_parses() {
        let keys = HmacKeys::parse(&format!(" k1:{K32} ,k2:{K32}\nk3:{K32}\n")).unwrap();
        assert_eq!(keys.kids().collect::<Vec<_>>(), ["k1", "k2", "k3"]);
        assert!(!format!("{keys:?}").contains(K32), "Debug never shows a secret");
    }

    #[test]
    fn bad_key_lists_are_refused_with_the_reason() {
        assert_eq!(HmacKeys::parse("").unwrap_err(), KeyError::Empty);
        assert_eq!(HmacKeys::parse("k1").unwrap_err(), KeyError::Entry);
        assert_eq!(HmacKeys::parse(&format!(":{K32}")).unwrap_err(), KeyError::EmptyKid);
        assert_eq!(HmacKeys::parse("k1:not base64!").unwrap_err(), KeyError::Base64("k1".into()));
        assert_eq!(HmacKeys::parse("k1:c2hvcnQ=").unwrap_err(), KeyError::TooShort("k1".into()));
        assert_eq!(HmacKeys::parse(&format!("k1:{K32},k1:{K32}")).unwrap_err(), KeyError::Duplicate("k1".into()));
    }

    #[test]
    fn only_ed25519_signing_keys_are_taken_from_a_jwks() {
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32]);
        let other = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([8u8; 32]);
        let doc = serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "ed-1", "alg": "EdDSA", "use": "sig"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "ed-enc", "use": "enc"},
            {"kty": "OKP", "crv": "X25519", "x": x, "kid": "x"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "rsa"},
            {"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "short"},
            {"kty": "OKP", "crv": "Ed25519", "x": format!("{x}="), "kid": "padded"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "rs", "alg": "RS256"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": ""},
            {"kty": "OKP", "crv": "Ed25519", "x": x},
            {"kty": "OKP", "crv": "Ed25519", "x": other, "kid": "ed-1"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "ed-2"},
            "junk"
        ]});
        let keys = parse_jwks(doc.to_string().as_bytes()).unwrap();
        assert_eq!(keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), ["ed-1", "ed-2"]);
        assert_eq!(keys[0].x, x, "the first key of a kid counts");
        assert!(parse_jwks(b"{}").is_err());
        assert!(parse_jwks(b"<html>").is_err());
    }
}
