//! `examples/axum-app.rs`, the application the README shows, run as its own process against the
//! real server (HS256 with shared keys, and EdDSA with nothing but the server's URL), with the
//! server's webhooks delivered to it.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::axum_app::{assert_anonymous_answers, get_with};
use crate::harness::{
    Alg, Server, client, collect_output, command, eventually, example_bin, free_port, on_both_algorithms, server_env,
};

const SECRET: &str = "whsec-example-secret";

async fn the_example_app_serves_its_routes_against_the_real_server(alg: Alg) {
    let app_port = free_port();
    let mut env = server_env(alg);
    env.insert("AUTHARA_WEBHOOK_URL".into(), format!("http://127.0.0.1:{app_port}/webhooks"));
    env.insert("AUTHARA_WEBHOOK_SECRET".into(), SECRET.into());
    let server = Server::start_with(env).await;

    let mut app_env: HashMap<String, String> = [
        ("AUTHARA_URL", server.base.clone()),
        ("AUTHARA_JWT_ISSUER", crate::harness::ISSUER.to_owned()),
        ("AUTHARA_WEBHOOK_SECRET", SECRET.to_owned()),
        ("APP_BIND", format!("127.0.0.1:{app_port}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if alg == Alg::Hs256 {
        app_env.insert("AUTHARA_JWT_KEYS".into(), server.env["AUTHARA_JWT_KEYS"].clone());
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = command(&example_bin("axum-app"), &[], &app_env, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (output, mut lines) = collect_output(&mut child);
    let listening = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.recv().await {
            if line.starts_with("listening on http://") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(listening, Ok(true), "the example did not start: {:#?}", output.lock().unwrap());
    let base = format!("http://127.0.0.1:{app_port}");

    let home = get_with(&format!("{base}/"), &[]).await;
    assert_eq!(home.status, 200);

    let user = server.sign_up("example@example.com").await;
    let session = server.log_in("example@example.com", "app").await;
    let bearer = format!("Bearer {}", session.access_token);
    let me = get_with(&format!("{base}/me"), &[("authorization", &bearer)]).await;
    assert_eq!(me.status, 200, "{}", me.body);
    let body = me.json();
    assert_eq!(body["sub"], user.user_id.as_str());
    for claim in ["sid", "org_id"] {
        assert!(body[claim].as_str().is_some_and(|s| s.len() == 36), "{claim}: {body}");
    }
    assert_eq!(body["roles"], Value::Array(vec![]));
    let cookie = format!("authara_access={}", session.access_token);
    assert_eq!(get_with(&format!("{base}/me"), &[("cookie", &cookie)]).await.status, 200);
    assert_anonymous_answers(&base, "/me", &[], "%2Fme").await;

    let res = get_with(&format!("{base}/admin"), &[("authorization", &bearer)]).await;
    assert_eq!((res.status, res.json()["error"]["code"].as_str()), (403, Some("forbidden")));
    server.cli(&["admin", "grant", "--email", "example@example.com"]).await;
    let admin = server.log_in("example@example.com", "app").await.access_token;
    let res = get_with(&format!("{base}/admin"), &[("authorization", &format!("Bearer {admin}"))]).await;
    assert_eq!(res.status, 200, "{}", res.body);

    // The server's own deliveries are accepted (the example prints each one) …
    let line = "webhook user.created";
    let printed = eventually(Duration::from_secs(15), || {
        output.lock().unwrap().iter().any(|l| l.starts_with(line) && l.contains(&user.user_id))
    })
    .await;
    assert!(printed, "{:#?}\n{:#?}", output.lock().unwrap(), server.logs());
    // … and anything else is not.
    let forged = client()
        .post(format!("{base}/webhooks"))
        .header("x-authara-timestamp", "1")
        .header("x-authara-signature-v2", format!("sha256={}", "0".repeat(64)))
        .body(r#"{"id":"x","type":"user.deleted","created_at":"x","data":{"user_id":"00000000-0000-0000-0000-000000000001"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    let unsigned = client().post(format!("{base}/webhooks")).body("{}").send().await.unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    let _ = child.kill().await;
}

on_both_algorithms!(the_example_app_serves_its_routes_against_the_real_server);
