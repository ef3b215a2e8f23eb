//! The hosted pages without JavaScript (plain form posts): setting up from the account page
//! (QR code, text secret, a mistyped code, the recovery codes typed back), the login's second
//! step with a recovery code, step-up before a sensitive change, and turning it off.

use std::time::Duration;

use super::{NO_LIMIT, PW, code_at, decode, wrong_code};
use crate::app::{TestApp, TestClient};
use crate::harness::{Engine, on_both_engines};

/// The text between `start` and the next `end` in `page`.
fn between<'a>(page: &'a str, start: &str, end: &str) -> &'a str {
    let at = page.find(start).unwrap_or_else(|| panic!("{start} not on the page")) + start.len();
    &page[at..at + page[at..].find(end).unwrap()]
}

/// The recovery codes a page shows.
fn codes_on(page: &str) -> Vec<String> {
    let list = between(page, "data-recovery-codes>", "</ol>");
    list.split("<code>").skip(1).map(|c| c.split("</code>").next().unwrap().to_owned()).collect()
}

/// Sets the app up from the account page of `c`; its secret and recovery codes.
async fn set_up_on_the_page(app: &TestApp, c: &TestClient) -> (Vec<u8>, Vec<String>) {
    let account = c.get("/auth/account").await.text();
    assert!(account.contains("Two-step verification") && account.contains("Set up an authenticator app"));
    let res = c.form("/auth/account/mfa/setup", &[]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let page = res.text();
    assert!(page.contains("<svg") && page.contains("role=\"img\""), "the QR code is on the page, as SVG");
    assert!(!page.contains("<?xml"));
    let shown = between(&page, "data-mfa-secret=\"", "\"").to_owned();
    let grouped = between(&page, &format!("data-mfa-secret=\"{shown}\">"), "</code>");
    assert_eq!(grouped.replace(' ', ""), shown, "the same secret as text, in groups of four");
    let secret = decode(&shown);

    let res = c.form("/auth/account/mfa/confirm", &[("code", &wrong_code(&secret, app.clock_now()))]).await;
    assert_eq!(res.status, 422);
    assert!(res.text().contains("That code is incorrect") && res.text().contains(&shown), "the same secret again");
    let res = c.form("/auth/account/mfa/confirm", &[("code", &code_at(&secret, app.clock_now(), 0))]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let page = res.text();
    let codes = codes_on(&page);
    assert_eq!(codes.len(), 10, "{page}");
    assert!(page.contains("download=\"recovery-codes.txt\"") && page.contains("data:text/plain"));

    let mut fields: Vec<(&str, &str)> = codes.iter().map(|c| ("shown", c.as_str())).collect();
    fields.push(("code", "zzzz-zzzz-zzzz-zzzz"));
    let res = c.form("/auth/mfa/recovery-codes/saved?return_to=%2Fauth%2Faccount", &fields).await;
    assert_eq!(res.status, 422, "not one of them");
    assert_eq!(codes_on(&res.text()), codes, "shown again after a typo");
    fields.pop();
    fields.push(("code", &codes[7]));
    let res = c.form("/auth/mfa/recovery-codes/saved?return_to=%2Fauth%2Faccount", &fields).await;
    assert_eq!(res.status, 303);
    let account = c.back_on_account(&res).await;
    assert!(account.contains("Two-step verification is on") && account.contains("10 recovery codes left"), "{account}");
    (secret, codes)
}

async fn set_up_from_the_account_page_and_sign_in_with_a_recovery_code(engine: Engine) {
    let app = TestApp::start_with(engine, &[NO_LIMIT]).await;
    let c = app.signed_in("page@example.com", PW).await;
    let (secret, codes) = set_up_on_the_page(&app, &c).await;

    let b = app.client();
    b.get("/auth/login").await;
    let res = b.form("/auth/login", &[("email", "page@example.com"), ("password", PW)]).await;
    let step = res.location().unwrap();
    assert!(step.starts_with("/auth/login/mfa?return_to="), "{step}");
    let page = b.get(&step).await.text();
    assert!(page.contains("Use a recovery code instead") && page.contains("Remember this browser for 30 days"));
    let res = b.form(&step, &[("recovery_code", "aaaa-bbbb-cccc-dddd")]).await;
    assert_eq!(res.status, 422);
    assert!(res.text().contains("<details open"), "the recovery form stays open after a mistake");
    let res = b.form(&step, &[("recovery_code", &codes[0])]).await;
    assert_eq!(res.status, 303, "{}", res.text());
    let account = b.get("/auth/account").await.text();
    assert!(account.contains("9 recovery codes left"), "{account}");
    assert!(account.contains("A recovery code was used"), "the account's activity says so");

    // An hour later the password change asks for a fresh code: the step-up page, then it works.
    app.clock.advance(Duration::from_secs(3600));
    let res = b
        .form("/auth/providers/password/change", &[("current_password", PW), ("new_password", "amber-falcon-ridge")])
        .await;
    let account = b.back_on_account(&res).await;
    assert!(account.contains("authenticator app first"), "{account}");
    assert!(account.contains("Verify now"));
    let res = b
        .form("/auth/mfa/verify?return_to=%2Fauth%2Faccount", &[("code", &code_at(&secret, app.clock_now(), 0))])
        .await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/auth/account")), "{}", res.text());
    let res = b
        .form("/auth/providers/password/change", &[("current_password", PW), ("new_password", "amber-falcon-ridge")])
        .await;
    assert_eq!(res.status, 303);

    // Turning it off from the account page (a fresh code; this browser was signed out by the
    // password change).
    c.get("/auth/login").await;
    let res = c.form("/auth/login", &[("email", "page@example.com"), ("password", "amber-falcon-ridge")]).await;
    let step = res.location().unwrap();
    app.clock.advance(Duration::from_secs(30));
    let res = c.form(&step, &[("code", &code_at(&secret, app.clock_now(), 0))]).await;
    assert_eq!(res.status, 303);
    app.clock.advance(Duration::from_secs(30));
    let res = c.form("/auth/account/mfa/disable", &[("code", &code_at(&secret, app.clock_now(), 0))]).await;
    let account = c.back_on_account(&res).await;
    assert!(account.contains("Two-step verification is off") && account.contains("Set up an authenticator app"));
}

/// With a second factor, the password typed with a sensitive change is not enough once the
/// session's code is older than the privileged window: email change, account deletion and the
/// console's actions ask for a fresh code; after one, they go through.
async fn sensitive_changes_ask_for_a_fresh_code(engine: Engine) {
    let app = TestApp::start_with(engine, &[NO_LIMIT]).await;
    let password = authara::domain::NewPassword::parse(PW).unwrap();
    app.services.accounts().create_admin(&crate::app::email("boss@example.com"), &password).await.unwrap();
    let c = app.client();
    assert_eq!(super::login(&c, "boss@example.com").await.status, 200);
    let (secret, _) = set_up_on_the_page(&app, &c).await;
    app.signed_in("staff@example.com", PW).await;
    let staff = app.store.user_by_email(&crate::app::email("staff@example.com")).await.unwrap().unwrap().id;
    app.clock.advance(Duration::from_secs(3600));

    let res = c.form("/auth/email-change", &[("new_email", "boss2@example.com"), ("current_password", PW)]).await;
    assert!(c.back_on_account(&res).await.contains("authenticator app first"));
    let res = c.form("/auth/user/delete", &[("confirm", "boss@example.com"), ("current_password", PW)]).await;
    assert!(c.back_on_account(&res).await.contains("authenticator app first"));
    let page = c.get(&format!("/auth/admin/users/{staff}")).await.text();
    assert!(page.contains("need your second factor") && page.contains("Verify now"), "{page}");
    let res = c.form(&format!("/auth/admin/users/{staff}/disable"), &[("current_password", PW)]).await;
    assert!(res.text().contains("authenticator app first"), "{}", res.text());
    assert!(app.store.user_by_id(staff).await.unwrap().unwrap().disabled_at_ms.is_none());

    let verify = format!(
        "/auth/mfa/verify?return_to={}",
        authara::services::return_to::encode(&format!("/auth/admin/users/{staff}"))
    );
    assert!(c.get(&verify).await.text().contains("Confirm it"));
    let res = c.form(&verify, &[("code", &code_at(&secret, app.clock_now(), 0))]).await;
    assert_eq!(res.status, 303, "{}", res.text());
    let res = c.form(&format!("/auth/admin/users/{staff}/disable"), &[]).await;
    assert_eq!(res.status, 303, "{}", res.text());
    assert!(app.store.user_by_id(staff).await.unwrap().unwrap().disabled_at_ms.is_some());
}

on_both_engines!(set_up_from_the_account_page_and_sign_in_with_a_recovery_code, sensitive_changes_ask_for_a_fresh_code);
