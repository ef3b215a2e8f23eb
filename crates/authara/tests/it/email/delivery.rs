//! The email worker against a real SMTP server: outages, required TLS, a crash mid-send, and two
//! workers sharing one database.

use std::time::Duration;

use authara::worker::email::{Outcome, run_once};
use reqwest::Method;
use serde_json::json;

use crate::app::TestApp;
use crate::harness::{Engine, on_both_engines};
use crate::smtp::{Mode, SmtpSink};

use crate::app::drain_mail as drain;
use crate::harness::PW;
const NEW_PW: &str = "copper-lantern-meadow";

async fn smtp_outage_is_retried_until_delivered_once(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = TestApp::start_with_env(engine, &sink.env(), &[]).await;
    app.signed_in("outage@example.com", PW).await;
    let c = app.csrf_client().await;
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
    let app = TestApp::start_with_env(engine, &sink.env(), &[("AUTHARA_EMAIL_SMTP_TLS", "true")]).await;
    app.signed_in("tls@example.com", PW).await;
    let c = app.csrf_client().await;
    let body = json!({"email": "tls@example.com", "new_password": NEW_PW});
    c.json(Method::POST, "/auth/api/v1/password-reset/challenges", &body).await;
    assert_eq!(drain(&app).await, vec![Outcome::Retrying]);
    assert!(sink.messages().is_empty(), "nothing was sent in plain text");
    assert_eq!(app.store.email_counts().await.unwrap().get(&authara::domain::JobStatus::Sent), None);

    let (db, clock) = app.stop().await;
    let env = sink.env();
    let app = TestApp::start_on(db, &crate::app::settings(&env, &[]), Some(clock)).await;
    app.clock.advance(Duration::from_secs(10));
    assert_eq!(drain(&app).await, vec![Outcome::Sent], "the same job at its retry, plain text allowed");
    assert_eq!(sink.to("tls@example.com").len(), 1);
}

async fn a_worker_killed_mid_send_delivers_once_after_restart(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = TestApp::start_with_env(engine, &sink.env(), &[]).await;
    app.signed_in("crash@example.com", PW).await;
    let c = app.csrf_client().await;
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
    let app =
        TestApp::start_with_env(engine, &sink.env(), &[("AUTHARA_RATE_LIMIT_PASSWORD_RESET_IP_LIMIT", "1000")]).await;
    let c = app.csrf_client().await;
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
    smtp_outage_is_retried_until_delivered_once,
    required_tls_never_falls_back_to_plain_text,
    a_worker_killed_mid_send_delivers_once_after_restart,
    ; threaded: two_workers_never_send_a_job_twice,
);
