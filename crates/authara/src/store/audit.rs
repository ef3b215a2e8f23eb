//! The audit log (see migration 7): written in the caller's transaction.

use uuid::Uuid;

use super::{Store, StoreError, Tx, on_db, on_tx};
use crate::domain::{ActorKind, AuditAction, UserId};

/// An audit event to insert.
#[derive(Debug, Clone)]
pub struct NewAudit<'a> {
    pub actor_user_id: Option<UserId>,
    pub actor: ActorKind,
    pub action: AuditAction,
    pub target_user_id: Option<UserId>,
    pub target_email: Option<&'a str>,
    /// Sanitized JSON object text.
    pub metadata: &'a str,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub now_ms: i64,
}

/// A recorded audit event.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    /// Its place in the log (the keyset cursor with `created_at_ms`).
    pub seq: i64,
    pub id: Uuid,
    pub actor_user_id: Option<UserId>,
    pub actor: ActorKind,
    pub action: AuditAction,
    pub target_user_id: Option<UserId>,
    pub target_email: Option<String>,
    pub metadata: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at_ms: i64,
}

/// What to show of the log.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<UserId>,
    pub target: Option<UserId>,
    pub action: Option<AuditAction>,
}

const INSERT: &str = "INSERT INTO audit_events (id, actor_user_id, actor, action, target_user_id, target_email, \
     metadata, ip, user_agent, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
const COLS: &str = "SELECT seq, id, actor_user_id, actor, action, target_user_id, target_email, metadata, ip, user_agent, \
     created_at_ms FROM audit_events";

/// The page query for the filters that are set: only those conditions, so that each filter's
/// index serves it (a catch-all `$1 IS NULL OR …` condition hides the index from PostgreSQL's
/// generic plans, which then read the whole log for an actor's ten rows).
fn page_sql(f: &AuditFilter, cursor: bool) -> String {
    let mut sql = COLS.to_owned();
    let mut n = 0;
    for (set, col) in
        [(f.actor.is_some(), "actor_user_id"), (f.target.is_some(), "target_user_id"), (f.action.is_some(), "action")]
    {
        if set {
            n += 1;
            sql.push_str(if n == 1 { " WHERE " } else { " AND " });
            sql.push_str(&format!("{col} = ${n}"));
        }
    }
    if cursor {
        sql.push_str(if n == 0 { " WHERE " } else { " AND " });
        sql.push_str(&format!("(created_at_ms, seq) < (${}, ${})", n + 1, n + 2));
        n += 2;
    }
    sql.push_str(&format!(" ORDER BY created_at_ms DESC, seq DESC LIMIT ${} OFFSET ${}", n + 1, n + 2));
    sql
}

impl Tx {
    pub async fn insert_audit(&mut self, a: &NewAudit<'_>) -> Result<(), StoreError> {
        on_tx!(self, c => sqlx::query(INSERT).bind(crate::domain::time_ordered_uuid()).bind(a.actor_user_id).bind(a.actor.as_str()).bind(a.action.as_str())
            .bind(a.target_user_id).bind(a.target_email).bind(a.metadata).bind(a.ip).bind(a.user_agent).bind(a.now_ms)
            .execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}

impl Store {
    /// A page of the log, newest first, `offset` rows in.
    pub async fn audit_page(&self, f: &AuditFilter, limit: i64, offset: i64) -> Result<Vec<AuditRow>, StoreError> {
        self.audit_rows(f, None, limit, offset).await
    }

    /// The page of the log that follows the row at `before` (`created_at_ms`, `seq`): as cheap
    /// at the 500th page as at the first, where an offset reads every row it skips.
    pub async fn audit_page_before(
        &self,
        f: &AuditFilter,
        before: (i64, i64),
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        self.audit_rows(f, Some(before), limit, 0).await
    }

    async fn audit_rows(
        &self,
        f: &AuditFilter,
        before: Option<(i64, i64)>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let sql = page_sql(f, before.is_some());
        Ok(on_db!(self, p => {
            let mut q = sqlx::query_as(&sql);
            if let Some(a) = f.actor {
                q = q.bind(a);
            }
            if let Some(t) = f.target {
                q = q.bind(t);
            }
            if let Some(a) = f.action {
                q = q.bind(a.as_str());
            }
            if let Some((at, seq)) = before {
                q = q.bind(at).bind(seq);
            }
            q.bind(limit).bind(offset).fetch_all(p).await
        })?)
    }

    /// Deletes events older than `before_ms`.
    pub async fn cleanup_audit(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.delete_batched_in_order("audit_events", "created_at_ms < $1", Some("created_at_ms"), &[before_ms]).await
    }
}
