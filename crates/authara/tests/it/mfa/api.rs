//! The app factor through `/auth/api/v1`: enrolment, the second step of a password sign-in, a
//! code good once (in sequence and under 20 concurrent submissions), the ±1 step window,
//! recovery codes, the binding and expiry of a waiting sign-in, attempts and the lock, step-up,
//! turning it off, remembering a browser, passkeys, and the administrator's reset.

use std::time::Duration;

use authara::domain::{AuditAction, UserId};
use authara::store::audit::AuditFilter;
use reqwest::Method;
use serde_json::json;

use super::{
    NO_LIMIT, PW, amr_of, challenge_of, claims, code_at, login, protected, second, send_mail, waiting, wrong_code,
};
use crate::app::TestApp;
use crate::harness::{Engine, on_both_engines};
use crate::smtp::SmtpSink;

async fn user(app: &TestApp, email: &str) -> UserId {
    app.store.user_by_email(&crate::app::email(email)).await.unwrap().unwrap().id
}

async fn audit(app: &TestApp, user: UserId, action: AuditAction) -> Vec<serde_json::Value> {
    let filter = AuditFilter { actor: None, target: Some(user), action: Some(action) };
    let rows = app.store.audit_page(&filter, 500, 0).await.unwrap();
    rows.iter().map(|r| serde_json::from_str(&r.metadata).unwrap()).collect()
}

async fn mail_app(engine: Engine, sink: &SmtpSink, extra: &[(&str, &str)]) -> TestApp {
    TestApp::start_with_env(engine, &sink.env(), &[&[NO_LIMIT], extra].concat()).await
}

async fn a_password_sign_in_waits_for_the_apps_code(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = mail_app(engine, &sink, &[]).await;
    let (c, f) = protected(&app, "ada@example.com").await;
    let status = c.get("/auth/api/v1/mfa").await.json();
    assert_eq!(status, json!({"totp": {"enabled": true}, "recovery_codes": {"remaining": 10}, "required": false}));
    send_mail(&app).await;
    assert!(sink.to("ada@example.com").iter().any(|m| m.decoded().contains("authenticator app was set up")));

    let b = app.client();
    let res = login(&b, "ada@example.com").await;
    let challenge = challenge_of(&res);
    let mfa = &res.json()["mfa"];
    assert_eq!((mfa["methods"].clone(), mfa["expires_in"].as_i64()), (json!(["totp", "recovery_code"]), Some(300)));
    let binding = res.set_cookie("authara_mfa").unwrap();
    assert!(binding.contains("HttpOnly") && binding.contains("Path=/auth"), "{binding}");
    assert_eq!(b.get("/auth/api/v1/user").await.status, 401, "no session before the second step");

    let res = second(&b, &challenge, &f.next(&app)).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["user"]["email"], "ada@example.com");
    assert!(res.set_cookie("authara_access").is_some() && res.set_cookie("authara_refresh").is_some());
    assert!(b.cookie("authara_mfa").is_none(), "the binding cookie is cleared");
    assert_eq!(amr_of(&b), ["pwd", "otp", "mfa"]);
    let token = b.cookie("authara_access").unwrap();
    assert_eq!(claims(&token)["auth_time"].as_i64(), Some(app.clock_now() / 1000));
    assert_eq!(b.get("/auth/api/v1/user").await.status, 200);
    // Refreshed tokens say the same.
    assert_eq!(b.post("/auth/api/v1/sessions/refresh").await.status, 200);
    assert_eq!(amr_of(&b), ["pwd", "otp", "mfa"]);
    let logins = audit(&app, user(&app, "ada@example.com").await, AuditAction::Login).await;
    assert_eq!((logins[0]["method"].as_str(), logins[0]["second_factor"].as_str()), (Some("password"), Some("totp")));
}

async fn a_code_is_accepted_once(engine: Engine) {
    let app = TestApp::start_with(engine, &[NO_LIMIT]).await;
    let (_, f) = protected(&app, "once@example.com").await;
    let (a, first) = waiting(&app, "once@example.com").await;
    let (b, other) = waiting(&app, "once@example.com").await;
    let code = f.next(&app);
    assert_eq!(second(&a, &first, &code).await.status, 200);
    let res = second(&b, &other, &code).await;
    assert_eq!((res.status, res.error_code().as_str()), (422, "mfa_code_invalid"), "a replayed code");

    // Twenty sign-ins submit one code at once: exactly one session.
    let mut waiting_ones = Vec::new();
    for _ in 0..20 {
        waiting_ones.push(waiting(&app, "once@example.com").await);
    }
    let code = f.next(&app);
    let answers = futures_util::future::join_all(waiting_ones.iter().map(|(c, id)| second(c, id, &code))).await;
    let ok = answers.iter().filter(|r| r.status == 200).count();
    let replayed = answers.iter().filter(|r| r.status == 422 && r.error_code() == "mfa_code_invalid").count();
    assert_eq!((ok, replayed), (1, 19), "{:?}", answers.iter().map(|r| r.status).collect::<Vec<_>>());
}

async fn one_step_either_side_is_accepted_two_are_not(engine: Engine) {
    let app = TestApp::start_with(engine, &[NO_LIMIT]).await;
    let (_, f) = protected(&app, "skew@example.com").await;
    app.clock.advance(Duration::from_secs(600));
    let now = app.clock_now();
    let (c, id) = waiting(&app, "skew@example.com").await;
    assert_eq!(second(&c, &id, &code_at(&f.secret, now, -2)).await.status, 422, "a minute late");
    assert_eq!(second(&c, &id, &code_at(&f.secret, now, -1)).await.status, 200, "30 s late");
    let (c, id) = waiting(&app, "skew@example.com").await;
    assert_eq!(second(&c, &id, &code_at(&f.secret, now, 2)).await.status, 422, "a minute early");
    assert_eq!(second(&c, &id, &code_at(&f.secret, now, 1)).await.status, 200, "30 s early");
    let (c, id) = waiting(&app, "skew@example.com").await;
    let res = second(&c, &id, &code_at(&f.secret, now, 0)).await;
    assert_eq!(res.status, 422, "a step before the last one accepted is spent too");
}

async fn recovery_codes_work_once_and_a_new_set_voids_the_old(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = mail_app(engine, &sink, &[]).await;
    let (_, f) = protected(&app, "rex@example.com").await;
    let (c, id) = waiting(&app, "rex@example.com").await;
    let typed = f.recovery[3].to_uppercase().replace('-', " ");
    let res =
        c.json(Method::POST, "/auth/api/v1/login/mfa", &json!({"challenge_id": id, "recovery_code": typed})).await;
    assert_eq!(res.status, 200, "typed in capitals with spaces: {}", res.text());
    assert_eq!(c.get("/auth/api/v1/mfa").await.json()["recovery_codes"]["remaining"], 9);
    send_mail(&app).await;
    let mail = sink.to("rex@example.com").last().unwrap().decoded();
    assert!(mail.contains("recovery code was used") && mail.contains("9 of your"), "{mail}");

    let (d, id) = waiting(&app, "rex@example.com").await;
    let res = d
        .json(Method::POST, "/auth/api/v1/login/mfa", &json!({"challenge_id": id, "recovery_code": f.recovery[3]}))
        .await;
    assert_eq!((res.status, res.error_code().as_str()), (422, "mfa_code_invalid"), "a used code");
    let res = d
        .json(
            Method::POST,
            "/auth/api/v1/login/mfa",
            &json!({"challenge_id": id, "code": "123456", "recovery_code": f.recovery[4]}),
        )
        .await;
    assert_eq!(res.status, 400, "one proof at a time");

    // A new set (privileged: this session just used its second factor).
    let res = c.json(Method::POST, "/auth/api/v1/mfa/recovery-codes", &json!({"code": f.next(&app)})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let fresh: Vec<String> =
        res.json()["recovery_codes"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    assert_eq!(fresh.len(), 10);
    let res = d
        .json(Method::POST, "/auth/api/v1/login/mfa", &json!({"challenge_id": id, "recovery_code": f.recovery[5]}))
        .await;
    assert_eq!(res.status, 422, "the old set is void");
    let res =
        d.json(Method::POST, "/auth/api/v1/login/mfa", &json!({"challenge_id": id, "recovery_code": fresh[0]})).await;
    assert_eq!(res.status, 200);
    send_mail(&app).await;
    assert!(sink.to("rex@example.com").iter().any(|m| m.decoded().contains("new set of recovery codes")));
}

async fn a_waiting_sign_in_is_this_browsers_for_five_minutes(engine: Engine) {
    let app = TestApp::start_with(engine, &[NO_LIMIT]).await;
    let (_, f) = protected(&app, "bind@example.com").await;
    let (a, id) = waiting(&app, "bind@example.com").await;
    let thief = app.csrf_client().await;
    let res = second(&thief, &id, &f.next(&app)).await;
    assert_eq!((res.status, res.error_code().as_str()), (401, "mfa_challenge_invalid"), "another browser");
    let mine = a.cookie("authara_mfa").unwrap();
    thief.set_cookie("authara_mfa", &format!("{}.forged", mine.split('.').next().unwrap()));
    assert_eq!(second(&thief, &id, &f.next(&app)).await.status, 401, "a forged binding");
    let code = f.next(&app);
    assert_eq!(second(&a, &id, &code).await.status, 200);
    a.set_cookie("authara_mfa", &mine);
    assert_eq!(second(&a, &id, &f.next(&app)).await.status, 401, "used once");

    // Another instance finishes a sign-in this one started (the state is in the database).
    let (b, id) = waiting(&app, "bind@example.com").await;
    let cookie = b.cookie("authara_mfa").unwrap();
    let binding = cookie.split_once('.').unwrap().1;
    let other = app.second_instance().await;
    let code = f.next(&app);
    let proof = authara::services::mfa::Proof::Totp(&code);
    let signed = other
        .signins()
        .second_factor(id.parse().unwrap(), Some(binding), proof, false, &Default::default())
        .await
        .expect("the other instance completes it");
    assert_eq!(signed.user.email, "bind@example.com");

    let (c, id) = waiting(&app, "bind@example.com").await;
    app.clock.advance(Duration::from_secs(301));
    let res = second(&c, &id, &code_at(&f.secret, app.clock_now(), 0)).await;
    assert_eq!((res.status, res.error_code().as_str()), (401, "mfa_challenge_invalid"), "expired");
}

async fn a_hundred_failures_lock_the_app_until_a_recovery_code(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = mail_app(engine, &sink, &[]).await;
    let (_, f) = protected(&app, "lock@example.com").await;
    let (c, id) = waiting(&app, "lock@example.com").await;
    let good = f.next(&app);
    let wrong = &wrong_code(&f.secret, app.clock_now());
    for i in 1..100 {
        let res = second(&c, &id, wrong).await;
        assert_eq!(res.status, 422, "failure {i}");
    }
    let res = second(&c, &id, wrong).await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "mfa_locked"), "the 100th");
    let res = second(&c, &id, &good).await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "mfa_locked"), "even the right code");
    let uid = user(&app, "lock@example.com").await;
    let failed = audit(&app, uid, AuditAction::LoginFailed).await;
    assert_eq!(failed.iter().filter(|m| m["second_factor"] == "totp").count(), 100, "each failure is audited");
    assert_eq!(audit(&app, uid, AuditAction::MfaLocked).await.len(), 1);
    send_mail(&app).await;
    assert!(sink.to("lock@example.com").iter().any(|m| m.decoded().contains("is locked")));

    let res = c
        .json(Method::POST, "/auth/api/v1/login/mfa", &json!({"challenge_id": id, "recovery_code": f.recovery[0]}))
        .await;
    assert_eq!(res.status, 200, "a recovery code signs in and unlocks: {}", res.text());
    let (d, id) = waiting(&app, "lock@example.com").await;
    assert_eq!(second(&d, &id, &f.next(&app)).await.status, 200, "the app works again");
}

async fn code_attempts_are_limited_per_user(engine: Engine) {
    let app = TestApp::start(engine).await;
    let (_, f) = protected(&app, "slow@example.com").await;
    app.clock.advance(Duration::from_secs(61));
    let (a, id_a) = waiting(&app, "slow@example.com").await;
    let (b, id_b) = waiting(&app, "slow@example.com").await;
    let wrong = wrong_code(&f.secret, app.clock_now());
    for _ in 0..5 {
        assert_eq!(second(&a, &id_a, &wrong).await.status, 422);
    }
    let res = second(&b, &id_b, &code_at(&f.secret, app.clock_now(), 0)).await;
    assert_eq!((res.status, res.error_code().as_str()), (429, "rate_limited"), "per user, whichever browser");
    assert!(res.headers.get("retry-after").is_some());
    app.clock.advance(Duration::from_secs(61));
    assert_eq!(second(&b, &id_b, &code_at(&f.secret, app.clock_now(), 0)).await.status, 200);
}

async fn sensitive_changes_need_a_recent_second_factor(engine: Engine) {
    let app = TestApp::start_with(engine, &[NO_LIMIT]).await;
    let (c, f) = protected(&app, "step@example.com").await;
    app.clock.advance(Duration::from_secs(16 * 60));
    assert_eq!(c.post("/auth/api/v1/sessions/refresh").await.status, 200);
    let res = c
        .json(
            Method::PUT,
            "/auth/api/v1/users/password",
            &json!({"password": "amber-falcon-ridge", "current_password": PW}),
        )
        .await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "mfa_step_up_required"), "the password is not enough");
    let res = c.post("/auth/api/v1/passkeys/register/options").await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "mfa_step_up_required"));
    let res = c.json(Method::POST, "/auth/api/v1/mfa/recovery-codes", &json!({"code": f.next(&app)})).await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "mfa_step_up_required"));

    let res =
        c.json(Method::POST, "/auth/api/v1/mfa/verify", &json!({"code": wrong_code(&f.secret, app.clock_now())})).await;
    assert_eq!(res.status, 422);
    let before = c.cookie("authara_access").unwrap();
    let res = c.json(Method::POST, "/auth/api/v1/mfa/verify", &json!({"code": f.next(&app)})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let after = c.cookie("authara_access").unwrap();
    assert_ne!(before, after, "new tokens");
    assert_eq!(claims(&after)["auth_time"].as_i64(), Some(app.clock_now() / 1000));
    assert!(amr_of(&c).contains(&"otp".to_owned()) && amr_of(&c).contains(&"mfa".to_owned()), "{:?}", amr_of(&c));
    assert_eq!(c.post("/auth/api/v1/passkeys/register/options").await.status, 200);
    let res = c.json(Method::PUT, "/auth/api/v1/users/password", &json!({"password": "amber-falcon-ridge"})).await;
    assert_eq!(res.status, 204, "{}", res.text());
}

async fn turning_it_off_takes_a_code(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = mail_app(engine, &sink, &[]).await;
    let (c, f) = protected(&app, "off@example.com").await;
    app.clock.advance(Duration::from_secs(3600));
    assert_eq!(c.post("/auth/api/v1/sessions/refresh").await.status, 200);
    let res = c.json(Method::POST, "/auth/api/v1/mfa/totp/disable", &json!({})).await;
    assert_eq!(res.status, 400, "never without a code");
    let res = c
        .json(Method::POST, "/auth/api/v1/mfa/totp/disable", &json!({"code": wrong_code(&f.secret, app.clock_now())}))
        .await;
    assert_eq!(res.status, 422);
    let res = c.json(Method::POST, "/auth/api/v1/mfa/totp/disable", &json!({"code": f.next(&app)})).await;
    assert_eq!(res.status, 204, "an old session with a fresh code: {}", res.text());
    let res = c.json(Method::POST, "/auth/api/v1/mfa/totp/disable", &json!({"code": f.next(&app)})).await;
    assert_eq!((res.status, res.error_code().as_str()), (409, "mfa_not_enabled"));
    send_mail(&app).await;
    assert!(sink.to("off@example.com").iter().any(|m| m.decoded().contains("were removed from your account")));
    assert_eq!(login(&app.client(), "off@example.com").await.status, 200, "a password alone again");
}

async fn a_remembered_browser_skips_the_step_until_the_password_changes(engine: Engine) {
    let app = TestApp::start_with(engine, &[NO_LIMIT]).await;
    let (_, f) = protected(&app, "home@example.com").await;
    let (c, id) = waiting(&app, "home@example.com").await;
    let res = c
        .json(
            Method::POST,
            "/auth/api/v1/login/mfa",
            &json!({"challenge_id": id, "code": f.next(&app), "remember_device": true}),
        )
        .await;
    assert_eq!(res.status, 200);
    let cookie = res.set_cookie("authara_mfa_remember").expect("remembered");
    assert!(cookie.contains("HttpOnly") && cookie.contains("Max-Age=2592000"), "{cookie}");
    assert_eq!(c.post("/auth/api/v1/sessions/logout").await.status, 204);
    app.clock.advance(Duration::from_secs(86_400));
    let res = login(&c, "home@example.com").await;
    assert_eq!(res.status, 200, "this browser skips the step: {}", res.text());
    assert_eq!(amr_of(&c), ["pwd"], "and its session says only the password was proven");
    let res = c
        .json(Method::POST, "/auth/api/v1/login?audience=admin", &json!({"email": "home@example.com", "password": PW}))
        .await;
    assert_ne!(res.status, 200);
    assert!(login(&app.client(), "home@example.com").await.status == 401, "another browser still waits");

    // A password change ends it (the step-up first: the session is a day old).
    let res = c.json(Method::POST, "/auth/api/v1/mfa/verify", &json!({"code": f.next(&app)})).await;
    assert_eq!(res.status, 200);
    let res = c.json(Method::PUT, "/auth/api/v1/users/password", &json!({"password": "amber-falcon-ridge"})).await;
    assert_eq!(res.status, 204);
    let res = c
        .json(
            Method::POST,
            "/auth/api/v1/login",
            &json!({"email": "home@example.com", "password": "amber-falcon-ridge"}),
        )
        .await;
    challenge_of(&res);

    // Remembering is off with 0 days.
    let app = TestApp::start_with(engine, &[NO_LIMIT, ("AUTHARA_MFA_REMEMBER_DEVICE_DAYS", "0")]).await;
    let (_, f) = protected(&app, "never@example.com").await;
    let (c, id) = waiting(&app, "never@example.com").await;
    let res = c
        .json(
            Method::POST,
            "/auth/api/v1/login/mfa",
            &json!({"challenge_id": id, "code": f.next(&app), "remember_device": true}),
        )
        .await;
    assert_eq!(res.status, 200);
    assert!(res.set_cookie("authara_mfa_remember").is_none());
}

async fn a_passkey_alone_signs_in(engine: Engine) {
    use crate::passkeys::api::{register, sign_in_with};
    use crate::passkeys::authenticator::{Knobs, ORIGIN, SoftAuthenticator};
    let app = TestApp::start_with(engine, &[NO_LIMIT, ("PUBLIC_URL", ORIGIN)]).await;
    let (c, _) = protected(&app, "key@example.com").await;
    let mut auth = SoftAuthenticator::new();
    register(&c, &mut auth, &Knobs::default()).await;
    let (b, res) = sign_in_with(&app, &mut auth).await;
    assert_eq!(res.status, 200, "no second step after a passkey: {}", res.text());
    let amr = amr_of(&b);
    assert!(
        amr.contains(&"mfa".to_owned()) && (amr.contains(&"hwk".to_owned()) || amr.contains(&"swk".to_owned())),
        "{amr:?}"
    );
    assert_eq!(b.post("/auth/api/v1/passkeys/register/options").await.status, 200, "and is privileged at once");
}

async fn an_administrator_resets_a_lost_factor(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = mail_app(engine, &sink, &[]).await;
    let (_, _) = protected(&app, "lost@example.com").await;
    let password = authara::domain::NewPassword::parse(PW).unwrap();
    app.services.accounts().create_admin(&crate::app::email("root@example.com"), &password).await.unwrap();
    let admin = app.client();
    assert_eq!(login(&admin, "root@example.com").await.status, 200);
    let uid = user(&app, "lost@example.com").await;
    let page = admin.get(&format!("/auth/admin/users/{uid}")).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("authenticator app · 10 recovery code(s) left"), "{}", page.text());
    let res = admin.form(&format!("/auth/admin/users/{uid}/mfa/reset"), &[]).await;
    assert_eq!(res.status, 303, "{}", res.text());
    assert_eq!(app.store.totp(uid).await.unwrap(), None);
    assert_eq!(app.store.recovery_codes_left(uid).await.unwrap(), 0);
    let resets = audit(&app, uid, AuditAction::MfaReset).await;
    assert_eq!(resets.len(), 1);
    send_mail(&app).await;
    assert!(sink.to("lost@example.com").iter().any(|m| m.decoded().contains("An administrator removed")));
    assert_eq!(login(&app.client(), "lost@example.com").await.status, 200);
    let page = admin.get(&format!("/auth/admin/users/{uid}")).await;
    assert!(!page.text().contains("Reset two-step verification"), "nothing left to reset");
}

on_both_engines!(
    a_password_sign_in_waits_for_the_apps_code,
    one_step_either_side_is_accepted_two_are_not,
    recovery_codes_work_once_and_a_new_set_voids_the_old,
    a_waiting_sign_in_is_this_browsers_for_five_minutes,
    a_hundred_failures_lock_the_app_until_a_recovery_code,
    code_attempts_are_limited_per_user,
    sensitive_changes_need_a_recent_second_factor,
    turning_it_off_takes_a_code,
    a_remembered_browser_skips_the_step_until_the_password_changes,
    a_passkey_alone_signs_in,
    an_administrator_resets_a_lost_factor,
    ; threaded: a_code_is_accepted_once,
);
