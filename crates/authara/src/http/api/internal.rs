//! The internal API (`/auth/internal/v1`, behavior.md §1.3): trusted servers with the bearer
//! `AUTHARA_INTERNAL_API_TOKEN` create team organizations and invitations, and (ours,
//! `contract/extensions.yaml`, the calls of the official Go SDK) remove members, hand
//! organizations over, delete organizations and users, and read a user's memberships. No
//! cookies, no CSRF.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::organizations::{WithMembership, invitation_envelope, memberships_body};
use crate::domain::{EmailAddress, OrgId, OrgRole, UserId};
use crate::http::error::ApiError;
use crate::http::extract::{ApiPath, Client, InternalCaller, JsonBody};
use crate::http::state::AppState;
use crate::services::invitations::NewInvite;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganizationRequest {
    name: String,
    created_by_user_id: Uuid,
}

/// `POST /organizations`: a team organization owned by `created_by_user_id` (multi mode only).
pub async fn create_organization(
    State(state): State<AppState>,
    _: InternalCaller,
    JsonBody(req): JsonBody<CreateOrganizationRequest>,
) -> Result<Response, ApiError> {
    let (org, membership) =
        state.services.organizations().create_team(UserId(req.created_by_user_id), &req.name).await?;
    Ok((StatusCode::CREATED, Json(WithMembership::new(&org, &membership))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitationRequest {
    actor_user_id: Uuid,
    email: String,
    /// `member` (also when empty or absent) or `admin`.
    #[serde(default)]
    role: String,
    #[serde(default)]
    metadata: Map<String, Value>,
}

/// `POST /organizations/{id}/invitations`: invites an email on behalf of `actor_user_id`, an
/// owner or admin of the organization. The answer carries the `invite_url`.
pub async fn create_invitation(
    State(state): State<AppState>,
    ApiPath(org): ApiPath<Uuid>,
    _: InternalCaller,
    JsonBody(req): JsonBody<CreateInvitationRequest>,
) -> Result<Response, ApiError> {
    // Checked in the order of behavior.md §9.3: email, role, metadata (an object, by type).
    let email = EmailAddress::parse(&req.email)?;
    let role = match req.role.as_str() {
        "" | "member" => OrgRole::Member,
        "admin" => OrgRole::Admin,
        _ => return Err(ApiError::invalid_request("role must be member or admin")),
    };
    let invite = NewInvite { actor: UserId(req.actor_user_id), email, role, metadata: req.metadata };
    let created = state.services.invitations().invite(OrgId(org), &invite).await?;
    Ok((StatusCode::CREATED, invitation_envelope(&created)).into_response())
}

/// `POST /organizations/{id}/invitations/{invitationID}/resend`: replaces the invitation with a
/// fresh one (new token and expiry) and mails it.
pub async fn resend_invitation(
    State(state): State<AppState>,
    ApiPath((org, id)): ApiPath<(Uuid, Uuid)>,
    _: InternalCaller,
) -> Result<Response, ApiError> {
    let fresh = state.services.invitations().resend(OrgId(org), id).await?;
    Ok((StatusCode::CREATED, invitation_envelope(&fresh)).into_response())
}

/// The body of the calls made on a member's behalf.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorRequest {
    actor_user_id: Uuid,
}

/// `DELETE /organizations/{id}`: its owner deletes a team organization (`204`).
pub async fn delete_organization(
    State(state): State<AppState>,
    ApiPath(org): ApiPath<Uuid>,
    _: InternalCaller,
    Client(client): Client,
    JsonBody(req): JsonBody<ActorRequest>,
) -> Result<Response, ApiError> {
    state.services.organizations().delete(OrgId(org), UserId(req.actor_user_id), &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /organizations/{id}/members/{userID}`: an owner or admin removes a member (`204`).
pub async fn remove_member(
    State(state): State<AppState>,
    ApiPath((org, user)): ApiPath<(Uuid, Uuid)>,
    _: InternalCaller,
    Client(client): Client,
    JsonBody(req): JsonBody<ActorRequest>,
) -> Result<Response, ApiError> {
    let orgs = state.services.organizations();
    orgs.remove_member(OrgId(org), UserId(user), UserId(req.actor_user_id), &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    actor_user_id: Uuid,
    new_owner_user_id: Uuid,
}

/// `POST /organizations/{id}/ownership-transfer`: the owner hands the organization to a
/// member and becomes an admin (`204`).
pub async fn transfer_ownership(
    State(state): State<AppState>,
    ApiPath(org): ApiPath<Uuid>,
    _: InternalCaller,
    Client(client): Client,
    JsonBody(req): JsonBody<TransferRequest>,
) -> Result<Response, ApiError> {
    let (actor, heir) = (UserId(req.actor_user_id), UserId(req.new_owner_user_id));
    state.services.organizations().transfer_ownership(OrgId(org), actor, heir, &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /users/{userID}`: deletes the user as their own account deletion does (`204`).
pub async fn delete_user(
    State(state): State<AppState>,
    ApiPath(user): ApiPath<Uuid>,
    _: InternalCaller,
    Client(client): Client,
) -> Result<Response, ApiError> {
    state.services.profiles().delete_user(UserId(user), &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /users/{userID}/memberships`: the body of the public route, for any user.
pub async fn user_memberships(
    State(state): State<AppState>,
    ApiPath(user): ApiPath<Uuid>,
    _: InternalCaller,
) -> Result<Response, ApiError> {
    let rows = state.services.organizations().memberships_of_user(UserId(user)).await?;
    Ok(memberships_body(&rows).into_response())
}
