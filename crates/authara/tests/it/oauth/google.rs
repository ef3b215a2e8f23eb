//! `GET /oauth/google/options` and `POST /oauth/google`: ID tokens checked against a local
//! issuer standing in for Google (`AUTHARA_OAUTH_GOOGLE_ISSUER`).

use reqwest::Method;
use serde_json::{Value, json};

use super::app_with;
use super::provider::{OTHER_KEY, Provider};
use crate::app::{TestApp, TestClient};
use crate::harness::{Engine, on_both_engines};

use crate::harness::PW;

/// A client holding a CSRF cookie and Google's nonce; returns the nonce.
async fn with_nonce(app: &TestApp) -> (TestClient, String) {
    let c = app.csrf_client().await;
    let res = c.get("/auth/api/v1/oauth/google/options").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let body = res.json();
    assert_eq!(body["client_id"], super::provider::CLIENT_ID);
    let cookie = res.set_cookie("authara_oauth_nonce").unwrap();
    assert!(
        cookie.contains("Path=/auth;") && cookie.contains("Max-Age=600") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let nonce = body["nonce"].as_str().unwrap().to_owned();
    assert_eq!(c.cookie("authara_oauth_nonce").as_deref(), Some(nonce.as_str()));
    (c, nonce)
}

async fn post(c: &TestClient, credential: &str, nonce: &str) -> crate::app::Res {
    c.json(Method::POST, "/auth/api/v1/oauth/google", &json!({"credential": credential, "nonce": nonce})).await
}

async fn first_login_creates_the_user_and_the_next_finds_them(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[]).await;
    let (c, nonce) = with_nonce(&app).await;
    // The options reuse the nonce the browser already holds.
    assert_eq!(c.get("/auth/api/v1/oauth/google/options").await.json()["nonce"], nonce.as_str());

    let token = idp.id_token(json!({"nonce": nonce, "sub": "g-1", "email": "Grace@Example.com"}));
    let res = post(&c, &token, &nonce).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["user"]["email"], "grace@example.com");
    assert!(res.set_cookie("authara_access").is_some() && res.set_cookie("authara_refresh").is_some());
    let clear = res.set_cookie("authara_oauth_nonce").unwrap();
    assert!(clear.contains("Max-Age=-1") && !clear.contains("Expires"), "{clear}");
    assert_eq!(c.get("/auth/api/v1/user").await.json()["email"], "grace@example.com");
    let user_id = res.json()["user"]["id"].clone();
    let kinds: Vec<String> = app
        .store
        .events_since(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .filter(|k| crate::webhooks::events::is_change(k))
        .collect();
    assert_eq!(kinds, ["organization.created", "organization.membership.created", "user.created"]);

    // Another browser, the same Google account (its email changed at Google): the same user.
    let (d, nonce) = with_nonce(&app).await;
    let token = idp.id_token(json!({"nonce": nonce, "sub": "g-1", "email": "grace.new@example.com"}));
    let res = post(&d, &token, &nonce).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["user"]["id"], user_id);
    assert_eq!(res.json()["user"]["email"], "grace@example.com", "the email is not updated from the provider");
    assert_eq!(app.store.user_count().await.unwrap(), 1);
    // The keys were fetched once for both logins.
    assert_eq!(idp.jwks_hits(), 1);
}

/// An ID token for `nonce` with `extra` claims over a good one's.
fn token_with(idp: &Provider, nonce: &str, extra: Value) -> String {
    let mut claims = json!({"nonce": nonce, "sub": "g-2", "email": "h@example.com"});
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    idp.id_token(claims)
}

async fn every_bad_id_token_is_401_and_creates_no_user(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[]).await;
    let (c, nonce) = with_nonce(&app).await;
    let ok = |extra: Value| token_with(&idp, &nonce, extra);
    let cases: Vec<(&str, String, String)> = vec![
        ("body nonce differs from the cookie", ok(json!({})), "other".to_owned()),
        ("token nonce differs", ok(json!({"nonce": "other"})), nonce.clone()),
        ("token without nonce", ok(json!({"nonce": null})), nonce.clone()),
        ("wrong audience", ok(json!({"aud": "someone-else"})), nonce.clone()),
        ("wrong issuer", ok(json!({"iss": "https://evil.example.com"})), nonce.clone()),
        ("expired", ok(json!({"exp": 1_000_000})), nonce.clone()),
        ("unverified email", ok(json!({"email_verified": false})), nonce.clone()),
        ("no email", ok(json!({"email": null})), nonce.clone()),
        (
            "forged signature",
            idp.id_token_with(json!({"nonce": nonce, "sub": "g-2"}), OTHER_KEY, super::provider::KID),
            nonce.clone(),
        ),
        ("garbage", "not.a.jwt".to_owned(), nonce.clone()),
    ];
    for (what, token, body_nonce) in cases {
        let res = post(&c, &token, &body_nonce).await;
        assert_eq!((res.status, res.error_code().as_str()), (401, "unauthorized"), "{what}: {}", res.text());
        assert!(res.set_cookie("authara_access").is_none(), "{what}");
    }
    assert_eq!(app.store.user_count().await.unwrap(), 0, "no refusal created a user");
}

/// Unknown key ids: refused, and the key set is fetched again at most once per floor, however
/// many forged kids arrive.
async fn forged_key_ids_fetch_the_key_set_at_most_once(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[]).await;
    let (c, nonce) = with_nonce(&app).await;
    let before = idp.jwks_hits();
    for i in 0..5 {
        let token = idp.id_token_with(json!({"nonce": nonce}), super::provider::KEY, &format!("forged-{i}"));
        let res = post(&c, &token, &nonce).await;
        assert_eq!(res.status, 401, "unknown kid: {}", res.text());
    }
    assert!(idp.jwks_hits() - before <= 1, "JWKS fetched {} times for 5 forged kids", idp.jwks_hits() - before);
}

/// A missing credential is a 400; a good token without the CSRF token is a 403 (CSRF first).
async fn a_missing_credential_is_400_and_csrf_is_checked_first(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[]).await;
    let (c, nonce) = with_nonce(&app).await;
    let res = c.json(Method::POST, "/auth/api/v1/oauth/google", &json!({"credential": "", "nonce": nonce})).await;
    assert_eq!((res.status, res.error_code().as_str()), (400, "invalid_request"));
    let res = c.json(Method::POST, "/auth/api/v1/oauth/google", &json!({"nonce": nonce})).await;
    assert_eq!(res.status, 400);
    *c.send_csrf.lock().unwrap() = false;
    assert_eq!(post(&c, &token_with(&idp, &nonce, json!({})), &nonce).await.status, 403);
    assert_eq!(app.store.user_count().await.unwrap(), 0, "no refusal created a user");
}

/// An existing password account with this email: 409, never linked by email.
async fn an_existing_password_account_is_409_and_never_linked_by_email(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[]).await;
    let (c, nonce) = with_nonce(&app).await;
    app.signed_in("h@example.com", PW).await;
    let res = post(&c, &token_with(&idp, &nonce, json!({})), &nonce).await;
    assert_eq!((res.status, res.error_code().as_str()), (409, "account_link_required"), "{}", res.text());
    assert_eq!(app.store.user_count().await.unwrap(), 1);
    assert!(app.store.user_by_provider("google", "g-2").await.unwrap().is_none());
}

async fn the_allowlist_refuses_new_google_users(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[("AUTHARA_ACCESS_POLICY_ALLOWLIST_ENABLED", "true")]).await;
    let (c, nonce) = with_nonce(&app).await;
    let res = post(&c, &idp.id_token(json!({"nonce": nonce, "email": "stranger@example.com"})), &nonce).await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "forbidden"), "{}", res.text());
    assert_eq!(app.store.user_count().await.unwrap(), 0);
}

async fn google_is_404_when_not_configured(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.csrf_client().await;
    assert_eq!(c.get("/auth/api/v1/oauth/google/options").await.status, 404);
    let res = post(&c, "x", "y").await;
    assert_eq!((res.status, res.error_code().as_str()), (404, "not_found"));
    // CSRF is checked before availability (behavior.md §1.2).
    *c.send_csrf.lock().unwrap() = false;
    assert_eq!(post(&c, "x", "y").await.status, 403);
    // No provider buttons, no nonce cookie on pages.
    let page = app.client().get("/auth/login").await;
    assert!(!page.text().contains("Continue with"));
    assert!(page.set_cookie("authara_oauth_nonce").is_none());
}

/// ID tokens are limited per IP as the password login is (ours: the reference does not limit
/// them), in a window of their own; the API and the pages' callback count together.
async fn google_sign_ins_are_rate_limited_per_ip(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "3")]).await;
    let (c, nonce) = with_nonce(&app).await;
    for _ in 0..2 {
        assert_eq!(post(&c, "not.a.jwt", &nonce).await.status, 401);
    }
    let page = app.client();
    page.get("/auth/login").await;
    let page_nonce = page.cookie("authara_oauth_nonce").unwrap();
    let token = idp.id_token(json!({"nonce": page_nonce, "sub": "g-8", "email": "eve@example.com"}));
    let res = page
        .form("/auth/oauth/google/callback", &[("credential", "not.a.jwt"), ("nonce", &page_nonce), ("flow", "login")])
        .await;
    assert_eq!(res.status, 303, "the third attempt, from a page: {}", res.text());
    // The fourth, with a valid token: refused before it is looked at.
    let good = idp.id_token(json!({"nonce": nonce, "sub": "g-8", "email": "eve@example.com"}));
    let res = post(&c, &good, &nonce).await;
    assert_eq!((res.status, res.error_code().as_str()), (429, "rate_limited"), "{}", res.text());
    assert!(res.headers.get("retry-after").is_some());
    let res = page
        .form("/auth/oauth/google/callback", &[("credential", &token), ("nonce", &page_nonce), ("flow", "login")])
        .await;
    assert_eq!(res.status, 303, "the page's callback is refused too: {}", res.text());
    assert!(res.headers.get("x-authara-redirect").is_none() && res.set_cookie("authara_access").is_none());
    assert!(page.get("/auth/login").await.text().contains("Too many"), "the login page says why");
    assert_eq!(app.store.user_count().await.unwrap(), 0, "nobody signed up");
    // The password login keeps its own window.
    let login = json!({"email": "eve@example.com", "password": PW});
    assert_eq!(c.json(Method::POST, "/auth/api/v1/login", &login).await.status, 401);
}

on_both_engines!(
    google_sign_ins_are_rate_limited_per_ip,
    first_login_creates_the_user_and_the_next_finds_them,
    every_bad_id_token_is_401_and_creates_no_user,
    forged_key_ids_fetch_the_key_set_at_most_once,
    a_missing_credential_is_400_and_csrf_is_checked_first,
    an_existing_password_account_is_409_and_never_linked_by_email,
    the_allowlist_refuses_new_google_users,
    google_is_404_when_not_configured,
);
