//! `AUTHARA_MFA_REQUIRED`: with `all`, every sign-in of a user without a second factor enrols
//! before any session; with `admins`, whoever may open the console does, and a console session
//! from before the policy is sent to verify.

use reqwest::Method;
use serde_json::json;

use super::{NO_LIMIT, PW, code_at, decode, login, send_mail};
use crate::app::{Res, TestApp, TestClient};
use crate::harness::{Engine, on_both_engines};
use crate::smtp::SmtpSink;

/// A `401 mfa_enrollment_required` answer: its challenge (no session was set).
fn enrolment_of(res: &Res) -> String {
    assert_eq!((res.status, res.error_code().as_str()), (401, "mfa_enrollment_required"), "{}", res.text());
    assert_eq!(res.json()["mfa"]["enroll"], true);
    assert_eq!(res.json()["mfa"]["methods"], json!(["totp_enrollment"]));
    assert!(res.set_cookie("authara_access").is_none());
    res.json()["mfa"]["challenge_id"].as_str().unwrap().to_owned()
}

/// Enrols the waiting sign-in `id` of `c`: the session comes with the recovery codes.
async fn enrol_waiting(app: &TestApp, c: &TestClient, id: &str) -> Vec<u8> {
    let res = c.json(Method::POST, "/auth/api/v1/login/mfa/enroll", &json!({"challenge_id": id})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let secret = decode(res.json()["secret"].as_str().unwrap());
    let res = c
        .json(Method::POST, "/auth/api/v1/login/mfa/enroll/confirm", &json!({"challenge_id": id, "code": "000000"}))
        .await;
    assert_eq!(res.status, 422, "a wrong code");
    let code = code_at(&secret, app.clock_now(), 0);
    let res =
        c.json(Method::POST, "/auth/api/v1/login/mfa/enroll/confirm", &json!({"challenge_id": id, "code": code})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["recovery_codes"].as_array().unwrap().len(), 10);
    assert!(res.set_cookie("authara_access").is_some());
    secret
}

async fn with_all_every_user_enrols_before_a_session(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = TestApp::start_with_env(engine, &sink.env(), &[NO_LIMIT, ("AUTHARA_MFA_REQUIRED", "all")]).await;
    let c = app.csrf_client().await;
    let res =
        c.json(Method::POST, "/auth/api/v1/signup/direct", &json!({"email": "new@example.com", "password": PW})).await;
    let id = enrolment_of(&res);
    assert_eq!(c.get("/auth/api/v1/user").await.status, 401);
    let secret = enrol_waiting(&app, &c, &id).await;
    assert_eq!(c.get("/auth/api/v1/mfa").await.json()["required"], true);
    assert_eq!(c.get("/auth/api/v1/user").await.status, 200);

    // The next sign-in asks for the code like any other.
    app.clock.advance(std::time::Duration::from_secs(30));
    let b = app.client();
    let res = login(&b, "new@example.com").await;
    let id = super::challenge_of(&res);
    assert_eq!(super::second(&b, &id, &code_at(&secret, app.clock_now(), 0)).await.status, 200);
}

/// With `all`, an email-code signup enrols too.
async fn with_all_an_email_code_signup_enrols_too(engine: Engine) {
    let sink = SmtpSink::start().await;
    let settings = [NO_LIMIT, ("AUTHARA_MFA_REQUIRED", "all"), ("AUTHARA_CHALLENGE_ENABLED", "true")];
    let app = TestApp::start_with_env(engine, &sink.env(), &settings).await;
    let d = app.csrf_client().await;
    let res = d
        .json(Method::POST, "/auth/api/v1/signup/challenges", &json!({"email": "code@example.com", "password": PW}))
        .await;
    let challenge = res.json()["challenge_id"].as_str().unwrap().to_owned();
    send_mail(&app).await;
    let code = sink.code_for("code@example.com");
    let res = d
        .json(Method::POST, "/auth/api/v1/signup/challenges/verify", &json!({"challenge_id": challenge, "code": code}))
        .await;
    let id = enrolment_of(&res);
    enrol_waiting(&app, &d, &id).await;
}

async fn admin(app: &TestApp, email: &str) {
    let password = authara::domain::NewPassword::parse(PW).unwrap();
    app.services.accounts().create_admin(&crate::app::email(email), &password).await.unwrap();
}

async fn with_admins_the_console_needs_a_second_factor(engine: Engine) {
    let app = TestApp::start_with(engine, &[NO_LIMIT, ("AUTHARA_MFA_REQUIRED", "admins")]).await;
    let member = app.signed_in("member@example.com", PW).await;
    assert_eq!(member.get("/auth/api/v1/user").await.status, 200, "members are not asked");
    admin(&app, "root@example.com").await;
    let c = app.client();
    let id = enrolment_of(&login(&c, "root@example.com").await);
    enrol_waiting(&app, &c, &id).await;
    assert_eq!(c.get("/auth/admin").await.status, 200, "the console, with the second factor used");

    // A console session from before the policy is sent to verify.
    let (db, clock) = app.stop().await;
    let app = TestApp::start_on(db, &[NO_LIMIT], Some(clock.clone())).await;
    admin(&app, "old@example.com").await;
    let before = app.client();
    assert_eq!(login(&before, "old@example.com").await.status, 200, "no policy yet");
    assert_eq!(before.get("/auth/admin").await.status, 200);
    let old = before;
    let (db, clock) = app.stop().await;
    let app = TestApp::start_on(db, &[NO_LIMIT, ("AUTHARA_MFA_REQUIRED", "admins")], Some(clock)).await;
    // The same browser, at the restarted server's address.
    let moved = app.client();
    *moved.jar.lock().unwrap() = old.jar.lock().unwrap().clone();
    let old = moved;
    let res = old.get("/auth/admin").await;
    assert_eq!(
        (res.status, res.location().as_deref()),
        (303, Some("/auth/mfa/verify?return_to=%2Fauth%2Fadmin")),
        "{}",
        res.text()
    );
    let page = old.get("/auth/mfa/verify?return_to=%2Fauth%2Fadmin").await;
    assert!(page.text().contains("Set it up"), "no factor yet: sent to set one up");
    // Set up from the account (the session is recent), which steps the session up.
    assert_eq!(old.post("/auth/api/v1/sessions/refresh").await.status, 200, "an app token for the API");
    let f = super::enrol(&app, &old).await;
    assert_eq!(old.get("/auth/admin").await.status, 200, "{:?}", super::amr_of(&old));
    drop(f);
}

on_both_engines!(
    with_all_every_user_enrols_before_a_session,
    with_all_an_email_code_signup_enrols_too,
    with_admins_the_console_needs_a_second_factor,
);
