//! Passkeys (behavior.md §8): registration for the signed-in user, discoverable sign-in.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::http::api::auth::completed;
use crate::http::error::ApiError;
use crate::http::extract::{AppUser, AudienceParam, Client, Csrf, JsonBody};
use crate::http::state::AppState;
use crate::services::passkeys::{Ceremony, Registration};

/// `{challenge_id, options}` (the contract's `PasskeyOptions`).
#[derive(Serialize)]
pub struct PasskeyOptions {
    challenge_id: Uuid,
    options: Value,
}

impl From<Ceremony> for PasskeyOptions {
    fn from(c: Ceremony) -> Self {
        PasskeyOptions { challenge_id: c.challenge_id, options: c.options }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthenticationFinish {
    challenge_id: Uuid,
    credential: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationFinish {
    challenge_id: Uuid,
    credential: Value,
    name: Option<String>,
    platform_hint: Option<String>,
}

/// `POST /passkeys/authenticate/options` (body ignored).
pub async fn authenticate_options(
    State(state): State<AppState>,
    Client(client): Client,
    _: Csrf,
) -> Result<Json<PasskeyOptions>, ApiError> {
    Ok(Json(state.services.passkeys().start_authentication(&client).await?.into()))
}

/// `POST /passkeys/authenticate/finish?audience=`: an `AuthSession` with both cookies.
pub async fn authenticate_finish(
    State(state): State<AppState>,
    AudienceParam(audience): AudienceParam,
    Client(client): Client,
    _: Csrf,
    JsonBody(req): JsonBody<AuthenticationFinish>,
) -> Result<Response, ApiError> {
    let signed =
        state.services.passkeys().finish_authentication(req.challenge_id, req.credential, audience, &client).await?;
    Ok(completed(&state, StatusCode::OK, signed))
}

/// `POST /passkeys/register/options` (body ignored).
pub async fn register_options(
    State(state): State<AppState>,
    AppUser(who): AppUser,
    _: Csrf,
) -> Result<Json<PasskeyOptions>, ApiError> {
    let ceremony = state.services.passkeys().start_registration(&who).await.map_err(ApiError::passkey_registration)?;
    Ok(Json(ceremony.into()))
}

/// `POST /passkeys/register/finish`: `204`.
pub async fn register_finish(
    State(state): State<AppState>,
    AppUser(who): AppUser,
    Client(client): Client,
    _: Csrf,
    JsonBody(req): JsonBody<RegistrationFinish>,
) -> Result<Response, ApiError> {
    let reg = Registration { name: req.name.as_deref(), platform_hint: req.platform_hint.as_deref() };
    state
        .services
        .passkeys()
        .finish_registration(&who, req.challenge_id, req.credential, &reg, &client)
        .await
        .map_err(ApiError::passkey_registration)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
