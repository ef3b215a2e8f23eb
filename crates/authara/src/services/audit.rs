//! Who acted, and the audit log's sanitizing rule. Audit rows are not written here: they are
//! one consumer of the domain events that `Core::record` writes (see
//! `services::events`), in the same transaction as the change they describe (design.md
//! decision 14). Metadata is sanitized as behavior.md §10 says: keys naming secrets are dropped,
//! strings cut at 512 bytes.

use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::domain::{ActorKind, ClientInfo, UserId, truncate};

/// Who acted.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: Option<UserId>,
    pub kind: ActorKind,
    pub ip: Option<IpAddr>,
    pub user_agent: String,
}

impl Actor {
    /// A user acting on their own account (or signing in).
    pub fn user(user: UserId, client: &ClientInfo) -> Self {
        Actor { user: Some(user), kind: ActorKind::User, ip: client.ip, user_agent: client.user_agent.clone() }
    }

    /// Nobody identified (a failed sign-in, a replayed refresh token).
    pub fn anonymous(client: &ClientInfo) -> Self {
        Actor { user: None, kind: ActorKind::Anonymous, ip: client.ip, user_agent: client.user_agent.clone() }
    }

    /// `authara admin …` on the server's shell.
    pub fn cli() -> Self {
        Actor { user: None, kind: ActorKind::Cli, ip: None, user_agent: "authara cli".to_owned() }
    }

    /// An application backend through `/auth/internal/v1` (its bearer token).
    pub fn internal_api(client: &ClientInfo) -> Self {
        Actor { user: None, kind: ActorKind::InternalApi, ip: client.ip, user_agent: client.user_agent.clone() }
    }

    /// The same caller, naming the user it acts for (the internal API's `actor_user_id`).
    pub fn on_behalf_of(self, user: UserId) -> Self {
        Actor { user: Some(user), ..self }
    }

    /// The server itself (workers, changes no request asked for).
    pub fn system() -> Self {
        Actor { user: None, kind: ActorKind::System, ip: None, user_agent: String::new() }
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
