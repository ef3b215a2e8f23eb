//! Google's own button on the hosted pages (Google Identity Services, behavior.md §7.2): the
//! button, its page callback (`POST /auth/oauth/google/callback`) for the three flows (`login`,
//! `link`, `proof`), and the start of a link from the account page. A page that shows the button
//! gets the Content-Security-Policy that allows Google's origins; no other page does.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use super::verified::{fail_to_login, provider_signed_in};
use super::{CsrfForm, Flash, PageCtx, PageError, audience_for, copy};
use crate::domain::{Audience, ClientInfo};
use crate::http::cookies;
use crate::http::error::ApiError;
use crate::http::extract::{AppUser, Client};
use crate::http::state::AppState;
use crate::services::oauth::{InvitationTarget, OAuthError};

/// Google's own button: the GIS script, the `#g_id_onload` settings with this browser's nonce,
/// and the `[data-google-flow]` element the page script reads, going on to `return_to`. Shown
/// where Google has no client secret (with one, Google gets the code flow's plain button).
pub fn button_to(ctx: &PageCtx, flow: &str, link_id: Option<&str>, return_to: &str) -> Markup {
    let Some(client_id) = ctx.state().services.oauth().google_client_id() else { return html! {} };
    ctx.uses_google_button();
    let nonce = ctx.oauth_nonce();
    html! {
        // `defer`, not `async`: deferred scripts run in document order, so the page script (in
        // `<head>`) has defined `autharaGoogleCallback` before GIS looks it up by name.
        script src="https://accounts.google.com/gsi/client" defer {}
        div id="g_id_onload" data-client_id=(client_id) data-nonce=(nonce) data-callback="autharaGoogleCallback"
            data-auto_prompt="false" data-context=(if flow == "login" { "signin" } else { "use" }) {}
        div.g_id_signin data-type="standard" data-text="continue_with" data-shape="rectangular" data-width="320" {}
        div hidden data-google-flow=(flow) data-provider="google" data-link-id=(link_id.unwrap_or_default())
            data-return-to=(return_to) {}
    }
}

/// [`button_to`], going on to this request's `return_to`.
pub fn button(ctx: &PageCtx, flow: &str, link_id: Option<&str>) -> Markup {
    button_to(ctx, flow, link_id, ctx.return_to_param.as_deref().unwrap_or_default())
}

/// Whether Google is configured for its ID-token flow only (no code flow): its own button.
pub fn gis(ctx: &PageCtx) -> bool {
    ctx.state().services.oauth().providers().iter().any(|p| p.name == "google" && !p.code_flow)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CallbackForm {
    credential: String,
    nonce: String,
    flow: String,
    link_id: String,
}

/// `200` with `X-Authara-Redirect: <location>`: how Google's page callback says where to go
/// (the page script navigates there; behavior.md §7.2).
fn x_redirect(location: &str) -> Response {
    let value = HeaderValue::from_str(location).unwrap_or_else(|_| HeaderValue::from_static("/"));
    (StatusCode::OK, [(HeaderName::from_static("x-authara-redirect"), value)]).into_response()
}

/// `POST /auth/oauth/google/callback?return_to=`: the ID token GIS gave the page, with the
/// nonce of this browser's cookie, for `flow=login` (sign in, a recovery link, or an
/// invitation's pending signup), `link` (the signed-in user links Google, with a pending link
/// from `/link/start`) or `proof` (a recovery link proved with a Google identity already linked
/// to the account).
pub async fn callback(
    ctx: PageCtx,
    Client(client): Client,
    Path(provider): Path<String>,
    CsrfForm(form): CsrfForm<CallbackForm>,
) -> Result<Response, PageError> {
    let s = ctx.state();
    let oauth = s.services.oauth();
    if provider != "google" || oauth.google_client_id().is_none() {
        return Err(PageError::NotFound);
    }
    let cookie = ctx.oauth_nonce_cookie().unwrap_or_default();
    if form.credential.is_empty()
        || form.nonce.is_empty()
        || !bool::from(form.nonce.as_bytes().ct_eq(cookie.as_bytes()))
    {
        return fail_to_login(&ctx, OAuthError::InvalidToken("nonce".to_owned()));
    }
    let identity = match oauth.verify_google(&form.credential, &form.nonce, &client).await {
        Ok(identity) => identity,
        Err(e) => return fail_to_login(&ctx, e),
    };
    ctx.push_cookie(cookies::clear_oauth_nonce(s.config.secure_cookies()));
    let rt = ctx.return_to.clone();
    match form.flow.as_str() {
        "link" => link(&ctx, &client, &form.link_id, &identity).await,
        "proof" => proof(&ctx, &client, &form.link_id, &identity, rt).await,
        _ => Ok(x_redirect(&provider_signed_in(&ctx, &client, &identity, &rt).await?)),
    }
}

async fn link(
    ctx: &PageCtx,
    client: &ClientInfo,
    link_id: &str,
    identity: &crate::services::oauth::Identity,
) -> Result<Response, PageError> {
    let s = ctx.state();
    // The access cookie as it is (no refresh): the session that started the link.
    let who = match ctx.access_token() {
        Some(token) => s.services.auth().authenticate(token, Some(Audience::App)).await.ok(),
        None => None,
    };
    let result = match who {
        Some(who) => s.services.oauth().complete_google_link(link_id, identity, &who, client).await,
        None => Err(OAuthError::SessionChanged),
    };
    match result {
        Ok(()) => {
            ctx.flash(Flash::Success, copy::done::PROVIDER_LINKED);
            Ok(x_redirect("/auth/account"))
        }
        Err(e) => {
            ctx.flash(Flash::Error, copy::oauth(e)?.message);
            Ok(ctx.redirect("/auth/account"))
        }
    }
}

async fn proof(
    ctx: &PageCtx,
    client: &ClientInfo,
    link_id: &str,
    identity: &crate::services::oauth::Identity,
    rt: String,
) -> Result<Response, PageError> {
    let oauth = ctx.state().services.oauth();
    let binding = ctx.link_binding();
    let link_rt = match oauth.recovery_link(link_id, binding).await {
        Ok(link) if link.return_to.is_some() => super::verified::stored_return_to(ctx, link.return_to.as_deref()),
        Ok(_) => rt,
        Err(e) => return fail_to_login(ctx, e),
    };
    match oauth.confirm_with_identity(link_id, binding, identity, audience_for(&link_rt), client).await {
        Ok((signed, _)) => Ok(x_redirect(&ctx.finish(signed, &link_rt).await)),
        Err(e) if InvitationTarget::parse(&link_rt).is_some() || link_rt.starts_with("/auth/invitations/") => {
            ctx.flash(Flash::Error, copy::oauth(e)?.message);
            Ok(x_redirect(&link_rt))
        }
        Err(e) => fail_to_login(ctx, e),
    }
}

#[derive(serde::Serialize)]
struct LinkStarted {
    link_id: String,
}

/// `POST /auth/providers/{provider}/link/start` (Google only): a pending link bound to this
/// user and session, five minutes (behavior.md §7.2); JSON, errors in the API envelope, except
/// a failed CSRF check, which is the 403 page of every page route.
pub async fn link_start(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    AppUser(who): AppUser,
    CsrfForm(_): CsrfForm<super::NoFields>,
) -> Result<Response, ApiError> {
    if provider != "google" {
        return Err(ApiError::invalid_request("Only google links this way"));
    }
    let id = state.services.oauth().start_google_link(&who).await?;
    Ok(Json(LinkStarted { link_id: id.to_string() }).into_response())
}
