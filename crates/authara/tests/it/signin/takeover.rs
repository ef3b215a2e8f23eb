//! The account-takeover paths an outside review reproduced against the earlier binary, each
//! through the real server: what the attacker did then, and what stops them now. (The cross-site
//! invitation link and the unbound recovery link are in `oauth::invitations`.)

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::completion::PW;
use crate::app::drain_mail as drain;
use crate::app::{TestApp, TestClient};
use crate::harness::{Engine, on_both_engines};
use crate::oauth::code_flow::via_provider;
use crate::oauth::provider::{Person, Provider};
use crate::passkeys::authenticator::{Knobs, ORIGIN, SoftAuthenticator};
use crate::smtp::SmtpSink;

const NEW_PW: &str = "copper-lantern-meadow";

/// An app with mail (a real SMTP sink), passkeys (`PUBLIC_URL` = the authenticator's origin) and
/// `idp` as Google and as the code-flow provider `stub`.
async fn app(engine: Engine, sink: &SmtpSink, idp: &Provider, extra: &[(&str, &str)]) -> TestApp {
    let providers = idp.env();
    let providers = crate::app::settings(&providers, &[("PUBLIC_URL", ORIGIN)]);
    TestApp::start_with_env(engine, &sink.env(), &[&providers, extra].concat()).await
}

async fn add_passkey(c: &TestClient, auth: &mut SoftAuthenticator) -> crate::app::Res {
    let res = c.post("/auth/api/v1/passkeys/register/options").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let (id, options) = (res.json()["challenge_id"].clone(), res.json()["options"].clone());
    let credential = auth.register(&options, &Knobs::default());
    c.json(
        Method::POST,
        "/auth/api/v1/passkeys/register/finish",
        &json!({"challenge_id": id, "credential": credential}),
    )
    .await
}

async fn passkey_sign_in(app: &TestApp, auth: &mut SoftAuthenticator) -> u16 {
    let c = app.csrf_client().await;
    let res = c.post("/auth/api/v1/passkeys/authenticate/options").await;
    let (id, options) = (res.json()["challenge_id"].clone(), res.json()["options"].clone());
    let credential = auth.assert(&options, &Knobs::default());
    c.json(
        Method::POST,
        "/auth/api/v1/passkeys/authenticate/finish",
        &json!({"challenge_id": id, "credential": credential}),
    )
    .await
    .status
}

/// Signs in with the code flow as `person` on a fresh browser; the callback's status and where it
/// sent the browser.
async fn provider_sign_in(app: &TestApp, idp: &Provider, person: Person) -> (TestClient, Option<String>) {
    idp.sign_in_as(person);
    let c = app.client();
    let start = c.get("/auth/oauth/stub/start?return_to=%2F").await;
    let (_, res) = via_provider(&c, start).await;
    (c, res.location())
}

async fn reset_password(app: &TestApp, sink: &SmtpSink, email: &str) {
    let c = app.csrf_client().await;
    let res = c
        .json(Method::POST, "/auth/api/v1/password-reset/challenges", &json!({"email": email, "new_password": NEW_PW}))
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    let id = res.json()["challenge_id"].as_str().unwrap().to_owned();
    drain(app).await;
    let code = sink.code_for(email);
    let res = c
        .json(Method::POST, "/auth/api/v1/password-reset/challenges/verify", &json!({"challenge_id": id, "code": code}))
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
}

/// Path 1: someone registers the owner's address first (direct signup proves nothing), adds
/// their passkey and links their own provider identity while the fresh session is privileged.
/// The owner's first proof of the address (a reset by emailed code) removes both, and tells
/// the owner by mail; the attacker's way back in is gone. A later reset removes nothing.
async fn the_first_proof_of_an_address_removes_what_was_added_before_it(engine: Engine) {
    let sink = SmtpSink::start().await;
    let idp = Provider::start().await;
    let app = app(engine, &sink, &idp, &[]).await;
    let attacker = app.signed_in("victim@example.com", PW).await;
    let mut key = SoftAuthenticator::new();
    assert_eq!(add_passkey(&attacker, &mut key).await.status, 204);
    idp.sign_in_as(Person::new("s-mallory", "mallory@example.com"));
    let start = attacker.form("/auth/oauth/stub/link", &[]).await;
    let (_, res) = via_provider(&attacker, start).await;
    assert_eq!(res.location().as_deref(), Some("/auth/account"), "{}", res.text());
    assert!(app.store.user_by_provider("stub", "s-mallory").await.unwrap().is_some());
    assert_eq!(passkey_sign_in(&app, &mut key).await, 200, "before the owner shows up, the passkey works");

    app.clock.advance(Duration::from_secs(5));
    reset_password(&app, &sink, "victim@example.com").await;

    let user = app.store.user_by_email(&crate::app::email("victim@example.com")).await.unwrap().unwrap();
    assert!(app.store.passkeys_of(user.id).await.unwrap().is_empty(), "the attacker's passkey is gone");
    assert!(app.store.user_by_provider("stub", "s-mallory").await.unwrap().is_none(), "and their identity");
    assert_ne!(passkey_sign_in(&app, &mut key).await, 200);
    let (_, back) = provider_sign_in(&app, &idp, Person::new("s-mallory", "mallory@example.com")).await;
    let signed_up_instead = app.store.user_by_provider("stub", "s-mallory").await.unwrap();
    assert!(signed_up_instead.is_none_or(|u| u.id != user.id), "the identity no longer reaches the account: {back:?}");
    assert_eq!(attacker.get("/auth/api/v1/user").await.status, 401, "the attacker's session ended");
    drain(&app).await;
    let mails: Vec<String> = sink.to("victim@example.com").iter().map(|m| m.decoded()).collect();
    let notice = mails.iter().find(|m| m.contains("were removed")).expect("the owner is told what was removed");
    assert!(notice.contains("passkey") && notice.contains("Stub ID sign-in"), "{notice}");
    assert!(mails.iter().any(|m| m.contains("was reset")), "and of the reset");

    // The address is proven now: the owner's own passkey survives a later reset.
    let owner = app.csrf_client().await;
    let login = json!({"email": "victim@example.com", "password": NEW_PW});
    assert_eq!(owner.json(Method::POST, "/auth/api/v1/login", &login).await.status, 200);
    let mut mine = SoftAuthenticator::new();
    assert_eq!(add_passkey(&owner, &mut mine).await.status, 204);
    app.clock.advance(Duration::from_secs(5));
    reset_password(&app, &sink, "victim@example.com").await;
    assert_eq!(app.store.passkeys_of(user.id).await.unwrap().len(), 1, "only the first proof removes anything");
}

/// Path 4: an ID token that leaked (a log, a proxy) is good for one sign-in, on every instance.
async fn a_google_id_token_signs_in_once(engine: Engine) {
    let sink = SmtpSink::start().await;
    let idp = Provider::start().await;
    let app = app(engine, &sink, &idp, &[]).await;
    let c = app.csrf_client().await;
    let nonce = c.get("/auth/api/v1/oauth/google/options").await.json()["nonce"].as_str().unwrap().to_owned();
    let token = idp.id_token(json!({"nonce": nonce, "sub": "g-once", "email": "once@example.com"}));
    let body = json!({"credential": token, "nonce": nonce});
    let res = c.json(Method::POST, "/auth/api/v1/oauth/google", &body).await;
    assert_eq!(res.status, 200, "{}", res.text());
    // The thief replays it with the nonce (both travel together).
    let thief = app.csrf_client().await;
    thief.set_cookie("authara_oauth_nonce", &nonce);
    let res = thief.json(Method::POST, "/auth/api/v1/oauth/google", &body).await;
    assert_eq!((res.status, res.error_code().as_str()), (401, "unauthorized"), "{}", res.text());
    assert!(res.set_cookie("authara_access").is_none());
    // Another instance on the same database refuses it too.
    let other = app.second_instance().await;
    let replay = other.oauth().verify_google(&token, &nonce, &authara::domain::ClientInfo::default()).await;
    assert!(matches!(replay, Err(authara::services::oauth::OAuthError::Replayed)), "{replay:?}");
}

/// Path 5: the owner hears of every sign-in method added or removed, and of password changes.
async fn the_owner_is_told_when_a_way_in_is_added_or_removed(engine: Engine) {
    let sink = SmtpSink::start().await;
    let idp = Provider::start().await;
    let app = app(engine, &sink, &idp, &[]).await;
    let c = app.signed_in("told@example.com", PW).await;
    let mut key = SoftAuthenticator::new();
    assert_eq!(add_passkey(&c, &mut key).await.status, 204);
    idp.sign_in_as(Person::new("s-told", "told@example.com"));
    let start = c.form("/auth/oauth/stub/link", &[]).await;
    via_provider(&c, start).await;
    let res = c.form("/auth/providers/stub/unlink", &[]).await;
    assert!(c.back_on_account(&res).await.contains("was removed"));
    let account = c.get("/auth/account").await.text();
    let pk = account.split("/auth/passkeys/").nth(1).unwrap().split('/').next().unwrap().to_owned();
    c.form(&format!("/auth/passkeys/{pk}/delete"), &[]).await;
    let res = c.json(Method::PUT, "/auth/api/v1/users/password", &json!({"password": NEW_PW})).await;
    assert_eq!(res.status, 204, "{}", res.text());
    drain(&app).await;
    let subjects: Vec<String> = sink
        .to("told@example.com")
        .iter()
        .map(|m| m.data.lines().find(|l| l.starts_with("Subject:")).unwrap_or_default().to_owned())
        .collect();
    for wanted in [
        "A passkey was added",
        "A sign-in method was added",
        "A sign-in method was removed",
        "A passkey was removed",
        "password was changed",
    ] {
        assert!(subjects.iter().any(|s| s.contains(wanted)), "{wanted} in {subjects:#?}");
    }
}

/// Path 7: a device cookie vouches for its browser only until the password changes.
async fn a_password_change_voids_device_cookies(engine: Engine) {
    let app = TestApp::start_with(
        engine,
        &[("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT", "10"), ("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "1000")],
    )
    .await;
    app.signed_in("device@example.com", PW).await;
    let owner = app.csrf_client().await;
    let login = json!({"email": "device@example.com", "password": PW});
    assert_eq!(owner.json(Method::POST, "/auth/api/v1/login", &login).await.status, 200);
    assert!(owner.cookie("authara_device").is_some());
    // The password changes (it may have leaked with the browser's cookies).
    app.clock.advance(Duration::from_secs(1));
    let res = owner.json(Method::PUT, "/auth/api/v1/users/password", &json!({"password": NEW_PW})).await;
    assert_eq!(res.status, 204, "{}", res.text());
    // Strangers spend the account's budget; the old device cookie no longer skips it.
    let stranger = app.csrf_client().await;
    let wrong = json!({"email": "device@example.com", "password": "wrong-password-1"});
    for _ in 0..9 {
        assert_eq!(stranger.json(Method::POST, "/auth/api/v1/login", &wrong).await.status, 401);
    }
    let login = json!({"email": "device@example.com", "password": NEW_PW});
    let res = owner.json(Method::POST, "/auth/api/v1/login", &login).await;
    assert_eq!(res.status, 429, "the old device cookie is void: {}", res.text());
}

/// Path 6: the console's role, disable and session actions need a recent sign-in (or the
/// administrator's password), as the users' own sensitive changes do.
async fn admin_actions_need_a_privileged_session(engine: Engine) {
    let app = TestApp::start(engine).await;
    let password = authara::domain::NewPassword::parse(PW).unwrap();
    app.services.accounts().create_admin(&crate::app::email("root@example.com"), &password).await.unwrap();
    app.signed_in("target@example.com", PW).await;
    let target = app.store.user_by_email(&crate::app::email("target@example.com")).await.unwrap().unwrap().id;
    let root = app.client();
    root.get("/auth/login").await;
    let res = root.form("/auth/login?return_to=%2Fadmin", &[("email", "root@example.com"), ("password", PW)]).await;
    assert_eq!(res.status, 303);
    let base = format!("/auth/admin/users/{target}");
    let page = root.get(&base).await.text();
    assert!(
        page.contains("Disable") && !page.contains("name=\"current_password\""),
        "a fresh sign-in: no password asked"
    );
    // An hour later (the session still refreshes; the privilege window is 15 minutes).
    app.clock.advance(Duration::from_secs(3600));
    root.get("/auth/admin").await;
    assert!(root.get(&base).await.text().contains("name=\"current_password\""), "now the actions ask for it");
    for action in ["disable", "roles/admin/grant", "sessions/revoke-all"] {
        let res = root.form(&format!("{base}/{action}"), &[]).await;
        assert_eq!(res.status, 422, "{action}: {}", res.text());
        assert!(res.text().contains("enter your current password"), "{action}");
    }
    assert!(app.store.user_by_id(target).await.unwrap().unwrap().disabled_at_ms.is_none());
    assert!(app.store.user_roles(target).await.unwrap().is_empty());
    let res = root.form(&format!("{base}/disable"), &[("current_password", "not-the-password")]).await;
    assert_eq!(res.status, 422, "{}", res.text());
    assert!(res.text().contains("The current password is incorrect."));
    let res = root.form(&format!("{base}/disable"), &[("current_password", PW)]).await;
    assert_eq!(res.status, 303, "with the password it is done: {}", res.text());
    assert!(app.store.user_by_id(target).await.unwrap().unwrap().disabled_at_ms.is_some());
}

/// Path 8: registering one's own passkey again is the contract's 409.
async fn a_passkey_registered_again_is_a_conflict(engine: Engine) {
    let app = TestApp::start_with(engine, &[("PUBLIC_URL", ORIGIN)]).await;
    let c = app.signed_in("twice@example.com", PW).await;
    let mut key = SoftAuthenticator::new();
    assert_eq!(add_passkey(&c, &mut key).await.status, 204);
    let res = add_passkey(&c, &mut key).await;
    assert_eq!((res.status, res.error_code().as_str()), (409, "passkey_already_exists"), "{}", res.text());
}

on_both_engines!(
    the_first_proof_of_an_address_removes_what_was_added_before_it,
    a_google_id_token_signs_in_once,
    the_owner_is_told_when_a_way_in_is_added_or_removed,
    a_password_change_voids_device_cookies,
    admin_actions_need_a_privileged_session,
    a_passkey_registered_again_is_a_conflict,
);
