//! Email challenges: verified signup, password reset, resend.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::auth::completed;
use crate::domain::{Audience, EmailAddress, NewPassword};
use crate::http::error::ApiError;
use crate::http::extract::{AudienceParam, Client, Csrf, JsonBody};
use crate::http::state::AppState;

#[derive(Serialize)]
struct ChallengeReference {
    challenge_id: Uuid,
}

fn accepted(id: Uuid) -> Response {
    (StatusCode::ACCEPTED, Json(ChallengeReference { challenge_id: id })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    email: String,
    password: String,
    invitation_code: Option<String>,
}

/// `POST /signup/challenges` (only with `AUTHARA_CHALLENGE_ENABLED=true`).
pub async fn start_signup(
    State(state): State<AppState>,
    AudienceParam(audience): AudienceParam,
    Client(client): Client,
    _: Csrf,
    JsonBody(req): JsonBody<SignupRequest>,
) -> Result<Response, ApiError> {
    if audience != Audience::App {
        return Err(ApiError::invalid_request("signup only issues app sessions"));
    }
    let email = EmailAddress::parse(&req.email)?;
    let password = NewPassword::parse(&req.password)?;
    let id = state
        .services
        .challenges()
        .start_signup(&email, Some(&password), req.invitation_code.as_deref(), &client)
        .await?;
    Ok(accepted(id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    challenge_id: Uuid,
    code: String,
}

/// `POST /signup/challenges/verify`: the account and its session.
pub async fn verify_signup(
    State(state): State<AppState>,
    AudienceParam(audience): AudienceParam,
    Client(client): Client,
    _: Csrf,
    JsonBody(req): JsonBody<Verification>,
) -> Result<Response, ApiError> {
    if audience != Audience::App {
        return Err(ApiError::invalid_request("signup only issues app sessions"));
    }
    let signed = state.services.challenges().verify_signup(req.challenge_id, &req.code, false, &client).await?;
    Ok(completed(&state, StatusCode::CREATED, signed))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    email: String,
    new_password: String,
}

/// `POST /password-reset/challenges`: the same answer whether the email has an account or not.
pub async fn start_password_reset(
    State(state): State<AppState>,
    Client(client): Client,
    _: Csrf,
    JsonBody(req): JsonBody<PasswordResetRequest>,
) -> Result<Response, ApiError> {
    let email = EmailAddress::parse(&req.email)?;
    let password = NewPassword::parse(&req.new_password)?;
    let id = state.services.challenges().start_password_reset(&email, &password, &client).await?;
    Ok(accepted(id))
}

/// `POST /password-reset/challenges/verify`: new password set, every session revoked.
pub async fn verify_password_reset(
    State(state): State<AppState>,
    Client(client): Client,
    _: Csrf,
    JsonBody(req): JsonBody<Verification>,
) -> Result<Response, ApiError> {
    state.services.challenges().verify_password_reset(req.challenge_id, &req.code, &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resend {
    challenge_id: Uuid,
}

/// `POST /challenges/resend`: 204 whatever the challenge's state.
pub async fn resend(
    State(state): State<AppState>,
    Client(client): Client,
    _: Csrf,
    JsonBody(req): JsonBody<Resend>,
) -> Result<Response, ApiError> {
    state.services.challenges().resend(req.challenge_id, &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
