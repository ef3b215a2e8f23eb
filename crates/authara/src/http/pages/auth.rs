//! `/auth/login`, `/auth/signup`, `/auth/sessions/logout`, `/auth/sessions/refresh`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::copy::{self, Failure};
use super::fields::{self, Password};
use super::layout::alert;
use super::{CsrfForm, NoFields, PageCtx, PageError, PageQuery, audience_for};
use crate::domain::{Audience, ChallengePurpose, EmailAddress, NewPassword};
use crate::http::extract::Client;
use crate::http::state::AppState;
use crate::services::accounts::LoginError;
use crate::services::return_to;
use crate::services::sessions::RefreshError;

/// Signed-in visitors of login/signup go on to `return_to`; a refresh cookie alone is tried
/// first, for the app audience only (a GET never refreshes into the admin audience). Only an
/// invalid or reused refresh token clears the cookies.
async fn already_signed_in(ctx: &PageCtx) -> Result<bool, PageError> {
    let s = &ctx.state().services;
    if let Some(token) = ctx.access_token()
        && s.auth().authenticate(token, None).await.is_ok()
    {
        return Ok(true);
    }
    let Some(refresh) = ctx.refresh_token() else { return Ok(false) };
    if audience_for(&ctx.return_to) != Audience::App {
        return Ok(false);
    }
    match s.sessions().refresh(refresh, Audience::App).await {
        Ok(issued) => {
            ctx.set_session(&issued);
            Ok(true)
        }
        Err(RefreshError::Invalid | RefreshError::Reused | RefreshError::Disabled) => {
            ctx.clear_session();
            Ok(false)
        }
        Err(RefreshError::Forbidden) => Ok(false),
        Err(e @ (RefreshError::Store(_) | RefreshError::Token(_))) => Err(e.into()),
    }
}

fn login_form(ctx: &PageCtx, email: &str, error: Option<&str>, notice: Option<&str>) -> Markup {
    html! {
        div.card {
            h1 { "Sign in" }
            p.lead { "Welcome back. Enter your email and password." }
            (alert("success", notice))
            (alert("error", error))
            form method="post" action={ "/auth/login" (ctx.rt_query()) } data-login-form {
                (fields::csrf(&ctx.csrf))
                (fields::email("email", "Email", email, email.is_empty()))
                (fields::password("password", "Password", Password::Current, !email.is_empty()))
                button type="submit" { "Sign in" }
            }
            (super::passkeys::login_button(ctx))
            (super::oauth::provider_buttons(ctx))
            p.switch { a href={ "/auth/password-reset" (ctx.rt_query()) } { "Forgot your password?" } }
            p.switch { "New here? " a href={ "/auth/signup" (ctx.rt_query()) } { "Create an account" } }
        }
    }
}

/// With email codes and passkeys on, an account can start without a password: the code proves
/// the address, and the passkey setup page follows.
fn passwordless(ctx: &PageCtx) -> bool {
    ctx.state().config.challenge.enabled && ctx.state().services.passkeys().available()
}

fn signup_form(ctx: &PageCtx, email: &str, error: Option<&str>) -> Markup {
    let passwordless = passwordless(ctx);
    html! {
        div.card {
            h1 { "Create your account" }
            p.lead { "It takes a few seconds." }
            (alert("error", error))
            form method="post" action={ "/auth/signup" (ctx.rt_query()) } {
                (fields::csrf(&ctx.csrf))
                (fields::email("email", "Email", email, true))
                @if passwordless {
                    (fields::optional_new_password("password", "Password (optional)", "Leave it empty to use a passkey instead: you add one right after confirming your email."))
                } @else {
                    (fields::password("password", "Password", Password::New, false))
                }
                button type="submit" { "Create account" }
            }
            (super::oauth::provider_buttons(ctx))
            p.switch { "Already have an account? " a href={ "/auth/login" (ctx.rt_query()) } { "Sign in" } }
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LoginQuery {
    notice: Option<String>,
}

pub async fn login_page(ctx: PageCtx, PageQuery(q): PageQuery<LoginQuery>) -> Result<Response, PageError> {
    if already_signed_in(&ctx).await? {
        return Ok(ctx.redirect(&ctx.return_to));
    }
    let notice = (q.notice.as_deref() == Some("password-reset")).then_some(super::copy::done::PASSWORD_RESET);
    let (success, error) = ctx.take_flash();
    let body = login_form(&ctx, "", error.as_deref(), notice.or(success.as_deref()));
    Ok(ctx.html(StatusCode::OK, "Sign in", body))
}

pub async fn signup_page(ctx: PageCtx) -> Result<Response, PageError> {
    if already_signed_in(&ctx).await? {
        return Ok(ctx.redirect(&ctx.return_to));
    }
    Ok(ctx.html(StatusCode::OK, "Create account", signup_form(&ctx, "", None)))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CredentialsForm {
    email: String,
    password: String,
}

pub async fn login(
    ctx: PageCtx,
    Client(client): Client,
    CsrfForm(form): CsrfForm<CredentialsForm>,
) -> Result<Response, PageError> {
    let failure = if form.email.trim().is_empty() || form.password.is_empty() {
        Failure { status: StatusCode::BAD_REQUEST, message: "Enter your email and password." }
    } else {
        let result = match EmailAddress::parse(&form.email) {
            Ok(email) => {
                let audience = audience_for(&ctx.return_to);
                let accounts = ctx.state().services.accounts();
                accounts.login(&email, &form.password, audience, &client, ctx.device_token()).await
            }
            Err(_) => Err(LoginError::InvalidCredentials),
        };
        match result {
            Ok(signed) => {
                let next = ctx.finish(signed, &ctx.return_to).await;
                return Ok(ctx.redirect(&next));
            }
            Err(e) => copy::login(e)?,
        }
    };
    let body = login_form(&ctx, form.email.trim(), Some(failure.message), None);
    Ok(ctx.html(failure.status, "Sign in", body))
}

pub async fn signup(
    ctx: PageCtx,
    Client(client): Client,
    CsrfForm(form): CsrfForm<CredentialsForm>,
) -> Result<Response, PageError> {
    if audience_for(&ctx.return_to) != Audience::App {
        return Err(PageError::Forbidden("signup for the admin audience"));
    }
    let services = &ctx.state().services;
    let no_password = form.password.is_empty() && passwordless(&ctx);
    let parsed = EmailAddress::parse(&form.email).and_then(|e| {
        let password = if no_password { None } else { Some(NewPassword::parse(&form.password)?) };
        Ok((e, password))
    });
    let failure = match parsed {
        Err(e) => copy::input(e),
        // With challenges on, the form leads to the code page; a taken email gets the same page
        // (and no mail), so the form reveals nothing.
        Ok((email, password)) if ctx.state().config.challenge.enabled => {
            match services.challenges().start_signup(&email, password.as_ref(), None, &client).await {
                Ok(id) => return Ok(super::challenge::verify_page(&ctx, ChallengePurpose::Signup, id, None, None)),
                Err(e) => copy::challenge(e)?,
            }
        }
        Ok((_, None)) => copy::input(crate::domain::InputError::PasswordTooShort),
        Ok((email, Some(password))) => match services.accounts().signup(&email, &password, None, &client).await {
            Ok(signed) => {
                let next = ctx.finish(signed, &ctx.after_signup()).await;
                return Ok(ctx.redirect(&next));
            }
            Err(e) => copy::signup(e)?,
        },
    };
    let body = signup_form(&ctx, form.email.trim(), Some(failure.message));
    Ok(ctx.html(failure.status, "Create account", body))
}

/// `POST /auth/sessions/logout`: revoke, clear cookies, go to `return_to` (default `/`).
/// why: the browser SDK's `logout()` calls this with `fetch` and follows the redirect to the
/// app's `/`, reporting failure when the app answers 404 there although the session is gone. A
/// script's `fetch` gets 204; forms and HTMX keep the redirect.
pub async fn logout(ctx: PageCtx, headers: HeaderMap, CsrfForm(_): CsrfForm<NoFields>) -> Response {
    ctx.state().services.sessions().logout(ctx.refresh_token(), ctx.access_token()).await;
    ctx.clear_session();
    if is_navigation(&headers) { ctx.redirect(&ctx.return_to) } else { StatusCode::NO_CONTENT.into_response() }
}

/// `GET /auth/sessions/logout` (ours): the sign-out button for apps that have no login code of
/// their own (forward-auth links here with `return_to`, which may be an absolute URL on an
/// allowed host). A browser without a session goes straight on to `return_to`.
pub async fn logout_page(ctx: PageCtx) -> Response {
    if ctx.access_token().is_none() && ctx.refresh_token().is_none() {
        return ctx.redirect(&ctx.return_to);
    }
    let body = html! {
        div.card {
            h1 { "Sign out" }
            p.lead { "Sign out of your account on this browser?" }
            form method="post" action={ "/auth/sessions/logout" (ctx.rt_query()) } {
                (fields::csrf(&ctx.csrf))
                button type="submit" { "Sign out" }
            }
        }
    };
    ctx.html(StatusCode::OK, "Sign out", body)
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

/// `GET /auth/sessions/refresh` (ours): where forward-auth sends a browser whose access token
/// expired while its refresh cookie may still be good. The session is rotated and the browser
/// goes back to `return_to` (the original URL); a refused refresh goes to the login page.
/// why: a GET that rotates, as the login page's own check does (`already_signed_in`): a
/// cross-site link can only refresh the visitor's own session and land on an allowed address.
pub async fn refresh_page(ctx: PageCtx) -> Result<Response, PageError> {
    let login = ctx.login_url();
    let Some(token) = ctx.refresh_token() else { return Ok(ctx.redirect(&login)) };
    match ctx.state().services.sessions().refresh(token, audience_for(&ctx.return_to)).await {
        Ok(issued) => {
            ctx.set_session(&issued);
            Ok(ctx.redirect(&ctx.return_to))
        }
        Err(RefreshError::Invalid | RefreshError::Reused | RefreshError::Disabled) => {
            ctx.clear_session();
            Ok(ctx.redirect(&login))
        }
        Err(RefreshError::Forbidden) => Ok(ctx.redirect(&login)),
        Err(e @ (RefreshError::Store(_) | RefreshError::Token(_))) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RefreshQuery {
    audience: Option<String>,
}

/// `POST /auth/sessions/refresh` (behavior.md §1.10). Form posts and HTMX are redirected to
/// `return_to` (or the login page on failure). why (design.md decision 7): the browser SDK
/// calls this route with `fetch`; the reference's 303 back to this POST-only route ends in a
/// 405 and `refreshSession()` reports failure. A `fetch` gets 204 on success and 401 on failure.
/// The SDK's `refreshSession("admin")` sends `?audience=admin`, which is honoured (the reference
/// ignores it); without it the audience follows `return_to` as §1.9 says.
pub async fn refresh(
    State(state): State<AppState>,
    ctx: PageCtx,
    headers: HeaderMap,
    uri: axum::http::Uri,
    PageQuery(q): PageQuery<RefreshQuery>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, PageError> {
    let target = ctx.return_to_param.clone().unwrap_or_else(|| {
        let own = format!("/auth/sessions/refresh{}", uri.query().map(|q| format!("?{q}")).unwrap_or_default());
        if return_to::is_safe(&own) { own } else { state.config.default_return_to.clone() }
    });
    let audience = match q.audience.as_deref() {
        None => audience_for(&target),
        Some(a) => Audience::parse(a).map_err(|_| PageError::BadRequest("audience must be app or admin"))?,
    };
    let navigation = is_navigation(&headers);
    let result = match ctx.refresh_token() {
        Some(t) => state.services.sessions().refresh(t, audience).await.ok(),
        None => None,
    };
    Ok(match result {
        Some(issued) => {
            ctx.set_session(&issued);
            if navigation { ctx.redirect(&target) } else { StatusCode::NO_CONTENT.into_response() }
        }
        None => {
            ctx.clear_session();
            if navigation {
                ctx.redirect(&format!("/auth/login?return_to={}", return_to::encode(&target)))
            } else {
                StatusCode::UNAUTHORIZED.into_response()
            }
        }
    })
}
