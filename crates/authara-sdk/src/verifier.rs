//! Access-token verification: signature by kid and algorithm, issuer, audience, expiry with a
//! small leeway, and the claims the server always sets.
//!
//! The compact JWS is read and checked by `jsonwebtoken`: `decode_header` for the kid and
//! algorithm, then `decode` with the key of that kid for that algorithm and a `Validation`
//! pinned to it, which also checks the issuer and the audience. Expiry is checked here, against
//! the verifier's clock, because remembered tokens need it on every call too.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};

use crate::claims::{Audience, Claims, RawClaims};
use crate::clock::{Clock, SystemClock};
use crate::key_store::{KeyFetchError, KeyStore, Sources};
use crate::keys::HmacKeys;
use crate::verified::VerifiedCache;

/// The path of the server's JWKS document, under its base URL.
pub const JWKS_PATH: &str = "/auth/.well-known/jwks.json";

/// Tokens longer than this are refused unread (the server's are a few hundred bytes).
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Why a token was refused.
///
/// Every variant means "not signed in"; they differ for logs and tests. Never show them to the
/// user (they would tell an attacker which check failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The request carries no access token.
    #[error("no access token")]
    Missing,
    /// Not a JWT, too long, without a `kid`, or with a header that cannot be read: an `alg`
    /// no JOSE library signs with (`none` among them), or an extension marked critical
    /// (`crit`), none being understood.
    #[error("malformed token")]
    Malformed,
    /// A JOSE algorithm other than HS256 or EdDSA (`HS512`, `RS256`, …).
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    /// No key with the token's kid (for its algorithm), even after refetching within the bound.
    #[error("unknown key id")]
    UnknownKey,
    /// The JWKS could not be fetched yet, so no EdDSA token can be checked.
    #[error("verification keys unavailable")]
    KeysUnavailable,
    /// The signature does not match (or is not base64url).
    #[error("bad signature")]
    BadSignature,
    /// Past `exp` plus the leeway.
    #[error("token expired")]
    Expired,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    #[error("wrong audience")]
    WrongAudience,
    /// A claim the server always sets is missing or invalid.
    #[error("invalid claims")]
    InvalidClaims,
}

/// Why a [`VerifierBuilder`] could not build.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Neither HS256 keys, a key file nor a JWKS URL was given.
    #[error("no verification keys: give HS256 keys, a key file or a JWKS URL")]
    NoKeys,
    /// The JWKS URL is not an absolute http(s) URL.
    #[error("the JWKS URL must be an absolute http or https URL")]
    JwksUrl,
    /// The issuer is empty.
    #[error("the issuer must not be empty")]
    Issuer,
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(String),
}

/// Verifies authara access tokens. Cheap to clone (shared state); build one per application.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use authara_sdk::{Audience, Verifier};
///
/// // HS256, with the server's AUTHARA_JWT_KEYS:
/// let verifier = Verifier::builder("authara")
///     .hs256_keys("k1:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=".parse()?)
///     .build()?;
///
/// // EdDSA, with the keys the server publishes:
/// let verifier = Verifier::builder("authara")
///     .jwks_url(format!("http://authara:8080{}", authara_sdk::JWKS_PATH))
///     .audience(Audience::App)
///     .build()?;
/// verifier.refresh_keys().await?; // optional: fetch now rather than on the first request
///
/// let claims = verifier.verify("eyJ…").await?;
/// println!("user {} in organization {}", claims.sub, claims.org_id);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audience: Audience,
    /// What `jsonwebtoken::decode` checks, one per algorithm: that algorithm only, the issuer,
    /// the audience, and that `iss`, `aud` and `exp` are there.
    hs256: Validation,
    eddsa: Validation,
    leeway_s: i64,
    keys: KeyStore,
    verified: VerifiedCache,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .field("keys", &self.inner.keys.current().keys.len())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Starts a verifier for tokens of `issuer` (the server's `AUTHARA_JWT_ISSUER`).
    pub fn builder(issuer: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder {
            issuer: issuer.into(),
            audience: Audience::App,
            leeway: Duration::from_secs(60),
            hmac: HmacKeys::default(),
            hmac_file: None,
            jwks_url: None,
            refetch_interval: Duration::from_secs(30),
            max_key_age: Duration::from_secs(300),
            fetch_timeout: Duration::from_secs(5),
            http: None,
            clock: Arc::new(SystemClock),
            cache_size: 4096,
        }
    }

    /// The issuer tokens must name.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The audience tokens must carry.
    pub fn audience(&self) -> Audience {
        self.inner.audience
    }

    /// How many times the key file or JWKS was read since start (for metrics and tests).
    pub fn key_fetches(&self) -> u64 {
        self.inner.keys.fetches()
    }

    /// Reads the key file and the JWKS now, whatever the refetch bound says, and keeps the
    /// previous keys if either fails. Call it at start-up to fail fast or to warm the cache.
    pub async fn refresh_keys(&self) -> Result<(), KeyFetchError> {
        self.inner.keys.reload().await
    }

    /// Verifies an access token and returns its claims.
    ///
    /// Once the keys are loaded this makes no network call; a token seen before skips the
    /// signature check (its expiry is checked on every call).
    pub async fn verify(&self, token: &str) -> Result<Arc<Claims>, VerifyError> {
        let inner = &*self.inner;
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(VerifyError::Malformed);
        }
        let keys = inner.keys.fresh().await;
        if let Some(claims) = inner.verified.get(token, keys.generation) {
            return self.unexpired(claims);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        let validation = match header.alg {
            Algorithm::HS256 => &inner.hs256,
            Algorithm::EdDSA => &inner.eddsa,
            _ => return Err(VerifyError::UnsupportedAlgorithm),
        };
        let kid = header.kid.filter(|k| !k.is_empty()).ok_or(VerifyError::Malformed)?;
        if marks_critical(token) {
            return Err(VerifyError::Malformed);
        }
        let loaded = inner.keys.lookup(keys, header.alg, &kid).await?;
        let key = loaded.get(header.alg, &kid).ok_or(VerifyError::UnknownKey)?;
        let raw = jsonwebtoken::decode::<RawClaims>(token, key, validation).map_err(decode_error)?.claims;
        let claims = raw.check().ok_or(VerifyError::InvalidClaims)?;
        let claims = self.unexpired(Arc::new(claims))?;
        let now_s = inner.clock.now_ms().div_euclid(1000);
        inner.verified.insert(token, claims.clone(), loaded.generation, now_s.saturating_sub(inner.leeway_s));
        Ok(claims)
    }

    fn unexpired(&self, claims: Arc<Claims>) -> Result<Arc<Claims>, VerifyError> {
        let now_s = self.inner.clock.now_ms().div_euclid(1000);
        if now_s > claims.exp.saturating_add(self.inner.leeway_s) {
            return Err(VerifyError::Expired);
        }
        Ok(claims)
    }
}

/// The checks of `jsonwebtoken::decode` for one algorithm. Its own expiry check is off: it
/// reads the system clock, and the verifier checks `exp` against its own, with the leeway.
fn validation(alg: Algorithm, issuer: &str, audience: Audience) -> Validation {
    let mut v = Validation::new(alg);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience.as_str()]);
    v.set_required_spec_claims(&["iss", "aud", "exp"]);
    v.validate_exp = false;
    v
}

/// What a `jsonwebtoken::decode` error means here. The header was read before, so a JSON error
/// is the claims', and a base64 one the signature's (or, past a valid signature, the claims').
fn decode_error(e: jsonwebtoken::errors::Error) -> VerifyError {
    match e.kind() {
        ErrorKind::InvalidSignature | ErrorKind::Base64(_) => VerifyError::BadSignature,
        ErrorKind::InvalidAlgorithm => VerifyError::UnsupportedAlgorithm,
        ErrorKind::InvalidIssuer => VerifyError::WrongIssuer,
        ErrorKind::InvalidAudience => VerifyError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) if claim == "aud" => VerifyError::WrongAudience,
        ErrorKind::MissingRequiredClaim(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => VerifyError::InvalidClaims,
        _ => VerifyError::Malformed,
    }
}

/// Whether the header marks an extension critical. jsonwebtoken 9 ignores `crit`, but a
/// reader that does not understand a critical extension must refuse the token (RFC 7515
/// §4.1.11), and none is understood here. Called once `decode_header` has read the header.
fn marks_critical(token: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Crit {
        #[serde(default)]
        crit: Option<serde::de::IgnoredAny>,
    }
    let header = token.split('.').next().unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|json| serde_json::from_slice::<Crit>(&json).ok())
        .is_none_or(|h| h.crit.is_some())
}

/// Settings of a [`Verifier`]; see [`Verifier::builder`].
#[must_use]
pub struct VerifierBuilder {
    issuer: String,
    audience: Audience,
    leeway: Duration,
    hmac: HmacKeys,
    hmac_file: Option<PathBuf>,
    jwks_url: Option<String>,
    refetch_interval: Duration,
    max_key_age: Duration,
    fetch_timeout: Duration,
    http: Option<reqwest::Client>,
    clock: Arc<dyn Clock>,
    cache_size: usize,
}

impl std::fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifierBuilder")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("hmac", &self.hmac)
            .field("jwks_url", &self.jwks_url)
            .finish_non_exhaustive()
    }
}

impl VerifierBuilder {
    /// The audience to accept (default [`Audience::App`]).
    pub fn audience(mut self, audience: Audience) -> Self {
        self.audience = audience;
        self
    }

    /// Clock skew allowed past `exp` (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// HS256 keys shared with the server (its `AUTHARA_JWT_KEYS`). May be combined with a key
    /// file and a JWKS URL.
    pub fn hs256_keys(mut self, keys: HmacKeys) -> Self {
        self.hmac = keys;
        self
    }

    /// A file of HS256 keys in the `AUTHARA_JWT_KEYS` format (the server's
    /// `AUTHARA_JWT_KEYS_FILE`), read at the first verification and again, within the refetch
    /// bound, when a token names a kid it lacks or the keys are older than the maximum age, so
    /// a secret updated in place (a mounted secret) is picked up without a restart.
    pub fn hs256_keys_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.hmac_file = Some(path.into());
        self
    }

    /// The server's JWKS document (`<base URL>` + [`JWKS_PATH`]) for EdDSA tokens
    /// (`AUTHARA_JWT_ALGORITHM=EdDSA`).
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// The least time between two reads of the key file or JWKS after the first (default 30 s).
    /// Bounds what tokens with unknown kids can make the verifier fetch.
    pub fn refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    /// How long fetched keys are used before they are read again (default 5 min), so that a
    /// key removed on the server stops verifying. If the refetch fails, the keys in hand stay.
    pub fn max_key_age(mut self, age: Duration) -> Self {
        self.max_key_age = age;
        self
    }

    /// Timeout of a JWKS request (default 5 s); ignored with [`http_client`](Self::http_client).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// The HTTP client for the JWKS (for proxies or custom roots). Set its timeouts yourself.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The clock (default: the system's). For tests.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How many verified tokens to remember (default 4096; 0 turns the cache off).
    pub fn verified_cache_size(mut self, size: usize) -> Self {
        self.cache_size = size;
        self
    }

    /// Builds the verifier. Nothing is fetched yet (see [`Verifier::refresh_keys`]).
    pub fn build(self) -> Result<Verifier, BuildError> {
        if self.issuer.is_empty() {
            return Err(BuildError::Issuer);
        }
        if self.hmac.kids().next().is_none() && self.hmac_file.is_none() && self.jwks_url.is_none() {
            return Err(BuildError::NoKeys);
        }
        if let Some(url) = &self.jwks_url {
            let ok = reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
            if !ok {
                return Err(BuildError::JwksUrl);
            }
        }
        let http = match self.http {
            Some(c) => c,
            None => reqwest::Client::builder()
                .timeout(self.fetch_timeout)
                .connect_timeout(self.fetch_timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("authara-sdk/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| BuildError::Http(e.to_string()))?,
        };
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let sources = Sources {
            fixed: self.hmac,
            file: self.hmac_file,
            jwks: self.jwks_url,
            http,
            refetch_interval_ms: ms(self.refetch_interval),
            max_age_ms: ms(self.max_key_age),
        };
        Ok(Verifier {
            inner: Arc::new(Inner {
                hs256: validation(Algorithm::HS256, &self.issuer, self.audience),
                eddsa: validation(Algorithm::EdDSA, &self.issuer, self.audience),
                issuer: self.issuer,
                audience: self.audience,
                leeway_s: i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX),
                keys: KeyStore::new(sources, self.clock.clone()),
                verified: VerifiedCache::new(self.cache_size),
                clock: self.clock,
            }),
        })
    }
}

#[cfg(test)]
mod tests;
