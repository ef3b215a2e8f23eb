//! Sessions: creation, refresh with rotation and reuse detection, logout, revocation.
//!
//! why (behavior.md §2.4, design.md decisions 1-2): the reference rolls back the revocation it
//! makes on reuse and purges consumed tokens after five minutes. Here presenting a consumed
//! token revokes the session in a committed transaction, and consumed tokens are kept until
//! they expire. Refreshes of one token inside `AUTHARA_REFRESH_TOKEN_REUSE_GRACE` are a race
//! between tabs, not an attack: every one of them receives the same successor (derived from the
//! consumed token under a server key), so each rotation step leaves exactly one live token.

use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use super::Core;
use super::audit::Actor;
use super::auth::Principal;
use super::events::DomainEvent;
use super::token::{Grant, TokenError};
use crate::clock::ms;
use crate::config::RotationPolicy;
use crate::domain::{Audience, ClientInfo, PlatformRole, SessionId, UserId, truncate};
use crate::store::accounts::{Membership, UserRow};
use crate::store::refresh::NewRefresh;
use crate::store::sessions::{NewSession, SessionInfo};
use crate::store::{StoreError, Tx};

/// What a new session starts from: who, where, for which audience, and what the sign-in proved
/// (RFC 8176 `amr`, space-separated; `mfa`: a second factor was used).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewSignIn<'a> {
    pub user: &'a UserRow,
    pub membership: Membership,
    pub roles: &'a [PlatformRole],
    pub audience: Audience,
    pub amr: &'a str,
    pub mfa: bool,
}

/// A new refresh token: 32 random bytes, base64url without padding (43 characters).
pub fn new_refresh_token() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Refresh tokens are stored only as SHA-256 of the token string.
pub fn hash_refresh_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Tokens handed to the client.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("user disabled")]
    Disabled,
    /// The allowlist is on and the user's email is not on it.
    #[error("user not allowed")]
    NotAllowed,
    #[error("audience not permitted")]
    AudienceForbidden,
    #[error("user has no organization")]
    NoOrganization,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Unknown, expired, or its session revoked or expired.
    #[error("refresh token invalid")]
    Invalid,
    /// A consumed token presented after the grace window: the session is now revoked.
    #[error("refresh token reused")]
    Reused,
    /// Membership gone or audience not permitted.
    #[error("refresh forbidden")]
    Forbidden,
    #[error("user disabled")]
    Disabled,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("session not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many successors a replay in the grace window may follow (each step itself consumed
/// within the window) to reach the live token.
const MAX_GRACE_CHAIN: usize = 4;

/// Sessions and refresh tokens.
#[derive(Clone)]
pub struct Sessions {
    core: Core,
}

impl Sessions {
    pub(crate) fn new(core: Core) -> Self {
        Self { core }
    }

    /// Starts a session in `tx` (behavior.md §2.3) in `membership`'s organization and mints its
    /// tokens. Only the sign-in completion (`services::signin`) calls this: every policy check
    /// (disabled, allowlist, audience, second factor) is done there first.
    pub(crate) async fn start(
        &self,
        tx: &mut Tx,
        s: &NewSignIn<'_>,
        client: &ClientInfo,
    ) -> Result<(SessionId, Issued), SessionError> {
        let NewSignIn { user, membership, roles, audience, amr, mfa } = *s;
        let now = self.core.now_ms();
        let cfg = &self.core.config.session;
        let session_id = SessionId(crate::domain::time_ordered_uuid());
        let session_expires = now.saturating_add(ms(cfg.session_ttl));
        let ip = client.ip.map(|ip| ip.to_string());
        tx.insert_session(&NewSession {
            id: session_id,
            user_id: user.id,
            organization_id: membership.organization_id,
            user_agent: truncate(&client.user_agent, 255),
            ip: ip.as_deref(),
            now_ms: now,
            expires_at_ms: session_expires,
            amr,
            mfa,
        })
        .await?;
        let refresh_token = new_refresh_token();
        tx.insert_refresh(&NewRefresh {
            session_id,
            organization_id: membership.organization_id,
            token_hash: &hash_refresh_token(&refresh_token),
            now_ms: now,
            expires_at_ms: now.saturating_add(ms(cfg.refresh_ttl)).min(session_expires),
        })
        .await?;
        let access_token = self.core.tokens.mint(
            &Grant {
                user: user.id,
                session: session_id,
                org: membership.organization_id,
                org_role: membership.role,
                roles,
                audience,
                amr,
                auth_time_ms: now,
            },
            now,
        )?;
        Ok((session_id, Issued { access_token, refresh_token }))
    }

    /// A step-up in `who`'s session (`services::mfa`): the session records `amr` and that a
    /// second factor was used now; its refresh tokens are replaced and new tokens minted, whose
    /// `amr` and `auth_time` say so. The caller commits `tx`.
    pub(crate) async fn reissue(&self, tx: &mut Tx, who: &Principal, amr: &str) -> Result<Issued, SessionError> {
        let now = self.core.now_ms();
        let session = tx.session_for_update(who.session_id()).await?.ok_or(SessionError::Disabled)?;
        if session.user_id != who.user_id() || session.revoked_at_ms.is_some() || session.expires_at_ms <= now {
            return Err(SessionError::Disabled);
        }
        let user = tx.user_by_id(who.user_id()).await?.ok_or(SessionError::Disabled)?;
        if user.disabled_at_ms.is_some() {
            return Err(SessionError::Disabled);
        }
        let membership = tx.membership(who.org_id(), user.id).await?.ok_or(SessionError::NoOrganization)?;
        let roles = tx.user_roles(user.id).await?;
        let audience = who
            .claims()
            .aud
            .iter()
            .find_map(|a| Audience::parse(a).ok())
            .filter(|a| a.permits(&roles))
            .ok_or(SessionError::AudienceForbidden)?;
        tx.session_stepped_up(session.id, amr, now).await?;
        tx.delete_session_refresh_tokens(session.id).await?;
        let refresh_token = new_refresh_token();
        tx.insert_refresh(&NewRefresh {
            session_id: session.id,
            organization_id: membership.organization_id,
            token_hash: &hash_refresh_token(&refresh_token),
            now_ms: now,
            expires_at_ms: now.saturating_add(ms(self.core.config.session.refresh_ttl)).min(session.expires_at_ms),
        })
        .await?;
        let grant = Grant {
            user: user.id,
            session: session.id,
            org: membership.organization_id,
            org_role: membership.role,
            roles: &roles,
            audience,
            amr,
            auth_time_ms: now,
        };
        Ok(Issued { access_token: self.core.tokens.mint(&grant, now)?, refresh_token })
    }

    /// Ends every session of `user` (but `keep`, when given) in `tx`: revoked, their refresh
    /// tokens deleted, and, once `tx` commits, their access tokens refused at once on this
    /// instance and announced to the others. The one way a user's sessions end together
    /// (password change or reset, disabling, demotion, deletion, "sign out everywhere").
    pub(crate) async fn end_all(
        &self,
        tx: &mut Tx,
        user: UserId,
        keep: Option<SessionId>,
    ) -> Result<Vec<SessionId>, StoreError> {
        let now = self.core.now_ms();
        let ended = match keep {
            Some(keep) => {
                let ids = tx.revoke_other_sessions(user, keep, now).await?;
                tx.delete_user_refresh_tokens_except(user, keep).await?;
                ids
            }
            None => {
                let ids = tx.revoke_user_sessions(user, now).await?;
                tx.delete_user_refresh_tokens(user).await?;
                ids
            }
        };
        self.after_commit_revoke(tx, ended.clone());
        Ok(ended)
    }

    /// Ends these sessions in `tx` (one organization's sessions of a member who left it, say),
    /// with the same effect as [`Self::end_all`].
    pub(crate) async fn end(&self, tx: &mut Tx, sessions: Vec<SessionId>) -> Result<(), StoreError> {
        let now = self.core.now_ms();
        for sid in &sessions {
            tx.revoke_session(*sid, now).await?;
            tx.delete_session_refresh_tokens(*sid).await?;
        }
        self.after_commit_revoke(tx, sessions);
        Ok(())
    }

    fn after_commit_revoke(&self, tx: &mut Tx, ended: Vec<SessionId>) {
        if ended.is_empty() {
            return;
        }
        let cache = self.core.cache.clone();
        let clock = self.core.clock.clone();
        tx.after_commit(move || {
            let now = clock.now_ms();
            for sid in &ended {
                cache.remember_revoked(*sid, now);
            }
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { cache.announce_revoked(&ended).await });
            }
        });
    }

    /// Exchanges a refresh token for a new access token (and, when rotation is due, a new
    /// refresh token), in one transaction with the token row locked.
    ///
    /// The common case (token unconsumed and due for rotation) is one round trip to the
    /// database besides `BEGIN`/`COMMIT`: [`Tx::rotate_refresh_if_due`] rotates optimistically
    /// and the checks below drop the transaction, undoing it, when the refresh is refused.
    pub async fn refresh(&self, token: &str, audience: Audience) -> Result<Issued, RefreshError> {
        let done = self.refresh_counted(token, audience).await;
        let result = match &done {
            Ok((_, true)) => "grace",
            Ok((_, false)) => "rotated",
            Err(RefreshError::Reused) => "reuse_detected",
            Err(RefreshError::Invalid | RefreshError::Forbidden | RefreshError::Disabled) => "invalid",
            Err(_) => "error",
        };
        self.core.metrics.refresh(result);
        done.map(|(issued, _)| issued)
    }

    /// [`Sessions::refresh`]; and whether it was a replay inside the grace window.
    async fn refresh_counted(&self, token: &str, audience: Audience) -> Result<(Issued, bool), RefreshError> {
        let now = self.core.now_ms();
        let cfg = &self.core.config.session;
        let hash = hash_refresh_token(token);
        let refresh_expires = now.saturating_add(ms(cfg.refresh_ttl));
        // Tokens created at or before this are due for rotation.
        let due_before = match cfg.rotation {
            RotationPolicy::Never => None,
            RotationPolicy::Always => Some(i64::MAX),
            RotationPolicy::Every(d) => Some(now.saturating_sub(ms(d))),
        };
        let successor = due_before.map(|_| self.core.secrets.refresh_successor(token));
        let mut tx = self.core.store.begin().await?;
        let (ctx, rotated) = match (due_before, &successor) {
            (Some(before), Some(next)) => {
                tx.rotate_refresh_if_due(&hash, now, before, &hash_refresh_token(next), refresh_expires).await?
            }
            _ => tx.refresh_context_for_update(&hash).await?.map(|c| (c, false)),
        }
        .ok_or(RefreshError::Invalid)?;
        let row = &ctx.token;
        let session_live = row.session_revoked_at_ms.is_none() && row.session_expires_at_ms > now;
        let mut refresh_token = None;
        if let Some(consumed) = row.consumed_at_ms.filter(|_| !rotated) {
            let in_grace = now.saturating_sub(consumed) <= ms(cfg.reuse_grace);
            if !(in_grace && session_live) {
                // Reuse: revoke the whole session, and commit that revocation.
                if tx.revoke_session(row.session_id, now).await? {
                    tracing::warn!(session_id = %row.session_id, "refresh token reused; session revoked");
                    let email = tx.user_by_id(row.user_id).await?.map(|u| u.email).unwrap_or_default();
                    let event = DomainEvent::SessionsEnded {
                        user_id: row.user_id,
                        email: &email,
                        count: 1,
                        session: Some(row.session_id),
                        reuse: true,
                    };
                    let actor = Actor::anonymous(&ClientInfo::default());
                    self.core.record(&mut tx, &actor, &event).await?;
                }
                tx.commit().await?;
                self.core.cache.revoke_session(row.session_id, now).await;
                return Err(RefreshError::Reused);
            }
            refresh_token = Some(self.live_successor(&mut tx, token, now).await?);
        }
        let grace = refresh_token.is_some();
        // Every refusal below returns before the commit: the transaction is rolled back.
        if row.expires_at_ms < now || !session_live {
            return Err(RefreshError::Invalid);
        }
        if ctx.user_disabled {
            return Err(RefreshError::Disabled);
        }
        let org_role = ctx.org_role.ok_or(RefreshError::Forbidden)?;
        if !audience.permits(&ctx.roles) {
            return Err(RefreshError::Forbidden);
        }
        let due = due_before.is_some_and(|before| row.created_at_ms <= before);
        let refresh_token = match (refresh_token, successor) {
            (Some(live), _) => live,
            (None, Some(next)) if rotated => next,
            // The rotation a concurrent (since rolled back) refresh kept the optimistic
            // statement from making.
            (None, Some(next)) if due => {
                tx.consume_refresh(row.id, now).await?;
                tx.insert_refresh(&NewRefresh {
                    session_id: row.session_id,
                    organization_id: row.organization_id,
                    token_hash: &hash_refresh_token(&next),
                    now_ms: now,
                    expires_at_ms: refresh_expires.min(row.session_expires_at_ms),
                })
                .await?;
                next
            }
            _ => token.to_owned(),
        };
        // "Last active" needs minute precision, not a write per refresh.
        if now.saturating_sub(ctx.session_last_used_at_ms) >= 60_000 {
            tx.touch_session(row.session_id, now).await?;
        }
        tx.commit().await?;
        let access_token = self.core.tokens.mint(
            &Grant {
                user: row.user_id,
                session: row.session_id,
                org: row.organization_id,
                org_role,
                roles: &ctx.roles,
                audience,
                amr: &ctx.session_amr,
                auth_time_ms: ctx.session_auth_time_ms,
            },
            now,
        )?;
        Ok((Issued { access_token, refresh_token }, grace))
    }

    /// The live token a replay of `token` inside the grace window receives: its successor, or
    /// that successor's successor when the chain moved on within the window too.
    async fn live_successor(&self, tx: &mut Tx, token: &str, now: i64) -> Result<String, RefreshError> {
        let grace = ms(self.core.config.session.reuse_grace);
        let mut current = token.to_owned();
        for _ in 0..MAX_GRACE_CHAIN {
            let next = self.core.secrets.refresh_successor(&current);
            match tx.refresh_by_hash(&hash_refresh_token(&next)).await? {
                Some(r) if r.consumed_at_ms.is_none() => return Ok(next),
                Some(r) if r.consumed_at_ms.is_some_and(|c| now.saturating_sub(c) <= grace) => current = next,
                _ => return Err(RefreshError::Invalid),
            }
        }
        Err(RefreshError::Invalid)
    }

    /// Revokes the session behind a refresh token and/or an access token (signature checked,
    /// expiry ignored). Errors are logged, never reported: logout always succeeds.
    pub async fn logout(&self, refresh_token: Option<&str>, access_token: Option<&str>) {
        let now = self.core.now_ms();
        let mut sessions = Vec::new();
        if let Some(t) = refresh_token.filter(|t| !t.is_empty()) {
            match self.core.store.refresh_by_hash(&hash_refresh_token(t)).await {
                Ok(Some(row)) => sessions.push(row.session_id),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "logout: looking up the refresh token failed"),
            }
        }
        if let Some(claims) = access_token.and_then(|t| self.core.tokens.verify_signature(t).ok()) {
            let sid = SessionId(claims.sid);
            if !sessions.contains(&sid) {
                sessions.push(sid);
            }
        }
        if sessions.is_empty() {
            return;
        }
        let result: Result<(), StoreError> = async {
            let mut tx = self.core.store.begin().await?;
            for sid in &sessions {
                tx.revoke_session(*sid, now).await?;
            }
            tx.commit().await
        }
        .await;
        match result {
            Ok(()) => self.revoked(&sessions).await,
            Err(e) => tracing::warn!(error = %e, "logout: revoking the session failed"),
        }
    }

    /// Makes the access tokens of sessions revoked in a committed transaction stop at once.
    pub(crate) async fn revoked(&self, sessions: &[SessionId]) {
        self.core.cache.revoke_sessions(sessions, self.core.now_ms()).await;
    }

    /// Active sessions of a user, newest first.
    pub async fn list(&self, user: UserId) -> Result<Vec<SessionInfo>, StoreError> {
        self.core.store.active_sessions(user, self.core.now_ms()).await
    }

    /// Revokes one of the user's own sessions; its access tokens stop at once.
    pub async fn revoke_own(&self, user: UserId, session: SessionId, client: &ClientInfo) -> Result<(), RevokeError> {
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        if !tx.revoke_own_session(user, session, now).await? {
            return Err(RevokeError::NotFound);
        }
        tx.delete_session_refresh_tokens(session).await?;
        self.after_commit_revoke(&mut tx, vec![session]);
        let email = tx.user_by_id(user).await?.map(|u| u.email).unwrap_or_default();
        let event =
            DomainEvent::SessionsEnded { user_id: user, email: &email, count: 1, session: Some(session), reuse: false };
        self.core.record(&mut tx, &Actor::user(user, client), &event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Signs out everywhere but `keep`.
    pub async fn revoke_others(&self, user: UserId, keep: SessionId, client: &ClientInfo) -> Result<usize, StoreError> {
        let mut tx = self.core.store.begin().await?;
        let ids = self.end_all(&mut tx, user, Some(keep)).await?;
        let email = tx.user_by_id(user).await?.map(|u| u.email).unwrap_or_default();
        let event =
            DomainEvent::SessionsEnded { user_id: user, email: &email, count: ids.len(), session: None, reuse: false };
        self.core.record(&mut tx, &Actor::user(user, client), &event).await?;
        tx.commit().await?;
        Ok(ids.len())
    }

    /// Rebuilds the revocation list from sessions revoked within one access-token lifetime,
    /// so a restart does not revive their access tokens.
    pub async fn load_revocations(&self) -> Result<usize, StoreError> {
        let now = self.core.now_ms();
        let since = now - self.core.cache.revocation_ttl_ms();
        let ids = self.core.store.sessions_revoked_since(since).await?;
        for sid in &ids {
            self.core.cache.remember_revoked(*sid, now);
        }
        Ok(ids.len())
    }

    /// Deletes expired sessions, sessions revoked longer than one access-token lifetime ago,
    /// and expired refresh tokens. Returns (sessions, refresh tokens) deleted.
    pub async fn cleanup(&self) -> Result<(u64, u64), StoreError> {
        let now = self.core.now_ms();
        self.core.store.cleanup_sessions(now, now - self.core.cache.revocation_ttl_ms()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_256_random_bits_and_stored_only_as_their_hash() {
        let (a, b) = (new_refresh_token(), new_refresh_token());
        assert_eq!(a.len(), 43, "32 bytes, base64url without padding");
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'), "{a}");
        assert_ne!(a, b);
        assert_eq!(hash_refresh_token(&a), hash_refresh_token(&a));
        assert_ne!(hash_refresh_token(&a), hash_refresh_token(&b));
        // SHA-256 of the token string, as the store and the docs say.
        assert_eq!(
            hash_refresh_token("abc")[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "the FIPS 180-2 test vector of SHA-256(\"abc\")"
        );
    }
}
