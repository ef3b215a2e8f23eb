//! The internal API client against the real server: typed answers, the contract's error codes
//! as typed errors, and what happens when the server does not answer as it should.

use std::time::{Duration, Instant};

use authara_sdk::OrgRole;
use authara_sdk::client::{ClientError, ErrorCode, InternalClient, InvitationStatus, NewInvitation, OrgKind};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::json;

use crate::axum_app::serve;
use crate::harness::{Alg, INTERNAL_TOKEN, Server, free_port, server_env};

fn api_code(r: Result<impl std::fmt::Debug, ClientError>) -> (u16, ErrorCode) {
    match r {
        Err(ClientError::Api(e)) => {
            assert!(!e.message.is_empty());
            (e.status, e.code)
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn organizations_and_invitations_are_created_and_resent() {
    let server = Server::start(Alg::Hs256).await;
    let owner = server.sign_up("founder@example.com").await.user_id.parse().unwrap();
    let client = InternalClient::new(&format!("{}/", server.base), INTERNAL_TOKEN).unwrap();

    let created = client.create_organization("  Orbit  ", owner).await.unwrap();
    assert_eq!(created.organization.name, "Orbit");
    assert_eq!(created.organization.kind, OrgKind::Team);
    assert_eq!(created.organization.created_by_user_id, Some(owner));
    assert_eq!((created.membership.user_id, created.membership.role), (owner, OrgRole::Owner));
    let org = created.organization.id;

    let mut metadata = serde_json::Map::new();
    metadata.insert("plan".into(), json!("pro"));
    let invite = NewInvitation::new(owner, "Ada@Example.com").role(OrgRole::Admin).metadata(metadata);
    let first = client.create_invitation(org, &invite).await.unwrap();
    assert_eq!((first.organization_id, first.role, first.status), (org, OrgRole::Admin, InvitationStatus::Pending));
    assert_eq!(first.metadata["plan"], "pro");
    let link = first.invite_url.clone().unwrap();
    assert!(link.contains("token="), "{link}");

    let again = client.resend_invitation(org, first.id).await.unwrap();
    assert_ne!(again.id, first.id, "a resend replaces the invitation");
    assert_eq!(again.status, InvitationStatus::Pending);
    assert_ne!(again.invite_url.unwrap(), link);
}

#[tokio::test]
async fn the_contracts_error_codes_come_back_typed() {
    let server = Server::start(Alg::Hs256).await;
    let owner = server.sign_up("owner@example.com").await.user_id.parse().unwrap();
    let client = InternalClient::new(&server.base, INTERNAL_TOKEN).unwrap();
    let org = client.create_organization("Team", owner).await.unwrap().organization.id;
    let ghost = uuid::Uuid::new_v4();

    let wrong = InternalClient::new(&server.base, "not-the-token").unwrap();
    assert_eq!(api_code(wrong.create_organization("x", owner).await), (401, ErrorCode::Unauthorized));
    assert_eq!(api_code(client.create_organization("x", ghost).await), (404, ErrorCode::UserNotFound));
    assert_eq!(api_code(client.create_organization("   ", owner).await), (400, ErrorCode::InvalidRequest));
    let invite = NewInvitation::new(owner, "bob@example.com");
    assert_eq!(api_code(client.create_invitation(ghost, &invite).await), (404, ErrorCode::OrganizationNotFound));
    let bad_email = NewInvitation::new(owner, "not an address");
    assert_eq!(api_code(client.create_invitation(org, &bad_email).await), (400, ErrorCode::InvalidRequest));
    let stranger = NewInvitation::new(ghost, "carol@example.com");
    assert_eq!(api_code(client.create_invitation(org, &stranger).await), (403, ErrorCode::ActorNotMember));
    client.create_invitation(org, &invite).await.unwrap();
    assert_eq!(api_code(client.create_invitation(org, &invite).await), (409, ErrorCode::InvitationAlreadyPending));
    assert_eq!(api_code(client.resend_invitation(org, ghost).await), (404, ErrorCode::InvitationNotFound));
    let owner_invite = NewInvitation::new(owner, "dan@example.com").role(OrgRole::Owner);
    assert_eq!(api_code(client.create_invitation(org, &owner_invite).await), (400, ErrorCode::InvalidRequest));

    // Team organizations exist only in multi mode.
    let mut env = server_env(Alg::Hs256);
    env.insert("AUTHARA_ORG_MODE".into(), "single".into());
    let single = Server::start_with(env).await;
    let someone = single.sign_up("single@example.com").await.user_id.parse().unwrap();
    let client = InternalClient::new(&single.base, INTERNAL_TOKEN).unwrap();
    let err = client.create_organization("Team", someone).await.unwrap_err();
    assert_eq!(err.code(), Some(&ErrorCode::Forbidden), "{err}");
}

#[tokio::test]
async fn members_ownership_and_deletions_through_the_lifecycle_calls() {
    let server = Server::start(Alg::Hs256).await;
    let boss = server.sign_up("boss@example.com").await;
    let owner: uuid::Uuid = boss.user_id.parse().unwrap();
    let (team, mate_token) = server.team_member(&boss.user_id, "mate@example.com").await;
    let mate =
        crate::harness::verifier_for(&server, Alg::Hs256).build().unwrap().verify(&mate_token).await.unwrap().sub;
    let client = InternalClient::new(&server.base, INTERNAL_TOKEN).unwrap();
    let role_in = |all: &[authara_sdk::client::OrganizationWithMembership]| {
        all.iter().find(|m| m.organization.id == team).map(|m| m.membership.role)
    };

    let theirs = client.memberships(mate).await.unwrap();
    assert_eq!(role_in(&theirs), Some(OrgRole::Member));
    assert!(theirs.iter().any(|m| m.organization.kind == OrgKind::Personal), "and their own organization");
    let personal =
        client.memberships(owner).await.unwrap().into_iter().find(|m| m.organization.kind == OrgKind::Personal);
    let personal = personal.unwrap().organization.id;
    assert_eq!(api_code(client.delete_organization(personal, owner).await), (409, ErrorCode::PersonalOrganization));

    client.transfer_ownership(team, owner, mate).await.unwrap();
    assert_eq!(role_in(&client.memberships(owner).await.unwrap()), Some(OrgRole::Admin));
    assert_eq!(role_in(&client.memberships(mate).await.unwrap()), Some(OrgRole::Owner));
    assert_eq!(api_code(client.remove_member(team, mate, owner).await), (403, ErrorCode::ActorNotAllowed));
    assert_eq!(api_code(client.delete_user(mate).await), (409, ErrorCode::LastOwner), "the team would have no owner");

    client.remove_member(team, owner, mate).await.unwrap();
    assert_eq!(role_in(&client.memberships(owner).await.unwrap()), None);
    client.delete_organization(team, mate).await.unwrap();
    assert_eq!(api_code(client.delete_organization(team, mate).await), (404, ErrorCode::OrganizationNotFound));
    client.delete_user(mate).await.unwrap();
    assert_eq!(api_code(client.memberships(mate).await), (404, ErrorCode::UserNotFound));
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts connections and never answers.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let client = InternalClient::with_timeouts(
        &format!("http://{addr}"),
        INTERNAL_TOKEN,
        Duration::from_millis(300),
        Duration::from_millis(300),
    )
    .unwrap();
    let started = Instant::now();
    let err = client.create_organization("x", uuid::Uuid::new_v4()).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn transport_failures_and_foreign_answers_are_told_apart() {
    let refused = InternalClient::new(&format!("http://127.0.0.1:{}", free_port()), INTERNAL_TOKEN).unwrap();
    let err = refused.create_organization("x", uuid::Uuid::new_v4()).await.unwrap_err();
    assert!(matches!(err, ClientError::Transport(_)), "{err:?}");

    // A proxy in the way answers with its own page; a broken server with a wrong body.
    let proxy = Router::new()
        .route("/auth/internal/v1/organizations", post(|| async { (StatusCode::BAD_GATEWAY, "<h1>502</h1>") }));
    let client = InternalClient::new(&serve(proxy).await, INTERNAL_TOKEN).unwrap();
    let err = client.create_organization("x", uuid::Uuid::new_v4()).await.unwrap_err();
    assert!(matches!(err, ClientError::UnexpectedStatus { status: 502 }), "{err:?}");
    let broken = Router::new().route("/auth/internal/v1/organizations", post(|| async { (StatusCode::CREATED, "{}") }));
    let client = InternalClient::new(&serve(broken).await, INTERNAL_TOKEN).unwrap();
    let err = client.create_organization("x", uuid::Uuid::new_v4()).await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidResponse(_)), "{err:?}");

    for (base, token) in [("authara:8080", INTERNAL_TOKEN), ("ftp://authara", INTERNAL_TOKEN), ("http://authara", "  ")]
    {
        assert!(matches!(InternalClient::new(base, token), Err(ClientError::Config(_))), "{base} {token:?}");
    }
    assert!(!format!("{:?}", InternalClient::new("http://authara", INTERNAL_TOKEN).unwrap()).contains(INTERNAL_TOKEN));
}
