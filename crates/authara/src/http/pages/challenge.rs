//! Code verification pages: verified signup, password reset, email change.

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
use crate::http::extract::Client;
use crate::services::challenge::ChallengeError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Signup,
    PasswordReset,
    EmailChange,
}

impl Action {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "signup" => Some(Action::Signup),
            "password-reset" => Some(Action::PasswordReset),
            "email-change" => Some(Action::EmailChange),
            _ => None,
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Action::Signup => "signup",
            Action::PasswordReset => "password-reset",
            Action::EmailChange => "email-change",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Action::Signup => "Confirm your email",
            Action::PasswordReset => "Check your email",
            Action::EmailChange => "Confirm your new email",
        }
    }

    fn lead(self) -> &'static str {
        match self {
            Action::Signup => {
                "We sent a 6-digit code to the address you entered. Enter it to finish creating your account."
            }
            Action::PasswordReset => {
                "If an account uses that address, we sent it a 6-digit code. Enter it to set your new password."
            }
            Action::EmailChange => "We sent a 6-digit code to your new address. Enter it to confirm the change.",
        }
    }
}

/// The code form, with a resend button.
pub fn verify_form(ctx: &Ctx, action: Action, id: Uuid, notice: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        div.card {
            h1 { (action.title()) }
            p.lead { (action.lead()) }
            (alert("success", notice))
            (alert("error", error))
            form method="post" action={ "/auth/verify-challenge/" (action.slug()) (ctx.rt_query()) } {
                input type="hidden" name="csrf_token" value=(ctx.csrf);
                input type="hidden" name="challenge_id" value=(id);
                div.field {
                    label for="code" { "Verification code" }
                    input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required autofocus;
                }
                button type="submit" { "Verify" }
            }
            form method="post" action={ "/auth/resend-challenge" (ctx.rt_query()) } {
                input type="hidden" name="csrf_token" value=(ctx.csrf);
                input type="hidden" name="challenge_id" value=(id);
                input type="hidden" name="action" value=(action.slug());
                p.switch { "No code? " button.secondary.small type="submit" { "Send a new code" } }
            }
        }
    }
}

/// The verify page for a fresh challenge.
pub fn verify_page(state: &SharedState, ctx: Ctx, action: Action, id: Uuid, status: StatusCode) -> Response {
    let body = page(state, ctx.hx, action.title(), verify_form(&ctx, action, id, None, None));
    ctx.html(status, body)
}

fn message(e: &ChallengeError) -> Option<(StatusCode, &'static str)> {
    Some(match e {
        ChallengeError::Incorrect => (StatusCode::UNPROCESSABLE_ENTITY, "That code is incorrect."),
        ChallengeError::Expired => (StatusCode::UNPROCESSABLE_ENTITY, "That code has expired. Send a new one."),
        ChallengeError::TooManyAttempts => {
            (StatusCode::UNPROCESSABLE_ENTITY, "Too many incorrect codes. Please start again.")
        }
        ChallengeError::AlreadyUsed => (StatusCode::UNPROCESSABLE_ENTITY, "This code was already used."),
        ChallengeError::Invalid(_) | ChallengeError::Unavailable => {
            (StatusCode::UNPROCESSABLE_ENTITY, "This code cannot be used. Please start again.")
        }
        ChallengeError::RateLimited { .. } => {
            (StatusCode::TOO_MANY_REQUESTS, "Too many attempts. Please wait a moment and try again.")
        }
        ChallengeError::Session(_) | ChallengeError::Hash(_) | ChallengeError::Store(_) => return None,
    })
}

fn challenge_id(q: Option<&str>) -> Option<Uuid> {
    let v = q?.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == "challenge_id")?.1;
    Uuid::parse_str(v).ok()
}

/// `GET /auth/verify-challenge/{action}?challenge_id=…`.
pub async fn verify_get(
    State(state): State<SharedState>,
    Path(action): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let ctx = Ctx::new(&state, &headers, q.as_deref());
    let (Some(action), Some(id)) = (Action::parse(&action), challenge_id(q.as_deref())) else {
        return error_page(&state, ctx.hx, StatusCode::BAD_REQUEST, "bad verify link");
    };
    verify_page(&state, ctx, action, id, StatusCode::OK)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CodeForm {
    csrf_token: String,
    challenge_id: String,
    code: String,
    action: String,
}

/// `POST /auth/verify-challenge/{action}`: completes the action.
pub async fn verify_post(
    State(state): State<SharedState>,
    Path(action): Path<String>,
    RawQuery(q): RawQuery,
    Client(client): Client,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let mut ctx = Ctx::new(&state, &headers, q.as_deref());
    let Some(action) = Action::parse(&action) else {
        return error_page(&state, ctx.hx, StatusCode::BAD_REQUEST, "unknown action");
    };
    if !Ctx::csrf_ok(&headers, Some(&form.csrf_token)) {
        return error_page(&state, ctx.hx, StatusCode::FORBIDDEN, "csrf");
    }
    let Ok(id) = Uuid::parse_str(form.challenge_id.trim()) else {
        return error_page(&state, ctx.hx, StatusCode::UNPROCESSABLE_ENTITY, "bad challenge id");
    };
    let code = form.code.trim();
    let s = &state.services;
    let result = match action {
        Action::Signup => match s.verify_signup(id, code, &client).await {
            Ok(signed) => {
                ctx.set_session_cookies(&state, &signed.tokens);
                let to = ctx.return_to.clone();
                return ctx.redirect(&to);
            }
            Err(e) => e,
        },
        Action::PasswordReset => match s.verify_password_reset(id, code, &client).await {
            Ok(()) => {
                ctx.clear_session_cookies(&state);
                let to = format!("/auth/login?notice=password-reset{}", rt_suffix(&ctx));
                return ctx.redirect(&to);
            }
            Err(e) => e,
        },
        Action::EmailChange => {
            let claims = match page_user(&state, &headers, &mut ctx).await {
                Ok(c) => c,
                Err(res) => return res,
            };
            match s.verify_email_change(claims.sub, id, code, &client).await {
                Ok(()) => return ctx.redirect("/auth/account?notice=email"),
                Err(e) => e,
            }
        }
    };
    match message(&result) {
        Some((status, text)) => {
            let body = page(&state, ctx.hx, action.title(), verify_form(&ctx, action, id, None, Some(text)));
            ctx.html(status, body)
        }
        None => error_page(&state, ctx.hx, StatusCode::INTERNAL_SERVER_ERROR, &result.to_string()),
    }
}

fn rt_suffix(ctx: &Ctx) -> String {
    ctx.rt_query().replacen('?', "&", 1)
}

/// `POST /auth/resend-challenge`: says the same whatever happened (no state is revealed).
pub async fn resend(
    State(state): State<SharedState>,
    RawQuery(q): RawQuery,
    Client(client): Client,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let ctx = Ctx::new(&state, &headers, q.as_deref());
    if !Ctx::csrf_ok(&headers, Some(&form.csrf_token)) {
        return error_page(&state, ctx.hx, StatusCode::FORBIDDEN, "csrf");
    }
    let (Ok(id), Some(action)) = (Uuid::parse_str(form.challenge_id.trim()), Action::parse(&form.action)) else {
        return error_page(&state, ctx.hx, StatusCode::BAD_REQUEST, "bad resend form");
    };
    let (status, notice, error) = match state.services.resend_challenge(id, &client).await {
        Ok(_) => (
            StatusCode::OK,
            Some("If a new code can be sent, it is on its way. Codes can be resent every 30 seconds."),
            None,
        ),
        Err(ChallengeError::RateLimited { .. }) => {
            (StatusCode::TOO_MANY_REQUESTS, None, Some("Too many requests. Please wait and try again."))
        }
        Err(e) => return error_page(&state, ctx.hx, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let body = page(&state, ctx.hx, action.title(), verify_form(&ctx, action, id, notice, error));
    ctx.html(status, body)
}

/// `GET /auth/password-reset`.
pub async fn reset_page(State(state): State<SharedState>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let ctx = Ctx::new(&state, &headers, q.as_deref());
    let body = page(&state, ctx.hx, "Reset your password", reset_form(&ctx, "", None));
    ctx.html(StatusCode::OK, body)
}

fn reset_form(ctx: &Ctx, email: &str, error: Option<&str>) -> Markup {
    html! {
        div.card {
            h1 { "Reset your password" }
            p.lead { "Enter your email and a new password. We will email you a code to confirm it's you." }
            (alert("error", error))
            form method="post" action={ "/auth/password-reset" (ctx.rt_query()) } {
                input type="hidden" name="csrf_token" value=(ctx.csrf);
                div.field {
                    label for="email" { "Email" }
                    input id="email" name="email" type="email" autocomplete="email" required autofocus value=(email);
                }
                div.field {
                    label for="new_password" { "New password" }
                    input id="new_password" name="new_password" type="password" autocomplete="new-password" required minlength="8" maxlength="128";
                }
                button type="submit" { "Send me a code" }
            }
            p.switch { a href={ "/auth/login" (ctx.rt_query()) } { "Back to sign in" } }
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ResetForm {
    csrf_token: String,
    email: String,
    new_password: String,
}

/// `POST /auth/password-reset`: the verify page, the same for known and unknown emails.
pub async fn reset(
    State(state): State<SharedState>,
    RawQuery(q): RawQuery,
    Client(client): Client,
    headers: HeaderMap,
    Form(form): Form<ResetForm>,
) -> Response {
    let ctx = Ctx::new(&state, &headers, q.as_deref());
    if !Ctx::csrf_ok(&headers, Some(&form.csrf_token)) {
        return error_page(&state, ctx.hx, StatusCode::FORBIDDEN, "csrf");
    }
    let (status, text) = match state.services.start_password_reset(&form.email, &form.new_password, &client).await {
        Ok(id) => return verify_page(&state, ctx, Action::PasswordReset, id, StatusCode::OK),
        Err(ChallengeError::Invalid(m)) => (StatusCode::UNPROCESSABLE_ENTITY, m),
        Err(ChallengeError::RateLimited { .. }) => {
            (StatusCode::TOO_MANY_REQUESTS, "Too many requests. Please wait and try again.")
        }
        Err(e) => return error_page(&state, ctx.hx, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let body = page(&state, ctx.hx, "Reset your password", reset_form(&ctx, form.email.trim(), Some(text)));
    ctx.html(status, body)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EmailChangeForm {
    csrf_token: String,
    new_email: String,
}

/// `POST /auth/email-change`: the code goes to the new address.
pub async fn email_change(
    State(state): State<SharedState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Form(form): Form<EmailChangeForm>,
) -> Response {
    let mut ctx = Ctx::new(&state, &headers, q.as_deref());
    let claims = match page_user(&state, &headers, &mut ctx).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    if !Ctx::csrf_ok(&headers, Some(&form.csrf_token)) {
        return error_page(&state, ctx.hx, StatusCode::FORBIDDEN, "csrf");
    }
    match state.services.start_email_change(claims.sub, &form.new_email).await {
        Ok(id) => verify_page(&state, ctx, Action::EmailChange, id, StatusCode::OK),
        Err(ChallengeError::Invalid(m)) => super::account::render_error(&state, ctx, &claims, m).await,
        Err(e) => error_page(&state, ctx.hx, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
