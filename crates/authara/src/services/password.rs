//! Password hashing: argon2id on a bounded blocking pool, never on the async workers.
//!
//! New hashes use the standard PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`). Hashes in
//! the reference's own format (`$argon2id$v=1$t=3$m=65536$p=4$salt$hash`, behavior.md §5.4)
//! keep verifying, and are rehashed to PHC on the next successful login, as are hashes whose
//! parameters differ from the configured ones.
//!
//! Imported hashes (`authara import`, docs/operations.md) verify as they are and are replaced
//! the same way at the next login: PHC argon2i, bcrypt (`$2a$`, `$2b$`, `$2y$`), PHC scrypt
//! (`$scrypt$ln=…,r=…,p=…$salt$hash`), Firebase's modified scrypt with its project parameters
//! (`$firescrypt$ln=<mem_cost>,r=<rounds>,p=1$salt$hash$salt_separator$signer_key`, the form Ory
//! Kratos imports) and Django's PBKDF2-SHA256 (`pbkdf2_sha256$<iterations>$<salt>$<hash>`).
//! [`inspect`] recognizes a hash and bounds its cost before it is stored; every verification
//! runs on the same bounded pool as argon2.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use subtle::ConstantTimeEq as _;
use tokio::sync::{OnceCell, Semaphore};

/// argon2id cost parameters, declared with their variables in config.
pub use crate::config::HashParams;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Failed(String),
    /// Every hashing slot is taken and the queue is full: try again in a moment.
    #[error("password hashing is saturated")]
    Busy,
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, and the stored hash should be replaced (old format or other parameters).
    YesRehash,
}

/// Hashes and verifies on `spawn_blocking`, at most `permits` at once (= cores), so that a
/// login storm queues here instead of stalling the runtime.
///
/// The permit moves into the blocking task and is released only when the hash is done, so a
/// request abandoned mid-hash (client gone, timeout) still holds its slot: memory stays bounded
/// by `slots × hash memory`. At most `queue` requests wait for a slot, holding no hash memory;
/// past that the hasher answers [`HashError::Busy`] at once.
#[derive(Clone)]
pub struct PasswordHasher {
    params: HashParams,
    permits: Arc<Semaphore>,
    slots: usize,
    waiting: Arc<AtomicUsize>,
    queue: usize,
    dummy: Arc<OnceCell<String>>,
    verifications: Arc<AtomicU64>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// Counts a request waiting for a hashing slot while it lives.
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").field("params", &self.params).finish_non_exhaustive()
    }
}

impl PasswordHasher {
    pub fn new(params: HashParams, queue: u32) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self::with_slots(params, cores, queue as usize)
    }

    fn with_slots(params: HashParams, slots: usize, queue: usize) -> Self {
        Self {
            params,
            permits: Arc::new(Semaphore::new(slots)),
            slots,
            waiting: Arc::default(),
            queue,
            dummy: Arc::new(OnceCell::new()),
            verifications: Arc::default(),
            metrics: None,
        }
    }

    /// Reports each hash's wait for a slot to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Hashes waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Password verifications run so far (real and dummy), for tests that prove unknown
    /// accounts cost a verification.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::SeqCst)
    }

    /// Hashes running now (slots in use).
    pub fn running(&self) -> usize {
        self.slots.saturating_sub(self.permits.available_permits())
    }

    pub fn params(&self) -> HashParams {
        self.params
    }

    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, HashError> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(HashError::Busy);
        }
        let waiting = Waiting(self.waiting.clone());
        let queued = std::time::Instant::now();
        let permit = self.permits.clone().acquire_owned().await.map_err(|e| HashError::Failed(e.to_string()))?;
        drop(waiting);
        if let Some(m) = &self.metrics {
            m.hash_waited(queued.elapsed());
        }
        tokio::task::spawn_blocking(move || {
            let _slot = permit;
            f()
        })
        .await
        .map_err(|e| HashError::Failed(e.to_string()))
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = password.to_owned();
        let params = self.params;
        self.blocking(move || hash_now(&password, params)).await?
    }

    pub async fn verify(&self, password: &str, stored: &str) -> Result<Verified, HashError> {
        // Longer than any password we accept: refused without spending a hash on it.
        if password.len() > MAX_PASSWORD_BYTES {
            return Ok(Verified::No);
        }
        let password = password.to_owned();
        let stored = stored.to_owned();
        let params = self.params;
        self.verifications.fetch_add(1, Ordering::SeqCst);
        self.blocking(move || verify_now(&password, &stored, params)).await
    }

    /// Costs what a real verification costs, for unknown accounts (no timing oracle).
    pub async fn verify_dummy(&self, password: &str) -> Result<(), HashError> {
        let dummy = self.dummy().await?.to_owned();
        self.verify(password, &dummy).await.map(|_| ())
    }

    async fn dummy(&self) -> Result<&str, HashError> {
        let params = self.params;
        let dummy = self
            .dummy
            .get_or_try_init(|| async { self.blocking(move || hash_now("authara-dummy-password", params)).await? })
            .await?;
        Ok(dummy)
    }

    /// Computes the dummy hash now (at start-up, in the background).
    pub async fn warm_up(&self) {
        let _ = self.dummy().await;
    }
}

/// Passwords longer than this are refused before any hashing (bounded work per attempt).
pub const MAX_PASSWORD_BYTES: usize = 1024;

fn argon(params: HashParams) -> Result<Argon2<'static>, HashError> {
    let p = Params::new(params.memory_kib, params.iterations, params.parallelism, Some(32))
        .map_err(|e| HashError::Failed(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
}

fn hash_now(password: &str, params: HashParams) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon(params)?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

fn verify_now(password: &str, stored: &str, params: HashParams) -> Verified {
    let rehash = |ok: bool| if ok { Verified::YesRehash } else { Verified::No };
    match format_of(stored) {
        Some(HashFormat::Reference) => return rehash(verify_reference(password, stored)),
        Some(HashFormat::Bcrypt) => return rehash(bcrypt::verify(password, stored).unwrap_or(false)),
        Some(HashFormat::Scrypt) => return rehash(verify_scrypt(password, stored)),
        Some(HashFormat::FirebaseScrypt) => return rehash(verify_firebase_scrypt(password, stored)),
        Some(HashFormat::Pbkdf2Sha256) => return rehash(verify_django_pbkdf2(password, stored)),
        Some(HashFormat::Argon2id | HashFormat::Argon2i) | None => {}
    }
    let Ok(parsed) = PasswordHash::new(stored) else { return Verified::No };
    let Ok(stored_params) = Params::try_from(&parsed) else { return Verified::No };
    let Ok(hasher) = argon(HashParams {
        memory_kib: stored_params.m_cost(),
        iterations: stored_params.t_cost(),
        parallelism: stored_params.p_cost(),
    }) else {
        return Verified::No;
    };
    if hasher.verify_password(password.as_bytes(), &parsed).is_err() {
        return Verified::No;
    }
    let same = parsed.algorithm.as_str() == "argon2id"
        && stored_params.m_cost() == params.memory_kib
        && stored_params.t_cost() == params.iterations
        && stored_params.p_cost() == params.parallelism;
    if same { Verified::Yes } else { Verified::YesRehash }
}

/// `$argon2id$v=1$t=<t>$m=<m>$p=<p>$<salt b64>$<hash b64>` (standard base64, no padding).
fn verify_reference(password: &str, stored: &str) -> bool {
    let parts: Vec<&str> = stored.split('$').collect();
    if parts.len() != 8 || parts[1] != "argon2id" || parts[2] != "v=1" {
        return false;
    }
    let num = |p: &str, prefix: &str| p.strip_prefix(prefix).and_then(|v| v.parse::<u32>().ok());
    let (Some(t), Some(m), Some(p)) = (num(parts[3], "t="), num(parts[4], "m="), num(parts[5], "p=")) else {
        return false;
    };
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let (Ok(salt), Ok(expected)) = (b64.decode(parts[6]), b64.decode(parts[7])) else { return false };
    if expected.is_empty() || expected.len() > 1024 {
        return false;
    }
    let Ok(params) = Params::new(m, t, p, Some(expected.len())) else { return false };
    let mut out = vec![0u8; expected.len()];
    if Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password.as_bytes(), &salt, &mut out)
        .is_err()
    {
        return false;
    }
    out.ct_eq(&expected).into()
}

/// A password hash format this server verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashFormat {
    /// PHC `$argon2id$v=19$…` (ours).
    Argon2id,
    /// PHC `$argon2i$v=19$…`.
    Argon2i,
    /// The reference's `$argon2id$v=1$t=…$m=…$p=…$salt$hash`.
    Reference,
    /// `$2a$`, `$2b$`, `$2y$` bcrypt.
    Bcrypt,
    /// PHC `$scrypt$ln=…,r=…,p=…$salt$hash`.
    Scrypt,
    /// `$firescrypt$ln=…,r=…,p=1$salt$hash$separator$signer_key` (Firebase's modified scrypt).
    FirebaseScrypt,
    /// Django's `pbkdf2_sha256$iterations$salt$hash`.
    Pbkdf2Sha256,
}

impl HashFormat {
    /// The name used in messages and counts.
    pub fn as_str(self) -> &'static str {
        match self {
            HashFormat::Argon2id => "argon2id",
            HashFormat::Argon2i => "argon2i",
            HashFormat::Reference => "authara-argon2id",
            HashFormat::Bcrypt => "bcrypt",
            HashFormat::Scrypt => "scrypt",
            HashFormat::FirebaseScrypt => "firebase-scrypt",
            HashFormat::Pbkdf2Sha256 => "pbkdf2-sha256",
        }
    }
}

/// Why [`inspect`] refuses a hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashFormatError {
    #[error(
        "unknown password hash format (accepted: $argon2id$, $argon2i$, $2a$/$2b$/$2y$ bcrypt, $scrypt$, \
         $firescrypt$, pbkdf2_sha256$)"
    )]
    Unknown,
    #[error("malformed {format} hash: {why}")]
    Malformed { format: &'static str, why: &'static str },
    /// Parameters that would make each login cost too much (or nothing at all).
    #[error("{format} hash parameters out of bounds: {why}")]
    OutOfBounds { format: &'static str, why: &'static str },
}

/// Longest hash string accepted (the Firebase form with its signer key is the longest, ~300).
pub const MAX_HASH_LEN: usize = 1024;
/// Memory bound for imported memory-hard hashes (argon2, scrypt): 256 MiB per verification.
const MAX_HASH_MEMORY_KIB: u64 = 256 * 1024;
/// Cost bounds of imported hashes: bcrypt 2^16 rounds at most, PBKDF2 10 million iterations.
const MAX_BCRYPT_COST: u32 = 16;
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

fn format_of(stored: &str) -> Option<HashFormat> {
    if stored.starts_with("$argon2id$v=1$") {
        Some(HashFormat::Reference)
    } else if stored.starts_with("$argon2id$") {
        Some(HashFormat::Argon2id)
    } else if stored.starts_with("$argon2i$") {
        Some(HashFormat::Argon2i)
    } else if ["$2a$", "$2b$", "$2y$"].iter().any(|p| stored.starts_with(p)) {
        Some(HashFormat::Bcrypt)
    } else if stored.starts_with("$scrypt$") {
        Some(HashFormat::Scrypt)
    } else if stored.starts_with("$firescrypt$") {
        Some(HashFormat::FirebaseScrypt)
    } else if stored.starts_with("pbkdf2_sha256$") {
        Some(HashFormat::Pbkdf2Sha256)
    } else {
        None
    }
}

/// Recognizes a hash brought from elsewhere and checks it can be verified at a bounded cost:
/// the import refuses what this returns an error for, so a stored hash always parses.
pub fn inspect(stored: &str) -> Result<HashFormat, HashFormatError> {
    let format = format_of(stored).ok_or(HashFormatError::Unknown)?;
    let name = format.as_str();
    let malformed = |why| HashFormatError::Malformed { format: name, why };
    let bounds = |why| HashFormatError::OutOfBounds { format: name, why };
    if stored.len() > MAX_HASH_LEN {
        return Err(malformed("longer than 1024 characters"));
    }
    match format {
        HashFormat::Argon2id | HashFormat::Argon2i => {
            let parsed = PasswordHash::new(stored).map_err(|_| malformed("not a PHC string"))?;
            let p = Params::try_from(&parsed).map_err(|_| malformed("bad parameters"))?;
            if parsed.hash.is_none() || parsed.salt.is_none() {
                return Err(malformed("no salt or hash"));
            }
            if parsed.version != Some(0x13) {
                return Err(malformed("version must be v=19"));
            }
            if u64::from(p.m_cost()) > MAX_HASH_MEMORY_KIB || p.t_cost() > 16 || p.p_cost() > 16 {
                return Err(bounds("at most m=262144 (256 MiB), t=16, p=16"));
            }
        }
        HashFormat::Reference => {
            let parts: Vec<&str> = stored.split('$').collect();
            let num = |i: usize, prefix: &str| parts.get(i)?.strip_prefix(prefix)?.parse::<u32>().ok();
            let (Some(t), Some(m), Some(p)) = (num(3, "t="), num(4, "m="), num(5, "p=")) else {
                return Err(malformed("expected $argon2id$v=1$t=…$m=…$p=…$salt$hash"));
            };
            if parts.len() != 8 || b64_any(parts[6]).is_none() || b64_any(parts[7]).is_none() {
                return Err(malformed("expected $argon2id$v=1$t=…$m=…$p=…$salt$hash"));
            }
            if u64::from(m) > MAX_HASH_MEMORY_KIB || t > 16 || p > 16 || Params::new(m, t, p, None).is_err() {
                return Err(bounds("at most m=262144 (256 MiB), t=16, p=16"));
            }
        }
        HashFormat::Bcrypt => {
            let cost = stored.get(4..6).and_then(|c| c.parse::<u32>().ok()).ok_or(malformed("no cost"))?;
            let body = stored.get(7..).unwrap_or("");
            if stored.as_bytes().get(6) != Some(&b'$') || body.len() != 53 || !body.bytes().all(is_bcrypt_b64) {
                return Err(malformed("expected $2b$<cost>$<53 characters>"));
            }
            if !(4..=MAX_BCRYPT_COST).contains(&cost) {
                return Err(bounds("cost must be 4 to 16"));
            }
        }
        HashFormat::Scrypt => {
            let s = parse_scrypt(stored).ok_or(malformed("expected $scrypt$ln=…,r=…,p=…$salt$hash"))?;
            check_scrypt_cost(s.log_n, s.r, s.p).map_err(bounds)?;
        }
        HashFormat::FirebaseScrypt => {
            let f = parse_firebase(stored)
                .ok_or(malformed("expected $firescrypt$ln=…,r=…,p=1$salt$hash$salt_separator$signer_key"))?;
            check_scrypt_cost(f.scrypt.log_n, f.scrypt.r, 1).map_err(bounds)?;
        }
        HashFormat::Pbkdf2Sha256 => {
            let d =
                parse_django(stored).ok_or(malformed("expected pbkdf2_sha256$<iterations>$<salt>$<base64 hash>"))?;
            if !(1..=MAX_PBKDF2_ITERATIONS).contains(&d.iterations) {
                return Err(bounds("iterations must be 1 to 10000000"));
            }
        }
    }
    Ok(format)
}

fn is_bcrypt_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'/'
}

/// Standard base64 with or without padding (exports differ).
fn b64_any(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    STANDARD.decode(s).or_else(|_| STANDARD_NO_PAD.decode(s)).ok()
}

fn check_scrypt_cost(log_n: u8, r: u32, p: u32) -> Result<(), &'static str> {
    let memory_kib = (128u64 * u64::from(r)) << log_n >> 10;
    if log_n == 0 || log_n > 20 || r == 0 || r > 32 || p == 0 || p > 16 || memory_kib > MAX_HASH_MEMORY_KIB {
        return Err("at most ln=20, r=32, p=16 and 256 MiB (128 x r x 2^ln bytes)");
    }
    Ok(())
}

struct ScryptHash {
    log_n: u8,
    r: u32,
    p: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

/// `ln=…,r=…,p=…` into (ln, r, p).
fn scrypt_params(text: &str) -> Option<(u8, u32, u32)> {
    let mut ln = None;
    let mut r = None;
    let mut p = None;
    for pair in text.split(',') {
        let (k, v) = pair.split_once('=')?;
        match k {
            "ln" => ln = Some(v.parse::<u8>().ok()?),
            "r" => r = Some(v.parse::<u32>().ok()?),
            "p" => p = Some(v.parse::<u32>().ok()?),
            _ => return None,
        }
    }
    Some((ln?, r?, p?))
}

fn parse_scrypt(stored: &str) -> Option<ScryptHash> {
    let parts: Vec<&str> = stored.split('$').collect();
    let ["", "scrypt", params, salt, hash] = parts.as_slice() else { return None };
    let (log_n, r, p) = scrypt_params(params)?;
    let (salt, hash) = (b64_any(salt)?, b64_any(hash)?);
    (!salt.is_empty() && !hash.is_empty() && hash.len() <= 128).then_some(ScryptHash { log_n, r, p, salt, hash })
}

fn verify_scrypt(password: &str, stored: &str) -> bool {
    let Some(s) = parse_scrypt(stored) else { return false };
    let Ok(params) = scrypt::Params::new(s.log_n, s.r, s.p, s.hash.len()) else { return false };
    let mut out = vec![0u8; s.hash.len()];
    if scrypt::scrypt(password.as_bytes(), &s.salt, &params, &mut out).is_err() {
        return false;
    }
    out.ct_eq(&s.hash).into()
}

struct FirebaseHash {
    scrypt: ScryptHash,
    separator: Vec<u8>,
    signer_key: Vec<u8>,
}

fn parse_firebase(stored: &str) -> Option<FirebaseHash> {
    let parts: Vec<&str> = stored.split('$').collect();
    let ["", "firescrypt", params, salt, hash, separator, signer_key] = parts.as_slice() else { return None };
    let (log_n, r, p) = scrypt_params(params)?;
    let (salt, hash) = (b64_any(salt)?, b64_any(hash)?);
    let (separator, signer_key) = (b64_any(separator)?, b64_any(signer_key)?);
    let ok = p == 1 && !salt.is_empty() && !signer_key.is_empty() && hash.len() == signer_key.len();
    ok.then_some(FirebaseHash { scrypt: ScryptHash { log_n, r, p, salt, hash }, separator, signer_key })
}

/// Firebase's modified scrypt: the key derived by scrypt(password, salt ‖ separator, 2^ln, r, 1)
/// encrypts the project's signer key with AES-256-CTR (zero IV); the result is the hash.
fn verify_firebase_scrypt(password: &str, stored: &str) -> bool {
    use aes::cipher::{KeyIvInit as _, StreamCipher as _};
    let Some(f) = parse_firebase(stored) else { return false };
    let Ok(params) = scrypt::Params::new(f.scrypt.log_n, f.scrypt.r, 1, 64) else { return false };
    let mut salt = f.scrypt.salt;
    salt.extend_from_slice(&f.separator);
    let mut key = [0u8; 64];
    if scrypt::scrypt(password.as_bytes(), &salt, &params, &mut key).is_err() {
        return false;
    }
    let mut block = f.signer_key;
    let mut cipher = ctr::Ctr128BE::<aes::Aes256>::new(key[..32].into(), &[0u8; 16].into());
    cipher.apply_keystream(&mut block);
    block.ct_eq(&f.scrypt.hash).into()
}

struct DjangoHash<'a> {
    iterations: u32,
    salt: &'a str,
    hash: Vec<u8>,
}

fn parse_django(stored: &str) -> Option<DjangoHash<'_>> {
    let parts: Vec<&str> = stored.split('$').collect();
    let ["pbkdf2_sha256", iterations, salt, hash] = parts.as_slice() else { return None };
    let hash = b64_any(hash)?;
    (!salt.is_empty() && !hash.is_empty() && hash.len() <= 64).then_some(DjangoHash {
        iterations: iterations.parse().ok()?,
        salt,
        hash,
    })
}

/// Django's `pbkdf2_sha256$<iterations>$<salt>$<base64 of PBKDF2-HMAC-SHA256>`: the salt is used
/// as the text it is, the derived key is as long as the stored one (32 bytes for Django).
fn verify_django_pbkdf2(password: &str, stored: &str) -> bool {
    let Some(d) = parse_django(stored) else { return false };
    let mut out = vec![0u8; d.hash.len()];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), d.salt.as_bytes(), d.iterations, &mut out);
    out.ct_eq(&d.hash).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: HashParams = HashParams { memory_kib: 1024, iterations: 1, parallelism: 1 };

    /// A hash whose caller went away keeps its slot until it is done; the queue is bounded.
    #[tokio::test]
    async fn abandoned_hashes_keep_their_slot_and_the_queue_is_bounded() {
        let slow = HashParams { memory_kib: 8192, iterations: 40, parallelism: 1 };
        let h = PasswordHasher::with_slots(slow, 1, 1);
        let abandoned = tokio::time::timeout(std::time::Duration::from_millis(5), h.hash("violet-harbor-tangent"));
        assert!(abandoned.await.is_err(), "the caller gave up");
        assert_eq!(h.running(), 1, "the abandoned hash still holds its slot");
        let waiter = {
            let h = h.clone();
            tokio::spawn(async move { h.hash("violet-harbor-tangent").await })
        };
        while h.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(h.hash("violet-harbor-tangent").await, Err(HashError::Busy)), "past the queue: busy");
        assert!(waiter.await.unwrap().is_ok(), "the queued one runs once the slot frees");
        assert_eq!(h.running(), 0);
    }

    /// An unknown account's verification costs what a real one does: the dummy hash is made
    /// with the configured parameters, so verifying against it runs the same argon2id work (the
    /// integration suite counts that one runs: `claims/enumeration.rs`).
    #[tokio::test]
    async fn the_dummy_hash_has_the_configured_cost() {
        let params = HashParams { memory_kib: 2048, iterations: 2, parallelism: 1 };
        let h = PasswordHasher::with_slots(params, 1, 4);
        let real = h.hash("violet-harbor-tangent").await.unwrap();
        let dummy = h.dummy().await.unwrap().to_owned();
        let cost = |phc: &str| phc.split('$').take(4).collect::<Vec<_>>().join("$");
        assert_eq!(cost(&dummy), "$argon2id$v=19$m=2048,t=2,p=1");
        assert_eq!(cost(&dummy), cost(&real));
        let before = h.verifications();
        h.verify_dummy("wrong-password-1").await.unwrap();
        assert_eq!(h.verifications(), before + 1);
    }

    #[test]
    fn hashes_verify_and_wrong_passwords_do_not() {
        let h = hash_now("correct horse battery", FAST).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{h}");
        assert_eq!(verify_now("correct horse battery", &h, FAST), Verified::Yes);
        assert_eq!(verify_now("correct horse batterY", &h, FAST), Verified::No);
        assert_eq!(verify_now("x", "not a hash", FAST), Verified::No);
    }

    #[test]
    fn other_parameters_ask_for_a_rehash() {
        let h = hash_now("correct horse battery", FAST).unwrap();
        let stronger = HashParams { memory_kib: 2048, ..FAST };
        assert_eq!(verify_now("correct horse battery", &h, stronger), Verified::YesRehash);
    }

    #[test]
    fn the_reference_format_verifies_and_asks_for_a_rehash() {
        // Built the way the reference builds it: argon2id v0x13, raw 32-byte key, custom string.
        let salt = b"0123456789abcdef";
        let params = Params::new(1024, 2, 1, Some(32)).unwrap();
        let mut key = [0u8; 32];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(b"legacy password", salt, &mut key)
            .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
        let stored = format!("$argon2id$v=1$t=2$m=1024$p=1${}${}", b64.encode(salt), b64.encode(key));
        assert_eq!(verify_now("legacy password", &stored, FAST), Verified::YesRehash);
        assert_eq!(verify_now("legacy passwore", &stored, FAST), Verified::No);
        assert_eq!(verify_now("legacy password", &stored.replace("v=1", "v=2"), FAST), Verified::No);
    }

    /// Each imported format, with a vector computed elsewhere: verifies, asks for the upgrade
    /// to argon2id, and refuses a wrong password.
    #[test]
    fn imported_formats_verify_with_known_vectors_and_ask_for_a_rehash() {
        let vectors: &[(&str, &str, HashFormat)] = &[
            // OpenBSD's bcrypt test vector, under each prefix.
            ("U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", HashFormat::Bcrypt),
            ("U*U", "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", HashFormat::Bcrypt),
            ("U*U", "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", HashFormat::Bcrypt),
            // RFC 7914's scrypt vector (N=1024, r=8, p=16) as a PHC string.
            (
                "password",
                "$scrypt$ln=10,r=8,p=16$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWIurzDZLiKjiG/xCSedmDDaxyevuUqD7m2DYMvfoswGQA",
                HashFormat::Scrypt,
            ),
            // Firebase's published example (firebase/scrypt README): mem_cost 14, rounds 8.
            (
                "user1password",
                "$firescrypt$ln=14,r=8,p=1$42xEC+ixf3L2lw==$lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==$Bw==$jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==",
                HashFormat::FirebaseScrypt,
            ),
            // Django 3.2's own test vector for make_password('lètmein', 'seasalt').
            (
                "lètmein",
                "pbkdf2_sha256$260000$seasalt$YlZ2Vggtqdc61YjArZuoApoBh9JNGYoDRBUGu6tcJQo=",
                HashFormat::Pbkdf2Sha256,
            ),
            // The argon2 reference implementation's argon2i test vector (m=65536, t=2, p=1).
            (
                "password",
                "$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$wWKIMhR9lyDFvRz9YTZweHKfbftvj+qf+YFY4NeBbtA",
                HashFormat::Argon2i,
            ),
        ];
        for (password, stored, format) in vectors {
            assert_eq!(inspect(stored), Ok(*format), "{stored}");
            assert_eq!(verify_now(password, stored, FAST), Verified::YesRehash, "{stored}");
            assert_eq!(verify_now("wrong password", stored, FAST), Verified::No, "{stored}");
        }
    }

    #[test]
    fn inspect_refuses_unknown_malformed_and_costly_hashes() {
        assert_eq!(inspect("{SSHA}abcdef"), Err(HashFormatError::Unknown));
        assert_eq!(inspect("5f4dcc3b5aa765d61d8327deb882cf99"), Err(HashFormatError::Unknown));
        assert!(matches!(inspect("$2b$05$short"), Err(HashFormatError::Malformed { .. })));
        assert!(matches!(
            inspect("$2b$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
            Err(HashFormatError::OutOfBounds { .. })
        ));
        assert!(matches!(inspect("$scrypt$ln=24,r=8,p=1$c2FsdA$aGFzaA"), Err(HashFormatError::OutOfBounds { .. })));
        assert!(matches!(inspect("$scrypt$ln=10,r=8$c2FsdA$aGFzaA"), Err(HashFormatError::Malformed { .. })));
        assert!(matches!(
            inspect("$argon2id$v=19$m=4194304,t=3,p=4$c29tZXNhbHQ$wWKIMhR9lyDFvRz9YTZweHKfbftvj+qf+YFY4NeBbtA"),
            Err(HashFormatError::OutOfBounds { .. })
        ));
        assert!(matches!(inspect("pbkdf2_sha256$0$salt$aGFzaA=="), Err(HashFormatError::OutOfBounds { .. })));
        assert!(matches!(inspect("pbkdf2_sha256$x$salt$aGFzaA=="), Err(HashFormatError::Malformed { .. })));
        let ours = hash_now("correct horse battery", FAST).unwrap();
        assert_eq!(inspect(&ours), Ok(HashFormat::Argon2id));
    }
}
