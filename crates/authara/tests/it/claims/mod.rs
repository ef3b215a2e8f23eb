//! What README.md claims, proven one claim per file through the real HTTP server (in-process on
//! a real socket, or the real binary where start-up matters), on both engines where storage is
//! involved.

mod contract;
mod csrf;
mod enumeration;
mod limits;
mod outbox;
mod revocation;
mod sessions;

use std::collections::HashMap;

use serde_json::Value;

use crate::app::send_checked;
use crate::harness::{Server, TestDb, client};

/// Environment for the real binary on `db`: fast password hashing and a fixed signing key (so a
/// restarted process verifies the tokens of the previous one).
pub fn server_env(db: &TestDb, extra: &[(String, String)]) -> HashMap<String, String> {
    let mut env = db.env();
    for (k, v) in [
        ("AUTHARA_PASSWORD_HASH_MEMORY_KIB", "1024"),
        ("AUTHARA_PASSWORD_HASH_ITERATIONS", "1"),
        ("AUTHARA_PASSWORD_HASH_PARALLELISM", "1"),
        ("AUTHARA_JWT_KEYS", "k1:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="),
        ("AUTHARA_JWT_ACTIVE_KEY_ID", "k1"),
    ] {
        env.insert(k.to_owned(), v.to_owned());
    }
    env.extend(extra.iter().cloned());
    env
}

/// A script calling the real binary's API with plain reqwest: it fetched a CSRF token and sends
/// it back as the cookie and the `X-CSRF-Token` header. Every answer is checked against the
/// contract (`app::send_checked`).
pub struct Script {
    csrf: String,
}

impl Script {
    pub async fn new(server: &Server) -> Script {
        Script::new_at(&server.base).await
    }

    /// The same, for a server known only by its base URL.
    pub async fn new_at(base: &str) -> Script {
        let res = send_checked(client().get(format!("{base}/auth/api/v1/csrf"))).await;
        assert_eq!(res.status, 200);
        Script { csrf: res.json()["csrf_token"].as_str().unwrap().to_owned() }
    }

    /// The CSRF token (cookie and header value).
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// POSTs JSON with the CSRF pair and `cookies`: (status, body or null).
    pub async fn post(&self, server: &Server, path: &str, cookies: &[(&str, &str)], body: &Value) -> (u16, Value) {
        let mut cookie = format!("authara_csrf={}", self.csrf);
        for (k, v) in cookies {
            cookie.push_str(&format!("; {k}={v}"));
        }
        let res = send_checked(
            client()
                .post(server.url(path))
                .header("cookie", cookie)
                .header("x-csrf-token", &self.csrf)
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await;
        (res.status, res.json())
    }
}

/// `GET /auth/api/v1/user` with nothing but an access cookie: the status.
pub async fn user_status(server: &Server, access: &str) -> u16 {
    let req = client().get(server.url("/auth/api/v1/user")).header("cookie", format!("authara_access={access}"));
    send_checked(req).await.status
}
