//! Email: the outbox worker against a real SMTP server, verified signup, password reset,
//! resend, expiry, retries, crashes, and two workers sharing one database.

use std::time::Duration;

use authara::worker::email::{Outcome, run_once};
use reqwest::Method;
use serde_json::json;

use crate::app::{TestApp, TestClient};
use crate::harness::{Engine, on_both_engines};
use crate::smtp::{Mode, SmtpSink};

use crate::app::drain_mail as drain;
use crate::harness::PW;
const NEW_PW: &str = "copper-lantern-meadow";

async fn app_with_mail(engine: Engine, sink: &SmtpSink, extra: &[(&str, &str)]) -> TestApp {
    let env = sink.env();
    let mut overrides: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    overrides.extend_from_slice(extra);
    TestApp::start_with(engine, &overrides).await
}

async fn csrf_client(app: &TestApp) -> TestClient {
    let c = app.client();
    c.fetch_csrf().await;
    c
}

async fn verified_signup_end_to_end(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = app_with_mail(engine, &sink, &[("AUTHARA_CHALLENGE_ENABLED", "true")]).await;
    let c = csrf_client(&app).await;
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

async fn password_reset_end_to_end(engine: Engine) {
    let sink = SmtpSink::start().await;
    // Challenges are off: password reset mail is delivered anyway.
    let app = app_with_mail(engine, &sink, &[]).await;
    let a = app.signed_in("reset@example.com", PW).await;
    let b = app.client();
    b.fetch_csrf().await;
    assert_eq!(
        b.json(Method::POST, "/auth/api/v1/login", &json!({"email": "reset@example.com", "password": PW})).await.status,
        200
    );

    let anon = csrf_client(&app).await;
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
    let c = csrf_client(&app).await;
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
    let app = app_with_mail(engine, &sink, &[("AUTHARA_CHALLENGE_MAX_ATTEMPTS", "3")]).await;
    app.signed_in("tries@example.com", PW).await;
    let c = csrf_client(&app).await;
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
    let app = app_with_mail(engine, &sink, &[]).await;
    app.signed_in("again@example.com", PW).await;
    let c = csrf_client(&app).await;
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
    let app = app_with_mail(engine, &sink, &[]).await;
    app.signed_in("late@example.com", PW).await;
    let c = csrf_client(&app).await;
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

async fn smtp_outage_is_retried_until_delivered_once(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = app_with_mail(engine, &sink, &[]).await;
    app.signed_in("outage@example.com", PW).await;
    let c = csrf_client(&app).await;
    c.json(
        Method::POST,
        "/auth/api/v1/password-reset/challenges",
        &json!({"email": "outage@example.com", "new_password": NEW_PW}),
    )
    .await;

    sink.set_mode(Mode::Down);
    assert_eq!(drain(&app).await, vec![Outcome::Retrying]);
    assert_eq!(drain(&app).await, vec![], "not due again before its backoff");
    app.clock.advance(Duration::from_secs(6));
    sink.set_mode(Mode::TempFail);
    assert_eq!(drain(&app).await, vec![Outcome::Retrying]);

    sink.set_mode(Mode::Accept);
    app.clock.advance(Duration::from_secs(11));
    assert_eq!(drain(&app).await, vec![Outcome::Sent]);
    assert_eq!(sink.to("outage@example.com").len(), 1, "delivered exactly once");
    assert_eq!(app.store.email_counts().await.unwrap().get(&authara::domain::JobStatus::Sent), Some(&1));

    // Sent jobs are cleaned after AUTHARA_EMAIL_CLEANUP_SENT_AFTER (720h), not before.
    let now = app.clock_now();
    assert_eq!(app.store.cleanup_emails(now - 3_600_000, now - 3_600_000).await.unwrap(), 0);
    assert_eq!(app.store.cleanup_emails(now + 1, now + 1).await.unwrap(), 1);

    // A permanent refusal is not retried.
    c.json(
        Method::POST,
        "/auth/api/v1/password-reset/challenges",
        &json!({"email": "outage@example.com", "new_password": NEW_PW}),
    )
    .await;
    sink.set_mode(Mode::PermFail);
    assert_eq!(drain(&app).await, vec![Outcome::Failed]);
    app.clock.advance(Duration::from_secs(3600));
    assert_eq!(drain(&app).await, vec![]);
}

/// `AUTHARA_EMAIL_SMTP_TLS=true` (the default, and required in prod) never falls back to plain
/// text: a server that offers no STARTTLS gets no mail (the job waits for a retry), and the same
/// server gets it once TLS is turned off.
async fn required_tls_never_falls_back_to_plain_text(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = app_with_mail(engine, &sink, &[("AUTHARA_EMAIL_SMTP_TLS", "true")]).await;
    app.signed_in("tls@example.com", PW).await;
    let c = csrf_client(&app).await;
    let body = json!({"email": "tls@example.com", "new_password": NEW_PW});
    c.json(Method::POST, "/auth/api/v1/password-reset/challenges", &body).await;
    assert_eq!(drain(&app).await, vec![Outcome::Retrying]);
    assert!(sink.messages().is_empty(), "nothing was sent in plain text");
    assert_eq!(app.store.email_counts().await.unwrap().get(&authara::domain::JobStatus::Sent), None);

    let (db, clock) = app.stop().await;
    let env = sink.env();
    let plain: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = TestApp::start_on(db, &plain, Some(clock)).await;
    app.clock.advance(Duration::from_secs(10));
    assert_eq!(drain(&app).await, vec![Outcome::Sent], "the same job at its retry, plain text allowed");
    assert_eq!(sink.to("tls@example.com").len(), 1);
}

async fn a_worker_killed_mid_send_delivers_once_after_restart(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = app_with_mail(engine, &sink, &[]).await;
    app.signed_in("crash@example.com", PW).await;
    let c = csrf_client(&app).await;
    c.json(
        Method::POST,
        "/auth/api/v1/password-reset/challenges",
        &json!({"email": "crash@example.com", "new_password": NEW_PW}),
    )
    .await;

    sink.set_mode(Mode::Hang);
    let services = app.services.clone();
    let worker = tokio::spawn(async move { run_once(&services).await });
    for _ in 0..200 {
        if app.store.email_counts().await.unwrap().get(&authara::domain::JobStatus::Sending) == Some(&1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    worker.abort(); // the process dies mid-conversation
    let _ = worker.await;
    sink.set_mode(Mode::Accept);

    // A restarted worker leaves the job alone while a live send could still be running...
    assert_eq!(drain(&app).await, vec![]);
    // ...and picks it up once it is clearly abandoned.
    app.clock.advance(Duration::from_secs(61));
    assert_eq!(drain(&app).await, vec![Outcome::Sent]);
    assert_eq!(sink.to("crash@example.com").len(), 1);
    app.clock.advance(Duration::from_secs(3600));
    assert_eq!(drain(&app).await, vec![]);
    assert_eq!(sink.to("crash@example.com").len(), 1, "never twice");
}

async fn two_workers_never_send_a_job_twice(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = app_with_mail(engine, &sink, &[("AUTHARA_RATE_LIMIT_PASSWORD_RESET_IP_LIMIT", "1000")]).await;
    let c = csrf_client(&app).await;
    let n = 12;
    for i in 0..n {
        app.signed_in(&format!("many{i}@example.com"), PW).await;
        let res = c
            .json(
                Method::POST,
                "/auth/api/v1/password-reset/challenges",
                &json!({"email": format!("many{i}@example.com"), "new_password": NEW_PW}),
            )
            .await;
        assert_eq!(res.status, 202);
    }
    // A slow mail server keeps each send in flight long enough that both workers are at work.
    sink.set_delay(Duration::from_millis(25));
    let other = app.second_instance().await;
    let run = |s: authara::services::Services| async move {
        let mut sent = 0;
        loop {
            match run_once(&s).await.unwrap() {
                Outcome::Idle => return sent,
                Outcome::Sent => sent += 1,
                o => panic!("unexpected {o:?}"),
            }
        }
    };
    let (x, y) = tokio::join!(tokio::spawn(run(app.services.clone())), tokio::spawn(run(other)));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert!(x > 0 && y > 0, "both workers sent some: {x} and {y}");
    assert_eq!(x + y, n, "every job sent once between the two workers ({x} + {y})");
    assert_eq!(sink.messages().len(), n);
    for i in 0..n {
        assert_eq!(sink.to(&format!("many{i}@example.com")).len(), 1);
    }
}

on_both_engines!(
    verified_signup_end_to_end,
    password_reset_end_to_end,
    wrong_codes_exhaust_the_challenge,
    resend_respects_the_interval_and_replaces_the_code,
    codes_expire,
    smtp_outage_is_retried_until_delivered_once,
    required_tls_never_falls_back_to_plain_text,
    a_worker_killed_mid_send_delivers_once_after_restart,
    ; threaded: two_workers_never_send_a_job_twice,
);
