//! Passkeys (WebAuthn credentials) and the ceremonies in progress (`webauthn_challenges`).

use uuid::Uuid;

use super::{Store, StoreError, Tx, TxInner, on_db, on_tx};
use crate::domain::UserId;

/// A passkey as the account and admin pages list it (never key material).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PasskeyRow {
    pub id: Uuid,
    pub user_id: UserId,
    pub name: String,
    pub created_at_ms: i64,
    pub last_used_at_ms: Option<i64>,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub clone_warning: bool,
}

/// A passkey with its verified credential record, for a sign-in.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredPasskey {
    pub id: Uuid,
    pub user_id: UserId,
    /// The WebAuthn library's credential record (JSON).
    pub credential: String,
    pub sign_count: i64,
}

/// A passkey to insert.
#[derive(Debug, Clone)]
pub struct NewPasskey<'a> {
    pub id: Uuid,
    pub user_id: UserId,
    pub credential_id: &'a [u8],
    pub credential: &'a str,
    pub name: &'a str,
    pub aaguid: Option<&'a [u8]>,
    pub attestation_format: &'a str,
    pub transports: &'a str,
    pub sign_count: i64,
    pub user_verified: bool,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub now_ms: i64,
}

/// What a successful sign-in changes on a passkey.
#[derive(Debug, Clone)]
pub struct PasskeyUse<'a> {
    pub id: Uuid,
    pub credential: &'a str,
    pub sign_count: i64,
    pub user_verified: bool,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub now_ms: i64,
}

/// A ceremony in progress.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CeremonyRow {
    pub id: Uuid,
    pub user_id: Option<UserId>,
    pub purpose: String,
    pub session_data: String,
    pub expires_at_ms: i64,
    pub consumed_at_ms: Option<i64>,
}

const LIST: &str = "SELECT id, user_id, name, created_at_ms, last_used_at_ms, backup_eligible, backup_state, \
     clone_warning FROM passkeys WHERE user_id = $1 ORDER BY created_at_ms, id";
const CREDENTIAL_IDS: &str = "SELECT credential_id FROM passkeys WHERE user_id = $1";
const BY_CREDENTIAL: &str =
    "SELECT id, user_id, credential, sign_count FROM passkeys WHERE credential_id = $1 AND user_id = $2";
const BY_CREDENTIAL_FOR_UPDATE: &str = "SELECT id, user_id, credential, sign_count FROM passkeys \
     WHERE credential_id = $1 AND user_id = $2 FOR UPDATE";
const INSERT: &str = "INSERT INTO passkeys (id, user_id, credential_id, credential, name, aaguid, attestation_format, \
     transports, sign_count, user_verified, backup_eligible, backup_state, created_at_ms, updated_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)";
const USED: &str = "UPDATE passkeys SET credential = $2, sign_count = $3, user_verified = $4, backup_eligible = $5, \
     backup_state = $6, last_used_at_ms = $7, updated_at_ms = $7 WHERE id = $1";
const CLONE_WARNING: &str = "UPDATE passkeys SET clone_warning = TRUE, updated_at_ms = $2 WHERE id = $1";
const RENAME: &str = "UPDATE passkeys SET name = $3, updated_at_ms = $4 WHERE id = $1 AND user_id = $2";
const DELETE: &str = "DELETE FROM passkeys WHERE id = $1 AND user_id = $2";
const NAME: &str = "SELECT name FROM passkeys WHERE id = $1 AND user_id = $2";
/// Passkeys added before `$2` (the first proof of the address removes them).
const DELETE_BEFORE: &str = "DELETE FROM passkeys WHERE user_id = $1 AND created_at_ms < $2 RETURNING name";
/// A user's earlier registrations still open: a new one replaces them, so a signed-in client
/// cannot pile up ceremony rows (sign-ins are bounded by their per-IP limit instead).
const DROP_OPEN_REGISTRATIONS: &str = "DELETE FROM webauthn_challenges \
     WHERE user_id = $1 AND purpose = 'registration' AND consumed_at_ms IS NULL";
const INSERT_CEREMONY: &str = "INSERT INTO webauthn_challenges (id, user_id, purpose, session_data, created_at_ms, \
     expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6)";
const CEREMONY: &str = "SELECT id, user_id, purpose, session_data, expires_at_ms, consumed_at_ms \
     FROM webauthn_challenges WHERE id = $1";
const CEREMONY_FOR_UPDATE: &str = "SELECT id, user_id, purpose, session_data, expires_at_ms, consumed_at_ms \
     FROM webauthn_challenges WHERE id = $1 FOR UPDATE";
const CONSUME_CEREMONY: &str =
    "UPDATE webauthn_challenges SET consumed_at_ms = $2 WHERE id = $1 AND consumed_at_ms IS NULL";
/// Ceremonies are kept a day past their expiry, then removed by the cleanup worker.
const CLEAN_CEREMONIES: &str = "expires_at_ms < $1";

impl Store {
    /// The user's passkeys, oldest first.
    pub async fn passkeys_of(&self, user_id: UserId) -> Result<Vec<PasskeyRow>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_as(LIST).bind(user_id).fetch_all(p).await)?)
    }

    /// The credential ids of the user's passkeys (a registration excludes them).
    pub async fn passkey_credential_ids(&self, user_id: UserId) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(on_db!(self, p => sqlx::query_scalar(CREDENTIAL_IDS).bind(user_id).fetch_all(p).await)?)
    }

    /// Deletes ceremonies that expired before `before_ms`.
    pub async fn cleanup_ceremonies(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.delete_batched("webauthn_challenges", CLEAN_CEREMONIES, &[before_ms]).await
    }
}

impl Tx {
    pub async fn insert_ceremony(
        &mut self,
        id: Uuid,
        user_id: Option<UserId>,
        purpose: &str,
        session_data: &str,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        if let Some(user) = user_id.filter(|_| purpose == "registration") {
            on_tx!(self, c => sqlx::query(DROP_OPEN_REGISTRATIONS).bind(user)
                .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        }
        on_tx!(self, c => sqlx::query(INSERT_CEREMONY).bind(id).bind(user_id).bind(purpose).bind(session_data)
            .bind(now_ms).bind(expires_at_ms).execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Reads a ceremony and locks it until commit (`FOR UPDATE` on PostgreSQL; SQLite's write
    /// transaction already excludes other writers).
    pub async fn ceremony_for_update(&mut self, id: Uuid) -> Result<Option<CeremonyRow>, StoreError> {
        Ok(match &mut self.0 {
            TxInner::Sqlite(t) => sqlx::query_as(CEREMONY).bind(id).fetch_optional(&mut **t).await?,
            TxInner::Postgres(t) => sqlx::query_as(CEREMONY_FOR_UPDATE).bind(id).fetch_optional(&mut **t).await?,
        })
    }

    /// The passkey with this credential id, if it belongs to `user_id`, locked until commit (two
    /// sign-ins with one passkey check and advance its counter one after the other).
    pub async fn passkey_for_update(
        &mut self,
        credential_id: &[u8],
        user_id: UserId,
    ) -> Result<Option<StoredPasskey>, StoreError> {
        Ok(match &mut self.0 {
            TxInner::Sqlite(t) => {
                sqlx::query_as(BY_CREDENTIAL).bind(credential_id).bind(user_id).fetch_optional(&mut **t).await?
            }
            TxInner::Postgres(t) => {
                sqlx::query_as(BY_CREDENTIAL_FOR_UPDATE)
                    .bind(credential_id)
                    .bind(user_id)
                    .fetch_optional(&mut **t)
                    .await?
            }
        })
    }

    /// Marks a ceremony used; `false` if it already was.
    pub async fn consume_ceremony(&mut self, id: Uuid, now_ms: i64) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(CONSUME_CEREMONY).bind(id).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Inserts a passkey; a credential id registered before is `Conflict`.
    pub async fn insert_passkey(&mut self, p: &NewPasskey<'_>) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(INSERT).bind(p.id).bind(p.user_id).bind(p.credential_id).bind(p.credential)
            .bind(p.name).bind(p.aaguid).bind(p.attestation_format).bind(p.transports).bind(p.sign_count)
            .bind(p.user_verified).bind(p.backup_eligible).bind(p.backup_state).bind(p.now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Records a sign-in with a passkey: its updated credential record, counter and flags.
    pub async fn passkey_used(&mut self, u: &PasskeyUse<'_>) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(USED).bind(u.id).bind(u.credential).bind(u.sign_count).bind(u.user_verified)
            .bind(u.backup_eligible).bind(u.backup_state).bind(u.now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Flags a passkey whose signature counter went backwards (a possible clone).
    pub async fn set_passkey_clone_warning(&mut self, id: Uuid, now_ms: i64) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(CLONE_WARNING).bind(id).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Renames one of the user's passkeys; `false` when they have no such passkey.
    pub async fn rename_passkey(
        &mut self,
        user_id: UserId,
        id: Uuid,
        name: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(RENAME).bind(id).bind(user_id).bind(name).bind(now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// The name of one of the user's passkeys (`None`: no such passkey).
    pub async fn passkey_name(&mut self, user_id: UserId, id: Uuid) -> Result<Option<String>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_scalar(NAME).bind(id).bind(user_id).fetch_optional(&mut *c).await)?)
    }

    /// Deletes one of the user's passkeys; `false` when they have no such passkey.
    /// Removes the user's passkeys added before `before_ms`; their names.
    pub async fn delete_passkeys_before(&mut self, user_id: UserId, before_ms: i64) -> Result<Vec<String>, StoreError> {
        Ok(on_tx!(self, c => sqlx::query_scalar(DELETE_BEFORE).bind(user_id).bind(before_ms).fetch_all(&mut *c).await)?)
    }

    pub async fn delete_passkey(&mut self, user_id: UserId, id: Uuid) -> Result<bool, StoreError> {
        let n = on_tx!(self, c => sqlx::query(DELETE).bind(id).bind(user_id)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}
