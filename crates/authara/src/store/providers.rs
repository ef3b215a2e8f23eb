//! Provider identities (`auth_providers` rows other than `password`), pending provider links
//! and authorization-code flows in progress.

use uuid::Uuid;

use super::accounts::UserRow;
use super::{Store, StoreError, Tx, TxInner, on_db, on_tx};
use crate::domain::{SessionId, UserId};

/// A provider identity linked to a user.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LinkedProvider {
    pub provider: String,
    pub created_at_ms: i64,
}

/// A pending provider link (behavior.md §12).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingLinkRow {
    pub id: Uuid,
    pub user_id: UserId,
    pub session_id: Option<SessionId>,
    pub provider: String,
    pub provider_user_id: Option<String>,
    pub provider_email: Option<String>,
    pub provider_email_verified: bool,
    pub purpose: String,
    pub return_to: Option<String>,
    pub expires_at_ms: i64,
    pub consumed_at_ms: Option<i64>,
    /// SHA-256 of the value of the `authara_link` cookie of the browser that made it.
    pub binding_hash: Option<Vec<u8>>,
}

/// A pending link to insert.
#[derive(Debug, Clone)]
pub struct NewPendingLink<'a> {
    pub id: Uuid,
    pub user_id: UserId,
    pub session_id: Option<SessionId>,
    pub provider: &'a str,
    pub provider_user_id: Option<&'a str>,
    pub provider_email: Option<&'a str>,
    pub provider_email_verified: bool,
    pub purpose: &'a str,
    pub return_to: Option<&'a str>,
    pub binding_hash: Option<&'a [u8]>,
    pub expires_at_ms: i64,
    pub now_ms: i64,
}

/// A verified identity waiting on an invitation's signup page (migration 13).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingSignupRow {
    pub id: Uuid,
    pub invitation_id: Uuid,
    pub provider: String,
    pub provider_user_id: String,
    pub provider_email: String,
    pub binding_hash: Vec<u8>,
    pub expires_at_ms: i64,
    pub consumed_at_ms: Option<i64>,
}

/// A pending signup to insert.
#[derive(Debug, Clone)]
pub struct NewPendingSignup<'a> {
    pub id: Uuid,
    pub invitation_id: Uuid,
    pub provider: &'a str,
    pub provider_user_id: &'a str,
    pub provider_email: &'a str,
    pub binding_hash: &'a [u8],
    pub expires_at_ms: i64,
    pub now_ms: i64,
}

/// An authorization-code flow in progress.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FlowRow {
    pub provider: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub purpose: String,
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    pub return_to: String,
    pub expires_at_ms: i64,
}

/// A flow to insert.
#[derive(Debug, Clone)]
pub struct NewFlow<'a> {
    pub state_hash: &'a [u8],
    pub provider: &'a str,
    pub nonce: &'a str,
    pub pkce_verifier: &'a str,
    pub purpose: &'a str,
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    pub return_to: &'a str,
    pub expires_at_ms: i64,
    pub now_ms: i64,
}

const USER_BY_PROVIDER: &str = "SELECT u.id, u.email, u.username, u.created_at_ms, u.disabled_at_ms FROM users u \
     JOIN auth_providers p ON p.user_id = u.id WHERE p.provider = $1 AND p.provider_user_id = $2";
const LINKED: &str = "SELECT provider, created_at_ms FROM auth_providers \
     WHERE user_id = $1 AND provider <> 'password' AND provider_user_id IS NOT NULL AND provider_user_id <> '' \
     ORDER BY provider";
const INSERT_LINK: &str = "INSERT INTO auth_providers (id, user_id, provider, provider_user_id, created_at_ms, updated_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $5)";
const DELETE_LINK: &str = "DELETE FROM auth_providers WHERE user_id = $1 AND provider = $2";
/// Provider identities linked before `$2` (the first proof of the address removes them).
const DELETE_LINKS_BEFORE: &str = "DELETE FROM auth_providers WHERE user_id = $1 AND provider <> 'password' \
     AND created_at_ms < $2 RETURNING provider";
const PENDING_COLUMNS: &str = "id, user_id, session_id, provider, provider_user_id, provider_email, \
     provider_email_verified, purpose, return_to, expires_at_ms, consumed_at_ms, binding_hash";
const INSERT_PENDING: &str = "INSERT INTO pending_provider_links (id, user_id, session_id, provider, provider_user_id, \
     provider_email, provider_email_verified, purpose, return_to, expires_at_ms, created_at_ms, binding_hash) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
const SIGNUP_COLUMNS: &str = "id, invitation_id, provider, provider_user_id, provider_email, binding_hash, \
     expires_at_ms, consumed_at_ms";
const INSERT_SIGNUP: &str = "INSERT INTO pending_provider_signups (id, invitation_id, provider, provider_user_id, \
     provider_email, binding_hash, expires_at_ms, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const CONSUME_SIGNUP: &str =
    "UPDATE pending_provider_signups SET consumed_at_ms = $2 WHERE id = $1 AND consumed_at_ms IS NULL";
const SPEND_ID_TOKEN: &str = "INSERT INTO spent_id_tokens (token_hash, expires_at_ms) VALUES ($1, $2) \
     ON CONFLICT (token_hash) DO NOTHING";
const CONSUME_PENDING: &str =
    "UPDATE pending_provider_links SET consumed_at_ms = $2 WHERE id = $1 AND consumed_at_ms IS NULL";
const INSERT_FLOW: &str = "INSERT INTO oauth_flows (state_hash, provider, nonce, pkce_verifier, purpose, user_id, \
     session_id, return_to, expires_at_ms, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
const TAKE_FLOW: &str = "DELETE FROM oauth_flows WHERE state_hash = $1 RETURNING provider, nonce, pkce_verifier, \
     purpose, user_id, session_id, return_to, expires_at_ms";
/// Pending links are kept a day past their expiry (the reference never purges them).
/// What the cleanup deletes from the provider tables.
const EXPIRED: &str = "expires_at_ms < $1";
const EXPIRED_LINKS_KEPT_MS: i64 = 24 * 60 * 60 * 1000;

fn select_pending(for_update: bool) -> String {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    format!("SELECT {PENDING_COLUMNS} FROM pending_provider_links WHERE id = $1{lock}")
}

fn select_signup(for_update: bool) -> String {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    format!("SELECT {SIGNUP_COLUMNS} FROM pending_provider_signups WHERE id = $1{lock}")
}

impl Store {
    /// The user with this provider identity.
    pub async fn user_by_provider(&self, provider: &str, subject: &str) -> Result<Option<UserRow>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(USER_BY_PROVIDER).bind(provider).bind(subject).fetch_optional(p).await)?)
    }

    /// The user's provider identities (not the password), by provider name.
    pub async fn linked_providers(&self, user_id: UserId) -> Result<Vec<LinkedProvider>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(LINKED).bind(user_id).fetch_all(p).await)?)
    }

    /// A pending link, consumed or not.
    pub async fn pending_link(&self, id: Uuid) -> Result<Option<PendingLinkRow>, StoreError> {
        let sql = select_pending(false);
        Ok(on_db!(self, p => sqlx::query_as(&sql).bind(id).fetch_optional(p).await)?)
    }

    /// Records a flow in progress.
    pub async fn insert_flow(&self, f: &NewFlow<'_>) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        on_tx!(tx, c => sqlx::query(INSERT_FLOW).bind(f.state_hash).bind(f.provider).bind(f.nonce).bind(f.pkce_verifier)
            .bind(f.purpose).bind(f.user_id).bind(f.session_id).bind(f.return_to).bind(f.expires_at_ms).bind(f.now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        tx.commit().await
    }

    /// Takes the flow with this state hash: deleted at once, so a replayed `state` finds
    /// nothing, whichever instance it reaches. Expired flows are returned too (the caller
    /// refuses them) and are gone afterwards.
    pub async fn take_flow(&self, state_hash: &[u8]) -> Result<Option<FlowRow>, StoreError> {
        let mut tx = self.begin().await?;
        let row = on_tx!(tx, c => sqlx::query_as(TAKE_FLOW).bind(state_hash).fetch_optional(&mut *c).await)?;
        tx.commit().await?;
        Ok(row)
    }

    /// Deletes abandoned flows, and pending links a day after they expired; returns the flows.
    pub async fn delete_expired_flows(&self, now_ms: i64) -> Result<u64, StoreError> {
        let n = self.delete_batched("oauth_flows", EXPIRED, &[now_ms]).await?;
        self.delete_batched("pending_provider_links", EXPIRED, &[now_ms - EXPIRED_LINKS_KEPT_MS]).await?;
        self.delete_batched("pending_provider_signups", EXPIRED, &[now_ms - EXPIRED_LINKS_KEPT_MS]).await?;
        self.delete_batched("spent_id_tokens", EXPIRED, &[now_ms]).await?;
        Ok(n)
    }

    /// A pending signup, consumed or not.
    pub async fn pending_signup(&self, id: Uuid) -> Result<Option<PendingSignupRow>, StoreError> {
        let sql = select_signup(false);
        Ok(on_db!(self, p => sqlx::query_as(&sql).bind(id).fetch_optional(p).await)?)
    }

    /// Records that an ID token (its SHA-256) signed someone in; `false` when it already had
    /// (on any instance): a token is good for one sign-in.
    pub async fn spend_id_token(&self, token_hash: &[u8], expires_at_ms: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let n = on_tx!(tx, c => sqlx::query(SPEND_ID_TOKEN).bind(token_hash).bind(expires_at_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        tx.commit().await?;
        Ok(n == 1)
    }
}

impl Tx {
    pub async fn user_by_provider(&mut self, provider: &str, subject: &str) -> Result<Option<UserRow>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_as(USER_BY_PROVIDER).bind(provider).bind(subject)
            .fetch_optional(&mut *c).await)?)
    }

    /// Links a provider identity; `Conflict` when the identity belongs to someone or the user
    /// already has one at this provider.
    pub async fn link_provider(
        &mut self,
        user_id: UserId,
        provider: &str,
        subject: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(INSERT_LINK).bind(Uuid::new_v4()).bind(user_id).bind(provider).bind(subject)
            .bind(now_ms).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Removes the user's credential at `provider` (`password` included); `false` if none.
    pub async fn unlink_provider(&mut self, user_id: UserId, provider: &str) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(DELETE_LINK).bind(user_id).bind(provider)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    pub async fn insert_pending_link(&mut self, l: &NewPendingLink<'_>) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(INSERT_PENDING).bind(l.id).bind(l.user_id).bind(l.session_id).bind(l.provider)
            .bind(l.provider_user_id).bind(l.provider_email).bind(l.provider_email_verified).bind(l.purpose)
            .bind(l.return_to).bind(l.expires_at_ms).bind(l.now_ms).bind(l.binding_hash)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Removes the provider identities linked before `before_ms`; their provider names.
    pub async fn unlink_providers_before(
        &mut self,
        user_id: UserId,
        before_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_scalar(DELETE_LINKS_BEFORE).bind(user_id).bind(before_ms)
            .fetch_all(&mut *c).await)?)
    }

    pub async fn insert_pending_signup(&mut self, s: &NewPendingSignup<'_>) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(INSERT_SIGNUP).bind(s.id).bind(s.invitation_id).bind(s.provider)
            .bind(s.provider_user_id).bind(s.provider_email).bind(s.binding_hash).bind(s.expires_at_ms).bind(s.now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Reads a pending signup and locks it until commit.
    pub async fn pending_signup_for_update(&mut self, id: Uuid) -> Result<Option<PendingSignupRow>, StoreError> {
        Ok(match &mut self.0 {
            TxInner::Sqlite(t) => sqlx::query_as(&select_signup(false)).bind(id).fetch_optional(&mut **t).await?,
            TxInner::Postgres(t) => sqlx::query_as(&select_signup(true)).bind(id).fetch_optional(&mut **t).await?,
        })
    }

    /// Marks a pending signup used; `false` if it already was.
    pub async fn consume_pending_signup(&mut self, id: Uuid, now_ms: i64) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(CONSUME_SIGNUP).bind(id).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Reads a pending link and locks it until commit (`FOR UPDATE` on PostgreSQL; SQLite's
    /// write transaction already excludes other writers).
    pub async fn pending_link_for_update(&mut self, id: Uuid) -> Result<Option<PendingLinkRow>, StoreError> {
        Ok(match &mut self.0 {
            TxInner::Sqlite(t) => sqlx::query_as(&select_pending(false)).bind(id).fetch_optional(&mut **t).await?,
            TxInner::Postgres(t) => sqlx::query_as(&select_pending(true)).bind(id).fetch_optional(&mut **t).await?,
        })
    }

    /// Marks a pending link used; `false` if it already was.
    pub async fn consume_pending_link(&mut self, id: Uuid, now_ms: i64) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(CONSUME_PENDING).bind(id).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}
