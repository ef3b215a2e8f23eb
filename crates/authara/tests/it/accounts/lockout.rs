//! Strangers cannot lock an account: a device that logged in before keeps its own budget.

use reqwest::Method;
use serde_json::json;

use crate::app::TestApp;
use crate::harness::{Engine, on_both_engines};

use crate::harness::PW;

// Security review finding: strangers' failed logins could lock the owner out.
async fn strangers_failures_do_not_lock_out_a_known_device(engine: Engine) {
    let app = TestApp::start_with(
        engine,
        &[("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT", "10"), ("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "1000")],
    )
    .await;
    app.signed_in("owner@example.com", PW).await;
    // The owner's browser logs in once and keeps the device cookie.
    let owner = app.csrf_client().await;
    let login = json!({"email": "owner@example.com", "password": PW});
    let res = owner.json(Method::POST, "/auth/api/v1/login", &login).await;
    assert_eq!(res.status, 200);
    let device = res.set_cookie("authara_device").expect("a device cookie after a login");
    assert!(device.contains("HttpOnly") && device.contains("Path=/auth"), "{device}");

    // Someone else fails until the account's budget (10, one spent by the owner) is gone.
    let attacker = app.csrf_client().await;
    let wrong = json!({"email": "owner@example.com", "password": "wrong-password-1"});
    for _ in 0..9 {
        assert_eq!(attacker.json(Method::POST, "/auth/api/v1/login", &wrong).await.status, 401);
    }
    let res = attacker.json(Method::POST, "/auth/api/v1/login", &login).await;
    assert_eq!(res.status, 429, "a fresh client is refused once the account's budget is spent");
    let fresh = app.csrf_client().await;
    assert_eq!(fresh.json(Method::POST, "/auth/api/v1/login", &login).await.status, 429);

    // The owner's device is not.
    let res = owner.json(Method::POST, "/auth/api/v1/login", &login).await;
    assert_eq!(res.status, 200, "the known device logs in: {}", res.text());
    // A device cookie stolen for another account is worth nothing here.
    fresh.set_cookie("authara_device", "forged.value");
    assert_eq!(fresh.json(Method::POST, "/auth/api/v1/login", &login).await.status, 429);
    // The hosted page honours it too.
    let page = owner.form("/auth/login", &[("email", "owner@example.com"), ("password", PW)]).await;
    assert_eq!(page.status, 303);
}

// Security review finding: invalid emails reached the limiter and took keys in it.
/// An invalid email never reaches a limiter (and never allocates a key for it).
async fn invalid_emails_are_refused_before_the_limiter(engine: Engine) {
    let app = TestApp::start_with(engine, &[("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "3")]).await;
    let c = app.csrf_client().await;
    let huge = format!("{}@", "x".repeat(60_000));
    for _ in 0..10 {
        let res = c.json(Method::POST, "/auth/api/v1/login", &json!({"email": huge, "password": PW})).await;
        assert_eq!(res.status, 401, "refused as invalid credentials, not counted");
    }
    assert_eq!(app.services.cache().limiter_entries(), 0);
}

on_both_engines!(strangers_failures_do_not_lock_out_a_known_device, invalid_emails_are_refused_before_the_limiter);
