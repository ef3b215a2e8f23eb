//! What never leaves the server: the real binary, logging at `debug`, goes through enrolment,
//! a sign-in with a code, wrong codes and a recovery code; neither the secret nor any code is in
//! its logs, in the events (what webhooks deliver), in the audit log or in the mails, and the
//! stored secret is sealed.

use reqwest::Method;
use serde_json::json;

use super::{PW, code_at, decode};
use crate::app::TestClient;
use crate::harness::server_env;
use crate::harness::{Engine, Server, TestDb, on_both_engines};
use crate::smtp::SmtpSink;

/// The real binary's clock (the system's), as the app on a phone reads it.
fn now_ms() -> i64 {
    use authara::clock::Clock as _;
    authara::clock::SystemClock.now_ms()
}

async fn scenario_the_secret_and_the_codes_stay_secret(engine: Engine) {
    let sink = SmtpSink::start().await;
    let db = TestDb::new(engine, true).await;
    let mut extra = sink.env();
    extra.push(("LOG_LEVEL".into(), "debug".into()));
    extra.push(("AUTHARA_RATE_LIMIT_MFA_USER_LIMIT".into(), "1000".into()));
    let env = server_env(&db, &extra);
    let server = Server::start(&["serve"], &env, db.data_dir()).await;

    let c = TestClient::new(&server.base);
    c.fetch_csrf().await;
    let res = c
        .json(Method::POST, "/auth/api/v1/signup/direct", &json!({"email": "quiet@example.com", "password": PW}))
        .await;
    assert_eq!(res.status, 201);
    let res = c.post("/auth/api/v1/mfa/totp/setup").await;
    let base32 = res.json()["secret"].as_str().unwrap().to_owned();
    let uri = res.json()["otpauth_uri"].as_str().unwrap().to_owned();
    let secret = decode(&base32);
    let confirm = code_at(&secret, now_ms(), 0);
    let res = c.json(Method::POST, "/auth/api/v1/mfa/totp/confirm", &json!({"code": confirm})).await;
    assert_eq!(res.status, 200);
    let recovery: Vec<String> =
        res.json()["recovery_codes"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();

    let b = TestClient::new(&server.base);
    b.fetch_csrf().await;
    let res = b.json(Method::POST, "/auth/api/v1/login", &json!({"email": "quiet@example.com", "password": PW})).await;
    let id = res.json()["mfa"]["challenge_id"].as_str().unwrap().to_owned();
    let binding = b.cookie("authara_mfa").unwrap();
    for wrong in ["111111", "222222"] {
        b.json(Method::POST, "/auth/api/v1/login/mfa", &json!({"challenge_id": id, "code": wrong})).await;
    }
    let next = code_at(&secret, now_ms(), 1);
    let res = b.json(Method::POST, "/auth/api/v1/login/mfa", &json!({"challenge_id": id, "code": next})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let d = TestClient::new(&server.base);
    d.fetch_csrf().await;
    let res = d.json(Method::POST, "/auth/api/v1/login", &json!({"email": "quiet@example.com", "password": PW})).await;
    let id = res.json()["mfa"]["challenge_id"].as_str().unwrap().to_owned();
    let res = d
        .json(Method::POST, "/auth/api/v1/login/mfa", &json!({"challenge_id": id, "recovery_code": recovery[2]}))
        .await;
    assert_eq!(res.status, 200);

    // Let the outbox send the mails (the server's worker), then look everywhere.
    for _ in 0..200 {
        if sink.to("quiet@example.com").len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let (_, logs) = server.terminate().await;
    assert!(logs.contains("DEBUG") || logs.contains("debug"), "the log is at debug level");
    let store = db.store().await;
    let events = store.events_since(0, 10_000).await.unwrap();
    let events: Vec<String> = events.iter().map(|e| format!("{} {}", e.kind, e.data)).collect();
    assert!(events.iter().any(|e| e.starts_with("user.second_factor_changed")), "{events:#?}");
    let audit = store.audit_page(&Default::default(), 1000, 0).await.unwrap();
    let audit: Vec<String> = audit.iter().map(|r| format!("{} {}", r.action.as_str(), r.metadata)).collect();
    let mails: Vec<String> = sink.messages().iter().map(|m| m.decoded()).collect();
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let mut secrets = vec![base32.clone(), hex.clone(), uri.clone(), confirm.clone(), next.clone(), binding.clone()];
    secrets.extend(recovery.iter().cloned());
    secrets.extend(recovery.iter().map(|r| r.replace('-', "")));
    for s in &secrets {
        assert!(!logs.contains(s.as_str()), "{s} is in the log");
        for e in &events {
            assert!(!e.contains(s.as_str()), "{s} is in an event: {e}");
        }
        for a in &audit {
            assert!(!a.contains(s.as_str()), "{s} is in the audit log: {a}");
        }
        for m in &mails {
            assert!(!m.contains(s.as_str()), "{s} is in a mail");
        }
    }
    let uid = store.user_by_email(&crate::app::email("quiet@example.com")).await.unwrap().unwrap().id;
    let stored = store.totp(uid).await.unwrap().unwrap().secret_sealed;
    assert!(!stored.contains(&base32) && !stored.to_lowercase().contains(&hex), "sealed at rest");
}

on_both_engines!(scenario_the_secret_and_the_codes_stay_secret);
