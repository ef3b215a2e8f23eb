//! Authentication: CSRF token, password login, direct signup.

use axum::Json;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::rfc3339;
use crate::domain::{Audience, EmailAddress, NewPassword};
use crate::http::cookies;
use crate::http::error::ApiError;
use crate::http::extract::{AudienceParam, Client, Csrf, JsonBody};
use crate::http::state::AppState;
use crate::services::UserRow;
use crate::services::accounts::{Completion, Invited, LoginError, SignedIn};
use crate::services::signin::SecondStep;

#[derive(Serialize)]
struct CsrfToken<'a> {
    csrf_token: &'a str,
}

/// `GET /csrf`: reuses the existing cookie, else mints one (32 random bytes, base64url).
pub async fn csrf(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(existing) = cookies::get(&headers, cookies::CSRF).filter(|c| !c.is_empty()) {
        return Json(CsrfToken { csrf_token: existing }).into_response();
    }
    let (token, cookie) = state.new_csrf();
    ([(SET_COOKIE, cookie)], Json(CsrfToken { csrf_token: &token })).into_response()
}

#[derive(Serialize)]
pub struct AuthUser {
    id: Uuid,
    email: String,
    username: String,
    disabled: bool,
    created_at: String,
}

impl From<&UserRow> for AuthUser {
    fn from(u: &UserRow) -> Self {
        AuthUser {
            id: u.id.0,
            email: u.email.clone(),
            username: u.username.clone(),
            disabled: u.disabled_at_ms.is_some(),
            created_at: rfc3339(u.created_at_ms),
        }
    }
}

#[derive(Serialize)]
struct AuthSession {
    user: AuthUser,
    access_token: String,
    refresh_token: String,
}

/// How a sign-in answers: the session ([`signed_in`]), or `401 mfa_required` (or
/// `mfa_enrollment_required`) with the waiting sign-in, whose binding goes in the `authara_mfa`
/// cookie and nowhere else; no session cookie.
pub fn completed(state: &AppState, status: StatusCode, c: Completion) -> Response {
    match c {
        Completion::SignedIn(s) => signed_in(state, status, s),
        Completion::SecondFactor(step) => second_step(state, &step),
    }
}

#[derive(Serialize)]
struct SecondStepBody<'a> {
    error: ErrorBody<'a>,
    mfa: MfaChallenge<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct MfaChallenge<'a> {
    challenge_id: Uuid,
    methods: &'a [&'a str],
    expires_in: i64,
    enroll: bool,
}

fn second_step(state: &AppState, step: &SecondStep) -> Response {
    let (code, message) = if step.enrol {
        ("mfa_enrollment_required", "Set up two-step verification to finish signing in")
    } else {
        ("mfa_required", "Enter the code from your authenticator app to finish signing in")
    };
    let body = SecondStepBody {
        error: ErrorBody { code, message },
        mfa: MfaChallenge {
            challenge_id: step.challenge_id,
            methods: step.methods(),
            expires_in: SecondStep::EXPIRES_IN,
            enroll: step.enrol,
        },
    };
    let mut headers = HeaderMap::new();
    cookies::append(&mut headers, [state.mfa_cookie(step)]);
    (StatusCode::UNAUTHORIZED, headers, Json(body)).into_response()
}

/// The `AuthSession` body with both session cookies.
pub fn signed_in(state: &AppState, status: StatusCode, s: SignedIn) -> Response {
    let mut headers = HeaderMap::new();
    cookies::append(&mut headers, state.signed_in_cookies(&s));
    let body = AuthSession {
        user: AuthUser::from(&s.user),
        access_token: s.tokens.access_token,
        refresh_token: s.tokens.refresh_token,
    };
    (status, headers, Json(body)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordLoginRequest {
    email: String,
    password: String,
}

/// `POST /login?audience=app|admin`.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    AudienceParam(audience): AudienceParam,
    Client(client): Client,
    _: Csrf,
    JsonBody(req): JsonBody<PasswordLoginRequest>,
) -> Result<Response, ApiError> {
    if req.email.trim().is_empty() || req.password.is_empty() {
        return Err(ApiError::invalid_request("email and password are required"));
    }
    // An address that cannot exist cannot have an account: the same answer as a wrong password.
    let email = EmailAddress::parse(&req.email).map_err(|_| ApiError::from(LoginError::InvalidCredentials))?;
    let device = cookies::get(&headers, cookies::DEVICE);
    let signed = state.services.accounts().login(&email, &req.password, audience, &client, device).await?;
    Ok(completed(&state, StatusCode::OK, signed))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    email: String,
    password: String,
    invitation_code: Option<String>,
}

/// `POST /signup/direct?audience=app`.
pub async fn signup_direct(
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
    let invited = req.invitation_code.as_deref().map(|code| Invited { code, land_there: false });
    let signed = state.services.accounts().signup(&email, &password, invited, &client).await?;
    Ok(completed(&state, StatusCode::CREATED, signed))
}
