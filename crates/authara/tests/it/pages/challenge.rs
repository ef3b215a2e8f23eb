//! Hosted code pages with real mail: verified signup, password reset, email change.

use authara::worker::email::run_once;

use crate::app::TestApp;
use crate::harness::{Engine, on_both_engines};
use crate::smtp::SmtpSink;

use crate::app::browser;
use crate::harness::PW;
const NEW_PW: &str = "copper-lantern-meadow";

async fn app_with_mail(engine: Engine, sink: &SmtpSink, extra: &[(&str, &str)]) -> TestApp {
    let env = sink.env();
    let mut overrides: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    overrides.extend_from_slice(extra);
    TestApp::start_with(engine, &overrides).await
}

async fn deliver(app: &TestApp) {
    while run_once(&app.services).await.unwrap() != authara::worker::email::Outcome::Idle {}
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    html.split(&marker).nth(1).unwrap_or_else(|| panic!("no {name} in {html}")).split('"').next().unwrap().to_owned()
}

async fn hosted_signup_with_a_code(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = app_with_mail(engine, &sink, &[("AUTHARA_CHALLENGE_ENABLED", "true")]).await;
    let c = browser(&app).await;
    let res = c.form("/auth/signup?return_to=/welcome", &[("email", "code@example.com"), ("password", PW)]).await;
    assert_eq!(res.status, 200);
    let page = res.text();
    assert!(page.contains("Confirm your email") && page.contains(r#"autocomplete="one-time-code""#), "{page}");
    let id = hidden(&page, "challenge_id");
    deliver(&app).await;
    let code = sink.code_for("code@example.com");
    let res =
        c.form("/auth/verify-challenge/signup?return_to=/welcome", &[("challenge_id", &id), ("code", "99999")]).await;
    assert_eq!(res.status, 422);
    let res =
        c.form("/auth/verify-challenge/signup?return_to=/welcome", &[("challenge_id", &id), ("code", &code)]).await;
    assert_eq!(
        (res.status, res.location().as_deref()),
        (303, Some("/auth/passkeys/setup?return_to=%2Fwelcome")),
        "{}",
        res.text()
    );
    assert_eq!(c.get("/auth/api/v1/user").await.json()["email"], "code@example.com");

    // The same form for a taken email shows the same page and sends nothing.
    let other = browser(&app).await;
    let res = other.form("/auth/signup", &[("email", "code@example.com"), ("password", PW)]).await;
    assert_eq!(res.status, 200);
    assert!(res.text().contains("Confirm your email"));
    deliver(&app).await;
    assert_eq!(sink.to("code@example.com").len(), 1);
}

async fn hosted_password_reset(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = app_with_mail(engine, &sink, &[]).await;
    let signed = app.signed_in("pages-reset@example.com", PW).await;
    let c = browser(&app).await;
    assert!(
        c.get("/auth/login").await.text().contains(r#"href="/auth/password-reset""#),
        "reachable from the login page"
    );
    assert_eq!(c.get("/auth/password-reset").await.status, 200);
    let res = c.form("/auth/password-reset", &[("email", "pages-reset@example.com"), ("new_password", NEW_PW)]).await;
    assert_eq!(res.status, 200);
    let id = hidden(&res.text(), "challenge_id");
    let unknown = c.form("/auth/password-reset", &[("email", "nobody@example.com"), ("new_password", NEW_PW)]).await;
    assert_eq!(unknown.status, 200, "unknown emails get the same page");
    assert!(unknown.text().contains("If an account uses that address"));
    deliver(&app).await;
    let code = sink.code_for("pages-reset@example.com");
    assert!(sink.to("nobody@example.com").is_empty());

    let wrong = if code == "000000" { "111111" } else { "000000" };
    let res = c.form("/auth/verify-challenge/password-reset", &[("challenge_id", &id), ("code", wrong)]).await;
    assert_eq!(res.status, 422);
    assert!(res.text().contains("That code is incorrect."));
    let res = c.form("/auth/verify-challenge/password-reset", &[("challenge_id", &id), ("code", &code)]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/auth/login?notice=password-reset")));
    assert!(c.get("/auth/login?notice=password-reset").await.text().contains("Your password was changed."));
    assert_eq!(signed.get("/auth/api/v1/user").await.status, 401, "every old session ended");
    let res = c.form("/auth/login", &[("email", "pages-reset@example.com"), ("password", NEW_PW)]).await;
    assert_eq!(res.status, 303);
}

async fn email_change_is_confirmed_by_the_new_address(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = app_with_mail(engine, &sink, &[]).await;
    let c = app.signed_in("old-address@example.com", PW).await;
    app.signed_in("taken@example.com", PW).await;
    assert!(c.get("/auth/account").await.text().contains(r#"action="/auth/email-change""#));

    let taken = c.form("/auth/email-change", &[("new_email", "taken@example.com")]).await;
    assert_eq!(taken.status, 200, "a taken address looks the same");
    let res = c.form("/auth/email-change", &[("new_email", "New-Address@example.com")]).await;
    assert_eq!(res.status, 200);
    let id = hidden(&res.text(), "challenge_id");
    deliver(&app).await;
    assert!(sink.to("taken@example.com").is_empty());
    let notices = sink.to("old-address@example.com");
    assert_eq!(notices.len(), 2, "the current address hears of every request");
    assert!(
        notices[1].data.contains("new-address@example.com")
            && notices[1].data.contains("/auth/email-change/cancel?token=")
    );
    let code = sink.code_for("new-address@example.com");
    let res = c.form("/auth/verify-challenge/email-change", &[("challenge_id", &id), ("code", &code)]).await;
    assert!(c.back_on_account(&res).await.contains("Your email address was changed."));
    assert_eq!(c.get("/auth/api/v1/user").await.json()["email"], "new-address@example.com");
    let res = c.form("/auth/email-change", &[("new_email", "new-address@example.com")]).await;
    assert!(c.back_on_account(&res).await.contains("That is already your email address"));
}

/// The owner of the current address cancels a change they did not ask for, from the link of
/// the notice, without being signed in; a newer request also replaces an older one.
async fn an_email_change_is_cancelled_from_the_old_address(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = app_with_mail(engine, &sink, &[]).await;
    let c = app.signed_in("owner@example.com", PW).await;
    let first =
        hidden(&c.form("/auth/email-change", &[("new_email", "first@example.com")]).await.text(), "challenge_id");
    let res = c.form("/auth/email-change", &[("new_email", "thief@example.com")]).await;
    let id = hidden(&res.text(), "challenge_id");
    deliver(&app).await;
    let first_code = sink.code_for("first@example.com");
    let res = c.form("/auth/verify-challenge/email-change", &[("challenge_id", &first), ("code", &first_code)]).await;
    assert_eq!(res.status, 422, "a newer request replaced the older one");

    // The text part is quoted-printable: undo its soft line breaks and `=3D`.
    let notice = sink.to("owner@example.com")[1].data.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let link = notice.split("/auth/email-change/cancel?token=").nth(1).unwrap();
    let token: String = link.chars().take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '-' || *ch == '_').collect();
    let owner = app.client();
    let page = owner.get(&format!("/auth/email-change/cancel?token={token}")).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Cancel the change"));
    let res = owner.form("/auth/email-change/cancel", &[("token", &token)]).await;
    assert_eq!(res.status, 200);
    let code = sink.code_for("thief@example.com");
    let res = c.form("/auth/verify-challenge/email-change", &[("challenge_id", &id), ("code", &code)]).await;
    assert_eq!(res.status, 422, "the cancelled change cannot complete");
    assert_eq!(c.get("/auth/api/v1/user").await.json()["email"], "owner@example.com");
    let forged = owner.form("/auth/email-change/cancel", &[("token", "forged")]).await;
    assert_eq!(forged.status, 200, "a forged link says the same and does nothing");
}

/// Two accounts confirm a change to the same new address at the same moment, on a server
/// running on several threads: one gets the address, the other keeps its own; no address
/// is held twice and nothing fails.
async fn two_confirmations_of_one_new_address_at_once_give_it_to_one(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = app_with_mail(engine, &sink, &[]).await;
    let mut pending = Vec::new();
    for who in ["first-mover@example.com", "second-mover@example.com"] {
        let c = app.signed_in(who, PW).await;
        let res = c.form("/auth/email-change", &[("new_email", "contested@example.com")]).await;
        assert_eq!(res.status, 200, "{}", res.text());
        let id = hidden(&res.text(), "challenge_id");
        deliver(&app).await;
        pending.push((c, id, sink.code_for("contested@example.com")));
    }
    let confirms = pending.into_iter().map(|(c, id, code)| {
        tokio::spawn(async move {
            let res = c.form("/auth/verify-challenge/email-change", &[("challenge_id", &id), ("code", &code)]).await;
            let status = res.status;
            (status, res.location(), c.get("/auth/api/v1/user").await.json()["email"].clone())
        })
    });
    let mut answers = Vec::new();
    for t in confirms.collect::<Vec<_>>() {
        answers.push(t.await.unwrap());
    }
    assert!(answers.iter().all(|(status, _, _)| *status < 500), "{answers:?}");
    let owners = answers.iter().filter(|(_, _, email)| *email == "contested@example.com").count();
    assert_eq!(owners, 1, "exactly one account holds the address: {answers:?}");
    let held = app.db.texts("SELECT email FROM users WHERE email = 'contested@example.com'").await;
    assert_eq!(held.len(), 1, "one row with the address");
}

on_both_engines!(
    hosted_signup_with_a_code,
    hosted_password_reset,
    email_change_is_confirmed_by_the_new_address,
    an_email_change_is_cancelled_from_the_old_address,
    ; threaded: two_confirmations_of_one_new_address_at_once_give_it_to_one,
);
