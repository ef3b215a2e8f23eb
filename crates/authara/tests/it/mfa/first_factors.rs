//! No first factor skips the second: for a user with an authenticator app, a password (API and
//! page), a Google ID token, a provider's code flow, a recovery link and the invitation login
//! page each end in the second step, with no session until the code; the code then lands where
//! the first factor was going.

use authara::services::return_to::encode;
use reqwest::Method;
use serde_json::json;

use super::{Factor, NO_LIMIT, PW, amr_of, challenge_of, enrol, protected, second};
use crate::app::{Res, TestApp, TestClient};
use crate::harness::{Engine, on_both_engines};
use crate::oauth::code_flow::via_provider;
use crate::oauth::provider::{Person, Provider};
use crate::organizations::api::{invite, team, token_of, user_id};

/// A page's first factor answered with the second step: a 303 there, carrying `return_to`, the
/// binding cookie set and no session cookie; the step's page, then its form with the code,
/// land on `return_to` signed in.
async fn page_second_step(app: &TestApp, c: &TestClient, res: &Res, f: &Factor, return_to: &str) {
    assert_eq!(res.status, 303, "{}", res.text());
    let location = res.location().unwrap();
    assert_eq!(location, format!("/auth/login/mfa?return_to={}", encode(return_to)));
    assert!(res.set_cookie("authara_access").is_none(), "no session before the code");
    assert!(c.cookie("authara_mfa").is_some());
    let page = c.get(&location).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains(r#"autocomplete="one-time-code""#));
    let res = c.form(&location, &[("code", &f.next(app))]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some(return_to)), "{}", res.text());
    assert_eq!(amr_of(c).last().map(String::as_str), Some("mfa"));
    assert_eq!(c.get("/auth/api/v1/user").await.status, 200);
}

async fn a_password_on_the_api_and_the_page(engine: Engine) {
    let app = TestApp::start_with(engine, &[NO_LIMIT]).await;
    let (_, f) = protected(&app, "pw@example.com").await;
    let c = app.csrf_client().await;
    let res = c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "pw@example.com", "password": PW})).await;
    let id = challenge_of(&res);
    assert_eq!(second(&c, &id, &f.next(&app)).await.status, 200);

    let p = app.client();
    p.get("/auth/login").await;
    let res = p.form("/auth/login?return_to=%2Fdashboard", &[("email", "pw@example.com"), ("password", PW)]).await;
    assert!(res.set_cookie("authara_device").is_none(), "the device cookie waits for the second step too");
    page_second_step(&app, &p, &res, &f, "/dashboard").await;
}

async fn a_google_id_token(engine: Engine) {
    let idp = Provider::start().await;
    let app = crate::oauth::app_with(engine, &idp, &[NO_LIMIT]).await;
    let google = |c: TestClient| {
        let idp = &idp;
        async move {
            c.fetch_csrf().await;
            let nonce = c.get("/auth/api/v1/oauth/google/options").await.json()["nonce"].as_str().unwrap().to_owned();
            let token = idp.id_token(json!({"nonce": nonce, "sub": "g-gil", "email": "gil@example.com"}));
            c.json(Method::POST, "/auth/api/v1/oauth/google", &json!({"credential": token, "nonce": nonce})).await
        }
    };
    let c = app.client();
    assert_eq!(google(c.clone()).await.status, 200, "the account is created with Google");
    let f = enrol(&app, &c).await;
    let b = app.client();
    let id = challenge_of(&google(b.clone()).await);
    assert_eq!(second(&b, &id, &f.next(&app)).await.status, 200);
    assert_eq!(amr_of(&b), ["fed", "otp", "mfa"]);
}

async fn a_providers_code_flow_and_a_recovery_link(engine: Engine) {
    let idp = Provider::start().await;
    let app = crate::oauth::app_with(engine, &idp, &[NO_LIMIT]).await;
    idp.sign_in_as(Person::new("s-flo", "flo@example.com"));
    let c = app.client();
    let start = c.get(&format!("/auth/oauth/stub/start?return_to={}", encode("/"))).await;
    let (_, res) = via_provider(&c, start).await;
    assert_eq!(res.status, 303);
    c.fetch_csrf().await;
    let f = enrol(&app, &c).await;
    let b = app.client();
    let start = b.get(&format!("/auth/oauth/stub/start?return_to={}", encode("/home"))).await;
    let (_, res) = via_provider(&b, start).await;
    page_second_step(&app, &b, &res, &f, "/home").await;

    // A password account meeting a new identity: the recovery link, proven by password, then
    // the second step.
    let (_, f) = protected(&app, "rex@example.com").await;
    let (d, link_id) = crate::signin::completion::recovery_link(&app, &idp, "s-rex", "rex@example.com").await;
    let res = d.form("/auth/provider-links/confirm", &[("link_id", &link_id), ("password", PW)]).await;
    page_second_step(&app, &d, &res, &f, "/").await;
}

async fn the_invitation_login_page(engine: Engine) {
    let app = crate::organizations::api::start(engine, "multi", &[NO_LIMIT]).await;
    app.signed_in("host@example.com", PW).await;
    let host = user_id(&app, "host@example.com").await;
    let t = team(&app, &host, "Pages").await;
    let (_, f) = protected(&app, "old@example.com").await;
    let token = token_of(&invite(&app, &t, &host, "old@example.com", "admin").await);
    let d = app.client();
    d.get(&format!("/auth/invitations/login?token={token}")).await;
    let res = d.form("/auth/invitations/login", &[("token", &token), ("password", PW)]).await;
    page_second_step(&app, &d, &res, &f, "/").await;
    let org = d.get("/auth/api/v1/user").await.json()["organization"]["id"].as_str().unwrap().to_owned();
    assert_eq!(org, t, "the session starts in the invited organization, after the code");
}

on_both_engines!(
    a_password_on_the_api_and_the_page,
    a_google_id_token,
    a_providers_code_flow_and_a_recovery_link,
    the_invitation_login_page,
);
