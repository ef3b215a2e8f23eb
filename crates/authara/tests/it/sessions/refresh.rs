//! Refresh: rotation, reuse detection, concurrent refresh, JWT validation, key rotation.

use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use serde_json::json;

use crate::app::{TestApp, TestClient};
use crate::harness::{Engine, on_both_engines};

use crate::harness::PW;

async fn body_refresh(c: &TestClient, token: &str) -> crate::app::Res {
    c.json(Method::POST, "/auth/api/v1/tokens/refresh", &json!({"refresh_token": token})).await
}

async fn reused_refresh_token_revokes_the_session(engine: Engine) {
    let app = TestApp::start_with(engine, &[("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "always")]).await;
    let c = app.signed_in("reuse@example.com", PW).await;
    let t0 = c.cookie("authara_refresh").unwrap();
    let res = c.post("/auth/api/v1/sessions/refresh").await;
    assert_eq!(res.status, 200);
    let t1 = c.cookie("authara_refresh").unwrap();
    assert_ne!(t0, t1, "rotation always issues a new token");

    app.clock.advance(Duration::from_secs(11));
    let thief = app.client();
    let res = body_refresh(&thief, &t0).await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (401, "unauthorized"),
        "a consumed token after the grace window"
    );
    // The whole session is revoked: the legitimate successor dies too, and so does its access token.
    assert_eq!(body_refresh(&thief, &t1).await.status, 401, "the successor dies with the session");
    assert_eq!(c.get("/auth/api/v1/user").await.status, 401, "access token of the revoked session");
    let res = c.post("/auth/api/v1/sessions/refresh").await;
    assert_eq!(res.status, 401);
    assert!(res.set_cookie("authara_access").unwrap().contains("Max-Age=0"), "a refused cookie refresh clears cookies");

    // The revocation was committed: it survives a restart.
    let (db, clock) = app.stop().await;
    let app = TestApp::start_on(db, &[("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "always")], Some(clock)).await;
    let c2 = app.client();
    assert_eq!(body_refresh(&c2, &t1).await.status, 401, "still dead after a restart");
    assert_eq!(body_refresh(&c2, &t0).await.status, 401);
}

async fn concurrent_refreshes_inside_the_grace_window_all_succeed(engine: Engine) {
    let app = TestApp::start_with(engine, &[("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "always")]).await;
    let c = app.signed_in("tabs@example.com", PW).await;
    let t0 = c.cookie("authara_refresh").unwrap();
    let user = app.store.user_by_email(&crate::app::email("tabs@example.com")).await.unwrap().unwrap();

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let c = app.client();
            let t0 = t0.clone();
            tokio::spawn(async move { body_refresh(&c, &t0).await })
        })
        .collect();
    let mut successors = Vec::new();
    for t in tasks {
        let res = t.await.unwrap();
        assert_eq!(res.status, 200, "every racing refresh succeeds: {}", res.text());
        successors.push(res.json()["refresh_token"].as_str().unwrap().to_owned());
    }
    let now = app.clock_now();
    assert_eq!(app.store.active_session_count(user.id, now).await.unwrap(), 1, "one live session");
    assert!(successors.iter().all(|s| *s == successors[0] && *s != t0), "one successor for all: {successors:?}");
    // The successor works.
    assert_eq!(body_refresh(&app.client(), &successors[0]).await.status, 200);

    // After the window, the old token is reuse: the session is revoked.
    app.clock.advance(Duration::from_secs(11));
    assert_eq!(body_refresh(&app.client(), &t0).await.status, 401);
    assert_eq!(app.store.active_session_count(user.id, app.clock_now()).await.unwrap(), 0);
}

async fn refresh_without_rotation_keeps_the_token(engine: Engine) {
    let app = TestApp::start(engine).await; // default interval 24h
    let c = app.signed_in("keep@example.com", PW).await;
    let t0 = c.cookie("authara_refresh").unwrap();
    let res = c.post("/auth/api/v1/sessions/refresh").await;
    assert_eq!(res.status, 200);
    assert_eq!(c.cookie("authara_refresh").unwrap(), t0, "not rotated before the interval");
    app.clock.advance(Duration::from_secs(25 * 3600));
    let res = c.post("/auth/api/v1/sessions/refresh").await;
    assert_eq!(res.status, 200);
    assert_ne!(c.cookie("authara_refresh").unwrap(), t0, "rotated once the interval passed");
    // Missing cookie: 401 and nothing cleared.
    c.remove_cookie("authara_refresh");
    let res = c.post("/auth/api/v1/sessions/refresh").await;
    assert_eq!(res.status, 401);
    assert!(res.set_cookies().is_empty());
    // An expired refresh token is refused.
    let t = app.signed_in("late@example.com", PW).await.cookie("authara_refresh").unwrap();
    app.clock.advance(Duration::from_secs(15 * 86_400));
    assert_eq!(body_refresh(&app.client(), &t).await.status, 401);
}

/// `GET /user` with nothing but `token` as the access cookie: the status.
async fn status_with(app: &TestApp, token: &str) -> u16 {
    let c = app.client();
    c.set_cookie("authara_access", token);
    c.get("/auth/api/v1/user").await.status
}

async fn forged_access_tokens_are_refused(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.signed_in("jwt@example.com", PW).await;
    let token = c.cookie("authara_access").unwrap();
    assert_eq!(status_with(&app, &token).await, 200);

    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = json!(uuid::Uuid::new_v4());
    let tampered = format!("{}.{}.{}", parts[0], b64.encode(claims.to_string()), parts[2]);
    assert_eq!(status_with(&app, &tampered).await, 401, "tampered");
    let none = b64.encode(r#"{"alg":"none","kid":"k1","typ":"JWT"}"#);
    assert_eq!(status_with(&app, &format!("{none}.{}.", parts[1])).await, 401, "alg none");
    let ghost = b64.encode(r#"{"alg":"HS256","kid":"ghost","typ":"JWT"}"#);
    assert_eq!(status_with(&app, &format!("{ghost}.{}.{}", parts[1], parts[2])).await, 401, "unknown kid");
    assert_eq!(status_with(&app, "garbage").await, 401);
}

/// Tokens signed with our key but for another issuer, or for the admin audience, do not open
/// an app route.
async fn tokens_of_another_issuer_or_audience_are_refused(engine: Engine) {
    let app = TestApp::start(engine).await;
    app.signed_in("jwt@example.com", PW).await;
    let keys = authara::services::keys::load(app.services.config()).unwrap();
    let other = authara::services::token::TokenService::new(
        &keys,
        authara::config::JwtAlgorithm::Hs256,
        "someone-else",
        Duration::from_secs(600),
    )
    .unwrap();
    let now = app.clock_now();
    let user = app.store.user_by_email(&crate::app::email("jwt@example.com")).await.unwrap().unwrap();
    let grant = |audience| authara::services::token::Grant {
        user: user.id,
        session: authara::domain::SessionId::new(),
        org: authara::domain::OrgId::new(),
        org_role: authara::domain::OrgRole::Owner,
        roles: &[],
        audience,
        amr: "pwd",
        auth_time_ms: now,
    };
    let foreign = other.mint(&grant(authara::domain::Audience::App), now).unwrap();
    assert_eq!(status_with(&app, &foreign).await, 401, "wrong issuer");
    let admin_aud = app.services.tokens().mint(&grant(authara::domain::Audience::Admin), now).unwrap();
    assert_eq!(status_with(&app, &admin_aud).await, 401, "admin audience on an app route");
}

async fn access_tokens_expire(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.signed_in("jwt@example.com", PW).await;
    let token = c.cookie("authara_access").unwrap();
    app.clock.advance(Duration::from_secs(590));
    assert_eq!(status_with(&app, &token).await, 200, "valid within its ten minutes");
    app.clock.advance(Duration::from_secs(11));
    assert_eq!(status_with(&app, &token).await, 401, "expired");
}

async fn rotated_signing_keys_keep_old_tokens_valid(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.signed_in("rotate@example.com", PW).await;
    let old = c.cookie("authara_access").unwrap();
    let (db, clock) = app.stop().await;
    let keys = "k1:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=,k2:YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=";
    let app =
        TestApp::start_on(db, &[("AUTHARA_JWT_KEYS", keys), ("AUTHARA_JWT_ACTIVE_KEY_ID", "k2")], Some(clock)).await;
    let c2 = app.client();
    c2.set_cookie("authara_access", &old);
    assert_eq!(c2.get("/auth/api/v1/user").await.status, 200, "a token signed by the previous kid still verifies");
    let fresh = app.csrf_client().await;
    let res =
        fresh.json(Method::POST, "/auth/api/v1/login", &json!({"email": "rotate@example.com", "password": PW})).await;
    let token = res.json()["access_token"].as_str().unwrap().to_owned();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], "k2");
}

async fn cleanup_keeps_consumed_tokens_until_they_expire(engine: Engine) {
    let app = TestApp::start_with(engine, &[("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "always")]).await;
    let c = app.signed_in("clean@example.com", PW).await;
    let t0 = c.cookie("authara_refresh").unwrap();
    assert_eq!(c.post("/auth/api/v1/sessions/refresh").await.status, 200);
    app.clock.advance(Duration::from_secs(3600));
    authara::worker::cleanup::run_once(&app.services).await.unwrap();
    assert_eq!(body_refresh(&app.client(), &t0).await.status, 401, "reuse still detected after cleanup");
    let user = app.store.user_by_email(&crate::app::email("clean@example.com")).await.unwrap().unwrap();
    assert_eq!(app.store.active_session_count(user.id, app.clock_now()).await.unwrap(), 0);
    // Much later, the revoked session is gone entirely.
    app.clock.advance(Duration::from_secs(3600));
    let (sessions, _) = authara::worker::cleanup::run_once(&app.services).await.unwrap();
    assert!(sessions >= 1);
}

/// The common refresh rotates optimistically in one statement; a refusal found afterwards must
/// undo it: the presented token is still unconsumed, so it neither counts as reuse later nor
/// leaves a stray successor behind.
async fn a_refused_refresh_changes_nothing(engine: Engine) {
    let app = TestApp::start_with(engine, &[("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "always")]).await;
    let c = app.signed_in("refused@example.com", PW).await;
    let t0 = c.cookie("authara_refresh").unwrap();
    let admin = json!({"refresh_token": t0, "audience": "admin"});
    let res = c.json(Method::POST, "/auth/api/v1/tokens/refresh", &admin).await;
    assert_eq!(res.status, 401, "a member cannot refresh into the admin audience");

    // Long after the grace window, the token is still fresh: the refusal consumed nothing.
    app.clock.advance(Duration::from_secs(60));
    let res = body_refresh(&app.client(), &t0).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let t1 = res.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(t1, t0);
    assert_eq!(body_refresh(&app.client(), &t1).await.status, 200, "the session is alive");

    // A disabled user is refused, and again nothing was consumed by the attempt.
    let d = app.signed_in("disabled@example.com", PW).await;
    let t = d.cookie("authara_refresh").unwrap();
    let user = app.store.user_by_email(&crate::app::email("disabled@example.com")).await.unwrap().unwrap();
    crate::accounts::api::set_disabled(&app, user.id, Some(1)).await;
    assert_eq!(body_refresh(&app.client(), &t).await.status, 401);
    crate::accounts::api::set_disabled(&app, user.id, None).await;
    app.clock.advance(Duration::from_secs(60));
    assert_eq!(body_refresh(&app.client(), &t).await.status, 200, "not treated as reuse");
}

on_both_engines!(
    a_refused_refresh_changes_nothing,
    reused_refresh_token_revokes_the_session,
    refresh_without_rotation_keeps_the_token,
    forged_access_tokens_are_refused,
    tokens_of_another_issuer_or_audience_are_refused,
    access_tokens_expire,
    rotated_signing_keys_keep_old_tokens_valid,
    cleanup_keeps_consumed_tokens_until_they_expire,
    ; threaded: concurrent_refreshes_inside_the_grace_window_all_succeed,
);
