use std::time::Duration;

use reqwest::Method;

use crate::app::{TestApp, TestClient};
use crate::harness::{Engine, on_both_engines};

use crate::harness::PW;

/// A browser that has loaded the login page (so it holds the CSRF cookie).
async fn browser(app: &TestApp) -> TestClient {
    let c = app.client();
    let res = c.get("/auth/login").await;
    assert_eq!(res.status, 200);
    assert!(res.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(res.set_cookie("authara_csrf").is_some(), "every page ensures the CSRF cookie");
    c
}

async fn signup_and_login_land_on_return_to(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = browser(&app).await;
    let page = c.get("/auth/signup?return_to=/after").await.text();
    assert!(
        page.contains(r#"name="csrf_token""#) && page.contains(r#"action="/auth/signup?return_to=%2Fafter""#),
        "{page}"
    );
    let res = c.form("/auth/signup?return_to=/after", &[("email", "page@example.com"), ("password", PW)]).await;
    assert_eq!(res.status, 303, "{}", res.text());
    // A new account is offered a passkey first (behavior.md §1.4), then goes on to return_to.
    assert_eq!(res.location().as_deref(), Some("/auth/passkeys/setup?return_to=%2Fafter"));
    assert!(res.set_cookie("authara_access").is_some());
    // Signed in: login and signup pages send the visitor on.
    let res = c.get("/auth/login?return_to=/dashboard").await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/dashboard")));
    let res = c.get("/auth/signup").await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/")));

    let other = browser(&app).await;
    let res =
        other.form("/auth/login?return_to=/private?tab=2", &[("email", "PAGE@example.com"), ("password", PW)]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/private?tab=2")));
}

async fn unsafe_return_to_values_fall_back_to_the_default(engine: Engine) {
    let app = TestApp::start(engine).await;
    app.signed_in("rt@example.com", PW).await;
    for raw in [
        "%2F%2Fevil.com",
        "//evil.com",
        "/%5Cevil.com",
        "%2F%5Cevil.com",
        "https://evil.com",
        "https:%2F%2Fevil.com",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "%252F%252Fevil.com",
        "/%0D%0ASet-Cookie:%20x=1",
        "%09/evil.com",
        "%20/after",
    ] {
        let c = browser(&app).await;
        let res =
            c.form(&format!("/auth/login?return_to={raw}"), &[("email", "rt@example.com"), ("password", PW)]).await;
        assert_eq!(res.status, 303, "{raw}");
        assert_eq!(res.location().as_deref(), Some("/"), "return_to={raw} must fall back to the default");
    }
}

async fn failed_login_rerenders_the_form_with_the_email_kept(engine: Engine) {
    let app = TestApp::start(engine).await;
    app.signed_in("kept@example.com", PW).await;
    let c = browser(&app).await;
    let res = c.form("/auth/login", &[("email", "kept@example.com"), ("password", "wrong-password")]).await;
    assert_eq!(res.status, 422);
    let html = res.text();
    assert!(html.contains("Incorrect email or password."), "{html}");
    assert!(html.contains(r#"value="kept@example.com""#), "the typed email is kept");
    assert!(html.contains(r#"role="alert""#));
    assert!(res.set_cookie("authara_access").is_none());
    let res = c.form("/auth/login", &[("email", ""), ("password", "")]).await;
    assert_eq!(res.status, 400);
    let res = c.form("/auth/signup", &[("email", "kept@example.com"), ("password", PW)]).await;
    assert_eq!(res.status, 422);
    assert!(res.text().contains("already exists"));
    let res = c.form("/auth/signup", &[("email", "new@example.com"), ("password", "12345678")]).await;
    assert_eq!(res.status, 422);
    assert!(res.text().contains("common"));
    let res = c.form("/auth/signup?return_to=/admin", &[("email", "adm@example.com"), ("password", PW)]).await;
    assert_eq!(res.status, 403, "signup cannot target the admin audience");
}

async fn htmx_requests_get_hx_redirect_and_fragments(engine: Engine) {
    let app = TestApp::start(engine).await;
    app.signed_in("hx@example.com", PW).await;
    let c = browser(&app).await;
    let csrf = c.cookie("authara_csrf").unwrap();
    let body = format!("csrf_token={csrf}&email=hx%40example.com&password=wrong-password");
    let hx = [("content-type", "application/x-www-form-urlencoded"), ("hx-request", "true")];
    let res = c.send(Method::POST, "/auth/login?return_to=/x", Some(body.into_bytes()), &hx).await;
    assert_eq!(res.status, 422);
    assert!(!res.text().contains("<html"), "HTMX gets the form without the layout");
    let body = format!("csrf_token={csrf}&email=hx%40example.com&password={PW}");
    let res = c.send(Method::POST, "/auth/login?return_to=/x", Some(body.into_bytes()), &hx).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.headers["hx-redirect"], "/x");
    assert!(res.location().is_none());
    let res = c
        .send(
            Method::POST,
            "/auth/sessions/logout?return_to=/bye",
            Some(format!("csrf_token={csrf}").into_bytes()),
            &hx,
        )
        .await;
    assert_eq!((res.status, res.headers["hx-redirect"].to_str().unwrap()), (200, "/bye"));
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

on_both_engines!(
    signup_and_login_land_on_return_to,
    unsafe_return_to_values_fall_back_to_the_default,
    failed_login_rerenders_the_form_with_the_email_kept,
    htmx_requests_get_hx_redirect_and_fragments,
    browser_refresh_route_serves_fetch_and_forms,
    logout_form_clears_the_session_and_returns,
    expired_access_tokens_are_refreshed_transparently_on_pages,
);

#[tokio::test]
async fn static_assets_and_error_pages() {
    let app = TestApp::start_with(
        Engine::Sqlite,
        &[("AUTHARA_UI_PRIMARY_COLOR", "#0f766e"), ("AUTHARA_UI_PRODUCT_NAME", "Acme ID")],
    )
    .await;
    let c = app.client();
    let page = c.get("/auth/login").await;
    let csp = page.headers["content-security-policy"].to_str().unwrap().to_owned();
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    let html = page.text();
    assert!(html.contains("Acme ID"));
    assert!(!html.contains("style="), "no inline styles");
    // The one script is an external, hashed file: every <script> tag has a src and no body.
    let scripts: Vec<&str> = html.split("<script").skip(1).collect();
    assert_eq!(scripts.len(), 1, "{html}");
    assert!(scripts[0].starts_with(r#" src="/auth/static/authara."#) && scripts[0].contains("></script>"), "{html}");
    let js_href = scripts[0].split('"').nth(1).unwrap().to_owned();
    assert!(js_href.ends_with(".js"), "{js_href}");
    let js = c.get(&js_href).await;
    assert_eq!(js.status, 200);
    assert_eq!(js.headers["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(js.headers["cache-control"], "public, max-age=31536000, immutable");
    assert!(js.text().contains("X-CSRF-Token"));
    let href = html.split(r#"rel="stylesheet" href=""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
    assert!(href.starts_with("/auth/static/style.") && href.ends_with(".css"), "{href}");
    let css = c.get(&href).await;
    assert_eq!(css.status, 200);
    assert_eq!(css.headers["cache-control"], "public, max-age=31536000, immutable");
    assert!(css.text().contains("--accent: #0f766e"));
    assert_eq!(c.get("/auth/static/style.0000.css").await.status, 404);

    let res = c.send(Method::GET, "/auth/nowhere", None, &[("accept", "text/html")]).await;
    assert_eq!(res.status, 404);
    assert!(res.text().contains("Page not found") && res.text().contains(&href));
}
