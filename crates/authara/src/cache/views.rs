//! What is known about users between requests: their state for access checks, and the
//! profiles `GET /user` shows. Dropped together when the user changes (on this instance at once,
//! on the others through the Redis channel's announcement).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use super::BoundedMap;
use crate::domain::{OrgId, UserId};

/// How long a user's state read from the store is trusted by access checks. Session checks are
/// the hot path of an auth server: a read per check would make the database their bottleneck.
/// Changes made on this instance drop the entry at once; other instances see them within this
/// time (or at once, with Redis).
pub const USER_STATE_TTL_MS: i64 = 2_000;
/// How long a profile read for `GET /user` is reused (same rule; an expired entry is still
/// served while one request reads it again, so that expiry does not send every concurrent
/// request to the database at once).
pub const PROFILE_TTL_MS: i64 = 2_000;
const CAPACITY: usize = 50_000;

/// A user's state as access checks need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserState {
    Active,
    Disabled,
}

/// Per-user reads cached between requests; `P` is the profile as the services define it.
#[derive(Debug)]
pub struct UserViews<P> {
    pub states: BoundedMap<UserId, UserState>,
    pub profiles: BoundedMap<(UserId, OrgId), Arc<P>>,
    /// Profile keys being read again right now.
    refreshing: Mutex<HashSet<(UserId, OrgId)>>,
}

impl<P> Default for UserViews<P> {
    fn default() -> Self {
        Self { states: BoundedMap::new(CAPACITY), profiles: BoundedMap::new(CAPACITY), refreshing: Mutex::default() }
    }
}

impl<P> UserViews<P> {
    pub fn forget(&self, user: UserId) {
        self.states.remove(&user);
        self.profiles.remove_where(|(u, _)| *u == user);
    }

    /// Drops every profile showing this organization (after a rename).
    pub fn forget_org(&self, org: OrgId) {
        self.profiles.remove_where(|(_, o)| *o == org);
    }

    /// True for the one caller that should read the key again.
    pub fn claim(&self, key: (UserId, OrgId)) -> bool {
        self.refreshing.lock().unwrap_or_else(PoisonError::into_inner).insert(key)
    }

    pub fn release(&self, key: (UserId, OrgId)) {
        self.refreshing.lock().unwrap_or_else(PoisonError::into_inner).remove(&key);
    }
}
