//! Sessions: creation, refresh with rotation and reuse detection, logout.
//!
//! why (behavior.md §2.4, design.md decisions 1-2): the reference rolls back the revocation it
//! makes on reuse and purges consumed tokens after five minutes. Here presenting a consumed
//! token revokes the session in a committed transaction, and consumed tokens are kept until
//! they expire. Two refreshes of one token inside `AUTHARA_REFRESH_TOKEN_REUSE_GRACE` are a
//! race between tabs, not an attack: the later one gets a sibling successor in the same session.

use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::Services;
use super::token::{Audience, TokenError};
use crate::clock::ms;
use crate::config::RotationPolicy;
use crate::store::accounts::UserRow;
use crate::store::sessions::{NewRefresh, NewSession};
use crate::store::{StoreError, Tx};

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

/// Who is starting a session.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("user disabled")]
    Disabled,
    #[error("audience not permitted")]
    AudienceForbidden,
    #[error("user has no organization")]
    NoOrganization,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Platform roles allowed for an audience: `admin` needs the `admin` role.
fn audience_permitted(audience: Audience, roles: &[String]) -> bool {
    match audience {
        Audience::App => true,
        Audience::Admin => roles.iter().any(|r| r == "admin"),
    }
}

impl Services {
    /// Creates a session in `tx` (behavior.md §2.3) and mints its tokens.
    pub async fn create_session(
        &self,
        tx: &mut Tx,
        user: &UserRow,
        audience: Audience,
        client: &ClientInfo,
    ) -> Result<Issued, SessionError> {
        let now = self.now_ms();
        let (org_id, org_role) = tx.default_membership(user.id).await?.ok_or(SessionError::NoOrganization)?;
        let roles = tx.user_roles(user.id).await?;
        if !audience_permitted(audience, &roles) {
            return Err(SessionError::AudienceForbidden);
        }
        if user.disabled_at_ms.is_some() {
            return Err(SessionError::Disabled);
        }
        let session_id = Uuid::new_v4();
        let session_expires = now.saturating_add(ms(self.config.session.session_ttl));
        tx.insert_session(&NewSession {
            id: session_id,
            user_id: user.id,
            organization_id: org_id,
            user_agent: super::input::truncate(&client.user_agent, 255),
            ip: client.ip.as_deref().map(|ip| super::input::truncate(ip, 64)),
            now_ms: now,
            expires_at_ms: session_expires,
        })
        .await?;
        let refresh_token = new_refresh_token();
        tx.insert_refresh(&NewRefresh {
            session_id,
            organization_id: org_id,
            token_hash: &hash_refresh_token(&refresh_token),
            now_ms: now,
            expires_at_ms: now.saturating_add(ms(self.config.session.refresh_ttl)).min(session_expires),
        })
        .await?;
        let access_token = self.tokens.mint(user.id, session_id, org_id, &org_role, &roles, audience, now)?;
        Ok(Issued { access_token, refresh_token })
    }

    /// Exchanges a refresh token for a new access token (and, when rotation is due, a new
    /// refresh token), in one transaction with the token row locked.
    ///
    /// The common case (token unconsumed and due for rotation) is one round trip to the
    /// database besides `BEGIN`/`COMMIT`: [`Tx::rotate_refresh_if_due`] rotates optimistically
    /// and the checks below drop the transaction, undoing it, when the refresh is refused.
    pub async fn refresh(&self, token: &str, audience: Audience) -> Result<Issued, RefreshError> {
        let now = self.now_ms();
        let hash = hash_refresh_token(token);
        let refresh_expires = now.saturating_add(ms(self.config.session.refresh_ttl));
        // Tokens created at or before this are due for rotation.
        let due_before = match self.config.session.rotation {
            RotationPolicy::Never => None,
            RotationPolicy::Always => Some(i64::MAX),
            RotationPolicy::Every(d) => Some(now.saturating_sub(ms(d))),
        };
        // The optimistic statement needs the successor before it knows whether it rotates.
        let successor = due_before.map(|_| new_refresh_token());
        let mut tx = self.store.begin().await?;
        let (ctx, rotated) = match (due_before, &successor) {
            (Some(before), Some(next)) => {
                tx.rotate_refresh_if_due(&hash, now, before, &hash_refresh_token(next), refresh_expires).await?
            }
            _ => tx.refresh_context_for_update(&hash).await?.map(|c| (c, false)),
        }
        .ok_or(RefreshError::Invalid)?;
        let row = &ctx.token;
        let session_live = row.session_revoked_at_ms.is_none() && row.session_expires_at_ms > now;
        if let Some(consumed) = row.consumed_at_ms.filter(|_| !rotated) {
            let in_grace = now.saturating_sub(consumed) <= ms(self.config.session.reuse_grace);
            if !(in_grace && session_live) {
                // Reuse: revoke the whole session, and commit that revocation.
                if tx.revoke_session(row.session_id, now).await? {
                    tracing::warn!(session_id = %row.session_id, "refresh token reused; session revoked");
                }
                tx.commit().await?;
                self.revoked.revoke(row.session_id, now);
                return Err(RefreshError::Reused);
            }
        }
        // Every refusal below returns before the commit: the transaction is rolled back.
        if row.expires_at_ms < now || !session_live {
            return Err(RefreshError::Invalid);
        }
        if ctx.user_disabled {
            return Err(RefreshError::Disabled);
        }
        let org_role = ctx.org_role.clone().ok_or(RefreshError::Forbidden)?;
        let roles = &ctx.roles;
        if !audience_permitted(audience, roles) {
            return Err(RefreshError::Forbidden);
        }
        let due = due_before.is_some_and(|before| row.created_at_ms <= before);
        let refresh_token = match successor {
            Some(next) if rotated => next,
            // A sibling successor inside the grace window (the token is already consumed), or
            // the rotation a concurrent refresh kept the optimistic statement from making.
            spare if row.consumed_at_ms.is_some() || due => {
                let next = spare.unwrap_or_else(new_refresh_token);
                if row.consumed_at_ms.is_none() {
                    tx.consume_refresh(row.id, now).await?;
                }
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
        let access_token =
            self.tokens.mint(row.user_id, row.session_id, row.organization_id, &org_role, roles, audience, now)?;
        Ok(Issued { access_token, refresh_token })
    }

    /// Revokes the session behind a refresh token and/or an access token (signature checked,
    /// expiry ignored). Errors are logged, never reported: logout always succeeds.
    pub async fn logout(&self, refresh_token: Option<&str>, access_token: Option<&str>) {
        let now = self.now_ms();
        let mut sessions = Vec::new();
        if let Some(t) = refresh_token.filter(|t| !t.is_empty()) {
            match self.store.refresh_by_hash(&hash_refresh_token(t)).await {
                Ok(Some(row)) => sessions.push(row.session_id),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "logout: looking up the refresh token failed"),
            }
        }
        if let Some(claims) = access_token.and_then(|t| self.tokens.verify_signature(t).ok()) {
            if !sessions.contains(&claims.sid) {
                sessions.push(claims.sid);
            }
        }
        if sessions.is_empty() {
            return;
        }
        let result: Result<(), StoreError> = async {
            let mut tx = self.store.begin().await?;
            for sid in &sessions {
                tx.revoke_session(*sid, now).await?;
            }
            tx.commit().await
        }
        .await;
        match result {
            Ok(()) => sessions.iter().for_each(|sid| self.revoked.revoke(*sid, now)),
            Err(e) => tracing::warn!(error = %e, "logout: revoking the session failed"),
        }
    }
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
