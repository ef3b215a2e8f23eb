//! In-process revocation cut-off (design.md decision 9): access tokens of a revoked session stop
//! working at once on this instance, without Redis. Sessions are never un-revoked, so the list
//! holds session ids until the longest-lived access token of the session has expired.

use std::collections::HashMap;
use std::sync::RwLock;

use uuid::Uuid;

#[derive(Debug)]
pub struct RevokedSessions {
    ttl_ms: i64,
    map: RwLock<HashMap<Uuid, i64>>,
}

impl RevokedSessions {
    /// `ttl_ms`: the access-token lifetime.
    pub fn new(ttl_ms: i64) -> Self {
        Self { ttl_ms, map: RwLock::default() }
    }

    pub fn revoke(&self, session: Uuid, now_ms: i64) {
        let mut map = self.map.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= 1024 && map.len().is_power_of_two() {
            map.retain(|_, until| *until > now_ms);
        }
        map.insert(session, now_ms.saturating_add(self.ttl_ms));
    }

    pub fn is_revoked(&self, session: Uuid) -> bool {
        let map = self.map.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Entries are dropped lazily; an expired entry only outlives tokens that are expired too.
        !map.is_empty() && map.contains_key(&session)
    }
}
