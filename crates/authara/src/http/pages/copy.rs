//! What the pages say when something goes wrong: the UI copy for each service outcome, in one
//! place. Services' error texts are for logs; people read these. Each mapping is an exhaustive
//! match, so a new outcome does not compile until it has its words; server-side failures become
//! a [`PageError`] instead.

use axum::http::StatusCode;

use super::error::PageError;
use crate::config::OrgMode;
use crate::domain::{InputError, InvitationStatus};
use crate::services::accounts::{InvitedLoginError, LoginError, SignupError};
use crate::services::admin::AdminError;
use crate::services::auth::ReauthError;
use crate::services::challenges::ChallengeError;
use crate::services::invitations::AcceptError;
use crate::services::oauth::OAuthError;
use crate::services::organizations::{OrgError, SwitchError};
use crate::services::passkeys::PasskeyError;
use crate::services::profile::ProfileError;
use crate::services::sessions::{RevokeError, SessionError};

/// A failure shown on the form that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub status: StatusCode,
    pub message: &'static str,
}

const fn form(message: &'static str) -> Failure {
    Failure { status: StatusCode::UNPROCESSABLE_ENTITY, message }
}

const fn gone(message: &'static str) -> Failure {
    Failure { status: StatusCode::GONE, message }
}

const fn limited(message: &'static str) -> Failure {
    Failure { status: StatusCode::TOO_MANY_REQUESTS, message }
}

const fn refused(message: &'static str) -> Failure {
    Failure { status: StatusCode::BAD_REQUEST, message }
}

/// An administrator's action the guards refused; unknown targets are 404 pages.
pub fn admin(e: AdminError) -> Result<Failure, PageError> {
    match e {
        AdminError::OnSelf => Ok(refused("Administrators cannot do this to their own account.")),
        AdminError::LastAdmin => Ok(refused("The last active administrator cannot be disabled or demoted.")),
        AdminError::AlreadyAllowed => Ok(refused("That address is already on the allowlist.")),
        AdminError::OwnEmail => Ok(refused("You cannot remove your own address.")),
        AdminError::UnknownUser | AdminError::UnknownSession | AdminError::UnknownEntry => Err(PageError::NotFound),
        AdminError::NotAdmin => Err(PageError::NotAllowed),
        AdminError::Reauth(r) => reauth(r),
        AdminError::Store(s) => Err(s.into()),
    }
}

pub fn input(e: InputError) -> Failure {
    form(match e {
        InputError::InvalidEmail => "Enter a valid email address.",
        InputError::PasswordTooShort => "Your password needs at least 8 characters.",
        InputError::PasswordTooLong => "Your password can have at most 128 characters.",
        InputError::PasswordTooCommon => "This password is too common. Choose one that is harder to guess.",
        InputError::InvalidUsername => "Usernames are 3 to 30 letters, digits, _ or -.",
    })
}

fn session(e: SessionError) -> Result<Failure, PageError> {
    match e {
        SessionError::Disabled | SessionError::AudienceForbidden | SessionError::NotAllowed => {
            Ok(form("This account cannot sign in here."))
        }
        SessionError::NoOrganization | SessionError::Token(_) => Err(PageError::internal(&e)),
        SessionError::Store(s) => Err(s.into()),
    }
}

pub fn login(e: LoginError) -> Result<Failure, PageError> {
    match e {
        LoginError::RateLimited { .. } => Ok(limited("Too many sign-in attempts. Please wait a minute and try again.")),
        LoginError::InvalidCredentials => Ok(form("Incorrect email or password.")),
        LoginError::Session(s) => session(s),
        LoginError::Hash(h) => Err(h.into()),
        LoginError::Store(s) => Err(s.into()),
    }
}

pub fn signup(e: SignupError) -> Result<Failure, PageError> {
    match e {
        SignupError::EmailTaken => Ok(form("An account with this email already exists. Sign in instead.")),
        SignupError::NotAllowed => Ok(form("This email address cannot sign up here. Ask an administrator.")),
        SignupError::InvalidInvitation => Ok(form("This invitation cannot be used.")),
        SignupError::RateLimited { .. } => Ok(limited("Too many sign-ups from here. Please try again later.")),
        SignupError::Unavailable => Err(PageError::Internal("direct signup while challenges are on".to_owned())),
        SignupError::Session(s) => session(s),
        SignupError::Hash(h) => Err(h.into()),
        SignupError::Store(s) => Err(s.into()),
    }
}

pub fn challenge(e: ChallengeError) -> Result<Failure, PageError> {
    match e {
        ChallengeError::Incorrect => Ok(form("That code is incorrect.")),
        ChallengeError::Expired => Ok(form("That code has expired. Send a new one.")),
        ChallengeError::TooManyAttempts => Ok(form("Too many incorrect codes. Please start again.")),
        ChallengeError::AlreadyUsed => Ok(form("This code was already used.")),
        ChallengeError::MalformedCode => Ok(form("The code is the 6 digits from the email.")),
        ChallengeError::SameEmail => Ok(form("That is already your email address.")),
        ChallengeError::EmailTaken | ChallengeError::Unknown | ChallengeError::Unavailable => {
            Ok(form("This code cannot be used. Please start again."))
        }
        ChallengeError::InvalidInvitation => Ok(form("This invitation cannot be used.")),
        ChallengeError::NotAllowed => Ok(form("This email address cannot sign up here. Ask an administrator.")),
        ChallengeError::RateLimited { .. } => Ok(limited("Too many attempts. Please wait a moment and try again.")),
        ChallengeError::Reauth(r) => reauth(r),
        ChallengeError::Session(s) => session(s),
        ChallengeError::Hash(h) => Err(h.into()),
        ChallengeError::Store(s) => Err(s.into()),
    }
}

/// A failed read of the signed-in user's own row (only the store or a vanished user can fail
/// it): the page's error.
pub fn profile_read(e: ProfileError) -> PageError {
    match profile(e) {
        Ok(f) => PageError::Internal(f.message.to_owned()),
        Err(p) => p,
    }
}

pub fn profile(e: ProfileError) -> Result<Failure, PageError> {
    match e {
        ProfileError::UsernameTaken => Ok(form("That username is taken.")),
        ProfileError::Reauth(r) => reauth(r),
        ProfileError::ConfirmationMismatch => Ok(form("Type your email exactly to confirm the deletion.")),
        ProfileError::LastAdmin => Ok(form("The last active administrator cannot delete their account.")),
        ProfileError::LastOwner { .. } => Ok(refused(
            "You are the only owner of an organization that has other members. Hand it over to one of them, \
             or delete it, before deleting your account.",
        )),
        ProfileError::Gone => Err(PageError::Unauthenticated { login: "/auth/login".to_owned() }),
        ProfileError::Hash(h) => Err(h.into()),
        ProfileError::Store(s) => Err(s.into()),
    }
}

/// The privileged-session rule's refusals.
/// A passkey ceremony or change that failed. Whatever does not verify gets the same words (a
/// possible clone is not told apart from a bad signature).
pub fn passkey(e: PasskeyError) -> Result<Failure, PageError> {
    match e {
        PasskeyError::Unavailable | PasskeyError::NotFound => Err(PageError::NotFound),
        PasskeyError::RateLimited { .. } => Ok(limited("Too many passkey attempts. Wait a few minutes and try again.")),
        PasskeyError::InvalidChallenge => Ok(form("This passkey request expired. Please try again.")),
        PasskeyError::InvalidCredential | PasskeyError::PossibleClone => {
            Ok(form("That passkey could not be verified. Try again, or sign in another way."))
        }
        PasskeyError::AlreadyExists => Ok(form("This passkey is already registered.")),
        PasskeyError::LastMethod => {
            Ok(form("This is your only way to sign in. Add a password or another passkey before removing it."))
        }
        PasskeyError::InvalidName => Ok(form("A passkey name has 1 to 255 visible characters.")),
        PasskeyError::Reauth(r) => reauth(r),
        PasskeyError::Session(s) => session(s),
        PasskeyError::Store(s) => Err(s.into()),
    }
}

pub fn reauth(e: ReauthError) -> Result<Failure, PageError> {
    match e {
        ReauthError::Required => {
            Ok(form("For your security, enter your current password to continue (or sign in again)."))
        }
        ReauthError::WrongPassword => Ok(form("The current password is incorrect.")),
        ReauthError::SecondFactorRequired => Ok(form(
            "For your security, confirm it is you with your authenticator app first (“Verify now” under Two-step verification).",
        )),
        ReauthError::RateLimited { .. } => Ok(limited("Too many attempts. Please wait and try again.")),
        ReauthError::Hash(h) => Err(h.into()),
        ReauthError::Store(s) => Err(s.into()),
    }
}

pub fn revoke(e: RevokeError) -> Result<Failure, PageError> {
    match e {
        RevokeError::NotFound => Ok(form("That session was not found.")),
        RevokeError::Store(s) => Err(s.into()),
    }
}

pub fn invitation(e: AcceptError) -> Result<Failure, PageError> {
    match e {
        AcceptError::Unknown => Ok(form("This invitation link is not valid. Ask for a new one.")),
        AcceptError::Revoked => Ok(gone("This invitation was withdrawn. Ask for a new one.")),
        AcceptError::Expired => Ok(gone("This invitation has expired. Ask for a new one.")),
        AcceptError::AcceptedByOther => Ok(gone("This invitation was already used.")),
        AcceptError::WrongEmail => Ok(form("This invitation is for another email address. Sign in with that address.")),
        AcceptError::AlreadyInAnOrganization | AcceptError::Disabled => {
            Ok(form("This invitation cannot be accepted with your account."))
        }
        AcceptError::Store(s) => Err(s.into()),
    }
}

/// The invitation login page's refusals.
pub fn invited_login(e: InvitedLoginError) -> Result<Failure, PageError> {
    match e {
        InvitedLoginError::ModeForbids => {
            Ok(Failure { status: StatusCode::FORBIDDEN, message: INVITATION_LOGIN_OFF.message })
        }
        InvitedLoginError::Invitation(e) => invitation(e),
        InvitedLoginError::Login(LoginError::InvalidCredentials) => Ok(form("Incorrect password.")),
        InvitedLoginError::Login(e) => login(e),
    }
}

/// The account page's organization switch.
pub fn switch(e: SwitchError) -> Result<Failure, PageError> {
    match e {
        SwitchError::ModeForbids => {
            Ok(Failure { status: StatusCode::FORBIDDEN, message: "Switching organizations is not available here." })
        }
        SwitchError::NotMember => Ok(form("You are not a member of that organization.")),
        SwitchError::SessionInvalid | SwitchError::Disabled => {
            Err(PageError::Unauthenticated { login: "/auth/login".to_owned() })
        }
        SwitchError::AudienceForbidden => Err(PageError::NotAllowed),
        SwitchError::Token(t) => Err(PageError::internal(&t)),
        SwitchError::Store(s) => Err(s.into()),
    }
}

/// Leaving an organization.
pub fn leave(e: OrgError) -> Result<Failure, PageError> {
    match e {
        OrgError::LastOwner => Ok(refused("You are its only owner: hand it to another member before leaving.")),
        OrgError::PersonalOrganization => Ok(refused("Your personal organization cannot be left.")),
        OrgError::NotMember | OrgError::ModeForbids => Ok(form("You are not a member of that organization.")),
        OrgError::Store(s) => Err(s.into()),
        // Not what leaving answers.
        e @ (OrgError::NotActiveOrganization
        | OrgError::NotManager
        | OrgError::NotSelf
        | OrgError::MembershipGone
        | OrgError::InvalidName
        | OrgError::InvalidActor
        | OrgError::InvalidRole
        | OrgError::TransferToSelf
        | OrgError::ActorNotMember
        | OrgError::ActorNotAllowed
        | OrgError::OrganizationNotFound
        | OrgError::UserNotFound
        | OrgError::MembershipNotFound
        | OrgError::InvitationNotFound
        | OrgError::AlreadyMember
        | OrgError::InvitationAlreadyPending
        | OrgError::InvitationAlreadyAccepted
        | OrgError::InvitationRevoked
        | OrgError::InvitationExpired) => Err(PageError::internal(&e)),
    }
}

/// What the account page says after an action went well.
pub mod done {
    pub const USERNAME: &str = "Your username was changed.";
    pub const PASSWORD: &str = "Your password was changed. Other devices were signed out.";
    pub const REVOKED: &str = "That device was signed out.";
    pub const REVOKED_OTHERS: &str = "All other devices were signed out.";
    pub const EMAIL: &str = "Your email address was changed.";
    pub const SWITCHED: &str = "You switched organization.";
    pub const LEFT: &str = "You left the organization.";
    pub const PASSKEY_RENAMED: &str = "Your passkey was renamed.";
    pub const PASSKEY_REMOVED: &str = "The passkey was removed.";
    pub const PROVIDER_LINKED: &str = "The sign-in method was linked to your account.";
    pub const PROVIDER_UNLINKED: &str = "The sign-in method was removed from your account.";
    pub const PASSWORD_RESET: &str = "Your password was changed. Sign in with your new password.";
    pub const INVITATION_SIGNED_IN: &str = "You are signed in. Accept the invitation to join.";
}

/// An invitation link that leads nowhere: the page's status, heading and words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: &'static str,
}

/// A link without a token, or whose token is no invitation.
pub const INVITATION_INVALID: Unavailable = Unavailable {
    status: StatusCode::BAD_REQUEST,
    title: "Invitation not found",
    message: "This invitation link is not valid. Check that you opened the whole link from the email, or ask for a new invitation.",
};

/// `personal` mode has no invitations.
pub const INVITATIONS_OFF: Unavailable = Unavailable {
    status: StatusCode::FORBIDDEN,
    title: "Invitations are not available",
    message: "This service does not use invitations. You can create an account or sign in as usual.",
};

/// Signing in on an invitation is `multi` mode's only.
pub const INVITATION_LOGIN_OFF: Unavailable = Unavailable {
    status: StatusCode::FORBIDDEN,
    title: "Sign-in is not available for invitations",
    message: "Invitations here are accepted by creating a new account for the invited address.",
};

/// A non-pending invitation (410); `None` while it is pending.
pub fn invitation_status(status: InvitationStatus) -> Option<Unavailable> {
    let (title, message) = match status {
        InvitationStatus::Pending => return None,
        InvitationStatus::Expired => (
            "This invitation has expired",
            "Invitations are valid for a limited time. Ask the person who invited you to send a new one.",
        ),
        InvitationStatus::Revoked => {
            ("This invitation was withdrawn", "It can no longer be used. If you still want to join, ask for a new one.")
        }
        InvitationStatus::Accepted => {
            ("This invitation was already used", "Each invitation works once. If you accepted it, sign in to continue.")
        }
    };
    Some(Unavailable { status: StatusCode::GONE, title, message })
}

/// The invited address has an account, so the invitation cannot create one.
pub fn invited_account_exists(mode: OrgMode) -> &'static str {
    match mode {
        OrgMode::Multi => "An account with this email address already exists. Sign in to accept the invitation.",
        OrgMode::Single | OrgMode::Personal => {
            "An account with this email address already exists, and here an account belongs to one organization only. Ask for an invitation for another email address."
        }
    }
}

/// What a sign-in provider's failures say, by code.
const PROVIDER_MESSAGES: &[(&str, &str)] = &[
    ("oauth-state", "That sign-in took too long or was already used. Please try again."),
    ("oauth-denied", "The sign-in was cancelled at the provider."),
    ("oauth-unavailable", "We could not reach the sign-in provider. Please try again in a moment."),
    ("oauth-invalid", "The sign-in provider's answer could not be verified. Please try again."),
    ("oauth-unverified", "Your email address is not verified at that provider."),
    ("oauth-not-allowed", "This account cannot sign in here."),
    ("oauth-linked-elsewhere", "That account at the provider is already linked to another user."),
    ("oauth-already-linked", "An account at this provider is already linked."),
    ("oauth-not-linked", "That sign-in method is not linked to your account."),
    ("oauth-last-method", "This is your only way to sign in. Add another before removing it."),
    ("oauth-session", "Your session changed while linking. Please sign in and try again."),
    ("oauth-disabled", "This sign-in provider is not available."),
    ("oauth-limited", "Too many sign-in attempts. Please wait a minute and try again."),
    ("oauth-reauth", "For your security, enter your current password to do this."),
    ("oauth-wrong-password", "Incorrect password."),
    ("oauth-link-required", "An account with this email already exists. Sign in with your password to link it."),
    ("link-invalid", "That link has expired or was already used. Please sign in again."),
    ("provider-linked", "The sign-in method was linked to your account."),
    ("provider-unlinked", "The sign-in method was removed from your account."),
    ("invite-invalid", "This invitation link is not valid. Ask for a new one."),
    ("invite-revoked", "This invitation was withdrawn. Ask for a new one."),
    ("invite-expired", "This invitation has expired. Ask for a new one."),
    ("invite-used", "This invitation was already used."),
    (
        "invite-wrong-email",
        "This invitation is for another email address. Continue with the account at the provider that uses the invited address.",
    ),
    ("invite-cannot-accept", "This invitation cannot be accepted with your account."),
    ("invite-account-exists", "An account with this email address already exists. Sign in to accept the invitation."),
    ("oauth-replayed", "That sign-in was already used. Please sign in again."),
    (
        "oauth-step-up",
        "For your security, confirm it is you with your authenticator app first (“Verify now” under Two-step verification).",
    ),
];

fn provider_message(code: &str) -> &'static str {
    PROVIDER_MESSAGES.iter().find(|(c, _)| *c == code).map_or("Something went wrong. Please try again.", |(_, t)| *t)
}

/// A sign-in provider failure: its status on a form, and its words.
pub fn oauth(e: OAuthError) -> Result<Failure, PageError> {
    let (status, code) = match e {
        OAuthError::Disabled => (StatusCode::NOT_FOUND, "oauth-disabled"),
        OAuthError::InvalidState | OAuthError::Missing(_) => (StatusCode::BAD_REQUEST, "oauth-state"),
        OAuthError::Denied(_) => (StatusCode::BAD_REQUEST, "oauth-denied"),
        OAuthError::Provider(ref p) => {
            tracing::warn!(error = %p, "sign-in provider failed");
            (StatusCode::BAD_GATEWAY, "oauth-unavailable")
        }
        OAuthError::InvalidToken(ref why) => {
            tracing::warn!(reason = %why, "provider identity refused");
            (StatusCode::UNAUTHORIZED, "oauth-invalid")
        }
        OAuthError::EmailUnverified => (StatusCode::UNAUTHORIZED, "oauth-unverified"),
        OAuthError::NotAllowed => (StatusCode::FORBIDDEN, "oauth-not-allowed"),
        OAuthError::LinkRequired => (StatusCode::CONFLICT, "oauth-link-required"),
        OAuthError::LinkedElsewhere => (StatusCode::UNPROCESSABLE_ENTITY, "oauth-linked-elsewhere"),
        OAuthError::AlreadyLinked => (StatusCode::UNPROCESSABLE_ENTITY, "oauth-already-linked"),
        OAuthError::NotLinked => (StatusCode::UNPROCESSABLE_ENTITY, "oauth-not-linked"),
        OAuthError::LastMethod => (StatusCode::UNPROCESSABLE_ENTITY, "oauth-last-method"),
        OAuthError::UnknownLink => (StatusCode::GONE, "link-invalid"),
        OAuthError::Replayed => (StatusCode::UNAUTHORIZED, "oauth-replayed"),
        OAuthError::WrongPassword => (StatusCode::UNPROCESSABLE_ENTITY, "oauth-wrong-password"),
        OAuthError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "oauth-limited"),
        OAuthError::SessionChanged => (StatusCode::FORBIDDEN, "oauth-session"),
        OAuthError::Invitation(e) => match e {
            AcceptError::Unknown => (StatusCode::BAD_REQUEST, "invite-invalid"),
            AcceptError::Revoked => (StatusCode::GONE, "invite-revoked"),
            AcceptError::Expired => (StatusCode::GONE, "invite-expired"),
            AcceptError::AcceptedByOther => (StatusCode::GONE, "invite-used"),
            AcceptError::WrongEmail => (StatusCode::UNPROCESSABLE_ENTITY, "invite-wrong-email"),
            AcceptError::AlreadyInAnOrganization | AcceptError::Disabled => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invite-cannot-accept")
            }
            AcceptError::Store(s) => return Err(s.into()),
        },
        OAuthError::InvitedAccountExists => (StatusCode::UNPROCESSABLE_ENTITY, "invite-account-exists"),
        OAuthError::Reauth(ReauthError::Required) => (StatusCode::FORBIDDEN, "oauth-reauth"),
        OAuthError::Reauth(ReauthError::WrongPassword) => (StatusCode::FORBIDDEN, "oauth-wrong-password"),
        OAuthError::Reauth(ReauthError::SecondFactorRequired) => (StatusCode::FORBIDDEN, "oauth-step-up"),
        OAuthError::Reauth(ReauthError::RateLimited { .. }) => (StatusCode::TOO_MANY_REQUESTS, "oauth-limited"),
        OAuthError::Reauth(ReauthError::Hash(h)) | OAuthError::Hash(h) => return Err(h.into()),
        OAuthError::Reauth(ReauthError::Store(s)) | OAuthError::Store(s) => return Err(s.into()),
        OAuthError::Session(s) => match s {
            SessionError::Disabled | SessionError::AudienceForbidden | SessionError::NotAllowed => {
                (StatusCode::FORBIDDEN, "oauth-not-allowed")
            }
            SessionError::NoOrganization | SessionError::Token(_) => return Err(PageError::internal(&s)),
            SessionError::Store(st) => return Err(st.into()),
        },
    };
    Ok(Failure { status, message: provider_message(code) })
}
