//! Email change: confirmed by the new address, cancelled from the old one, one winner of two
//! confirmations, and limited per user and per address.

use crate::app::TestApp;
use crate::app::drain_mail;
use crate::app::hidden;
use crate::harness::PW;
use crate::harness::{Engine, on_both_engines};
use crate::smtp::SmtpSink;

// Security review finding: email change could mail any address without limit.
async fn email_changes_are_limited_per_user_and_per_address(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.signed_in("mover@example.com", PW).await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        statuses.push(c.form("/auth/email-change", &[("new_email", &format!("target{i}@example.com"))]).await.status);
    }
    // The refusal goes back to the account page, which says why.
    assert_eq!(statuses, [200, 200, 200, 200, 200, 303], "five per user per hour");
    assert!(c.get("/auth/account").await.text().contains("Too many attempts"));
    // One address cannot be targeted by many accounts either.
    let mut statuses = Vec::new();
    for i in 0..4 {
        let other = app.signed_in(&format!("sender{i}@example.com"), PW).await;
        statuses.push(other.form("/auth/email-change", &[("new_email", "victim@example.com")]).await.status);
        if i == 3 {
            assert!(other.get("/auth/account").await.text().contains("Too many attempts"));
        }
    }
    assert_eq!(statuses, [200, 200, 200, 303], "three per address per day");
    app.clock.advance(std::time::Duration::from_secs(3601));
    let again = c.form("/auth/email-change", &[("new_email", "later@example.com"), ("current_password", PW)]).await;
    assert_eq!(again.status, 200, "the user's window resets after an hour");
}

async fn email_change_is_confirmed_by_the_new_address(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = TestApp::start_with_env(engine, &sink.env(), &[]).await;
    let c = app.signed_in("old-address@example.com", PW).await;
    app.signed_in("taken@example.com", PW).await;
    assert!(c.get("/auth/account").await.text().contains(r#"action="/auth/email-change""#));

    let taken = c.form("/auth/email-change", &[("new_email", "taken@example.com")]).await;
    assert_eq!(taken.status, 200, "a taken address looks the same");
    let res = c.form("/auth/email-change", &[("new_email", "New-Address@example.com")]).await;
    assert_eq!(res.status, 200);
    let id = hidden(&res.text(), "challenge_id");
    drain_mail(&app).await;
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
    let app = TestApp::start_with_env(engine, &sink.env(), &[]).await;
    let c = app.signed_in("owner@example.com", PW).await;
    let first =
        hidden(&c.form("/auth/email-change", &[("new_email", "first@example.com")]).await.text(), "challenge_id");
    let res = c.form("/auth/email-change", &[("new_email", "thief@example.com")]).await;
    let id = hidden(&res.text(), "challenge_id");
    drain_mail(&app).await;
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
    let app = TestApp::start_with_env(engine, &sink.env(), &[]).await;
    let mut pending = Vec::new();
    for who in ["first-mover@example.com", "second-mover@example.com"] {
        let c = app.signed_in(who, PW).await;
        let res = c.form("/auth/email-change", &[("new_email", "contested@example.com")]).await;
        assert_eq!(res.status, 200, "{}", res.text());
        let id = hidden(&res.text(), "challenge_id");
        drain_mail(&app).await;
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
    email_changes_are_limited_per_user_and_per_address,
    email_change_is_confirmed_by_the_new_address,
    an_email_change_is_cancelled_from_the_old_address,
    ; threaded: two_confirmations_of_one_new_address_at_once_give_it_to_one,
);
