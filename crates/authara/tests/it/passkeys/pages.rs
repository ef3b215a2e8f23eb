//! The hosted pages' passkey endpoints (the ones the page script calls), the setup page, the
//! account page's list with rename and delete, and the passwordless signup.

use std::time::Duration;

use authara::domain::UserId;
use authara::worker::email::run_once;
use reqwest::Method;
use serde_json::{Value, json};

use super::authenticator::{Knobs, ORIGIN, SoftAuthenticator};
use crate::app::{Res, TestApp, TestClient};
use crate::harness::{Engine, on_both_engines};
use crate::smtp::SmtpSink;

use crate::app::browser;
use crate::harness::PW;

/// A JSON call as the page script makes it (CSRF header, optional extra header).
async fn script(c: &TestClient, path: &str, body: &Value, extra: &[(&str, &str)]) -> Res {
    let mut headers = vec![("content-type", "application/json")];
    headers.extend_from_slice(extra);
    c.send(Method::POST, path, Some(body.to_string().into_bytes()), &headers).await
}

async fn add_passkey(c: &TestClient, auth: &mut SoftAuthenticator, section: bool) -> Res {
    let res = script(c, "/auth/passkeys/register/options", &json!({}), &[]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    let credential = auth.register(&v["options"], &Knobs::default());
    let body = json!({"challenge_id": v["challenge_id"], "credential": credential, "platform_hint": "Linux"});
    let extra: &[(&str, &str)] = if section { &[("x-authara-response", "linked-providers-section")] } else { &[] };
    script(c, "/auth/passkeys/register/finish", &body, extra).await
}

async fn sign_in(c: &TestClient, auth: &mut SoftAuthenticator, return_to: &str) -> Res {
    let res = script(c, "/auth/passkeys/authenticate/options", &json!({}), &[]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let v = res.json();
    let credential = auth.assert(&v["options"], &Knobs::default());
    let body = json!({"challenge_id": v["challenge_id"], "credential": credential, "return_to": return_to});
    script(c, "/auth/passkeys/authenticate/finish", &body, &[]).await
}

fn passkey_ids(page: &str) -> Vec<String> {
    page.split(r#"action="/auth/passkeys/"#)
        .skip(1)
        .filter_map(|rest| rest.split_once("/delete\"").map(|(id, _)| id.to_owned()))
        .filter(|id| !id.contains('/'))
        .collect()
}

async fn scenario_pages_add_list_rename_and_sign_in_with_a_passkey(engine: Engine) {
    let app = TestApp::start_with(engine, &[("PUBLIC_URL", ORIGIN)]).await;
    let login = browser(&app).await.get("/auth/login").await.text();
    assert!(login.contains("data-passkey-login") && login.contains("Sign in with a passkey"), "{login}");
    assert!(login.contains(r#"name="password""#), "password login stays on the page");

    let c = browser(&app).await;
    let res = c.form("/auth/signup?return_to=/after", &[("email", "pages@example.com"), ("password", PW)]).await;
    assert_eq!(res.location().as_deref(), Some("/auth/passkeys/setup?return_to=%2Fafter"));
    let setup = c.get("/auth/passkeys/setup?return_to=/after").await;
    assert_eq!(setup.status, 200);
    let page = setup.text();
    assert!(page.contains("data-passkey-register") && page.contains(r#"data-passkey-redirect="true""#), "{page}");
    assert!(page.contains(r#"href="/after""#), "skip goes on to return_to");

    // Without the CSRF header the script's endpoints refuse.
    *c.send_csrf.lock().unwrap() = false;
    assert_eq!(script(&c, "/auth/passkeys/register/options", &json!({}), &[]).await.status, 403);
    *c.send_csrf.lock().unwrap() = true;

    let mut auth = SoftAuthenticator::new();
    let res = add_passkey(&c, &mut auth, false).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json(), json!({"ok": true, "return_to": "/auth/account"}));
    let mut second = SoftAuthenticator::new();
    let res = add_passkey(&c, &mut second, true).await;
    assert_eq!(res.status, 200);
    let section = res.text();
    assert!(section.starts_with(r#"<section class="block" id="linked-providers-section""#), "{section}");
    assert_eq!(section.matches("data-passkey-row").count(), 2, "{section}");
    assert!(section.contains("Linux PC • Device Passkey •"), "a generated name from the platform hint: {section}");

    let account = c.get("/auth/account").await.text();
    assert!(account.contains("This device only") && account.contains("never used"), "{account}");
    let ids = passkey_ids(&account);
    assert_eq!(ids.len(), 2, "{account}");
    let res = c.form(&format!("/auth/passkeys/{}/rename", ids[0]), &[("name", "  Work laptop  ")]).await;
    assert!(c.back_on_account(&res).await.contains("Your passkey was renamed."));
    let res = c.form(&format!("/auth/passkeys/{}/rename", ids[0]), &[("name", "")]).await;
    assert!(c.back_on_account(&res).await.contains("A passkey name has 1 to 255 visible characters."));
    // An override would print what follows it backwards; a zero-width space hides nothing but
    // makes two names look alike.
    for hidden in ["Work\u{202E}potpal", "Wo\u{200B}rk", "\u{2066}Work\u{2069}"] {
        let res = c.form(&format!("/auth/passkeys/{}/rename", ids[0]), &[("name", hidden)]).await;
        assert!(
            c.back_on_account(&res).await.contains("A passkey name has 1 to 255 visible characters."),
            "{hidden:?}"
        );
    }
    let account = c.get("/auth/account").await.text();
    assert!(account.contains(r#"value="Work laptop""#) && account.contains("Passkey renamed"), "{account}");

    // A browser with nothing but the passkey signs in and lands on return_to.
    let b = browser(&app).await;
    let res = sign_in(&b, &mut auth, "/after").await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json(), json!({"ok": true, "return_to": "/after"}));
    assert!(b.cookie("authara_access").is_some());
    assert_eq!(b.get("/auth/api/v1/user").await.json()["email"], "pages@example.com");
    let res = sign_in(&browser(&app).await, &mut auth, "https://evil.example/").await;
    assert_eq!(res.json()["return_to"], "/", "an unsafe return_to is not followed");
    // A failed sign-in answers 422 in the envelope.
    let res = script(
        &b,
        "/auth/passkeys/authenticate/finish",
        &json!({"challenge_id": uuid::Uuid::new_v4(), "credential": {}}),
        &[],
    )
    .await;
    assert_eq!((res.status, res.error_code().as_str()), (422, "invalid_request"));
}

/// Removing a passkey: never another user's (their id is unknown here), and from a stale
/// session only with the current password.
async fn removal_takes_a_recent_sign_in_and_ones_own_passkey(engine: Engine) {
    let app = TestApp::start_with(engine, &[("PUBLIC_URL", ORIGIN)]).await;
    let (a, b) = (browser(&app).await, browser(&app).await);
    a.form("/auth/signup", &[("email", "own@example.com"), ("password", PW)]).await;
    b.form("/auth/signup", &[("email", "other@example.com"), ("password", PW)]).await;
    for c in [&a, &b] {
        assert_eq!(add_passkey(c, &mut SoftAuthenticator::new(), false).await.status, 200);
    }
    let uid = |c: &TestClient| {
        let c = c.clone();
        async move { UserId(c.get("/auth/api/v1/user").await.json()["id"].as_str().unwrap().parse().unwrap()) }
    };
    let (a_id, b_id) = (uid(&a).await, uid(&b).await);
    let mine = passkey_ids(&a.get("/auth/account").await.text());
    let theirs = passkey_ids(&b.get("/auth/account").await.text());

    let res = a.form(&format!("/auth/passkeys/{}/delete", theirs[0]), &[("current_password", PW)]).await;
    assert_eq!(res.status, 404, "another user's passkey is not found: {}", res.text());
    assert_eq!(app.store.passkeys_of(b_id).await.unwrap().len(), 1, "and stays");

    // Sixteen minutes later (the access token refreshed on the way), the session is stale.
    app.clock.advance(Duration::from_secs(14 * 60));
    assert_eq!(a.post("/auth/api/v1/sessions/refresh").await.status, 200);
    app.clock.advance(Duration::from_secs(2 * 60));
    let res = a.form(&format!("/auth/passkeys/{}/delete", mine[0]), &[]).await;
    assert!(a.back_on_account(&res).await.contains("enter your current password"), "{}", res.text());
    assert_eq!(app.store.passkeys_of(a_id).await.unwrap().len(), 1, "a stale session alone removes nothing");
    let res = a.form(&format!("/auth/passkeys/{}/delete", mine[0]), &[("current_password", "not-the-password")]).await;
    assert!(a.back_on_account(&res).await.contains("The current password is incorrect."));
    assert_eq!(app.store.passkeys_of(a_id).await.unwrap().len(), 1);
    let res = a.form(&format!("/auth/passkeys/{}/delete", mine[0]), &[("current_password", PW)]).await;
    assert!(a.back_on_account(&res).await.contains("The passkey was removed."));
    assert!(app.store.passkeys_of(a_id).await.unwrap().is_empty());
}

async fn the_last_sign_in_method_cannot_be_removed(engine: Engine) {
    let app = TestApp::start_with(engine, &[("PUBLIC_URL", ORIGIN)]).await;
    let c = browser(&app).await;
    c.form("/auth/signup", &[("email", "last@example.com"), ("password", PW)]).await;
    let mut auth = SoftAuthenticator::new();
    assert_eq!(add_passkey(&c, &mut auth, false).await.status, 200);
    let uid = UserId(c.get("/auth/api/v1/user").await.json()["id"].as_str().unwrap().parse().unwrap());
    // Only the passkey is left.
    app.db.raw_sql("DELETE FROM auth_providers WHERE provider = 'password'").await;
    let ids = passkey_ids(&c.get("/auth/account").await.text());
    let res = c.form(&format!("/auth/passkeys/{}/delete", ids[0]), &[]).await;
    assert!(c.back_on_account(&res).await.contains("This is your only way to sign in"));
    assert_eq!(app.store.passkeys_of(uid).await.unwrap().len(), 1);
    let res = c.form(&format!("/auth/passkeys/{}/delete", uuid::Uuid::new_v4()), &[]).await;
    assert_eq!(res.status, 404);

    // The admin console lists it, without key material.
    let password = authara::domain::NewPassword::parse(PW).unwrap();
    app.services.accounts().create_admin(&crate::app::email("root@example.com"), &password).await.unwrap();
    let admin = app.csrf_client().await;
    let res =
        admin.json(Method::POST, "/auth/api/v1/login", &json!({"email": "root@example.com", "password": PW})).await;
    assert_eq!(res.status, 200);
    let detail = admin.get(&format!("/auth/admin/users/{}", uid.0)).await;
    assert_eq!(detail.status, 200, "{}", detail.text());
    let detail = detail.text();
    assert!(detail.contains("<h2>Passkeys</h2>") && detail.contains("Linux PC • Device Passkey"), "{detail}");
    assert!(detail.contains("1 passkey(s)") && detail.contains("device-bound"), "{detail}");
    assert!(!detail.contains(&super::authenticator::b64(&auth.credential_id)), "no credential id on the page");

    // With a password again (the account page offers to add one), it can go.
    let account = c.get("/auth/account").await.text();
    assert!(account.contains("Add a password"), "{account}");
    let res = c.form("/auth/providers/password/change", &[("new_password", "copper-lantern-meadow")]).await;
    assert_eq!(res.status, 303, "{}", res.text());
    let res = c.form(&format!("/auth/passkeys/{}/delete", ids[0]), &[]).await;
    assert!(c.back_on_account(&res).await.contains("The passkey was removed."));
    assert!(app.store.passkeys_of(uid).await.unwrap().is_empty());
}

async fn passwordless_signup_verifies_the_email_then_offers_a_passkey(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app =
        TestApp::start_with_env(engine, &sink.env(), &[("AUTHARA_CHALLENGE_ENABLED", "true"), ("PUBLIC_URL", ORIGIN)])
            .await;
    let c = browser(&app).await;
    let form = c.get("/auth/signup").await.text();
    assert!(form.contains("Password (optional)"), "{form}");
    let res = c.form("/auth/signup?return_to=/hello", &[("email", "nopw@example.com"), ("password", "")]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let page = res.text();
    let id = page.split(r#"name="challenge_id" value=""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
    while run_once(&app.services).await.unwrap() != authara::worker::email::Outcome::Idle {}
    let code = sink.code_for("nopw@example.com");
    let res = c.form("/auth/verify-challenge/signup?return_to=/hello", &[("challenge_id", &id), ("code", &code)]).await;
    assert_eq!(res.location().as_deref(), Some("/auth/passkeys/setup?return_to=%2Fhello"), "{}", res.text());
    let user = app.store.user_by_email(&crate::app::email("nopw@example.com")).await.unwrap().unwrap();
    assert!(app.store.password_hash(user.id).await.unwrap().is_none(), "no password was set");
    let setup = c.get("/auth/passkeys/setup?return_to=/hello").await.text();
    assert!(setup.contains("resetting your password"), "the way back in is explained: {setup}");
    let mut auth = SoftAuthenticator::new();
    assert_eq!(add_passkey(&c, &mut auth, false).await.status, 200);
    let res = sign_in(&browser(&app).await, &mut auth, "/hello").await;
    assert_eq!(res.status, 200, "{}", res.text());
    // A password login for the passkey-only account fails as any wrong password does.
    let b = browser(&app).await;
    let res = b.form("/auth/login", &[("email", "nopw@example.com"), ("password", PW)]).await;
    assert_eq!(res.status, 422);
}

on_both_engines!(
    removal_takes_a_recent_sign_in_and_ones_own_passkey,
    scenario_pages_add_list_rename_and_sign_in_with_a_passkey,
    the_last_sign_in_method_cannot_be_removed,
    passwordless_signup_verifies_the_email_then_offers_a_passkey,
);
