//! README (account page): users "sign out one device or all others, and delete their account",
//! and "logout and password changes stop the session's access tokens at once". Each
//! session-ending action on the hosted account page ends the affected access tokens at once (no
//! clock advance: long before they expire), while the acting device keeps working.

use crate::app::{TestApp, TestClient};
use crate::harness::{Engine, on_both_engines};

use crate::harness::PW;
const NEW_PW: &str = "copper-lantern-meadow";

/// A second device of the same account, signed in over the API.
async fn second_device(app: &TestApp, email: &str) -> TestClient {
    app.logged_in(email, PW).await
}

/// `GET /auth/api/v1/user` with nothing but a copy of `device`'s current access cookie (the API
/// never refreshes, so this is exactly that token's fate).
async fn access_status(app: &TestApp, device: &TestClient) -> u16 {
    let copy = app.client();
    copy.set_cookie("authara_access", &device.cookie("authara_access").expect("an access cookie"));
    copy.get("/auth/api/v1/user").await.status
}

async fn signing_out_everywhere_else_ends_the_other_access_tokens_at_once(engine: Engine) {
    let app = TestApp::start(engine).await;
    let this = app.signed_in("elsewhere@example.com", PW).await;
    let other = second_device(&app, "elsewhere@example.com").await;
    assert_eq!(access_status(&app, &other).await, 200);

    let res = this.form("/auth/sessions/revoke-other", &[]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/auth/account")));
    assert!(this.get("/auth/account").await.text().contains("All other devices were signed out."));
    assert_eq!(access_status(&app, &other).await, 401, "the other device's access token is dead at once");
    assert_eq!(access_status(&app, &this).await, 200, "this device keeps working");
}

async fn a_hosted_password_change_ends_the_other_access_tokens_at_once(engine: Engine) {
    let app = TestApp::start(engine).await;
    let this = app.signed_in("newpass@example.com", PW).await;
    let other = second_device(&app, "newpass@example.com").await;
    assert_eq!(access_status(&app, &other).await, 200);

    let res = this.form("/auth/providers/password/change", &[("current_password", PW), ("new_password", NEW_PW)]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/auth/account")));
    assert!(this.get("/auth/account").await.text().contains("Your password was changed."));
    assert_eq!(access_status(&app, &other).await, 401, "the other device's access token is dead at once");
    assert_eq!(access_status(&app, &this).await, 200, "this device keeps working");
}

async fn deleting_the_account_ends_its_own_access_token_at_once(engine: Engine) {
    let app = TestApp::start(engine).await;
    let this = app.signed_in("leaving@example.com", PW).await;
    let other = second_device(&app, "leaving@example.com").await;
    // A copy of the deleting device's access cookie, kept after the browser clears its own.
    let kept = app.client();
    kept.set_cookie("authara_access", &this.cookie("authara_access").unwrap());
    assert_eq!(kept.get("/auth/api/v1/user").await.status, 200);

    let res = this.form("/auth/user/delete", &[("confirm", "leaving@example.com")]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/auth/successful-deletion")));
    assert_eq!(kept.get("/auth/api/v1/user").await.status, 401, "the deleting device's own old token is dead at once");
    assert_eq!(access_status(&app, &other).await, 401, "and every other device's");
}

on_both_engines!(
    signing_out_everywhere_else_ends_the_other_access_tokens_at_once,
    a_hosted_password_change_ends_the_other_access_tokens_at_once,
    deleting_the_account_ends_its_own_access_token_at_once,
);
