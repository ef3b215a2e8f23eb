//! Google's ID-token sign-in (the contract's `/oauth/google` routes). JSON clients start a
//! code flow by sending the browser to the page route `/auth/oauth/{provider}/start`.

use axum::Json;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use crate::http::api::auth::completed;
use crate::http::cookies;
use crate::http::error::ApiError;
use crate::http::extract::{AudienceParam, Client, Csrf, JsonBody};
use crate::http::state::AppState;
use crate::services::oauth::{OAuthError, SignInOutcome};

#[derive(Serialize)]
struct GoogleOptions<'a> {
    client_id: &'a str,
    nonce: &'a str,
}

/// `GET /oauth/google/options`: the client id and the nonce (the cookie's, else a new one).
pub async fn google_options(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let client_id = state.services.oauth().google_client_id().ok_or_else(ApiError::not_found)?;
    if let Some(nonce) = cookies::get(&headers, cookies::OAUTH_NONCE).filter(|n| !n.is_empty() && n.len() <= 128) {
        return Ok(Json(GoogleOptions { client_id, nonce }).into_response());
    }
    let nonce = cookies::random_value();
    let cookie = cookies::oauth_nonce(&nonce, state.services.now_ms(), state.config.secure_cookies());
    Ok(([(SET_COOKIE, cookie)], Json(GoogleOptions { client_id, nonce: &nonce })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleLoginRequest {
    #[serde(default)]
    credential: String,
    #[serde(default)]
    nonce: String,
}

/// `POST /oauth/google?audience=`: CSRF, then availability (behavior.md §1.2), then the body
/// nonce against the cookie's (constant time), the ID token, and the linking rules of §7.3.
pub async fn google_login(
    State(state): State<AppState>,
    headers: HeaderMap,
    AudienceParam(audience): AudienceParam,
    Client(client): Client,
    _: Csrf,
    JsonBody(req): JsonBody<GoogleLoginRequest>,
) -> Result<Response, ApiError> {
    let oauth = state.services.oauth();
    if oauth.google_client_id().is_none() {
        return Err(ApiError::not_found());
    }
    if req.credential.trim().is_empty() || req.nonce.trim().is_empty() {
        return Err(ApiError::invalid_request("credential and nonce are required"));
    }
    let cookie = cookies::get(&headers, cookies::OAUTH_NONCE).unwrap_or_default();
    if cookie.is_empty() || !bool::from(req.nonce.as_bytes().ct_eq(cookie.as_bytes())) {
        return Err(ApiError::unauthorized());
    }
    let identity = oauth.verify_google(&req.credential, &req.nonce, &client).await?;
    let clear = cookies::clear_oauth_nonce(state.config.secure_cookies());
    let outcome = oauth.sign_in(&identity, audience, &client, None).await;
    let mut res = match outcome {
        Ok(SignInOutcome::SignedIn(s)) => completed(&state, StatusCode::OK, s),
        // Without a recovery page (the JSON flow) an existing account is the contract's 409.
        Ok(SignInOutcome::LinkRequired { .. } | SignInOutcome::SignupPending { .. }) => {
            ApiError::from(OAuthError::LinkRequired).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    };
    // The token was verified: its nonce is spent whatever the sign-in decided.
    res.headers_mut().append(SET_COOKIE, clear);
    Ok(res)
}
