//! `/auth/account`: profile, password, sessions, account deletion.

use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::layout::{alert, error_page, page};
use super::{Ctx, page_user};
use crate::app::SharedState;
use crate::clock::rfc3339;
use crate::services::profile::{ProfileError, describe_device};
use crate::services::token::AccessClaims;

/// Fixed notices shown after an action (never text from the request).
fn notice(q: Option<&str>) -> Option<&'static str> {
    let code = q?.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == "notice")?.1;
    Some(match code {
        "username" => "Your username was changed.",
        "password" => "Your password was changed. Other devices were signed out.",
        "revoked" => "That device was signed out.",
        "revoked-others" => "All other devices were signed out.",
        "email" => "Your email address was changed.",
        _ => return None,
    })
}

fn when(ms: i64) -> String {
    rfc3339(ms).replace('T', " ").replace('Z', " UTC")
}

async fn render(
    state: &SharedState,
    ctx: Ctx,
    claims: &AccessClaims,
    status: StatusCode,
    success: Option<&str>,
    error: Option<&str>,
) -> Response {
    let s = &state.services;
    let user = match s.store.user_by_id(claims.sub).await {
        Ok(Some(u)) => u,
        Ok(None) => return error_page(state, ctx.hx, StatusCode::UNAUTHORIZED, "user gone"),
        Err(e) => return error_page(state, ctx.hx, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let mut sessions = match s.list_sessions(claims.sub).await {
        Ok(list) => list,
        Err(e) => return error_page(state, ctx.hx, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    // This device first.
    sessions.sort_by_key(|x| x.id != claims.sid);
    let others = sessions.iter().filter(|x| x.id != claims.sid).count();
    let csrf = ctx.csrf.clone();
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
                    dt { "Member since" } dd { (when(user.created_at_ms)) }
                }
                form method="post" action="/auth/user/username" {
                    input type="hidden" name="csrf_token" value=(csrf);
                    div.inline {
                        div.field {
                            label for="username" { "New username" }
                            input id="username" name="username" type="text" autocomplete="username" required minlength="3" maxlength="30" pattern="[A-Za-z0-9_\\-]+" value=(user.username);
                        }
                        button.secondary type="submit" { "Change username" }
                    }
                }
            }
            section.block aria-labelledby="email-h" {
                h2 id="email-h" { "Email address" }
                form method="post" action="/auth/email-change" {
                    input type="hidden" name="csrf_token" value=(csrf);
                    div.inline {
                        div.field {
                            label for="new_email" { "New email address" }
                            input id="new_email" name="new_email" type="email" autocomplete="email" required;
                        }
                        button.secondary type="submit" { "Send a code" }
                    }
                    div.hint { "We'll email a code to the new address to confirm it." }
                }
            }
            section.block aria-labelledby="password-h" {
                h2 id="password-h" { "Password" }
                form method="post" action="/auth/providers/password/change" {
                    input type="hidden" name="csrf_token" value=(csrf);
                    div.field {
                        label for="current_password" { "Current password" }
                        input id="current_password" name="current_password" type="password" autocomplete="current-password" required;
                    }
                    div.field {
                        label for="new_password" { "New password" }
                        input id="new_password" name="new_password" type="password" autocomplete="new-password" required minlength="8" maxlength="128";
                    }
                    button.secondary type="submit" { "Change password" }
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
                                    @if x.id == claims.sid { span.badge { "This device" } }
                                }
                                div.meta {
                                    @if let Some(ip) = &x.ip { (ip) " · " }
                                    "Signed in " (when(x.created_at_ms)) " · last active " (when(x.last_used_at_ms))
                                }
                            }
                            @if x.id != claims.sid {
                                form method="post" action={ "/auth/sessions/" (x.id) "/revoke" } {
                                    input type="hidden" name="csrf_token" value=(csrf);
                                    button.secondary.small type="submit" aria-label={ "Sign out " (device) } { "Sign out" }
                                }
                            }
                        }
                    }
                }
                div.row {
                    @if others > 0 {
                        form method="post" action="/auth/sessions/revoke-other" {
                            input type="hidden" name="csrf_token" value=(csrf);
                            button.secondary.small type="submit" { "Sign out everywhere else" }
                        }
                    }
                    form method="post" action="/auth/sessions/logout" {
                        input type="hidden" name="csrf_token" value=(csrf);
                        button.secondary.small type="submit" { "Sign out" }
                    }
                }
            }
            section.block aria-labelledby="danger-h" {
                h2 id="danger-h" { "Delete account" }
                details {
                    summary { "Delete my account" }
                    p.meta { "This removes your account and signs you out everywhere. It cannot be undone." }
                    form method="post" action="/auth/user/delete" {
                        input type="hidden" name="csrf_token" value=(csrf);
                        div.field {
                            label for="confirm" { "Type your email to confirm" }
                            input id="confirm" name="confirm" type="email" autocomplete="off" required;
                        }
                        button.danger type="submit" { "Delete my account" }
                    }
                }
            }
        }
    };
    let html = page(state, ctx.hx, "Your account", body);
    ctx.html(status, html)
}

/// The account page with an error message (422).
pub async fn render_error(state: &SharedState, ctx: Ctx, claims: &AccessClaims, message: &str) -> Response {
    let mut m = message.chars();
    let message = m.next().map(|f| format!("{}{}.", f.to_uppercase(), m.as_str())).unwrap_or_default();
    render(state, ctx, claims, StatusCode::UNPROCESSABLE_ENTITY, None, Some(&message)).await
}

pub async fn account_page(State(state): State<SharedState>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let mut ctx = Ctx::new(&state, &headers, q.as_deref());
    let claims = match page_user(&state, &headers, &mut ctx).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    render(&state, ctx, &claims, StatusCode::OK, notice(q.as_deref()), None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AccountForm {
    csrf_token: String,
    username: String,
    current_password: String,
    new_password: String,
    confirm: String,
}

/// Authentication (with refresh) first, then CSRF (behavior.md §3 order).
async fn guard(
    state: &SharedState,
    headers: &HeaderMap,
    q: Option<&str>,
    csrf: &str,
) -> Result<(Ctx, std::sync::Arc<AccessClaims>), Response> {
    let mut ctx = Ctx::new(state, headers, q);
    let claims = page_user(state, headers, &mut ctx).await?;
    if !Ctx::csrf_ok(headers, Some(csrf)) {
        return Err(error_page(state, ctx.hx, StatusCode::FORBIDDEN, "csrf"));
    }
    Ok((ctx, claims))
}

async fn outcome(
    state: &SharedState,
    ctx: Ctx,
    claims: &AccessClaims,
    result: Result<(), ProfileError>,
    done: &str,
) -> Response {
    match result {
        Ok(()) => ctx.redirect(&format!("/auth/account?notice={done}")),
        Err(
            e @ (ProfileError::Invalid(_)
            | ProfileError::UsernameTaken
            | ProfileError::WrongPassword
            | ProfileError::LastAdmin
            | ProfileError::SessionNotFound),
        ) => {
            let message = e.to_string();
            let mut m = message.chars();
            let message = m.next().map(|f| format!("{}{}.", f.to_uppercase(), m.as_str())).unwrap_or_default();
            render(state, ctx, claims, StatusCode::UNPROCESSABLE_ENTITY, None, Some(&message)).await
        }
        Err(e) => error_page(state, ctx.hx, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

pub async fn change_username(
    State(state): State<SharedState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let (ctx, claims) = match guard(&state, &headers, q.as_deref(), &form.csrf_token).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let result = state.services.change_username(claims.sub, &form.username).await;
    outcome(&state, ctx, &claims, result, "username").await
}

pub async fn change_password(
    State(state): State<SharedState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let (ctx, claims) = match guard(&state, &headers, q.as_deref(), &form.csrf_token).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let result = state
        .services
        .change_password_here(claims.sub, claims.sid, form.current_password.trim(), form.new_password.trim())
        .await
        .map(|_| ());
    outcome(&state, ctx, &claims, result, "password").await
}

pub async fn revoke_session(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let (ctx, claims) = match guard(&state, &headers, q.as_deref(), &form.csrf_token).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let result = match Uuid::parse_str(&id) {
        Ok(id) => state.services.revoke_own_session(claims.sub, id).await,
        Err(_) => Err(ProfileError::SessionNotFound),
    };
    outcome(&state, ctx, &claims, result, "revoked").await
}

pub async fn revoke_others(
    State(state): State<SharedState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let (ctx, claims) = match guard(&state, &headers, q.as_deref(), &form.csrf_token).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let result =
        state.services.revoke_other_sessions(claims.sub, claims.sid).await.map(|_| ()).map_err(ProfileError::from);
    outcome(&state, ctx, &claims, result, "revoked-others").await
}

pub async fn delete_account(
    State(state): State<SharedState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let (mut ctx, claims) = match guard(&state, &headers, q.as_deref(), &form.csrf_token).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let email = match state.services.store.user_by_id(claims.sub).await {
        Ok(Some(u)) => u.email,
        Ok(None) => return error_page(&state, ctx.hx, StatusCode::UNAUTHORIZED, "user gone"),
        Err(e) => return error_page(&state, ctx.hx, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    if form.confirm.trim().to_lowercase() != email {
        return render(
            &state,
            ctx,
            &claims,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some("Type your email exactly to confirm the deletion."),
        )
        .await;
    }
    match state.services.delete_account(claims.sub).await {
        Ok(()) => {
            ctx.clear_session_cookies(&state);
            ctx.redirect("/auth/successful-deletion")
        }
        Err(e) => outcome(&state, ctx, &claims, Err(e), "").await,
    }
}

pub async fn deleted(State(state): State<SharedState>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let ctx = Ctx::new(&state, &headers, q.as_deref());
    let body = html! {
        div.card {
            h1 { "Your account was deleted" }
            p.lead { "Everything that belonged to it is gone, and every device was signed out." }
            a.button href="/" { "Go to the home page" }
        }
    };
    let html = page(&state, ctx.hx, "Account deleted", body);
    ctx.html(StatusCode::OK, html)
}
