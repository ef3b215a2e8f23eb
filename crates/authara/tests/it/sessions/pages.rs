//! Sessions as the pages and the browser SDK see them: state checked on every request, audiences,
//! caching, the refresh route, the logout form, transparent refresh, and the account page's list
//! of sessions.
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::app::TestApp;
use crate::harness::PW;
use crate::harness::{Engine, on_both_engines};

// Security review finding: a disabled user kept access until the next refresh.
/// A disabled (or deleted) user is refused on every authenticated route, not only at the next
/// refresh.
async fn a_disabled_user_is_refused_at_once(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.signed_in("off@example.com", PW).await;
    assert_eq!(c.get("/auth/api/v1/user").await.status, 200);
    let user = app.store.user_by_email(&crate::app::email("off@example.com")).await.unwrap().unwrap();
    crate::accounts::api::set_disabled(&app, user.id, Some(app.clock_now())).await;
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

// Security review finding: a cross-site login page for the admin audience refreshed into it or signed the user out.
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

// Security review finding: responses carrying tokens or account data were cacheable.
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

// Security review finding: the browser SDK's admin refresh and fetch logout were refused.
/// The browser SDK: `refreshSession("admin")` gets an admin-audience token for an admin and a
/// 401 for anyone else; `logout()` by `fetch` gets 204 instead of a redirect to the app.
async fn the_browser_sdk_refreshes_into_admin_and_logs_out_by_fetch(engine: Engine) {
    let app = TestApp::start(engine).await;
    let admin = authara::domain::NewPassword::parse(PW).unwrap();
    app.services.accounts().create_admin(&crate::app::email("root@example.com"), &admin).await.unwrap();
    let c = app.csrf_client().await;
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

async fn browser_refresh_route_serves_fetch_and_forms(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.signed_in("sdk@example.com", PW).await;
    // The browser SDK's refreshSession(): a fetch with the CSRF header.
    let res = c.send(Method::POST, "/auth/sessions/refresh?audience=app", None, &[("sec-fetch-mode", "cors")]).await;
    assert_eq!(res.status, 204, "a fetch gets a 2xx, so refreshSession() reports success");
    assert!(res.set_cookie("authara_access").is_some() && res.set_cookie("authara_refresh").is_some());
    // A form post is redirected.
    let res = c.form("/auth/sessions/refresh?return_to=/back", &[]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/back")));
    // Without a refresh cookie: 401 for fetch, login redirect for navigation.
    c.remove_cookie("authara_refresh");
    let res = c.send(Method::POST, "/auth/sessions/refresh", None, &[("sec-fetch-mode", "cors")]).await;
    assert_eq!(res.status, 401);
    let res = c.form("/auth/sessions/refresh?return_to=/back", &[]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/auth/login?return_to=%2Fback")));
}

async fn logout_form_clears_the_session_and_returns(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.signed_in("bye@example.com", PW).await;
    let res = c.form("/auth/sessions/logout?return_to=/goodbye", &[]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/goodbye")));
    assert!(res.set_cookie("authara_refresh").unwrap().contains("Max-Age=0"));
    let res = c.get("/auth/account").await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/auth/login?return_to=%2F")));
}

async fn expired_access_tokens_are_refreshed_transparently_on_pages(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.signed_in("quiet@example.com", PW).await;
    app.clock.advance(Duration::from_secs(11 * 60));
    let res = c.get("/auth/account").await;
    assert_eq!(res.status, 200, "{:?}", res.location());
    assert!(res.set_cookie("authara_access").is_some(), "new access cookie set on the way");
    assert!(res.text().contains("quiet@example.com"));
    // An expired login page visit with a refresh cookie goes straight through too.
    app.clock.advance(Duration::from_secs(11 * 60));
    let res = c.get("/auth/login?return_to=/in").await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/in")));
}

async fn account_page_lists_sessions_and_revokes_them(engine: Engine) {
    let app = TestApp::start(engine).await;
    let a = app.signed_in("acct@example.com", PW).await;
    let b = app.client();
    b.get("/auth/login").await;
    let res = b
        .send(
            reqwest::Method::POST,
            "/auth/login",
            Some(
                format!("csrf_token={}&email=acct%40example.com&password={PW}", b.cookie("authara_csrf").unwrap())
                    .into_bytes(),
            ),
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                (
                    "user-agent",
                    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Version/17.0 Mobile/15E148 Safari/604.1",
                ),
            ],
        )
        .await;
    assert_eq!(res.status, 303);

    let page = a.get("/auth/account").await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("This device"), "{html}");
    assert!(html.contains("Safari on iPhone"), "the other session is described");
    assert_eq!(html.matches("/revoke\"").count(), 1, "one other session can be signed out");
    let sid = html.split("/auth/sessions/").nth(1).unwrap().split('/').next().unwrap().to_owned();

    let res = a.form(&format!("/auth/sessions/{sid}/revoke"), &[]).await;
    let page = a.back_on_account(&res).await;
    assert_eq!(b.get("/auth/api/v1/user").await.status, 401, "the revoked device is out at once");
    let res = b.get("/auth/account").await;
    assert_eq!(res.status, 303, "and its pages send it to login");
    assert!(page.contains("That device was signed out."));
    let sessions = page.split("Recent security activity").next().unwrap();
    assert!(!sessions.contains("Safari on iPhone"), "gone from the signed-in devices");
    // Someone else's or an unknown session: refused, nothing happens.
    let res = a.form("/auth/sessions/00000000-0000-0000-0000-000000000001/revoke", &[]).await;
    assert!(a.back_on_account(&res).await.contains("That session was not found."));
}

on_both_engines!(
    a_disabled_user_is_refused_at_once,
    a_login_page_for_a_foreign_audience_keeps_the_session,
    tokens_and_account_pages_are_not_cached,
    the_browser_sdk_refreshes_into_admin_and_logs_out_by_fetch,
    browser_refresh_route_serves_fetch_and_forms,
    logout_form_clears_the_session_and_returns,
    expired_access_tokens_are_refreshed_transparently_on_pages,
    account_page_lists_sessions_and_revokes_them,
);
