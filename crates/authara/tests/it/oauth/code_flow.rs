//! The authorization-code flow against the local OpenID provider (`stub`): sign-up, sign-in,
//! the recovery link for an existing account, link and unlink from the account page, and every
//! way a provider's answer can be bad, each ending on the login page with a readable message
//! and no half-created user.

use authara::services::return_to::encode;
use reqwest::Method;

use super::app_with;
use super::provider::{Person, Provider, TokenMode};
use crate::app::{Res, TestApp, TestClient};
use crate::harness::{Engine, on_both_engines};

use crate::harness::PW;

/// Starts a flow on `c` and follows the provider's answer; returns (the provider's redirect
/// back to our callback as a path, the callback's response).
pub async fn via_provider(c: &TestClient, start: Res) -> (String, Res) {
    assert_eq!(start.status, 303, "{}", start.text());
    let authorize = start.location().unwrap();
    let state_cookie = start.set_cookie("authara_oauth_state").unwrap();
    assert!(
        state_cookie.contains("Path=/auth/oauth;")
            && state_cookie.contains("HttpOnly")
            && state_cookie.contains("SameSite=Lax"),
        "{state_cookie}"
    );
    let back = crate::app::send_checked(crate::harness::client().get(&authorize)).await;
    assert_eq!(back.status, 303);
    let location = back.location().unwrap();
    let path = location[location.find("/auth/oauth/").unwrap()..].to_owned();
    let res = c.get(&path).await;
    (path, res)
}

async fn login(c: &TestClient, return_to: &str) -> (String, Res) {
    let start = c.get(&format!("/auth/oauth/stub/start?return_to={}", encode(return_to))).await;
    via_provider(c, start).await
}

/// The message the login page shows after a failed flow (the flash is read once).
async fn login_page_error(c: &TestClient, res: &Res) -> String {
    assert_eq!(res.status, 303, "{}", res.text());
    assert!(res.location().unwrap().starts_with("/auth/login"), "{:?}", res.location());
    let page = c.get(&res.location().unwrap()).await;
    assert_eq!(page.status, 200, "{:?} -> {:?} {:?}", res.location(), page.location(), c.jar.lock().unwrap().keys());
    let text = page.text();
    let start = text.find("role=\"alert\">").map(|i| i + 13).expect("the login page shows an error");
    text[start..start + text[start..].find('<').unwrap()].to_owned()
}

async fn first_login_signs_up_and_the_next_signs_in(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[]).await;
    let page = app.client().get("/auth/login?return_to=%2Fdashboard").await;
    assert!(page.text().contains("href=\"/auth/oauth/stub/start?return_to=%2Fdashboard\""), "a button per provider");
    assert!(page.text().contains("Continue with Stub ID"));

    idp.sign_in_as(Person::new("s-1", "Sam@Example.com"));
    let c = app.client();
    let (_, res) = login(&c, "/dashboard").await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/dashboard")), "{}", res.text());
    assert!(c.cookie("authara_oauth_state").is_none(), "the state cookie is cleared");
    let me = c.get("/auth/api/v1/user").await;
    assert_eq!(me.json()["email"], "sam@example.com");
    assert_eq!(app.store.user_count().await.unwrap(), 1);

    let d = app.client();
    let (_, res) = login(&d, "/").await;
    assert_eq!(res.status, 303);
    assert_eq!(d.get("/auth/api/v1/user").await.json()["id"], me.json()["id"]);
    assert_eq!(app.store.user_count().await.unwrap(), 1);

    // A JSON client starts the same flow and sends the browser to the provider itself.
    let e = app.client();
    let res =
        e.send(Method::GET, "/auth/oauth/stub/start?return_to=%2Fspa", None, &[("accept", "application/json")]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let url = res.json()["authorization_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!("{}/authorize?", idp.env()[2].1)), "{url}");
    assert!(res.set_cookie("authara_oauth_state").is_some());
    let back = crate::app::send_checked(crate::harness::client().get(&url)).await;
    let location = back.location().unwrap();
    let res = e.get(&location[location.find("/auth/oauth/").unwrap()..]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/spa")));
    assert_eq!(e.get("/auth/api/v1/user").await.json()["id"], me.json()["id"]);
    let res = e.send(Method::GET, "/auth/oauth/nope/start", None, &[("accept", "application/json")]).await;
    assert_eq!((res.status, res.error_code().as_str()), (404, "not_found"));
}

async fn an_existing_account_proves_ownership_with_its_password(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[]).await;
    app.signed_in("owner@example.com", PW).await;
    idp.sign_in_as(Person::new("s-owner", "owner@example.com"));
    let c = app.client();
    let (_, res) = login(&c, "/projects").await;
    let confirm = res.location().unwrap();
    assert!(confirm.starts_with("/auth/provider-links/confirm?link_id="), "{confirm}");
    assert!(c.cookie("authara_access").is_none(), "not signed in on the strength of the email");
    let page = c.get(&confirm).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("owner@example.com") && page.text().contains("Link Stub ID"), "{}", page.text());
    let link_id = confirm.split("link_id=").nth(1).unwrap().split('&').next().unwrap().to_owned();

    let wrong =
        c.form("/auth/provider-links/confirm", &[("link_id", &link_id), ("password", "not-the-password")]).await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.text().contains("Incorrect password"));
    assert!(app.store.user_by_provider("stub", "s-owner").await.unwrap().is_none());

    let ok = c.form("/auth/provider-links/confirm", &[("link_id", &link_id), ("password", PW)]).await;
    assert_eq!((ok.status, ok.location().as_deref()), (303, Some("/projects")), "{}", ok.text());
    assert_eq!(c.get("/auth/api/v1/user").await.json()["email"], "owner@example.com");
    // Signed in now: the link page sends the browser on to return_to.
    assert_eq!(c.get(&confirm).await.location().as_deref(), Some("/projects"));
    assert_eq!(app.store.user_count().await.unwrap(), 1);

    // The link is spent.
    let again = app.client();
    again.get("/auth/login").await;
    let res = again.form("/auth/provider-links/confirm", &[("link_id", &link_id), ("password", PW)]).await;
    assert!(login_page_error(&again, &res).await.contains("expired or was already used"));
    assert_eq!(again.get(&confirm).await.status, 303);

    // From now on the provider signs the owner straight in.
    let d = app.client();
    let (_, res) = login(&d, "/").await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/")));
    assert_eq!(d.get("/auth/api/v1/user").await.json()["email"], "owner@example.com");
}

/// The provider reports an error (the user cancelled), or sends no code.
async fn a_cancelled_or_codeless_callback_ends_on_the_login_page(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[]).await;
    idp.sign_in_as(Person::new("s-bad", "bad@example.com"));
    let c = app.client();
    let start = c.get("/auth/oauth/stub/start").await;
    let state = start.location().unwrap().split("state=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let res = c.get(&format!("/auth/oauth/stub/callback?error=access_denied&state={state}")).await;
    assert!(login_page_error(&c, &res).await.contains("cancelled"));

    let start = c.get("/auth/oauth/stub/start").await;
    let state = start.location().unwrap().split("state=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let res = c.get(&format!("/auth/oauth/stub/callback?state={state}")).await;
    assert!(login_page_error(&c, &res).await.contains("try again"));
    assert_eq!(app.store.user_count().await.unwrap(), 0);
}

/// A replayed state (the first callback signs in, the same URL again is refused) and a forged
/// one (a callback with a state this browser did not start).
async fn a_replayed_or_forged_state_ends_on_the_login_page(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[]).await;
    idp.sign_in_as(Person::new("s-bad", "bad@example.com"));
    let other = app.client();
    let (path, res) = login(&other, "/").await;
    assert_eq!(res.status, 303);
    let replay = app.client();
    replay.set_cookie("authara_oauth_state", path.split("state=").nth(1).unwrap());
    let res = replay.get(&path).await;
    assert!(login_page_error(&replay, &res).await.contains("already used"));
    let app = app_with_same(app, &idp).await;

    let c = app.client();
    let victim = app.client();
    let start = victim.get("/auth/oauth/stub/start").await;
    let back = crate::app::send_checked(crate::harness::client().get(start.location().unwrap())).await;
    let location = back.location().unwrap();
    let path = &location[location.find("/auth/oauth/").unwrap()..];
    let res = c.get(path).await;
    assert!(login_page_error(&c, &res).await.contains("try again"), "a callback from another browser is refused");
    assert_eq!(idp.token_hits(), 1, "only the one good callback reached the token endpoint");
}

/// Each bad answer of the token endpoint, and an unverified email, end on the login page with
/// their own message and leave no user behind.
async fn bad_token_answers_end_on_the_login_page(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[]).await;
    let c = app.client();
    idp.sign_in_as(Person::new("s-nonce", "nonce@example.com"));
    for (mode, expected, what) in [
        (TokenMode::WrongNonce, "could not be verified", "a token whose nonce is not the flow's"),
        (TokenMode::Down, "could not reach", "the token endpoint down"),
        (TokenMode::Slow, "could not reach", "the token endpoint slower than our timeout"),
        (TokenMode::Refuse, "could not reach", "the token endpoint refuses the code"),
        (TokenMode::Moved, "could not reach", "token requests follow no redirects"),
    ] {
        idp.set_mode(mode);
        let started = std::time::Instant::now();
        let (_, res) = login(&c, "/").await;
        assert!(started.elapsed() < std::time::Duration::from_secs(14), "{what}: the provider timeout bounds the wait");
        assert!(login_page_error(&c, &res).await.contains(expected), "{what}");
    }
    idp.set_mode(TokenMode::Normal);
    idp.sign_in_as(Person { verified: false, ..Person::new("s-unv", "unverified@example.com") });
    let (_, res) = login(&c, "/").await;
    assert!(login_page_error(&c, &res).await.contains("not verified"));

    assert_eq!(app.store.user_count().await.unwrap(), 0, "no failure left a user behind");
    assert!(c.cookie("authara_access").is_none());
}

async fn an_unknown_provider_is_a_readable_refusal(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[]).await;
    let c = app.client();
    let res = c.get("/auth/oauth/nope/start").await;
    assert!(login_page_error(&c, &res).await.contains("not available"));
}

/// The same app (database and all), started again: a fresh instance finishes what another
/// began as well as the first would.
async fn app_with_same(app: TestApp, idp: &Provider) -> TestApp {
    let (db, clock) = app.stop().await;
    let env = idp.env();
    TestApp::start_on(db, &crate::app::settings(&env, &[]), Some(clock)).await
}

async fn a_signed_in_user_links_and_unlinks(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[]).await;
    let c = app.signed_in("linker@example.com", PW).await;
    let account = c.get("/auth/account").await;
    assert!(account.text().contains("id=\"linked-providers-section\""));
    assert!(account.text().contains("action=\"/auth/oauth/stub/link\""));

    // The provider account's email need not be the account's.
    idp.sign_in_as(Person::new("s-link", "elsewhere@example.com"));
    let start = c.form("/auth/oauth/stub/link", &[]).await;
    let (_, res) = via_provider(&c, start).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/auth/account")), "{}", res.text());
    let account = c.get("/auth/account").await;
    assert!(account.text().contains("The sign-in method was linked"), "{}", account.text());
    assert!(account.text().contains("action=\"/auth/providers/stub/unlink\""));
    let user = app.store.user_by_email(&crate::app::email("linker@example.com")).await.unwrap().unwrap();
    assert_eq!(app.store.user_by_provider("stub", "s-link").await.unwrap().map(|u| u.id), Some(user.id));

    // Another user cannot link the same identity.
    let other = app.signed_in("other@example.com", PW).await;
    let start = other.form("/auth/oauth/stub/link", &[]).await;
    let (_, res) = via_provider(&other, start).await;
    assert_eq!(res.location().as_deref(), Some("/auth/account"));
    assert!(other.get("/auth/account").await.text().contains("already linked to another user"));

    // Unlink (a recent sign-in is privileged enough).
    let res = c.form("/auth/providers/stub/unlink", &[]).await;
    assert_eq!(res.status, 303, "{}", res.text());
    assert!(app.store.user_by_provider("stub", "s-link").await.unwrap().is_none());
    let filter = authara::store::audit::AuditFilter { actor: None, target: Some(user.id), action: None };
    let actions: Vec<String> =
        app.store.audit_page(&filter, 10, 0).await.unwrap().into_iter().map(|a| a.action.as_str().to_owned()).collect();
    assert_eq!(actions[0], "user.provider_unlinked", "{actions:?}");
    assert!(actions.contains(&"user.provider_linked".to_owned()), "{actions:?}");

    // A provider-only account cannot remove its last way to sign in.
    idp.sign_in_as(Person::new("s-only", "only@example.com"));
    let d = app.client();
    login(&d, "/").await;
    d.get("/auth/account").await;
    let res = d.form("/auth/providers/stub/unlink", &[]).await;
    assert!(d.back_on_account(&res).await.contains("only way to sign in"));
    assert!(app.store.user_by_provider("stub", "s-only").await.unwrap().is_some());

    // An old session needs the current password to link.
    app.clock.advance(std::time::Duration::from_secs(3600));
    let start = c.form("/auth/oauth/stub/link", &[]).await;
    assert!(c.back_on_account(&start).await.contains("enter your current password"));
    let start = c.form("/auth/oauth/stub/link", &[("current_password", PW)]).await;
    assert_eq!(start.status, 303);
}

/// Answers a provider must not give are refused, and no user is created: userinfo about
/// another subject than the ID token's, an ID token signed with a symmetric algorithm (HS256
/// under the client secret: only asymmetric algorithms are accepted), and a discovery document
/// naming another issuer than the configured one.
async fn answers_a_provider_must_not_give_are_refused(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[]).await;
    idp.sign_in_as(Person::new("s-odd", "odd@example.com"));
    let c = app.client();
    for mode in [TokenMode::UserinfoOtherSubject, TokenMode::Hs256] {
        idp.set_mode(mode);
        let (_, res) = login(&c, "/").await;
        assert!(login_page_error(&c, &res).await.contains("could not be verified"), "{mode:?}");
    }
    idp.set_mode(TokenMode::Normal);
    let (_, res) = login(&c, "/").await;
    assert_eq!(res.location().as_deref(), Some("/"), "the same provider, answering properly, signs in");
    assert_eq!(app.store.user_count().await.unwrap(), 1);

    // The discovery document is read once per process: another app meets the other issuer.
    idp.set_mode(TokenMode::OtherIssuer);
    let other = app_with(engine, &idp, &[]).await;
    let d = other.client();
    let start = d.get("/auth/oauth/stub/start").await;
    assert!(login_page_error(&d, &start).await.contains("could not reach"), "no flow starts");
    assert_eq!(idp.token_hits(), 3, "and none reached the token endpoint");
    assert_eq!(other.store.user_count().await.unwrap(), 0);
}

/// The provider's answer for a flow started on `c`, as a callback path, not yet followed.
async fn callback_path(c: &TestClient, start_path: &str) -> String {
    let start = c.get(start_path).await;
    let back = crate::app::send_checked(crate::harness::client().get(start.location().unwrap())).await;
    let location = back.location().unwrap();
    location[location.find("/auth/oauth/").unwrap()..].to_owned()
}

/// One flow's callback twice at once (a double click, a replay racing the browser) signs in
/// once and reaches the token endpoint once; a flow older than ten minutes is refused at its
/// callback before the token endpoint; one address starts at most 30 flows a minute.
async fn a_flow_finishes_once_expires_and_starts_are_limited(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[]).await;
    idp.sign_in_as(Person::new("s-edge", "edge@example.com"));
    let c = app.client();
    let path = callback_path(&c, "/auth/oauth/stub/start?return_to=%2Fhere").await;
    let (a, b) = tokio::join!(c.get(&path), c.get(&path));
    let signed_in = [&a, &b].iter().filter(|r| r.location().as_deref() == Some("/here")).count();
    assert_eq!(signed_in, 1, "{:?} {:?}", a.location(), b.location());
    assert_eq!((app.store.user_count().await.unwrap(), idp.token_hits()), (1, 1));

    let d = app.client();
    let path = callback_path(&d, "/auth/oauth/stub/start").await;
    app.clock.advance(std::time::Duration::from_secs(10 * 60 + 1));
    let res = d.get(&path).await;
    assert!(login_page_error(&d, &res).await.contains("try again"));
    assert_eq!(idp.token_hits(), 1, "an expired flow never reaches the token endpoint");
    assert!(d.cookie("authara_access").is_none());

    let e = app.client();
    for i in 0..30 {
        assert_eq!(e.get("/auth/oauth/stub/start").await.status, 303, "start {i}");
    }
    let res = e.get("/auth/oauth/stub/start").await;
    assert!(login_page_error(&e, &res).await.contains("Too many sign-in attempts"));
    app.clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(e.get("/auth/oauth/stub/start").await.status, 303, "the next minute starts again");
}

/// Unlinking from a stale session (no sign-in for sixteen minutes) takes the current password:
/// a stolen, idle session cannot strip a sign-in method.
async fn unlinking_from_a_stale_session_takes_the_password(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[]).await;
    let c = app.signed_in("stale@example.com", PW).await;
    idp.sign_in_as(Person::new("s-stale", "stale@example.com"));
    let start = c.form("/auth/oauth/stub/link", &[]).await;
    let (_, res) = via_provider(&c, start).await;
    assert_eq!(res.location().as_deref(), Some("/auth/account"));
    assert!(app.store.user_by_provider("stub", "s-stale").await.unwrap().is_some());

    app.clock.advance(std::time::Duration::from_secs(14 * 60));
    assert_eq!(c.post("/auth/api/v1/sessions/refresh").await.status, 200);
    app.clock.advance(std::time::Duration::from_secs(2 * 60));
    let res = c.form("/auth/providers/stub/unlink", &[]).await;
    assert!(c.back_on_account(&res).await.contains("enter your current password"));
    assert!(app.store.user_by_provider("stub", "s-stale").await.unwrap().is_some(), "nothing unlinked");
    let res = c.form("/auth/providers/stub/unlink", &[("current_password", "not-the-password")]).await;
    assert!(c.back_on_account(&res).await.contains("Incorrect password."), "a wrong password is said so");
    assert!(app.store.user_by_provider("stub", "s-stale").await.unwrap().is_some());
    let res = c.form("/auth/providers/stub/unlink", &[("current_password", PW)]).await;
    assert_eq!(res.status, 303, "{}", res.text());
    assert!(app.store.user_by_provider("stub", "s-stale").await.unwrap().is_none());
}

async fn github_signs_in_with_the_verified_primary_email(engine: Engine) {
    let idp = Provider::start().await;
    let app = TestApp::start_with_env(engine, &idp.github_env(), &[]).await;
    assert!(app.client().get("/auth/signup").await.text().contains("Continue with GitHub"));

    idp.sign_in_as(Person::new("583231", "Octo@Example.com"));
    let c = app.client();
    let start = c.get("/auth/oauth/github/start?return_to=%2Frepos").await;
    assert!(start.location().unwrap().starts_with(&format!("{}/login/oauth/authorize?", idp.github_env()[3].1)));
    assert!(!start.location().unwrap().contains("nonce="), "GitHub is not OpenID");
    let (_, res) = via_provider(&c, start).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/repos")), "{}", res.text());
    assert_eq!(c.get("/auth/api/v1/user").await.json()["email"], "octo@example.com");
    let octo = app.store.user_by_provider("github", "583231").await.unwrap().unwrap();
    assert_eq!(octo.email, "octo@example.com");

    // The admin console lists the user's sign-in methods.
    let password = authara::domain::NewPassword::parse(PW).unwrap();
    app.services.accounts().create_admin(&crate::app::email("root@example.com"), &password).await.unwrap();
    let root = app.csrf_client().await;
    let res = root
        .json(Method::POST, "/auth/api/v1/login", &serde_json::json!({"email": "root@example.com", "password": PW}))
        .await;
    assert_eq!(res.status, 200);
    let detail = root.get(&format!("/auth/admin/users/{}", octo.id)).await;
    assert!(detail.text().contains("<span class=\"badge\">github</span>"), "{}", detail.text());

    // An unverified primary address signs nobody in (the verified secondary one does not count).
    idp.sign_in_as(Person { verified: false, ..Person::new("99", "new@example.com") });
    let d = app.client();
    let start = d.get("/auth/oauth/github/start").await;
    let (_, res) = via_provider(&d, start).await;
    assert!(login_page_error(&d, &res).await.contains("not verified"));
    assert_eq!(app.store.user_count().await.unwrap(), 2, "octo and root only");
}

/// An app behind forward-auth on another host (`AUTHARA_ALLOWED_RETURN_HOSTS`): a provider
/// sign-in started from its login redirect lands back on it; a host not listed never does.
async fn a_provider_sign_in_returns_to_an_allowed_app_host(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_with(engine, &idp, &[("AUTHARA_ALLOWED_RETURN_HOSTS", "app.example.com")]).await;
    idp.sign_in_as(Person::new("s-far", "far@example.com"));
    let c = app.client();
    let (_, res) = login(&c, "http://app.example.com/board?range=7d").await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("http://app.example.com/board?range=7d")));
    let d = app.client();
    let (_, res) = login(&d, "http://evil.example.net/board").await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/")), "not listed: the default");
    assert_eq!(d.get("/auth/api/v1/user").await.status, 200);
}

on_both_engines!(
    a_provider_sign_in_returns_to_an_allowed_app_host,
    answers_a_provider_must_not_give_are_refused,
    a_flow_finishes_once_expires_and_starts_are_limited,
    unlinking_from_a_stale_session_takes_the_password,
    github_signs_in_with_the_verified_primary_email,
    first_login_signs_up_and_the_next_signs_in,
    an_existing_account_proves_ownership_with_its_password,
    a_cancelled_or_codeless_callback_ends_on_the_login_page,
    a_replayed_or_forged_state_ends_on_the_login_page,
    bad_token_answers_end_on_the_login_page,
    an_unknown_provider_is_a_readable_refusal,
    a_signed_in_user_links_and_unlinks,
);
