//! The account page's operations: sessions, username, password, deletion.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use uuid::Uuid;

use super::Services;
use super::password::{HashError, Verified};
use crate::store::StoreError;
use crate::store::accounts::UserRow;
use crate::store::sessions::SessionInfo;

/// What `GET /user` shows besides the token: the user and the name of their organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub user: UserRow,
    pub org_name: String,
}

/// How long a profile read for `GET /user` is reused. Session checks are the hot path of an
/// auth server; two queries per check would make the database their bottleneck. Changes made
/// on this instance drop the entry at once; other instances see them within twice this time
/// (an expired entry is still served while one request reads it again, so that expiry does
/// not send every concurrent request to the database at once).
pub const PROFILE_TTL_MS: i64 = 2_000;

/// (user, organization) → (time read, profile).
type ProfileMap = HashMap<(Uuid, Uuid), (i64, Arc<Profile>)>;

/// Profiles by (user, organization), each with the time it was read.
#[derive(Debug, Default)]
pub struct ProfileCache {
    map: RwLock<ProfileMap>,
    /// Keys being read again right now.
    refreshing: std::sync::Mutex<std::collections::HashSet<(Uuid, Uuid)>>,
}

/// What the cache holds for a key.
enum Cached {
    Fresh(Arc<Profile>),
    /// Expired; serve it if another request is already reading the key again.
    Stale(Arc<Profile>),
    Missing,
}

impl ProfileCache {
    fn get(&self, key: (Uuid, Uuid), now_ms: i64) -> Cached {
        let map = self.map.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get(&key) {
            Some((at, p)) if now_ms.saturating_sub(*at) < PROFILE_TTL_MS => Cached::Fresh(p.clone()),
            Some((at, p)) if now_ms.saturating_sub(*at) < 2 * PROFILE_TTL_MS => Cached::Stale(p.clone()),
            _ => Cached::Missing,
        }
    }

    /// True for the one caller that should read the key again.
    fn claim(&self, key: (Uuid, Uuid)) -> bool {
        self.refreshing.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key)
    }

    fn release(&self, key: (Uuid, Uuid)) {
        self.refreshing.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
    }

    fn put(&self, key: (Uuid, Uuid), now_ms: i64, profile: Arc<Profile>) {
        let mut map = self.map.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= 50_000 {
            map.retain(|_, (at, _)| now_ms.saturating_sub(*at) < PROFILE_TTL_MS);
            if map.len() >= 50_000 {
                map.clear();
            }
        }
        map.insert(key, (now_ms, profile));
    }

    /// Drops every cached profile of a user (after a change to the user).
    pub fn forget_user(&self, user_id: Uuid) {
        let mut map = self.map.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|(u, _), _| *u != user_id);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("that username is taken")]
    UsernameTaken,
    #[error("session not found")]
    SessionNotFound,
    #[error("the current password is incorrect")]
    WrongPassword,
    #[error("the last active administrator cannot delete their account")]
    LastAdmin,
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Username rule of behavior.md §5.3: 3-30 bytes of `[A-Za-z0-9_-]`.
pub fn is_valid_username(u: &str) -> bool {
    (3..=30).contains(&u.len()) && u.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Services {
    /// The profile behind an access token; `None` when the user or organization is gone.
    pub async fn current_profile(&self, user_id: Uuid, org_id: Uuid) -> Result<Option<Arc<Profile>>, StoreError> {
        let now = self.now_ms();
        let key = (user_id, org_id);
        match self.profiles.get(key, now) {
            Cached::Fresh(p) => return Ok(Some(p)),
            Cached::Stale(p) if !self.profiles.claim(key) => return Ok(Some(p)),
            Cached::Stale(_) => {}
            Cached::Missing => {
                self.profiles.claim(key);
            }
        }
        let read = async {
            let (Some(user), Some(org_name)) =
                (self.store.user_by_id(user_id).await?, self.store.org_name(org_id).await?)
            else {
                return Ok(None);
            };
            let profile = Arc::new(Profile { user, org_name });
            self.profiles.put(key, now, profile.clone());
            Ok(Some(profile))
        }
        .await;
        self.profiles.release(key);
        read
    }

    pub async fn list_sessions(&self, user_id: Uuid) -> Result<Vec<SessionInfo>, StoreError> {
        self.store.active_sessions(user_id, self.now_ms()).await
    }

    /// Revokes one of the user's own sessions; its access tokens stop at once.
    pub async fn revoke_own_session(&self, user_id: Uuid, session_id: Uuid) -> Result<(), ProfileError> {
        let now = self.now_ms();
        let mut tx = self.store.begin().await?;
        if !tx.revoke_own_session(user_id, session_id, now).await? {
            return Err(ProfileError::SessionNotFound);
        }
        tx.commit().await?;
        self.revoked.revoke(session_id, now);
        Ok(())
    }

    /// Signs out everywhere else.
    pub async fn revoke_other_sessions(&self, user_id: Uuid, current: Uuid) -> Result<usize, StoreError> {
        let now = self.now_ms();
        let mut tx = self.store.begin().await?;
        let ids = tx.revoke_other_sessions(user_id, current, now).await?;
        tx.commit().await?;
        ids.iter().for_each(|id| self.revoked.revoke(*id, now));
        Ok(ids.len())
    }

    pub async fn change_username(&self, user_id: Uuid, username: &str) -> Result<(), ProfileError> {
        let username = username.trim();
        if !is_valid_username(username) {
            return Err(ProfileError::Invalid("usernames are 3 to 30 letters, digits, _ or -"));
        }
        let mut tx = self.store.begin().await?;
        match tx.set_username(user_id, username, self.now_ms()).await {
            Err(StoreError::Conflict) => return Err(ProfileError::UsernameTaken),
            other => other?,
        }
        tx.commit().await?;
        self.profiles.forget_user(user_id);
        Ok(())
    }

    /// The account page's password change: checks the current password, and signs out every
    /// other session (the reference's page leaves them signed in), keeping this one.
    pub async fn change_password_here(
        &self,
        user_id: Uuid,
        current_session: Uuid,
        current: &str,
        new: &str,
    ) -> Result<usize, ProfileError> {
        if let Some(problem) = super::input::password_problem(new) {
            return Err(ProfileError::Invalid(problem));
        }
        if let Some(stored) = self.store.password_hash(user_id).await? {
            if self.hasher.verify(current, &stored).await? == Verified::No {
                return Err(ProfileError::WrongPassword);
            }
        }
        let hash = self.hasher.hash(new).await?;
        let now = self.now_ms();
        let mut tx = self.store.begin().await?;
        tx.set_password_hash(user_id, &hash, now).await?;
        let others = tx.revoke_other_sessions(user_id, current_session, now).await?;
        tx.commit().await?;
        others.iter().for_each(|id| self.revoked.revoke(*id, now));
        Ok(others.len())
    }

    /// Deletes the account and everything that belongs only to it, in one transaction.
    pub async fn delete_account(&self, user_id: Uuid) -> Result<(), ProfileError> {
        let now = self.now_ms();
        let mut tx = self.store.begin().await?;
        let roles = tx.user_roles(user_id).await?;
        if roles.iter().any(|r| r == "admin") && tx.other_active_admins(user_id).await? == 0 {
            return Err(ProfileError::LastAdmin);
        }
        let sessions = tx.revoke_user_sessions(user_id, now).await?;
        tx.delete_user(user_id).await?;
        tx.commit().await?;
        self.profiles.forget_user(user_id);
        sessions.iter().for_each(|id| self.revoked.revoke(*id, now));
        Ok(())
    }
}

/// "Firefox on Linux", "Safari on iPhone"... from a user agent, for people, not for policy.
pub fn describe_device(ua: &str) -> (String, &'static str) {
    let browser = if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("OPR/") || ua.contains("Opera") {
        "Opera"
    } else if ua.contains("Firefox/") || ua.contains("FxiOS") {
        "Firefox"
    } else if ua.contains("Chrome/") || ua.contains("CriOS") || ua.contains("Chromium") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else if ua.is_empty() {
        "Unknown browser"
    } else if ua.starts_with("curl/") {
        "curl"
    } else {
        "Other browser"
    };
    let (os, kind) = if ua.contains("iPhone") {
        ("iPhone", "phone")
    } else if ua.contains("iPad") {
        ("iPad", "tablet")
    } else if ua.contains("Android") {
        ("Android", if ua.contains("Mobile") { "phone" } else { "tablet" })
    } else if ua.contains("Windows") {
        ("Windows", "computer")
    } else if ua.contains("Mac OS X") || ua.contains("Macintosh") {
        ("macOS", "computer")
    } else if ua.contains("CrOS") {
        ("ChromeOS", "computer")
    } else if ua.contains("Linux") {
        ("Linux", "computer")
    } else {
        ("an unknown system", "device")
    };
    (format!("{browser} on {os}"), kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices() {
        let chrome_linux = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36";
        assert_eq!(describe_device(chrome_linux).0, "Chrome on Linux");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(describe_device(iphone), ("Safari on iPhone".to_owned(), "phone"));
        let firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(describe_device(firefox).0, "Firefox on Windows");
        assert_eq!(describe_device("").0, "Unknown browser on an unknown system");
    }

    #[test]
    fn usernames() {
        assert!(is_valid_username("ada_l-1"));
        assert!(!is_valid_username("ab"));
        assert!(!is_valid_username("has space"));
        assert!(!is_valid_username(&"x".repeat(31)));
    }
}
