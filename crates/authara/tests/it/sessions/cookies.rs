//! The session cookies' attributes in production.

use reqwest::Method;
use serde_json::json;

use crate::app::TestApp;
use crate::harness::Engine;
use crate::harness::PW;

/// README: `APP_ENV=prod` marks cookies `Secure` — every cookie a sign-in sets, and the CSRF one.
#[tokio::test]
async fn prod_cookies_are_secure() {
    let app = TestApp::start_with(Engine::Sqlite, &crate::harness::PROD).await;
    let c = app.client();
    let csrf = c.get("/auth/api/v1/csrf").await;
    let mut set = vec![csrf.set_cookie("authara_csrf").expect("the CSRF cookie")];
    let res =
        c.json(Method::POST, "/auth/api/v1/signup/direct", &json!({"email": "prod@example.com", "password": PW})).await;
    assert_eq!(res.status, 201, "{}", res.text());
    set.extend(["authara_access", "authara_refresh"].map(|n| res.set_cookie(n).unwrap_or_else(|| panic!("{n}"))));
    let out = c.post("/auth/api/v1/sessions/logout").await;
    assert_eq!(out.status, 204, "{}", out.text());
    set.extend(
        ["authara_access", "authara_refresh"].map(|n| out.set_cookie(n).unwrap_or_else(|| panic!("cleared {n}"))),
    );
    for cookie in &set {
        assert!(cookie.split(';').any(|a| a.trim() == "Secure"), "not Secure in prod: {cookie}");
    }
}
