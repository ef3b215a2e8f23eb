//! Code verification pages: verified signup, password reset, email change.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::copy::{self, Failure};
use super::fields::{self, Password};
use super::layout::alert;
use super::{CsrfForm, Flash, PageCtx, PageError, PageQuery, UserForm};
use crate::domain::{ChallengePurpose, EmailAddress, NewPassword};
use crate::http::extract::Client;

fn title(purpose: ChallengePurpose) -> &'static str {
    match purpose {
        ChallengePurpose::Signup => "Confirm your email",
        ChallengePurpose::PasswordReset => "Check your email",
        ChallengePurpose::EmailChange => "Confirm your new email",
    }
}

fn lead(purpose: ChallengePurpose) -> &'static str {
    match purpose {
        ChallengePurpose::Signup => {
            "We sent a 6-digit code to the address you entered. Enter it to finish creating your account."
        }
        ChallengePurpose::PasswordReset => {
            "If an account uses that address, we sent it a 6-digit code. Enter it to set your new password."
        }
        ChallengePurpose::EmailChange => "We sent a 6-digit code to your new address. Enter it to confirm the change.",
    }
}

/// The code form, with a resend button.
fn verify_form(
    ctx: &PageCtx,
    purpose: ChallengePurpose,
    id: Uuid,
    notice: Option<&str>,
    error: Option<&str>,
) -> Markup {
    html! {
        div.card {
            h1 { (title(purpose)) }
            p.lead { (lead(purpose)) }
            (alert("success", notice))
            (alert("error", error))
            form method="post" action={ "/auth/verify-challenge/" (purpose.slug()) (ctx.rt_query()) } {
                (fields::csrf(&ctx.csrf))
                input type="hidden" name="challenge_id" value=(id);
                div.field {
                    label for="code" { "Verification code" }
                    input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required autofocus;
                }
                button type="submit" { "Verify" }
            }
            form method="post" action={ "/auth/resend-challenge" (ctx.rt_query()) } {
                (fields::csrf(&ctx.csrf))
                input type="hidden" name="challenge_id" value=(id);
                input type="hidden" name="action" value=(purpose.slug());
                p.switch { "No code? " button.secondary.small type="submit" { "Send a new code" } }
            }
        }
    }
}

/// The verify page for a challenge, with an optional notice or failure.
pub fn verify_page(
    ctx: &PageCtx,
    purpose: ChallengePurpose,
    id: Uuid,
    notice: Option<&str>,
    failure: Option<Failure>,
) -> Response {
    let status = failure.map_or(StatusCode::OK, |f| f.status);
    ctx.html(status, title(purpose), verify_form(ctx, purpose, id, notice, failure.map(|f| f.message)))
}

fn purpose(slug: &str) -> Result<ChallengePurpose, PageError> {
    ChallengePurpose::from_slug(slug).ok_or(PageError::BadRequest("unknown verification action"))
}

#[derive(Deserialize)]
pub struct VerifyQuery {
    challenge_id: Uuid,
}

/// `GET /auth/verify-challenge/{action}?challenge_id=…`.
pub async fn verify_get(
    ctx: PageCtx,
    Path(action): Path<String>,
    q: Result<PageQuery<VerifyQuery>, PageError>,
) -> Result<Response, PageError> {
    let purpose = purpose(&action)?;
    let PageQuery(q) = q?;
    Ok(verify_page(&ctx, purpose, q.challenge_id, None, None))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CodeForm {
    challenge_id: String,
    code: String,
    action: String,
}

/// `POST /auth/verify-challenge/{action}`: completes the action.
pub async fn verify_post(
    ctx: PageCtx,
    Path(action): Path<String>,
    Client(client): Client,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<Response, PageError> {
    let purpose = purpose(&action)?;
    let id = Uuid::parse_str(form.challenge_id.trim()).map_err(|_| PageError::BadRequest("bad challenge id"))?;
    let code = form.code.trim();
    let services = &ctx.state().services;
    let challenges = services.challenges();
    let error = match purpose {
        // A signup that accepts an invitation lands in the invited organization, and replaces
        // whoever was signed in on this browser (behavior.md §6.3, §9.3).
        ChallengePurpose::Signup => match challenges.verify_signup(id, code, true, &client).await {
            Ok(signed) => {
                let next = ctx.finish(signed, &ctx.after_signup()).await;
                return Ok(ctx.redirect(&next));
            }
            Err(e) => e,
        },
        ChallengePurpose::PasswordReset => match challenges.verify_password_reset(id, code, &client).await {
            Ok(()) => {
                ctx.clear_session();
                let rt = ctx.rt_query().replacen('?', "&", 1);
                return Ok(ctx.redirect(&format!("/auth/login?notice=password-reset{rt}")));
            }
            Err(e) => e,
        },
        ChallengePurpose::EmailChange => {
            let user = ctx.user().await?;
            match challenges.verify_email_change(user.user_id(), id, code, &client).await {
                Ok(()) => {
                    ctx.flash(Flash::Success, copy::done::EMAIL);
                    return Ok(ctx.redirect("/auth/account"));
                }
                Err(e) => e,
            }
        }
    };
    Ok(verify_page(&ctx, purpose, id, None, Some(copy::challenge(error)?)))
}

/// `POST /auth/resend-challenge`: says the same whatever happened (no state is revealed).
pub async fn resend(
    ctx: PageCtx,
    Client(client): Client,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<Response, PageError> {
    let (Ok(id), Some(purpose)) =
        (Uuid::parse_str(form.challenge_id.trim()), ChallengePurpose::from_slug(&form.action))
    else {
        return Err(PageError::BadRequest("bad resend form"));
    };
    Ok(match ctx.state().services.challenges().resend(id, &client).await {
        Ok(_) => verify_page(
            &ctx,
            purpose,
            id,
            Some("If a new code can be sent, it is on its way. Codes can be resent every 30 seconds."),
            None,
        ),
        Err(e) => verify_page(&ctx, purpose, id, None, Some(copy::challenge(e)?)),
    })
}

/// `GET /auth/password-reset`.
pub async fn reset_page(ctx: PageCtx) -> Response {
    ctx.html(StatusCode::OK, "Reset your password", reset_form(&ctx, "", None))
}

fn reset_form(ctx: &PageCtx, email: &str, error: Option<&str>) -> Markup {
    html! {
        div.card {
            h1 { "Reset your password" }
            p.lead { "Enter your email and a new password. We will email you a code to confirm it's you." }
            (alert("error", error))
            form method="post" action={ "/auth/password-reset" (ctx.rt_query()) } {
                (fields::csrf(&ctx.csrf))
                (fields::email("email", "Email", email, true))
                (fields::password("new_password", "New password", Password::New, false))
                button type="submit" { "Send me a code" }
            }
            p.switch { a href={ "/auth/login" (ctx.rt_query()) } { "Back to sign in" } }
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ResetForm {
    email: String,
    new_password: String,
}

/// `POST /auth/password-reset`: the verify page, the same for known and unknown emails.
pub async fn reset(
    ctx: PageCtx,
    Client(client): Client,
    CsrfForm(form): CsrfForm<ResetForm>,
) -> Result<Response, PageError> {
    let parsed = EmailAddress::parse(&form.email).and_then(|e| Ok((e, NewPassword::parse(&form.new_password)?)));
    let failure = match parsed {
        Err(e) => copy::input(e),
        Ok((email, password)) => {
            match ctx.state().services.challenges().start_password_reset(&email, &password, &client).await {
                Ok(id) => return Ok(verify_page(&ctx, ChallengePurpose::PasswordReset, id, None, None)),
                Err(e) => copy::challenge(e)?,
            }
        }
    };
    Ok(ctx.html(failure.status, "Reset your password", reset_form(&ctx, form.email.trim(), Some(failure.message))))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EmailChangeForm {
    new_email: String,
    current_password: String,
}

/// `POST /auth/email-change`: the code goes to the new address.
pub async fn email_change(
    ctx: PageCtx,
    UserForm(user, form): UserForm<EmailChangeForm>,
) -> Result<Response, PageError> {
    let result = match EmailAddress::parse(&form.new_email) {
        Err(e) => Err(copy::input(e)),
        Ok(email) => {
            let current = Some(form.current_password.as_str()).filter(|p| !p.is_empty());
            match ctx.state().services.challenges().start_email_change(&user, &email, current).await {
                Ok(id) => Ok(id),
                Err(e) => Err(copy::challenge(e)?),
            }
        }
    };
    match result {
        Ok(id) => Ok(verify_page(&ctx, ChallengePurpose::EmailChange, id, None, None)),
        Err(failure) => {
            ctx.flash(Flash::Error, failure.message);
            Ok(ctx.redirect("/auth/account"))
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CancelQuery {
    token: String,
}

fn cancel_card(ctx: &PageCtx, token: &str) -> Markup {
    html! {
        div.card {
            h1 { "Cancel the email change?" }
            p.lead { "Someone asked to move your account to another email address. If it was not you, cancel it here, then change your password." }
            form method="post" action="/auth/email-change/cancel" {
                (fields::csrf(&ctx.csrf))
                input type="hidden" name="token" value=(token);
                button.danger type="submit" { "Cancel the change" }
            }
        }
    }
}

/// `GET /auth/email-change/cancel?token=…`: the link of the notice sent to the current address.
/// Confirms with a button (a link preview must not cancel anything).
pub async fn cancel_page(ctx: PageCtx, PageQuery(q): PageQuery<CancelQuery>) -> Response {
    ctx.html(StatusCode::OK, "Cancel the email change", cancel_card(&ctx, &q.token))
}

/// `POST /auth/email-change/cancel`: ends the pending change. Says the same whether there was
/// one or not.
pub async fn cancel(ctx: PageCtx, CsrfForm(form): CsrfForm<CancelQuery>) -> Result<Response, PageError> {
    match ctx.state().services.challenges().cancel_email_change(&form.token).await {
        Ok(_) => {}
        Err(e) => {
            copy::challenge(e)?;
        }
    }
    let body = html! {
        div.card {
            h1 { "No change will be made" }
            p.lead { "If a change of your email address was pending, it is cancelled. If you did not ask for it, change your password now." }
            a.button href="/auth/password-reset" { "Change my password" }
        }
    };
    Ok(ctx.html(StatusCode::OK, "Email change cancelled", body))
}
