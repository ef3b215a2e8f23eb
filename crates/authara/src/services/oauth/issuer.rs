//! An OpenID issuer: its discovery document and signing keys (cached), and the verification of
//! the ID tokens it signs.
//!
//! Keys are fetched from the discovery document's `jwks_uri` and kept for [`KEYS_TTL`]. A token
//! signed with a key id we do not hold makes us fetch the set again (the provider rotated), but
//! at most once per [`REFETCH_FLOOR`]: a stream of forged key ids cannot make us hammer the
//! provider.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use super::client::{ProviderError, ProviderHttp};

/// How long a fetched key set is trusted before it is fetched again.
pub const KEYS_TTL: Duration = Duration::from_secs(3600);
/// The shortest time between two fetches of the key set.
pub const REFETCH_FLOOR: Duration = Duration::from_secs(30);
/// Clock skew allowed on `exp`.
const LEEWAY_MS: i64 = 60_000;

/// The parts of a discovery document we use.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// Why an ID token was refused.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    #[error("malformed ID token")]
    Malformed,
    #[error("ID token signed with an unknown key")]
    UnknownKey,
    #[error("ID token algorithm not accepted")]
    Algorithm,
    #[error("ID token rejected: {0}")]
    Invalid(String),
    #[error("ID token expired")]
    Expired,
    #[error("ID token nonce mismatch")]
    Nonce,
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// The claims of a verified ID token.
#[derive(Debug, Clone, Deserialize)]
pub struct IdClaims {
    pub sub: String,
    pub exp: i64,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: Option<serde_json::Value>,
}

impl IdClaims {
    /// `email_verified` is `true` (some providers send the string `"true"`).
    pub fn email_verified(&self) -> bool {
        match &self.email_verified {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => s == "true",
            _ => false,
        }
    }
}

#[derive(Default)]
struct Cached {
    discovery: Option<(Discovery, Instant)>,
    keys: Option<JwkSet>,
    keys_fetched: Option<Instant>,
}

/// One issuer, shared by every request.
pub struct Issuer {
    /// The configured issuer, without a trailing slash.
    issuer: String,
    /// Issuer values accepted in `iss` (Google also writes it without the scheme).
    accepted_iss: Vec<String>,
    http: ProviderHttp,
    cached: tokio::sync::Mutex<Cached>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

/// Asymmetric algorithms only: an `HS256` token "signed" with a public key is refused.
const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl Issuer {
    pub fn new(issuer: &str, http: ProviderHttp) -> Self {
        let issuer = issuer.trim_end_matches('/').to_owned();
        let mut accepted_iss = vec![issuer.clone(), format!("{issuer}/")];
        if issuer == "https://accounts.google.com" {
            accepted_iss.push("accounts.google.com".to_owned());
        }
        Self { issuer, accepted_iss, http, cached: tokio::sync::Mutex::default() }
    }

    /// The discovery document (cached like the keys).
    pub async fn discovery(&self) -> Result<Discovery, ProviderError> {
        let mut cached = self.cached.lock().await;
        self.discovery_in(&mut cached).await
    }

    async fn discovery_in(&self, cached: &mut Cached) -> Result<Discovery, ProviderError> {
        if let Some((d, at)) = &cached.discovery
            && at.elapsed() < KEYS_TTL
        {
            return Ok(d.clone());
        }
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let d: Discovery = self.http.get_json(&url, None).await?;
        if d.issuer.trim_end_matches('/') != self.issuer {
            return Err(ProviderError::Malformed(format!(
                "discovery names issuer {:?}, configured {:?}",
                d.issuer, self.issuer
            )));
        }
        cached.discovery = Some((d.clone(), Instant::now()));
        Ok(d)
    }

    /// The key for `kid` (and `alg`), fetching the set when it is stale or, past the floor,
    /// when the key is unknown.
    async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<Jwk, IdTokenError> {
        let mut cached = self.cached.lock().await;
        let fresh = cached.keys_fetched.is_some_and(|t| t.elapsed() < KEYS_TTL);
        if fresh && let Some(k) = cached.keys.as_ref().and_then(|s| find(s, kid, alg)) {
            return Ok(k);
        }
        let may_fetch = cached.keys_fetched.is_none_or(|t| t.elapsed() >= REFETCH_FLOOR);
        if may_fetch {
            let d = self.discovery_in(&mut cached).await?;
            // Counted as a fetch even if it fails, so a failing provider is not asked per request.
            cached.keys_fetched = Some(Instant::now());
            let set: JwkSet = self.http.get_json(&d.jwks_uri, None).await?;
            cached.keys = Some(set);
        }
        cached.keys.as_ref().and_then(|s| find(s, kid, alg)).ok_or(IdTokenError::UnknownKey)
    }

    /// Verifies an ID token: signature with the issuer's key, `iss`, `aud` = `client_id`,
    /// `exp` (against `now_ms`, one minute of leeway), and `nonce` equal to `expected_nonce`
    /// (compared in constant time; a token without one is refused).
    pub async fn verify(
        &self,
        token: &str,
        client_id: &str,
        expected_nonce: &str,
        now_ms: i64,
    ) -> Result<IdClaims, IdTokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| IdTokenError::Malformed)?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(IdTokenError::Algorithm);
        }
        let jwk = self.key(header.kid.as_deref(), header.alg).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| IdTokenError::Invalid(e.to_string()))?;
        let mut v = Validation::new(header.alg);
        v.set_audience(&[client_id]);
        v.set_issuer(&self.accepted_iss);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // `exp` is checked below against the injected clock.
        v.validate_exp = false;
        let data = jsonwebtoken::decode::<IdClaims>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                    IdTokenError::Malformed
                }
                _ => IdTokenError::Invalid(e.to_string()),
            }
        })?;
        let claims = data.claims;
        if claims.exp.saturating_mul(1000).saturating_add(LEEWAY_MS) <= now_ms {
            return Err(IdTokenError::Expired);
        }
        if claims.sub.trim().is_empty() {
            return Err(IdTokenError::Invalid("empty sub".to_owned()));
        }
        let given = claims.nonce.as_deref().unwrap_or_default();
        if expected_nonce.is_empty() || !bool::from(given.as_bytes().ct_eq(expected_nonce.as_bytes())) {
            return Err(IdTokenError::Nonce);
        }
        Ok(claims)
    }
}

/// The key with this id (or, for a token without `kid`, the only key usable with `alg`).
fn find(set: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<Jwk> {
    match kid {
        Some(kid) => set.find(kid).cloned(),
        None => {
            let usable: Vec<&Jwk> = set
                .keys
                .iter()
                .filter(|k| k.common.key_algorithm.is_none_or(|a| a.to_string() == format!("{alg:?}")))
                .collect();
            match usable.as_slice() {
                [only] => Some((*only).clone()),
                _ => None,
            }
        }
    }
}
