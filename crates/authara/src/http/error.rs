//! `ApiError`: the one mapping from failures to the contract's error envelope
//! `{"error":{"code":"…","message":"…"}}`. Every service error enum gets one `From` impl here,
//! an exhaustive `match` without a wildcard arm, so a new variant does not compile until its
//! status and code are chosen. Server-side causes are logged, never put in a body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::InputError;
use crate::services::StoreError;
use crate::services::accounts::{LoginError, PasswordChangeError, SignupError};
use crate::services::auth::{AuthError, ReauthError};
use crate::services::challenges::ChallengeError;
use crate::services::mfa::MfaError;
use crate::services::oauth::OAuthError;
use crate::services::organizations::{OrgError, SwitchError};
use crate::services::passkeys::PasskeyError;
use crate::services::password::HashError;
use crate::services::profile::DeletionError;
use crate::services::sessions::{RefreshError, SessionError};
use crate::services::token::TokenError;

/// An error answered in the contract's envelope.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (rate limits).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Too many attempts; try again later");
        e.retry_after = Some(retry_after_secs);
        e
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed")
    }

    /// A server-side failure: the body stays generic, the cause is logged once with the request id.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Internal server error")
    }

    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "database unavailable");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "internal_error", "Service temporarily unavailable")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Envelope { error: Body { code: self.code, message: &self.message } };
        let mut res = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::Busy(_) => ApiError::unavailable(&e),
            StoreError::Conflict | StoreError::Other(_) | StoreError::Corrupt(_) => ApiError::internal(&e),
        }
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        match e {
            InputError::InvalidEmail
            | InputError::PasswordTooShort
            | InputError::PasswordTooLong
            | InputError::PasswordTooCommon
            | InputError::InvalidUsername => ApiError::invalid_request(e.to_string()),
        }
    }
}

impl From<HashError> for ApiError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Failed(_) => ApiError::internal(&e),
            HashError::Busy => {
                let mut busy = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "internal_error",
                    "The server is busy; try again in a moment",
                );
                busy.retry_after = Some(1);
                busy
            }
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Signing => ApiError::internal(&e),
            TokenError::Malformed
            | TokenError::UnknownKey
            | TokenError::BadSignature
            | TokenError::Expired
            | TokenError::WrongIssuer
            | TokenError::WrongAudience
            | TokenError::InvalidClaims => ApiError::unauthorized(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Token(_) | AuthError::Revoked | AuthError::Disabled | AuthError::Gone => {
                ApiError::unauthorized()
            }
            AuthError::SecondFactorRequired => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "mfa_step_up_required",
                "This session has not used a second factor: verify with POST /mfa/verify or sign in again",
            ),
            AuthError::Store(s) => s.into(),
        }
    }
}

impl From<ReauthError> for ApiError {
    fn from(e: ReauthError) -> Self {
        match e {
            ReauthError::Required => {
                ApiError::forbidden("This change needs a recent sign-in: sign in again, or send current_password")
            }
            ReauthError::WrongPassword => ApiError::forbidden("The current password is incorrect"),
            ReauthError::SecondFactorRequired => ApiError::new(
                StatusCode::FORBIDDEN,
                "mfa_step_up_required",
                "This change needs a recent second factor: verify with POST /mfa/verify first",
            ),
            ReauthError::RateLimited { retry_after_secs } => ApiError::rate_limited(retry_after_secs),
            ReauthError::Hash(h) => h.into(),
            ReauthError::Store(s) => s.into(),
        }
    }
}

impl From<MfaError> for ApiError {
    fn from(e: MfaError) -> Self {
        match e {
            MfaError::NotEnabled => {
                ApiError::new(StatusCode::CONFLICT, "mfa_not_enabled", "Two-step verification is not on")
            }
            MfaError::AlreadyEnabled => {
                ApiError::new(StatusCode::CONFLICT, "mfa_already_enabled", "Two-step verification is already on")
            }
            MfaError::NoSetup => ApiError::new(
                StatusCode::CONFLICT,
                "mfa_setup_required",
                "No authenticator setup is in progress: start one with POST /mfa/totp/setup",
            ),
            MfaError::InvalidCode => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "mfa_code_invalid", "The code is incorrect")
            }
            MfaError::Locked => ApiError::new(
                StatusCode::FORBIDDEN,
                "mfa_locked",
                "Too many incorrect codes: the authenticator app is locked, use a recovery code",
            ),
            MfaError::RateLimited { retry_after_secs } => ApiError::rate_limited(retry_after_secs),
            MfaError::UnknownChallenge => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "mfa_challenge_invalid",
                "This sign-in expired or was started elsewhere: sign in again",
            ),
            MfaError::KeyMissing | MfaError::Token(_) => ApiError::internal(&e),
            MfaError::Reauth(r) => r.into(),
            MfaError::Session(s) => s.into(),
            MfaError::Store(s) => s.into(),
        }
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Disabled => ApiError::forbidden("User is disabled"),
            SessionError::NotAllowed => ApiError::forbidden("This email is not allowed"),
            SessionError::AudienceForbidden => ApiError::forbidden("Audience not permitted"),
            SessionError::NoOrganization => ApiError::internal(&e),
            SessionError::Token(t) => ApiError::internal(&t),
            SessionError::Store(s) => s.into(),
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::RateLimited { retry_after_secs } => ApiError::rate_limited(retry_after_secs),
            LoginError::InvalidCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid email or password")
            }
            LoginError::Session(s) => s.into(),
            LoginError::Hash(h) => h.into(),
            LoginError::Store(s) => s.into(),
        }
    }
}

impl From<SignupError> for ApiError {
    fn from(e: SignupError) -> Self {
        match e {
            SignupError::Unavailable => ApiError::not_found(),
            SignupError::InvalidInvitation => ApiError::invalid_request("Invalid invitation code"),
            SignupError::EmailTaken => ApiError::invalid_request("An account with this email already exists"),
            SignupError::NotAllowed => ApiError::forbidden("This email is not allowed to sign up"),
            SignupError::RateLimited { retry_after_secs } => ApiError::rate_limited(retry_after_secs),
            SignupError::Session(s) => s.into(),
            SignupError::Hash(h) => h.into(),
            SignupError::Store(s) => s.into(),
        }
    }
}

impl From<RefreshError> for ApiError {
    fn from(e: RefreshError) -> Self {
        match e {
            RefreshError::Invalid | RefreshError::Reused | RefreshError::Forbidden | RefreshError::Disabled => {
                ApiError::unauthorized()
            }
            RefreshError::Token(t) => ApiError::internal(&t),
            RefreshError::Store(s) => s.into(),
        }
    }
}

impl From<PasswordChangeError> for ApiError {
    fn from(e: PasswordChangeError) -> Self {
        match e {
            PasswordChangeError::Reauth(r) => r.into(),
            PasswordChangeError::UnknownUser => ApiError::unauthorized(),
            PasswordChangeError::Hash(h) => h.into(),
            PasswordChangeError::Store(s) => s.into(),
        }
    }
}

impl From<ChallengeError> for ApiError {
    fn from(e: ChallengeError) -> Self {
        match e {
            ChallengeError::Unavailable => ApiError::not_found(),
            ChallengeError::InvalidInvitation => ApiError::invalid_request("Invalid invitation code"),
            ChallengeError::MalformedCode => ApiError::invalid_request("The code is 6 digits"),
            ChallengeError::SameEmail => ApiError::invalid_request("That is already your email address"),
            ChallengeError::Unknown
            | ChallengeError::EmailTaken
            | ChallengeError::Incorrect
            | ChallengeError::Expired
            | ChallengeError::TooManyAttempts
            | ChallengeError::AlreadyUsed => ApiError::invalid_request("Invalid or expired code"),
            ChallengeError::NotAllowed => ApiError::forbidden("This email is not allowed to sign up"),
            ChallengeError::RateLimited { retry_after_secs } => ApiError::rate_limited(retry_after_secs),
            ChallengeError::Reauth(r) => r.into(),
            ChallengeError::Session(s) => s.into(),
            ChallengeError::Hash(h) => h.into(),
            ChallengeError::Store(s) => s.into(),
        }
    }
}

impl From<OrgError> for ApiError {
    fn from(e: OrgError) -> Self {
        let msg = e.to_string();
        let with = |status, code| ApiError::new(status, code, msg.clone());
        match e {
            OrgError::ModeForbids
            | OrgError::NotActiveOrganization
            | OrgError::NotMember
            | OrgError::NotManager
            | OrgError::NotSelf => ApiError::forbidden(msg),
            OrgError::MembershipGone => ApiError::unauthorized(),
            OrgError::InvalidName | OrgError::InvalidActor | OrgError::InvalidRole | OrgError::TransferToSelf => {
                ApiError::invalid_request(msg)
            }
            OrgError::ActorNotMember => with(StatusCode::FORBIDDEN, "actor_not_member"),
            OrgError::ActorNotAllowed => with(StatusCode::FORBIDDEN, "actor_not_allowed"),
            OrgError::OrganizationNotFound => with(StatusCode::NOT_FOUND, "organization_not_found"),
            OrgError::UserNotFound => with(StatusCode::NOT_FOUND, "user_not_found"),
            OrgError::MembershipNotFound => with(StatusCode::NOT_FOUND, "membership_not_found"),
            OrgError::InvitationNotFound => with(StatusCode::NOT_FOUND, "invitation_not_found"),
            OrgError::AlreadyMember => with(StatusCode::CONFLICT, "already_member"),
            OrgError::InvitationAlreadyPending => with(StatusCode::CONFLICT, "invitation_already_pending"),
            OrgError::InvitationAlreadyAccepted => with(StatusCode::CONFLICT, "invitation_already_accepted"),
            OrgError::InvitationRevoked => with(StatusCode::CONFLICT, "invitation_revoked"),
            OrgError::InvitationExpired => with(StatusCode::CONFLICT, "invitation_expired"),
            OrgError::LastOwner => with(StatusCode::CONFLICT, "last_owner"),
            OrgError::PersonalOrganization => with(StatusCode::CONFLICT, "personal_organization"),
            OrgError::Store(s) => s.into(),
        }
    }
}

impl From<DeletionError> for ApiError {
    fn from(e: DeletionError) -> Self {
        let msg = e.to_string();
        match e {
            DeletionError::UserNotFound => ApiError::new(StatusCode::NOT_FOUND, "user_not_found", msg),
            DeletionError::LastAdmin => ApiError::new(StatusCode::CONFLICT, "last_admin", msg),
            DeletionError::LastOwner { .. } => ApiError::new(StatusCode::CONFLICT, "last_owner", msg),
            DeletionError::Store(s) => s.into(),
        }
    }
}

impl From<SwitchError> for ApiError {
    fn from(e: SwitchError) -> Self {
        match e {
            SwitchError::SessionInvalid => ApiError::unauthorized(),
            SwitchError::ModeForbids
            | SwitchError::NotMember
            | SwitchError::Disabled
            | SwitchError::AudienceForbidden => ApiError::forbidden(e.to_string()),
            SwitchError::Token(t) => ApiError::internal(&t),
            SwitchError::Store(s) => s.into(),
        }
    }
}

impl From<PasskeyError> for ApiError {
    /// The sign-in's answers: whatever fails to verify is `401` (behavior.md §1.2).
    fn from(e: PasskeyError) -> Self {
        match e {
            PasskeyError::Unavailable => ApiError::not_found(),
            PasskeyError::RateLimited { retry_after_secs } => ApiError::rate_limited(retry_after_secs),
            PasskeyError::InvalidChallenge | PasskeyError::InvalidCredential | PasskeyError::PossibleClone => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "The passkey could not be verified")
            }
            PasskeyError::AlreadyExists => {
                ApiError::new(StatusCode::CONFLICT, "passkey_already_exists", "This passkey is already registered")
            }
            PasskeyError::NotFound => ApiError::not_found(),
            PasskeyError::LastMethod => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "The last way to sign in cannot be removed",
            ),
            PasskeyError::InvalidName => ApiError::invalid_request(e.to_string()),
            PasskeyError::Reauth(r) => r.into(),
            PasskeyError::Session(s) => s.into(),
            PasskeyError::Store(s) => s.into(),
        }
    }
}

impl ApiError {
    /// A registration's answers: a credential or ceremony that does not verify is
    /// `422 passkey_registration_invalid`, a credential registered before `409`.
    pub fn passkey_registration(e: PasskeyError) -> Self {
        match e {
            PasskeyError::InvalidChallenge | PasskeyError::InvalidCredential | PasskeyError::PossibleClone => {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "passkey_registration_invalid",
                    "The passkey registration could not be verified",
                )
            }
            other => other.into(),
        }
    }
}

impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> Self {
        match e {
            OAuthError::Disabled => ApiError::not_found(),
            OAuthError::Missing(what) => ApiError::invalid_request(format!("{what} is required")),
            OAuthError::InvalidToken(ref why) => {
                tracing::info!(reason = %why, "provider identity refused");
                ApiError::unauthorized()
            }
            OAuthError::EmailUnverified => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "The provider has not verified this email")
            }
            OAuthError::InvalidState | OAuthError::Denied(_) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid or expired sign-in state")
            }
            OAuthError::NotAllowed => ApiError::forbidden("This email is not allowed"),
            OAuthError::LinkRequired => ApiError::new(
                StatusCode::CONFLICT,
                "account_link_required",
                "An account with this email exists; sign in to it and link this provider",
            ),
            OAuthError::Provider(ref p) => {
                tracing::warn!(error = %p, "sign-in provider failed");
                // 500 is what the contract declares for these routes.
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "The sign-in provider is unavailable",
                )
            }
            OAuthError::LinkedElsewhere
            | OAuthError::AlreadyLinked
            | OAuthError::NotLinked
            | OAuthError::LastMethod => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", e.to_string())
            }
            OAuthError::UnknownLink | OAuthError::SessionChanged => ApiError::invalid_request(e.to_string()),
            OAuthError::Replayed => ApiError::unauthorized(),
            // Only the invitation pages sign in on an invitation; the API never gets here.
            OAuthError::Invitation(crate::services::invitations::AcceptError::Store(s)) => s.into(),
            OAuthError::Invitation(_) | OAuthError::InvitedAccountExists => ApiError::invalid_request(e.to_string()),
            OAuthError::WrongPassword => ApiError::unauthorized(),
            OAuthError::RateLimited { retry_after_secs } => ApiError::rate_limited(retry_after_secs),
            OAuthError::Reauth(r) => r.into(),
            OAuthError::Session(s) => s.into(),
            OAuthError::Hash(h) => h.into(),
            OAuthError::Store(s) => s.into(),
        }
    }
}
