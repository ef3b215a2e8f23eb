//! Password hashing: a full queue answers 503 at once instead of growing, and logins upgrade old
//! hashes.

use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use serde_json::json;

use crate::app::TestApp;
use crate::harness::PW;
use crate::harness::{Engine, on_both_engines};

// Security review finding: a login flood grew the password-hashing queue without bound.
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
    let c = app.csrf_client().await;
    let res = c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "x@example.com", "password": PW})).await;
    assert_eq!(res.status, 401);
}

/// Hashes made with other parameters, or in the reference's format, are upgraded at login.
async fn logins_upgrade_old_password_hashes(engine: Engine) {
    let app = TestApp::start(engine).await;
    app.signed_in("old@example.com", PW).await;
    let user = app.store.user_by_email(&crate::app::email("old@example.com")).await.unwrap().unwrap();
    let before = app.store.password_hash(user.id).await.unwrap().unwrap();
    let (db, clock) = app.stop().await;

    let app = TestApp::start_on(db, &[("AUTHARA_PASSWORD_HASH_MEMORY_KIB", "2048")], Some(clock)).await;
    let c = app.csrf_client().await;
    let res = c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "old@example.com", "password": PW})).await;
    assert_eq!(res.status, 200);
    let mut after = before.clone();
    for _ in 0..100 {
        after = app.store.password_hash(user.id).await.unwrap().unwrap();
        if after != before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(after.contains("m=2048"), "rehashed with the configured parameters: {after}");

    // A hash exported from the reference ($argon2id$v=1$t=..$m=..$p=..$salt$hash).
    let salt = b"0123456789abcdef";
    let params = argon2::Params::new(1024, 1, 1, Some(32)).unwrap();
    let mut key = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(PW.as_bytes(), salt, &mut key)
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let legacy = format!("$argon2id$v=1$t=1$m=1024$p=1${}${}", b64.encode(salt), b64.encode(key));
    let mut tx = app.store.begin().await.unwrap();
    tx.set_password_hash(user.id, &legacy, 0).await.unwrap();
    tx.commit().await.unwrap();
    let res = c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "old@example.com", "password": PW})).await;
    assert_eq!(res.status, 200, "the reference's hash format verifies");
    let res = c
        .json(Method::POST, "/auth/api/v1/login", &json!({"email": "old@example.com", "password": "wrong-password-9"}))
        .await;
    assert_eq!(res.status, 401);
}

on_both_engines!(a_saturated_hasher_answers_503_with_retry_after, logins_upgrade_old_password_hashes,);
