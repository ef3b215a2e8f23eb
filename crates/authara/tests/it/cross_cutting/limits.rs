//! README: "rate-limited answers carry `Retry-After`". Every limiter, over HTTP, with small
//! limits from the environment: the API answers `429 rate_limited` with `Retry-After`, the hosted
//! forms answer an HTML 429 that re-renders the form with a "Too many" message.
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::app::browser;
use crate::app::{Res, TestApp, TestClient};
use crate::harness::PW;
use crate::harness::{Engine, on_both_engines};

const WRONG_PW: &str = "wrong-password-1";

/// `429 rate_limited` with a `Retry-After` of at least a second and at most the window.
fn assert_limited(res: &Res, window: Duration, what: &str) {
    assert_eq!((res.status, res.error_code().as_str()), (429, "rate_limited"), "{what}: {}", res.text());
    let retry: u64 = res
        .headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("{what}: no Retry-After"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=window.as_secs()).contains(&retry), "{what}: Retry-After {retry}");
}

async fn login_from(c: &TestClient, email: &str, password: &str, ip: &str) -> Res {
    let body = json!({"email": email, "password": password}).to_string().into_bytes();
    c.send(
        Method::POST,
        "/auth/api/v1/login",
        Some(body),
        &[("content-type", "application/json"), ("x-forwarded-for", ip)],
    )
    .await
}

/// Failures against one email from different IPs share one budget; other emails are not
/// affected (the per-IP limit is out of the way).
async fn login_is_limited_per_email_whatever_the_ip(engine: Engine) {
    let app = TestApp::start_with(
        engine,
        &[
            ("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "1000"),
            ("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT", "2"),
            ("AUTHARA_TRUST_PROXY_HEADERS", "true"),
        ],
    )
    .await;
    app.signed_in("target@example.com", PW).await;
    let c = app.csrf_client().await;
    assert_eq!(login_from(&c, "target@example.com", WRONG_PW, "203.0.113.1").await.status, 401);
    assert_eq!(login_from(&c, "target@example.com", WRONG_PW, "203.0.113.2").await.status, 401);
    let res = login_from(&c, "target@example.com", PW, "198.51.100.3").await;
    assert_limited(&res, Duration::from_secs(3600), "third login for the email, from a third IP");
    assert_eq!(login_from(&c, "other@example.com", WRONG_PW, "203.0.113.1").await.status, 401, "other emails go on");
}

async fn signup_is_limited_per_ip(engine: Engine) {
    let app = TestApp::start_with(engine, &[("AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT", "2")]).await;
    let c = app.csrf_client().await;
    for i in 0..2 {
        let res = c
            .json(
                Method::POST,
                "/auth/api/v1/signup/direct",
                &json!({"email": format!("s{i}@example.com"), "password": PW}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text());
    }
    let res =
        c.json(Method::POST, "/auth/api/v1/signup/direct", &json!({"email": "s2@example.com", "password": PW})).await;
    assert_limited(&res, Duration::from_secs(3600), "third signup from one IP, new email");
    assert_eq!(app.store.user_count().await.unwrap(), 2);
}

async fn password_reset_is_limited_per_email(engine: Engine) {
    let app = TestApp::start_with(
        engine,
        &[
            ("AUTHARA_RATE_LIMIT_PASSWORD_RESET_IP_LIMIT", "1000"),
            ("AUTHARA_RATE_LIMIT_PASSWORD_RESET_EMAIL_LIMIT", "1"),
        ],
    )
    .await;
    app.signed_in("reset@example.com", PW).await;
    let c = app.csrf_client().await;
    let start = |email: &'static str| {
        let c = c.clone();
        async move {
            c.json(
                Method::POST,
                "/auth/api/v1/password-reset/challenges",
                &json!({"email": email, "new_password": "copper-lantern-meadow"}),
            )
            .await
        }
    };
    assert_eq!(start("reset@example.com").await.status, 202);
    assert_limited(&start("reset@example.com").await, Duration::from_secs(86_400), "second reset for the email");
    assert_eq!(start("someone-else@example.com").await.status, 202, "other emails go on from the same IP");
}

async fn challenge_resend_is_limited_per_ip(engine: Engine) {
    let app = TestApp::start_with(engine, &[("AUTHARA_RATE_LIMIT_CHALLENGE_RESEND_IP_LIMIT", "2")]).await;
    let c = app.csrf_client().await;
    let resend = || {
        let c = c.clone();
        async move {
            c.json(Method::POST, "/auth/api/v1/challenges/resend", &json!({"challenge_id": uuid::Uuid::new_v4()})).await
        }
    };
    assert_eq!(resend().await.status, 204);
    assert_eq!(resend().await.status, 204);
    assert_limited(&resend().await, Duration::from_secs(3600), "third resend from one IP, another challenge");
    app.clock.advance(Duration::from_secs(3601));
    assert_eq!(resend().await.status, 204, "a new window");
}

async fn challenge_verification_is_limited_per_ip(engine: Engine) {
    let app = TestApp::start_with(engine, &[("AUTHARA_RATE_LIMIT_CHALLENGE_VERIFY_IP_LIMIT", "2")]).await;
    let c = app.csrf_client().await;
    let verify = || {
        let c = c.clone();
        async move {
            c.json(
                Method::POST,
                "/auth/api/v1/password-reset/challenges/verify",
                &json!({"challenge_id": uuid::Uuid::new_v4(), "code": "123456"}),
            )
            .await
        }
    };
    assert_eq!(verify().await.status, 400);
    assert_eq!(verify().await.status, 400);
    assert_limited(&verify().await, Duration::from_secs(600), "third code from one IP, another challenge");
}

async fn hosted_login_over_the_limit_rerenders_the_form_with_429(engine: Engine) {
    let app = TestApp::start_with(engine, &[("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "1")]).await;
    let c = browser(&app).await;
    let res = c.form("/auth/login", &[("email", "page@example.com"), ("password", WRONG_PW)]).await;
    assert_eq!(res.status, 422);
    let res = c.form("/auth/login", &[("email", "page@example.com"), ("password", WRONG_PW)]).await;
    assert_eq!(res.status, 429, "{}", res.text());
    assert!(res.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = res.text();
    assert!(html.contains("data-login-form"), "the login form is re-rendered: {html}");
    assert!(html.contains("Too many sign-in attempts"), "{html}");
    assert!(html.contains(r#"value="page@example.com""#), "the typed email is kept");
    assert!(res.set_cookie("authara_access").is_none());
}

async fn hosted_signup_over_the_limit_answers_429(engine: Engine) {
    let app = TestApp::start_with(engine, &[("AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT", "1")]).await;
    let first = browser(&app).await;
    let res = first.form("/auth/signup", &[("email", "first@example.com"), ("password", PW)]).await;
    assert_eq!(res.status, 303, "{}", res.text());
    let second = browser(&app).await;
    let res = second.form("/auth/signup", &[("email", "second@example.com"), ("password", PW)]).await;
    assert_eq!(res.status, 429, "{}", res.text());
    assert!(res.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = res.text();
    assert!(html.contains(r#"action="/auth/signup""#), "the signup form is re-rendered: {html}");
    assert!(html.contains("Too many sign-ups"), "{html}");
    assert!(res.set_cookie("authara_access").is_none());
    assert_eq!(app.store.user_count().await.unwrap(), 1);
}

async fn rate_limits_answer_429_with_retry_after(engine: Engine) {
    let app = TestApp::start_with(
        engine,
        &[("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "3"), ("AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_LIMIT", "1")],
    )
    .await;
    let c = app.csrf_client().await;
    for _ in 0..3 {
        let res = c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "x@example.com", "password": PW})).await;
        assert_eq!(res.status, 401);
    }
    let res = c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "y@example.com", "password": PW})).await;
    assert_eq!((res.status, res.error_code().as_str()), (429, "rate_limited"));
    let retry: u64 = res.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // The window resets with time.
    app.clock.advance(Duration::from_secs(61));
    let res = c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "y@example.com", "password": PW})).await;
    assert_eq!(res.status, 401);

    let res =
        c.json(Method::POST, "/auth/api/v1/signup/direct", &json!({"email": "new@example.com", "password": "x"})).await;
    assert_eq!(res.status, 400, "validation comes before the limiter");
    let res =
        c.json(Method::POST, "/auth/api/v1/signup/direct", &json!({"email": "new@example.com", "password": PW})).await;
    assert_eq!(res.status, 201);
    let res =
        c.json(Method::POST, "/auth/api/v1/signup/direct", &json!({"email": "new@example.com", "password": PW})).await;
    assert_eq!((res.status, res.error_code().as_str()), (429, "rate_limited"), "per-email signup limit");
}

on_both_engines!(
    login_is_limited_per_email_whatever_the_ip,
    signup_is_limited_per_ip,
    password_reset_is_limited_per_email,
    challenge_resend_is_limited_per_ip,
    challenge_verification_is_limited_per_ip,
    hosted_login_over_the_limit_rerenders_the_form_with_429,
    hosted_signup_over_the_limit_answers_429,
    rate_limits_answer_429_with_retry_after,
);
