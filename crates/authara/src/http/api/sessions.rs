//! Sessions: refresh (cookie and JSON flows) and logout.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::domain::Audience;
use crate::http::cookies;
use crate::http::error::ApiError;
use crate::http::extract::{AudienceParam, Csrf, JsonBody};
use crate::http::state::AppState;
use crate::services::sessions::RefreshError;

/// `POST /sessions/refresh`: the refresh cookie in, both cookies out, empty 200 body. A missing
/// cookie is 401 with cookies untouched; a refused token is 401 and clears both cookies.
pub async fn refresh(
    State(state): State<AppState>,
    AudienceParam(audience): AudienceParam,
    _: Csrf,
    headers: HeaderMap,
) -> Response {
    let Some(token) = cookies::get(&headers, cookies::REFRESH).filter(|t| !t.is_empty()) else {
        return ApiError::unauthorized().into_response();
    };
    match state.services.sessions().refresh(token, audience).await {
        Ok(issued) => {
            let mut out = HeaderMap::new();
            cookies::append(&mut out, state.session_cookies(&issued));
            (StatusCode::OK, out).into_response()
        }
        Err(e @ (RefreshError::Invalid | RefreshError::Reused | RefreshError::Forbidden | RefreshError::Disabled)) => {
            let mut out = HeaderMap::new();
            cookies::append(&mut out, state.cleared_session_cookies());
            (out, ApiError::from(e)).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRefreshRequest {
    refresh_token: String,
    audience: Option<String>,
}

#[derive(Serialize)]
struct Tokens {
    access_token: String,
    refresh_token: String,
}

/// `POST /tokens/refresh`: token in the body, no CSRF (not a cookie flow), no cookies set.
pub async fn tokens_refresh(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<TokenRefreshRequest>,
) -> Result<Response, ApiError> {
    let token = req.refresh_token.trim();
    if token.is_empty() {
        return Err(ApiError::invalid_request("refresh_token is required"));
    }
    let audience = match req.audience.as_deref() {
        None => Audience::App,
        Some(a) => Audience::parse(a).map_err(|_| ApiError::invalid_request("audience must be app or admin"))?,
    };
    let issued = state.services.sessions().refresh(token, audience).await?;
    Ok(Json(Tokens { access_token: issued.access_token, refresh_token: issued.refresh_token }).into_response())
}

/// `POST /sessions/logout`: revokes the session when there is one; always 204 and clears both
/// session cookies.
pub async fn logout(State(state): State<AppState>, _: Csrf, headers: HeaderMap) -> Response {
    state
        .services
        .sessions()
        .logout(cookies::get(&headers, cookies::REFRESH), cookies::get(&headers, cookies::ACCESS))
        .await;
    let mut out = HeaderMap::new();
    cookies::append(&mut out, state.cleared_session_cookies());
    (StatusCode::NO_CONTENT, out).into_response()
}
