//! The signed-in user: profile, password, organization, capabilities.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::rfc3339;
use crate::config::OrgMode;
use crate::domain::NewPassword;
use crate::http::error::ApiError;
use crate::http::extract::{AppUser, Client, Csrf, JsonBody};
use crate::http::state::AppState;
use crate::services::profile::Profile;

#[derive(Serialize)]
struct OrganizationSummary<'a> {
    id: Uuid,
    name: &'a str,
    role: &'a str,
}

/// Borrows from the cached profile and the token: a session check copies nothing to answer.
#[derive(Serialize)]
struct CurrentUser<'a> {
    id: Uuid,
    email: &'a str,
    username: &'a str,
    disabled: bool,
    created_at: String,
    roles: &'a [String],
    organization: OrganizationSummary<'a>,
}

/// The store's view of the token's user and organization; either gone is 401.
async fn profile(state: &AppState, user: &AppUser) -> Result<std::sync::Arc<Profile>, ApiError> {
    state.services.profiles().current(&user.0).await?.ok_or_else(ApiError::unauthorized)
}

fn summary<'a>(user: &'a AppUser, p: &'a Profile) -> OrganizationSummary<'a> {
    OrganizationSummary { id: user.0.org_id().0, name: &p.org_name, role: &user.0.claims().org_role }
}

/// `GET /user`: roles and organization role from the token, the rest from the store.
pub async fn current_user(State(state): State<AppState>, user: AppUser) -> Result<Response, ApiError> {
    let p = profile(&state, &user).await?;
    Ok(Json(CurrentUser {
        id: p.user.id.0,
        email: &p.user.email,
        username: &p.user.username,
        disabled: p.user.disabled_at_ms.is_some(),
        created_at: rfc3339(p.user.created_at_ms),
        roles: user.0.role_claims(),
        organization: summary(&user, &p),
    })
    .into_response())
}

/// `GET /organizations/current`.
pub async fn current_organization(State(state): State<AppState>, user: AppUser) -> Result<Response, ApiError> {
    let p = profile(&state, &user).await?;
    Ok(Json(summary(&user, &p)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordRequest {
    password: String,
    /// Our addition: required when the user already has a password.
    current_password: Option<String>,
}

/// `PUT /users/password`.
pub async fn set_password(
    State(state): State<AppState>,
    user: AppUser,
    Client(client): Client,
    _: Csrf,
    JsonBody(req): JsonBody<SetPasswordRequest>,
) -> Result<Response, ApiError> {
    let password = NewPassword::parse(&req.password)?;
    state.services.accounts().change_password(&user.0, &password, req.current_password.as_deref(), &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Serialize)]
struct Capabilities {
    organization_mode: &'static str,
    has_visible_organizations: bool,
    allows_invitations: bool,
    allows_public_organization_management: bool,
    allows_org_switching: bool,
    allows_user_created_team_orgs: bool,
    allows_organization_leave: bool,
}

/// `GET /capabilities` (behavior.md §9.4).
pub async fn capabilities(State(state): State<AppState>, _: AppUser) -> Response {
    let mode = state.config.org_mode;
    let multi = mode == OrgMode::Multi;
    Json(Capabilities {
        organization_mode: mode.as_str(),
        has_visible_organizations: mode != OrgMode::Personal,
        allows_invitations: mode != OrgMode::Personal,
        allows_public_organization_management: state.config.organizations.public_management_enabled,
        allows_org_switching: multi,
        allows_user_created_team_orgs: multi,
        allows_organization_leave: multi,
    })
    .into_response()
}
