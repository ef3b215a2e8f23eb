//! Refresh inside the grace window is exactly-once: one successor per rotation step.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::json;

use crate::app::TestApp;
use crate::harness::{Engine, on_both_engines};

use crate::harness::PW;

// Security review finding: parallel refreshes in the grace window got several successors.
async fn twenty_parallel_refreshes_get_one_successor(engine: Engine) {
    let app = TestApp::start_with(engine, &[("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "always")]).await;
    let c = app.signed_in("race@example.com", PW).await;
    let t0 = c.cookie("authara_refresh").unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let c = app.client();
            let t0 = t0.clone();
            tokio::spawn(async move {
                c.json(Method::POST, "/auth/api/v1/tokens/refresh", &json!({"refresh_token": t0})).await
            })
        })
        .collect();
    let mut successors = HashSet::new();
    for t in tasks {
        let res = t.await.unwrap();
        assert_eq!(res.status, 200, "{}", res.text());
        successors.insert(res.json()["refresh_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(successors.len(), 1, "every replay in the window receives the same successor");
    let successor = successors.into_iter().next().unwrap();
    assert_ne!(successor, t0);
    let row = app.store.refresh_by_hash(&authara::services::sessions::hash_refresh_token(&successor)).await.unwrap();
    let session = row.unwrap().session_id;
    assert_eq!(app.store.live_refresh_tokens(session, app.clock_now()).await.unwrap(), 1, "one live token");

    // The chain goes on from the successor; a replay of t0 still in the window follows it.
    let res = c.json(Method::POST, "/auth/api/v1/tokens/refresh", &json!({"refresh_token": successor})).await;
    let next = res.json()["refresh_token"].as_str().unwrap().to_owned();
    let replay = c.json(Method::POST, "/auth/api/v1/tokens/refresh", &json!({"refresh_token": t0})).await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.json()["refresh_token"], next, "the live token of the chain");
    assert_eq!(app.store.live_refresh_tokens(session, app.clock_now()).await.unwrap(), 1);

    // After the window, replaying t0 is reuse: the session dies.
    app.clock.advance(std::time::Duration::from_secs(11));
    let res = c.json(Method::POST, "/auth/api/v1/tokens/refresh", &json!({"refresh_token": t0})).await;
    assert_eq!(res.status, 401);
    let res = c.json(Method::POST, "/auth/api/v1/tokens/refresh", &json!({"refresh_token": next})).await;
    assert_eq!(res.status, 401, "the whole session is revoked");
}

on_both_engines!(; threaded: twenty_parallel_refreshes_get_one_successor);
