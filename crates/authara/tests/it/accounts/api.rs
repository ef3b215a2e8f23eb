//! Signup and login through the JSON API.

use reqwest::Method;
use serde_json::json;

use crate::app::TestApp;
use crate::harness::{Engine, on_both_engines};

use crate::harness::PW;

async fn scenario_signup_login_refresh_and_logout(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.csrf_client().await;
    let csrf_cookie = c.get("/auth/api/v1/csrf").await;
    assert!(csrf_cookie.set_cookie("authara_csrf").is_none(), "an existing CSRF cookie is reused, not re-set");

    let res = c
        .json(Method::POST, "/auth/api/v1/signup/direct", &json!({"email": "  Ada@Example.com ", "password": PW}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let body = res.json();
    assert_eq!(body["user"]["email"], "ada@example.com", "emails are trimmed and lowercased");
    assert!(body["user"]["username"].as_str().unwrap().starts_with("ada-"));
    let access = res.set_cookie("authara_access").unwrap();
    assert!(access.contains("Path=/") && access.contains("HttpOnly") && access.contains("SameSite=Lax"), "{access}");
    assert!(access.contains("Max-Age=600") && access.contains("Expires=") && !access.contains("Secure"), "{access}");
    let refresh = res.set_cookie("authara_refresh").unwrap();
    assert!(refresh.contains(&format!("Max-Age={}", 14 * 86_400)) && refresh.contains("HttpOnly"), "{refresh}");
    assert_eq!(body["refresh_token"].as_str().unwrap().len(), 43);

    let me = c.get("/auth/api/v1/user").await;
    assert_eq!(me.status, 200, "{}", me.text());
    let me = me.json();
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["roles"], json!([]));
    assert_eq!(me["disabled"], false);
    assert_eq!(me["organization"]["role"], "owner");
    assert_eq!(me["organization"]["name"], body["user"]["username"]);

    // A second device logs in.
    let d = app.csrf_client().await;
    let res = d.json(Method::POST, "/auth/api/v1/login", &json!({"email": "ADA@example.com", "password": PW})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["user"]["id"], me["id"]);

    let res = d.post("/auth/api/v1/sessions/refresh").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(res.body.is_empty());
    assert!(res.set_cookie("authara_access").is_some() && res.set_cookie("authara_refresh").is_some());

    let body_flow = app.client();
    let token = d.cookie("authara_refresh").unwrap();
    let res = body_flow
        .json(Method::POST, "/auth/api/v1/tokens/refresh", &json!({"refresh_token": format!(" {token} ")}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(res.set_cookies().is_empty(), "the body flow never sets cookies");

    let res = d.post("/auth/api/v1/sessions/logout").await;
    assert_eq!(res.status, 204);
    let cleared = res.set_cookie("authara_access").unwrap();
    assert!(cleared.contains("Max-Age=0") && cleared.contains("Expires=Thu, 01 Jan 1970 00:00:00 GMT"), "{cleared}");
    // The other device stays signed in.
    assert_eq!(c.get("/auth/api/v1/user").await.status, 200);
    let again = app.client();
    again.set_cookie("authara_refresh", &token);
    again.set_cookie("authara_csrf", "x");
    assert_eq!(again.post("/auth/api/v1/sessions/refresh").await.status, 401, "the logged-out session cannot refresh");
}

/// Each invalid field is a 400 in the envelope, and nothing is written.
async fn signup_refuses_invalid_fields_and_writes_nothing(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.csrf_client().await;
    let cases = [
        json!({"email": "not-an-email", "password": PW}),
        json!({"email": "a@example.com", "password": "short"}),
        json!({"email": "a@example.com", "password": "x".repeat(129)}),
        json!({"email": "a@example.com", "password": "password123"}),
        json!({"email": "a@example.com"}),
        json!({"email": "a@example.com", "password": PW, "admin": true}),
        json!({"email": "a@example.com", "password": 12345678}),
    ];
    for body in cases {
        let res = c.json(Method::POST, "/auth/api/v1/signup/direct", &body).await;
        assert_eq!((res.status, res.error_code().as_str()), (400, "invalid_request"), "{body}: {}", res.text());
    }
    let res = c
        .json(Method::POST, "/auth/api/v1/signup/direct", &json!({"email": "a@example.com", "password": "password123"}))
        .await;
    assert!(res.json()["error"]["message"].as_str().unwrap().contains("common"));
    assert_eq!(app.store.user_count().await.unwrap(), 0, "no half-written rows");
}

/// Truncated JSON, a form body, an oversized body and an audience on signup are 400s, and
/// nothing is written.
async fn signup_refuses_malformed_bodies_and_writes_nothing(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.csrf_client().await;
    let path = "/auth/api/v1/signup/direct";
    let raw = c.send(Method::POST, path, Some(b"{\"email\": ".to_vec()), &[("content-type", "application/json")]).await;
    assert_eq!(raw.status, 400, "truncated JSON");
    let form = b"email=a@example.com".to_vec();
    let text = c.send(Method::POST, path, Some(form), &[("content-type", "application/x-www-form-urlencoded")]).await;
    assert_eq!(text.status, 400, "a form body");
    let huge = json!({"email": "a@example.com", "password": "p".repeat(200_000)});
    let res = c.json(Method::POST, path, &huge).await;
    assert_eq!(res.status, 400, "oversized bodies are a 400 in the envelope");
    let body = json!({"email": "a@example.com", "password": PW});
    let res = c.json(Method::POST, "/auth/api/v1/signup/direct?audience=admin", &body).await;
    assert_eq!(res.status, 400, "an audience on signup");
    assert_eq!(app.store.user_count().await.unwrap(), 0, "no half-written rows");
}

/// An address is taken whatever the case it is typed in.
async fn a_taken_email_is_refused_in_any_case(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.csrf_client().await;
    let res =
        c.json(Method::POST, "/auth/api/v1/signup/direct", &json!({"email": "a@example.com", "password": PW})).await;
    assert_eq!(res.status, 201);
    let res =
        c.json(Method::POST, "/auth/api/v1/signup/direct", &json!({"email": "A@example.com", "password": PW})).await;
    assert_eq!((res.status, res.error_code().as_str()), (400, "invalid_request"), "email taken");
    assert_eq!(app.store.user_count().await.unwrap(), 1);
}

async fn login_failures_answer_the_contract(engine: Engine) {
    let app = TestApp::start(engine).await;
    app.signed_in("lin@example.com", PW).await;
    let c = app.csrf_client().await;
    let res = c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "", "password": ""})).await;
    assert_eq!(res.status, 400);
    let res = c
        .json(Method::POST, "/auth/api/v1/login?audience=root", &json!({"email": "lin@example.com", "password": PW}))
        .await;
    assert_eq!(res.status, 400);
    let res = c
        .json(Method::POST, "/auth/api/v1/login?audience=admin", &json!({"email": "lin@example.com", "password": PW}))
        .await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "forbidden"), "admin audience needs the admin role");

    // A disabled user is refused with 403 (after the password check, so it reveals nothing).
    let lin = app.store.user_by_email(&crate::app::email("lin@example.com")).await.unwrap().unwrap();
    set_disabled(&app, lin.id, Some(1)).await;
    let res = c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "lin@example.com", "password": PW})).await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "forbidden"));

    // A user agent longer than the column is truncated, not an error.
    let long_ua = "Mozilla/5.0 ".repeat(100);
    app.signed_in("ua@example.com", PW).await;
    let res = c
        .send(
            Method::POST,
            "/auth/api/v1/login",
            Some(json!({"email": "ua@example.com", "password": PW}).to_string().into_bytes()),
            &[("content-type", "application/json"), ("user-agent", &long_ua)],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
}

/// Disables (`Some(at)`) or re-enables a user directly in the store, flipping only the flag.
pub async fn set_disabled(app: &TestApp, user_id: authara::domain::UserId, at: Option<i64>) {
    let mut tx = app.store.begin().await.unwrap();
    assert!(tx.set_user_disabled(user_id, at, app.clock_now()).await.unwrap());
    tx.commit().await.unwrap();
}

/// Login statuses for two requests whose `X-Forwarded-For` headers are given, with a login
/// limit of one per IP: a second 429 means both were taken for the same client.
async fn two_logins(engine: Engine, env: &[(&str, &str)], forwarded: [&str; 2]) -> Vec<u16> {
    let mut overrides = vec![("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "1")];
    overrides.extend_from_slice(env);
    let app = TestApp::start_with(engine, &overrides).await;
    let c = app.csrf_client().await;
    let mut statuses = Vec::new();
    for (i, xff) in forwarded.iter().enumerate() {
        let body = json!({"email": format!("u{i}@example.com"), "password": PW}).to_string().into_bytes();
        let headers = [("content-type", "application/json"), ("x-forwarded-for", *xff)];
        statuses.push(c.send(Method::POST, "/auth/api/v1/login", Some(body), &headers).await.status);
    }
    statuses
}

/// Forwarded IP headers count only when `AUTHARA_TRUST_PROXY_HEADERS` says the proxy is trusted,
/// and then only the rightmost hop that is not a trusted proxy: what a client writes to the left
/// of it cannot rotate its identity.
async fn forwarded_ips_are_believed_only_behind_a_trusted_proxy(engine: Engine) {
    let distinct = ["203.0.113.7, 10.0.0.1", "198.51.100.9, 10.0.0.1"];
    assert_eq!(two_logins(engine, &[], distinct).await, [401, 429], "headers ignored without trust");
    let trusted = [("AUTHARA_TRUST_PROXY_HEADERS", "true"), ("AUTHARA_TRUSTED_PROXIES", "127.0.0.1,10.0.0.0/8")];
    assert_eq!(two_logins(engine, &trusted, distinct).await, [401, 401], "the hop before our proxies is the client");
    let forged = ["1.1.1.1, 203.0.113.7, 10.0.0.1", "2.2.2.2, 203.0.113.7, 10.0.0.1"];
    assert_eq!(two_logins(engine, &trusted, forged).await, [401, 429], "forged leftmost entries change nothing");
    // Trust on, no proxy list: the peer is the one trusted hop, so the client is the entry it appended.
    let nearest = [("AUTHARA_TRUST_PROXY_HEADERS", "true")];
    assert_eq!(two_logins(engine, &nearest, ["9.9.9.9, 203.0.113.7", "8.8.8.8, 203.0.113.7"]).await, [401, 429]);
    assert_eq!(two_logins(engine, &nearest, ["203.0.113.7", "198.51.100.9"]).await, [401, 401]);
    // IPv6 clients are one client per /64.
    assert_eq!(two_logins(engine, &nearest, ["2001:db8:1:2::1", "2001:db8:1:2::2"]).await, [401, 429]);
}

on_both_engines!(
    forwarded_ips_are_believed_only_behind_a_trusted_proxy,
    scenario_signup_login_refresh_and_logout,
    signup_refuses_invalid_fields_and_writes_nothing,
    signup_refuses_malformed_bodies_and_writes_nothing,
    a_taken_email_is_refused_in_any_case,
    login_failures_answer_the_contract,
);
