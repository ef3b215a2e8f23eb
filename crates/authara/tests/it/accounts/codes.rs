//! One-time codes, through the API and the hosted pages with real mail: verified signup, password
//! reset, wrong codes, resend, expiry.

use std::time::Duration;

use authara::worker::email::Outcome;
use reqwest::Method;
use serde_json::json;

use crate::app::TestApp;
use crate::app::browser;
use crate::app::drain_mail as drain;
use crate::app::drain_mail;
use crate::app::hidden;
use crate::harness::PW;
use crate::harness::{Engine, on_both_engines};
use crate::smtp::SmtpSink;

const NEW_PW: &str = "copper-lantern-meadow";

async fn hosted_signup_with_a_code(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = TestApp::start_with_env(engine, &sink.env(), &[("AUTHARA_CHALLENGE_ENABLED", "true")]).await;
    let c = browser(&app).await;
    let res = c.form("/auth/signup?return_to=/welcome", &[("email", "code@example.com"), ("password", PW)]).await;
    assert_eq!(res.status, 200);
    let page = res.text();
    assert!(page.contains("Confirm your email") && page.contains(r#"autocomplete="one-time-code""#), "{page}");
    let id = hidden(&page, "challenge_id");
    drain_mail(&app).await;
    let code = sink.code_for("code@example.com");
    let res =
        c.form("/auth/verify-challenge/signup?return_to=/welcome", &[("challenge_id", &id), ("code", "99999")]).await;
    assert_eq!(res.status, 422);
    let res =
        c.form("/auth/verify-challenge/signup?return_to=/welcome", &[("challenge_id", &id), ("code", &code)]).await;
    assert_eq!(
        (res.status, res.location().as_deref()),
        (303, Some("/auth/passkeys/setup?return_to=%2Fwelcome")),
        "{}",
        res.text()
    );
    assert_eq!(c.get("/auth/api/v1/user").await.json()["email"], "code@example.com");

    // The same form for a taken email shows the same page and sends nothing.
    let other = browser(&app).await;
    let res = other.form("/auth/signup", &[("email", "code@example.com"), ("password", PW)]).await;
    assert_eq!(res.status, 200);
    assert!(res.text().contains("Confirm your email"));
    drain_mail(&app).await;
    assert_eq!(sink.to("code@example.com").len(), 1);
}

async fn hosted_password_reset(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = TestApp::start_with_env(engine, &sink.env(), &[]).await;
    let signed = app.signed_in("pages-reset@example.com", PW).await;
    let c = browser(&app).await;
    assert!(
        c.get("/auth/login").await.text().contains(r#"href="/auth/password-reset""#),
        "reachable from the login page"
    );
    assert_eq!(c.get("/auth/password-reset").await.status, 200);
    let res = c.form("/auth/password-reset", &[("email", "pages-reset@example.com"), ("new_password", NEW_PW)]).await;
    assert_eq!(res.status, 200);
    let id = hidden(&res.text(), "challenge_id");
    let unknown = c.form("/auth/password-reset", &[("email", "nobody@example.com"), ("new_password", NEW_PW)]).await;
    assert_eq!(unknown.status, 200, "unknown emails get the same page");
    assert!(unknown.text().contains("If an account uses that address"));
    drain_mail(&app).await;
    let code = sink.code_for("pages-reset@example.com");
    assert!(sink.to("nobody@example.com").is_empty());

    let wrong = if code == "000000" { "111111" } else { "000000" };
    let res = c.form("/auth/verify-challenge/password-reset", &[("challenge_id", &id), ("code", wrong)]).await;
    assert_eq!(res.status, 422);
    assert!(res.text().contains("That code is incorrect."));
    let res = c.form("/auth/verify-challenge/password-reset", &[("challenge_id", &id), ("code", &code)]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/auth/login?notice=password-reset")));
    assert!(c.get("/auth/login?notice=password-reset").await.text().contains("Your password was changed."));
    assert_eq!(signed.get("/auth/api/v1/user").await.status, 401, "every old session ended");
    let res = c.form("/auth/login", &[("email", "pages-reset@example.com"), ("password", NEW_PW)]).await;
    assert_eq!(res.status, 303);
}

async fn verified_signup_end_to_end(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = TestApp::start_with_env(engine, &sink.env(), &[("AUTHARA_CHALLENGE_ENABLED", "true")]).await;
    let c = app.csrf_client().await;
    let res =
        c.json(Method::POST, "/auth/api/v1/signup/direct", &json!({"email": "v@example.com", "password": PW})).await;
    assert_eq!((res.status, res.error_code().as_str()), (404, "not_found"), "direct signup is off with challenges");

    let res = c
        .json(Method::POST, "/auth/api/v1/signup/challenges", &json!({"email": "V@example.com", "password": PW}))
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    let id = res.json()["challenge_id"].as_str().unwrap().to_owned();
    assert!(sink.messages().is_empty(), "sent by the worker, not in the request");
    assert_eq!(drain(&app).await, vec![Outcome::Sent]);
    let mail = sink.to("v@example.com");
    assert_eq!(mail.len(), 1);
    assert!(mail[0].data.contains("Subject: Your verification code"), "{}", mail[0].data);
    assert!(mail[0].data.contains("text/html") && mail[0].data.contains("text/plain"));
    let code = sink.code_for("v@example.com");

    let wrong = if code == "000000" { "111111" } else { "000000" };
    let res = c
        .json(Method::POST, "/auth/api/v1/signup/challenges/verify", &json!({"challenge_id": id, "code": wrong}))
        .await;
    assert_eq!((res.status, res.error_code().as_str()), (400, "invalid_request"));
    let res = c
        .json(Method::POST, "/auth/api/v1/signup/challenges/verify", &json!({"challenge_id": id, "code": "12ab56"}))
        .await;
    assert_eq!(res.status, 400);
    let res =
        c.json(Method::POST, "/auth/api/v1/signup/challenges/verify", &json!({"challenge_id": id, "code": code})).await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["user"]["email"], "v@example.com");
    assert!(res.set_cookie("authara_access").is_some());
    assert_eq!(c.get("/auth/api/v1/user").await.status, 200);
    let res =
        c.json(Method::POST, "/auth/api/v1/signup/challenges/verify", &json!({"challenge_id": id, "code": code})).await;
    assert_eq!(res.status, 400, "a code works once");

    // Signing up again with the same email looks the same but sends nothing.
    let res = c
        .json(Method::POST, "/auth/api/v1/signup/challenges", &json!({"email": "v@example.com", "password": PW}))
        .await;
    assert_eq!(res.status, 202);
    assert!(drain(&app).await.is_empty());
    assert_eq!(sink.to("v@example.com").len(), 1);
}

async fn scenario_a_password_reset_from_request_to_new_login(engine: Engine) {
    let sink = SmtpSink::start().await;
    // Challenges are off: password reset mail is delivered anyway.
    let app = TestApp::start_with_env(engine, &sink.env(), &[]).await;
    let a = app.signed_in("reset@example.com", PW).await;
    let b = app.csrf_client().await;
    assert_eq!(
        b.json(Method::POST, "/auth/api/v1/login", &json!({"email": "reset@example.com", "password": PW})).await.status,
        200
    );

    let anon = app.csrf_client().await;
    let known = anon
        .json(
            Method::POST,
            "/auth/api/v1/password-reset/challenges",
            &json!({"email": "reset@example.com", "new_password": NEW_PW}),
        )
        .await;
    let unknown = anon
        .json(
            Method::POST,
            "/auth/api/v1/password-reset/challenges",
            &json!({"email": "ghost@example.com", "new_password": NEW_PW}),
        )
        .await;
    assert_eq!((known.status, unknown.status), (202, 202), "identical answers");
    assert_eq!(
        known.json().as_object().unwrap().keys().collect::<Vec<_>>(),
        unknown.json().as_object().unwrap().keys().collect::<Vec<_>>()
    );
    assert_eq!(drain(&app).await, vec![Outcome::Sent], "only the real account gets mail");
    assert!(sink.to("ghost@example.com").is_empty());
    let code = sink.code_for("reset@example.com");
    let ghost_id = unknown.json()["challenge_id"].clone();
    let res = anon
        .json(
            Method::POST,
            "/auth/api/v1/password-reset/challenges/verify",
            &json!({"challenge_id": ghost_id, "code": code}),
        )
        .await;
    assert_eq!(res.status, 400, "an opaque challenge never verifies");

    let id = known.json()["challenge_id"].clone();
    let res = anon
        .json(Method::POST, "/auth/api/v1/password-reset/challenges/verify", &json!({"challenge_id": id, "code": code}))
        .await;
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(a.get("/auth/api/v1/user").await.status, 401, "old sessions are dead");
    assert_eq!(b.get("/auth/api/v1/user").await.status, 401);
    assert_eq!(b.post("/auth/api/v1/sessions/refresh").await.status, 401);
    let c = app.csrf_client().await;
    assert_eq!(
        c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "reset@example.com", "password": PW})).await.status,
        401
    );
    assert_eq!(
        c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "reset@example.com", "password": NEW_PW}))
            .await
            .status,
        200
    );
}

async fn wrong_codes_exhaust_the_challenge(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = TestApp::start_with_env(engine, &sink.env(), &[("AUTHARA_CHALLENGE_MAX_ATTEMPTS", "3")]).await;
    app.signed_in("tries@example.com", PW).await;
    let c = app.csrf_client().await;
    let res = c
        .json(
            Method::POST,
            "/auth/api/v1/password-reset/challenges",
            &json!({"email": "tries@example.com", "new_password": NEW_PW}),
        )
        .await;
    let id = res.json()["challenge_id"].clone();
    drain(&app).await;
    let code = sink.code_for("tries@example.com");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..3 {
        let res = c
            .json(
                Method::POST,
                "/auth/api/v1/password-reset/challenges/verify",
                &json!({"challenge_id": id, "code": wrong}),
            )
            .await;
        assert_eq!(res.status, 400);
    }
    let res = c
        .json(Method::POST, "/auth/api/v1/password-reset/challenges/verify", &json!({"challenge_id": id, "code": code}))
        .await;
    assert_eq!(res.status, 400, "the right code no longer works after the attempts are used up");
    assert_eq!(
        c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "tries@example.com", "password": PW})).await.status,
        200
    );
}

async fn resend_respects_the_interval_and_replaces_the_code(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = TestApp::start_with_env(engine, &sink.env(), &[]).await;
    app.signed_in("again@example.com", PW).await;
    let c = app.csrf_client().await;
    let res = c
        .json(
            Method::POST,
            "/auth/api/v1/password-reset/challenges",
            &json!({"email": "again@example.com", "new_password": NEW_PW}),
        )
        .await;
    let id = res.json()["challenge_id"].clone();
    drain(&app).await;
    let first = sink.code_for("again@example.com");

    let res = c.json(Method::POST, "/auth/api/v1/challenges/resend", &json!({"challenge_id": id})).await;
    assert_eq!(res.status, 204);
    assert!(drain(&app).await.is_empty(), "too soon: nothing queued (and nothing said)");
    app.clock.advance(Duration::from_secs(31));
    assert_eq!(c.json(Method::POST, "/auth/api/v1/challenges/resend", &json!({"challenge_id": id})).await.status, 204);
    assert_eq!(drain(&app).await, vec![Outcome::Sent]);
    assert_eq!(sink.to("again@example.com").len(), 2);
    let second = sink.code_for("again@example.com");
    // Unknown challenges answer the same.
    let res =
        c.json(Method::POST, "/auth/api/v1/challenges/resend", &json!({"challenge_id": uuid::Uuid::new_v4()})).await;
    assert_eq!(res.status, 204);
    if first != second {
        let res = c
            .json(
                Method::POST,
                "/auth/api/v1/password-reset/challenges/verify",
                &json!({"challenge_id": id, "code": first}),
            )
            .await;
        assert_eq!(res.status, 400, "a resend replaces the previous code");
    }
    let res = c
        .json(
            Method::POST,
            "/auth/api/v1/password-reset/challenges/verify",
            &json!({"challenge_id": id, "code": second}),
        )
        .await;
    assert_eq!(res.status, 204);
}

async fn codes_expire(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = TestApp::start_with_env(engine, &sink.env(), &[]).await;
    app.signed_in("late@example.com", PW).await;
    let c = app.csrf_client().await;
    let res = c
        .json(
            Method::POST,
            "/auth/api/v1/password-reset/challenges",
            &json!({"email": "late@example.com", "new_password": NEW_PW}),
        )
        .await;
    let id = res.json()["challenge_id"].clone();
    drain(&app).await;
    let code = sink.code_for("late@example.com");
    app.clock.advance(Duration::from_secs(10 * 60 + 1));
    let res = c
        .json(Method::POST, "/auth/api/v1/password-reset/challenges/verify", &json!({"challenge_id": id, "code": code}))
        .await;
    assert_eq!(res.status, 400, "past AUTHARA_CHALLENGE_VERIFICATION_CODE_TTL");
}

on_both_engines!(
    hosted_signup_with_a_code,
    hosted_password_reset,
    verified_signup_end_to_end,
    scenario_a_password_reset_from_request_to_new_login,
    wrong_codes_exhaust_the_challenge,
    resend_respects_the_interval_and_replaces_the_code,
    codes_expire,
);
