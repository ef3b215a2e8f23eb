//! Email change cannot be used to mail arbitrary addresses without limit.

use crate::app::TestApp;
use crate::harness::{Engine, on_both_engines};

use crate::harness::PW;

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

on_both_engines!(email_changes_are_limited_per_user_and_per_address);
