use crate::app::TestApp;
use crate::harness::{Engine, on_both_engines};

use crate::harness::PW;

async fn account_page_lists_sessions_and_revokes_them(engine: Engine) {
    let app = TestApp::start(engine).await;
    let a = app.signed_in("acct@example.com", PW).await;
    let b = app.client();
    b.get("/auth/login").await;
    let res = b
        .send(
            reqwest::Method::POST,
            "/auth/login",
            Some(
                format!("csrf_token={}&email=acct%40example.com&password={PW}", b.cookie("authara_csrf").unwrap())
                    .into_bytes(),
            ),
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                (
                    "user-agent",
                    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Version/17.0 Mobile/15E148 Safari/604.1",
                ),
            ],
        )
        .await;
    assert_eq!(res.status, 303);

    let page = a.get("/auth/account").await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("This device"), "{html}");
    assert!(html.contains("Safari on iPhone"), "the other session is described");
    assert_eq!(html.matches("/revoke\"").count(), 1, "one other session can be signed out");
    let sid = html.split("/auth/sessions/").nth(1).unwrap().split('/').next().unwrap().to_owned();

    let res = a.form(&format!("/auth/sessions/{sid}/revoke"), &[]).await;
    let page = a.back_on_account(&res).await;
    assert_eq!(b.get("/auth/api/v1/user").await.status, 401, "the revoked device is out at once");
    let res = b.get("/auth/account").await;
    assert_eq!(res.status, 303, "and its pages send it to login");
    assert!(page.contains("That device was signed out."));
    let sessions = page.split("Recent security activity").next().unwrap();
    assert!(!sessions.contains("Safari on iPhone"), "gone from the signed-in devices");
    // Someone else's or an unknown session: refused, nothing happens.
    let res = a.form("/auth/sessions/00000000-0000-0000-0000-000000000001/revoke", &[]).await;
    assert!(a.back_on_account(&res).await.contains("That session was not found."));
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

/// The organizations section: listed in `single` and `multi` mode, switchable in `multi` mode
/// (CSRF-checked, new cookies, back with a notice), hidden in `personal` mode.
async fn account_page_lists_organizations_and_switches_in_multi_mode(engine: Engine) {
    use crate::api::organizations::{current_org, start, team, user_id};
    let app = start(engine, "multi", &[]).await;
    let a = app.signed_in("orgs@example.com", PW).await;
    let personal = current_org(&a).await;
    let t = team(&app, &user_id(&app, "orgs@example.com").await, "Blue <Team>").await;
    let html = a.get("/auth/account").await.text();
    assert!(html.contains("Organizations") && html.contains("Blue &lt;Team&gt;"), "{html}");
    assert!(html.contains("Current") && html.contains("Team · Owner") && html.contains("Personal · Owner"), "{html}");
    let action = format!(r#"action="/auth/organizations/{t}/switch""#);
    assert!(html.contains(&action), "{html}");
    assert!(!html.contains(&format!("/auth/organizations/{personal}/switch")), "not the current one");

    let res = a.form(&format!("/auth/organizations/{t}/switch"), &[]).await;
    assert!(res.set_cookie("authara_access").is_some() && res.set_cookie("authara_refresh").is_some());
    let html = a.back_on_account(&res).await;
    assert_eq!(current_org(&a).await, t);
    assert!(
        html.contains("You switched organization.") && html.contains(&format!("/auth/organizations/{personal}/switch"))
    );

    for id in [uuid::Uuid::new_v4().to_string(), "not-an-id".to_owned()] {
        let res = a.form(&format!("/auth/organizations/{id}/switch"), &[]).await;
        assert!(a.back_on_account(&res).await.contains("not a member of that organization"), "{id}");
    }
    assert_eq!(current_org(&a).await, t, "a refused switch leaves the session where it was");

    let app = start(engine, "single", &[]).await;
    let a = app.signed_in("one-org@example.com", PW).await;
    let org = current_org(&a).await;
    let html = a.get("/auth/account").await.text();
    assert!(html.contains("Organizations") && html.contains("Team · Owner"), "{html}");
    assert!(!html.contains("/switch\""), "no switching in single mode: {html}");
    let res = a.form(&format!("/auth/organizations/{org}/switch"), &[]).await;
    assert!(a.back_on_account(&res).await.contains("not available"));

    let app = start(engine, "personal", &[]).await;
    let a = app.signed_in("private@example.com", PW).await;
    let html = a.get("/auth/account").await.text();
    assert!(!html.contains("Organizations"), "personal mode keeps organizations out of sight");
}

on_both_engines!(
    account_page_lists_sessions_and_revokes_them,
    account_actions,
    account_page_lists_organizations_and_switches_in_multi_mode,
);
