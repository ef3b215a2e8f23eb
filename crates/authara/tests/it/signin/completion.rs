//! Every sign-in method goes through the one completion (`services::signin`): each test signs
//! in by one method through the real HTTP server and finds the `user.signed_in` event, the
//! `user.login` audit row naming the method, and the live session the two point at.

use authara::domain::{AuditAction, EventType, UserId};
use authara::services::return_to::encode;
use authara::store::audit::AuditFilter;
use reqwest::Method;
use serde_json::{Value, json};

use crate::app::{TestApp, TestClient};
use crate::harness::{Engine, on_both_engines};
use crate::oauth::code_flow::via_provider;
use crate::oauth::provider::{Person, Provider};
use crate::organizations::api::{invite, team, token_of, user_id};
use crate::passkeys::api::{register, sign_in_with};
use crate::passkeys::authenticator::{Knobs, ORIGIN, SoftAuthenticator};
use crate::smtp::SmtpSink;

pub use crate::harness::PW;

/// Checks that `email`'s latest sign-in was completed by the pipeline with `method`: the event,
/// the audit row (the same session), and the session itself, live. Returns the audit metadata.
pub async fn completed(app: &TestApp, email: &str, method: &str) -> Value {
    let user = app.store.user_by_email(&crate::app::email(email)).await.unwrap().expect("the user exists");
    let events = app.store.events_since(0, 10_000).await.unwrap();
    let event = events
        .iter()
        .rev()
        .find(|e| e.kind == EventType::SignedIn.as_str() && e.aggregate_id == user.id.0)
        .unwrap_or_else(|| panic!("no user.signed_in event for {email}"));
    let data: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(data["method"], method, "{data}");
    let session = data["session_id"].as_str().expect("the event names the session").to_owned();
    let filter = AuditFilter { actor: None, target: Some(user.id), action: Some(AuditAction::Login) };
    let rows = app.store.audit_page(&filter, 1, 0).await.unwrap();
    let row = rows.first().unwrap_or_else(|| panic!("no user.login audit row for {email}"));
    let meta: Value = serde_json::from_str(&row.metadata).unwrap();
    assert_eq!((meta["method"].as_str(), meta["session_id"].as_str()), (Some(method), Some(session.as_str())));
    assert_eq!((row.actor.as_str(), row.actor_user_id), ("user", Some(user.id)));
    let live = app.store.active_sessions(user.id, app.clock_now()).await.unwrap();
    assert!(live.iter().any(|s| s.id.to_string() == session), "the session is live: {live:?}");
    meta
}

async fn uid(c: &TestClient) -> UserId {
    UserId(c.get("/auth/api/v1/user").await.json()["id"].as_str().unwrap().parse().unwrap())
}

async fn password_on_the_api_and_the_page(engine: Engine) {
    let app = TestApp::start(engine).await;
    app.signed_in("pw@example.com", PW).await;
    let meta = completed(&app, "pw@example.com", "password").await;
    assert_eq!(meta["created"], true, "the direct signup's own sign-in");
    let c = app.csrf_client().await;
    let res = c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "pw@example.com", "password": PW})).await;
    assert_eq!(res.status, 200);
    let meta = completed(&app, "pw@example.com", "password").await;
    assert!(meta.get("created").is_none(), "{meta}");
    let b = app.client();
    b.get("/auth/login").await;
    let res = b.form("/auth/login", &[("email", "pw@example.com"), ("password", PW)]).await;
    assert_eq!(res.status, 303);
    assert!(res.set_cookie("authara_device").is_some(), "a password login hands out the device cookie");
    completed(&app, "pw@example.com", "password").await;
}

async fn an_email_code(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = TestApp::start_with_env(engine, &sink.env(), &[("AUTHARA_CHALLENGE_ENABLED", "true")]).await;
    let c = app.csrf_client().await;
    let res = c
        .json(Method::POST, "/auth/api/v1/signup/challenges", &json!({"email": "code@example.com", "password": PW}))
        .await;
    let id = res.json()["challenge_id"].as_str().unwrap().to_owned();
    while !matches!(
        authara::worker::email::run_once(&app.services).await.unwrap(),
        authara::worker::email::Outcome::Idle
    ) {}
    let code = sink.code_for("code@example.com");
    let res =
        c.json(Method::POST, "/auth/api/v1/signup/challenges/verify", &json!({"challenge_id": id, "code": code})).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let meta = completed(&app, "code@example.com", "email_code").await;
    assert_eq!(meta["created"], true);
}

async fn a_passkey(engine: Engine) {
    let app = TestApp::start_with(engine, &[("PUBLIC_URL", ORIGIN)]).await;
    let c = app.signed_in("key@example.com", PW).await;
    let mut auth = SoftAuthenticator::new();
    register(&c, &mut auth, &Knobs::default()).await;
    let (b, res) = sign_in_with(&app, &mut auth).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let meta = completed(&app, "key@example.com", "passkey").await;
    let passkeys = app.store.passkeys_of(uid(&b).await).await.unwrap();
    assert_eq!(meta["passkey_id"], passkeys[0].id.to_string());
}

async fn a_google_id_token(engine: Engine) {
    let idp = Provider::start().await;
    let app = crate::oauth::app_with(engine, &idp, &[]).await;
    let c = app.csrf_client().await;
    let nonce = c.get("/auth/api/v1/oauth/google/options").await.json()["nonce"].as_str().unwrap().to_owned();
    let token = idp.id_token(json!({"nonce": nonce, "sub": "g-gil", "email": "gil@example.com"}));
    let res = c.json(Method::POST, "/auth/api/v1/oauth/google", &json!({"credential": token, "nonce": nonce})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let meta = completed(&app, "gil@example.com", "google").await;
    assert_eq!(meta["created"], true);
}

async fn the_code_flow_and_its_recovery_link(engine: Engine) {
    let idp = Provider::start().await;
    let app = crate::oauth::app_with(engine, &idp, &[]).await;
    idp.sign_in_as(Person::new("s-flo", "flo@example.com"));
    let c = app.client();
    let start = c.get(&format!("/auth/oauth/stub/start?return_to={}", encode("/"))).await;
    let (_, res) = via_provider(&c, start).await;
    assert_eq!(res.status, 303, "{}", res.text());
    completed(&app, "flo@example.com", "stub").await;

    // An account with a password, then the identity: the recovery link, proved by password.
    app.signed_in("rex@example.com", PW).await;
    let (d, link_id) = recovery_link(&app, &idp, "s-rex", "rex@example.com").await;
    let res = d.form("/auth/provider-links/confirm", &[("link_id", &link_id), ("password", PW)]).await;
    assert_eq!(res.status, 303, "{}", res.text());
    let meta = completed(&app, "rex@example.com", "password").await;
    assert_eq!(meta["link"], "stub", "the recovery link is named: {meta}");
}

/// A new browser signs in at the provider as `subject` (`email`, an existing account without
/// that identity) and lands on the recovery-link page: the browser and the link.
pub async fn recovery_link(app: &TestApp, idp: &Provider, subject: &str, email: &str) -> (TestClient, String) {
    idp.sign_in_as(Person::new(subject, email));
    let d = app.client();
    let start = d.get(&format!("/auth/oauth/stub/start?return_to={}", encode("/"))).await;
    let (_, res) = via_provider(&d, start).await;
    let confirm = res.location().unwrap();
    assert!(confirm.starts_with("/auth/provider-links/confirm"), "{confirm}");
    d.get(&confirm).await;
    let link_id = confirm.split("link_id=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    (d, link_id)
}

async fn the_invitation_pages(engine: Engine) {
    let app = crate::organizations::api::start(engine, "multi", &[]).await;
    app.signed_in("host@example.com", PW).await;
    let host = user_id(&app, "host@example.com").await;
    let t = team(&app, &host, "Pages").await;
    // A new account on the invitation's signup page.
    let token = token_of(&invite(&app, &t, &host, "new@example.com", "member").await);
    let c = app.client();
    c.get(&format!("/auth/invitations/signup?token={token}")).await;
    let res = c.form("/auth/invitations/signup", &[("token", &token), ("password", PW)]).await;
    assert_eq!(res.status, 303, "{}", res.text());
    let meta = completed(&app, "new@example.com", "password").await;
    assert_eq!((meta["created"].as_bool(), meta["invitation_id"].is_string()), (Some(true), true));
    // An existing account on the invitation's login page.
    app.signed_in("old@example.com", PW).await;
    let token = token_of(&invite(&app, &t, &host, "old@example.com", "admin").await);
    let d = app.client();
    d.get(&format!("/auth/invitations/login?token={token}")).await;
    let res = d.form("/auth/invitations/login", &[("token", &token), ("password", PW)]).await;
    assert_eq!(res.status, 303, "{}", res.text());
    let meta = completed(&app, "old@example.com", "password").await;
    assert!(meta["invitation_id"].is_string(), "{meta}");
}

on_both_engines!(
    password_on_the_api_and_the_page,
    an_email_code,
    a_passkey,
    a_google_id_token,
    the_code_flow_and_its_recovery_link,
    the_invitation_pages,
);
