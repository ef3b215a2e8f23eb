//! Two-step verification (`contract/extensions.yaml`): the second step of a sign-in, the
//! enrolment a policy requires during one, and a signed-in user's own factor and step-up.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::auth::signed_in;
use crate::http::cookies;
use crate::http::error::ApiError;
use crate::http::extract::{AppUser, AudienceParam, Client, Csrf, JsonBody};
use crate::http::state::AppState;
use crate::services::mfa::{Proof, Setup};

/// A code, or a recovery code: exactly one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofRequest {
    code: Option<String>,
    recovery_code: Option<String>,
}

impl ProofRequest {
    fn proof(&self) -> Result<Proof<'_>, ApiError> {
        match (self.code.as_deref(), self.recovery_code.as_deref()) {
            (Some(code), None) if code.len() <= 64 => Ok(Proof::Totp(code)),
            (None, Some(code)) if code.len() <= 64 => Ok(Proof::Recovery(code)),
            _ => Err(ApiError::invalid_request("send one of code or recovery_code")),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondStepRequest {
    challenge_id: Uuid,
    code: Option<String>,
    recovery_code: Option<String>,
    #[serde(default)]
    remember_device: bool,
}

/// This browser's half of its waiting sign-in (the `authara_mfa` cookie is
/// `<challenge id>.<binding>`).
fn binding(headers: &HeaderMap) -> Option<&str> {
    cookies::get(headers, cookies::MFA).filter(|b| b.len() <= 128)?.split_once('.').map(|(_, b)| b)
}

/// `POST /login/mfa`: the second step of a sign-in that answered `mfa_required`, in the browser
/// that passed the first (its `authara_mfa` cookie); exactly what `POST /login` answers on
/// success. The challenge's own audience applies (the query's is accepted for symmetry).
pub async fn login_second_step(
    State(state): State<AppState>,
    headers: HeaderMap,
    AudienceParam(_): AudienceParam,
    Client(client): Client,
    _: Csrf,
    JsonBody(req): JsonBody<SecondStepRequest>,
) -> Result<Response, ApiError> {
    let proof = ProofRequest { code: req.code, recovery_code: req.recovery_code };
    let signed = state
        .services
        .signins()
        .second_factor(req.challenge_id, binding(&headers), proof.proof()?, req.remember_device, &client)
        .await?;
    let mut res = signed_in(&state, StatusCode::OK, signed);
    cookies::append(res.headers_mut(), [cookies::clear_mfa(state.config.secure_cookies())]);
    Ok(res)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    challenge_id: Uuid,
}

#[derive(Serialize)]
struct SetupBody {
    secret: String,
    otpauth_uri: String,
}

impl From<Setup> for SetupBody {
    fn from(s: Setup) -> Self {
        SetupBody { secret: s.secret, otpauth_uri: s.otpauth_uri }
    }
}

/// `POST /login/mfa/enroll`: the new secret for a sign-in that answered
/// `mfa_enrollment_required` (a new call replaces an unfinished one).
pub async fn login_enrol(
    State(state): State<AppState>,
    headers: HeaderMap,
    _: Csrf,
    JsonBody(req): JsonBody<ChallengeRequest>,
) -> Result<Response, ApiError> {
    let setup = state.services.signins().enrol_setup(req.challenge_id, binding(&headers), false).await?;
    Ok(Json(SetupBody::from(setup)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolConfirmRequest {
    challenge_id: Uuid,
    code: String,
}

/// `POST /login/mfa/enroll/confirm`: a current code confirms the enrolment and finishes the
/// sign-in: the `AuthSession`, with the recovery codes (shown once).
pub async fn login_enrol_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Client(client): Client,
    _: Csrf,
    JsonBody(req): JsonBody<EnrolConfirmRequest>,
) -> Result<Response, ApiError> {
    if req.code.len() > 64 {
        return Err(ApiError::from(crate::services::mfa::MfaError::InvalidCode));
    }
    let enrolled =
        state.services.signins().enrol_confirm(req.challenge_id, binding(&headers), &req.code, &client).await?;
    let mut headers = HeaderMap::new();
    cookies::append(&mut headers, state.signed_in_cookies(&enrolled.signed));
    cookies::append(&mut headers, [cookies::clear_mfa(state.config.secure_cookies())]);
    let s = &enrolled.signed;
    let body = serde_json::json!({
        "user": super::auth::AuthUser::from(&s.user),
        "access_token": s.tokens.access_token,
        "refresh_token": s.tokens.refresh_token,
        "recovery_codes": enrolled.recovery_codes,
    });
    Ok((StatusCode::OK, headers, Json(body)).into_response())
}

#[derive(Serialize)]
struct Enabled {
    enabled: bool,
}

#[derive(Serialize)]
struct Remaining {
    remaining: i64,
}

#[derive(Serialize)]
struct Status {
    totp: Enabled,
    recovery_codes: Remaining,
    required: bool,
}

/// `GET /mfa`.
pub async fn status(State(state): State<AppState>, user: AppUser) -> Result<Response, ApiError> {
    let roles: Vec<_> =
        user.0.role_claims().iter().filter_map(|r| crate::domain::PlatformRole::from_claim(r.as_str())).collect();
    let s = state.services.mfa().status(user.0.user_id(), &roles).await?;
    Ok(Json(Status {
        totp: Enabled { enabled: s.totp_enabled },
        recovery_codes: Remaining { remaining: s.recovery_remaining },
        required: s.required,
    })
    .into_response())
}

/// `POST /mfa/totp/setup` (privileged session).
pub async fn setup(State(state): State<AppState>, user: AppUser, _: Csrf) -> Result<Response, ApiError> {
    let setup = state.services.mfa().setup(&user.0, None).await?;
    Ok(Json(SetupBody::from(setup)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    code: String,
}

#[derive(Serialize)]
struct RecoveryCodes {
    recovery_codes: Vec<String>,
}

/// `POST /mfa/totp/confirm`.
pub async fn confirm(
    State(state): State<AppState>,
    user: AppUser,
    Client(client): Client,
    _: Csrf,
    JsonBody(req): JsonBody<CodeRequest>,
) -> Result<Response, ApiError> {
    let codes = state.services.mfa().confirm(&user.0, bounded(&req.code)?, &client).await?;
    Ok(Json(RecoveryCodes { recovery_codes: codes }).into_response())
}

/// `POST /mfa/totp/disable`: the code in the request is the fresh second factor.
pub async fn disable(
    State(state): State<AppState>,
    user: AppUser,
    Client(client): Client,
    _: Csrf,
    JsonBody(req): JsonBody<ProofRequest>,
) -> Result<Response, ApiError> {
    state.services.mfa().disable(&user.0, req.proof()?, &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /mfa/recovery-codes` (privileged, with a current code): a new set.
pub async fn regenerate(
    State(state): State<AppState>,
    user: AppUser,
    Client(client): Client,
    _: Csrf,
    JsonBody(req): JsonBody<CodeRequest>,
) -> Result<Response, ApiError> {
    let codes = state.services.mfa().regenerate(&user.0, bounded(&req.code)?, &client).await?;
    Ok(Json(RecoveryCodes { recovery_codes: codes }).into_response())
}

/// `POST /mfa/verify` (step-up): new session cookies whose access token's `amr` has `otp` and
/// `mfa`, and whose `auth_time` is now.
pub async fn verify(
    State(state): State<AppState>,
    user: AppUser,
    Client(client): Client,
    _: Csrf,
    JsonBody(req): JsonBody<ProofRequest>,
) -> Result<Response, ApiError> {
    let issued = state.services.mfa().step_up(&user.0, req.proof()?, &client).await?;
    let mut headers = HeaderMap::new();
    cookies::append(&mut headers, state.session_cookies(&issued));
    let body = serde_json::json!({ "access_token": issued.access_token, "refresh_token": issued.refresh_token });
    Ok((StatusCode::OK, headers, Json(body)).into_response())
}

fn bounded(code: &str) -> Result<&str, ApiError> {
    if code.len() > 64 { Err(ApiError::from(crate::services::mfa::MfaError::InvalidCode)) } else { Ok(code) }
}
