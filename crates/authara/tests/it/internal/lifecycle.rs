//! The rest of the internal API (ours, `contract/extensions.yaml`): removing a member, handing an
//! organization over, deleting an organization or a user, reading a user's memberships. Each
//! call is sent exactly as the official Go SDK (authara-go v0.13) sends it: its paths, its
//! `Accept`/`Content-Type` headers and the bytes its `json.Encoder` writes (a newline after the
//! object; no body at all for the user deletion). Events are read from the webhook receiver,
//! signed as the contract says; every answer is checked against the contract.

use std::time::Duration;

use authara::domain::{ActorKind, AuditAction, UserId};
use authara::store::audit::AuditFilter;
use authara::worker::webhooks::{Outcome, run_once};
use reqwest::Method;
use serde_json::{Value, json};

use crate::app::{INTERNAL_TOKEN, Res, TestApp, TestClient};
use crate::harness::{Engine, on_both_engines};
use crate::mfa::claims;
use crate::organizations::api::{PW, current_org, invite, signup_with_code, start, switch, team, token_of, user_id};
use crate::receiver::{Receiver, SECRET};

/// The Go SDK's calls (`authara/openapi_client.gen.go`), byte for byte.
pub mod sdk {
    use super::*;

    async fn send(app: &TestApp, method: Method, path: &str, body: Option<String>) -> Res {
        let auth = format!("Bearer {INTERNAL_TOKEN}");
        let mut headers = vec![("accept", "application/json"), ("authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        app.client().send(method, path, body.map(String::into_bytes), &headers).await
    }

    /// `APIInternalOrganizationActorRequest` as `json.NewEncoder(&buf).Encode` writes it.
    fn actor(actor: &str) -> String {
        format!("{{\"actor_user_id\":\"{actor}\"}}\n")
    }

    /// `CallDeleteInternalOrganization`.
    pub async fn delete_organization(app: &TestApp, org: &str, by: &str) -> Res {
        send(app, Method::DELETE, &format!("/auth/internal/v1/organizations/{org}"), Some(actor(by))).await
    }

    /// `CallRemoveInternalOrganizationMember`.
    pub async fn remove_member(app: &TestApp, org: &str, user: &str, by: &str) -> Res {
        let path = format!("/auth/internal/v1/organizations/{org}/members/{user}");
        send(app, Method::DELETE, &path, Some(actor(by))).await
    }

    /// `CallTransferInternalOrganizationOwnership` (`APIInternalOwnershipTransferRequest`).
    pub async fn transfer(app: &TestApp, org: &str, by: &str, to: &str) -> Res {
        let body = format!("{{\"actor_user_id\":\"{by}\",\"new_owner_user_id\":\"{to}\"}}\n");
        send(app, Method::POST, &format!("/auth/internal/v1/organizations/{org}/ownership-transfer"), Some(body)).await
    }

    /// `CallDeleteInternalUser`: no body.
    pub async fn delete_user(app: &TestApp, user: &str) -> Res {
        send(app, Method::DELETE, &format!("/auth/internal/v1/users/{user}"), None).await
    }

    /// Any other body or method, with the same headers (refusals).
    pub async fn raw(app: &TestApp, method: Method, path: &str, body: Option<&str>) -> Res {
        send(app, method, path, body.map(str::to_owned)).await
    }
}

fn expect(res: &Res, status: u16, code: &str) {
    assert_eq!((res.status, res.error_code().as_str()), (status, code), "{}", res.text());
}

/// A multi-mode app delivering webhooks to `receiver`.
async fn hooked(engine: Engine, receiver: &Receiver) -> TestApp {
    let env = receiver.env();
    start(engine, "multi", &crate::app::settings(&env, &[])).await
}

/// Delivers what is queued and returns (type, data) of every delivery since the `seen` first
/// ones, each checked against its signature.
async fn delivered(app: &TestApp, receiver: &Receiver, seen: usize) -> Vec<(String, Value)> {
    loop {
        if let Outcome::Idle = run_once(&app.services).await.unwrap() {
            break;
        }
    }
    let got = receiver.deliveries();
    got.iter()
        .skip(seen)
        .map(|d| {
            assert!(d.verify(SECRET), "signed");
            let body = d.json();
            assert_eq!(body["type"], d.header("x-authara-event"));
            (body["type"].as_str().unwrap().to_owned(), body["data"].clone())
        })
        .collect()
}

/// Signs `email` up through an invitation to `org` with `role` and returns the user id and a
/// client whose session is in `org`.
async fn member(app: &TestApp, org: &str, by: &str, email: &str, role: &str) -> (String, TestClient) {
    let (c, res) = signup_with_code(app, email, &token_of(&invite(app, org, by, email, role).await)).await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(switch(&c, org).await.status, 200);
    (user_id(app, email).await, c)
}

/// The audit rows of `action`: (actor kind, acting user, target).
async fn audited(app: &TestApp, action: AuditAction) -> Vec<(ActorKind, Option<UserId>, Option<UserId>)> {
    let filter = AuditFilter { actor: None, target: None, action: Some(action) };
    let rows = app.store.audit_page(&filter, 100, 0).await.unwrap();
    rows.iter().map(|r| (r.actor, r.actor_user_id, r.target_user_id)).collect()
}

async fn owner_count(app: &TestApp, org: &str) -> usize {
    let rows = app.store.members(authara::domain::OrgId(org.parse().unwrap())).await.unwrap();
    rows.iter().filter(|r| r.membership.role == authara::domain::OrgRole::Owner).count()
}

fn uid(s: &str) -> UserId {
    UserId(s.parse().unwrap())
}

/// An owner or admin removes a member: the membership and the member's sessions in that
/// organization end at once (their others go on), `organization.membership.deleted` goes out,
/// audited as the internal API acting for the actor. Every refusal has its status and records
/// nothing.
async fn scenario_removing_a_member_ends_their_sessions_there(engine: Engine) {
    let receiver = Receiver::start().await;
    let app = hooked(engine, &receiver).await;
    let owner_c = app.signed_in("rm-owner@example.com", PW).await;
    let owner = user_id(&app, "rm-owner@example.com").await;
    let t = team(&app, &owner, "Removals").await;
    let (admin, _) = member(&app, &t, &owner, "rm-admin@example.com", "admin").await;
    let (gone, gone_in_team) = member(&app, &t, &owner, "rm-member@example.com", "member").await;
    let gone_elsewhere = app.logged_in("rm-member@example.com", PW).await;
    let outsider_c = app.signed_in("rm-outsider@example.com", PW).await;
    let outsider = user_id(&app, "rm-outsider@example.com").await;
    let seen = delivered(&app, &receiver, 0).await.len();

    // Refusals, in order: the bearer, ids and body, the organization, the actor, the target.
    let path = format!("/auth/internal/v1/organizations/{t}/members/{gone}");
    let body = format!("{{\"actor_user_id\":\"{admin}\"}}");
    let res = app
        .client()
        .send(Method::DELETE, &path, Some(body.clone().into_bytes()), &[("content-type", "application/json")])
        .await;
    expect(&res, 401, "unauthorized");
    let bad_path = format!("/auth/internal/v1/organizations/{t}/members/not-a-uuid");
    expect(&sdk::raw(&app, Method::DELETE, &bad_path, Some(&body)).await, 400, "invalid_request");
    for bad in ["", "{}", "{\"actor_user_id\":\"nope\"}", "[1]", &format!("{{\"actor_user_id\":\"{admin}\",\"x\":1}}")]
    {
        expect(&sdk::raw(&app, Method::DELETE, &path, Some(bad)).await, 400, "invalid_request");
    }
    expect(&sdk::raw(&app, Method::DELETE, &path, None).await, 400, "invalid_request");
    expect(&sdk::remove_member(&app, &t, &gone, &uuid::Uuid::nil().to_string()).await, 400, "invalid_request");
    let ghost_org = uuid::Uuid::new_v4().to_string();
    expect(&sdk::remove_member(&app, &ghost_org, &gone, &owner).await, 404, "organization_not_found");
    expect(&sdk::remove_member(&app, &t, &gone, &outsider).await, 403, "actor_not_member");
    expect(&sdk::remove_member(&app, &t, &admin, &gone).await, 403, "actor_not_allowed");
    expect(&sdk::remove_member(&app, &t, &owner, &admin).await, 403, "actor_not_allowed");
    expect(&sdk::remove_member(&app, &t, &outsider, &owner).await, 404, "membership_not_found");
    expect(&sdk::remove_member(&app, &t, &owner, &owner).await, 409, "last_owner");
    let personal = current_org(&owner_c).await;
    expect(&sdk::remove_member(&app, &personal, &owner, &owner).await, 409, "personal_organization");
    assert_eq!(delivered(&app, &receiver, seen).await, [], "refusals record nothing");

    let res = sdk::remove_member(&app, &t, &gone, &admin).await;
    assert_eq!(res.status, 204, "{}", res.text());
    assert!(res.body.is_empty());
    assert_eq!(gone_in_team.get("/auth/api/v1/user").await.status, 401, "the session in the team ended at once");
    assert_eq!(gone_in_team.post("/auth/api/v1/sessions/refresh").await.status, 401, "and cannot be refreshed");
    assert_eq!(gone_elsewhere.get("/auth/api/v1/user").await.status, 200, "the one elsewhere goes on");
    let events = delivered(&app, &receiver, seen).await;
    assert_eq!(
        events,
        [(
            "organization.membership.deleted".to_owned(),
            json!({"organization_id": t, "user_id": gone, "role": "member"})
        )]
    );
    assert_eq!(
        audited(&app, AuditAction::MemberRemoved).await,
        [(ActorKind::InternalApi, Some(uid(&admin)), Some(uid(&gone)))]
    );
    let res = sdk::remove_member(&app, &t, &gone, &admin).await;
    expect(&res, 404, "membership_not_found");
    // The owner may remove an admin; an outsider's own session never mattered.
    assert_eq!(sdk::remove_member(&app, &t, &admin, &owner).await.status, 204);
    assert_eq!(outsider_c.get("/auth/api/v1/user").await.status, 200);
}

/// The owner hands the organization to a member and becomes an admin; both memberships emit
/// `organization.membership.updated`. Access tokens issued before carry the old role until
/// they are refreshed (or expire); the server's own checks use the new roles at once.
async fn scenario_ownership_moves_and_old_tokens_keep_their_role_until_refreshed(engine: Engine) {
    let receiver = Receiver::start().await;
    let app = hooked(engine, &receiver).await;
    let old_c = app.signed_in("tr-owner@example.com", PW).await;
    let old = user_id(&app, "tr-owner@example.com").await;
    let personal = current_org(&old_c).await;
    let t = team(&app, &old, "Handover").await;
    assert_eq!(switch(&old_c, &t).await.status, 200);
    let (heir, heir_c) = member(&app, &t, &old, "tr-heir@example.com", "member").await;
    let (admin, _) = member(&app, &t, &old, "tr-admin@example.com", "admin").await;
    app.signed_in("tr-outsider@example.com", PW).await;
    let outsider = user_id(&app, "tr-outsider@example.com").await;
    let seen = delivered(&app, &receiver, 0).await.len();
    let role_in = |c: &TestClient| claims(&c.cookie("authara_access").unwrap())["org_role"].clone();
    assert_eq!((role_in(&old_c), role_in(&heir_c)), (json!("owner"), json!("member")));

    expect(&sdk::transfer(&app, &t, &admin, &heir).await, 403, "actor_not_allowed");
    expect(&sdk::transfer(&app, &t, &outsider, &heir).await, 403, "actor_not_member");
    expect(&sdk::transfer(&app, &t, &old, &outsider).await, 404, "membership_not_found");
    expect(&sdk::transfer(&app, &t, &old, &old).await, 400, "invalid_request");
    expect(&sdk::transfer(&app, &uuid::Uuid::new_v4().to_string(), &old, &heir).await, 404, "organization_not_found");
    expect(&sdk::transfer(&app, &personal, &old, &old).await, 400, "invalid_request");
    let transfer_path = format!("/auth/internal/v1/organizations/{t}/ownership-transfer");
    let half = format!("{{\"actor_user_id\":\"{old}\"}}");
    expect(&sdk::raw(&app, Method::POST, &transfer_path, Some(&half)).await, 400, "invalid_request");
    assert_eq!(delivered(&app, &receiver, seen).await, [], "refusals record nothing");

    let res = sdk::transfer(&app, &t, &old, &heir).await;
    assert_eq!(res.status, 204, "{}", res.text());
    let events = delivered(&app, &receiver, seen).await;
    assert_eq!(
        events,
        [
            (
                "organization.membership.updated".to_owned(),
                json!({"organization_id": t, "user_id": heir, "role": "owner"})
            ),
            (
                "organization.membership.updated".to_owned(),
                json!({"organization_id": t, "user_id": old, "role": "admin"})
            ),
        ]
    );
    assert_eq!(
        audited(&app, AuditAction::OwnershipTransferred).await,
        [(ActorKind::InternalApi, Some(uid(&old)), Some(uid(&heir)))]
    );

    // Tokens issued before carry the old role; a refresh reads the new one.
    assert_eq!((role_in(&old_c), role_in(&heir_c)), (json!("owner"), json!("member")));
    assert_eq!(old_c.get("/auth/api/v1/user").await.status, 200, "sessions go on");
    assert_eq!(old_c.post("/auth/api/v1/sessions/refresh").await.status, 200);
    assert_eq!(heir_c.post("/auth/api/v1/sessions/refresh").await.status, 200);
    assert_eq!((role_in(&old_c), role_in(&heir_c)), (json!("admin"), json!("owner")));
    // The server's checks read the roles at once: the former owner is now only an admin.
    expect(&sdk::delete_organization(&app, &t, &old).await, 403, "actor_not_allowed");
    expect(&sdk::remove_member(&app, &t, &heir, &old).await, 403, "actor_not_allowed");
    expect(&sdk::remove_member(&app, &t, &heir, &heir).await, 409, "last_owner");
    // A personal organization is not handed over.
    expect(&sdk::transfer(&app, &personal, &old, &heir).await, 409, "personal_organization");
}

/// The owner deletes a team organization: every session in it ends at once (its members sign
/// in again into their default organization), one `organization.membership.deleted` per member
/// and `organization.deleted` go out. Personal organizations are not deleted this way.
async fn scenario_deleting_an_organization_ends_the_sessions_in_it(engine: Engine) {
    let receiver = Receiver::start().await;
    let app = hooked(engine, &receiver).await;
    let owner_c = app.signed_in("del-owner@example.com", PW).await;
    let owner = user_id(&app, "del-owner@example.com").await;
    let personal = current_org(&owner_c).await;
    let t = team(&app, &owner, "Doomed").await;
    let kept = team(&app, &owner, "Kept").await;
    assert_eq!(switch(&owner_c, &t).await.status, 200);
    let (admin, _) = member(&app, &t, &owner, "del-admin@example.com", "admin").await;
    let (m, m_in_team) = member(&app, &t, &owner, "del-member@example.com", "member").await;
    let m_elsewhere = app.logged_in("del-member@example.com", PW).await;
    let m_personal = current_org(&m_elsewhere).await;
    let seen = delivered(&app, &receiver, 0).await.len();

    expect(&sdk::delete_organization(&app, &t, &admin).await, 403, "actor_not_allowed");
    expect(&sdk::delete_organization(&app, &t, &m).await, 403, "actor_not_allowed");
    expect(&sdk::delete_organization(&app, &personal, &owner).await, 409, "personal_organization");
    expect(&sdk::delete_organization(&app, &m_personal, &owner).await, 403, "actor_not_member");
    expect(
        &sdk::delete_organization(&app, &uuid::Uuid::new_v4().to_string(), &owner).await,
        404,
        "organization_not_found",
    );
    expect(
        &sdk::raw(&app, Method::DELETE, "/auth/internal/v1/organizations/x", Some("{}")).await,
        400,
        "invalid_request",
    );
    expect(
        &sdk::raw(&app, Method::DELETE, &format!("/auth/internal/v1/organizations/{t}"), None).await,
        400,
        "invalid_request",
    );
    assert_eq!(delivered(&app, &receiver, seen).await, [], "refusals record nothing");

    let sid = |c: &TestClient| claims(&c.cookie("authara_access").unwrap())["sid"].as_str().unwrap().to_owned();
    let ended = [sid(&owner_c), sid(&m_in_team)];
    let res = sdk::delete_organization(&app, &t, &owner).await;
    assert_eq!(res.status, 204, "{}", res.text());
    // Their rows went with the organization; the revocation feed, which every other instance
    // reads every second (docs/instances.md), still names them.
    let feed: Vec<String> =
        app.store.sessions_revoked_since(0).await.unwrap().into_iter().map(|s| s.to_string()).collect();
    for s in &ended {
        assert!(feed.contains(s), "{s} in the revocation feed: {feed:?}");
    }
    for (who, c) in [("owner", &owner_c), ("member", &m_in_team)] {
        assert_eq!(c.get("/auth/api/v1/user").await.status, 401, "the {who}'s session in it ended at once");
        assert_eq!(c.post("/auth/api/v1/sessions/refresh").await.status, 401, "the {who}'s session cannot refresh");
    }
    assert_eq!(m_elsewhere.get("/auth/api/v1/user").await.status, 200, "sessions elsewhere go on");
    let again = app.logged_in("del-member@example.com", PW).await;
    assert_eq!(current_org(&again).await, m_personal, "signing in again starts in the default organization");
    let events = delivered(&app, &receiver, seen).await;
    let deleted = |user: &str, role: &str| {
        ("organization.membership.deleted".to_owned(), json!({"organization_id": t, "user_id": user, "role": role}))
    };
    assert_eq!(
        events,
        [
            deleted(&owner, "owner"),
            deleted(&admin, "admin"),
            deleted(&m, "member"),
            (
                "organization.deleted".to_owned(),
                json!({"organization_id": t, "name": "Doomed", "kind": "team", "created_by_user_id": owner})
            ),
        ]
    );
    assert_eq!(
        audited(&app, AuditAction::OrganizationDeleted).await,
        [(ActorKind::InternalApi, Some(uid(&owner)), None)]
    );
    expect(&sdk::delete_organization(&app, &t, &owner).await, 404, "organization_not_found");
    let path = format!("/auth/internal/v1/users/{owner}/memberships");
    let mine = app.client().internal_get(&path).await.json();
    let ids: Vec<&str> =
        mine["memberships"].as_array().unwrap().iter().map(|m| m["organization"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [personal.as_str(), kept.as_str()]);
}

/// The internal user deletion is the account deletion: sessions end at once, `user.deleted`
/// (audited as the internal API's). The only owner of a team with other members is refused
/// until the team is handed over; teams without other members and the personal organization
/// go with the user, other memberships end.
async fn scenario_deleting_a_user_follows_the_ownership_rule(engine: Engine) {
    let receiver = Receiver::start().await;
    let app = hooked(engine, &receiver).await;
    let u_c = app.signed_in("erase@example.com", PW).await;
    let u_other = app.logged_in("erase@example.com", PW).await;
    let u = user_id(&app, "erase@example.com").await;
    let personal = current_org(&u_c).await;
    let personal_name = u_c.get("/auth/api/v1/organizations/current").await.json()["name"].as_str().unwrap().to_owned();
    let boss_c = app.signed_in("boss@example.com", PW).await;
    let boss = user_id(&app, "boss@example.com").await;
    let shared = team(&app, &u, "Shared").await;
    let solo = team(&app, &u, "Solo").await;
    let theirs = team(&app, &boss, "Theirs").await;
    let token = token_of(&invite(&app, &theirs, &boss, "erase@example.com", "admin").await);
    u_c.get(&format!("/auth/invitations/accept?token={token}")).await;
    assert_eq!(u_c.form("/auth/invitations/accept", &[("token", &token)]).await.status, 303);
    let (m, m_c) = member(&app, &shared, &u, "shared-member@example.com", "member").await;

    let seen = delivered(&app, &receiver, 0).await.len();
    let res = sdk::delete_user(&app, &u).await;
    expect(&res, 409, "last_owner");
    assert!(res.text().contains(&shared), "names the organization: {}", res.text());
    assert_eq!(u_c.get("/auth/api/v1/user").await.status, 200, "nothing changed");
    assert_eq!(delivered(&app, &receiver, seen).await, [], "nothing recorded");

    assert_eq!(sdk::transfer(&app, &shared, &u, &m).await.status, 204);
    let seen = delivered(&app, &receiver, 0).await.len();
    let sids: Vec<String> = [&u_c, &u_other]
        .map(|c| claims(&c.cookie("authara_access").unwrap())["sid"].as_str().unwrap().to_owned())
        .to_vec();
    let res = sdk::delete_user(&app, &u).await;
    assert_eq!(res.status, 204, "{}", res.text());
    for c in [&u_c, &u_other] {
        assert_eq!(c.get("/auth/api/v1/user").await.status, 401, "every session ended at once");
    }
    let feed: Vec<String> =
        app.store.sessions_revoked_since(0).await.unwrap().into_iter().map(|s| s.to_string()).collect();
    assert!(sids.iter().all(|s| feed.contains(s)), "the revocation feed names the deleted rows' sessions");
    assert_eq!(m_c.get("/auth/api/v1/user").await.status, 200);
    assert_eq!(boss_c.get("/auth/api/v1/user").await.status, 200);
    let mut events = delivered(&app, &receiver, seen).await;
    let last = events.pop().unwrap();
    assert_eq!(last, ("user.deleted".to_owned(), json!({"user_id": u})), "last");
    events.sort_by_key(|(k, d)| format!("{k}{d}"));
    let membership = |org: &str, role: &str| {
        ("organization.membership.deleted".to_owned(), json!({"organization_id": org, "user_id": u, "role": role}))
    };
    let org_deleted = |org: &str, name: &str, kind: &str| {
        (
            "organization.deleted".to_owned(),
            json!({"organization_id": org, "name": name, "kind": kind, "created_by_user_id": u}),
        )
    };
    let mut expected = vec![
        membership(&shared, "admin"),
        membership(&theirs, "admin"),
        membership(&solo, "owner"),
        membership(&personal, "owner"),
        org_deleted(&solo, "Solo", "team"),
        org_deleted(&personal, &personal_name, "personal"),
    ];
    expected.sort_by_key(|(k, d)| format!("{k}{d}"));
    assert_eq!(events, expected);
    let rows = audited(&app, AuditAction::Deleted).await;
    assert_eq!(rows, [(ActorKind::InternalApi, None, None)], "audited; the row's reference cleared with the user");
    expect(&sdk::delete_user(&app, &u).await, 404, "user_not_found");
    let path = format!("/auth/internal/v1/users/{m}/memberships");
    let list = app.client().internal_get(&path).await.json();
    let shared_row =
        list["memberships"].as_array().unwrap().iter().find(|r| r["organization"]["id"] == json!(shared)).cloned();
    assert_eq!(shared_row.unwrap()["membership"]["role"], "owner", "the team stayed with its new owner");
}

/// An unknown user is a 404, a malformed id a 400, a missing bearer token a 401.
async fn deleting_a_user_refuses_unknown_and_malformed_ids_and_no_token(engine: Engine) {
    let app = start(engine, "multi", &[]).await;
    app.signed_in("erase@example.com", PW).await;
    let u = user_id(&app, "erase@example.com").await;
    expect(&sdk::delete_user(&app, &uuid::Uuid::new_v4().to_string()).await, 404, "user_not_found");
    expect(&sdk::delete_user(&app, "not-a-uuid").await, 400, "invalid_request");
    let res = app.client().send(Method::DELETE, &format!("/auth/internal/v1/users/{u}"), None, &[]).await;
    expect(&res, 401, "unauthorized");
    assert_eq!(app.store.user_count().await.unwrap(), 1);
}

/// The last active administrator cannot be deleted through the internal API.
async fn deleting_the_last_admin_is_refused(engine: Engine) {
    let app = start(engine, "multi", &[]).await;
    let password = authara::domain::NewPassword::parse(PW).unwrap();
    app.services.accounts().create_admin(&crate::app::email("root@example.com"), &password).await.unwrap();
    let root = user_id(&app, "root@example.com").await;
    expect(&sdk::delete_user(&app, &root).await, 409, "last_admin");
}

/// The internal memberships route answers the public route's body, for any user.
async fn memberships_of_any_user(engine: Engine) {
    let app = start(engine, "multi", &[]).await;
    let c = app.signed_in("list@example.com", PW).await;
    let me = user_id(&app, "list@example.com").await;
    team(&app, &me, "Listed").await;
    app.clock.advance(Duration::from_millis(1));
    let public = c.get(&format!("/auth/api/v1/users/{me}/memberships")).await;
    assert_eq!(public.status, 200);
    let internal = app.client().internal_get(&format!("/auth/internal/v1/users/{me}/memberships")).await;
    assert_eq!(internal.status, 200, "{}", internal.text());
    assert_eq!(internal.json(), public.json());
    assert_eq!(internal.json()["memberships"].as_array().unwrap().len(), 2);
    let ghost = uuid::Uuid::new_v4();
    expect(
        &app.client().internal_get(&format!("/auth/internal/v1/users/{ghost}/memberships")).await,
        404,
        "user_not_found",
    );
    expect(&app.client().internal_get("/auth/internal/v1/users/nope/memberships").await, 400, "invalid_request");
    let res = app.client().get(&format!("/auth/internal/v1/users/{me}/memberships")).await;
    expect(&res, 401, "unauthorized");
}

/// The account page's deletion follows the same rule (issue 30, item 10): the only owner of a
/// team with other members is told to hand it over or delete it first, and nothing changes;
/// once alone in it, the team goes with the account (`organization.deleted`).
async fn the_account_page_refuses_to_leave_a_team_without_owner(engine: Engine) {
    let receiver = Receiver::start().await;
    let app = hooked(engine, &receiver).await;
    let u_c = app.signed_in("page-owner@example.com", PW).await;
    let u = user_id(&app, "page-owner@example.com").await;
    let t = team(&app, &u, "Crew").await;
    let (m, m_c) = member(&app, &t, &u, "crew@example.com", "member").await;
    let seen = delivered(&app, &receiver, 0).await.len();

    let res = u_c.form("/auth/user/delete", &[("confirm", "page-owner@example.com")]).await;
    let page = u_c.back_on_account(&res).await;
    assert!(page.contains("You are the only owner of an organization that has other members"), "{page}");
    assert_eq!(u_c.get("/auth/api/v1/user").await.status, 200, "still signed in");
    assert!(app.store.user_by_email(&crate::app::email("page-owner@example.com")).await.unwrap().is_some());
    assert_eq!(delivered(&app, &receiver, seen).await, [], "nothing recorded");

    assert_eq!(sdk::remove_member(&app, &t, &m, &u).await.status, 204);
    assert_eq!(m_c.get("/auth/api/v1/user").await.status, 401);
    let seen = delivered(&app, &receiver, 0).await.len();
    let res = u_c.form("/auth/user/delete", &[("confirm", "page-owner@example.com")]).await;
    assert_eq!((res.status, res.location().as_deref()), (303, Some("/auth/successful-deletion")), "{}", res.text());
    let kinds: Vec<String> = delivered(&app, &receiver, seen).await.into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "organization.deleted").count(),
        2,
        "the team and the personal one: {kinds:?}"
    );
    assert_eq!(kinds.last().map(String::as_str), Some("user.deleted"));
    let rows = audited(&app, AuditAction::OrganizationDeleted).await;
    assert!(rows.iter().all(|(kind, ..)| *kind == ActorKind::User), "{rows:?}");
}

/// Two owners (as an import can make) removed at once, each by the other, or deleting their
/// accounts at once: one owner is left, whichever way the race goes.
async fn concurrent_removals_of_the_last_two_owners_leave_one(engine: Engine) {
    let app = start(engine, "multi", &[]).await;
    for round in 0..6 {
        app.signed_in(&format!("a{round}@example.com"), PW).await;
        let a = user_id(&app, &format!("a{round}@example.com")).await;
        let t = team(&app, &a, &format!("Race {round}")).await;
        let (b, _) = member(&app, &t, &a, &format!("b{round}@example.com"), "admin").await;
        let (c, _) = member(&app, &t, &a, &format!("c{round}@example.com"), "member").await;
        app.db.raw_sql("UPDATE organization_memberships SET role = 'owner' WHERE role = 'admin'").await;
        assert_eq!(owner_count(&app, &t).await, 2);
        let (x, y) = if round % 2 == 0 {
            tokio::join!(sdk::remove_member(&app, &t, &a, &b), sdk::remove_member(&app, &t, &b, &a))
        } else {
            tokio::join!(sdk::delete_user(&app, &a), sdk::delete_user(&app, &b))
        };
        let mut statuses = [x.status, y.status];
        statuses.sort_unstable();
        assert_eq!(statuses[0], 204, "one goes through: {} / {}", x.text(), y.text());
        assert!(matches!(statuses[1], 403 | 409), "the other is refused: {} / {}", x.text(), y.text());
        assert_eq!(owner_count(&app, &t).await, 1, "round {round}: one owner is left");
        assert!(app.store.membership(authara::domain::OrgId(t.parse().unwrap()), uid(&c)).await.unwrap().is_some());
    }
}

on_both_engines!(
    scenario_removing_a_member_ends_their_sessions_there,
    scenario_ownership_moves_and_old_tokens_keep_their_role_until_refreshed,
    scenario_deleting_an_organization_ends_the_sessions_in_it,
    scenario_deleting_a_user_follows_the_ownership_rule,
    deleting_a_user_refuses_unknown_and_malformed_ids_and_no_token,
    deleting_the_last_admin_is_refused,
    memberships_of_any_user,
    the_account_page_refuses_to_leave_a_team_without_owner,
    concurrent_removals_of_the_last_two_owners_leave_one,
);
