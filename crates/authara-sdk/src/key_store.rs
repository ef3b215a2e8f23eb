//! The verifier's keys over time: fixed HS256 keys, an HS256 key file re-read in place, and the
//! server's JWKS document, fetched once and then only
//!
//! - when a token names a kid the set does not hold (a key rotation), and
//! - when the set is older than its maximum age (so a key the server dropped stops verifying),
//!
//! and never more often than once per refetch interval (30 s by default), whatever the tokens
//! say: a flood of made-up kids costs at most one fetch per interval. A verification with a
//! known, fresh key makes no call and takes no lock but a read lock.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use jsonwebtoken::{Algorithm, DecodingKey};

use crate::clock::Clock;
use crate::keys::{HmacKeys, KeyError, KeySet, parse_jwks};
use crate::verifier::VerifyError;

/// A JWKS document or key file larger than this is refused.
const MAX_KEYS_DOCUMENT: usize = 64 * 1024;

/// No attempt yet.
const NEVER: i64 = i64::MIN;

/// Why the keys could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFetchError {
    /// The JWKS request failed (connection, timeout) or answered something other than 200.
    #[error("fetching the JWKS failed: {0}")]
    Http(String),
    /// The key file could not be read.
    #[error("reading the key file failed: {0}")]
    File(String),
    /// The document or file was larger than 64 KiB.
    #[error("the key document is larger than 64 KiB")]
    TooLarge,
    /// The document or file is not what it should be.
    #[error(transparent)]
    Invalid(#[from] KeyError),
}

/// (algorithm, kid, key material or its digest), sorted.
type Fingerprint = Vec<(&'static str, String, Vec<u8>)>;

/// One version of the key set.
pub(crate) struct Loaded {
    pub(crate) keys: KeySet,
    /// Changes whenever the keys do; verified tokens remember it.
    pub(crate) generation: u64,
    /// When the refreshable sources were last read successfully (`None`: never).
    loaded_at_ms: Option<i64>,
    /// What the keys are, to tell whether a reload changed anything.
    fingerprint: Fingerprint,
}

impl Loaded {
    /// The key of `kid` for `alg`: only HS256 and EdDSA have keys.
    pub(crate) fn get(&self, alg: Algorithm, kid: &str) -> Option<&DecodingKey> {
        match alg {
            Algorithm::HS256 => self.keys.hs256.get(kid),
            Algorithm::EdDSA => self.keys.eddsa.get(kid),
            _ => None,
        }
    }
}

pub(crate) struct Sources {
    pub(crate) fixed: HmacKeys,
    pub(crate) file: Option<PathBuf>,
    pub(crate) jwks: Option<String>,
    pub(crate) http: reqwest::Client,
    pub(crate) refetch_interval_ms: i64,
    pub(crate) max_age_ms: i64,
}

pub(crate) struct KeyStore {
    sources: Sources,
    clock: Arc<dyn Clock>,
    current: RwLock<Arc<Loaded>>,
    last_attempt_ms: AtomicI64,
    /// One reload at a time; verifications that need its result wait for it.
    reloading: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

impl KeyStore {
    pub(crate) fn new(sources: Sources, clock: Arc<dyn Clock>) -> Self {
        let mut fingerprint = Vec::new();
        let fixed: HashMap<String, DecodingKey> = sources.fixed.decoding_keys().collect();
        fingerprint_hmac(&mut fingerprint, &sources.fixed);
        fingerprint.sort();
        let loaded = Loaded {
            keys: KeySet { hs256: fixed, eddsa: HashMap::new() },
            generation: 0,
            loaded_at_ms: None,
            fingerprint,
        };
        Self {
            sources,
            clock,
            current: RwLock::new(Arc::new(loaded)),
            last_attempt_ms: AtomicI64::new(NEVER),
            reloading: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
        }
    }

    fn refreshable(&self) -> bool {
        self.sources.file.is_some() || self.sources.jwks.is_some()
    }

    pub(crate) fn current(&self) -> Arc<Loaded> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// How many times the refreshable sources were read.
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn may_attempt(&self, now: i64) -> bool {
        let last = self.last_attempt_ms.load(Ordering::Acquire);
        last == NEVER || now.saturating_sub(last) >= self.sources.refetch_interval_ms
    }

    fn stale(&self, loaded: &Loaded, now: i64) -> bool {
        self.refreshable() && loaded.loaded_at_ms.is_none_or(|at| now.saturating_sub(at) >= self.sources.max_age_ms)
    }

    /// The current key set, reloaded first if it is older than the maximum age (within the
    /// refetch bound). One caller reloads; the others go on with the keys in hand.
    pub(crate) async fn fresh(&self) -> Arc<Loaded> {
        let seen = self.current();
        let now = self.clock.now_ms();
        if !self.stale(&seen, now) {
            return seen;
        }
        if let Ok(_guard) = self.reloading.try_lock() {
            if self.may_attempt(now) && self.current().generation == seen.generation {
                let _ = self.reload().await;
            }
        }
        self.current()
    }

    /// The key set holding `kid` for `alg`: `seen` if it does, else the set reloaded for the
    /// new kid, within the refetch bound.
    pub(crate) async fn lookup(
        &self,
        seen: Arc<Loaded>,
        alg: Algorithm,
        kid: &str,
    ) -> Result<Arc<Loaded>, VerifyError> {
        if seen.get(alg, kid).is_some() {
            return Ok(seen);
        }
        if !self.refreshable() {
            return Err(VerifyError::UnknownKey);
        }
        let _guard = self.reloading.lock().await;
        let latest = self.current();
        let changed_while_waiting = latest.generation != seen.generation;
        if !changed_while_waiting && self.may_attempt(self.clock.now_ms()) {
            let _ = self.reload().await;
        }
        let latest = self.current();
        match latest.get(alg, kid) {
            Some(_) => Ok(latest),
            None if latest.loaded_at_ms.is_none() => Err(VerifyError::KeysUnavailable),
            None => Err(VerifyError::UnknownKey),
        }
    }

    /// Reads every refreshable source now (ignoring the refetch bound) and installs the result
    /// if all of them answered; otherwise the previous keys stay.
    pub(crate) async fn reload(&self) -> Result<(), KeyFetchError> {
        self.last_attempt_ms.store(self.clock.now_ms(), Ordering::Release);
        if !self.refreshable() {
            return Ok(());
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let mut fingerprint = Vec::new();
        let mut hs256: HashMap<String, DecodingKey> = self.sources.fixed.decoding_keys().collect();
        fingerprint_hmac(&mut fingerprint, &self.sources.fixed);
        if let Some(path) = &self.sources.file {
            let file = read_key_file(path).await?;
            fingerprint_hmac(&mut fingerprint, &file);
            hs256.extend(file.decoding_keys());
        }
        let mut eddsa = HashMap::new();
        if let Some(url) = &self.sources.jwks {
            let body = fetch(&self.sources.http, url).await?;
            for k in parse_jwks(&body)? {
                fingerprint.push(("EdDSA", k.kid.clone(), k.x.into_bytes()));
                eddsa.insert(k.kid, k.key);
            }
        }
        fingerprint.sort();
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let generation =
            if current.fingerprint == fingerprint { current.generation } else { current.generation.wrapping_add(1) };
        *current = Arc::new(Loaded {
            keys: KeySet { hs256, eddsa },
            generation,
            loaded_at_ms: Some(self.clock.now_ms()),
            fingerprint,
        });
        Ok(())
    }
}

fn fingerprint_hmac(into: &mut Fingerprint, keys: &HmacKeys) {
    into.extend(keys.fingerprint().map(|(kid, digest)| ("HS256", kid, digest)));
}

async fn read_key_file(path: &PathBuf) -> Result<HmacKeys, KeyFetchError> {
    let meta = tokio::fs::metadata(path).await.map_err(|e| KeyFetchError::File(e.to_string()))?;
    if meta.len() > MAX_KEYS_DOCUMENT as u64 {
        return Err(KeyFetchError::TooLarge);
    }
    let text = tokio::fs::read_to_string(path).await.map_err(|e| KeyFetchError::File(e.to_string()))?;
    Ok(HmacKeys::parse(&text)?)
}

async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, KeyFetchError> {
    let mut res = http.get(url).send().await.map_err(|e| KeyFetchError::Http(e.without_url().to_string()))?;
    if res.status() != reqwest::StatusCode::OK {
        return Err(KeyFetchError::Http(format!("HTTP {}", res.status().as_u16())));
    }
    if res.content_length().is_some_and(|n| n > MAX_KEYS_DOCUMENT as u64) {
        return Err(KeyFetchError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| KeyFetchError::Http(e.without_url().to_string()))? {
        if body.len() + chunk.len() > MAX_KEYS_DOCUMENT {
            return Err(KeyFetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
