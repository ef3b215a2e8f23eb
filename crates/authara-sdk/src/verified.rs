//! Claims of tokens already verified, by the token's exact text, so that a token seen again
//! (every request of a session sends the same one for its lifetime) skips the signature check.
//! Expiry is still checked on every call, and entries verified under another key set do not
//! count: a key that leaves the set takes its tokens with it.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::claims::Claims;

struct Entry {
    claims: Arc<Claims>,
    generation: u64,
}

/// A bounded map: when full, expired entries and those of older key sets go first; if that
/// frees nothing, it starts over empty (bounded memory matters more than the hit rate of a
/// cache flooded with distinct valid tokens).
pub(crate) struct VerifiedCache {
    max: usize,
    map: RwLock<HashMap<Box<str>, Entry>>,
}

impl VerifiedCache {
    pub(crate) fn new(max: usize) -> Self {
        Self { max, map: RwLock::new(HashMap::new()) }
    }

    pub(crate) fn get(&self, token: &str, generation: u64) -> Option<Arc<Claims>> {
        if self.max == 0 {
            return None;
        }
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        map.get(token).filter(|e| e.generation == generation).map(|e| e.claims.clone())
    }

    /// Remembers verified claims; `alive_after` is the unix second before which entries
    /// are considered expired when making room.
    pub(crate) fn insert(&self, token: &str, claims: Arc<Claims>, generation: u64, alive_after: i64) {
        if self.max == 0 {
            return;
        }
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.max && !map.contains_key(token) {
            map.retain(|_, e| e.generation == generation && e.claims.exp >= alive_after);
            if map.len() >= self.max {
                map.clear();
            }
        }
        map.insert(token.into(), Entry { claims, generation });
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.read().unwrap_or_else(PoisonError::into_inner).len()
    }
}
