//! The hosted login and signup pages: return_to, failed logins, HTMX, static assets and error
//! pages, and the account page's actions.

use reqwest::Method;

use crate::app::TestApp;
use crate::app::browser;
use crate::harness::PW;
use crate::harness::{Engine, on_both_engines};

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

// Security review finding: `return_to` with dot segments led off the site.
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

async fn account_actions(engine: Engine) {
    let app = TestApp::start(engine).await;
    let a = app.signed_in("acts@example.com", PW).await;
    let b = app.signed_in("other@example.com", PW).await;
    let other_username =
        app.store.user_by_email(&crate::app::email("other@example.com")).await.unwrap().unwrap().username;

    let res = a.form("/auth/user/username", &[("username", "ada_lovelace")]).await;
    let page = a.back_on_account(&res).await;
    assert!(page.contains("Your username was changed.") && page.contains("ada_lovelace"));
    let res = a.form("/auth/user/username", &[("username", &other_username)]).await;
    assert!(a.back_on_account(&res).await.contains("taken"));
    let res = a.form("/auth/user/username", &[("username", "no spaces")]).await;
    assert!(a.back_on_account(&res).await.contains("Usernames are 3 to 30"));

    // Password: wrong current refused; right one changes it and keeps this device signed in.
    let res = a
        .form(
            "/auth/providers/password/change",
            &[("current_password", "nope-nope-nope"), ("new_password", "copper-lantern-meadow")],
        )
        .await;
    assert!(a.back_on_account(&res).await.contains("incorrect"));
    let res = a
        .form("/auth/providers/password/change", &[("current_password", PW), ("new_password", "copper-lantern-meadow")])
        .await;
    assert!(a.back_on_account(&res).await.contains("Your password was changed."), "this device stays signed in");

    // Delete needs the email typed exactly; then everything is gone.
    let res = a.form("/auth/user/delete", &[("confirm", "wrong@example.com")]).await;
    assert!(a.back_on_account(&res).await.contains("Type your email exactly"));
    let res = a.form("/auth/user/delete", &[("confirm", "ACTS@example.com")]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/auth/successful-deletion")));
    assert!(res.set_cookie("authara_access").unwrap().contains("Max-Age=0"));
    assert!(app.store.user_by_email(&crate::app::email("acts@example.com")).await.unwrap().is_none());
    assert_eq!(a.get("/auth/successful-deletion").await.status, 200);
    assert_eq!(b.get("/auth/api/v1/user").await.status, 200, "other accounts are untouched");
}

on_both_engines!(
    signup_and_login_land_on_return_to,
    unsafe_return_to_values_fall_back_to_the_default,
    failed_login_rerenders_the_form_with_the_email_kept,
    htmx_requests_get_hx_redirect_and_fragments,
    return_to_with_dot_segments_stays_on_the_site,
    account_actions,
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
