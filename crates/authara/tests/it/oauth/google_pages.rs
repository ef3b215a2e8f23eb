//! Google on the hosted pages (behavior.md §7.2): the GIS markup with this browser's nonce, and
//! `POST /auth/oauth/google/callback` for `flow=login`, `link` and `proof`, answering
//! `200 + X-Authara-Redirect` on success and a redirect with a flash message otherwise.

use reqwest::Method;
use serde_json::json;

use super::app_with;
use super::provider::{Person, Provider};
use crate::app::{Res, TestApp, TestClient};
use crate::harness::{Engine, on_both_engines};

use crate::harness::PW;

fn redirect_header(res: &Res) -> String {
    assert_eq!(res.status, 200, "{}", res.text());
    res.headers.get("x-authara-redirect").expect("X-Authara-Redirect").to_str().unwrap().to_owned()
}

/// A page visit that leaves the CSRF and nonce cookies; returns the nonce the page embeds.
async fn page_nonce(c: &TestClient, path: &str) -> String {
    let page = c.get(path).await;
    assert_eq!(page.status, 200, "{path}: {}", page.text());
    let text = page.text();
    assert!(text.contains("data-callback=\"autharaGoogleCallback\""), "{path} embeds GIS");
    let at = text.find("data-nonce=\"").expect("data-nonce") + 12;
    let nonce = text[at..at + text[at..].find('"').unwrap()].to_owned();
    assert_eq!(c.cookie("authara_oauth_nonce").as_deref(), Some(nonce.as_str()));
    nonce
}

async fn callback(c: &TestClient, return_to: &str, fields: &[(&str, &str)]) -> Res {
    c.form(
        &format!("/auth/oauth/google/callback?return_to={}", authara::services::return_to::encode(return_to)),
        fields,
    )
    .await
}

async fn login_flow_signs_in_and_sends_existing_accounts_to_the_recovery_link(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[]).await;
    let c = app.client();
    let nonce = page_nonce(&c, "/auth/login?return_to=%2Fapp").await;
    let page = c.get("/auth/login?return_to=%2Fapp").await;
    let csp = page.headers["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self' https://accounts.google.com;") && !csp.contains("unsafe"), "{csp}");
    assert!(page.text().contains("data-google-flow=\"login\"") && page.text().contains("data-return-to=\"/app\""));

    // A token for another nonce, or no credential: back to login with a message, nobody created.
    let token = idp.id_token(json!({"nonce": "not-this-browser", "sub": "g-9", "email": "gina@example.com"}));
    let res = callback(&c, "/app", &[("credential", &token), ("nonce", &nonce), ("flow", "login")]).await;
    assert_eq!(res.status, 303);
    assert_eq!(res.location().as_deref(), Some("/auth/login?return_to=%2Fapp"));
    assert!(c.get("/auth/login").await.text().contains("could not be verified"));
    let res = callback(&c, "/app", &[("nonce", &nonce), ("flow", "login")]).await;
    assert_eq!(res.status, 303);
    assert_eq!(app.store.user_count().await.unwrap(), 0);

    let token = idp.id_token(json!({"nonce": nonce, "sub": "g-9", "email": "gina@example.com"}));
    let res = callback(&c, "/app", &[("credential", &token), ("nonce", &nonce), ("flow", "login")]).await;
    assert_eq!(redirect_header(&res), "/app");
    assert!(res.set_cookie("authara_access").is_some());
    assert!(res.set_cookie("authara_oauth_nonce").unwrap().contains("Max-Age=-1"));
    assert_eq!(c.get("/auth/api/v1/user").await.json()["email"], "gina@example.com");

    // An existing password account: the recovery link, not a session.
    app.signed_in("pat@example.com", PW).await;
    let d = app.client();
    let nonce = page_nonce(&d, "/auth/login").await;
    let token = idp.id_token(json!({"nonce": nonce, "sub": "g-pat", "email": "pat@example.com"}));
    let res = callback(&d, "/next", &[("credential", &token), ("nonce", &nonce), ("flow", "login")]).await;
    let to = redirect_header(&res);
    assert!(to.starts_with("/auth/provider-links/confirm?link_id=") && to.ends_with("&return_to=%2Fnext"), "{to}");
    assert!(res.set_cookie("authara_access").is_none());
    let page = d.get(&to).await;
    assert!(page.text().contains("Link Google to your account"), "{}", page.text());

    // An abandoned link is purged by the cleanup worker a day after it expired, not kept forever.
    app.clock.advance(std::time::Duration::from_secs(10 * 60 + 1));
    assert!(d.get(&to).await.location().is_some_and(|l| l.starts_with("/auth/login")), "expired");
    authara::worker::cleanup::run_once(&app.services).await.unwrap();
    assert_eq!(
        app.store.pending_link(link_uuid(&to)).await.unwrap().map(|l| l.purpose).as_deref(),
        Some("account_recovery_link")
    );
    app.clock.advance(std::time::Duration::from_secs(24 * 3600));
    authara::worker::cleanup::run_once(&app.services).await.unwrap();
    assert!(app.store.pending_link(link_uuid(&to)).await.unwrap().is_none(), "purged");
}

fn link_uuid(confirm: &str) -> uuid::Uuid {
    confirm.split("link_id=").nth(1).unwrap().split('&').next().unwrap().parse().unwrap()
}

async fn proof_links_with_an_identity_already_linked(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[]).await;
    // Quinn signs up with Google.
    let c = app.client();
    let nonce = page_nonce(&c, "/auth/signup").await;
    let token = idp.id_token(json!({"nonce": nonce, "sub": "g-quinn", "email": "quinn@example.com"}));
    redirect_header(&callback(&c, "/", &[("credential", &token), ("nonce", &nonce), ("flow", "login")]).await);

    // Later, the stub provider with the same email: a recovery link, proved with Google.
    idp.sign_in_as(Person::new("s-quinn", "quinn@example.com"));
    let d = app.client();
    let start = d.get("/auth/oauth/stub/start?return_to=%2Fwork").await;
    let back = crate::app::send_checked(crate::harness::client().get(start.location().unwrap())).await;
    let location = back.location().unwrap();
    let res = d.get(&location[location.find("/auth/oauth/").unwrap()..]).await;
    let confirm = res.location().unwrap();
    let nonce = page_nonce(&d, &confirm).await;
    let link_id = confirm.split("link_id=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    assert!(d.get(&confirm).await.text().contains("data-google-flow=\"proof\""));

    // A Google identity of someone else proves nothing.
    let stranger = idp.id_token(json!({"nonce": nonce, "sub": "g-other", "email": "other@example.com"}));
    let res = callback(
        &d,
        "/work",
        &[("credential", &stranger), ("nonce", &nonce), ("flow", "proof"), ("link_id", &link_id)],
    )
    .await;
    assert_eq!(res.status, 303, "{}", res.text());
    assert!(app.store.user_by_provider("stub", "s-quinn").await.unwrap().is_none());

    let nonce = page_nonce(&d, &confirm).await;
    let token = idp.id_token(json!({"nonce": nonce, "sub": "g-quinn", "email": "quinn@example.com"}));
    let res =
        callback(&d, "/x", &[("credential", &token), ("nonce", &nonce), ("flow", "proof"), ("link_id", &link_id)])
            .await;
    assert_eq!(redirect_header(&res), "/work", "the link's own return_to");
    let quinn = app.store.user_by_email(&crate::app::email("quinn@example.com")).await.unwrap().unwrap();
    assert_eq!(app.store.user_by_provider("stub", "s-quinn").await.unwrap().map(|u| u.id), Some(quinn.id));
    assert_eq!(d.get("/auth/api/v1/user").await.json()["email"], "quinn@example.com");
}

async fn link_flow_needs_the_session_that_started_it(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[]).await;
    let c = app.signed_in("rita@example.com", PW).await;
    let nonce = page_nonce(&c, "/auth/account").await;
    assert!(c.get("/auth/account").await.text().contains("data-google-flow=\"link\""));

    let anonymous = app.csrf_client().await;
    assert_eq!(anonymous.json(Method::POST, "/auth/providers/google/link/start", &json!({})).await.status, 401);
    *c.send_csrf.lock().unwrap() = false;
    assert_eq!(c.json(Method::POST, "/auth/providers/google/link/start", &json!({})).await.status, 403);
    *c.send_csrf.lock().unwrap() = true;
    let started = c.json(Method::POST, "/auth/providers/google/link/start", &json!({})).await;
    assert_eq!(started.status, 200, "{}", started.text());
    let link_id = started.json()["link_id"].as_str().unwrap().to_owned();

    // Another signed-in user cannot use Rita's pending link.
    let eve = app.signed_in("eve@example.com", PW).await;
    let eve_nonce = page_nonce(&eve, "/auth/account").await;
    let token = idp.id_token(json!({"nonce": eve_nonce, "sub": "g-eve", "email": "eve@example.com"}));
    let res =
        callback(&eve, "/", &[("credential", &token), ("nonce", &eve_nonce), ("flow", "link"), ("link_id", &link_id)])
            .await;
    assert_eq!(res.status, 303);
    assert!(res.location().unwrap().starts_with("/auth/account"));
    assert!(eve.get("/auth/account").await.text().contains("expired or was already used"));

    // Rita's Google account may have another email.
    let token = idp.id_token(json!({"nonce": nonce, "sub": "g-rita", "email": "rita.g@example.com"}));
    let res =
        callback(&c, "/", &[("credential", &token), ("nonce", &nonce), ("flow", "link"), ("link_id", &link_id)]).await;
    assert_eq!(redirect_header(&res), "/auth/account");
    assert!(c.get("/auth/account").await.text().contains("The sign-in method was linked"));
    let rita = app.store.user_by_email(&crate::app::email("rita@example.com")).await.unwrap().unwrap();
    assert_eq!(app.store.user_by_provider("google", "g-rita").await.unwrap().map(|u| u.id), Some(rita.id));

    // The pending link is spent.
    let nonce = "replay-nonce".to_owned();
    c.set_cookie("authara_oauth_nonce", &nonce);
    let token = idp.id_token(json!({"nonce": nonce, "sub": "g-rita-2", "email": "rita@example.com"}));
    let res =
        callback(&c, "/", &[("credential", &token), ("nonce", &nonce), ("flow", "link"), ("link_id", &link_id)]).await;
    assert_eq!(res.status, 303);
    assert!(app.store.user_by_provider("google", "g-rita-2").await.unwrap().is_none());
}

async fn the_page_callback_is_404_without_google(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.client();
    c.get("/auth/login").await;
    assert_eq!(callback(&c, "/", &[("credential", "x"), ("nonce", "y")]).await.status, 404);
    assert_eq!(c.form("/auth/oauth/google/callback", &[]).await.status, 404);
}

/// Google's script, frame and style origins are in the Content-Security-Policy of the pages that
/// show Google's button only: the login page and the account page that offers to link Google,
/// not the account page of a user who linked it already, not the admin console, not the rest.
async fn only_pages_with_googles_button_allow_googles_origins(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[]).await;
    let csp = |res: &Res| res.headers["content-security-policy"].to_str().unwrap().to_owned();
    let allows_google = |policy: &str| policy.contains("accounts.google.com") || policy.contains("gstatic.com");

    let c = app.client();
    let login = c.get("/auth/login").await;
    assert!(login.text().contains("data-callback=\"autharaGoogleCallback\""));
    assert!(allows_google(&csp(&login)), "the login page shows the button: {}", csp(&login));

    // Gil signs in with Google: his account page has nothing to link (Google is linked).
    let nonce = page_nonce(&c, "/auth/login").await;
    let token = idp.id_token(json!({"nonce": nonce, "sub": "g-gil", "email": "gil@example.com"}));
    redirect_header(&callback(&c, "/", &[("credential", &token), ("nonce", &nonce), ("flow", "login")]).await);
    let account = c.get("/auth/account").await;
    assert_eq!(account.status, 200);
    assert!(!account.text().contains("autharaGoogleCallback"), "no button: {}", account.text());
    assert!(!allows_google(&csp(&account)), "{}", csp(&account));

    // A password user's account page offers Google's button to link it.
    let p = app.signed_in("pia@example.com", PW).await;
    let account = p.get("/auth/account").await;
    assert!(account.text().contains("data-google-flow=\"link\""), "{}", account.text());
    assert!(allows_google(&csp(&account)), "{}", csp(&account));

    // The admin console never runs a third party's script.
    let password = authara::domain::NewPassword::parse(PW).unwrap();
    app.services.accounts().create_admin(&crate::app::email("root@example.com"), &password).await.unwrap();
    let admin = app.csrf_client().await;
    let res =
        admin.json(Method::POST, "/auth/api/v1/login", &json!({"email": "root@example.com", "password": PW})).await;
    assert_eq!(res.status, 200);
    for path in ["/auth/admin", "/auth/admin/users", "/auth/admin/webhooks"] {
        let page = admin.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.text());
        assert!(!allows_google(&csp(&page)), "{path}: {}", csp(&page));
    }
    for path in ["/auth/password-reset", "/auth/nowhere"] {
        let page = app.client().get(path).await;
        assert!(!allows_google(&csp(&page)), "{path}: {}", csp(&page));
    }
}

on_both_engines!(
    only_pages_with_googles_button_allow_googles_origins,
    login_flow_signs_in_and_sends_existing_accounts_to_the_recovery_link,
    proof_links_with_an_identity_already_linked,
    link_flow_needs_the_session_that_started_it,
    the_page_callback_is_404_without_google,
);
