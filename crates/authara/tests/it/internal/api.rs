//! The internal API (behavior.md §1.3, §9.3, §9.6): the bearer token, team creation, invitation
//! creation in the documented order of checks, resend. Answers are checked against the contract.

use std::time::Duration;

use authara::worker::email::Outcome;
use reqwest::Method;
use serde_json::json;

use crate::app::drain_mail as drain;
use crate::app::{INTERNAL_TOKEN, TestApp};
use crate::harness::{Engine, on_both_engines};
use crate::organizations::api::{
    PW, current_org, events, events_of, invitation_id, invite, signup_with_code, start, start_with_mail, switch, team,
    token_of, user_id,
};
use crate::smtp::SmtpSink;

const CREATE_ORG: &str = "/auth/internal/v1/organizations";

async fn only_the_exact_bearer_token_is_accepted(engine: Engine) {
    let app = start(engine, "multi", &[]).await;
    let c = app.signed_in("bearer@example.com", PW).await;
    let body = json!({"name": "Bearer", "created_by_user_id": user_id(&app, "bearer@example.com").await});
    let raw = app.client();
    let send = |auth: Option<String>| {
        let raw = raw.clone();
        let body = body.clone();
        async move {
            let mut headers = vec![("content-type", "application/json".to_owned())];
            if let Some(a) = auth {
                headers.push(("authorization", a));
            }
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            raw.send(Method::POST, CREATE_ORG, Some(body.to_string().into_bytes()), &headers).await
        }
    };
    for auth in [
        None,
        Some(String::new()),
        Some("Bearer".to_owned()),
        Some("Bearer wrong-token".to_owned()),
        Some(format!("bearer {INTERNAL_TOKEN}")),
        Some(format!("Basic {INTERNAL_TOKEN}")),
        Some(format!("Bearer {INTERNAL_TOKEN}x")),
        Some(INTERNAL_TOKEN.to_owned()),
    ] {
        let res = send(auth.clone()).await;
        assert_eq!((res.status, res.error_code().as_str()), (401, "unauthorized"), "{auth:?}");
    }
    // A signed-in browser's cookies and CSRF token are no credentials here.
    let res = c.json(Method::POST, CREATE_ORG, &body).await;
    assert_eq!(res.status, 401);
    // The rest of the header is trimmed.
    let res = send(Some(format!("Bearer   {INTERNAL_TOKEN}  "))).await;
    assert_eq!(res.status, 201, "{}", res.text());

    // Without a configured token, every call is refused.
    let app = TestApp::start_with(engine, &[("AUTHARA_ORG_MODE", "multi")]).await;
    let res = app.client().internal(CREATE_ORG, Some(&body)).await;
    assert_eq!((res.status, res.error_code().as_str()), (401, "unauthorized"));
    let res = app.client().send(Method::POST, CREATE_ORG, None, &[("authorization", "Bearer ")]).await;
    assert_eq!(res.status, 401, "an empty token never matches");
}

/// Wrong tokens are limited per IP (ours: the reference does not limit them): after ten in five
/// minutes an IP is refused before its token is compared, the right one included, until the
/// window ends; right tokens never count, and other IPs are not affected.
async fn wrong_bearer_tokens_are_limited_per_ip(engine: Engine) {
    let app = start(engine, "multi", &[("AUTHARA_TRUST_PROXY_HEADERS", "true")]).await;
    app.signed_in("limits@example.com", PW).await;
    let me = user_id(&app, "limits@example.com").await;
    let raw = app.client();
    let call = |from: &'static str, token: String, name: String| {
        let (raw, me) = (raw.clone(), me.clone());
        async move {
            let body = json!({"name": name, "created_by_user_id": me}).to_string().into_bytes();
            let auth = format!("Bearer {token}");
            let headers =
                [("content-type", "application/json"), ("authorization", auth.as_str()), ("x-forwarded-for", from)];
            raw.send(Method::POST, CREATE_ORG, Some(body), &headers).await
        }
    };
    let (guesser, neighbour, server) = ("203.0.113.7", "203.0.113.8", "198.51.100.2");
    for i in 0..12 {
        assert_eq!(call(server, INTERNAL_TOKEN.to_owned(), format!("Team {i}")).await.status, 201);
    }
    let res = call(server, "wrong".to_owned(), "Nope".to_owned()).await;
    assert_eq!(res.status, 401, "twelve right tokens counted nothing");
    for i in 0..10 {
        let res = call(guesser, format!("guess-{i}"), "Guess".to_owned()).await;
        assert_eq!((res.status, res.error_code().as_str()), (401, "unauthorized"), "guess {i}");
    }
    let res = call(guesser, "guess-10".to_owned(), "Guess".to_owned()).await;
    assert_eq!((res.status, res.error_code().as_str()), (429, "rate_limited"), "{}", res.text());
    assert!(res.headers.get("retry-after").is_some());
    let res = call(guesser, INTERNAL_TOKEN.to_owned(), "Right".to_owned()).await;
    assert_eq!(res.status, 429, "once limited, even the right token is not compared");
    let res = call(neighbour, INTERNAL_TOKEN.to_owned(), "Neighbour".to_owned()).await;
    assert_eq!(res.status, 201, "another IP is not affected: {}", res.text());
    app.clock.advance(Duration::from_secs(301));
    let res = call(guesser, INTERNAL_TOKEN.to_owned(), "Later".to_owned()).await;
    assert_eq!(res.status, 201, "the window ended: {}", res.text());
}

async fn create_organization(engine: Engine) {
    let app = start(engine, "multi", &[]).await;
    let c = app.signed_in("founder@example.com", PW).await;
    let me = user_id(&app, "founder@example.com").await;
    app.clock.advance(Duration::from_millis(1));
    let res = app.client().internal(CREATE_ORG, Some(&json!({"name": "  Orbit  ", "created_by_user_id": me}))).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let body = res.json();
    let org = body["organization"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["organization"]["name"], "Orbit");
    assert_eq!(body["organization"]["kind"], "team");
    assert_eq!(body["organization"]["created_by_user_id"].as_str().unwrap(), me);
    assert_eq!(body["membership"]["organization_id"].as_str().unwrap(), org);
    assert_eq!(body["membership"]["user_id"].as_str().unwrap(), me);
    assert_eq!(body["membership"]["role"], "owner");
    let created = events_of(&app, "organization.created").await;
    assert_eq!(
        created.last().unwrap(),
        &json!({"organization_id": org, "name": "Orbit", "kind": "team", "created_by_user_id": me})
    );
    let joined = events_of(&app, "organization.membership.created").await;
    assert_eq!(
        joined.last().unwrap(),
        &json!({"organization_id": org, "user_id": me, "role": "owner", "is_initial_membership": true,
                "invitation_id": null, "metadata": {}})
    );
    let list = c.get("/auth/api/v1/organizations").await.json();
    assert_eq!(list["organizations"][1]["id"].as_str().unwrap(), org);

    let before = events(&app).await.len();
    let ghost = uuid::Uuid::new_v4();
    let res = app.client().internal(CREATE_ORG, Some(&json!({"name": "Ghost", "created_by_user_id": ghost}))).await;
    assert_eq!((res.status, res.error_code().as_str()), (404, "user_not_found"));
    for bad in [
        json!({"name": "   ", "created_by_user_id": me}),
        json!({"name": "ok", "created_by_user_id": "not-a-uuid"}),
        json!({"name": "ok"}),
        json!({"name": "ok", "created_by_user_id": me, "kind": "personal"}),
    ] {
        let res = app.client().internal(CREATE_ORG, Some(&bad)).await;
        assert_eq!((res.status, res.error_code().as_str()), (400, "invalid_request"), "{bad}");
    }
    assert_eq!(events(&app).await.len(), before, "refusals record nothing");

    let app = start(engine, "single", &[]).await;
    app.signed_in("single-founder@example.com", PW).await;
    let me = user_id(&app, "single-founder@example.com").await;
    let res = app.client().internal(CREATE_ORG, Some(&json!({"name": "Nope", "created_by_user_id": me}))).await;
    assert_eq!((res.status, res.error_code().as_str()), (403, "forbidden"), "multi mode only");
}

async fn scenario_create_invitation_checks_in_order(engine: Engine) {
    let app = start(engine, "multi", &[]).await;
    app.signed_in("actor@example.com", PW).await;
    let actor = user_id(&app, "actor@example.com").await;
    let t = team(&app, &actor, "Ordered").await;
    app.signed_in("outsider@example.com", PW).await;
    let outsider = user_id(&app, "outsider@example.com").await;
    let path = format!("/auth/internal/v1/organizations/{t}/invitations");
    let call = |body: serde_json::Value| {
        let app_client = app.client();
        let path = path.clone();
        async move { app_client.internal(&path, Some(&body)).await }
    };
    let expect = |res: crate::app::Res, status: u16, code: &str| {
        assert_eq!((res.status, res.error_code().as_str()), (status, code), "{}", res.text());
    };

    // Input first: email, role, metadata; then the actor.
    expect(call(json!({"actor_user_id": outsider, "email": "not an email"})).await, 400, "invalid_request");
    expect(
        call(json!({"actor_user_id": outsider, "email": "x@example.com", "role": "owner"})).await,
        400,
        "invalid_request",
    );
    expect(
        call(json!({"actor_user_id": outsider, "email": "x@example.com", "metadata": "text"})).await,
        400,
        "invalid_request",
    );
    expect(
        call(json!({"actor_user_id": outsider, "email": "x@example.com", "metadata": null})).await,
        400,
        "invalid_request",
    );
    expect(call(json!({"actor_user_id": uuid::Uuid::nil(), "email": "x@example.com"})).await, 400, "invalid_request");
    let elsewhere = format!("/auth/internal/v1/organizations/{}/invitations", uuid::Uuid::new_v4());
    let res = app.client().internal(&elsewhere, Some(&json!({"actor_user_id": actor, "email": "x@example.com"}))).await;
    expect(res, 404, "organization_not_found");
    expect(call(json!({"actor_user_id": outsider, "email": "x@example.com"})).await, 403, "actor_not_member");
    expect(
        call(json!({"actor_user_id": uuid::Uuid::new_v4(), "email": "x@example.com"})).await,
        403,
        "actor_not_member",
    );

    // A plain member may not invite; an admin may.
    let inv = invite(&app, &t, &actor, "member@example.com", "member").await;
    let (_, res) = signup_with_code(&app, "member@example.com", &token_of(&inv)).await;
    assert_eq!(res.status, 201);
    let member = user_id(&app, "member@example.com").await;
    expect(call(json!({"actor_user_id": member, "email": "x@example.com"})).await, 403, "actor_not_allowed");
    let inv = invite(&app, &t, &actor, "admin@example.com", "admin").await;
    let (_, res) = signup_with_code(&app, "admin@example.com", &token_of(&inv)).await;
    assert_eq!(res.status, 201);
    let admin = user_id(&app, "admin@example.com").await;
    let res = call(json!({"actor_user_id": admin, "email": "X@example.com", "metadata": {"from": "admin"}})).await;
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["invitation"]["role"], "member", "member by default");

    // Then the target: already a member, already invited.
    expect(call(json!({"actor_user_id": actor, "email": "member@example.com"})).await, 409, "already_member");
    expect(call(json!({"actor_user_id": actor, "email": "x@example.com"})).await, 409, "invitation_already_pending");
    let created = events_of(&app, "organization.invitation.created").await;
    assert_eq!(created.len(), 3, "refusals record nothing");
    assert_eq!(created[2]["invited_by_user_id"].as_str().unwrap(), admin);
}

async fn an_expired_invitation_is_replaced_without_a_revocation_event(engine: Engine) {
    let app = start(engine, "single", &[("AUTHARA_ORGANIZATION_INVITATION_TTL", "5m")]).await;
    let a = app.signed_in("renew@example.com", PW).await;
    let actor = user_id(&app, "renew@example.com").await;
    let org = current_org(&a).await;
    let first = invite(&app, &org, &actor, "later@example.com", "member").await;
    assert_eq!(first.status, 201);
    app.clock.advance(Duration::from_secs(6 * 60));
    let second = invite(&app, &org, &actor, "later@example.com", "admin").await;
    assert_eq!(second.status, 201, "{}", second.text());
    assert_ne!(invitation_id(&first), invitation_id(&second));
    let old = a.get(&format!("/auth/api/v1/organizations/{org}/invitations/{}", invitation_id(&first))).await;
    assert_eq!(old.json()["invitation"]["status"], "revoked");
    assert!(events_of(&app, "organization.invitation.revoked").await.is_empty(), "silently, as the reference");
    assert_eq!(events_of(&app, "organization.invitation.created").await.len(), 2);
    let (_, res) = signup_with_code(&app, "later@example.com", &token_of(&second)).await;
    assert_eq!(res.status, 201, "{}", res.text());
}

async fn scenario_resend_replaces_and_mails_only_the_fresh_invitation(engine: Engine) {
    let sink = SmtpSink::start().await;
    let app = start_with_mail(engine, "multi", &sink, &[("AUTHARA_ORGANIZATION_INVITATION_TTL", "5m")]).await;
    let a = app.signed_in("resender@example.com", PW).await;
    let actor = user_id(&app, "resender@example.com").await;
    let t = team(&app, &actor, "Resenders").await;
    assert_eq!(switch(&a, &t).await.status, 200);
    let body = json!({"actor_user_id": actor, "email": "again@example.com", "role": "admin", "metadata": {"k": 1}});
    let first = app.client().internal(&format!("/auth/internal/v1/organizations/{t}/invitations"), Some(&body)).await;
    assert_eq!(first.status, 201);

    let resend = |id: String| {
        let c = app.client();
        let t = t.clone();
        async move { c.internal(&format!("/auth/internal/v1/organizations/{t}/invitations/{id}/resend"), None).await }
    };
    let fresh = resend(invitation_id(&first)).await;
    assert_eq!(fresh.status, 201, "{}", fresh.text());
    let inv = fresh.json()["invitation"].clone();
    assert_ne!(invitation_id(&fresh), invitation_id(&first));
    assert_ne!(token_of(&fresh), token_of(&first));
    assert_eq!(
        (inv["email"].as_str(), inv["role"].as_str(), inv["status"].as_str()),
        (Some("again@example.com"), Some("admin"), Some("pending"))
    );
    assert_eq!(inv["metadata"], json!({"k": 1}));
    let old = a.get(&format!("/auth/api/v1/organizations/{t}/invitations/{}", invitation_id(&first))).await;
    assert_eq!(old.json()["invitation"]["status"], "revoked");
    let kinds: Vec<String> = events(&app).await.into_iter().map(|(k, _)| k).rev().take(2).collect();
    assert_eq!(kinds, ["organization.invitation.created", "organization.invitation.revoked"], "revoked, then created");
    let revoked = events_of(&app, "organization.invitation.revoked").await;
    assert_eq!(revoked[0]["revoked_by_user_id"].as_str().unwrap(), actor, "revoked by the inviter");
    let created = events_of(&app, "organization.invitation.created").await;
    assert_eq!(created[1]["invited_by_user_id"].as_str().unwrap(), actor);

    // The first email was still queued: only the fresh invitation is mailed.
    let mut outcomes = drain(&app).await;
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(outcomes, vec![Outcome::Failed, Outcome::Sent]);
    let mail = sink.to("again@example.com");
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].invitation_token(), Some(token_of(&fresh)));
    let (_, res) = signup_with_code(&app, "again@example.com", &token_of(&first)).await;
    assert_eq!(res.status, 400, "the replaced code is dead");

    // An expired invitation may be resent.
    app.clock.advance(Duration::from_secs(6 * 60));
    let renewed = resend(invitation_id(&fresh)).await;
    assert_eq!(renewed.status, 201, "{}", renewed.text());
    let (_, res) = signup_with_code(&app, "again@example.com", &token_of(&renewed)).await;
    assert_eq!(res.status, 201, "{}", res.text());
    let res = resend(invitation_id(&renewed)).await;
    assert_eq!((res.status, res.error_code().as_str()), (409, "invitation_already_accepted"));
    let res = resend(invitation_id(&first)).await;
    assert_eq!((res.status, res.error_code().as_str()), (409, "invitation_revoked"));
    let res = resend(uuid::Uuid::new_v4().to_string()).await;
    assert_eq!((res.status, res.error_code().as_str()), (404, "invitation_not_found"));

    // Another organization's invitation is not found through this one; an unknown organization.
    let other = team(&app, &actor, "Elsewhere").await;
    let theirs = invite(&app, &other, &actor, "third@example.com", "member").await;
    let res = resend(invitation_id(&theirs)).await;
    assert_eq!((res.status, res.error_code().as_str()), (404, "invitation_not_found"));
    let path = format!(
        "/auth/internal/v1/organizations/{}/invitations/{}/resend",
        uuid::Uuid::new_v4(),
        invitation_id(&theirs)
    );
    let res = app.client().internal(&path, None).await;
    assert_eq!((res.status, res.error_code().as_str()), (404, "organization_not_found"));
    let res = app.client().internal("/auth/internal/v1/organizations/x/invitations/y/resend", None).await;
    assert_eq!((res.status, res.error_code().as_str()), (400, "invalid_request"));
}

on_both_engines!(
    wrong_bearer_tokens_are_limited_per_ip,
    only_the_exact_bearer_token_is_accepted,
    create_organization,
    scenario_create_invitation_checks_in_order,
    an_expired_invitation_is_replaced_without_a_revocation_event,
    scenario_resend_replaces_and_mails_only_the_fresh_invitation,
);
