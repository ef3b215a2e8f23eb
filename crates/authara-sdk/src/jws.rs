//! The compact JWS checks access tokens need, over `ring`: exactly two algorithms, each key
//! pinned to one, keys prepared once (an HMAC key schedule, an Ed25519 public key), header and
//! claims each decoded and parsed once.
//!
//! Strict on form: three segments, unpadded canonical base64url, a JSON header with a string
//! `alg` and a non-empty `kid`, no `crit` (no extension is understood, so any marked critical
//! must be refused, RFC 7515 §4.1.11).

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::{hmac, signature};
use serde::Deserialize;

/// The two algorithms authara signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Alg {
    Hs256,
    EdDsa,
}

/// A verification key, usable for its one algorithm.
#[derive(Clone)]
pub(crate) enum VerifyKey {
    Hmac(hmac::Key),
    Ed25519([u8; 32]),
}

/// A token taken apart, its signature not yet checked.
pub(crate) struct Unverified<'a> {
    pub(crate) alg: Alg,
    pub(crate) kid: String,
    signing_input: &'a str,
    payload: &'a str,
    signature: &'a str,
}

/// Why a token could not be taken apart or checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JwsError {
    Malformed,
    Algorithm,
    Signature,
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// The header's JSON is small; anything this large is not one of ours.
const MAX_HEADER: usize = 1024;

impl<'a> Unverified<'a> {
    pub(crate) fn parse(token: &'a str) -> Result<Self, JwsError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwsError::Malformed);
        };
        if header.is_empty() || payload.is_empty() || signature.is_empty() || header.len() > MAX_HEADER {
            return Err(JwsError::Malformed);
        }
        let header_json = URL_SAFE_NO_PAD.decode(header).map_err(|_| JwsError::Malformed)?;
        let parsed: Header<'_> = serde_json::from_slice(&header_json).map_err(|_| JwsError::Malformed)?;
        if parsed.crit.is_some() {
            return Err(JwsError::Malformed);
        }
        let alg = match parsed.alg.as_ref() {
            "HS256" => Alg::Hs256,
            "EdDSA" => Alg::EdDsa,
            _ => return Err(JwsError::Algorithm),
        };
        let kid = parsed.kid.filter(|k| !k.is_empty()).ok_or(JwsError::Malformed)?.into_owned();
        let signing_input = &token[..header.len() + 1 + payload.len()];
        Ok(Unverified { alg, kid, signing_input, payload, signature })
    }

    /// Checks the signature with `key`, then returns the payload's bytes.
    pub(crate) fn verify(&self, key: &VerifyKey) -> Result<Vec<u8>, JwsError> {
        let sig = URL_SAFE_NO_PAD.decode(self.signature).map_err(|_| JwsError::Signature)?;
        let ok = match (self.alg, key) {
            (Alg::Hs256, VerifyKey::Hmac(k)) => hmac::verify(k, self.signing_input.as_bytes(), &sig).is_ok(),
            (Alg::EdDsa, VerifyKey::Ed25519(pk)) => signature::UnparsedPublicKey::new(&signature::ED25519, pk)
                .verify(self.signing_input.as_bytes(), &sig)
                .is_ok(),
            // A key never verifies another algorithm than its own.
            _ => return Err(JwsError::Algorithm),
        };
        if !ok {
            return Err(JwsError::Signature);
        }
        URL_SAFE_NO_PAD.decode(self.payload).map_err(|_| JwsError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn hs256(header: &str, payload: &str, secret: &[u8]) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    fn key(secret: &[u8]) -> VerifyKey {
        VerifyKey::Hmac(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    #[test]
    fn a_signed_token_verifies_and_yields_its_payload() {
        let t = hs256(r#"{"alg":"HS256","kid":"k1","typ":"JWT"}"#, r#"{"a":1}"#, b"s");
        let u = Unverified::parse(&t).unwrap();
        assert_eq!((u.alg, u.kid.as_str()), (Alg::Hs256, "k1"));
        assert_eq!(u.verify(&key(b"s")).unwrap(), br#"{"a":1}"#);
        assert_eq!(u.verify(&key(b"other")).err(), Some(JwsError::Signature));
        assert_eq!(u.verify(&VerifyKey::Ed25519([0; 32])).err(), Some(JwsError::Algorithm));
    }

    #[test]
    fn tokens_of_another_form_are_refused() {
        let ok = hs256(r#"{"alg":"HS256","kid":"k1"}"#, "{}", b"s");
        let parse = |t: &str| Unverified::parse(t).err();
        assert_eq!(parse(&format!("{ok}.extra")), Some(JwsError::Malformed), "five segments (JWE) or more");
        assert_eq!(parse("a.b"), Some(JwsError::Malformed));
        let sig = ok.rsplit('.').next().unwrap();
        assert_eq!(
            parse(&format!("{}.{}.", b64(r#"{"alg":"HS256","kid":"k1"}"#), b64("{}"))),
            Some(JwsError::Malformed)
        );
        assert_eq!(
            parse(&format!("{}.{}.{sig}", b64(r#"{"alg":"none","kid":"k1"}"#), b64("{}"))),
            Some(JwsError::Algorithm)
        );
        assert_eq!(
            parse(&format!("{}.{}.{sig}", b64(r#"{"alg":"HS512","kid":"k1"}"#), b64("{}"))),
            Some(JwsError::Algorithm)
        );
        assert_eq!(parse(&format!("{}.{}.{sig}", b64(r#"{"alg":"HS256"}"#), b64("{}"))), Some(JwsError::Malformed));
        assert_eq!(
            parse(&format!("{}.{}.{sig}", b64(r#"{"alg":"HS256","kid":""}"#), b64("{}"))),
            Some(JwsError::Malformed)
        );
        let crit = format!("{}.{}.{sig}", b64(r#"{"alg":"HS256","kid":"k1","crit":["exp"]}"#), b64("{}"));
        assert_eq!(parse(&crit), Some(JwsError::Malformed), "no critical extension is understood");
        let padded = format!("{}=.{}.{sig}", b64(r#"{"alg":"HS256","kid":"k1"}"#), b64("{}"));
        assert_eq!(parse(&padded), Some(JwsError::Malformed));
        assert_eq!(parse(&format!("{}.{}.{sig}", b64("not json"), b64("{}"))), Some(JwsError::Malformed));
    }

    #[test]
    fn an_ed25519_signature_verifies_with_its_public_key_only() {
        use ring::signature::KeyPair as _;
        let rng = ring::rand::SystemRandom::new();
        let doc = signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = signature::Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        let input = format!("{}.{}", b64(r#"{"alg":"EdDSA","kid":"ed"}"#), b64(r#"{"a":1}"#));
        let t = format!("{input}.{}", URL_SAFE_NO_PAD.encode(pair.sign(input.as_bytes())));
        let public: [u8; 32] = pair.public_key().as_ref().try_into().unwrap();
        let u = Unverified::parse(&t).unwrap();
        assert!(u.verify(&VerifyKey::Ed25519(public)).is_ok());
        assert_eq!(u.verify(&VerifyKey::Ed25519([9; 32])).err(), Some(JwsError::Signature));
        // The public key as an HMAC secret (the classic confusion) is another algorithm.
        assert_eq!(u.verify(&key(&public)).err(), Some(JwsError::Algorithm));
    }
}
