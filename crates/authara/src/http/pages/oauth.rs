//! Sign-in providers on the hosted pages: the "Continue with …" buttons, the code flow's start
//! and callback, the account-recovery link page (`/auth/provider-links/confirm`), and the
//! account page's sign-in methods (link, unlink).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use super::copy;
use super::fields::{self, Password};
use super::layout::alert;
use super::{CsrfForm, PageCtx, PageError, PageQuery, PageUser, audience_for};
use crate::clock::human;
use crate::domain::Audience;
use crate::http::cookies;
use crate::http::error::ApiError;
use crate::http::extract::{AppUser, Client};
use crate::http::state::AppState;
use crate::services::auth::Principal;
use crate::services::oauth::{Finished, Identity, InvitationTarget, OAuthError, SignInOutcome};
use crate::services::return_to;
use crate::services::sessions::ClientInfo;

/// The origin (`scheme://host[:port]`) of a URL.
fn origin(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let host_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&url[..scheme.len() + 3 + host_len])
}

/// The hosted pages' Content-Security-Policy: the default one, with the origins of the
/// providers' authorization pages in `form-action` (linking from the account page is a form
/// post answered by a redirect there, which `form-action 'self'` would stop), and with Google's
/// Identity Services origins when Google is configured (behavior.md §5.1).
pub fn page_csp(config: &crate::config::Config) -> axum::http::HeaderValue {
    use crate::config::ProviderKind;
    let mut form_action = vec!["'self'".to_owned()];
    for p in config.oauth.providers.iter().filter(|p| p.code_flow()) {
        if let Some(o) = origin(&p.issuer)
            && !form_action.iter().any(|x| x == o)
        {
            form_action.push(o.to_owned());
        }
    }
    let google = config.oauth.providers.iter().any(|p| p.kind == ProviderKind::Google);
    let (gsi, img, frame) = if google {
        (
            " https://accounts.google.com",
            " https://www.gstatic.com https://ssl.gstatic.com",
            "https://accounts.google.com",
        )
    } else {
        ("", "", "'none'")
    };
    let style_gsi = if google { " https://accounts.google.com/gsi/style" } else { "" };
    let csp = format!(
        "default-src 'self'; base-uri 'self'; object-src 'none'; frame-ancestors 'none'; form-action {}; \
         font-src 'self'; img-src 'self' data:{img}; connect-src 'self'{gsi}; frame-src {frame}; \
         script-src 'self'{gsi}; style-src 'self'{style_gsi}",
        form_action.join(" ")
    );
    axum::http::HeaderValue::from_str(&csp)
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static(crate::http::middleware::edge::CSP))
}

/// Google's own button (Google Identity Services, behavior.md §7.2): the GIS script, the
/// `#g_id_onload` settings with this browser's nonce, and the `[data-google-flow]` element the
/// page script reads. Shown where Google has no client secret (with one, Google gets the code
/// flow's plain button instead).
pub fn google_button(ctx: &PageCtx, flow: &str, link_id: Option<&str>) -> Markup {
    google_button_to(ctx, flow, link_id, ctx.return_to_param.as_deref().unwrap_or_default())
}

/// [`google_button`], going on to `return_to` (an invitation page, say) instead of this
/// request's `return_to`.
fn google_button_to(ctx: &PageCtx, flow: &str, link_id: Option<&str>, return_to: &str) -> Markup {
    let Some(client_id) = ctx.state().services.oauth().google_client_id() else { return html! {} };
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

/// Whether Google is configured for its ID-token flow only (no code flow).
fn google_gis(ctx: &PageCtx) -> bool {
    ctx.state().services.oauth().providers().iter().any(|p| p.name == "google" && !p.code_flow)
}

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
    let gis = google_gis(ctx);
    html! {
        @if !providers.is_empty() || gis {
            div.providers {
                p.divider { span { "or" } }
                @if gis { (google_button_to(ctx, "login", None, return_to)) }
                @for p in &providers {
                    a.button.secondary.provider href={ "/auth/oauth/" (p.name) "/start" (rt_query) } data-provider=(p.name) {
                        "Continue with " (p.display_name)
                    }
                }
            }
        }
    }
}

/// The words of a flash left for this page, as (success, error).
pub fn flash_messages(ctx: &PageCtx) -> (Option<&'static str>, Option<&'static str>) {
    match ctx.take_flash() {
        Some((kind, code)) => match copy::flash(&code) {
            Some(text) if kind == "success" => (Some(text), None),
            Some(text) => (None, Some(text)),
            None => (None, None),
        },
        None => (None, None),
    }
}

/// The provider rows of the account page's "Sign-in methods" section
/// (`#linked-providers-section`, behavior.md §13): the password, each configured provider with
/// link or unlink.
pub async fn provider_rows(ctx: &PageCtx, who: &Principal) -> Result<Markup, PageError> {
    let oauth = ctx.state().services.oauth();
    let linked = oauth.linked(who.user_id()).await?;
    let has_password = oauth.has_password(who.user_id()).await?;
    let providers = oauth.providers();
    let csrf = fields::csrf(&ctx.csrf);
    // Providers linked earlier but no longer configured are listed too, so they can be removed.
    let mut names: Vec<(String, String, bool)> =
        providers.iter().map(|p| (p.name.clone(), p.display_name.clone(), p.code_flow)).collect();
    for l in &linked {
        if !names.iter().any(|(n, _, _)| *n == l.provider) {
            names.push((l.provider.clone(), oauth.display_name(&l.provider), false));
        }
    }
    Ok(html! {
            ul.sessions.methods {
                li data-method="password" {
                    div {
                        div.device { "Password" }
                        div.meta { @if has_password { "Set" } @else { "Not set" } }
                    }
                }
                @for (name, display, code_flow) in &names {
                    @let link = linked.iter().find(|l| l.provider == *name);
                    li data-provider=(name) {
                        div {
                            div.device { (display) }
                            div.meta {
                                @if let Some(l) = link { "Linked " (human(l.created_at_ms)) } @else { "Not linked" }
                            }
                        }
                        @if link.is_some() {
                            details {
                                summary { "Unlink" }
                                form method="post" action={ "/auth/providers/" (name) "/unlink" } {
                                    (csrf)
                                    (fields::reauth(&format!("unlink-{name}-password")))
                                    button.secondary.small type="submit" aria-label={ "Unlink " (display) } { "Unlink" }
                                }
                            }
                        } @else if name == "google" && !*code_flow {
                            (google_button(ctx, "link", None))
                        } @else if *code_flow {
                            details {
                                summary { "Link" }
                                form method="post" action={ "/auth/oauth/" (name) "/link" } {
                                    (csrf)
                                    (fields::reauth(&format!("link-{name}-password")))
                                    button.secondary.small type="submit" aria-label={ "Link " (display) } { "Link " (display) }
                                }
                            }
                        }
                    }
                }
            }
    })
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
            let s = ctx.state();
            ctx.push_cookie(cookies::oauth_state(&started.state, s.services.now_ms(), s.config.secure_cookies()));
            Ok(Json(Authorization { authorization_url: started.authorization_url }).into_response())
        }
        Ok(started) => Ok(to_provider(&ctx, &started.state, &started.authorization_url)),
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
    PageUser(who): PageUser,
    Path(provider): Path<String>,
    CsrfForm(form): CsrfForm<ReauthForm>,
) -> Result<Response, PageError> {
    let oauth = ctx.state().services.oauth();
    let password = Some(form.current_password.as_str()).filter(|p| !p.is_empty());
    match oauth.start(&provider, Some((&who, password)), "/auth/account", &client).await {
        Ok(started) => Ok(to_provider(&ctx, &started.state, &started.authorization_url)),
        Err(e) => {
            let (status, code) = copy::oauth(e)?;
            super::account::render(&ctx, &who, status, None, copy::flash(code)).await
        }
    }
}

/// A plain 303 to the provider (HTMX cannot follow a cross-origin redirect: full navigation).
fn to_provider(ctx: &PageCtx, state: &str, url: &str) -> Response {
    let s = ctx.state();
    ctx.push_cookie(cookies::oauth_state(state, s.services.now_ms(), s.config.secure_cookies()));
    super::redirect(false, url)
}

/// A failure before anyone is signed in: a flash, then the login page.
fn fail_to_login(ctx: &PageCtx, e: OAuthError) -> Result<Response, PageError> {
    let (_, code) = copy::oauth(e)?;
    ctx.set_flash("error", code);
    Ok(ctx.redirect(&ctx.login_url()))
}

/// Where a sign-in that started from `return_to` lands: the page itself, except an invitation
/// page, which is done with once joined: its own `return_to`, else the default.
fn landing(ctx: &PageCtx, return_to: &str) -> String {
    match InvitationTarget::parse(return_to) {
        Some(target) => target.next.unwrap_or_else(|| ctx.state().config.default_return_to.clone()),
        None => return_to.to_owned(),
    }
}

/// The sign-in of a verified identity from an invitation page (`return_to`, behavior.md
/// §9.3): where the browser goes next. Joined: the session is set, on to [`landing`]; an
/// existing account without this identity: the recovery-link page (carrying the invitation
/// page); refused: back to the invitation page with a flash saying why.
async fn invited(
    ctx: &PageCtx,
    client: &ClientInfo,
    identity: &Identity,
    target: &InvitationTarget,
    return_to: &str,
) -> Result<String, PageError> {
    let oauth = ctx.state().services.oauth();
    match oauth.sign_in_invited(identity, target, return_to, client).await {
        Ok(SignInOutcome::SignedIn(signed)) => {
            ctx.replace_session(&signed).await;
            Ok(landing(ctx, return_to))
        }
        Ok(SignInOutcome::LinkRequired { link_id }) => {
            Ok(format!("/auth/provider-links/confirm?link_id={link_id}&return_to={}", return_to::encode(return_to)))
        }
        Err(e) => {
            ctx.set_flash("error", copy::oauth(e)?.1);
            Ok(return_to.to_owned())
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /auth/oauth/{provider}/callback`: finishes the flow this browser started. Sign-in
/// goes on to the flow's `return_to` (or the recovery-link page); a link goes back to the
/// account page. Every failure ends on the login (or account) page with a readable message.
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
            let rt = if return_to::is_safe(&return_to) { return_to } else { s.config.default_return_to.clone() };
            if let Some(target) = InvitationTarget::parse(&rt) {
                let to = invited(&ctx, &client, &identity, &target, &rt).await?;
                return Ok(ctx.redirect(&to));
            }
            match oauth.sign_in(&identity, audience_for(&rt), &client, Some(&rt)).await {
                Ok(SignInOutcome::SignedIn(signed)) => {
                    ctx.replace_session(&signed).await;
                    Ok(ctx.redirect(&rt))
                }
                Ok(SignInOutcome::LinkRequired { link_id }) => Ok(ctx.redirect(&format!(
                    "/auth/provider-links/confirm?link_id={link_id}&return_to={}",
                    return_to::encode(&rt)
                ))),
                Err(e) => fail_to_login(&ctx, e),
            }
        }
        Ok(Finished::Link { identity, user, session, .. }) => {
            let who = match ctx.user().await {
                Ok(who) => who,
                Err(PageError::Unauthenticated { .. }) => return fail_to_login(&ctx, OAuthError::SessionChanged),
                Err(e) => return Err(e),
            };
            match oauth.complete_link(&identity, user, session, &who, &client).await {
                Ok(()) => ctx.set_flash("success", "provider-linked"),
                Err(e) => ctx.set_flash("error", copy::oauth(e)?.1),
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

fn confirm_page(
    ctx: &PageCtx,
    status: StatusCode,
    link: &crate::services::oauth::RecoveryLink,
    error: Option<&str>,
) -> Response {
    let body = html! {
        div.card {
            h1 { "Link " (link.provider_display) " to your account" }
            p.lead {
                "An account with " strong { (link.email) } " already exists. Enter its password to link your "
                (link.provider_display) " sign-in to it. Next time, “Continue with " (link.provider_display) "” signs you straight in."
            }
            @if link.return_to.as_deref().and_then(InvitationTarget::parse).is_some() {
                p { "Then you accept the invitation and join its organization." }
            }
            (alert("error", error))
            form method="post" action={ "/auth/provider-links/confirm" (ctx.rt_query()) } {
                (fields::csrf(&ctx.csrf))
                input type="hidden" name="link_id" value=(link.id);
                (fields::fixed_email("confirm-email", "Email", &link.email))
                (fields::password("password", "Password", Password::Current, true))
                button type="submit" { "Link and sign in" }
            }
            @if google_gis(ctx) && link.provider != "google" {
                div.providers {
                    p.divider { span { "or prove it with Google, if it is linked to this account" } }
                    (google_button(ctx, "proof", Some(&link.id.to_string())))
                }
            }
            p.switch { a href=(ctx.login_url()) { "Cancel" } }
        }
    };
    ctx.html(status, "Link your account", body)
}

/// `GET /auth/provider-links/confirm?link_id=`: the account-collision page for a valid link;
/// anything else is a flash and the login page (behavior.md §1.4).
pub async fn confirm_get(ctx: PageCtx, PageQuery(q): PageQuery<LinkQuery>) -> Result<Response, PageError> {
    // Signed in already (either audience): on to return_to, as the login page does (§1.9).
    if let Some(token) = ctx.access_token()
        && ctx.state().services.auth().authenticate(token, None).await.is_ok()
    {
        return Ok(ctx.redirect(&ctx.return_to));
    }
    match ctx.state().services.oauth().recovery_link(&q.link_id).await {
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

/// `POST /auth/provider-links/confirm`: proves the account with its password, links the
/// identity, signs in, and goes on to the link's `return_to`.
pub async fn confirm_post(
    ctx: PageCtx,
    Client(client): Client,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<Response, PageError> {
    let oauth = ctx.state().services.oauth();
    let link = match oauth.recovery_link(&form.link_id).await {
        Ok(link) => link,
        Err(e) => return fail_to_login(&ctx, e),
    };
    let rt = link.return_to.clone().filter(|r| return_to::is_safe(r)).unwrap_or_else(|| ctx.return_to.clone());
    match oauth.confirm_with_password(&form.link_id, &form.password, audience_for(&rt), &client).await {
        Ok((signed, _)) => {
            ctx.replace_session(&signed).await;
            Ok(ctx.redirect(&landing(&ctx, &rt)))
        }
        Err(e @ (OAuthError::WrongPassword | OAuthError::RateLimited { .. })) => {
            let (status, code) = copy::oauth(e)?;
            Ok(confirm_page(&ctx, status, &link, copy::flash(code)))
        }
        Err(e) if invitation_refusal(&e) && InvitationTarget::parse(&rt).is_some() => {
            ctx.set_flash("error", copy::oauth(e)?.1);
            Ok(ctx.redirect(&rt))
        }
        Err(e) => fail_to_login(&ctx, e),
    }
}

/// Whether a recovery link failed on its invitation (said on the invitation page).
fn invitation_refusal(e: &OAuthError) -> bool {
    matches!(e, OAuthError::Invitation(_) | OAuthError::InvitationLoginOff)
}

/// `POST /auth/providers/{provider}/unlink`: removes a sign-in method (privileged session;
/// the last one is refused with 422).
pub async fn unlink(
    ctx: PageCtx,
    Client(client): Client,
    PageUser(who): PageUser,
    Path(provider): Path<String>,
    CsrfForm(form): CsrfForm<ReauthForm>,
) -> Result<Response, PageError> {
    let oauth = ctx.state().services.oauth();
    let password = Some(form.current_password.as_str()).filter(|p| !p.is_empty());
    match oauth.unlink(&who, &provider, password, &client).await {
        Ok(()) => {
            ctx.set_flash("success", "provider-unlinked");
            Ok(ctx.redirect("/auth/account"))
        }
        Err(e) => {
            let (status, code) = copy::oauth(e)?;
            super::account::render(&ctx, &who, status, None, copy::flash(code)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> crate::config::Config {
        let vars: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        crate::config::load_from_map(&vars).unwrap().0
    }

    #[test]
    fn without_providers_the_page_policy_is_the_default_one() {
        assert_eq!(page_csp(&config(&[])), crate::http::middleware::edge::CSP);
    }

    #[test]
    fn providers_widen_form_action_and_google_adds_identity_services() {
        let csp = page_csp(&config(&[
            ("AUTHARA_OAUTH_PROVIDERS", "google,gitlab"),
            ("AUTHARA_OAUTH_GOOGLE_CLIENT_ID", "g"),
            ("AUTHARA_OAUTH_GITLAB_ISSUER", "https://gitlab.example.com:8443/realm/x"),
            ("AUTHARA_OAUTH_GITLAB_CLIENT_ID", "x"),
        ]));
        let csp = csp.to_str().unwrap();
        assert!(csp.contains("form-action 'self' https://gitlab.example.com:8443;"), "{csp}");
        assert!(csp.contains("script-src 'self' https://accounts.google.com;"), "{csp}");
        assert!(csp.contains("frame-src https://accounts.google.com;"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct GoogleCallbackForm {
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
/// nonce of this browser's cookie, for `flow=login` (sign in, or the recovery link), `link`
/// (the signed-in user links Google, with a pending link from `/link/start`) or `proof` (a
/// recovery link proved with a Google identity already linked to the account).
pub async fn google_callback(
    ctx: PageCtx,
    Client(client): Client,
    Path(provider): Path<String>,
    CsrfForm(form): CsrfForm<GoogleCallbackForm>,
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
    let identity = match oauth.verify_google(&form.credential, &form.nonce).await {
        Ok(identity) => identity,
        Err(e) => return fail_to_login(&ctx, e),
    };
    ctx.push_cookie(cookies::clear_oauth_nonce(s.config.secure_cookies()));
    let rt = ctx.return_to.clone();
    match form.flow.as_str() {
        "link" => {
            // The access cookie as it is (no refresh): the session that started the link.
            let who = match ctx.access_token() {
                Some(token) => s.services.auth().authenticate(token, Some(Audience::App)).await.ok(),
                None => None,
            };
            let result = match who {
                Some(who) => oauth.complete_google_link(&form.link_id, &identity, &who, &client).await,
                None => Err(OAuthError::SessionChanged),
            };
            match result {
                Ok(()) => {
                    ctx.set_flash("success", "provider-linked");
                    Ok(x_redirect("/auth/account"))
                }
                Err(e) => {
                    ctx.set_flash("error", copy::oauth(e)?.1);
                    Ok(ctx.redirect(&format!("/auth/account{}", ctx.rt_query())))
                }
            }
        }
        "proof" => {
            let link_rt = match oauth.recovery_link(&form.link_id).await {
                Ok(link) => link.return_to.filter(|r| return_to::is_safe(r)).unwrap_or(rt),
                Err(e) => return fail_to_login(&ctx, e),
            };
            match oauth.confirm_with_identity(&form.link_id, &identity, audience_for(&link_rt), &client).await {
                Ok((signed, _)) => {
                    ctx.replace_session(&signed).await;
                    Ok(x_redirect(&landing(&ctx, &link_rt)))
                }
                Err(e) if invitation_refusal(&e) && InvitationTarget::parse(&link_rt).is_some() => {
                    ctx.set_flash("error", copy::oauth(e)?.1);
                    Ok(x_redirect(&link_rt))
                }
                Err(e) => fail_to_login(&ctx, e),
            }
        }
        _ => {
            // flow=login from an invitation page is the invitation's flow (behavior.md §7.2).
            if let Some(target) = InvitationTarget::parse(&rt) {
                return Ok(x_redirect(&invited(&ctx, &client, &identity, &target, &rt).await?));
            }
            match oauth.sign_in(&identity, audience_for(&rt), &client, Some(&rt)).await {
                Ok(SignInOutcome::SignedIn(signed)) => {
                    ctx.replace_session(&signed).await;
                    Ok(x_redirect(&rt))
                }
                Ok(SignInOutcome::LinkRequired { link_id }) => Ok(x_redirect(&format!(
                    "/auth/provider-links/confirm?link_id={link_id}&return_to={}",
                    return_to::encode(&rt)
                ))),
                Err(e) => fail_to_login(&ctx, e),
            }
        }
    }
}

#[derive(serde::Serialize)]
struct LinkStarted {
    link_id: String,
}

/// `POST /auth/providers/{provider}/link/start` (Google only): a pending link bound to this
/// user and session, five minutes (behavior.md §7.2); JSON, errors in the API envelope, except
/// a failed CSRF check, which is the 403 page of every page route.
pub async fn google_link_start(
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
