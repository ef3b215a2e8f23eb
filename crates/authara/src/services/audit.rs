//! The audit writer: admin actions and security-relevant user events, written in the same
//! transaction as what they describe (design.md decision 14), with metadata sanitized as
//! behavior.md §10 says: keys naming secrets are dropped, strings cut at 512 bytes.

use std::net::IpAddr;

use serde_json::{Map, Value};

use super::Core;
use super::sessions::ClientInfo;
use crate::domain::{UserId, truncate};
use crate::store::audit::NewAudit;
use crate::store::{StoreError, Tx};

/// Who acted.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: Option<UserId>,
    pub kind: ActorKind,
    pub ip: Option<IpAddr>,
    pub user_agent: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    /// A user acting on their own account (or signing in).
    User,
    /// An administrator in the console.
    Admin,
    /// `authara admin …` on the server's shell.
    Cli,
    /// Nobody identified (a failed sign-in).
    Anonymous,
}

impl ActorKind {
    fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Admin => "admin",
            ActorKind::Cli => "cli",
            ActorKind::Anonymous => "anonymous",
        }
    }
}

impl Actor {
    pub fn user(user: UserId, client: &ClientInfo) -> Self {
        Actor { user: Some(user), kind: ActorKind::User, ip: client.ip, user_agent: client.user_agent.clone() }
    }

    pub fn anonymous(client: &ClientInfo) -> Self {
        Actor { user: None, kind: ActorKind::Anonymous, ip: client.ip, user_agent: client.user_agent.clone() }
    }

    pub fn cli() -> Self {
        Actor { user: None, kind: ActorKind::Cli, ip: None, user_agent: "authara cli".to_owned() }
    }
}

/// Keys whose values never enter the log.
const SECRET_KEYS: [&str; 9] =
    ["password", "token", "hash", "secret", "code", "credential", "public_key", "request_body", "body"];

/// Drops secret-looking keys and cuts strings to 512 bytes, recursively.
pub fn sanitize(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| {
                    let k = k.to_ascii_lowercase();
                    !SECRET_KEYS.iter().any(|s| k.contains(s))
                })
                .map(|(k, v)| (k, sanitize(v)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(sanitize).collect()),
        Value::String(s) => Value::String(truncate(&s, 512).to_owned()),
        other => other,
    }
}

impl Core {
    /// Writes an audit event in `tx`.
    pub(crate) async fn audit(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        action: &str,
        target: Option<(UserId, &str)>,
        metadata: Value,
    ) -> Result<(), StoreError> {
        let metadata = sanitize(metadata).to_string();
        let ip = actor.ip.map(|ip| ip.to_string());
        tx.insert_audit(&NewAudit {
            actor_user_id: actor.user,
            actor: actor.kind.as_str(),
            action,
            target_user_id: target.map(|(id, _)| id),
            target_email: target.map(|(_, email)| truncate(email, 255)),
            metadata: &metadata,
            ip: ip.as_deref(),
            user_agent: Some(truncate(&actor.user_agent, 512)),
            now_ms: self.now_ms(),
        })
        .await
    }

    /// Writes an audit event in a transaction of its own (events with no change around them,
    /// such as a failed sign-in). Failures are logged, never reported.
    pub(crate) async fn audit_alone(
        &self,
        actor: &Actor,
        action: &str,
        target: Option<(UserId, &str)>,
        metadata: Value,
    ) {
        let result: Result<(), StoreError> = async {
            let mut tx = self.store.begin().await?;
            self.audit(&mut tx, actor, action, target, metadata).await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, action, "audit event not written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_reach_the_log() {
        let v = serde_json::json!({
            "session_id": "s1", "new_password": "x", "Token": "t", "nested": {"code": "123456", "ok": 1},
            "long": "é".repeat(400),
        });
        let s = sanitize(v);
        assert_eq!(s["session_id"], "s1");
        assert!(s.get("new_password").is_none() && s.get("Token").is_none());
        assert_eq!(s["nested"], serde_json::json!({"ok": 1}));
        assert!(s["long"].as_str().unwrap().len() <= 512);
    }
}
