//! The account page's organizations section: listed per mode, switchable in `multi` mode.

use crate::harness::{Engine, on_both_engines};

use crate::harness::PW;

/// The organizations section: listed in `single` and `multi` mode, switchable in `multi` mode
/// (CSRF-checked, new cookies, back with a notice), hidden in `personal` mode.
async fn account_page_lists_organizations_and_switches_in_multi_mode(engine: Engine) {
    use crate::organizations::api::{current_org, start, team, user_id};
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

on_both_engines!(account_page_lists_organizations_and_switches_in_multi_mode,);
