//! Password hashing: argon2id on a bounded blocking pool, never on the async workers.
//!
//! New hashes use the standard PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`). Hashes in
//! the reference's own format (`$argon2id$v=1$t=3$m=65536$p=4$salt$hash`, behavior.md §5.4)
//! keep verifying, and are rehashed to PHC on the next successful login, as are hashes whose
//! parameters differ from the configured ones.

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
        }
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
        let permit = self.permits.clone().acquire_owned().await.map_err(|e| HashError::Failed(e.to_string()))?;
        drop(waiting);
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
    if stored.starts_with("$argon2id$v=1$") {
        return if verify_reference(password, stored) { Verified::YesRehash } else { Verified::No };
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
}
