//! `/auth/login`, `/auth/signup`, `/auth/sessions/logout`, `/auth/sessions/refresh`.

use axum::Form;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{alert, error_page, page};
use super::{Ctx, audience_for};
use crate::app::SharedState;
use crate::http::cookies;
use crate::http::extract::Client;
use crate::services::accounts::{LoginError, SignupError};
use crate::services::return_to;
use crate::services::sessions::SessionError;
use crate::services::token::Audience;

/// Signed-in visitors of login/signup go on to `return_to`; a refresh cookie alone is tried
/// first. `None` means: show the page (with `ctx` holding any cookies to clear).
async fn redirect_if_authenticated(state: &SharedState, headers: &HeaderMap, ctx: &mut Ctx) -> bool {
    let s = &state.services;
    if let Some(token) = cookies::get(headers, cookies::ACCESS)
        && let Ok(claims) = s.tokens.verify(token, None, s.now_ms())
        && !s.revoked.is_revoked(claims.sid)
    {
        return true;
    }
    if let Some(refresh) = cookies::get(headers, cookies::REFRESH).filter(|t| !t.is_empty()) {
        match s.refresh(refresh, audience_for(&ctx.return_to)).await {
            Ok(issued) => {
                ctx.set_session_cookies(state, &issued);
                return true;
            }
            Err(_) => ctx.clear_session_cookies(state),
        }
    }
    false
}

fn login_form(ctx: &Ctx, email: &str, error: Option<&str>, notice: Option<&str>) -> Markup {
    html! {
        div.card {
            h1 { "Sign in" }
            p.lead { "Welcome back. Enter your email and password." }
            (alert("success", notice))
            (alert("error", error))
            form method="post" action={ "/auth/login" (ctx.rt_query()) } data-login-form {
                input type="hidden" name="csrf_token" value=(ctx.csrf);
                div.field {
                    label for="email" { "Email" }
                    input id="email" name="email" type="email" autocomplete="email" required autofocus[email.is_empty()] value=(email);
                }
                div.field {
                    label for="password" { "Password" }
                    input id="password" name="password" type="password" autocomplete="current-password" required autofocus[!email.is_empty()];
                }
                button type="submit" { "Sign in" }
            }
            p.switch { a href={ "/auth/password-reset" (ctx.rt_query()) } { "Forgot your password?" } }
            p.switch { "New here? " a href={ "/auth/signup" (ctx.rt_query()) } { "Create an account" } }
        }
    }
}

fn signup_form(ctx: &Ctx, email: &str, error: Option<&str>) -> Markup {
    html! {
        div.card {
            h1 { "Create your account" }
            p.lead { "It takes a few seconds." }
            (alert("error", error))
            form method="post" action={ "/auth/signup" (ctx.rt_query()) } {
                input type="hidden" name="csrf_token" value=(ctx.csrf);
                div.field {
                    label for="email" { "Email" }
                    input id="email" name="email" type="email" autocomplete="email" required autofocus value=(email);
                }
                div.field {
                    label for="password" { "Password" }
                    input id="password" name="password" type="password" autocomplete="new-password" required minlength="8" maxlength="128" aria-describedby="password-hint";
                    div.hint id="password-hint" { "At least 8 characters. Common passwords are refused." }
                }
                button type="submit" { "Create account" }
            }
            p.switch { "Already have an account? " a href={ "/auth/login" (ctx.rt_query()) } { "Sign in" } }
        }
    }
}

pub async fn login_page(State(state): State<SharedState>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let mut ctx = Ctx::new(&state, &headers, q.as_deref());
    if redirect_if_authenticated(&state, &headers, &mut ctx).await {
        let to = ctx.return_to.clone();
        return ctx.redirect(&to);
    }
    let notice = q
        .as_deref()
        .is_some_and(|q| q.split('&').any(|kv| kv == "notice=password-reset"))
        .then_some("Your password was changed. Sign in with your new password.");
    let body = page(&state, ctx.hx, "Sign in", login_form(&ctx, "", None, notice));
    ctx.html(StatusCode::OK, body)
}

pub async fn signup_page(State(state): State<SharedState>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let mut ctx = Ctx::new(&state, &headers, q.as_deref());
    if redirect_if_authenticated(&state, &headers, &mut ctx).await {
        let to = ctx.return_to.clone();
        return ctx.redirect(&to);
    }
    let body = page(&state, ctx.hx, "Create account", signup_form(&ctx, "", None));
    ctx.html(StatusCode::OK, body)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CredentialsForm {
    csrf_token: String,
    email: String,
    password: String,
}

pub async fn login(
    State(state): State<SharedState>,
    RawQuery(q): RawQuery,
    Client(client): Client,
    headers: HeaderMap,
    Form(form): Form<CredentialsForm>,
) -> Response {
    let mut ctx = Ctx::new(&state, &headers, q.as_deref());
    if !Ctx::csrf_ok(&headers, Some(&form.csrf_token)) {
        return error_page(&state, ctx.hx, StatusCode::FORBIDDEN, "csrf");
    }
    let audience = audience_for(&ctx.return_to);
    let (status, message) = match state.services.login(&form.email, &form.password, audience, &client).await {
        Ok(signed) => {
            ctx.set_session_cookies(&state, &signed.tokens);
            let to = ctx.return_to.clone();
            return ctx.redirect(&to);
        }
        Err(LoginError::Invalid(_)) => (StatusCode::BAD_REQUEST, "Enter your email and password."),
        Err(LoginError::RateLimited { .. }) => {
            (StatusCode::TOO_MANY_REQUESTS, "Too many sign-in attempts. Please wait a minute and try again.")
        }
        Err(LoginError::InvalidCredentials) => (StatusCode::UNPROCESSABLE_ENTITY, "Incorrect email or password."),
        Err(LoginError::Session(SessionError::Disabled | SessionError::AudienceForbidden)) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "This account cannot sign in here.")
        }
        Err(e) => return error_page(&state, ctx.hx, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let body = page(&state, ctx.hx, "Sign in", login_form(&ctx, form.email.trim(), Some(message), None));
    ctx.html(status, body)
}

pub async fn signup(
    State(state): State<SharedState>,
    RawQuery(q): RawQuery,
    Client(client): Client,
    headers: HeaderMap,
    Form(form): Form<CredentialsForm>,
) -> Response {
    let mut ctx = Ctx::new(&state, &headers, q.as_deref());
    if !Ctx::csrf_ok(&headers, Some(&form.csrf_token)) {
        return error_page(&state, ctx.hx, StatusCode::FORBIDDEN, "csrf");
    }
    if audience_for(&ctx.return_to) != Audience::App {
        return error_page(&state, ctx.hx, StatusCode::FORBIDDEN, "signup for admin audience");
    }
    if state.config.challenge.enabled {
        return signup_with_code(state, ctx, client, form).await;
    }
    let (status, message): (StatusCode, String) =
        match state.services.signup(&form.email, &form.password, None, &client).await {
            Ok(signed) => {
                ctx.set_session_cookies(&state, &signed.tokens);
                let to = ctx.return_to.clone();
                return ctx.redirect(&to);
            }
            Err(SignupError::Invalid(m)) => (StatusCode::UNPROCESSABLE_ENTITY, capitalize(m)),
            Err(SignupError::EmailTaken) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "An account with this email already exists. Sign in instead.".to_owned(),
            ),
            Err(SignupError::RateLimited { .. }) => {
                (StatusCode::TOO_MANY_REQUESTS, "Too many sign-ups from here. Please try again later.".to_owned())
            }
            Err(SignupError::Unavailable) => {
                return error_page(
                    &state,
                    ctx.hx,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "direct signup while challenges are on",
                );
            }
            Err(e) => return error_page(&state, ctx.hx, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        };
    let body = page(&state, ctx.hx, "Create account", signup_form(&ctx, form.email.trim(), Some(&message)));
    ctx.html(status, body)
}

/// With `AUTHARA_CHALLENGE_ENABLED=true` the signup form leads to the code page; a taken email
/// gets the same page (and no mail), so the form reveals nothing.
async fn signup_with_code(
    state: SharedState,
    ctx: Ctx,
    client: crate::services::sessions::ClientInfo,
    form: CredentialsForm,
) -> Response {
    use crate::services::challenge::ChallengeError;
    let (status, message) = match state.services.start_signup(&form.email, &form.password, None, &client).await {
        Ok(id) => {
            return super::challenge::verify_page(&state, ctx, super::challenge::Action::Signup, id, StatusCode::OK);
        }
        Err(ChallengeError::Invalid(m)) => (StatusCode::UNPROCESSABLE_ENTITY, capitalize(m)),
        Err(ChallengeError::RateLimited { .. }) => {
            (StatusCode::TOO_MANY_REQUESTS, "Too many sign-ups from here. Please try again later.".to_owned())
        }
        Err(e) => return error_page(&state, ctx.hx, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let body = page(&state, ctx.hx, "Create account", signup_form(&ctx, form.email.trim(), Some(&message)));
    ctx.html(status, body)
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => format!("{}{}.", f.to_uppercase(), c.as_str()),
        None => String::new(),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CsrfForm {
    csrf_token: String,
}

/// `POST /auth/sessions/logout`: revoke, clear cookies, go to `return_to` (default `/`).
pub async fn logout(
    State(state): State<SharedState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let mut ctx = Ctx::new(&state, &headers, q.as_deref());
    let token = form.as_ref().ok().map(|f| f.csrf_token.as_str());
    if !Ctx::csrf_ok(&headers, token) {
        return error_page(&state, ctx.hx, StatusCode::FORBIDDEN, "csrf");
    }
    state.services.logout(cookies::get(&headers, cookies::REFRESH), cookies::get(&headers, cookies::ACCESS)).await;
    ctx.clear_session_cookies(&state);
    let to = ctx.return_to.clone();
    ctx.redirect(&to)
}

/// A browser navigation (form post or HTMX) as opposed to a script's `fetch`.
fn is_navigation(headers: &HeaderMap) -> bool {
    super::is_hx(headers)
        || headers.get("sec-fetch-mode").is_some_and(|v| v == "navigate")
        || headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// `POST /auth/sessions/refresh` (behavior.md §1.10). Form posts and HTMX are redirected to
/// `return_to` (or the login page on failure). why (design.md decision 7): the browser SDK
/// calls this route with `fetch`; the reference's 303 back to this POST-only route ends in a
/// 405 and `refreshSession()` reports failure. A `fetch` gets 204 on success and 401 on failure.
pub async fn refresh(
    State(state): State<SharedState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let mut ctx = Ctx::new(&state, &headers, q.as_deref());
    let token = form.as_ref().ok().map(|f| f.csrf_token.as_str());
    if !Ctx::csrf_ok(&headers, token) {
        return error_page(&state, ctx.hx, StatusCode::FORBIDDEN, "csrf");
    }
    let target = ctx.return_to_param.clone().unwrap_or_else(|| {
        let own = format!("/auth/sessions/refresh{}", q.as_deref().map(|q| format!("?{q}")).unwrap_or_default());
        if return_to::is_safe(&own) { own } else { state.config.default_return_to.clone() }
    });
    let navigation = is_navigation(&headers);
    let result = match cookies::get(&headers, cookies::REFRESH).filter(|t| !t.is_empty()) {
        Some(t) => state.services.refresh(t, audience_for(&target)).await.ok(),
        None => None,
    };
    match result {
        Some(issued) => {
            ctx.set_session_cookies(&state, &issued);
            if navigation { ctx.redirect(&target) } else { with_cookies(ctx, StatusCode::NO_CONTENT) }
        }
        None => {
            ctx.clear_session_cookies(&state);
            if navigation {
                let login = format!("/auth/login?return_to={}", return_to::encode(&target));
                ctx.redirect(&login)
            } else {
                with_cookies(ctx, StatusCode::UNAUTHORIZED)
            }
        }
    }
}

fn with_cookies(ctx: Ctx, status: StatusCode) -> Response {
    let mut res = status.into_response();
    for c in ctx.cookies {
        res.headers_mut().append(axum::http::header::SET_COOKIE, c);
    }
    res
}
