//! `/auth/invitations/accept` for a signed-in user in multi mode: the page, accepting (which
//! joins and moves the session), and the refusals.

use authara::domain::{OrgId, UserId};

use crate::api::organizations::{PW, current_org, events_of, invite, start, team, token_of, user_id};
use crate::harness::{Engine, on_both_engines};

async fn a_signed_in_user_accepts_and_lands_in_the_organization(engine: Engine) {
    let app = start(engine, "multi", &[]).await;
    let a = app.signed_in("page-owner@example.com", PW).await;
    let a_id = user_id(&app, "page-owner@example.com").await;
    let t = team(&app, &a_id, "Page <Team>").await;
    let b = app.signed_in("page-guest@example.com", PW).await;
    let b_id = user_id(&app, "page-guest@example.com").await;
    let inv = invite(&app, &t, &a_id, "page-guest@example.com", "admin").await;
    let token = token_of(&inv);
    let path = format!("/auth/invitations/accept?token={token}");

    // Not signed in: asked to sign in, and sent back here afterwards.
    let anon = app.client();
    let page = anon.get(&path).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("Page &lt;Team&gt;"), "escaped: {html}");
    assert!(
        html.contains(&format!("/auth/login?return_to=%2Fauth%2Finvitations%2Faccept%3Ftoken%3D{token}")),
        "{html}"
    );

    // Someone else signed in: told whose invitation it is; a post is refused.
    let page = a.get(&path).await.text();
    assert!(page.contains("This invitation is for") && !page.contains("Accept the invitation"), "{page}");
    let res = a.form("/auth/invitations/accept", &[("token", &token)]).await;
    assert_eq!(res.status, 422);
    assert!(res.text().contains("another email address"));

    let page = b.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Accept the invitation"));
    let res = b.form("/auth/invitations/accept", &[("token", &token)]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/")), "{}", res.text());
    assert_eq!(current_org(&b).await, t, "the session moved to the organization");
    let me = b.get("/auth/api/v1/organizations/current").await.json();
    assert_eq!(me["role"], "admin");
    let m = app.store.membership(OrgId(t.parse().unwrap()), UserId(b_id.parse().unwrap())).await.unwrap();
    assert!(m.is_some());
    assert_eq!(events_of(&app, "organization.invitation.accepted").await.len(), 1);

    // Accepted: the link is spent; accepting again changes nothing.
    assert_eq!(b.get(&path).await.status, 410);
    let res = b.form("/auth/invitations/accept", &[("token", &token)]).await;
    assert_eq!(res.status, 303, "the same user accepting again is a no-op");
    assert_eq!(events_of(&app, "organization.membership.created").await.len(), 4, "two signups, the team, one join");
    assert_eq!(anon.get("/auth/invitations/accept?token=nope").await.status, 404);
}

async fn the_page_needs_csrf_and_multi_mode(engine: Engine) {
    let app = start(engine, "single", &[]).await;
    let a = app.signed_in("single-page@example.com", PW).await;
    let a_id = user_id(&app, "single-page@example.com").await;
    let inv = invite(&app, &current_org(&a).await, &a_id, "x-page@example.com", "member").await;
    let token = token_of(&inv);
    let page = a.get(&format!("/auth/invitations/accept?token={token}")).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("creating your account with its invitation code"));
    let res = a.form("/auth/invitations/accept", &[("token", &token)]).await;
    assert_eq!(res.status, 403, "multi mode only");
    let c = app.client();
    c.get(&format!("/auth/invitations/accept?token={token}")).await;
    *c.send_csrf.lock().unwrap() = false;
    let res = c
        .send(
            reqwest::Method::POST,
            "/auth/invitations/accept",
            Some(format!("token={token}").into_bytes()),
            &[("content-type", "application/x-www-form-urlencoded")],
        )
        .await;
    assert_eq!(res.status, 403, "CSRF");
}

on_both_engines!(a_signed_in_user_accepts_and_lands_in_the_organization, the_page_needs_csrf_and_multi_mode);
