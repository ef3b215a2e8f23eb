//! Password hashing under abuse: a full queue answers 503 at once instead of growing.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::app::TestApp;
use crate::harness::{Engine, on_both_engines};

use crate::harness::PW;

/// With every hashing slot busy and the queue full, a login is refused with 503, the contract's
/// envelope and `Retry-After` (a status of ours, in `contract/extensions.yaml`), instead of
/// piling up requests that each hold hash memory.
async fn a_saturated_hasher_answers_503_with_retry_after(engine: Engine) {
    let app = TestApp::start_with(
        engine,
        &[
            ("AUTHARA_PASSWORD_HASH_QUEUE", "1"),
            ("AUTHARA_PASSWORD_HASH_MEMORY_KIB", "16384"),
            ("AUTHARA_PASSWORD_HASH_ITERATIONS", "8"),
        ],
    )
    .await;
    let csrf = app.client().fetch_csrf().await;
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let c = app.client();
            c.set_cookie("authara_csrf", &csrf);
            tokio::spawn(async move {
                let res = c
                    .json(
                        Method::POST,
                        "/auth/api/v1/login",
                        &json!({"email": format!("u{i}@example.com"), "password": PW}),
                    )
                    .await;
                let retry = res.headers.get("retry-after").map(|v| v.to_str().unwrap().to_owned());
                (res.status, retry, res.json())
            })
        })
        .collect();
    let (mut busy, mut served) = (0, 0);
    for t in tasks {
        let (status, retry, body) = t.await.unwrap();
        match status {
            401 => served += 1,
            503 => {
                busy += 1;
                assert_eq!(retry.as_deref(), Some("1"));
                assert_eq!(body["error"]["code"], "internal_error", "{body}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(busy > 0, "twelve concurrent hashes over one queue slot: some are turned away");
    assert!(served > 0, "and the slots and the queue still serve some ({served} served, {busy} busy)");
    // Once the storm is over, logins go through again.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let c = app.client();
    c.fetch_csrf().await;
    let res = c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "x@example.com", "password": PW})).await;
    assert_eq!(res.status, 401);
}

on_both_engines!(a_saturated_hasher_answers_503_with_retry_after);
