//! Logout stops the session's access tokens at once, through "an in-process revocation list,
//! rebuilt from the store at start" (README): in process, and with the real binary after SIGTERM
//! and a fresh start on the same database, while a token of another session of the same user is
//! still accepted.
use serde_json::json;

use crate::app::TestApp;
use crate::harness::PW;
use crate::harness::{Engine, Server, TestDb, on_both_engines};
use crate::harness::{Script, server_env, user_status};

const EMAIL: &str = "restart@example.com";

async fn a_logged_out_access_token_stays_refused_after_a_restart(engine: Engine) {
    let db = TestDb::new(engine, true).await;
    let env = server_env::<&str, &str>(&db, &[]);
    let server = Server::start(&["serve"], &env, db.data_dir()).await;

    let script = Script::new(&server).await;
    let (status, signed_up) =
        script.post(&server, "/auth/api/v1/signup/direct", &[], &json!({"email": EMAIL, "password": PW})).await;
    assert_eq!(status, 201, "{signed_up}");
    let access = signed_up["access_token"].as_str().unwrap().to_owned();
    let refresh = signed_up["refresh_token"].as_str().unwrap().to_owned();
    // A second session of the same user, never logged out: the control.
    let (status, logged_in) =
        script.post(&server, "/auth/api/v1/login", &[], &json!({"email": EMAIL, "password": PW})).await;
    assert_eq!(status, 200, "{logged_in}");
    let other_access = logged_in["access_token"].as_str().unwrap().to_owned();
    assert_eq!(user_status(&server, &access).await, 200);

    let cookies = [("authara_access", access.as_str()), ("authara_refresh", refresh.as_str())];
    let (status, _) = script.post(&server, "/auth/api/v1/sessions/logout", &cookies, &json!({})).await;
    assert_eq!(status, 204);
    assert_eq!(user_status(&server, &access).await, 401, "refused at once, before the restart");

    let (exit, logs) = server.terminate().await;
    assert!(exit.success(), "{logs}");
    let server = Server::start(&["serve"], &env, db.data_dir()).await;
    assert_eq!(user_status(&server, &other_access).await, 200, "same key, live session: still accepted");
    assert_eq!(
        user_status(&server, &access).await,
        401,
        "the logged-out token is refused by the restarted process, long before it expires"
    );
    let (exit, logs) = server.terminate().await;
    assert!(exit.success(), "{logs}");
}

async fn logout_revokes_the_access_token_at_once(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.signed_in("grace@example.com", PW).await;
    let access = c.cookie("authara_access").unwrap();
    assert_eq!(c.post("/auth/api/v1/sessions/logout").await.status, 204);
    assert!(c.cookie("authara_access").is_none(), "cookie cleared");
    let replay = app.client();
    replay.set_cookie("authara_access", &access);
    let res = replay.get("/auth/api/v1/user").await;
    assert_eq!(res.status, 401, "a logged-out access token is refused before it expires");
    assert_eq!(res.error_code(), "unauthorized");
    // Logout without any session still answers 204.
    let anon = app.csrf_client().await;
    assert_eq!(anon.post("/auth/api/v1/sessions/logout").await.status, 204);
}

on_both_engines!(a_logged_out_access_token_stays_refused_after_a_restart, logout_revokes_the_access_token_at_once,);
