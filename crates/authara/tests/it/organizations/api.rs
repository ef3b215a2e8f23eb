//! Organizations (behavior.md §9, §2.6): memberships, switching, public management, invitation
//! acceptance at signup, per organization mode, on both engines. Every answer is checked against
//! the contract by the test client.

use std::time::Duration;

use authara::domain::{Audience, OrgId, UserId};
use authara::worker::email::Outcome;
use reqwest::Method;
use serde_json::{Value, json};

use crate::app::drain_mail as drain;
use crate::app::{INTERNAL_TOKEN, Res, TestApp, TestClient};
use crate::harness::{Engine, on_both_engines};
use crate::smtp::SmtpSink;

pub use crate::harness::PW;

/// An app in `mode` with public management on and the internal API configured.
pub async fn start(engine: Engine, mode: &str, extra: &[(&str, &str)]) -> TestApp {
    let mut overrides = vec![
        ("AUTHARA_ORG_MODE", mode),
        ("AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED", "true"),
        ("AUTHARA_INTERNAL_API_TOKEN", INTERNAL_TOKEN),
    ];
    overrides.extend_from_slice(extra);
    TestApp::start_with(engine, &overrides).await
}

/// [`start`] with mail delivered to `sink`.
pub async fn start_with_mail(engine: Engine, mode: &str, sink: &SmtpSink, extra: &[(&str, &str)]) -> TestApp {
    let env = sink.env();
    start(engine, mode, &crate::app::settings(&env, extra)).await
}

pub async fn user_id(app: &TestApp, email: &str) -> String {
    app.store.user_by_email(&crate::app::email(email)).await.unwrap().unwrap().id.to_string()
}

/// The organization of the client's access token.
pub async fn current_org(c: &TestClient) -> String {
    c.get("/auth/api/v1/organizations/current").await.json()["id"].as_str().unwrap().to_owned()
}

/// A team organization created through the internal API, a moment after what came before (the
/// hand-moved clock stands still otherwise, and lists order by creation time).
pub async fn team(app: &TestApp, owner: &str, name: &str) -> String {
    app.clock.advance(Duration::from_millis(1));
    let res = app
        .client()
        .internal("/auth/internal/v1/organizations", Some(&json!({"name": name, "created_by_user_id": owner})))
        .await;
    assert_eq!(res.status, 201, "{}", res.text());
    res.json()["organization"]["id"].as_str().unwrap().to_owned()
}

/// Creates an invitation through the internal API, a moment after what came before.
pub async fn invite(app: &TestApp, org: &str, actor: &str, email: &str, role: &str) -> Res {
    app.clock.advance(Duration::from_millis(1));
    let body = json!({"actor_user_id": actor, "email": email, "role": role});
    app.client().internal(&format!("/auth/internal/v1/organizations/{org}/invitations"), Some(&body)).await
}

/// The token of a created invitation's `invite_url`.
pub fn token_of(res: &Res) -> String {
    let url = res.json()["invitation"]["invite_url"].as_str().unwrap().to_owned();
    url.split_once("token=").unwrap().1.to_owned()
}

pub fn invitation_id(res: &Res) -> String {
    res.json()["invitation"]["id"].as_str().unwrap().to_owned()
}

/// `POST /signup/direct` with an invitation code: the client and the answer.
pub async fn signup_with_code(app: &TestApp, email: &str, code: &str) -> (TestClient, Res) {
    let c = app.csrf_client().await;
    let body = json!({"email": email, "password": PW, "invitation_code": code});
    let res = c.json(Method::POST, "/auth/api/v1/signup/direct", &body).await;
    (c, res)
}

/// (type, data) of every recorded event, oldest first.
/// The domain changes recorded (the public events, and the internal ones that send mail), in
/// order; the audit-only facts (sign-ins, sessions ended…) are left out.
pub async fn events(app: &TestApp) -> Vec<(String, Value)> {
    let rows = app.store.events_since(0, 1000).await.unwrap();
    rows.into_iter()
        .filter(|e| crate::webhooks::events::is_change(&e.kind))
        .map(|e| (e.kind, serde_json::from_str(&e.data).unwrap()))
        .collect()
}

pub async fn events_of(app: &TestApp, kind: &str) -> Vec<Value> {
    events(app).await.into_iter().filter(|(k, _)| k == kind).map(|(_, d)| d).collect()
}

/// Switches the client's session to `org` (multi mode).
pub async fn switch(c: &TestClient, org: &str) -> Res {
    c.post(&format!("/auth/api/v1/organizations/{org}/switch")).await
}

fn names(list: &Res, key: &str) -> Vec<(String, String)> {
    list.json()[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["name"].as_str().unwrap_or_default().to_owned(), o["role"].as_str().unwrap().to_owned()))
        .collect()
}

async fn memberships_and_current_members_per_mode(engine: Engine) {
    let app = start(engine, "personal", &[]).await;
    let c = app.signed_in("solo@example.com", PW).await;
    let list = c.get("/auth/api/v1/organizations").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json()["organizations"].as_array().unwrap().len(), 1);
    assert_eq!(list.json()["organizations"][0]["id"].as_str().unwrap(), current_org(&c).await);
    let res = c.get("/auth/api/v1/organizations/current/members").await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "forbidden"), "members are hidden in personal mode");

    let app = start(engine, "single", &[]).await;
    let c = app.signed_in("one@example.com", PW).await;
    let res = c.get("/auth/api/v1/organizations/current/members").await;
    assert_eq!(res.status, 200, "{}", res.text());
    let members = res.json()["members"].clone();
    assert_eq!(members.as_array().unwrap().len(), 1);
    assert_eq!(members[0]["email"], "one@example.com");
    assert_eq!(members[0]["role"], "owner");
    assert_eq!(members[0]["user_id"].as_str().unwrap(), user_id(&app, "one@example.com").await);
    let anon = app.client();
    for path in ["/auth/api/v1/organizations", "/auth/api/v1/organizations/current/members"] {
        assert_eq!(anon.get(path).await.status, 401, "{path}");
    }
}

async fn switch_moves_the_session_and_replaces_its_refresh_tokens(engine: Engine) {
    let app = start(engine, "multi", &[]).await;
    let c = app.signed_in("switch@example.com", PW).await;
    let me = user_id(&app, "switch@example.com").await;
    let personal = current_org(&c).await;
    let t = team(&app, &me, "Team Switch").await;
    let orgs = c.get("/auth/api/v1/organizations").await.json()["organizations"].clone();
    assert_eq!(orgs.as_array().unwrap().len(), 2);
    assert_eq!(
        (orgs[0]["id"].as_str().unwrap(), orgs[1]["id"].as_str().unwrap()),
        (personal.as_str(), t.as_str()),
        "oldest membership first"
    );
    let old_access = c.cookie("authara_access").unwrap();
    let old_refresh = c.cookie("authara_refresh").unwrap();

    let res = switch(&c, &t).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(res.set_cookie("authara_access").is_some() && res.set_cookie("authara_refresh").is_some());
    assert_eq!(res.json()["refresh_token"].as_str().unwrap(), c.cookie("authara_refresh").unwrap());
    let now = c.get("/auth/api/v1/organizations/current").await.json();
    assert_eq!((now["id"].as_str().unwrap(), now["role"].as_str().unwrap()), (t.as_str(), "owner"));

    // The session's earlier refresh tokens are gone; the old access token lives until expiry.
    let raw = app.client();
    let res = raw.json(Method::POST, "/auth/api/v1/tokens/refresh", &json!({"refresh_token": old_refresh})).await;
    assert_eq!(res.status, 401, "the pre-switch refresh token was deleted");
    let old = app.client();
    old.set_cookie("authara_access", &old_access);
    assert_eq!(old.get("/auth/api/v1/organizations/current").await.json()["id"].as_str().unwrap(), personal);
    // A refresh stays in the new organization.
    assert_eq!(c.post("/auth/api/v1/sessions/refresh").await.status, 200);
    assert_eq!(current_org(&c).await, t);
    // And back.
    assert_eq!(switch(&c, &personal).await.status, 200);
    assert_eq!(current_org(&c).await, personal);
    let switched: Vec<_> = events(&app).await.into_iter().filter(|(k, _)| k.contains("switch")).collect();
    assert!(switched.is_empty(), "a switch is not a domain event");
}

async fn switch_is_refused_outside_multi_and_outside_memberships(engine: Engine) {
    let app = start(engine, "multi", &[]).await;
    let c = app.signed_in("sw-a@example.com", PW).await;
    let other = app.signed_in("sw-b@example.com", PW).await;
    let foreign = current_org(&other).await;
    for org in [foreign.clone(), uuid::Uuid::new_v4().to_string()] {
        let res = switch(&c, &org).await;
        assert_eq!((res.status, res.error_code().as_str()), (403, "forbidden"), "not a member of {org}");
    }
    let own = current_org(&c).await;
    let res = c.post(&format!("/auth/api/v1/organizations/{own}/switch?audience=admin")).await;
    assert_eq!(res.status, 403, "no platform role, no admin audience");
    let res = c.post("/auth/api/v1/organizations/not-a-uuid/switch").await;
    assert_eq!((res.status, res.error_code().as_str()), (400, "invalid_request"));
    let anon = app.csrf_client().await;
    assert_eq!(switch(&anon, &own).await.status, 401);
    *c.send_csrf.lock().unwrap() = false;
    assert_eq!(switch(&c, &own).await.status, 403, "CSRF");

    let app = start(engine, "single", &[]).await;
    let c = app.signed_in("sw-single@example.com", PW).await;
    let own = current_org(&c).await;
    let res = switch(&c, &own).await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "forbidden"), "switching is multi mode only");
}

async fn management_routes_answer_404_while_the_flag_is_off(engine: Engine) {
    let app = TestApp::start(engine).await;
    let c = app.signed_in("flag@example.com", PW).await;
    let org = current_org(&c).await;
    let me = user_id(&app, "flag@example.com").await;
    let id = uuid::Uuid::new_v4();
    let gets = [
        format!("/auth/api/v1/organizations/{org}"),
        format!("/auth/api/v1/organizations/{org}/members"),
        format!("/auth/api/v1/organizations/{org}/members/{me}"),
        format!("/auth/api/v1/organizations/{org}/invitations"),
        format!("/auth/api/v1/organizations/{org}/invitations/{id}"),
        format!("/auth/api/v1/users/{me}/memberships"),
    ];
    let anon = app.client();
    for path in &gets {
        assert_eq!(anon.get(path).await.status, 401, "access is checked first: {path}");
        let res = c.get(path).await;
        assert_eq!((res.status, res.error_code().as_str()), (404, "not_found"), "{path}");
    }
    *c.send_csrf.lock().unwrap() = false;
    let res = c.json(Method::PATCH, &format!("/auth/api/v1/organizations/{org}"), &json!({"name": "x"})).await;
    assert_eq!(res.status, 404, "availability before CSRF");
    let res = c.post(&format!("/auth/api/v1/organizations/{org}/invitations/{id}/revoke")).await;
    assert_eq!(res.status, 404);
}

async fn management_checks_the_session_org_then_membership_then_role(engine: Engine) {
    let app = start(engine, "multi", &[]).await;
    let owner = app.signed_in("own@example.com", PW).await;
    let owner_id = user_id(&app, "own@example.com").await;
    let personal = current_org(&owner).await;
    let t = team(&app, &owner_id, "Managers").await;
    // A member of the team, not a manager.
    let inv = invite(&app, &t, &owner_id, "mem@example.com", "member").await;
    let (member, res) = signup_with_code(&app, "mem@example.com", &token_of(&inv)).await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(switch(&member, &t).await.status, 200);

    let anon = app.csrf_client().await;
    assert_eq!(anon.get(&format!("/auth/api/v1/organizations/{t}")).await.status, 401);
    // The path organization must be the session's, even for a member.
    let res = owner.get(&format!("/auth/api/v1/organizations/{t}")).await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "forbidden"));
    let res = owner.get(&format!("/auth/api/v1/organizations/{}", uuid::Uuid::new_v4())).await;
    assert_eq!(res.status, 403);
    let res = owner.get(&format!("/auth/api/v1/organizations/{personal}")).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["organization"]["kind"], "personal");
    assert_eq!(res.json()["organization"]["created_by_user_id"].as_str().unwrap(), owner_id);

    // A member reads, but neither renames nor sees invitations.
    let res = member.get(&format!("/auth/api/v1/organizations/{t}")).await;
    assert_eq!((res.status, res.json()["organization"]["name"].as_str()), (200, Some("Managers")));
    assert_eq!(member.get(&format!("/auth/api/v1/organizations/{t}/members")).await.status, 200);
    let res = member.json(Method::PATCH, &format!("/auth/api/v1/organizations/{t}"), &json!({"name": "Mine"})).await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "forbidden"));
    assert_eq!(member.get(&format!("/auth/api/v1/organizations/{t}/invitations")).await.status, 403);
    let res = member.get(&format!("/auth/api/v1/organizations/{t}/invitations/{}", invitation_id(&inv))).await;
    assert_eq!(res.status, 403);
    let res = member.post(&format!("/auth/api/v1/organizations/{t}/invitations/{}/revoke", invitation_id(&inv))).await;
    assert_eq!(res.status, 403);
    // CSRF is checked after access and availability.
    *member.send_csrf.lock().unwrap() = false;
    let res = member.json(Method::PATCH, &format!("/auth/api/v1/organizations/{t}"), &json!({"name": "Mine"})).await;
    assert_eq!(res.status, 403);
    let res = member.get(&format!("/auth/api/v1/organizations/{t}/members/not-a-uuid")).await;
    assert_eq!((res.status, res.error_code().as_str()), (400, "invalid_request"));
}

async fn rename_records_organization_updated_and_shows_at_once(engine: Engine) {
    let app = start(engine, "single", &[]).await;
    let c = app.signed_in("rename@example.com", PW).await;
    let org = current_org(&c).await;
    assert!(c.get("/auth/api/v1/user").await.json()["organization"]["name"].as_str().unwrap().starts_with("rename"));
    let path = format!("/auth/api/v1/organizations/{org}");
    for bad in [json!({"name": "   "}), json!({"name": "x\u{7}y"}), json!({"name": "ok", "kind": "team"}), json!({})] {
        let res = c.json(Method::PATCH, &path, &bad).await;
        assert_eq!((res.status, res.error_code().as_str()), (400, "invalid_request"), "{bad}");
    }
    let res = c.json(Method::PATCH, &path, &json!({"name": "  Acme Inc  "})).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["organization"]["name"], "Acme Inc");
    assert_eq!(res.json()["organization"]["kind"], "team");
    assert_eq!(c.get("/auth/api/v1/user").await.json()["organization"]["name"], "Acme Inc", "no stale profile");
    assert_eq!(c.get(&path).await.json()["organization"]["name"], "Acme Inc");
    let updated = events_of(&app, "organization.updated").await;
    assert_eq!(updated.len(), 1);
    assert_eq!(
        updated[0],
        json!({"organization_id": org, "name": "Acme Inc", "kind": "team",
               "created_by_user_id": user_id(&app, "rename@example.com").await})
    );
}

async fn members_and_one_member(engine: Engine) {
    let app = start(engine, "single", &[]).await;
    let a = app.signed_in("lead@example.com", PW).await;
    let a_id = user_id(&app, "lead@example.com").await;
    let org = current_org(&a).await;
    let inv = invite(&app, &org, &a_id, "second@example.com", "member").await;
    app.clock.advance(Duration::from_millis(5));
    let (b, res) = signup_with_code(&app, "second@example.com", &token_of(&inv)).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let b_id = user_id(&app, "second@example.com").await;

    let res = b.get(&format!("/auth/api/v1/organizations/{org}/members")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let list = res.json()["members"].clone();
    let who: Vec<(&str, &str, bool)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["email"].as_str().unwrap(), m["role"].as_str().unwrap(), m["disabled"].as_bool().unwrap()))
        .collect();
    assert_eq!(who, [("lead@example.com", "owner", false), ("second@example.com", "member", false)]);
    let current = b.get("/auth/api/v1/organizations/current/members").await.json();
    assert_eq!(current["members"].as_array().unwrap().len(), 2);

    let res = a.get(&format!("/auth/api/v1/organizations/{org}/members/{b_id}")).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json()["member"]["user_id"].as_str().unwrap(), b_id);
    assert_eq!(res.json()["member"]["organization_id"].as_str().unwrap(), org);
    let res = a.get(&format!("/auth/api/v1/organizations/{org}/members/{}", uuid::Uuid::new_v4())).await;
    assert_eq!((res.status, res.error_code().as_str()), (404, "membership_not_found"));
    assert_eq!(a.get(&format!("/auth/api/v1/organizations/{org}/members/{a_id}")).await.status, 200);
}

/// Organization names with bidirectional overrides or other invisible characters are refused
/// (created, renamed); usernames cannot hold them either; and the invitation email quotes the
/// name, so its words cannot pass for ours, without the invisible characters of a name stored
/// before they were refused.
async fn names_with_hidden_characters_are_refused(engine: Engine) {
    let app = start(engine, "multi", &[]).await;
    let a = app.signed_in("namer@example.com", PW).await;
    let a_id = user_id(&app, "namer@example.com").await;
    let create = |name: &'static str| {
        let (app, a_id) = (&app, a_id.clone());
        async move {
            let body = json!({"name": name, "created_by_user_id": a_id});
            app.client().internal("/auth/internal/v1/organizations", Some(&body)).await
        }
    };
    for hidden in [
        "Acme\u{202E}gnp.exe",
        "\u{202B}Acme",
        "Acme\u{2067}x\u{2069}",
        "Ac\u{200B}me",
        "Acme\u{FEFF}",
        "Acme\u{E0041}",
    ] {
        let res = create(hidden).await;
        assert_eq!((res.status, res.error_code().as_str()), (400, "invalid_request"), "{hidden:?}: {}", res.text());
    }
    let res = create("\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467} Family").await;
    assert_eq!(res.status, 201, "a joiner inside an emoji sequence is a visible name: {}", res.text());
    let t = team(&app, &a_id, "Quiet").await;
    assert_eq!(switch(&a, &t).await.status, 200);
    let path = format!("/auth/api/v1/organizations/{t}");
    let res = a.json(Method::PATCH, &path, &json!({"name": "Quiet\u{202E}teiuq"})).await;
    assert_eq!((res.status, res.error_code().as_str()), (400, "invalid_request"), "{}", res.text());
    let res = a.form("/auth/user/username", &[("username", "eve\u{202E}lin")]).await;
    assert!(a.back_on_account(&res).await.contains("Usernames are 3 to 30 letters"), "usernames are ASCII only");
}

/// Words in the name stay the organization's in the invitation mail: quoted, with its own quotes
/// unable to close ours; a name stored before the rule loses its override.
async fn invitation_mail_quotes_the_organizations_name(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = start_with_mail(engine, "multi", &sink, &[]).await;
    let a = app.signed_in("namer@example.com", PW).await;
    let a_id = user_id(&app, "namer@example.com").await;
    let t = team(&app, &a_id, "Quiet").await;
    assert_eq!(switch(&a, &t).await.status, 200);
    let path = format!("/auth/api/v1/organizations/{t}");
    let res = a
        .json(
            Method::PATCH,
            &path,
            &json!({"name": "Quiet\" on Authara. Your account is suspended: sign in at evil.example"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(invite(&app, &t, &a_id, "reader@example.com", "member").await.status, 201);
    // A name stored before the rule, with an override in it.
    let old = team(&app, &a_id, "Legacy").await;
    app.db.raw_sql("UPDATE organizations SET name = 'Old\u{202E}emaN' WHERE name = 'Legacy'").await;
    assert_eq!(invite(&app, &old, &a_id, "older@example.com", "member").await.status, 201);
    drain(&app).await;
    let mail = sink.to("reader@example.com");
    assert_eq!(mail.len(), 1);
    let text = mail[0].decoded();
    assert!(
        text.contains(
            "join the organization \"Quiet' on Authara. Your account is suspended: sign in at evil.example\" on "
        ),
        "{text}"
    );
    let mail = sink.to("older@example.com");
    assert_eq!(mail.len(), 1);
    assert!(mail[0].data.contains("Subject: You're invited to \"OldemaN\""), "{}", mail[0].data);
    assert!(!mail[0].data.contains('\u{202E}'), "{}", mail[0].data);
}

async fn scenario_an_invitation_from_creation_to_acceptance(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = start_with_mail(engine, "multi", &sink, &[]).await;
    let a = app.signed_in("inviter@example.com", PW).await;
    let a_id = user_id(&app, "inviter@example.com").await;
    let t = team(&app, &a_id, "Lighthouse").await;
    assert_eq!(switch(&a, &t).await.status, 200);

    let body = json!({"actor_user_id": a_id, "email": " Guest@Example.com ", "role": "admin", "metadata": {"plan": "pro", "seats": 3}});
    let created = app.client().internal(&format!("/auth/internal/v1/organizations/{t}/invitations"), Some(&body)).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let inv = created.json()["invitation"].clone();
    assert_eq!(
        (inv["email"].as_str(), inv["role"].as_str(), inv["status"].as_str()),
        (Some("guest@example.com"), Some("admin"), Some("pending"))
    );
    assert_eq!(inv["metadata"], json!({"plan": "pro", "seats": 3}));
    let token = token_of(&created);
    assert_eq!(token.len(), 43);
    assert_eq!(
        inv["invite_url"].as_str().unwrap(),
        format!("{}/auth/invitations/accept?token={token}", app.config.public_url)
    );

    // The event carries the contract's fields and nothing secret.
    let ev = app
        .store
        .events_since(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .find(|e| e.kind == "organization.invitation.created")
        .unwrap();
    assert!(!ev.data.contains(&token), "no token in webhook-visible data");
    let data: Value = serde_json::from_str(&ev.data).unwrap();
    let mut keys: Vec<&String> = data.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["email", "expires_at", "invitation_id", "invited_by_user_id", "metadata", "organization_id", "role"]
    );
    assert_eq!(data["invited_by_user_id"].as_str().unwrap(), a_id);
    assert_eq!(data["expires_at"], inv["expires_at"]);

    // The email, from the outbox.
    assert!(sink.messages().is_empty(), "sent by the worker, not in the request");
    assert_eq!(drain(&app).await, vec![Outcome::Sent]);
    let mail = sink.to("guest@example.com");
    assert_eq!(mail.len(), 1);
    assert!(mail[0].data.contains("Subject: You're invited to \"Lighthouse\""), "{}", mail[0].data);
    assert_eq!(mail[0].invitation_token().as_deref(), Some(token.as_str()));
    assert!(
        !mail[0].decoded().contains("Invitation code"),
        "the raw code only with AUTHARA_INVITATION_EMAIL_INCLUDE_CODE"
    );

    // Managers list and read it, without the URL.
    let list = a.get(&format!("/auth/api/v1/organizations/{t}/invitations")).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json()["invitations"].as_array().unwrap().len(), 1);
    assert!(list.json()["invitations"][0].get("invite_url").is_none());
    let one = a.get(&format!("/auth/api/v1/organizations/{t}/invitations/{}", invitation_id(&created))).await;
    assert_eq!(one.json()["invitation"]["status"], "pending");

    // The invitee signs up with the code: own personal organization plus the team.
    let (b, res) = signup_with_code(&app, "guest@example.com", &token).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let b_id = user_id(&app, "guest@example.com").await;
    let orgs = b.get("/auth/api/v1/organizations").await;
    // Both memberships were made in one transaction (one time): their order is by organization id.
    let mut roles = names(&orgs, "organizations");
    roles.sort_by_key(|(name, _)| name != "Lighthouse");
    assert_eq!(roles.len(), 2, "{roles:?}");
    assert_eq!(roles[0], ("Lighthouse".to_owned(), "admin".to_owned()));
    assert_eq!(roles[1].1, "owner");
    assert_ne!(current_org(&b).await, t, "the session starts in the default (personal) organization");

    let accepted = events_of(&app, "organization.invitation.accepted").await;
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0]["accepted_by_user_id"].as_str().unwrap(), b_id);
    assert_eq!(accepted[0]["metadata"], json!({"plan": "pro", "seats": 3}));
    assert_eq!(accepted[0]["invitation_id"].as_str().unwrap(), invitation_id(&created));
    let joined: Vec<Value> = events_of(&app, "organization.membership.created")
        .await
        .into_iter()
        .filter(|d| d["organization_id"] == json!(t))
        .collect();
    assert_eq!(joined.len(), 2, "the owner's initial membership and the invitee's");
    assert_eq!(
        joined[1],
        json!({"organization_id": t, "user_id": b_id, "role": "admin", "is_initial_membership": false,
               "invitation_id": invitation_id(&created), "metadata": {"plan": "pro", "seats": 3}})
    );

    let one = a.get(&format!("/auth/api/v1/organizations/{t}/invitations/{}", invitation_id(&created))).await;
    assert_eq!(one.json()["invitation"]["status"], "accepted");
    let res = a.post(&format!("/auth/api/v1/organizations/{t}/invitations/{}/revoke", invitation_id(&created))).await;
    assert_eq!((res.status, res.error_code().as_str()), (409, "invitation_already_accepted"));
    let res = invite(&app, &t, &a_id, "guest@example.com", "member").await;
    assert_eq!((res.status, res.error_code().as_str()), (409, "already_member"));
    let (_, res) = signup_with_code(&app, "late-guest@example.com", &token).await;
    assert_eq!((res.status, res.error_code().as_str()), (400, "invalid_request"), "a code works once");
}

async fn the_invitation_email_can_carry_the_code(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = start_with_mail(engine, "single", &sink, &[("AUTHARA_INVITATION_EMAIL_INCLUDE_CODE", "true")]).await;
    let a = app.signed_in("coder@example.com", PW).await;
    let org = current_org(&a).await;
    let created = invite(&app, &org, &user_id(&app, "coder@example.com").await, "code@example.com", "").await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["invitation"]["role"], "member", "an empty role is member");
    assert_eq!(drain(&app).await, vec![Outcome::Sent]);
    let mail = &sink.to("code@example.com")[0];
    assert!(mail.decoded().contains(&format!("Invitation code: {}", token_of(&created))), "{}", mail.decoded());
}

/// Another organization's real ids under your organization's path are not found (never acted
/// on): its member, its invitation (read, revoke, and through the internal API's resend and
/// member removal).
async fn another_organizations_ids_under_yours_are_not_found(engine: Engine) {
    let app = start(engine, "multi", &[]).await;
    let a = app.signed_in("alpha@example.com", PW).await;
    let a_id = user_id(&app, "alpha@example.com").await;
    app.signed_in("beta@example.com", PW).await;
    let b_id = user_id(&app, "beta@example.com").await;
    let ta = team(&app, &a_id, "Alpha").await;
    let tb = team(&app, &b_id, "Beta").await;
    assert_eq!(switch(&a, &ta).await.status, 200);
    let theirs = invitation_id(&invite(&app, &tb, &b_id, "x@example.com", "member").await);
    let mine = format!("/auth/api/v1/organizations/{ta}");
    let not_found = |res: &Res, code: &str| {
        assert_eq!((res.status, res.error_code().as_str()), (404, code), "{}", res.text());
    };

    not_found(&a.get(&format!("{mine}/members/{b_id}")).await, "membership_not_found");
    not_found(&a.get(&format!("{mine}/invitations/{theirs}")).await, "invitation_not_found");
    not_found(&a.post(&format!("{mine}/invitations/{theirs}/revoke")).await, "invitation_not_found");
    let listed = a.get(&format!("{mine}/invitations")).await.json();
    assert_eq!(listed["invitations"], json!([]), "not listed either");
    let server = app.client();
    let resend = format!("/auth/internal/v1/organizations/{ta}/invitations/{theirs}/resend");
    not_found(&server.internal(&resend, None).await, "invitation_not_found");
    let remove = format!("/auth/internal/v1/organizations/{ta}/members/{b_id}");
    let body = json!({"actor_user_id": a_id}).to_string().into_bytes();
    let auth = format!("Bearer {INTERNAL_TOKEN}");
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    not_found(&server.send(Method::DELETE, &remove, Some(body), &headers).await, "membership_not_found");

    // Beta's invitation is untouched: still pending, revoked by nobody.
    assert!(events_of(&app, "organization.invitation.revoked").await.is_empty());
    assert_eq!(events_of(&app, "organization.invitation.created").await.len(), 1, "no resend either");
}

async fn revoke_rules(engine: Engine) {
    let app = start(engine, "multi", &[("AUTHARA_ORGANIZATION_INVITATION_TTL", "5m")]).await;
    let a = app.signed_in("revoker@example.com", PW).await;
    let a_id = user_id(&app, "revoker@example.com").await;
    let t = team(&app, &a_id, "Revokers").await;
    assert_eq!(switch(&a, &t).await.status, 200);
    let revoke = |id: String| {
        let a = a.clone();
        let t = t.clone();
        async move { a.post(&format!("/auth/api/v1/organizations/{t}/invitations/{id}/revoke")).await }
    };

    let c = invite(&app, &t, &a_id, "c@example.com", "member").await;
    let res = revoke(invitation_id(&c)).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["invitation"]["status"], "revoked");
    assert!(res.json()["invitation"].get("invite_url").is_none());
    let revoked = events_of(&app, "organization.invitation.revoked").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["revoked_by_user_id"].as_str().unwrap(), a_id);
    assert_eq!(revoked[0]["email"], "c@example.com");
    let res = revoke(invitation_id(&c)).await;
    assert_eq!((res.status, res.error_code().as_str()), (409, "invitation_revoked"));
    let (_, res) = signup_with_code(&app, "c@example.com", &token_of(&c)).await;
    assert_eq!(res.status, 400, "a revoked code is refused");

    let d = invite(&app, &t, &a_id, "d@example.com", "member").await;
    app.clock.advance(Duration::from_secs(6 * 60));
    let res = revoke(invitation_id(&d)).await;
    assert_eq!((res.status, res.error_code().as_str()), (409, "invitation_expired"));
    let res = revoke(uuid::Uuid::new_v4().to_string()).await;
    assert_eq!((res.status, res.error_code().as_str()), (404, "invitation_not_found"));
    let list = a.get(&format!("/auth/api/v1/organizations/{t}/invitations")).await.json();
    let statuses: Vec<&str> =
        list["invitations"].as_array().unwrap().iter().map(|i| i["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["expired", "revoked"], "newest first, status computed when read");
    assert_eq!(events_of(&app, "organization.invitation.revoked").await.len(), 1, "expiry records nothing");
}

async fn single_mode_invited_signup_joins_only_the_invited_org(engine: Engine) {
    let app = start(engine, "single", &[]).await;
    let a = app.signed_in("boss@example.com", PW).await;
    let a_id = user_id(&app, "boss@example.com").await;
    let org = current_org(&a).await;
    let inv = invite(&app, &org, &a_id, "joiner@example.com", "member").await;
    let (b, res) = signup_with_code(&app, "joiner@example.com", &token_of(&inv)).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let b_id = user_id(&app, "joiner@example.com").await;
    let orgs = b.get("/auth/api/v1/organizations").await.json();
    assert_eq!(orgs["organizations"].as_array().unwrap().len(), 1, "no organization of their own");
    let me = b.get("/auth/api/v1/user").await.json();
    assert_eq!(
        (me["organization"]["id"].as_str().unwrap(), me["organization"]["role"].as_str().unwrap()),
        (org.as_str(), "member")
    );
    let created = events_of(&app, "organization.created").await;
    assert!(created.iter().all(|d| d["created_by_user_id"] != json!(b_id)), "{created:?}");
    // Their one organization cannot be left (as /capabilities says: no leaving in single mode).
    assert_eq!(b.get("/auth/api/v1/capabilities").await.json()["allows_organization_leave"], false);
    let res = b.post(&format!("/auth/api/v1/organizations/{org}/leave")).await;
    assert_eq!(res.status, 403, "{}", res.text());
    assert_eq!(b.get("/auth/api/v1/user").await.json()["organization"]["id"], org.as_str(), "still a member");
    // After the owner's three signup events and the invitation's: the invitee's own.
    let kinds: Vec<String> = events(&app).await.into_iter().map(|(k, _)| k).skip(4).collect();
    assert_eq!(kinds, ["user.created", "organization.invitation.accepted", "organization.membership.created"]);

    // A user who already belongs to an organization cannot accept in single mode.
    let c = app.signed_in("settled@example.com", PW).await;
    let inv = invite(&app, &org, &a_id, "settled@example.com", "member").await;
    let access = c.cookie("authara_access").unwrap();
    let who = app.services.auth().authenticate(&access, Some(Audience::App)).await.unwrap();
    let err = app.services.invitations().accept(&who, &token_of(&inv)).await.unwrap_err();
    assert!(matches!(err, authara::services::invitations::AcceptError::AlreadyInAnOrganization), "{err:?}");
}

async fn personal_mode_has_no_invitations_or_member_lists(engine: Engine) {
    let app = start(engine, "personal", &[]).await;
    let c = app.signed_in("alone@example.com", PW).await;
    let me = user_id(&app, "alone@example.com").await;
    let org = current_org(&c).await;
    assert_eq!(
        c.get("/auth/api/v1/capabilities").await.json(),
        json!({"organization_mode": "personal", "has_visible_organizations": false, "allows_invitations": false,
               "allows_public_organization_management": true, "allows_org_switching": false,
               "allows_user_created_team_orgs": false, "allows_organization_leave": false})
    );
    let res = invite(&app, &org, &me, "friend@example.com", "member").await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "actor_not_allowed"));
    let res = app
        .client()
        .internal(&format!("/auth/internal/v1/organizations/{org}/invitations/{}/resend", uuid::Uuid::new_v4()), None)
        .await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "forbidden"));
    let res = app
        .client()
        .internal("/auth/internal/v1/organizations", Some(&json!({"name": "T", "created_by_user_id": me})))
        .await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "forbidden"));
    for path in
        [format!("/auth/api/v1/organizations/{org}/members"), format!("/auth/api/v1/organizations/{org}/invitations")]
    {
        assert_eq!(c.get(&path).await.status, 403, "{path}");
    }
    assert_eq!(c.get(&format!("/auth/api/v1/organizations/{org}")).await.status, 200);
    let (_, res) = signup_with_code(&app, "friend@example.com", "any-code-at-all").await;
    assert_eq!((res.status, res.error_code().as_str()), (400, "invalid_request"));
    assert!(app.store.user_by_email(&crate::app::email("friend@example.com")).await.unwrap().is_none());
}

async fn signup_challenge_with_an_invitation_code(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = start_with_mail(engine, "multi", &sink, &[("AUTHARA_CHALLENGE_ENABLED", "true")]).await;
    // With challenges on, the inviter signs up through a challenge too.
    let anon = app.csrf_client().await;
    let begin = |c: TestClient, email: &'static str, code: Option<String>| async move {
        let mut body = json!({"email": email, "password": PW});
        if let Some(code) = code {
            body["invitation_code"] = json!(code);
        }
        c.json(Method::POST, "/auth/api/v1/signup/challenges", &body).await
    };
    let res = begin(anon.clone(), "host@example.com", None).await;
    assert_eq!(res.status, 202);
    drain(&app).await;
    let code = sink.code_for("host@example.com");
    let verify = json!({"challenge_id": res.json()["challenge_id"], "code": code});
    assert_eq!(anon.json(Method::POST, "/auth/api/v1/signup/challenges/verify", &verify).await.status, 201);
    let host = user_id(&app, "host@example.com").await;
    let t = team(&app, &host, "Verified Team").await;
    let inv = invite(&app, &t, &host, "newbie@example.com", "member").await;
    let token = token_of(&inv);
    assert_eq!(drain(&app).await, vec![Outcome::Sent], "the invitation");

    let c = app.csrf_client().await;
    let res = begin(c.clone(), "newbie@example.com", Some("not-a-real-code".to_owned())).await;
    assert_eq!((res.status, res.error_code().as_str()), (400, "invalid_request"));
    let res = begin(c.clone(), "host@example.com", Some("not-a-real-code".to_owned())).await;
    assert_eq!(res.status, 202, "a taken email gets the opaque challenge, whatever the code");
    let res = begin(c.clone(), "newbie@example.com", Some(token.clone())).await;
    assert_eq!(res.status, 202, "{}", res.text());
    let id = res.json()["challenge_id"].clone();
    drain(&app).await;
    assert_eq!(sink.to("newbie@example.com").len(), 2, "the invitation and the code");
    let code = sink.code_for("newbie@example.com");
    let res =
        c.json(Method::POST, "/auth/api/v1/signup/challenges/verify", &json!({"challenge_id": id, "code": code})).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let orgs = c.get("/auth/api/v1/organizations").await.json();
    let ids: Vec<&str> = orgs["organizations"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&t.as_str()));
    assert_ne!(current_org(&c).await, t, "the session starts in the personal organization");
    assert_eq!(events_of(&app, "organization.invitation.accepted").await.len(), 1);
}

async fn foreign_unknown_and_expired_codes_are_400(engine: Engine) {
    let app = start(engine, "multi", &[("AUTHARA_ORGANIZATION_INVITATION_TTL", "5m")]).await;
    let a = app.signed_in("codes@example.com", PW).await;
    let a_id = user_id(&app, "codes@example.com").await;
    let org = current_org(&a).await;
    let inv = invite(&app, &org, &a_id, "meant@example.com", "member").await;
    let token = token_of(&inv);
    for (email, code) in
        [("other@example.com", token.as_str()), ("meant@example.com", "garbage"), ("meant@example.com", "")]
    {
        let (_, res) = signup_with_code(&app, email, code).await;
        if code.is_empty() {
            assert_eq!(res.status, 201, "an empty code is no code");
            continue;
        }
        assert_eq!((res.status, res.error_code().as_str()), (400, "invalid_request"), "{email} {code}");
        assert!(app.store.user_by_email(&crate::app::email(email)).await.unwrap().is_none(), "nothing was created");
    }
    let inv = invite(&app, &org, &a_id, "slow@example.com", "member").await;
    app.clock.advance(Duration::from_secs(6 * 60));
    let (_, res) = signup_with_code(&app, "slow@example.com", &token_of(&inv)).await;
    assert_eq!((res.status, res.error_code().as_str()), (400, "invalid_request"), "expired");
}

async fn concurrent_acceptances_create_one_membership(engine: Engine) {
    let app = start(engine, "multi", &[]).await;
    let a = app.signed_in("race-owner@example.com", PW).await;
    let a_id = user_id(&app, "race-owner@example.com").await;
    let t = team(&app, &a_id, "Race").await;
    assert_eq!(current_org(&a).await.len(), 36);
    let b = app.signed_in("racer@example.com", PW).await;
    let b_id = user_id(&app, "racer@example.com").await;
    let inv = invite(&app, &t, &a_id, "racer@example.com", "member").await;
    let token = token_of(&inv);
    let access = b.cookie("authara_access").unwrap();
    let who = app.services.auth().authenticate(&access, Some(Audience::App)).await.unwrap();

    let (orgs_1, orgs_2) = (app.services.invitations().clone(), app.services.invitations().clone());
    let (w1, w2, t1, t2) = (who.clone(), who.clone(), token.clone(), token.clone());
    let first = tokio::spawn(async move { orgs_1.accept(&w1, &t1).await });
    let second = tokio::spawn(async move { orgs_2.accept(&w2, &t2).await });
    let (first, second) = (first.await.unwrap().unwrap(), second.await.unwrap().unwrap());
    assert_eq!(first.organization_id.to_string(), t);
    assert_eq!(
        [first.membership_created, second.membership_created].iter().filter(|c| **c).count(),
        1,
        "exactly one acceptance joined: {first:?} {second:?}"
    );
    let m = app.store.membership(OrgId(t.parse().unwrap()), UserId(b_id.parse().unwrap())).await.unwrap();
    assert_eq!(m.map(|m| m.role.as_str()), Some("member"));
    let joined: Vec<Value> = events_of(&app, "organization.membership.created")
        .await
        .into_iter()
        .filter(|d| d["user_id"] == json!(b_id) && d["organization_id"] == json!(t))
        .collect();
    assert_eq!(joined.len(), 1);
    assert_eq!(events_of(&app, "organization.invitation.accepted").await.len(), 1);
    // Again, later: the same answer, nothing new.
    let again = app.services.invitations().accept(&who, &token).await.unwrap();
    assert!(!again.membership_created);
    // Someone else cannot use it.
    let c = app.signed_in("intruder@example.com", PW).await;
    let other =
        app.services.auth().authenticate(&c.cookie("authara_access").unwrap(), Some(Audience::App)).await.unwrap();
    assert!(app.services.invitations().accept(&other, &token).await.is_err());
}

async fn user_memberships_are_self_only(engine: Engine) {
    let app = start(engine, "multi", &[]).await;
    let c = app.signed_in("mine@example.com", PW).await;
    let me = user_id(&app, "mine@example.com").await;
    let t = team(&app, &me, "Second").await;
    let res = c.get(&format!("/auth/api/v1/users/{me}/memberships")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let list = res.json()["memberships"].clone();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[1]["organization"]["id"].as_str().unwrap(), t);
    assert_eq!(list[1]["organization"]["kind"], "team");
    assert_eq!(list[1]["membership"]["role"], "owner");
    assert_eq!(list[1]["membership"]["user_id"].as_str().unwrap(), me);
    app.signed_in("else@example.com", PW).await;
    let other = user_id(&app, "else@example.com").await;
    for id in [other, uuid::Uuid::new_v4().to_string()] {
        let res = c.get(&format!("/auth/api/v1/users/{id}/memberships")).await;
        assert_eq!((res.status, res.error_code().as_str()), (403, "forbidden"));
    }
}

/// A member leaves an organization they joined (API and account page): the membership and its
/// sessions there end, `organization.membership.deleted` goes out; the last owner and one's own
/// personal organization are refused.
async fn members_leave_organizations_they_joined(engine: Engine) {
    let app = start(engine, "multi", &[]).await;
    let owner = app.signed_in("lv-owner@example.com", PW).await;
    let owner_id = user_id(&app, "lv-owner@example.com").await;
    let t = team(&app, &owner_id, "Leavers").await;
    let (m, res) = signup_with_code(
        &app,
        "lv-member@example.com",
        &token_of(&invite(&app, &t, &owner_id, "lv-member@example.com", "member").await),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text());
    let personal = current_org(&m).await;
    // A second session of the member, in the team.
    let there = app.csrf_client().await;
    let login = json!({"email": "lv-member@example.com", "password": PW});
    assert_eq!(there.json(Method::POST, "/auth/api/v1/login", &login).await.status, 200);
    assert_eq!(switch(&there, &t).await.status, 200);
    assert_eq!(there.get("/auth/api/v1/user").await.status, 200);

    // Their own personal organization cannot be left, nor a team by its only owner.
    let res = m.post(&format!("/auth/api/v1/organizations/{personal}/leave")).await;
    assert_eq!((res.status, res.error_code().as_str()), (409, "personal_organization"));
    switch(&owner, &t).await;
    let res = owner.post(&format!("/auth/api/v1/organizations/{t}/leave")).await;
    assert_eq!((res.status, res.error_code().as_str()), (409, "last_owner"));
    let res = m.post(&format!("/auth/api/v1/organizations/{}/leave", uuid::Uuid::new_v4())).await;
    assert_eq!(res.status, 403, "not a member");

    // The member leaves from the personal session: the team session ends at once.
    let res = m.post(&format!("/auth/api/v1/organizations/{t}/leave")).await;
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(there.get("/auth/api/v1/user").await.status, 401, "the session in the team ended");
    assert_eq!(m.get("/auth/api/v1/user").await.status, 200, "the one elsewhere goes on");
    let orgs = m.get("/auth/api/v1/organizations").await.json();
    assert_eq!(orgs["organizations"].as_array().unwrap().len(), 1);
    let left = events_of(&app, "organization.membership.deleted").await;
    let member_id = user_id(&app, "lv-member@example.com").await;
    assert_eq!(left, [json!({"organization_id": t, "user_id": member_id, "role": "member"})]);
    let admin = app.services.admin();
    let rows = admin.audit(&admin.cli(), &Default::default(), 1).await.unwrap();
    assert!(rows.iter().any(|r| r.action.as_str() == "organization.left"), "audited");

    // From the account page: a Leave button per team organization not one's own.
    let token = token_of(&invite(&app, &t, &owner_id, "lv-member@example.com", "admin").await);
    m.get(&format!("/auth/invitations/accept?token={token}")).await;
    assert_eq!(m.form("/auth/invitations/accept", &[("token", &token)]).await.status, 303);
    let html = m.get("/auth/account").await.text();
    assert!(html.contains(&format!("/auth/organizations/{t}/leave")), "{html}");
    assert!(!html.contains(&format!("/auth/organizations/{personal}/leave")), "{html}");
    switch(&m, &personal).await;
    let res = m.form(&format!("/auth/organizations/{t}/leave"), &[]).await;
    assert!(m.back_on_account(&res).await.contains("You left the organization."));
    assert_eq!(events_of(&app, "organization.membership.deleted").await.len(), 2);
}

on_both_engines!(
    names_with_hidden_characters_are_refused,
    invitation_mail_quotes_the_organizations_name,
    memberships_and_current_members_per_mode,
    switch_moves_the_session_and_replaces_its_refresh_tokens,
    switch_is_refused_outside_multi_and_outside_memberships,
    management_routes_answer_404_while_the_flag_is_off,
    management_checks_the_session_org_then_membership_then_role,
    rename_records_organization_updated_and_shows_at_once,
    members_and_one_member,
    scenario_an_invitation_from_creation_to_acceptance,
    the_invitation_email_can_carry_the_code,
    revoke_rules,
    another_organizations_ids_under_yours_are_not_found,
    single_mode_invited_signup_joins_only_the_invited_org,
    personal_mode_has_no_invitations_or_member_lists,
    signup_challenge_with_an_invitation_code,
    foreign_unknown_and_expired_codes_are_400,
    user_memberships_are_self_only,
    members_leave_organizations_they_joined,
    ; threaded: concurrent_acceptances_create_one_membership,
);
