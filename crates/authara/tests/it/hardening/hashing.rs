//! Password hashing under abuse: a full queue answers 503 at once instead of growing.

use std::time::Duration;

use serde_json::json;

use crate::app::TestApp;
use crate::harness::{Engine, on_both_engines};

const PW: &str = "violet-harbor-tangent";

/// With every hashing slot busy and the queue full, a login is refused with 503, the contract's
/// envelope and `Retry-After`, instead of piling up requests that each hold hash memory.
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
    let http = crate::harness::client();
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let http = http.clone();
            let url = format!("{}/auth/api/v1/login", app.base);
            let csrf = csrf.clone();
            tokio::spawn(async move {
                let res = http
                    .post(url)
                    .header("cookie", format!("authara_csrf={csrf}"))
                    .header("x-csrf-token", &csrf)
                    .json(&json!({"email": format!("u{i}@example.com"), "password": PW}))
                    .send()
                    .await
                    .unwrap();
                let retry = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
                (res.status().as_u16(), retry, res.json::<serde_json::Value>().await.unwrap())
            })
        })
        .collect();
    let mut busy = 0;
    for t in tasks {
        let (status, retry, body) = t.await.unwrap();
        match status {
            401 => {}
            503 => {
                busy += 1;
                assert_eq!(retry.as_deref(), Some("1"));
                assert_eq!(body["error"]["code"], "internal_error", "{body}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(busy > 0, "twelve concurrent hashes over one queue slot: some are turned away");
    // Once the storm is over, logins go through again.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let c = app.client();
    c.fetch_csrf().await;
    let res =
        c.json(reqwest::Method::POST, "/auth/api/v1/login", &json!({"email": "x@example.com", "password": PW})).await;
    assert_eq!(res.status, 401);
}

on_both_engines!(a_saturated_hasher_answers_503_with_retry_after);
