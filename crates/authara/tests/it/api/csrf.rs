//! CSRF double-submit on every state-changing route.

use reqwest::Method;
use serde_json::json;

use crate::app::TestApp;
use crate::harness::{Engine, on_both_engines};

use crate::harness::PW;

async fn every_state_changing_route_requires_the_csrf_pair(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.signed_in("csrf@example.com", PW).await;
    let routes: [(Method, &str, serde_json::Value); 5] = [
        (Method::POST, "/auth/api/v1/login", json!({"email": "csrf@example.com", "password": PW})),
        (Method::POST, "/auth/api/v1/signup/direct", json!({"email": "other@example.com", "password": PW})),
        (Method::POST, "/auth/api/v1/sessions/refresh", json!({})),
        (Method::PUT, "/auth/api/v1/users/password", json!({"password": "new-violet-harbor", "current_password": PW})),
        (Method::POST, "/auth/api/v1/sessions/logout", json!({})),
    ];
    let real = c.cookie("authara_csrf").unwrap();
    for (method, path, body) in &routes {
        // Missing header.
        *c.send_csrf.lock().unwrap() = false;
        let res = c.json(method.clone(), path, body).await;
        assert_eq!(
            (res.status, res.error_code().as_str()),
            (403, "forbidden"),
            "{path} without header: {}",
            res.text()
        );
        // Mismatched header.
        let res = c
            .send(
                method.clone(),
                path,
                Some(body.to_string().into_bytes()),
                &[("content-type", "application/json"), ("x-csrf-token", "forged")],
            )
            .await;
        assert_eq!(res.status, 403, "{path} with a forged header");
        // Header without the cookie.
        c.remove_cookie("authara_csrf");
        let res = c
            .send(
                method.clone(),
                path,
                Some(body.to_string().into_bytes()),
                &[("content-type", "application/json"), ("x-csrf-token", &real)],
            )
            .await;
        assert_eq!(res.status, 403, "{path} without the cookie");
        c.set_cookie("authara_csrf", &real);
        *c.send_csrf.lock().unwrap() = true;
    }
    // Nothing happened: the session still works and the password is unchanged.
    assert_eq!(c.get("/auth/api/v1/user").await.status, 200);
    assert_eq!(app.store.user_count().await.unwrap(), 1);

    // tokens/refresh carries the token in the body and needs no CSRF.
    let token = c.cookie("authara_refresh").unwrap();
    let bare = app.client();
    let res = bare.json(Method::POST, "/auth/api/v1/tokens/refresh", &json!({"refresh_token": token})).await;
    assert_eq!(res.status, 200, "{}", res.text());
}

on_both_engines!(every_state_changing_route_requires_the_csrf_pair);

#[tokio::test]
async fn csrf_cookie_attributes() {
    let app = TestApp::start(Engine::Sqlite).await;
    let c = app.client();
    let res = c.get("/auth/api/v1/csrf").await;
    let cookie = res.set_cookie("authara_csrf").unwrap();
    assert!(cookie.contains("Path=/") && cookie.contains("Max-Age=2592000") && cookie.contains("SameSite=Lax"));
    assert!(!cookie.contains("HttpOnly"), "the browser SDK reads it from document.cookie");
    assert_eq!(res.json()["csrf_token"].as_str().unwrap().len(), 43);
    assert_eq!(res.json()["csrf_token"].as_str(), c.cookie("authara_csrf").as_deref());
}
