//! Sign-in providers on the hosted pages: the "Continue with …" buttons, the code flow's start
//! and callback, the account-recovery link page (`/auth/provider-links/confirm`), and linking or
//! unlinking from the account page. Google's own button is `pages::google`.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::fields::{self, Password};
use super::layout::alert;
use super::verified::{fail_to_login, provider_signed_in, stored_return_to};
use super::{CsrfForm, Flash, PageCtx, PageError, PageQuery, UserForm, audience_for, copy};
use crate::http::cookies;
use crate::http::error::ApiError;
use crate::http::extract::Client;
use crate::services::oauth::{Finished, OAuthError, RecoveryLink};
use crate::services::return_to;

/// One "Continue with …" link per provider with a code flow (login and signup pages), and
/// Google's own button for Google without a client secret. The links work without JavaScript
/// and need nothing from the CSP.
pub fn provider_buttons(ctx: &PageCtx) -> Markup {
    buttons(ctx, ctx.return_to_param.as_deref().unwrap_or_default())
}

/// The provider buttons of an invitation page: each sign-in comes back to `page` (the
/// invitation's signup or login page, as `return_to`), which makes it the invitation flow
/// (behavior.md §9.3).
pub fn invitation_buttons(ctx: &PageCtx, page: &str) -> Markup {
    buttons(ctx, page)
}

fn buttons(ctx: &PageCtx, return_to: &str) -> Markup {
    let rt_query =
        if return_to.is_empty() { String::new() } else { format!("?return_to={}", return_to::encode(return_to)) };
    let providers: Vec<_> = ctx.state().services.oauth().providers().into_iter().filter(|p| p.code_flow).collect();
    let gis = super::google::gis(ctx);
    html! {
        @if !providers.is_empty() || gis {
            div.providers {
                p.divider { span { "or" } }
                @if gis { (super::google::button_to(ctx, "login", None, return_to)) }
                @for p in &providers {
                    a.button.secondary.provider href={ "/auth/oauth/" (p.name) "/start" (rt_query) } data-provider=(p.name) {
                        "Continue with " (p.display_name)
                    }
                }
            }
        }
    }
}

#[derive(serde::Serialize)]
struct Authorization {
    authorization_url: String,
}

/// `GET /auth/oauth/{provider}/start?return_to=`: to the provider, with the flow's `state` in
/// a cookie bound to this browser. A JSON client (`Accept: application/json`, from the
/// browser that will sign in) gets `{"authorization_url": …}` and the same cookie instead, and
/// sends the browser there itself; the callback finishes the flow the same way.
pub async fn start(
    ctx: PageCtx,
    Client(client): Client,
    headers: axum::http::HeaderMap,
    Path(provider): Path<String>,
) -> Result<Response, PageError> {
    let json = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let oauth = ctx.state().services.oauth();
    match oauth.start(&provider, None, &ctx.return_to, &client).await {
        Ok(started) if json => {
            ctx.remember_invitation();
            let s = ctx.state();
            ctx.push_cookie(cookies::oauth_state(&started.state, s.services.now_ms(), s.config.secure_cookies()));
            Ok(Json(Authorization { authorization_url: started.authorization_url }).into_response())
        }
        Ok(started) => {
            ctx.remember_invitation();
            Ok(to_provider(&ctx, &started.state, &started.authorization_url))
        }
        Err(e) if json => Ok(ApiError::from(e).into_response()),
        Err(e) => fail_to_login(&ctx, e),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ReauthForm {
    current_password: String,
}

/// `POST /auth/oauth/{provider}/link`: a signed-in user links an identity (privileged session).
pub async fn link(
    ctx: PageCtx,
    Client(client): Client,
    Path(provider): Path<String>,
    UserForm(who, form): UserForm<ReauthForm>,
) -> Result<Response, PageError> {
    let oauth = ctx.state().services.oauth();
    let password = Some(form.current_password.as_str()).filter(|p| !p.is_empty());
    match oauth.start(&provider, Some((&who, password)), "/auth/account", &client).await {
        Ok(started) => Ok(to_provider(&ctx, &started.state, &started.authorization_url)),
        Err(e) => {
            ctx.flash(Flash::Error, copy::oauth(e)?.message);
            Ok(ctx.redirect("/auth/account"))
        }
    }
}

/// A plain 303 to the provider (HTMX cannot follow a cross-origin redirect: full navigation).
fn to_provider(ctx: &PageCtx, state: &str, url: &str) -> Response {
    let s = ctx.state();
    ctx.push_cookie(cookies::oauth_state(state, s.services.now_ms(), s.config.secure_cookies()));
    super::redirect(false, url)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /auth/oauth/{provider}/callback`: finishes the flow this browser started. Sign-in
/// goes on as [`provider_signed_in`] says; a link goes back to the account page. Every failure
/// ends on the login (or account) page with a readable message.
pub async fn callback(
    ctx: PageCtx,
    Client(client): Client,
    Path(provider): Path<String>,
    PageQuery(q): PageQuery<CallbackQuery>,
) -> Result<Response, PageError> {
    let s = ctx.state();
    ctx.push_cookie(cookies::clear_oauth_state(s.config.secure_cookies()));
    let oauth = s.services.oauth();
    let finished =
        oauth.finish(&provider, q.code.as_deref(), q.state.as_deref(), ctx.oauth_state(), q.error.as_deref()).await;
    match finished {
        Err(e) => fail_to_login(&ctx, e),
        Ok(Finished::Login { identity, return_to }) => {
            let rt = if s.config.sites.return_hosts.allows(&return_to) {
                return_to
            } else {
                s.config.default_return_to.clone()
            };
            // Started from an invitation page: its token comes back from this browser.
            let Some(rt) = ctx.restore_return_to(&rt) else {
                return fail_to_login(&ctx, OAuthError::InvalidState);
            };
            Ok(ctx.redirect(&provider_signed_in(&ctx, &client, &identity, &rt).await?))
        }
        Ok(Finished::Link { identity, user, session, .. }) => {
            let who = match ctx.user().await {
                Ok(who) => who,
                Err(PageError::Unauthenticated { .. }) => return fail_to_login(&ctx, OAuthError::SessionChanged),
                Err(e) => return Err(e),
            };
            match oauth.complete_link(&identity, user, session, &who, &client).await {
                Ok(()) => ctx.flash(Flash::Success, copy::done::PROVIDER_LINKED),
                Err(e) => ctx.flash(Flash::Error, copy::oauth(e)?.message),
            }
            Ok(ctx.redirect("/auth/account"))
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LinkQuery {
    link_id: String,
}

fn confirm_page(ctx: &PageCtx, status: StatusCode, link: &RecoveryLink, error: Option<&str>) -> Response {
    let body = html! {
        div.card {
            h1 { "Link " (link.provider_display) " to your account" }
            p.lead {
                "An account with " strong { (link.email) } " already exists. Enter its password to link your "
                (link.provider_display) " sign-in to it. Next time, “Continue with " (link.provider_display) "” signs you straight in."
            }
            (alert("error", error))
            form method="post" action={ "/auth/provider-links/confirm" (ctx.rt_query()) } {
                (fields::csrf(&ctx.csrf))
                input type="hidden" name="link_id" value=(link.id);
                (fields::fixed_email("confirm-email", "Email", &link.email))
                (fields::password("password", "Password", Password::Current, true))
                button type="submit" { "Link and sign in" }
            }
            @if super::google::gis(ctx) && link.provider != "google" {
                div.providers {
                    p.divider { span { "or prove it with Google, if it is linked to this account" } }
                    (super::google::button(ctx, "proof", Some(&link.id.to_string())))
                }
            }
            p.switch { a href=(ctx.login_url()) { "Cancel" } }
        }
    };
    ctx.html(status, "Link your account", body)
}

/// `GET /auth/provider-links/confirm?link_id=`: the account-collision page for a valid link
/// made in this browser; anything else is a flash and the login page (behavior.md §1.4).
pub async fn confirm_get(ctx: PageCtx, PageQuery(q): PageQuery<LinkQuery>) -> Result<Response, PageError> {
    // Signed in already (either audience): on to return_to, as the login page does (§1.9).
    if let Some(token) = ctx.access_token()
        && ctx.state().services.auth().authenticate(token, None).await.is_ok()
    {
        return Ok(ctx.redirect(&ctx.return_to));
    }
    match ctx.state().services.oauth().recovery_link(&q.link_id, ctx.link_binding()).await {
        Ok(link) => Ok(confirm_page(&ctx, StatusCode::OK, &link, None)),
        Err(e) => fail_to_login(&ctx, e),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ConfirmForm {
    link_id: String,
    password: String,
}

/// `POST /auth/provider-links/confirm`: proves the account with its password, in the browser
/// that made the link; links the identity, signs in, and goes on to the link's `return_to`.
pub async fn confirm_post(
    ctx: PageCtx,
    Client(client): Client,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<Response, PageError> {
    let oauth = ctx.state().services.oauth();
    let binding = ctx.link_binding();
    let link = match oauth.recovery_link(&form.link_id, binding).await {
        Ok(link) => link,
        Err(e) => return fail_to_login(&ctx, e),
    };
    let rt = stored_return_to(&ctx, link.return_to.as_deref());
    match oauth.confirm_with_password(&form.link_id, binding, &form.password, audience_for(&rt), &client).await {
        Ok((signed, _)) => {
            let next = ctx.finish(signed, &rt).await;
            Ok(ctx.redirect(&next))
        }
        Err(e @ (OAuthError::WrongPassword | OAuthError::RateLimited { .. })) => {
            let failure = copy::oauth(e)?;
            Ok(confirm_page(&ctx, failure.status, &link, Some(failure.message)))
        }
        Err(e) => fail_to_login(&ctx, e),
    }
}

/// `POST /auth/providers/{provider}/unlink`: removes a sign-in method (privileged session;
/// never the last one).
pub async fn unlink(
    ctx: PageCtx,
    Client(client): Client,
    Path(provider): Path<String>,
    UserForm(who, form): UserForm<ReauthForm>,
) -> Result<Response, PageError> {
    let oauth = ctx.state().services.oauth();
    let password = Some(form.current_password.as_str()).filter(|p| !p.is_empty());
    match oauth.unlink(&who, &provider, password, &client).await {
        Ok(()) => ctx.flash(Flash::Success, copy::done::PROVIDER_UNLINKED),
        Err(e) => ctx.flash(Flash::Error, copy::oauth(e)?.message),
    }
    Ok(ctx.redirect("/auth/account"))
}
