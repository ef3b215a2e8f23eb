//! Sign-in providers on the invitation pages (behavior.md §7.2 `flow=login`, §9.3): the
//! pages offer the providers with the invitation page as `return_to`. The provider round trip
//! (which a link from any site can start in a victim's browser) never accepts by itself: an
//! identity with an account signs in and lands on the accept page, where the person clicks
//! Accept; a new identity for the invited address is offered "create account and join" on the
//! signup page, in the browser that made the round trip only. Every refusal goes back to the
//! invitation page with a message and nothing created.

use authara::services::return_to::encode;
use serde_json::json;

use super::code_flow::via_provider;
use super::provider::{Person, Provider};
use crate::app::{Res, TestApp, TestClient};
use crate::harness::{Engine, on_both_engines};
use crate::organizations::api::{PW, current_org, events_of, invitation_id, invite, team, token_of, user_id};

/// An app in `mode` with `idp` as Google and as the code-flow provider `stub`.
async fn app_in(engine: Engine, idp: &Provider, mode: &str, extra: &[(&str, &str)]) -> TestApp {
    let env = idp.env();
    crate::organizations::api::start(engine, mode, &crate::app::settings(&env, extra)).await
}

/// The owner of a team organization: (owner id, team id).
async fn host(app: &TestApp, email: &str, name: &str) -> (String, String) {
    app.signed_in(email, PW).await;
    let id = user_id(app, email).await;
    let t = team(app, &id, name).await;
    (id, t)
}

/// Loads `path` (a page with Google's button): its text and the nonce it embeds.
async fn page_nonce(c: &TestClient, path: &str) -> (String, String) {
    let page = c.get(path).await;
    let text = page.text();
    assert!(text.contains("data-callback=\"autharaGoogleCallback\""), "{path} embeds GIS: {text}");
    let at = text.find("data-nonce=\"").expect("data-nonce") + 12;
    let nonce = text[at..at + text[at..].find('"').unwrap()].to_owned();
    (text, nonce)
}

/// Google's page callback, `flow=login`, from `return_to`, with an ID token for `sub`/`email`
/// (the browser's nonce from the login page).
async fn google(c: &TestClient, idp: &Provider, return_to: &str, sub: &str, email: &str) -> Res {
    let (_, nonce) = page_nonce(c, "/auth/login").await;
    let token = idp.id_token(json!({"nonce": nonce, "sub": sub, "email": email}));
    c.form(
        &format!("/auth/oauth/google/callback?return_to={}", encode(return_to)),
        &[("credential", &token), ("nonce", &nonce), ("flow", "login")],
    )
    .await
}

fn redirect_header(res: &Res) -> String {
    assert_eq!(res.status, 200, "{}", res.text());
    res.headers.get("x-authara-redirect").expect("X-Authara-Redirect").to_str().unwrap().to_owned()
}

async fn current_role(c: &TestClient) -> String {
    c.get("/auth/api/v1/organizations/current").await.json()["role"].as_str().unwrap().to_owned()
}

/// The pending signup a round trip offered: (the page URL, its id).
fn offered(res_location: &str, page: &str) -> String {
    assert!(res_location.starts_with(&format!("{page}&signup_id=")), "{res_location}");
    res_location.split("signup_id=").nth(1).unwrap().to_owned()
}

async fn scenario_google_signup_on_an_invitation_joins_the_organization(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_in(engine, &idp, "multi", &[]).await;
    let (a_id, t) = host(&app, "gil-host@example.com", "Gull").await;
    let inv = invite(&app, &t, &a_id, "nia@example.com", "admin").await;
    let token = token_of(&inv);
    let page = format!("/auth/invitations/signup?token={token}");

    // The signup page offers the providers, each coming back to this page.
    let c = app.client();
    let (html, _) = page_nonce(&c, &page).await;
    assert!(html.contains(&format!("data-return-to=\"{page}\"")), "{html}");
    assert!(html.contains(&format!("href=\"/auth/oauth/stub/start?return_to={}\"", encode(&page))), "{html}");
    assert!(html.contains("name=\"password\""), "the password form stays");
    let users = app.store.user_count().await.unwrap();

    // Another Google account's email: back to the invitation page, which says why; nobody made.
    let res = google(&c, &idp, &page, "g-other", "someone.else@example.com").await;
    assert_eq!(redirect_header(&res), page);
    assert!(res.set_cookie("authara_access").is_none());
    let again = c.get(&page).await;
    assert_eq!(again.status, 200);
    assert!(again.text().contains("This invitation is for another email address"), "{}", again.text());
    assert_eq!(app.store.user_count().await.unwrap(), users);
    assert!(app.store.user_by_provider("google", "g-other").await.unwrap().is_none());

    // The invited address: the round trip creates nothing and signs nobody in; the signup
    // page offers to create the account with this identity, to this browser only.
    let res = google(&c, &idp, &page, "g-nia", "Nia@Example.com").await;
    let offer = redirect_header(&res);
    let signup_id = offered(&offer, &page);
    assert!(res.set_cookie("authara_access").is_none());
    assert!(res.set_cookie("authara_link").is_some_and(|c| c.contains("HttpOnly")));
    assert_eq!(app.store.user_count().await.unwrap(), users);
    let elsewhere = app.client();
    let theirs = elsewhere.get(&offer).await;
    assert!(!theirs.text().contains("name=\"signup_id\""), "another browser is not offered it");
    let res = elsewhere.form("/auth/invitations/signup", &[("token", &token), ("signup_id", &signup_id)]).await;
    assert!(res.set_cookie("authara_access").is_none(), "nor can it post it: {}", res.text());
    assert_eq!(app.store.user_count().await.unwrap(), users);
    let html = c.get(&offer).await.text();
    assert!(html.contains("Create account and join") && html.contains("nia@example.com"), "{html}");

    // The click creates the account in the organization, with the invitation's role.
    let res = c.form("/auth/invitations/signup", &[("token", &token), ("signup_id", &signup_id)]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/")), "{}", res.text());
    assert!(res.set_cookie("authara_access").is_some());
    assert_eq!(c.get("/auth/api/v1/user").await.json()["email"], "nia@example.com");
    assert_eq!(current_org(&c).await, t, "the session is in the invited organization");
    assert_eq!(current_role(&c).await, "admin");
    let nia = user_id(&app, "nia@example.com").await;
    assert_eq!(
        app.store.user_by_provider("google", "g-nia").await.unwrap().map(|u| u.id.to_string()),
        Some(nia.clone())
    );
    assert_eq!(app.store.user_count().await.unwrap(), users + 1);

    // Its events: the user, the acceptance, the membership by invitation.
    assert!(events_of(&app, "user.created").await.iter().any(|e| e["user_id"] == nia.as_str()));
    let accepted = events_of(&app, "organization.invitation.accepted").await;
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0]["accepted_by_user_id"], nia.as_str());
    let joined: Vec<_> = events_of(&app, "organization.membership.created")
        .await
        .into_iter()
        .filter(|e| e["user_id"] == nia.as_str() && e["organization_id"] == t.as_str())
        .collect();
    assert_eq!(joined.len(), 1);
    assert_eq!(joined[0]["role"], "admin");
    assert_eq!(joined[0]["is_initial_membership"], false);
    assert_eq!(joined[0]["invitation_id"], invitation_id(&inv).as_str());

    // The invitation is spent, and the offer with it.
    assert_eq!(app.client().get(&page).await.status, 410);
    let res = c.form("/auth/invitations/signup", &[("token", &token), ("signup_id", &signup_id)]).await;
    assert_eq!(res.status, 410);
}

/// The invitation token does not rest in the database on the way through a provider: the code
/// flow's row and the recovery link keep its hash, and the browser that started them brings the
/// token back (a cookie, the confirmation page's own `return_to`); a browser without it cannot
/// be led to the invitation by the stored row.
async fn invitation_tokens_rest_only_as_their_hash(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_in(engine, &idp, "multi", &[]).await;
    let (a_id, t) = host(&app, "tia-host@example.com", "Tern").await;
    app.signed_in("ann@example.com", PW).await;
    let inv = invite(&app, &t, &a_id, "ann@example.com", "member").await;
    let token = token_of(&inv);
    let page = format!("/auth/invitations/login?token={token}&return_to=/welcome");
    let at_rest = |what: &'static str, rows: Vec<String>| {
        assert!(!rows.is_empty(), "{what}: a row was written");
        for r in rows {
            assert!(!r.contains(&token) && r.contains("token_sha256="), "{what} keeps the token: {r}");
        }
    };

    // A flow started from the invitation page and finished without the invitation cookie: the
    // row alone does not lead anywhere near the invitation.
    idp.sign_in_as(Person::new("s-ann", "ann@example.com"));
    let stray = app.client();
    let start = stray.get(&format!("/auth/oauth/stub/start?return_to={}", encode(&page))).await;
    assert!(start.set_cookie("authara_invitation").is_some_and(|c| c.contains("HttpOnly")));
    at_rest("the code flow", app.db.texts("SELECT return_to FROM oauth_flows").await);
    stray.remove_cookie("authara_invitation");
    let (_, res) = via_provider(&stray, start).await;
    assert_eq!(res.status, 303);
    assert!(res.location().unwrap().starts_with("/auth/login"), "{:?}", res.location());
    assert!(stray.cookie("authara_access").is_none() && res.set_cookie("authara_link").is_none());

    // The browser that holds it: Ann's address has a password account, so a recovery link, which
    // keeps the accept page's token hashed too; confirming lands on the accept page.
    let c = app.client();
    let start = c.get(&format!("/auth/oauth/stub/start?return_to={}", encode(&page))).await;
    let (_, res) = via_provider(&c, start).await;
    let confirm = res.location().unwrap();
    assert!(confirm.starts_with("/auth/provider-links/confirm?link_id="), "{confirm}");
    at_rest("the recovery link", app.db.texts("SELECT return_to FROM pending_provider_links").await);
    assert!(app.db.texts("SELECT return_to FROM oauth_flows").await.iter().all(|r| !r.contains(&token)));
    assert_eq!(c.get(&confirm).await.status, 200);
    let link_id = confirm.split("link_id=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let action = format!("/auth/provider-links/confirm?{}", confirm.split_once('&').unwrap().1);
    let res = c.form(&action, &[("link_id", &link_id), ("password", PW)]).await;
    let accept = res.location().unwrap();
    assert_eq!(res.status, 303, "{}", res.text());
    assert!(accept.starts_with(&format!("/auth/invitations/accept?token={token}")), "{accept}");
    let html = c.get(&accept).await.text();
    assert!(html.contains("Accept the invitation"), "{html}");
    let res = c.form(&accept, &[("token", &token)]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/welcome")), "{}", res.text());
    assert_eq!(current_org(&c).await, t);
}

/// Path 2 of the takeover review: a provider round trip started by a link from another site
/// (the victim's browser, already signed in at the provider) signs the victim in at most; the
/// invitation waits for their own click on the accept page.
async fn a_round_trip_signs_in_and_the_invitation_waits_for_the_click(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_in(engine, &idp, "multi", &[]).await;
    let (a_id, t) = host(&app, "ola-host@example.com", "Otter").await;
    // Pat signed up with Google earlier.
    let p = app.client();
    assert_eq!(redirect_header(&google(&p, &idp, "/", "g-pat", "pat@example.com").await), "/");
    let pat_org = current_org(&p).await;
    let inv = invite(&app, &t, &a_id, "pat@example.com", "member").await;
    let token = token_of(&inv);
    let users = app.store.user_count().await.unwrap();

    for page in [
        format!("/auth/invitations/signup?token={token}"),
        format!("/auth/invitations/login?token={token}&return_to=/welcome"),
    ] {
        let c = app.client();
        let res = google(&c, &idp, &page, "g-pat", "pat@example.com").await;
        let accept = redirect_header(&res);
        assert!(accept.starts_with(&format!("/auth/invitations/accept?token={token}")), "{accept}");
        assert!(res.set_cookie("authara_access").is_some(), "signed in as Pat");
        assert_eq!(app.store.user_count().await.unwrap(), users);
        assert!(events_of(&app, "organization.invitation.accepted").await.is_empty(), "not accepted by the round trip");
        assert_eq!(current_org(&c).await, pat_org, "still in Pat's own organization");
        let html = c.get(&accept).await.text();
        assert!(html.contains("Accept the invitation") && html.contains("Accept the invitation to join"), "{html}");
    }

    // The code flow too, started from the victim's browser by a link from anywhere.
    idp.sign_in_as(Person::new("s-pat", "pat@example.com"));
    let v = app.client();
    let start = v
        .get(&format!("/auth/oauth/stub/start?return_to={}", encode(&format!("/auth/invitations/login?token={token}"))))
        .await;
    let (_, res) = via_provider(&v, start).await;
    assert_eq!(res.status, 303);
    assert!(events_of(&app, "organization.invitation.accepted").await.is_empty());

    // Pat's own click joins, and goes on to the invitation page's return_to.
    let c = app.client();
    let login = format!("/auth/invitations/login?token={token}&return_to=/welcome");
    let accept = redirect_header(&google(&c, &idp, &login, "g-pat", "pat@example.com").await);
    c.get(&accept).await;
    let res = c.form(&accept, &[("token", &token)]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/welcome")), "{}", res.text());
    assert_eq!(current_org(&c).await, t);
    assert_eq!(current_role(&c).await, "member");
    assert_eq!(events_of(&app, "organization.invitation.accepted").await.len(), 1);
}

async fn an_account_without_the_identity_proves_it_and_joins(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_in(engine, &idp, "multi", &[]).await;
    let (a_id, t) = host(&app, "rho-host@example.com", "Raven").await;
    app.signed_in("rae@example.com", PW).await;
    let rae = user_id(&app, "rae@example.com").await;
    let token = token_of(&invite(&app, &t, &a_id, "rae@example.com", "admin").await);
    let login = format!("/auth/invitations/login?token={token}");
    let accept = format!("/auth/invitations/accept?token={token}");

    // The email has an account without this Google identity: the recovery link, no session.
    let c = app.client();
    let res = google(&c, &idp, &login, "g-rae", "rae@example.com").await;
    let confirm = redirect_header(&res);
    assert!(
        confirm.starts_with("/auth/provider-links/confirm?link_id=")
            && confirm.ends_with(&format!("&return_to={}", encode(&accept))),
        "{confirm}"
    );
    assert!(res.set_cookie("authara_access").is_none());
    assert!(events_of(&app, "organization.invitation.accepted").await.is_empty());
    let page = c.get(&confirm).await;
    assert_eq!(page.status, 200);
    let link_id = confirm.split("link_id=").nth(1).unwrap().split('&').next().unwrap().to_owned();

    // Path 3: the link belongs to the browser that made it; another one (who knows the
    // password) cannot confirm it, nor even see it.
    let other = app.client();
    let seen = other.get(&confirm).await;
    assert_eq!(seen.status, 303, "another browser is sent to the login page");
    let res = other.form("/auth/provider-links/confirm", &[("link_id", &link_id), ("password", PW)]).await;
    assert!(res.set_cookie("authara_access").is_none(), "{}", res.text());
    assert!(app.store.user_by_provider("google", "g-rae").await.unwrap().is_none());

    // A wrong password changes nothing.
    let wrong = c.form("/auth/provider-links/confirm", &[("link_id", &link_id), ("password", "not-it-at-all")]).await;
    assert_eq!(wrong.status, 422);
    assert!(app.store.user_by_provider("google", "g-rae").await.unwrap().is_none());

    // The password proves it: linked, signed in, on the accept page; the click joins.
    let ok = c.form("/auth/provider-links/confirm", &[("link_id", &link_id), ("password", PW)]).await;
    assert_eq!((ok.status, ok.location().as_deref()), (303, Some(accept.as_str())), "{}", ok.text());
    assert_eq!(app.store.user_by_provider("google", "g-rae").await.unwrap().map(|u| u.id.to_string()), Some(rae));
    assert!(events_of(&app, "organization.invitation.accepted").await.is_empty());
    let res = c.form(&accept, &[("token", &token)]).await;
    assert_eq!(res.status, 303, "{}", res.text());
    assert_eq!(current_org(&c).await, t);
    assert_eq!(current_role(&c).await, "admin");
    assert_eq!(events_of(&app, "organization.invitation.accepted").await.len(), 1);
    assert_eq!(app.client().get(&login).await.status, 410, "the invitation is spent");
}

async fn the_code_flow_signs_up_on_an_invitation(engine: Engine) {
    let idp = Provider::start().await;
    // With the allowlist on: the pending invitation admits its address, as for passwords.
    let app = app_in(engine, &idp, "multi", &[("AUTHARA_ACCESS_POLICY_ALLOWLIST_ENABLED", "true")]).await;
    let password = authara::domain::NewPassword::parse(PW).unwrap();
    app.services.accounts().create_admin(&crate::app::email("cap@example.com"), &password).await.unwrap();
    let a_id = user_id(&app, "cap@example.com").await;
    let t = team(&app, &a_id, "Cove").await;
    let inv = invite(&app, &t, &a_id, "cody@example.com", "member").await;
    let token = token_of(&inv);
    let signup = format!("/auth/invitations/signup?token={token}");
    let users = app.store.user_count().await.unwrap();

    // Another address at the provider: back on the invitation page with the reason.
    idp.sign_in_as(Person::new("s-stranger", "stranger@example.com"));
    let c = app.client();
    let start = c.get(&format!("/auth/oauth/stub/start?return_to={}", encode(&signup))).await;
    let (_, res) = via_provider(&c, start).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some(signup.as_str())), "{}", res.text());
    assert!(c.get(&signup).await.text().contains("This invitation is for another email address"));
    assert_eq!(app.store.user_count().await.unwrap(), users);

    idp.sign_in_as(Person::new("s-cody", "cody@example.com"));
    let start = c.get(&format!("/auth/oauth/stub/start?return_to={}", encode(&signup))).await;
    let (_, res) = via_provider(&c, start).await;
    assert_eq!(res.status, 303, "{}", res.text());
    let signup_id = offered(res.location().as_deref().unwrap(), &signup);
    assert_eq!(app.store.user_count().await.unwrap(), users, "nothing yet");
    let res = c.form("/auth/invitations/signup", &[("token", &token), ("signup_id", &signup_id)]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/")), "{}", res.text());
    assert_eq!(current_org(&c).await, t);
    assert_eq!(current_role(&c).await, "member");
    let cody = user_id(&app, "cody@example.com").await;
    assert_eq!(
        app.store.user_by_provider("stub", "s-cody").await.unwrap().map(|u| u.id.to_string()),
        Some(cody.clone())
    );
    assert!(events_of(&app, "user.created").await.iter().any(|e| e["user_id"] == cody.as_str()));
    assert_eq!(events_of(&app, "organization.invitation.accepted").await.len(), 1);
    let admin = app.services.admin();
    let rows = admin.audit(&admin.cli(), &Default::default(), 1).await.unwrap();
    assert!(
        rows.iter().any(|r| r.action.as_str() == "allowlist.email_added" && r.actor.as_str() == "anonymous"),
        "the admission is audited"
    );
}

async fn in_single_mode_the_new_account_joins_only_the_invited_organization(engine: Engine) {
    let idp = Provider::start().await;
    let app = app_in(engine, &idp, "single", &[]).await;
    let a = app.signed_in("sol-host@example.com", PW).await;
    let a_id = user_id(&app, "sol-host@example.com").await;
    let t = current_org(&a).await;
    let token = token_of(&invite(&app, &t, &a_id, "sam@example.com", "member").await);
    let page = format!("/auth/invitations/signup?token={token}");
    let c = app.client();
    let res = google(&c, &idp, &page, "g-sam", "sam@example.com").await;
    let signup_id = offered(&redirect_header(&res), &page);
    let res = c.form("/auth/invitations/signup", &[("token", &token), ("signup_id", &signup_id)]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/")), "{}", res.text());
    assert_eq!(current_org(&c).await, t);
    let sam = user_id(&app, "sam@example.com").await;
    let memberships: Vec<_> = events_of(&app, "organization.membership.created")
        .await
        .into_iter()
        .filter(|e| e["user_id"] == sam.as_str())
        .collect();
    assert_eq!(memberships.len(), 1, "no own organization in single mode: {memberships:?}");

    // The invitation is spent: a provider sign-in from its login page is refused.
    let login = format!("/auth/invitations/login?token={token}");
    let d = app.client();
    let res = google(&d, &idp, &login, "g-sam", "sam@example.com").await;
    assert_eq!(redirect_header(&res), login);
    assert!(res.set_cookie("authara_access").is_none());
}

on_both_engines!(
    invitation_tokens_rest_only_as_their_hash,
    in_single_mode_the_new_account_joins_only_the_invited_organization,
    scenario_google_signup_on_an_invitation_joins_the_organization,
    a_round_trip_signs_in_and_the_invitation_waits_for_the_click,
    an_account_without_the_identity_proves_it_and_joins,
    the_code_flow_signs_up_on_an_invitation,
);
