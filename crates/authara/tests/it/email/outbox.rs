//! README (Email): mail is "written to an outbox in the database with the change that causes
//! them, and delivered by background workers"; "failures are retried with exponential backoff
//! (5 s, 10 s, 20 s… up to 15 min) until `AUTHARA_EMAIL_JOB_MAX_ATTEMPTS`". `email/delivery.rs`
//! already covers a retried outage, permanent refusals, crashes and two workers; here: attempts
//! running out, the backoff schedule, a rolled-back change, and the real worker loop.
use std::time::Duration;

use authara::worker::email::{Outcome, backoff, run_once};
use reqwest::Method;
use serde_json::json;

use crate::app::TestApp;
use crate::harness::PW;
use crate::harness::{Engine, Server, TestDb, on_both_engines};
use crate::harness::{Script, server_env};
use crate::smtp::{Mode, SmtpSink};

const NEW_PW: &str = "copper-lantern-meadow";

async fn start_password_reset(app: &TestApp, email: &str) {
    let c = app.csrf_client().await;
    let res = c
        .json(Method::POST, "/auth/api/v1/password-reset/challenges", &json!({"email": email, "new_password": NEW_PW}))
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
}

#[test]
fn backoff_doubles_from_five_seconds_and_never_exceeds_fifteen_minutes() {
    let cap = Duration::from_secs(15 * 60);
    let first: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(first, [5, 10, 20, 40, 80, 160, 320, 640, 900]);
    for n in 1..1000 {
        let (now, next) = (backoff(n), backoff(n + 1));
        assert!(next <= cap, "attempt {n}: {next:?}");
        assert_eq!(next, (now * 2).min(cap), "attempt {n}: doubles up to the cap");
    }
    for n in [0, -1, i32::MIN, i32::MAX] {
        assert!(backoff(n) >= Duration::from_secs(5) && backoff(n) <= cap, "attempt {n}: {:?}", backoff(n));
    }
}

/// A mail server that always says "try later": attempts at 0 s, +5 s, +10 s (each not a
/// millisecond earlier), then the job is `failed` for good after the third.
async fn a_job_fails_for_good_once_its_attempts_run_out(engine: Engine) {
    let sink = SmtpSink::start().await;
    sink.set_mode(Mode::TempFail);
    let app = TestApp::start_with_env(engine, &sink.env(), &[("AUTHARA_EMAIL_JOB_MAX_ATTEMPTS", "3")]).await;
    app.signed_in("unlucky@example.com", PW).await;
    start_password_reset(&app, "unlucky@example.com").await;

    assert_eq!(run_once(&app.services).await.unwrap(), Outcome::Retrying, "attempt 1");
    for attempt in 2..=3 {
        let wait = backoff(attempt - 1);
        app.clock.advance(wait - Duration::from_millis(1));
        assert_eq!(run_once(&app.services).await.unwrap(), Outcome::Idle, "attempt {attempt} is not due yet");
        app.clock.advance(Duration::from_millis(1));
        let expected = if attempt == 3 { Outcome::Failed } else { Outcome::Retrying };
        assert_eq!(run_once(&app.services).await.unwrap(), expected, "attempt {attempt}, {wait:?} later");
    }
    let counts = app.services.mail().counts().await.unwrap();
    let count = |status: &str| counts.get(&authara::domain::JobStatus::parse(status).unwrap()).copied().unwrap_or(0);
    assert_eq!((count("failed"), count("pending"), count("sending")), (1, 0, 0), "{counts:?}");
    sink.set_mode(Mode::Accept);
    app.clock.advance(Duration::from_secs(3600));
    assert_eq!(run_once(&app.services).await.unwrap(), Outcome::Idle, "never tried again");
    assert!(sink.messages().is_empty());
}

/// An email change enqueues two mails in one transaction: the code to the new address, then
/// the notice to the current one. The database refuses the second (a test trigger), so the
/// change rolls back, and the first, already written, must go with it.
async fn a_rolled_back_change_leaves_nothing_in_the_outbox(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = TestApp::start_with_env(engine, &sink.env(), &[]).await;
    let c = app.signed_in("mover@example.com", PW).await;
    let before = app.services.mail().counts().await.unwrap();
    assert_eq!(before.values().sum::<i64>(), 0, "{before:?}");
    app.db
        .raw_sql(match engine {
            Engine::Sqlite => {
                "CREATE TRIGGER refuse_notice BEFORE INSERT ON email_jobs \
                 WHEN NEW.template = 'email_change_notice' BEGIN SELECT RAISE(ABORT, 'notice refused'); END;"
            }
            Engine::Postgres => {
                "CREATE FUNCTION authara.refuse_notice() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'notice refused'; END $$; \
                 CREATE TRIGGER refuse_notice BEFORE INSERT ON authara.email_jobs FOR EACH ROW \
                 WHEN (NEW.template = 'email_change_notice') EXECUTE FUNCTION authara.refuse_notice();"
            }
        })
        .await;

    let res = c.form("/auth/email-change", &[("new_email", "moved@example.com")]).await;
    assert_eq!(res.status, 500, "{}", res.text());
    assert_eq!(app.services.mail().counts().await.unwrap(), before, "the code's job rolled back with the change");
    assert_eq!(run_once(&app.services).await.unwrap(), Outcome::Idle);

    // Without the trigger, the same request writes both jobs.
    app.db
        .raw_sql(match engine {
            Engine::Sqlite => "DROP TRIGGER refuse_notice;",
            Engine::Postgres => "DROP TRIGGER refuse_notice ON authara.email_jobs;",
        })
        .await;
    let res = c.form("/auth/email-change", &[("new_email", "moved@example.com")]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(app.services.mail().counts().await.unwrap().get(&authara::domain::JobStatus::Pending), Some(&2));
}

/// `authara serve` delivers on its own: no `run_once`, only the binary's worker loop polling
/// every 100 ms, and a bounded wait for the mail to reach the SMTP server.
async fn the_real_worker_loop_delivers_a_password_reset_mail(engine: Engine) {
    let sink = SmtpSink::start().await;
    let db = TestDb::new(engine, true).await;
    let mut extra = sink.env();
    extra.push(("AUTHARA_EMAIL_WORKER_POLL_INTERVAL".into(), "100ms".into()));
    let env = server_env(&db, &extra);
    let server = Server::start(&["serve"], &env, db.data_dir()).await;

    let script = Script::new(&server).await;
    let (status, body) = script
        .post(&server, "/auth/api/v1/signup/direct", &[], &json!({"email": "worker@example.com", "password": PW}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = script
        .post(
            &server,
            "/auth/api/v1/password-reset/challenges",
            &[],
            &json!({"email": "worker@example.com", "new_password": NEW_PW}),
        )
        .await;
    assert_eq!(status, 202, "{body}");

    let store = db.store().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let sent = store.email_counts().await.unwrap().get(&authara::domain::JobStatus::Sent).copied().unwrap_or(0);
        if !sink.to("worker@example.com").is_empty() && sent == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not delivered within 10 s: {}", server.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mail = sink.to("worker@example.com");
    assert_eq!(mail.len(), 1);
    assert!(mail[0].code().is_some(), "{}", mail[0].data);
    store.close().await;
    let (exit, logs) = server.terminate().await;
    assert!(exit.success(), "{logs}");
}

on_both_engines!(
    a_job_fails_for_good_once_its_attempts_run_out,
    a_rolled_back_change_leaves_nothing_in_the_outbox,
    the_real_worker_loop_delivers_a_password_reset_mail,
);
