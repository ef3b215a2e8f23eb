//! Passkeys on the hosted pages (behavior.md §1.4, §13): the JSON endpoints the page script
//! calls (`/auth/passkeys/{register,authenticate}/{options,finish}`), the post-signup prompt
//! (`/auth/passkeys/setup`), rename and delete (plain forms, no script needed) and the login
//! page's passkey button. The account page's passkey rows are `pages::methods`.
//!
//! The JSON endpoints check the CSRF header (`X-CSRF-Token`, double submit) and answer errors
//! in the API's envelope; the script shows the message.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use super::copy::{self, Failure};
use super::{Flash, PageCtx, PageError, PageUser, UserForm, audience_for};
use crate::domain::ClientInfo;
use crate::http::cookies;
use crate::http::error::ApiError;
use crate::http::extract::Client;
use crate::services::auth::Principal;
use crate::services::passkeys::{Ceremony, PasskeyError, Registration};
use crate::services::return_to;

/// Largest JSON body a finish may send (behavior.md §1.4).
const MAX_BODY: usize = 128 * 1024;
/// The request header that asks register/finish for the sign-in methods section.
const SECTION_HEADER: &str = "x-authara-response";

/// The double-submit check of the script's calls (`X-CSRF-Token`); a refusal is the 403 page, as
/// on every other page route.
fn csrf(headers: &HeaderMap) -> Result<(), PageError> {
    if cookies::csrf_matches(headers, None) { Ok(()) } else { Err(PageError::Csrf) }
}

/// A JSON endpoint's answer: its response, or its error in the envelope.
fn answer(result: Result<Response, ApiError>) -> Result<Response, PageError> {
    Ok(result.unwrap_or_else(IntoResponse::into_response))
}

fn invalid(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
}

fn json_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.len() > MAX_BODY {
        return Err(invalid("The request is too large."));
    }
    serde_json::from_slice(body).map_err(|_| invalid("The request is not a passkey response."))
}

/// A page failure in the envelope, with the words of [`copy::passkey`].
fn envelope(e: PasskeyError) -> ApiError {
    match copy::passkey(e) {
        Ok(Failure { status, message }) if status == StatusCode::TOO_MANY_REQUESTS => {
            let mut e = ApiError::new(status, "rate_limited", message);
            e.retry_after = None;
            e
        }
        Ok(Failure { status, message }) => ApiError::new(status, "invalid_request", message),
        Err(PageError::NotFound) => ApiError::not_found(),
        Err(PageError::Unavailable(d)) => ApiError::unavailable(&d),
        Err(other) => ApiError::internal(&format!("{other:?}")),
    }
}

/// The signed-in user of a JSON endpoint (refreshing as pages do); `401` otherwise.
async fn json_user(ctx: &PageCtx) -> Result<Principal, ApiError> {
    ctx.user().await.map_err(|e| match e {
        PageError::Unauthenticated { .. } | PageError::NotAllowed => ApiError::unauthorized(),
        PageError::Unavailable(d) => ApiError::unavailable(&d),
        other => ApiError::internal(&format!("{other:?}")),
    })
}

fn options(c: Ceremony) -> Response {
    axum::Json(json!({ "challenge_id": c.challenge_id, "options": c.options })).into_response()
}

/// `return_to` from the body when it is safe, else the request's (query or default).
fn landing(ctx: &PageCtx, given: Option<&str>) -> String {
    given
        .filter(|r| ctx.state().config.sites.return_hosts.allows(r))
        .map_or_else(|| ctx.return_to.clone(), str::to_owned)
}

/// `POST /auth/passkeys/authenticate/options`.
pub async fn authenticate_options(
    ctx: PageCtx,
    Client(client): Client,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    csrf(&headers)?;
    answer(authenticate_options_json(ctx, client).await)
}

async fn authenticate_options_json(ctx: PageCtx, client: ClientInfo) -> Result<Response, ApiError> {
    Ok(options(ctx.state().services.passkeys().start_authentication(&client).await.map_err(envelope)?))
}

#[derive(Deserialize)]
pub struct AuthenticationFinish {
    challenge_id: Uuid,
    credential: Value,
    return_to: Option<String>,
}

/// `POST /auth/passkeys/authenticate/finish`: session cookies and `{"ok":true,"return_to":…}`.
pub async fn authenticate_finish(
    ctx: PageCtx,
    Client(client): Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    csrf(&headers)?;
    answer(authenticate_finish_json(ctx, client, body).await)
}

async fn authenticate_finish_json(ctx: PageCtx, client: ClientInfo, body: Bytes) -> Result<Response, ApiError> {
    let req: AuthenticationFinish = json_body(&body)?;
    let target = landing(&ctx, req.return_to.as_deref());
    let signed = ctx
        .state()
        .services
        .passkeys()
        .finish_authentication(req.challenge_id, req.credential, audience_for(&target), &client)
        .await
        .map_err(envelope)?;
    let next = ctx.finish(signed, &target).await;
    Ok(axum::Json(json!({ "ok": true, "return_to": next })).into_response())
}

/// `POST /auth/passkeys/register/options`.
pub async fn register_options(ctx: PageCtx, headers: HeaderMap) -> Result<Response, PageError> {
    csrf(&headers)?;
    answer(register_options_json(ctx).await)
}

async fn register_options_json(ctx: PageCtx) -> Result<Response, ApiError> {
    let who = json_user(&ctx).await?;
    Ok(options(ctx.state().services.passkeys().start_registration(&who).await.map_err(envelope)?))
}

#[derive(Deserialize)]
pub struct RegistrationFinish {
    challenge_id: Uuid,
    credential: Value,
    name: Option<String>,
    platform_hint: Option<String>,
    return_to: Option<String>,
}

/// `POST /auth/passkeys/register/finish`: the sign-in methods section when asked for with
/// `X-Authara-Response: linked-providers-section`, else `{"ok":true,"return_to":…}`.
pub async fn register_finish(
    ctx: PageCtx,
    Client(client): Client,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    csrf(&headers)?;
    answer(register_finish_json(ctx, client, headers, body).await)
}

async fn register_finish_json(
    ctx: PageCtx,
    client: ClientInfo,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let who = json_user(&ctx).await?;
    let req: RegistrationFinish = json_body(&body)?;
    let reg = Registration { name: req.name.as_deref(), platform_hint: req.platform_hint.as_deref() };
    ctx.state()
        .services
        .passkeys()
        .finish_registration(&who, req.challenge_id, req.credential, &reg, &client)
        .await
        .map_err(envelope)?;
    if headers.get(SECTION_HEADER).is_some_and(|v| v == "linked-providers-section") {
        let section = super::methods::sign_in_methods(&ctx, &who).await.map_err(|e| match e {
            PageError::Unavailable(d) => ApiError::unavailable(&d),
            other => ApiError::internal(&format!("{other:?}")),
        })?;
        return Ok(Html(section.into_string()).into_response());
    }
    let target = req.return_to.as_deref().filter(|r| return_to::is_safe(r)).unwrap_or("/auth/account");
    Ok(axum::Json(json!({ "ok": true, "return_to": target })).into_response())
}

/// `GET /auth/passkeys/setup`: after signup, an offer to add a passkey; "skip" goes on to
/// `return_to`. Without passkeys on this server, straight on.
pub async fn setup_page(ctx: PageCtx, PageUser(who): PageUser) -> Result<Response, PageError> {
    let services = &ctx.state().services;
    if !services.passkeys().available() {
        return Ok(ctx.redirect(&ctx.return_to));
    }
    let has_password = services.profiles().has_password(who.user_id()).await?;
    let body = html! {
        div.card {
            h1 { "Add a passkey" }
            p.lead { "Sign in next time with your fingerprint, face or screen lock instead of typing a password." }
            div.alert.error role="alert" hidden data-passkey-error {}
            (super::fields::csrf(&ctx.csrf))
            button type="button" hidden data-passkey-register data-passkey-redirect="true" data-return-to=(ctx.return_to) {
                "Add a passkey"
            }
            noscript { p.meta { "Passkeys need JavaScript in this browser." } }
            p.switch {
                a href=(ctx.return_to) data-passkey-skip { "Skip for now" }
            }
            @if !has_password {
                p.meta {
                    "Without a passkey or password, you can sign in again by resetting your password with a code sent to your email."
                }
            }
        }
    };
    Ok(ctx.html(StatusCode::OK, "Add a passkey", body))
}

/// The login page's passkey button (shown by the page script where WebAuthn works), which also
/// asks for browser autofill of passkeys on the email field (conditional mediation).
pub fn login_button(ctx: &PageCtx) -> Markup {
    if !ctx.state().services.passkeys().available() {
        return html! {};
    }
    html! {
        div.passkey-login hidden data-passkey-conditional-login {
            div.alert.error role="alert" hidden data-passkey-error {}
            button.secondary type="button" data-passkey-login data-return-to=(ctx.return_to) { "Sign in with a passkey" }
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PasskeyForm {
    name: String,
    current_password: String,
}

fn passkey_id(id: &str) -> Result<Uuid, PageError> {
    Uuid::parse_str(id).map_err(|_| PageError::NotFound)
}

/// After a change: the sign-in methods section alone when the script asks for it (with the
/// failure's status), else back to the account page saying how it went.
async fn after_change(
    ctx: &PageCtx,
    who: &Principal,
    headers: &HeaderMap,
    result: Result<(), PasskeyError>,
    done: &str,
) -> Result<Response, PageError> {
    let failure = match result {
        Ok(()) => None,
        Err(e) => Some(copy::passkey(e)?),
    };
    if headers.get(SECTION_HEADER).is_some_and(|v| v == "linked-providers-section") {
        let status = failure.map_or(StatusCode::OK, |f| f.status);
        return Ok((status, Html(super::methods::sign_in_methods(ctx, who).await?.into_string())).into_response());
    }
    match failure {
        None => ctx.flash(Flash::Success, done),
        Some(f) => ctx.flash(Flash::Error, f.message),
    }
    Ok(ctx.redirect("/auth/account"))
}

/// `POST /auth/passkeys/{id}/rename`.
pub async fn rename(
    ctx: PageCtx,
    Path(id): Path<String>,
    Client(client): Client,
    headers: HeaderMap,
    UserForm(who, form): UserForm<PasskeyForm>,
) -> Result<Response, PageError> {
    let id = passkey_id(&id)?;
    let result = ctx.state().services.passkeys().rename(&who, id, &form.name, &client).await;
    after_change(&ctx, &who, &headers, result, copy::done::PASSKEY_RENAMED).await
}

/// `POST /auth/passkeys/{id}/delete`: never the last sign-in method (422); a privileged session.
pub async fn delete(
    ctx: PageCtx,
    Path(id): Path<String>,
    Client(client): Client,
    headers: HeaderMap,
    UserForm(who, form): UserForm<PasskeyForm>,
) -> Result<Response, PageError> {
    let id = passkey_id(&id)?;
    let current = Some(form.current_password.as_str()).filter(|p| !p.is_empty());
    let result = ctx.state().services.passkeys().delete(&who, id, current, &client).await;
    after_change(&ctx, &who, &headers, result, copy::done::PASSKEY_REMOVED).await
}
