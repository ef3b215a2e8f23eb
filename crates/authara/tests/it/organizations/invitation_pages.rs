//! The invitation pages (behavior.md §9.3) per organization mode: the landing page for visitors
//! and signed-in users, signing up and signing in on an invitation (each landing in the invited
//! organization with the previous session logged out), the code page with challenges on, the
//! allowlist's exception, readable pages for links that lead nowhere, rate limits and CSRF.

use std::time::Duration;

use authara::domain::{OrgId, UserId};
use reqwest::Method;

use crate::app::browser;
use crate::app::drain_mail as drain;
use crate::app::hidden;
use crate::app::{TestApp, TestClient};
use crate::harness::{Engine, on_both_engines};
use crate::organizations::api::{
    PW, current_org, events_of, invitation_id, invite, start, start_with_mail, switch, team, token_of, user_id,
};
use crate::smtp::SmtpSink;

/// An owner with a team organization in `multi` mode: (owner's client, owner id, team id).
async fn owner_with_team(app: &TestApp, email: &str, name: &str) -> (TestClient, String, String) {
    let a = app.signed_in(email, PW).await;
    let a_id = user_id(app, email).await;
    let t = team(app, &a_id, name).await;
    (a, a_id, t)
}

/// The role of the client's session in its current organization.
async fn current_role(c: &TestClient) -> String {
    c.get("/auth/api/v1/organizations/current").await.json()["role"].as_str().unwrap().to_owned()
}

async fn a_signed_in_user_accepts_and_lands_in_the_organization(engine: Engine) {
    let app = start(engine, "multi", &[]).await;
    let (a, a_id, t) = owner_with_team(&app, "page-owner@example.com", "Page <Team>").await;
    let b = app.signed_in("page-guest@example.com", PW).await;
    let b_id = user_id(&app, "page-guest@example.com").await;
    let inv = invite(&app, &t, &a_id, "page-guest@example.com", "admin").await;
    let token = token_of(&inv);
    let path = format!("/auth/invitations/accept?token={token}");

    // Not signed in: the organization, the address, and the ways on.
    let anon = app.client();
    let page = anon.get(&path).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("Page &lt;Team&gt;"), "escaped: {html}");
    assert!(html.contains("page-guest@example.com"), "{html}");
    assert!(html.contains(&format!(r#"href="/auth/invitations/login?token={token}""#)), "{html}");
    assert!(html.contains(&format!(r#"href="/auth/invitations/signup?token={token}""#)), "{html}");
    assert!(html.contains("Sign in to accept"), "the address has an account: signing in comes first");

    // Someone else signed in: told whose invitation it is, offered to switch accounts; a post is
    // refused.
    let page = a.get(&path).await.text();
    assert!(page.contains("This invitation is for") && !page.contains("Accept the invitation"), "{page}");
    assert!(page.contains(&format!("/auth/invitations/login?token={token}")), "{page}");
    let res = a.form("/auth/invitations/accept", &[("token", &token)]).await;
    assert_eq!(res.status, 422);
    assert!(res.text().contains("another email address"));

    let page = b.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Accept the invitation"));
    let res = b.form("/auth/invitations/accept", &[("token", &token)]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/")), "{}", res.text());
    assert_eq!(current_org(&b).await, t, "the session moved to the organization");
    assert_eq!(current_role(&b).await, "admin");
    let m = app.store.membership(OrgId(t.parse().unwrap()), UserId(b_id.parse().unwrap())).await.unwrap();
    assert!(m.is_some());
    assert_eq!(events_of(&app, "organization.invitation.accepted").await.len(), 1);

    // Accepted: the link is spent, and says so; accepting again changes nothing.
    let page = b.get(&path).await;
    assert_eq!(page.status, 410);
    assert!(page.text().contains("already used"), "{}", page.text());
    let res = b.form("/auth/invitations/accept", &[("token", &token)]).await;
    assert_eq!(res.status, 303, "the same user accepting again is a no-op");
    assert_eq!(events_of(&app, "organization.membership.created").await.len(), 4, "two signups, the team, one join");
}

async fn a_visitor_signs_up_on_the_invitation_in_multi_mode(engine: Engine) {
    let app = start(engine, "multi", &[]).await;
    let (_, a_id, t) = owner_with_team(&app, "host@example.com", "Harbor").await;
    let inv = invite(&app, &t, &a_id, "newcomer@example.com", "member").await;
    let token = token_of(&inv);

    // Someone else is signed in on this browser; the signup replaces their session.
    let c = app.signed_in("bystander@example.com", PW).await;
    let old_refresh = c.cookie("authara_refresh").unwrap();
    let page = c.get(&format!("/auth/invitations/accept?token={token}")).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Create an account for newcomer@example.com"), "{}", page.text());

    let page = c.get(&format!("/auth/invitations/signup?token={token}&return_to=/welcome")).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains(r#"value="newcomer@example.com""#) && html.contains("readonly"), "fixed email: {html}");
    assert!(html.contains(r#"action="/auth/invitations/signup?return_to=%2Fwelcome""#), "{html}");
    assert!(html.contains(r#"name="csrf_token""#) && html.contains(&format!(r#"name="token" value="{token}""#)));
    assert!(html.contains(r#"autocomplete="new-password""#));
    assert!(html.contains("/auth/invitations/login?token="), "multi mode offers signing in instead");

    let res =
        c.form("/auth/invitations/signup?return_to=/welcome", &[("token", &token), ("password", "12345678")]).await;
    assert_eq!(res.status, 422);
    assert!(res.text().contains("too common"), "{}", res.text());
    assert_eq!(c.get("/auth/api/v1/user").await.json()["email"], "bystander@example.com", "nothing changed yet");

    let res = c.form("/auth/invitations/signup?return_to=/welcome", &[("token", &token), ("password", PW)]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/welcome")), "{}", res.text());
    assert!(res.set_cookie("authara_access").is_some());
    assert_eq!(c.get("/auth/api/v1/user").await.json()["email"], "newcomer@example.com");
    assert_eq!(current_org(&c).await, t, "the session starts in the invited organization");
    assert_eq!(current_role(&c).await, "member");
    let orgs = c.get("/auth/api/v1/organizations").await.json();
    assert_eq!(orgs["organizations"].as_array().unwrap().len(), 2, "a personal organization and the team");

    // The bystander's session was logged out, not just forgotten.
    let old = app.csrf_client().await;
    old.set_cookie("authara_refresh", &old_refresh);
    assert_eq!(old.post("/auth/api/v1/sessions/refresh").await.status, 401);

    assert_eq!(events_of(&app, "organization.invitation.accepted").await.len(), 1);
    let res = c.get(&format!("/auth/invitations/signup?token={token}")).await;
    assert_eq!(res.status, 410, "used");
    let res = app.client().form("/auth/invitations/signup", &[("token", &token), ("password", PW)]).await;
    assert_eq!(res.status, 403, "no CSRF cookie on a fresh client");
    let again = browser(&app).await;
    let res = again.form("/auth/invitations/signup", &[("token", &token), ("password", PW)]).await;
    assert_eq!(res.status, 410);
    assert!(res.text().contains("already used"));
}

async fn an_existing_account_signs_in_on_the_invitation(engine: Engine) {
    let app = start(engine, "multi", &[]).await;
    let (_, a_id, t) = owner_with_team(&app, "lead@example.com", "Orchard").await;
    app.signed_in("member@example.com", PW).await;
    let inv = invite(&app, &t, &a_id, "member@example.com", "admin").await;
    let token = token_of(&inv);
    let c = browser(&app).await;

    // The address has an account: no signup.
    let res = c.get(&format!("/auth/invitations/signup?token={token}")).await;
    assert_eq!(res.status, 422);
    assert!(res.text().contains("already exists") && res.text().contains("/auth/invitations/login?token="));
    let res = c.form("/auth/invitations/signup", &[("token", &token), ("password", PW)]).await;
    assert_eq!(res.status, 422);

    let page = c.get(&format!("/auth/invitations/login?token={token}")).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains(r#"value="member@example.com""#) && html.contains("readonly"), "{html}");
    assert!(
        html.contains(r#"action="/auth/invitations/login""#) && html.contains(r#"autocomplete="current-password""#)
    );

    let res = c.form("/auth/invitations/login", &[("token", &token), ("password", "")]).await;
    assert_eq!(res.status, 400);
    let res = c.form("/auth/invitations/login", &[("token", &token), ("password", "wrong-password-1")]).await;
    assert_eq!(res.status, 422);
    assert!(res.text().contains("Incorrect password."), "{}", res.text());
    assert!(res.set_cookie("authara_access").is_none());
    assert_eq!(events_of(&app, "organization.invitation.accepted").await.len(), 0);

    // The token may also come in the query string.
    let res = c.form(&format!("/auth/invitations/login?token={token}"), &[("password", PW)]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/")), "{}", res.text());
    assert!(res.set_cookie("authara_device").is_some(), "a password login keeps its device cookie");
    assert_eq!(current_org(&c).await, t);
    assert_eq!(current_role(&c).await, "admin");
    assert_eq!(events_of(&app, "organization.invitation.accepted").await.len(), 1);

    // An invitation for an address without an account: the login page points to the signup.
    let inv = invite(&app, &t, &a_id, "nobody@example.com", "member").await;
    let page = c.get(&format!("/auth/invitations/login?token={}", token_of(&inv))).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("No account uses"), "{}", page.text());
    let res = c.form("/auth/invitations/login", &[("token", &token_of(&inv)), ("password", PW)]).await;
    assert_eq!(res.status, 422);
}

async fn single_mode_shows_the_signup_form_and_no_login(engine: Engine) {
    let app = start(engine, "single", &[]).await;
    let a = app.signed_in("chief@example.com", PW).await;
    let a_id = user_id(&app, "chief@example.com").await;
    let org = current_org(&a).await;
    let inv = invite(&app, &org, &a_id, "recruit@example.com", "member").await;
    let token = token_of(&inv);
    let c = browser(&app).await;

    let page = c.get(&format!("/auth/invitations/accept?token={token}")).await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains(r#"action="/auth/invitations/signup""#) && html.contains(r#"value="recruit@example.com""#));
    assert!(!html.contains("/auth/invitations/login"), "no sign-in in single mode: {html}");
    for path in [format!("/auth/invitations/login?token={token}"), "/auth/invitations/login".to_owned()] {
        let res = c.get(&path).await;
        assert_eq!(res.status, 403, "{path}");
        assert!(res.text().contains("creating a new account"), "{}", res.text());
    }
    let res = c.form("/auth/invitations/login", &[("token", &token), ("password", PW)]).await;
    assert_eq!(res.status, 403);

    // The owner signed in on the link: already a member.
    let page = a.get(&format!("/auth/invitations/accept?token={token}")).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("already a member"), "{}", page.text());

    let res = c.form("/auth/invitations/signup", &[("token", &token), ("password", PW)]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/")), "{}", res.text());
    assert_eq!(current_org(&c).await, org);
    assert_eq!(current_role(&c).await, "member");
    let orgs = c.get("/auth/api/v1/organizations").await.json();
    assert_eq!(orgs["organizations"].as_array().unwrap().len(), 1, "no organization of their own");

    // An address with an account (and so an organization) cannot be invited in.
    let x = app.signed_in("settled@example.com", PW).await;
    let inv = invite(&app, &org, &a_id, "settled@example.com", "member").await;
    let token = token_of(&inv);
    for client in [&browser(&app).await, &x] {
        let page = client.get(&format!("/auth/invitations/accept?token={token}")).await;
        assert_eq!(page.status, 422);
        assert!(page.text().contains("belongs to one organization only"), "{}", page.text());
    }
    let res = browser(&app).await.form("/auth/invitations/signup", &[("token", &token), ("password", PW)]).await;
    assert_eq!(res.status, 422);
    assert!(res.text().contains("already exists"));
}

async fn links_that_lead_nowhere_get_readable_pages(engine: Engine) {
    let app = start(engine, "multi", &[("AUTHARA_ORGANIZATION_INVITATION_TTL", "5m")]).await;
    let (a, a_id, t) = owner_with_team(&app, "keeper@example.com", "Keep").await;
    assert_eq!(switch(&a, &t).await.status, 200);
    let c = browser(&app).await;
    let pages = ["accept", "signup", "login"];

    for page in pages {
        for (query, what) in [("", "missing"), ("?token=", "empty"), ("?token=not-a-token", "unknown")] {
            let res = c.get(&format!("/auth/invitations/{page}{query}")).await;
            assert_eq!(res.status, 400, "{page} {what}");
            assert!(res.text().contains("not valid"), "{page} {what}: {}", res.text());
        }
    }
    let res = c.form("/auth/invitations/signup", &[("token", "nope"), ("password", PW)]).await;
    assert_eq!(res.status, 400);

    let withdrawn = invite(&app, &t, &a_id, "withdrawn@example.com", "member").await;
    let res = a.post(&format!("/auth/api/v1/organizations/{t}/invitations/{}/revoke", invitation_id(&withdrawn))).await;
    assert_eq!(res.status, 200);
    let expired = invite(&app, &t, &a_id, "late@example.com", "member").await;
    app.clock.advance(Duration::from_secs(6 * 60));
    for (inv, words) in [(&withdrawn, "withdrawn"), (&expired, "expired")] {
        let token = token_of(inv);
        for page in pages {
            let res = c.get(&format!("/auth/invitations/{page}?token={token}")).await;
            assert_eq!(res.status, 410, "{page} {words}");
            assert!(res.text().contains(words), "{page}: {}", res.text());
        }
        for page in ["signup", "login"] {
            let res = c.form(&format!("/auth/invitations/{page}"), &[("token", &token), ("password", PW)]).await;
            assert_eq!(res.status, 410, "POST {page} {words}");
            assert!(res.text().contains(words));
        }
    }
    assert!(app.store.user_by_email(&crate::app::email("withdrawn@example.com")).await.unwrap().is_none());

    let app = start(engine, "personal", &[]).await;
    let c = browser(&app).await;
    let res = c.get("/auth/invitations/accept?token=anything").await;
    assert_eq!(res.status, 403);
    assert!(res.text().contains("does not use invitations"), "{}", res.text());
    let res = c.form("/auth/invitations/signup", &[("token", "anything"), ("password", PW)]).await;
    assert_eq!(res.status, 403);
    assert_eq!(app.store.user_count().await.unwrap(), 0);
}

async fn the_forms_need_csrf(engine: Engine) {
    let app = start(engine, "multi", &[]).await;
    let (_, a_id, t) = owner_with_team(&app, "guard@example.com", "Guarded").await;
    app.signed_in("known@example.com", PW).await;
    let signup_token = token_of(&invite(&app, &t, &a_id, "fresh@example.com", "member").await);
    let login_token = token_of(&invite(&app, &t, &a_id, "known@example.com", "member").await);
    let c = browser(&app).await;
    let csrf = c.cookie("authara_csrf").unwrap();
    *c.send_csrf.lock().unwrap() = false;
    for (path, token) in [("/auth/invitations/signup", &signup_token), ("/auth/invitations/login", &login_token)] {
        for field in ["", "forged"] {
            let body = format!("csrf_token={field}&token={token}&password={PW}");
            let res = c
                .send(
                    Method::POST,
                    path,
                    Some(body.into_bytes()),
                    &[("content-type", "application/x-www-form-urlencoded")],
                )
                .await;
            assert_eq!(res.status, 403, "{path} csrf={field:?}");
            assert!(res.set_cookie("authara_access").is_none());
        }
    }
    assert!(app.store.user_by_email(&crate::app::email("fresh@example.com")).await.unwrap().is_none());
    assert_eq!(events_of(&app, "organization.invitation.accepted").await.len(), 0);
    // The same posts with the token go through.
    let body = format!("csrf_token={csrf}&token={signup_token}&password={PW}");
    let res = c
        .send(
            Method::POST,
            "/auth/invitations/signup",
            Some(body.into_bytes()),
            &[("content-type", "application/x-www-form-urlencoded")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.text());
}

async fn signup_and_login_on_invitations_are_rate_limited(engine: Engine) {
    // Two signups per IP: the owner's and one invitee's.
    let app = start(
        engine,
        "multi",
        &[("AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT", "2"), ("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT", "2")],
    )
    .await;
    let (_, a_id, t) = owner_with_team(&app, "limits@example.com", "Limits").await;
    let first = token_of(&invite(&app, &t, &a_id, "first@example.com", "member").await);
    let second = token_of(&invite(&app, &t, &a_id, "second@example.com", "member").await);
    let c = browser(&app).await;
    let res = c.form("/auth/invitations/signup", &[("token", &first), ("password", PW)]).await;
    assert_eq!(res.status, 303, "{}", res.text());
    let other = browser(&app).await;
    let res = other.form("/auth/invitations/signup", &[("token", &second), ("password", PW)]).await;
    assert_eq!(res.status, 429, "{}", res.text());
    let html = res.text();
    assert!(html.contains("Too many sign-ups") && html.contains(r#"action="/auth/invitations/signup""#), "{html}");
    assert!(res.set_cookie("authara_access").is_none());
    assert!(app.store.user_by_email(&crate::app::email("second@example.com")).await.unwrap().is_none());

    // Sign-in failures count against the invited address, shared with the login page.
    let app = start(engine, "multi", &[("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT", "2")]).await;
    let (_, a_id, t) = owner_with_team(&app, "limits@example.com", "Limits").await;
    app.signed_in("tries@example.com", PW).await;
    let token = token_of(&invite(&app, &t, &a_id, "tries@example.com", "member").await);
    let c = browser(&app).await;
    for _ in 0..2 {
        let res = c.form("/auth/invitations/login", &[("token", &token), ("password", "wrong-password-1")]).await;
        assert_eq!(res.status, 422);
    }
    let res = c.form("/auth/invitations/login", &[("token", &token), ("password", PW)]).await;
    assert_eq!(res.status, 429, "{}", res.text());
    let html = res.text();
    assert!(html.contains("Too many sign-in attempts") && html.contains("data-login-form"), "{html}");
    assert!(res.set_cookie("authara_access").is_none());
    let elsewhere = browser(&app).await;
    let res = elsewhere.form("/auth/login", &[("email", "tries@example.com"), ("password", PW)]).await;
    assert_eq!(res.status, 429, "the same budget as the login page's");
    assert_eq!(events_of(&app, "organization.invitation.accepted").await.len(), 0);
}

/// A user made on the server side (no signup request: those are limited or switched off here).
async fn make_user(app: &TestApp, email: &str) -> String {
    let password = authara::domain::NewPassword::parse(PW).unwrap();
    app.services.accounts().create_admin(&crate::app::email(email), &password).await.unwrap();
    user_id(app, email).await
}

async fn with_challenges_the_signup_goes_through_the_code_page(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = start_with_mail(engine, "multi", &sink, &[("AUTHARA_CHALLENGE_ENABLED", "true")]).await;
    let host = make_user(&app, "coded-host@example.com").await;
    let t = team(&app, &host, "Verified").await;
    let token = token_of(&invite(&app, &t, &host, "coded@example.com", "member").await);
    drain(&app).await;
    let c = browser(&app).await;

    let res = c.form("/auth/invitations/signup", &[("token", &token), ("password", PW)]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let page = res.text();
    assert!(page.contains("Confirm your email"), "{page}");
    let id = hidden(&page, "challenge_id");
    assert!(app.store.user_by_email(&crate::app::email("coded@example.com")).await.unwrap().is_none());
    drain(&app).await;
    assert_eq!(sink.to("coded@example.com").len(), 2, "the invitation, then the code");
    let code = sink.code_for("coded@example.com");
    let res = c.form("/auth/verify-challenge/signup", &[("challenge_id", &id), ("code", &code)]).await;
    let setup = "/auth/passkeys/setup?return_to=%2F";
    assert_eq!((res.status, res.location().as_deref()), (303, Some(setup)), "{}", res.text());
    assert_eq!(c.get("/auth/api/v1/user").await.json()["email"], "coded@example.com");
    assert_eq!(current_org(&c).await, t, "the code page lands in the invited organization too");
    assert_eq!(events_of(&app, "organization.invitation.accepted").await.len(), 1);
}

async fn the_allowlist_admits_invited_addresses(engine: Engine) {
    let app = start(engine, "multi", &[("AUTHARA_ACCESS_POLICY_ALLOWLIST_ENABLED", "true")]).await;
    let host = make_user(&app, "gate@example.com").await;
    let t = team(&app, &host, "Gated").await;
    let token = token_of(&invite(&app, &t, &host, "outsider@example.com", "member").await);
    let c = browser(&app).await;
    let res = c.form("/auth/signup", &[("email", "outsider@example.com"), ("password", PW)]).await;
    assert_eq!(res.status, 422, "not on the list");
    let res = c.form("/auth/invitations/signup", &[("token", &token), ("password", PW)]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/")), "{}", res.text());
    assert_eq!(current_org(&c).await, t);

    // An account taken off the list signs in on an invitation (and only so).
    make_user(&app, "lapsed@example.com").await;
    app.db.raw_sql("DELETE FROM allowed_emails WHERE email = 'lapsed@example.com'").await;
    let c = browser(&app).await;
    let res = c.form("/auth/login", &[("email", "lapsed@example.com"), ("password", PW)]).await;
    assert_eq!(res.status, 422, "{}", res.text());
    let token = token_of(&invite(&app, &t, &host, "lapsed@example.com", "member").await);
    let res = c.form("/auth/invitations/login", &[("token", &token), ("password", PW)]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/")), "{}", res.text());
    assert_eq!(current_org(&c).await, t);

    let admin = app.services.admin();
    let rows = admin.audit(&admin.cli(), &Default::default(), 1).await.unwrap();
    let added: Vec<_> = rows.iter().filter(|r| r.action.as_str() == "allowlist.email_added").collect();
    let by_invitation = added.iter().filter(|r| r.actor.as_str() == "anonymous").count();
    assert_eq!(by_invitation, 2, "each admission is audited: {added:?}");
    let by_shell = added.iter().filter(|r| r.actor.as_str() == "cli").count();
    assert_eq!(by_shell, 2, "so is the shell's, for the accounts it made: {added:?}");
}

on_both_engines!(
    a_signed_in_user_accepts_and_lands_in_the_organization,
    a_visitor_signs_up_on_the_invitation_in_multi_mode,
    an_existing_account_signs_in_on_the_invitation,
    single_mode_shows_the_signup_form_and_no_login,
    links_that_lead_nowhere_get_readable_pages,
    the_forms_need_csrf,
    signup_and_login_on_invitations_are_rate_limited,
    with_challenges_the_signup_goes_through_the_code_page,
    the_allowlist_admits_invited_addresses,
);
