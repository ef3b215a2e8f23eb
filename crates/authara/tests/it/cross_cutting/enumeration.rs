//! README: "unknown emails cost a full password verification (no timing oracle)" and "unknown
//! or taken addresses get a challenge that looks identical but sends nothing". The cost is
//! proven by counting verifications, not by a wall clock; the look by comparing WHOLE answers
//! (status, body, cookies), with only the random challenge id masked.
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::app::{Res, TestApp, TestClient};
use crate::harness::PW;
use crate::harness::{Engine, on_both_engines};

const NEW_PW: &str = "copper-lantern-meadow";
const KNOWN: &str = "known@example.com";
const UNKNOWN: &str = "nobody@example.com";

async fn login(c: &TestClient, email: &str, password: &str) -> Res {
    c.json(Method::POST, "/auth/api/v1/login", &json!({"email": email, "password": password})).await
}

/// What a client can see of an answer: status, content type, the cookies it sets, and the body
/// with every occurrence of the challenge id `id` masked.
fn seen(res: &Res, id: Option<&str>) -> (u16, Option<String>, Vec<String>, String) {
    let cookie_names = res.set_cookies().iter().map(|c| c.split('=').next().unwrap().to_owned()).collect();
    let content_type = res.headers.get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let body = match id {
        Some(id) => res.text().replace(id, "<challenge-id>"),
        None => res.text(),
    };
    (res.status, content_type, cookie_names, body)
}

fn challenge_id(res: &Res) -> String {
    res.json()["challenge_id"].as_str().unwrap_or_else(|| panic!("no challenge_id: {}", res.text())).to_owned()
}

/// The `challenge_id` hidden field of a code page.
fn hidden_challenge_id(html: &str) -> String {
    html.split(r#"name="challenge_id" value=""#)
        .nth(1)
        .unwrap_or_else(|| panic!("no challenge_id field: {html}"))
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

async fn an_unknown_email_costs_exactly_one_password_verification(engine: Engine) {
    let app = TestApp::start(engine).await;
    app.signed_in(KNOWN, PW).await;
    let c = app.csrf_client().await;

    let before = app.services.password_verifications();
    assert_eq!(login(&c, UNKNOWN, "wrong-password-1").await.status, 401);
    assert_eq!(app.services.password_verifications(), before + 1, "unknown email: one (dummy) verification");

    let before = app.services.password_verifications();
    assert_eq!(login(&c, KNOWN, "wrong-password-1").await.status, 401);
    assert_eq!(app.services.password_verifications(), before + 1, "wrong password: one real verification");
}

async fn login_answers_identically_for_an_unknown_email_and_a_wrong_password(engine: Engine) {
    let app = TestApp::start(engine).await;
    app.signed_in(KNOWN, PW).await;
    let c = app.csrf_client().await;
    let unknown = login(&c, UNKNOWN, "wrong-password-1").await;
    let wrong = login(&c, KNOWN, "wrong-password-1").await;
    assert_eq!(unknown.status, 401);
    assert_eq!(seen(&unknown, None), seen(&wrong, None), "same status, content type, cookies and body");
    assert_eq!(unknown.body, wrong.body, "byte for byte");
}

async fn password_reset_start_answers_identically_for_known_and_unknown_emails(engine: Engine) {
    let app = TestApp::start(engine).await;
    app.signed_in(KNOWN, PW).await;
    let c = app.csrf_client().await;
    let start = |email: &'static str| {
        let c = c.clone();
        async move {
            c.json(
                Method::POST,
                "/auth/api/v1/password-reset/challenges",
                &json!({"email": email, "new_password": NEW_PW}),
            )
            .await
        }
    };
    let known = start(KNOWN).await;
    let unknown = start(UNKNOWN).await;
    assert_eq!(known.status, 202, "{}", known.text());
    let (k, u) = (challenge_id(&known), challenge_id(&unknown));
    assert_ne!(k, u);
    assert_eq!(seen(&known, Some(&k)), seen(&unknown, Some(&u)));
}

async fn signup_challenge_start_answers_identically_for_taken_and_new_emails(engine: Engine) {
    // The taken account is made while direct signup is on; then challenges are switched on.
    let app = TestApp::start(engine).await;
    app.signed_in(KNOWN, PW).await;
    let (db, clock) = app.stop().await;
    let app = TestApp::start_on(db, &[("AUTHARA_CHALLENGE_ENABLED", "true")], Some(clock)).await;
    let c = app.csrf_client().await;
    let start = |email: &'static str| {
        let c = c.clone();
        async move { c.json(Method::POST, "/auth/api/v1/signup/challenges", &json!({"email": email, "password": PW})).await }
    };
    let taken = start(KNOWN).await;
    let new = start(UNKNOWN).await;
    assert_eq!(taken.status, 202, "{}", taken.text());
    let (t, n) = (challenge_id(&taken), challenge_id(&new));
    assert_eq!(seen(&taken, Some(&t)), seen(&new, Some(&n)));
    assert_eq!(app.services.mail().counts().await.unwrap().values().sum::<i64>(), 1, "only the new email gets mail");
}

async fn hosted_password_reset_page_is_identical_for_known_and_unknown_emails(engine: Engine) {
    let app = TestApp::start(engine).await;
    app.signed_in(KNOWN, PW).await;
    let c = app.client();
    assert_eq!(c.get("/auth/password-reset").await.status, 200);
    let known = c.form("/auth/password-reset", &[("email", KNOWN), ("new_password", NEW_PW)]).await;
    let unknown = c.form("/auth/password-reset", &[("email", UNKNOWN), ("new_password", NEW_PW)]).await;
    assert_eq!(known.status, 200, "{}", known.text());
    let (k, u) = (hidden_challenge_id(&known.text()), hidden_challenge_id(&unknown.text()));
    assert_ne!(k, u);
    // One browser, so one CSRF token: the pages may differ in the challenge id alone.
    let (mut ks, mut us) = (seen(&known, Some(&k)), seen(&unknown, Some(&u)));
    let csrf = c.cookie("authara_csrf").unwrap();
    ks.3 = ks.3.replace(&csrf, "<csrf>");
    us.3 = us.3.replace(&csrf, "<csrf>");
    assert_eq!(ks, us);
    assert!(!ks.3.contains(KNOWN) && !us.3.contains(UNKNOWN), "the address is not echoed");
}

// Security review finding: the expired code page told real challenges from decoys.
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

on_both_engines!(
    an_unknown_email_costs_exactly_one_password_verification,
    login_answers_identically_for_an_unknown_email_and_a_wrong_password,
    password_reset_start_answers_identically_for_known_and_unknown_emails,
    signup_challenge_start_answers_identically_for_taken_and_new_emails,
    hosted_password_reset_page_is_identical_for_known_and_unknown_emails,
    the_code_page_does_not_tell_real_challenges_from_decoys,
);
