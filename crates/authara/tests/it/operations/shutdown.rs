//! Graceful shutdown of the real binary (`AUTHARA_SHUTDOWN_TIMEOUT`): requests accepted before
//! SIGTERM are answered, the email and webhook workers finish what they are sending, and a
//! request that never ends does not hold the exit past the timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncWriteExt as _;

use crate::app::{TestClient, try_send_checked};
use crate::harness::{Engine, Server, TestDb, client, on_both_engines, run_cli};
use crate::receiver::{Receiver, SECRET};
use crate::smtp::SmtpSink;

const PW: &str = "violet-harbor-tangent";

fn sigterm(server: &Server) -> Instant {
    let pid = server.child.id().unwrap();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap().success());
    Instant::now()
}

/// Waits for the exit; how long after `since` it came.
async fn exited(server: &mut Server, since: Instant) -> (std::process::ExitStatus, Duration) {
    let status = tokio::time::timeout(Duration::from_secs(30), server.child.wait())
        .await
        .expect("the server exits after SIGTERM")
        .unwrap();
    (status, since.elapsed())
}

struct Attempt {
    sent: Instant,
    done: Instant,
    outcome: Result<u16, String>,
}

async fn scenario_sigterm_during_a_login_storm_fails_no_request_accepted_before_it(engine: Engine) {
    let db = TestDb::new(engine, true).await;
    let mut env = db.env();
    env.insert("AUTHARA_SHUTDOWN_TIMEOUT".into(), "10s".into());
    env.insert("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT".into(), "100000".into());
    env.insert("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT".into(), "100000".into());
    let mut server = Server::start(&["serve"], &env, db.data_dir()).await;
    let c = TestClient::new(&server.base);
    let csrf = c.fetch_csrf().await;
    let res = c
        .json(
            reqwest::Method::POST,
            "/auth/api/v1/signup/direct",
            &json!({"email": "storm@example.com", "password": PW}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());

    let stop = Arc::new(AtomicBool::new(false));
    let body = json!({"email": "storm@example.com", "password": PW}).to_string();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (url, csrf, body, stop) = (server.url("/auth/api/v1/login"), csrf.clone(), body.clone(), stop.clone());
            tokio::spawn(async move {
                let http = client();
                let mut attempts = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let req = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("cookie", format!("authara_csrf={csrf}"))
                        .header("x-csrf-token", &csrf)
                        .body(body.clone());
                    let sent = Instant::now();
                    let outcome = try_send_checked(req).await.map(|r| r.status).map_err(|e| e.to_string());
                    let failed = outcome.is_err();
                    attempts.push(Attempt { sent, done: Instant::now(), outcome });
                    if failed {
                        break;
                    }
                }
                attempts
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let signal = sigterm(&server);
    let (status, exit_after) = exited(&mut server, signal).await;
    stop.store(true, Ordering::SeqCst);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    assert!(status.success(), "{}", server.logs());
    // Sent well before the signal (50 ms is ages on loopback): accepted before it.
    let accepted: Vec<_> = all.iter().filter(|a| a.sent + Duration::from_millis(50) < signal).collect();
    let failed: Vec<_> = accepted.iter().filter(|a| a.outcome != Ok(200)).map(|a| &a.outcome).collect();
    assert!(failed.is_empty(), "{} of {} accepted logins failed: {failed:?}", failed.len(), accepted.len());
    let in_flight = accepted.iter().filter(|a| a.done > signal).count();
    assert!(in_flight >= 1, "logins were in flight at the signal ({} accepted)", accepted.len());
    assert!(exit_after < Duration::from_secs(10), "exit within the timeout: {exit_after:?}");
    let logs = server.logs();
    assert!(!logs.contains("did not finish in time"), "{logs}");
    println!(
        "login storm: {} accepted before SIGTERM, {in_flight} in flight at it, none failed; exit {} ms after it",
        accepted.len(),
        exit_after.as_millis()
    );
}

async fn the_webhook_worker_finishes_a_delivery_in_flight_at_shutdown(engine: Engine) {
    let receiver = Receiver::start().await;
    receiver.set_delay(Duration::from_millis(1500));
    let db = TestDb::new(engine, true).await;
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut env = db.env();
    for (k, v) in [
        ("AUTHARA_WEBHOOK_ENABLED_EVENTS", "user.created"),
        ("AUTHARA_WEBHOOK_URL", receiver.url.as_str()),
        ("AUTHARA_WEBHOOK_SECRET", SECRET),
        ("AUTHARA_SHUTDOWN_TIMEOUT", "10s"),
        ("AUTHARA_METRICS_BIND", &format!("127.0.0.1:{metrics_port}")),
    ] {
        env.insert(k.to_owned(), v.to_owned());
    }
    let mut server = Server::start(&["serve"], &env, db.data_dir()).await;
    let c = TestClient::new(&server.base);
    c.fetch_csrf().await;
    let res = c
        .json(
            reqwest::Method::POST,
            "/auth/api/v1/signup/direct",
            &json!({"email": "hook@example.com", "password": PW}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    // The metrics show the delivery being sent (the receiver takes 1.5 s to answer).
    metrics_show(metrics_port, "authara_webhook_queue{state=\"processing\"} 1").await;
    let signal = sigterm(&server);
    let (status, exit_after) = exited(&mut server, signal).await;
    assert!(status.success(), "{}", server.logs());
    assert_eq!(receiver.deliveries().len(), 1, "the delivery in flight reached the receiver");
    let (code, listed, err) = run_cli(&["webhooks", "list"], &env, db.data_dir()).await;
    assert_eq!(code, 0, "{err}");
    assert!(listed.contains("delivered") && listed.contains("response 204"), "recorded as delivered: {listed}");
    assert!(exit_after < Duration::from_secs(10), "{exit_after:?}");
    println!("webhook in flight at SIGTERM: delivered; exit {} ms after the signal", exit_after.as_millis());
}

/// Polls the metrics until `needle` shows.
async fn metrics_show(port: u16, needle: &str) {
    let url = format!("http://127.0.0.1:{port}/metrics");
    for _ in 0..250 {
        if try_send_checked(client().get(&url)).await.unwrap().text().contains(needle) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the metrics never showed {needle}");
}

async fn the_email_worker_finishes_a_message_in_flight_at_shutdown(engine: Engine) {
    let sink = SmtpSink::start().await;
    sink.set_delay(Duration::from_millis(1200));
    let db = TestDb::new(engine, true).await;
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut env = db.env();
    env.extend(sink.env());
    env.insert("AUTHARA_CHALLENGE_ENABLED".into(), "true".into());
    env.insert("AUTHARA_SHUTDOWN_TIMEOUT".into(), "10s".into());
    env.insert("AUTHARA_METRICS_BIND".into(), format!("127.0.0.1:{metrics_port}"));
    let mut server = Server::start(&["serve"], &env, db.data_dir()).await;
    let c = TestClient::new(&server.base);
    c.fetch_csrf().await;
    let res = c
        .json(
            reqwest::Method::POST,
            "/auth/api/v1/signup/challenges",
            &json!({"email": "mail@example.com", "password": PW}),
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.text());
    // The message is being sent (the SMTP server takes 1.2 s to accept it).
    metrics_show(metrics_port, "authara_outbox_jobs{state=\"sending\"} 1").await;
    let signal = sigterm(&server);
    let (status, exit_after) = exited(&mut server, signal).await;
    assert!(status.success(), "{}", server.logs());
    assert_eq!(sink.to("mail@example.com").len(), 1, "the message in flight was accepted");
    assert!(exit_after < Duration::from_secs(10), "{exit_after:?}");
    // Recorded as sent: the next start does not send it again.
    let server = Server::start(&["serve"], &env, db.data_dir()).await;
    metrics_show(metrics_port, "authara_outbox_jobs{state=\"sent\"} 1").await;
    server.terminate().await;
    assert_eq!(sink.to("mail@example.com").len(), 1, "sent once");
    println!("email in flight at SIGTERM: sent; exit {} ms after the signal", exit_after.as_millis());
}

on_both_engines!(
    scenario_sigterm_during_a_login_storm_fails_no_request_accepted_before_it,
    the_webhook_worker_finishes_a_delivery_in_flight_at_shutdown,
    the_email_worker_finishes_a_message_in_flight_at_shutdown,
);

/// A client that never finishes its headers, and one that never finishes its body, do not hold
/// the exit past `AUTHARA_SHUTDOWN_TIMEOUT`.
#[tokio::test]
async fn requests_that_never_end_do_not_hold_the_exit_past_the_timeout() {
    let db = TestDb::new(Engine::Sqlite, true).await;
    let mut env = db.env();
    env.insert("AUTHARA_SHUTDOWN_TIMEOUT".into(), "2s".into());
    env.insert("AUTHARA_HEADER_READ_TIMEOUT".into(), "60s".into());
    env.insert("AUTHARA_REQUEST_TIMEOUT".into(), "60s".into());
    let mut server = Server::start(&["serve"], &env, db.data_dir()).await;
    let mut loris = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    loris.write_all(b"GET /auth/health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").await.unwrap();
    let mut hung = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    hung.write_all(
        b"POST /auth/api/v1/tokens/refresh HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{\"refresh_token\": \"",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signal = sigterm(&server);
    let (status, exit_after) = exited(&mut server, signal).await;
    assert!(status.success(), "{}", server.logs());
    assert!(exit_after >= Duration::from_millis(1900), "the drain waited for them: {exit_after:?}");
    assert!(exit_after < Duration::from_millis(3000), "and no longer than the timeout: {exit_after:?}");
    assert!(server.logs().contains("did not finish in time"), "{}", server.logs());
    println!("requests that never end, AUTHARA_SHUTDOWN_TIMEOUT=2s: exit {} ms after SIGTERM", exit_after.as_millis());
    drop((loris, hung));
}
