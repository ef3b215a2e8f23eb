//! Sensitive changes need a privileged session: a recent login or the current password.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::app::{TestApp, TestClient};
use crate::harness::{Engine, on_both_engines};

use crate::harness::PW;
const NEW_PW: &str = "copper-lantern-meadow";

/// A session signed in longer ago than the privileged window, kept alive by refreshes.
async fn old_session(app: &TestApp, email: &str) -> TestClient {
    let c = app.signed_in(email, PW).await;
    app.clock.advance(Duration::from_secs(16 * 60));
    assert_eq!(c.post("/auth/api/v1/sessions/refresh").await.status, 200);
    c
}

// Security review finding: an access cookie alone could set a new password.
async fn the_api_password_change_needs_a_recent_login_or_the_password(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = old_session(&app, "stale@example.com").await;
    let res = c.json(Method::PUT, "/auth/api/v1/users/password", &json!({"password": NEW_PW})).await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "forbidden"), "a stolen old session cannot");
    assert!(res.json()["error"]["message"].as_str().unwrap().contains("current_password"));
    let res = c
        .json(
            Method::PUT,
            "/auth/api/v1/users/password",
            &json!({"password": NEW_PW, "current_password": "nope-nope-1"}),
        )
        .await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "forbidden"), "a wrong password does not help");
    let res =
        c.json(Method::PUT, "/auth/api/v1/users/password", &json!({"password": NEW_PW, "current_password": PW})).await;
    assert_eq!(res.status, 204, "the current password makes it privileged");
    let fresh = app.csrf_client().await;
    let login = |password: &str| json!({"email": "stale@example.com", "password": password});
    assert_eq!(fresh.json(Method::POST, "/auth/api/v1/login", &login(PW)).await.status, 401, "the old one is gone");
    assert_eq!(fresh.json(Method::POST, "/auth/api/v1/login", &login(NEW_PW)).await.status, 200, "the new one is set");
}

// Security review finding: the current-password check allowed unlimited guesses.
async fn current_password_guesses_are_limited(engine: Engine) {
    let app = TestApp::start_with(engine, &[("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT", "3")]).await;
    let c = old_session(&app, "guess@example.com").await;
    let mut statuses = Vec::new();
    for i in 0..5 {
        let guess = json!({"password": NEW_PW, "current_password": format!("wrong-guess-{i}")});
        let res = c.json(Method::PUT, "/auth/api/v1/users/password", &guess).await;
        if res.status == 429 {
            assert_eq!(res.error_code(), "rate_limited");
            assert!(res.headers.contains_key("retry-after"));
        }
        statuses.push(res.status);
    }
    assert_eq!(statuses, [403, 403, 403, 429, 429]);
    // Refused unheard: not even the right password gets through until the window ends.
    let right = json!({"password": NEW_PW, "current_password": PW});
    assert_eq!(c.json(Method::PUT, "/auth/api/v1/users/password", &right).await.status, 429);
    let fresh = app.csrf_client().await;
    let login = json!({"email": "guess@example.com", "password": PW});
    assert_eq!(fresh.json(Method::POST, "/auth/api/v1/login", &login).await.status, 200, "the password is unchanged");
}

// Security review finding: the pages made sensitive changes without a recent login or the password.
async fn pages_ask_for_the_password_for_sensitive_changes(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = old_session(&app, "page@example.com").await;
    let res = c.form("/auth/user/delete", &[("confirm", "page@example.com")]).await;
    assert!(c.back_on_account(&res).await.contains("enter your current password"));
    let res = c.form("/auth/email-change", &[("new_email", "moved@example.com")]).await;
    assert!(c.back_on_account(&res).await.contains("enter your current password"));
    let res = c.form("/auth/email-change", &[("new_email", "moved@example.com"), ("current_password", PW)]).await;
    assert_eq!(res.status, 200, "with the password: the code page");
    let res = c.form("/auth/user/delete", &[("confirm", "page@example.com"), ("current_password", PW)]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/auth/successful-deletion")));
    // Right after a login, no password is needed.
    let fresh = app.signed_in("fresh@example.com", PW).await;
    let res = fresh.form("/auth/user/delete", &[("confirm", "fresh@example.com")]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/auth/successful-deletion")));
    assert!(app.store.user_by_email(&crate::app::email("fresh@example.com")).await.unwrap().is_none(), "deleted");
}

// Security review finding: the password set was not the one typed.
/// Passwords are never trimmed: the one set is the one that signs in.
async fn passwords_are_taken_as_typed(engine: Engine) {
    let app = TestApp::start(engine).await;
    let spaced = "  spaced out password  ";
    app.signed_in("spaces@example.com", spaced).await;
    let c = app.csrf_client().await;
    let trimmed = json!({"email": "spaces@example.com", "password": spaced.trim()});
    assert_eq!(c.json(Method::POST, "/auth/api/v1/login", &trimmed).await.status, 401);
    let exact = json!({"email": "spaces@example.com", "password": spaced});
    assert_eq!(c.json(Method::POST, "/auth/api/v1/login", &exact).await.status, 200);
    let res = c
        .form(
            "/auth/providers/password/change",
            &[("current_password", spaced), ("new_password", " another pass phrase ")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text());
    let page = c.form("/auth/login", &[("email", "spaces@example.com"), ("password", " another pass phrase ")]).await;
    assert_eq!(page.status, 303);
}

on_both_engines!(
    the_api_password_change_needs_a_recent_login_or_the_password,
    current_password_guesses_are_limited,
    pages_ask_for_the_password_for_sensitive_changes,
    passwords_are_taken_as_typed,
);
