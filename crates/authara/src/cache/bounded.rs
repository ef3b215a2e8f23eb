//! One bounded map with expiry, used by every in-process cache, so that eviction and lock
//! poisoning are handled in one place.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{PoisonError, RwLock};

/// A map of at most `capacity` entries, each with the time it was written and an expiry. When a
/// write finds the map full, expired entries go first; if that frees nothing, the oldest half
/// goes. A poisoned lock is recovered (the map holds only caches: a half-written entry is
/// impossible, since every write is a single insert or remove).
#[derive(Debug)]
pub struct BoundedMap<K, V> {
    capacity: usize,
    map: RwLock<HashMap<K, Entry<V>>>,
}

#[derive(Debug, Clone)]
struct Entry<V> {
    value: V,
    written_at_ms: i64,
    expires_at_ms: i64,
}

impl<K: Eq + Hash + Clone, V: Clone> BoundedMap<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), map: RwLock::default() }
    }

    /// The value if present and not expired at `now_ms`.
    pub fn get<Q>(&self, key: &Q, now_ms: i64) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        map.get(key).filter(|e| e.expires_at_ms > now_ms).map(|e| e.value.clone())
    }

    /// The value and when it was written, expired or not (stale-while-revalidate readers).
    pub fn get_with_age(&self, key: &K) -> Option<(V, i64)> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        map.get(key).map(|e| (e.value.clone(), e.written_at_ms))
    }

    /// Writes an entry; true when making room dropped live (unexpired) entries, which callers
    /// whose entries must not be forgotten (revocations) have to make up for.
    pub fn insert(&self, key: K, value: V, now_ms: i64, expires_at_ms: i64) -> bool {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let dropped_live = self.make_room(&mut map, &key, now_ms);
        map.insert(key, Entry { value, written_at_ms: now_ms, expires_at_ms });
        dropped_live
    }

    /// Reads and replaces one entry under the write lock (counters). `f` gets the live value,
    /// if any, and returns the new value with its expiry.
    pub fn update<R>(&self, key: K, now_ms: i64, f: impl FnOnce(Option<&V>) -> (V, i64, R)) -> R {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let current = map.get(&key).filter(|e| e.expires_at_ms > now_ms).map(|e| &e.value);
        let (value, expires_at_ms, out) = f(current);
        self.make_room(&mut map, &key, now_ms);
        map.insert(key, Entry { value, written_at_ms: now_ms, expires_at_ms });
        out
    }

    /// Before writing `key`: a full map without it evicts; true when live entries went.
    fn make_room(&self, map: &mut HashMap<K, Entry<V>>, key: &K, now_ms: i64) -> bool {
        map.len() >= self.capacity && !map.contains_key(key) && Self::evict(map, self.capacity, now_ms)
    }

    pub fn remove(&self, key: &K) {
        self.map.write().unwrap_or_else(PoisonError::into_inner).remove(key);
    }

    /// Drops every entry whose key matches.
    pub fn remove_where(&self, pred: impl Fn(&K) -> bool) {
        self.map.write().unwrap_or_else(PoisonError::into_inner).retain(|k, _| !pred(k));
    }

    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes room; true when live entries had to go.
    fn evict(map: &mut HashMap<K, Entry<V>>, capacity: usize, now_ms: i64) -> bool {
        map.retain(|_, e| e.expires_at_ms > now_ms);
        if map.len() < capacity {
            return false;
        }
        let mut ages: Vec<i64> = map.values().map(|e| e.written_at_ms).collect();
        let mid = ages.len() / 2;
        let cutoff = *ages.select_nth_unstable(mid).1;
        map.retain(|_, e| e.written_at_ms > cutoff);
        if map.len() >= capacity {
            map.clear();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_and_stays_bounded() {
        let m = BoundedMap::new(100);
        m.insert("a", 1, 0, 10);
        assert_eq!(m.get(&"a", 5), Some(1));
        assert_eq!(m.get(&"a", 10), None, "expired at its expiry");
        assert_eq!(m.get_with_age(&"a"), Some((1, 0)), "still there for stale readers");
        for i in 0..10_000 {
            m.insert(i.to_string().leak() as &str, i, i64::from(i), i64::MAX);
        }
        assert!(m.len() <= 100, "{}", m.len());
        assert!(m.get(&"9999", 0).is_some(), "the newest entry survives eviction");
    }

    #[test]
    fn update_counts_under_one_lock() {
        let m: BoundedMap<u8, u32> = BoundedMap::new(10);
        for _ in 0..3 {
            m.update(1, 0, |v| (v.copied().unwrap_or(0) + 1, 100, ()));
        }
        assert_eq!(m.get(&1, 50), Some(3));
        m.update(1, 100, |v| (v.copied().unwrap_or(0) + 1, 200, ()));
        assert_eq!(m.get(&1, 150), Some(1), "an expired counter starts again");
    }
}
