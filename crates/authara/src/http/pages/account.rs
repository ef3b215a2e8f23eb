//! `/auth/account`: profile, organizations, email, sign-in methods, password, sessions, recent
//! activity, account deletion. The page is a list of sections; each action posts, reports
//! through the flash and comes back here (one channel for every message).

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::copy::{self, Failure};
use super::fields::{self, Password};
use super::layout::alert;
use super::{Flash, PageCtx, PageError, PageUser, UserForm};
use crate::clock::human;
use crate::config::OrgMode;
use crate::domain::{Audience, AuditAction, NewPassword, OrgId, OrgKind, OrgRole, SessionId, Username};
use crate::http::extract::Client;
use crate::services::UserRow;
use crate::services::admin::AuditRow;
use crate::services::auth::Principal;
use crate::services::device::describe_device;
use crate::services::organizations::{SwitchError, UserMembershipRow};
use crate::services::sessions::RevokeError;

/// The request header that asks for the sign-in methods section alone (the passkey script,
/// after adding one).
const SECTION_HEADER: &str = "x-authara-response";

/// People's words for audit actions.
fn activity(action: AuditAction) -> &'static str {
    match action {
        AuditAction::Login => "New sign-in",
        AuditAction::LoginFailed => "Failed sign-in attempt",
        AuditAction::PasswordChanged => "Password changed",
        AuditAction::PasswordReset => "Password reset by email",
        AuditAction::EmailChanged => "Email address changed",
        AuditAction::SessionRevoked => "A device was signed out",
        AuditAction::SessionsRevoked => "Devices were signed out",
        AuditAction::ReuseDetected => "A stolen sign-in token was refused; that session was ended",
        AuditAction::Disabled => "Account disabled by an administrator",
        AuditAction::Enabled => "Account enabled by an administrator",
        AuditAction::AdminGranted => "Administrator role granted",
        AuditAction::AdminRevoked => "Administrator role removed",
        AuditAction::Deleted => "Account deleted",
        AuditAction::PasskeyAdded => "Passkey added",
        AuditAction::PasskeyRenamed => "Passkey renamed",
        AuditAction::PasskeyRemoved => "Passkey removed",
        AuditAction::PasskeyCloneWarning => "A passkey sign-in was refused: the passkey may have been copied",
        AuditAction::ProviderLinked => "Sign-in method linked",
        AuditAction::ProviderUnlinked => "Sign-in method removed",
        AuditAction::AddressProven => "Email address confirmed",
        AuditAction::OrganizationLeft => "Left an organization",
        AuditAction::MemberRemoved => "Removed from an organization",
        AuditAction::OwnershipTransferred => "Organization ownership changed",
        AuditAction::MfaEnabled => "Two-step verification turned on",
        AuditAction::MfaDisabled => "Two-step verification turned off",
        AuditAction::MfaReset => "Two-step verification turned off by an administrator",
        AuditAction::MfaLocked => "Authenticator app locked after too many incorrect codes",
        AuditAction::RecoveryCodeUsed => "A recovery code was used",
        AuditAction::RecoveryCodesRegenerated => "New recovery codes made",
        AuditAction::OrganizationDeleted
        | AuditAction::AllowlistAdded
        | AuditAction::AllowlistRemoved
        | AuditAction::WebhookRedelivered
        | AuditAction::UsersImported
        | AuditAction::ImportUndone => "Account activity",
    }
}

fn kind(k: OrgKind) -> &'static str {
    match k {
        OrgKind::Personal => "Personal",
        OrgKind::Team => "Team",
    }
}

fn role(r: OrgRole) -> &'static str {
    match r {
        OrgRole::Owner => "Owner",
        OrgRole::Admin => "Admin",
        OrgRole::Member => "Member",
    }
}

fn profile_section(ctx: &PageCtx, user: &UserRow) -> Markup {
    html! {
        section.block aria-labelledby="profile-h" {
            h2 id="profile-h" { "Profile" }
            dl.facts {
                dt { "Email" } dd { (user.email) }
                dt { "Username" } dd { (user.username) }
                dt { "Member since" } dd { (human(user.created_at_ms)) }
            }
            form method="post" action="/auth/user/username" {
                (fields::csrf(&ctx.csrf))
                div.inline {
                    div.field {
                        label for="username" { "New username" }
                        input id="username" name="username" type="text" autocomplete="username" required minlength="3" maxlength="30" pattern="[A-Za-z0-9_\\-]+" value=(user.username);
                    }
                    button.secondary type="submit" { "Change username" }
                }
            }
        }
    }
}

/// The user's organizations: switch (multi mode) and leave (a team organization they do not
/// own alone).
fn organizations_section(ctx: &PageCtx, who: &Principal, organizations: &[UserMembershipRow]) -> Markup {
    let mode = ctx.state().config.org_mode;
    let csrf = fields::csrf(&ctx.csrf);
    html! {
        @if !organizations.is_empty() {
            section.block aria-labelledby="orgs-h" {
                h2 id="orgs-h" { "Organizations" }
                ul.sessions.orgs {
                    @for m in organizations {
                        @let current = m.organization.id == who.org_id();
                        @let own = m.organization.kind == OrgKind::Personal && m.organization.created_by_user_id == Some(who.user_id());
                        li data-organization=(m.organization.id) {
                            div {
                                div.device {
                                    (m.organization.name)
                                    @if current { span.badge { "Current" } }
                                }
                                div.meta { (kind(m.organization.kind)) " · " (role(m.role)) }
                            }
                            div.row {
                                @if mode == OrgMode::Multi && !current {
                                    form method="post" action={ "/auth/organizations/" (m.organization.id) "/switch" } {
                                        (csrf)
                                        button.secondary.small type="submit" aria-label={ "Switch to " (m.organization.name) } { "Switch" }
                                    }
                                }
                                @if mode != OrgMode::Personal && !own {
                                    form method="post" action={ "/auth/organizations/" (m.organization.id) "/leave" } {
                                        (csrf)
                                        button.secondary.small type="submit" aria-label={ "Leave " (m.organization.name) } { "Leave" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn email_section(ctx: &PageCtx) -> Markup {
    html! {
        section.block aria-labelledby="email-h" {
            h2 id="email-h" { "Email address" }
            form method="post" action="/auth/email-change" {
                (fields::csrf(&ctx.csrf))
                (fields::email("new_email", "New email address", "", false))
                (fields::reauth("email_current_password"))
                button.secondary type="submit" { "Send a code" }
                div.hint { "We'll email a code to the new address to confirm it, and tell your current address." }
            }
        }
    }
}

fn password_section(ctx: &PageCtx, has_password: bool) -> Markup {
    let csrf = fields::csrf(&ctx.csrf);
    html! {
        section.block aria-labelledby="password-h" {
            h2 id="password-h" { "Password" }
            @if has_password {
                form method="post" action="/auth/providers/password/change" {
                    (csrf)
                    (fields::password("current_password", "Current password", Password::Current, false))
                    (fields::password("new_password", "New password", Password::New, false))
                    button.secondary type="submit" { "Change password" }
                }
            } @else {
                p.meta { "You have no password: you sign in with a passkey. A password is another way in." }
                form method="post" action="/auth/providers/password/change" {
                    (csrf)
                    (fields::password("new_password", "New password", Password::New, false))
                    button.secondary type="submit" { "Add a password" }
                }
            }
        }
    }
}

async fn sessions_section(ctx: &PageCtx, who: &Principal) -> Result<Markup, PageError> {
    let mut sessions = ctx.state().services.sessions().list(who.user_id()).await?;
    let current = who.session_id();
    // This device first.
    sessions.sort_by_key(|x| x.id != current);
    let others = sessions.iter().filter(|x| x.id != current).count();
    let csrf = fields::csrf(&ctx.csrf);
    Ok(html! {
        section.block aria-labelledby="sessions-h" {
            h2 id="sessions-h" { "Where you're signed in" }
            ul.sessions {
                @for x in &sessions {
                    @let (device, _) = describe_device(&x.user_agent);
                    li {
                        div {
                            div.device {
                                (device)
                                @if x.id == current { span.badge { "This device" } }
                            }
                            div.meta {
                                @if let Some(ip) = &x.ip { (ip) " · " }
                                "Signed in " (human(x.created_at_ms)) " · last active " (human(x.last_used_at_ms))
                            }
                        }
                        @if x.id != current {
                            form method="post" action={ "/auth/sessions/" (x.id) "/revoke" } {
                                (csrf)
                                button.secondary.small type="submit" aria-label={ "Sign out " (device) } { "Sign out" }
                            }
                        }
                    }
                }
            }
            div.row {
                @if others > 0 {
                    form method="post" action="/auth/sessions/revoke-other" {
                        (csrf)
                        button.secondary.small type="submit" { "Sign out everywhere else" }
                    }
                }
                form method="post" action="/auth/sessions/logout" {
                    (csrf)
                    button.secondary.small type="submit" { "Sign out" }
                }
            }
        }
    })
}

fn activity_section(events: &[AuditRow]) -> Markup {
    html! {
        section.block aria-labelledby="activity-h" {
            h2 id="activity-h" { "Recent security activity" }
            @if events.is_empty() { p.meta { "Nothing yet." } } @else {
                ul.sessions {
                    @for e in events {
                        li { div {
                            div.device { (activity(e.action)) }
                            div.meta {
                                (human(e.created_at_ms))
                                @if let Some(ip) = &e.ip { " · from " (ip) }
                                @if let Some(ua) = &e.user_agent { @if !ua.is_empty() { " · " (describe_device(ua).0) } }
                            }
                        } }
                    }
                }
            }
        }
    }
}

fn delete_section(ctx: &PageCtx) -> Markup {
    html! {
        section.block aria-labelledby="danger-h" {
            h2 id="danger-h" { "Delete account" }
            details {
                summary { "Delete my account" }
                p.meta { "This removes your account and signs you out everywhere. It cannot be undone." }
                form method="post" action="/auth/user/delete" {
                    (fields::csrf(&ctx.csrf))
                    div.field {
                        label for="confirm" { "Type your email to confirm" }
                        input id="confirm" name="confirm" type="email" autocomplete="off" required;
                    }
                    (fields::reauth("delete_current_password"))
                    button.danger type="submit" { "Delete my account" }
                }
            }
        }
    }
}

/// `GET /auth/account`: the page, with the message an action left; the sign-in methods
/// section alone for `X-Authara-Response: linked-providers-section`.
pub async fn account_page(
    ctx: PageCtx,
    headers: axum::http::HeaderMap,
    PageUser(who): PageUser,
) -> Result<Response, PageError> {
    if headers.get(SECTION_HEADER).is_some_and(|v| v == "linked-providers-section") {
        let section = super::methods::sign_in_methods(&ctx, &who).await?;
        return Ok(axum::response::Html(section.into_string()).into_response());
    }
    let (success, error) = ctx.take_flash();
    let services = &ctx.state().services;
    let user = services.profiles().user(&who).await.map_err(copy::profile_read)?;
    // `personal` mode keeps organizations out of sight (behavior.md §9.4).
    let organizations = match ctx.state().config.org_mode {
        OrgMode::Personal => Vec::new(),
        OrgMode::Single | OrgMode::Multi => services.organizations().mine(&who).await?,
    };
    let events = services.admin().own_events(&who).await?;
    let has_password = services.profiles().has_password(who.user_id()).await?;
    let body: Markup = html! {
        div.card.wide {
            h1 { "Your account" }
            p.lead { "Signed in as " strong { (user.email) } }
            (alert("success", success.as_deref()))
            (alert("error", error.as_deref()))
            (profile_section(&ctx, &user))
            (organizations_section(&ctx, &who, &organizations))
            (email_section(&ctx))
            (super::methods::sign_in_methods(&ctx, &who).await?)
            (password_section(&ctx, has_password))
            (super::mfa::account_section(&ctx, &who).await?)
            (sessions_section(&ctx, &who).await?)
            (activity_section(&events))
            (delete_section(&ctx))
        }
    };
    Ok(ctx.html(StatusCode::OK, "Your account", body))
}

/// Back to the account page, saying how the action went.
fn back(ctx: &PageCtx, result: Result<&str, Failure>) -> Response {
    match result {
        Ok(done) => ctx.flash(Flash::Success, done),
        Err(f) => ctx.flash(Flash::Error, f.message),
    }
    ctx.redirect("/auth/account")
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AccountForm {
    username: String,
    current_password: String,
    new_password: String,
    confirm: String,
}

pub async fn change_username(
    ctx: PageCtx,
    Client(client): Client,
    UserForm(who, form): UserForm<AccountForm>,
) -> Result<Response, PageError> {
    let result = match Username::parse(&form.username) {
        Err(e) => Err(copy::input(e)),
        Ok(name) => match ctx.state().services.profiles().change_username(&who, &name, &client).await {
            Ok(()) => Ok(copy::done::USERNAME),
            Err(e) => Err(copy::profile(e)?),
        },
    };
    Ok(back(&ctx, result))
}

/// Passwords are taken as typed: never trimmed.
pub async fn change_password(
    ctx: PageCtx,
    Client(client): Client,
    UserForm(who, form): UserForm<AccountForm>,
) -> Result<Response, PageError> {
    let result = match NewPassword::parse(&form.new_password) {
        Err(e) => Err(copy::input(e)),
        Ok(new) => {
            match ctx.state().services.profiles().change_password(&who, &form.current_password, &new, &client).await {
                Ok(_) => Ok(copy::done::PASSWORD),
                Err(e) => Err(copy::profile(e)?),
            }
        }
    };
    Ok(back(&ctx, result))
}

pub async fn revoke_session(
    ctx: PageCtx,
    Path(id): Path<String>,
    Client(client): Client,
    UserForm(who, _): UserForm<AccountForm>,
) -> Result<Response, PageError> {
    let result = match uuid::Uuid::parse_str(&id) {
        Ok(id) => match ctx.state().services.sessions().revoke_own(who.user_id(), SessionId(id), &client).await {
            Ok(()) => Ok(copy::done::REVOKED),
            Err(e) => Err(copy::revoke(e)?),
        },
        Err(_) => Err(copy::revoke(RevokeError::NotFound)?),
    };
    Ok(back(&ctx, result))
}

/// `POST /auth/organizations/{id}/switch` (`multi` mode): moves this session to one of the
/// user's organizations (new cookies for it) and goes back to the account page.
pub async fn switch_organization(
    ctx: PageCtx,
    Path(id): Path<String>,
    UserForm(who, _): UserForm<AccountForm>,
) -> Result<Response, PageError> {
    let result = match uuid::Uuid::parse_str(&id) {
        Ok(id) => match ctx.state().services.organizations().switch(&who, OrgId(id), Audience::App).await {
            Ok(issued) => {
                ctx.set_session(&issued);
                Ok(copy::done::SWITCHED)
            }
            Err(e) => Err(copy::switch(e)?),
        },
        Err(_) => Err(copy::switch(SwitchError::NotMember)?),
    };
    Ok(back(&ctx, result))
}

/// `POST /auth/organizations/{id}/leave`: the user leaves an organization they joined. Leaving
/// the session's own organization ends the session (and its siblings there): the browser signs
/// in again into another.
pub async fn leave_organization(
    ctx: PageCtx,
    Path(id): Path<String>,
    Client(client): Client,
    UserForm(who, _): UserForm<AccountForm>,
) -> Result<Response, PageError> {
    let org = uuid::Uuid::parse_str(&id).map(OrgId).map_err(|_| PageError::NotFound)?;
    let result = match ctx.state().services.organizations().leave(&who, org, &client).await {
        Ok(()) => Ok(copy::done::LEFT),
        Err(e) => Err(copy::leave(e)?),
    };
    if result.is_ok() && org == who.org_id() {
        ctx.clear_session();
        ctx.flash(Flash::Success, copy::done::LEFT);
        return Ok(ctx.redirect(&ctx.login_url()));
    }
    Ok(back(&ctx, result))
}

pub async fn revoke_others(
    ctx: PageCtx,
    Client(client): Client,
    UserForm(who, _): UserForm<AccountForm>,
) -> Result<Response, PageError> {
    ctx.state().services.sessions().revoke_others(who.user_id(), who.session_id(), &client).await?;
    Ok(back(&ctx, Ok(copy::done::REVOKED_OTHERS)))
}

pub async fn delete_account(
    ctx: PageCtx,
    Client(client): Client,
    UserForm(who, form): UserForm<AccountForm>,
) -> Result<Response, PageError> {
    let current = Some(form.current_password.as_str()).filter(|p| !p.is_empty());
    match ctx.state().services.profiles().delete_account(&who, &form.confirm, current, &client).await {
        Ok(()) => {
            ctx.clear_session();
            Ok(ctx.redirect("/auth/successful-deletion"))
        }
        Err(e) => Ok(back(&ctx, Err(copy::profile(e)?))),
    }
}

pub async fn deleted(ctx: PageCtx) -> Response {
    let body = html! {
        div.card {
            h1 { "Your account was deleted" }
            p.lead { "Everything that belonged to it is gone, and every device was signed out." }
            a.button href="/" { "Go to the home page" }
        }
    };
    ctx.html(StatusCode::OK, "Account deleted", body)
}
