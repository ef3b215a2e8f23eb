//! `/auth/account`: profile, password, sessions, account deletion.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::copy::{self, Failure};
use super::fields::{self, Password};
use super::layout::alert;
use super::{CsrfForm, PageCtx, PageError, PageQuery, PageUser};
use crate::clock::human;
use crate::config::OrgMode;
use crate::domain::{Audience, NewPassword, OrgId, OrgKind, OrgRole, SessionId, Username};
use crate::http::extract::Client;
use crate::services::auth::Principal;
use crate::services::device::describe_device;
use crate::services::organizations::SwitchError;

/// Fixed notices shown after an action (never text from the request).
fn notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "username" => "Your username was changed.",
        "password" => "Your password was changed. Other devices were signed out.",
        "revoked" => "That device was signed out.",
        "revoked-others" => "All other devices were signed out.",
        "email" => "Your email address was changed.",
        "switched" => "You switched organization.",
        "passkey-renamed" => "Your passkey was renamed.",
        "passkey-removed" => "The passkey was removed.",
        _ => return None,
    })
}

/// People's words for audit actions.
fn activity(action: &str) -> &'static str {
    match action {
        "user.login" => "New sign-in",
        "user.login_failed" => "Failed sign-in attempt",
        "user.password_changed" => "Password changed",
        "user.password_reset" => "Password reset by email",
        "user.email_changed" => "Email address changed",
        "user.session_revoked" => "A device was signed out",
        "user.sessions_revoked" => "Devices were signed out",
        "session.reuse_detected" => "A stolen sign-in token was refused; that session was ended",
        "user.disabled" => "Account disabled by an administrator",
        "user.enabled" => "Account enabled by an administrator",
        "user.admin_granted" => "Administrator role granted",
        "user.admin_revoked" => "Administrator role removed",
        "passkey.added" => "Passkey added",
        "passkey.renamed" => "Passkey renamed",
        "passkey.removed" => "Passkey removed",
        "passkey.clone_warning" => "A passkey sign-in was refused: the passkey may have been copied",
        "user.provider_linked" => "Sign-in method linked",
        "user.provider_unlinked" => "Sign-in method removed",
        _ => "Account activity",
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

/// The "Sign-in methods" section (`#linked-providers-section`, behavior.md §13), which the page
/// script also swaps in after adding a passkey. Each sign-in feature adds its rows.
pub async fn sign_in_methods(ctx: &PageCtx, who: &Principal) -> Result<Markup, PageError> {
    let provider_rows = super::oauth::provider_rows(ctx, who).await?;
    let passkey_rows = super::passkeys::passkey_rows(ctx, who).await?;
    Ok(html! {
        section.block id="linked-providers-section" aria-labelledby="methods-h" {
            h2 id="methods-h" { "Sign-in methods" }
            (provider_rows)
            (passkey_rows)
        }
    })
}

/// The account page, with an optional notice or error.
pub async fn render(
    ctx: &PageCtx,
    who: &Principal,
    status: StatusCode,
    success: Option<&str>,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let services = &ctx.state().services;
    let user = services.profiles().user(who).await.map_err(copy::profile_read)?;
    let mode = ctx.state().config.org_mode;
    // `personal` mode keeps organizations out of sight (behavior.md §9.4).
    let organizations = match mode {
        OrgMode::Personal => Vec::new(),
        OrgMode::Single | OrgMode::Multi => services.organizations().mine(who).await?,
    };
    let mut sessions = services.sessions().list(who.user_id()).await?;
    let events = services.admin().own_events(who).await?;
    let methods = sign_in_methods(ctx, who).await?;
    let has_password = services.profiles().has_password(who.user_id()).await?;
    let current = who.session_id();
    // This device first.
    sessions.sort_by_key(|x| x.id != current);
    let others = sessions.iter().filter(|x| x.id != current).count();
    let csrf = fields::csrf(&ctx.csrf);
    let body: Markup = html! {
        div.card.wide {
            h1 { "Your account" }
            p.lead { "Signed in as " strong { (user.email) } }
            (alert("success", success))
            (alert("error", error))
            section.block aria-labelledby="profile-h" {
                h2 id="profile-h" { "Profile" }
                dl.facts {
                    dt { "Email" } dd { (user.email) }
                    dt { "Username" } dd { (user.username) }
                    dt { "Member since" } dd { (human(user.created_at_ms)) }
                }
                form method="post" action="/auth/user/username" {
                    (csrf)
                    div.inline {
                        div.field {
                            label for="username" { "New username" }
                            input id="username" name="username" type="text" autocomplete="username" required minlength="3" maxlength="30" pattern="[A-Za-z0-9_\\-]+" value=(user.username);
                        }
                        button.secondary type="submit" { "Change username" }
                    }
                }
            }
            @if !organizations.is_empty() {
                section.block aria-labelledby="orgs-h" {
                    h2 id="orgs-h" { "Organizations" }
                    ul.sessions.orgs {
                        @for m in &organizations {
                            @let current = m.organization.id == who.org_id();
                            li {
                                div {
                                    div.device {
                                        (m.organization.name)
                                        @if current { span.badge { "Current" } }
                                    }
                                    div.meta { (kind(m.organization.kind)) " · " (role(m.role)) }
                                }
                                @if mode == OrgMode::Multi && !current {
                                    form method="post" action={ "/auth/organizations/" (m.organization.id) "/switch" } {
                                        (csrf)
                                        button.secondary.small type="submit" aria-label={ "Switch to " (m.organization.name) } { "Switch" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.block aria-labelledby="email-h" {
                h2 id="email-h" { "Email address" }
                form method="post" action="/auth/email-change" {
                    (csrf)
                    (fields::email("new_email", "New email address", "", false))
                    (fields::reauth("email_current_password"))
                    button.secondary type="submit" { "Send a code" }
                    div.hint { "We'll email a code to the new address to confirm it, and tell your current address." }
                }
            }
            (methods)
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
            section.block aria-labelledby="activity-h" {
                h2 id="activity-h" { "Recent security activity" }
                @if events.is_empty() { p.meta { "Nothing yet." } } @else {
                    ul.sessions {
                        @for e in &events {
                            li { div {
                                div.device { (activity(&e.action)) }
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
            section.block aria-labelledby="danger-h" {
                h2 id="danger-h" { "Delete account" }
                details {
                    summary { "Delete my account" }
                    p.meta { "This removes your account and signs you out everywhere. It cannot be undone." }
                    form method="post" action="/auth/user/delete" {
                        (csrf)
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
    };
    Ok(ctx.html(status, "Your account", body))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AccountQuery {
    notice: Option<String>,
}

pub async fn account_page(
    ctx: PageCtx,
    PageUser(who): PageUser,
    PageQuery(q): PageQuery<AccountQuery>,
) -> Result<Response, PageError> {
    let (flash_success, flash_error) = super::oauth::flash_messages(&ctx);
    render(&ctx, &who, StatusCode::OK, notice(q.notice.as_deref()).or(flash_success), flash_error).await
}

/// After an action: back to the account page with its notice, or the page with the failure.
async fn outcome(
    ctx: &PageCtx,
    who: &Principal,
    result: Result<(), Failure>,
    done: &str,
) -> Result<Response, PageError> {
    match result {
        Ok(()) => Ok(ctx.redirect(&format!("/auth/account?notice={done}"))),
        Err(f) => render(ctx, who, f.status, None, Some(f.message)).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AccountForm {
    username: String,
    current_password: String,
    new_password: String,
    confirm: String,
}

pub async fn change_username(ctx: PageCtx, CsrfForm(form): CsrfForm<AccountForm>) -> Result<Response, PageError> {
    let who = ctx.user().await?;
    let result = match Username::parse(&form.username) {
        Err(e) => Err(copy::input(e)),
        Ok(name) => match ctx.state().services.profiles().change_username(&who, &name).await {
            Ok(()) => Ok(()),
            Err(e) => Err(copy::profile(e)?),
        },
    };
    outcome(&ctx, &who, result, "username").await
}

/// Passwords are taken as typed: never trimmed.
pub async fn change_password(
    ctx: PageCtx,
    Client(client): Client,
    CsrfForm(form): CsrfForm<AccountForm>,
) -> Result<Response, PageError> {
    let who = ctx.user().await?;
    let result = match NewPassword::parse(&form.new_password) {
        Err(e) => Err(copy::input(e)),
        Ok(new) => {
            match ctx.state().services.profiles().change_password(&who, &form.current_password, &new, &client).await {
                Ok(_) => Ok(()),
                Err(e) => Err(copy::profile(e)?),
            }
        }
    };
    outcome(&ctx, &who, result, "password").await
}

pub async fn revoke_session(
    ctx: PageCtx,
    Path(id): Path<String>,
    Client(client): Client,
    CsrfForm(_): CsrfForm<AccountForm>,
) -> Result<Response, PageError> {
    let who = ctx.user().await?;
    let result = match uuid::Uuid::parse_str(&id) {
        Ok(id) => match ctx.state().services.sessions().revoke_own(who.user_id(), SessionId(id), &client).await {
            Ok(()) => Ok(()),
            Err(e) => Err(copy::revoke(e)?),
        },
        Err(_) => Err(copy::revoke(crate::services::sessions::RevokeError::NotFound)?),
    };
    outcome(&ctx, &who, result, "revoked").await
}

/// `POST /auth/organizations/{id}/switch` (`multi` mode): moves this session to one of the
/// user's organizations (new cookies for it) and goes back to the account page.
pub async fn switch_organization(
    ctx: PageCtx,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<AccountForm>,
) -> Result<Response, PageError> {
    let who = ctx.user().await?;
    let result = match uuid::Uuid::parse_str(&id) {
        Ok(id) => match ctx.state().services.organizations().switch(&who, OrgId(id), Audience::App).await {
            Ok(issued) => {
                ctx.set_session(&issued);
                Ok(())
            }
            Err(e) => Err(copy::switch(e)?),
        },
        Err(_) => Err(copy::switch(SwitchError::NotMember)?),
    };
    outcome(&ctx, &who, result, "switched").await
}

pub async fn revoke_others(
    ctx: PageCtx,
    Client(client): Client,
    CsrfForm(_): CsrfForm<AccountForm>,
) -> Result<Response, PageError> {
    let who = ctx.user().await?;
    ctx.state().services.sessions().revoke_others(who.user_id(), who.session_id(), &client).await?;
    outcome(&ctx, &who, Ok(()), "revoked-others").await
}

pub async fn delete_account(ctx: PageCtx, CsrfForm(form): CsrfForm<AccountForm>) -> Result<Response, PageError> {
    let who = ctx.user().await?;
    let current = Some(form.current_password.as_str()).filter(|p| !p.is_empty());
    match ctx.state().services.profiles().delete_account(&who, &form.confirm, current).await {
        Ok(()) => {
            ctx.clear_session();
            Ok(ctx.redirect("/auth/successful-deletion"))
        }
        Err(e) => outcome(&ctx, &who, Err(copy::profile(e)?), "").await,
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
