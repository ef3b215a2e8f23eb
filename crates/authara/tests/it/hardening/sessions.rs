//! Sessions and pages: state checked on every request, CSRF before refresh, audiences, caching,
//! indistinguishable decoys, files on disk.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::app::TestApp;
use crate::harness::{Engine, Server, TestDb, on_both_engines};

use crate::harness::PW;

/// A disabled (or deleted) user is refused on every authenticated route, not only at the next
/// refresh.
async fn a_disabled_user_is_refused_at_once(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.signed_in("off@example.com", PW).await;
    assert_eq!(c.get("/auth/api/v1/user").await.status, 200);
    let user = app.store.user_by_email(&crate::app::email("off@example.com")).await.unwrap().unwrap();
    crate::api::auth::set_disabled(&app, user.id, Some(app.clock_now())).await;
    app.clock.advance(Duration::from_secs(3));
    assert_eq!(c.get("/auth/api/v1/user").await.status, 401, "within the cache window of other instances");
    assert_eq!(c.get("/auth/api/v1/capabilities").await.status, 401);
    // Through the service, the refusal is immediate and the sessions end.
    let other = app.signed_in("off2@example.com", PW).await;
    let user2 = app.store.user_by_email(&crate::app::email("off2@example.com")).await.unwrap().unwrap();
    let admin = app.services.admin();
    admin.set_disabled(&admin.cli(), user2.id, true, None).await.unwrap();
    assert_eq!(other.get("/auth/api/v1/user").await.status, 401, "no waiting");
}

/// A forged POST to an account page is refused before the session is touched: the refresh
/// token is not rotated (or dropped) by a request that fails CSRF.
async fn account_posts_check_csrf_before_refreshing(engine: Engine) {
    let app = TestApp::start_with(engine, &[("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "always")]).await;
    let c = app.signed_in("csrf-first@example.com", PW).await;
    let refresh = c.cookie("authara_refresh").unwrap();
    app.clock.advance(Duration::from_secs(11 * 60));
    let body = b"csrf_token=forged&username=new-name".to_vec();
    *c.send_csrf.lock().unwrap() = false;
    let res = c
        .send(Method::POST, "/auth/user/username", Some(body), &[("content-type", "application/x-www-form-urlencoded")])
        .await;
    assert_eq!(res.status, 403);
    assert!(res.set_cookie("authara_refresh").is_none(), "nothing rotated by a refused request");
    assert_eq!(c.cookie("authara_refresh").unwrap(), refresh);
    *c.send_csrf.lock().unwrap() = true;
    let page = c.get("/auth/account").await;
    assert_eq!(page.status, 200, "the session is alive: the token was never consumed");
    assert!(page.set_cookie("authara_refresh").is_some(), "and the rotation rides on the page");
    assert_eq!(c.get("/auth/account").await.status, 200, "the rotated token works");
}

/// A cross-site GET of the login page aimed at the admin audience neither refreshes into it nor
/// signs the user out.
async fn a_login_page_for_a_foreign_audience_keeps_the_session(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.signed_in("member@example.com", PW).await;
    c.remove_cookie("authara_access");
    let res = c.get("/auth/login?return_to=/admin/panel").await;
    assert_eq!(res.status, 200);
    assert!(res.set_cookie("authara_refresh").is_none(), "cookies left alone");
    assert!(c.cookie("authara_refresh").is_some());
    assert_eq!(c.post("/auth/api/v1/sessions/refresh").await.status, 200, "still signed in");
}

/// Responses carrying tokens or account data are never cached; hashed assets are.
async fn tokens_and_account_pages_are_not_cached(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.signed_in("cache@example.com", PW).await;
    for path in ["/auth/api/v1/user", "/auth/account", "/auth/login"] {
        let res = c.get(path).await;
        assert_eq!(res.headers.get("cache-control").unwrap(), "no-store", "{path}");
    }
    let res = c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "cache@example.com", "password": PW})).await;
    assert_eq!(res.headers.get("cache-control").unwrap(), "no-store");
    let page = app.client().get("/auth/login").await.text();
    let css = page.split("href=\"/auth/static/").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let res = c.get(&format!("/auth/static/{css}")).await;
    assert!(res.headers.get("cache-control").unwrap().to_str().unwrap().contains("immutable"));
}

/// The browser SDK: `refreshSession("admin")` gets an admin-audience token for an admin and a
/// 401 for anyone else; `logout()` by `fetch` gets 204 instead of a redirect to the app.
async fn the_browser_sdk_refreshes_into_admin_and_logs_out_by_fetch(engine: Engine) {
    let app = TestApp::start(engine).await;
    let admin = authara::domain::NewPassword::parse(PW).unwrap();
    app.services.accounts().create_admin(&crate::app::email("root@example.com"), &admin).await.unwrap();
    let c = app.client();
    c.fetch_csrf().await;
    assert_eq!(
        c.json(Method::POST, "/auth/api/v1/login", &json!({"email": "root@example.com", "password": PW})).await.status,
        200
    );
    let res = c.send(Method::POST, "/auth/sessions/refresh?audience=admin", None, &[]).await;
    assert_eq!(res.status, 204);
    let token = c.cookie("authara_access").unwrap();
    let claims = crate::app::jwt_claims(&token);
    assert_eq!(claims["aud"], json!(["admin"]));
    let member = app.signed_in("member@example.com", PW).await;
    assert_eq!(member.send(Method::POST, "/auth/sessions/refresh?audience=admin", None, &[]).await.status, 401);

    let res = c.send(Method::POST, "/auth/sessions/logout", None, &[]).await;
    assert_eq!(res.status, 204, "a script's logout");
    let form = member.form("/auth/sessions/logout", &[]).await;
    assert_eq!(form.status, 303, "a form's logout still redirects");
}

/// After the code lifetime, the code page says the same for a real challenge and a decoy.
async fn the_code_page_does_not_tell_real_challenges_from_decoys(engine: Engine) {
    let app = TestApp::start(engine).await;
    app.signed_in("real@example.com", PW).await;
    let c = app.client();
    c.get("/auth/password-reset").await;
    let start = |email: &'static str| {
        let c = c.clone();
        async move {
            let res =
                c.form("/auth/password-reset", &[("email", email), ("new_password", "copper-lantern-meadow")]).await;
            res.text().split("name=\"challenge_id\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned()
        }
    };
    let real = start("real@example.com").await;
    let decoy = start("nobody@example.com").await;
    app.clock.advance(Duration::from_secs(11 * 60));
    let answer = |id: String| {
        let c = c.clone();
        async move {
            let res =
                c.form("/auth/verify-challenge/password-reset", &[("challenge_id", &id), ("code", "123456")]).await;
            (res.status, res.text().replace(&id, "ID"))
        }
    };
    let (a, b) = (answer(real).await, answer(decoy).await);
    assert_eq!(a.0, 422);
    assert_eq!(a, b, "the same status and page");
    assert!(a.1.contains("expired"));
}

/// `return_to` values that browsers resolve to another site are refused, dot segments included.
async fn return_to_with_dot_segments_stays_on_the_site(engine: Engine) {
    let app = TestApp::start(engine).await;
    app.signed_in("dots@example.com", PW).await;
    for evil in ["/.//evil.com", "/a/..//evil.com", "/a//evil.com"] {
        let c = app.client();
        c.get("/auth/login").await;
        let encoded = authara::services::return_to::encode(evil);
        let res = c
            .form(&format!("/auth/login?return_to={encoded}"), &[("email", "dots@example.com"), ("password", PW)])
            .await;
        assert_eq!((res.status, res.location().as_deref()), (303, Some("/")), "{evil}");
    }
}

/// Under EdDSA, HS256 tokens verify only when that is chosen explicitly.
async fn hs256_tokens_under_eddsa_need_an_explicit_choice(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.signed_in("hs@example.com", PW).await;
    let hs256 = c.cookie("authara_access").unwrap();
    let (db, clock) = app.stop().await;
    let app = TestApp::start_on(db, &[("AUTHARA_JWT_ALGORITHM", "EdDSA")], Some(clock)).await;
    let probe = app.client();
    probe.set_cookie("authara_access", &hs256);
    assert_eq!(probe.get("/auth/api/v1/user").await.status, 401, "HMAC keys verify nothing by default");
    let (db, clock) = app.stop().await;
    let app =
        TestApp::start_on(db, &[("AUTHARA_JWT_ALGORITHM", "EdDSA"), ("AUTHARA_JWT_ACCEPT_HS256", "true")], Some(clock))
            .await;
    let probe = app.client();
    probe.set_cookie("authara_access", &hs256);
    assert_eq!(probe.get("/auth/api/v1/user").await.status, 200, "accepted when chosen");
}

on_both_engines!(
    a_disabled_user_is_refused_at_once,
    account_posts_check_csrf_before_refreshing,
    a_login_page_for_a_foreign_audience_keeps_the_session,
    tokens_and_account_pages_are_not_cached,
    the_browser_sdk_refreshes_into_admin_and_logs_out_by_fetch,
    the_code_page_does_not_tell_real_challenges_from_decoys,
    return_to_with_dot_segments_stays_on_the_site,
    hs256_tokens_under_eddsa_need_an_explicit_choice,
);

/// The embedded database and its directory are readable by this user only, and dev mode off
/// loopback says so at start.
#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_private_and_dev_mode_warns_off_loopback() {
    use std::os::unix::fs::PermissionsExt as _;
    let db = TestDb::new(Engine::Sqlite, false).await;
    let data = db.data_dir().join("fresh-data");
    let mut env = std::collections::HashMap::new();
    env.insert("AUTHARA_DATA_DIR".to_owned(), data.display().to_string());
    env.insert("AUTHARA_BIND".to_owned(), "0.0.0.0:0".to_owned());
    let server = Server::start(&["serve", "--migrate"], &env, db.data_dir()).await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data directory");
    assert_eq!(mode(&data.join("authara.db")), 0o600, "the database");
    assert_eq!(mode(&data.join("authara.db-wal")), 0o600, "its write-ahead log");
    let (_, logs) = server.terminate().await;
    assert!(logs.lines().any(|l| l.contains("WARN") && l.contains("APP_ENV=prod")), "{logs}");
}
