//! The invitation pages (behavior.md §9.3), where the link of the invitation email leads:
//!
//! * `/auth/invitations/accept?token=…`, the landing: the organization and the invited address,
//!   and the way on for this visitor in this mode (links to sign in or sign up in `multi` mode,
//!   the signup form itself in `single` mode, the Accept button for the invited user signed in
//!   in `multi` mode);
//! * `/auth/invitations/signup?token=…`: a new account for the invited address (or the code page
//!   first, with challenges on);
//! * `/auth/invitations/login?token=…` (`multi` mode): an existing account signs in and joins.
//!
//! Each ends with the browser's previous session logged out and the new session in the invited
//! organization. An invitation is accepted only by one of these forms' posts, with the
//! invitation shown: a provider round trip (which a link from another site can start) lands
//! back here signed in, or with its identity waiting for the "create account and join" click. A link that leads nowhere gets a page saying why: 400 (no such invitation), 403
//! (invitations off, or signing in on one outside `multi` mode), 410 (expired, withdrawn, used).

use axum::http::{StatusCode, Uri};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::copy::{self, Failure, Unavailable};
use super::fields::{self, Password};
use super::layout::alert;
use super::{CsrfForm, PageCtx, PageError, PageQuery, UserForm, audience_for};
use crate::config::OrgMode;
use crate::domain::{Audience, ChallengePurpose, EmailAddress, InvitationStatus, NewPassword, OrgRole};
use crate::http::extract::Client;
use crate::services::accounts::{Invited, InvitedLoginError, SignupError};
use crate::services::auth::Principal;
use crate::services::challenges::ChallengeError;
use crate::services::invitations::InvitationPreview;
use crate::services::oauth::{OAuthError, PendingSignup};
use crate::services::organizations::SwitchError;
use crate::services::return_to;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TokenForm {
    token: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct InviteForm {
    token: String,
    password: String,
    /// A pending signup with a provider identity (see `services::oauth::invited`).
    signup_id: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignupQuery {
    token: String,
    signup_id: String,
}

/// The form's token, else the query's (`POST /auth/invitations/signup?token=…`).
fn token_of(form: &str, uri: &Uri) -> String {
    let form = form.trim();
    if !form.is_empty() {
        return form.to_owned();
    }
    let query = uri.query().and_then(|q| serde_urlencoded::from_str::<TokenForm>(q).ok()).unwrap_or_default();
    query.token.trim().to_owned()
}

fn mode(ctx: &PageCtx) -> OrgMode {
    ctx.state().config.org_mode
}

/// `/auth/invitations/{page}?token=…`, carrying this request's `return_to`.
fn page_url(ctx: &PageCtx, page: &str, token: &str) -> String {
    let rt = ctx.rt_query().replacen('?', "&", 1);
    format!("/auth/invitations/{page}?token={}{rt}", return_to::encode(token))
}

/// The `return_to` of a provider sign-in from an invitation page: the page itself (which makes
/// the sign-in the invitation's flow, behavior.md §7.2). The page's own `return_to` rides along
/// when it is a plain path (a nested, percent-encoded one would not pass as a safe `return_to`);
/// otherwise the browser lands on the default path once joined.
fn provider_return(ctx: &PageCtx, page: &str, token: &str) -> String {
    let base = format!("/auth/invitations/{page}?token={}", return_to::encode(token));
    match ctx.return_to_param.as_deref() {
        Some(rt)
            if !rt.contains(['?', '&', '#', '%', '+']) && return_to::is_safe(&format!("{base}&return_to={rt}")) =>
        {
            format!("{base}&return_to={rt}")
        }
        _ => base,
    }
}

fn role_phrase(role: OrgRole) -> &'static str {
    match role {
        OrgRole::Owner => "an owner",
        OrgRole::Admin => "an admin",
        OrgRole::Member => "a member",
    }
}

/// The page of a link that leads nowhere.
fn unavailable(ctx: &PageCtx, u: Unavailable, sign_in: bool) -> Response {
    let body = html! {
        div.card {
            h1 { (u.title) }
            p.lead { (u.message) }
            div.actions {
                @if sign_in { a.button href="/auth/login" { "Sign in" } }
                a.button.secondary[sign_in] href="/" { "Go to the home page" }
            }
        }
    };
    ctx.html(u.status, u.title, body)
}

/// The pending invitation behind `token`, or the page that says why there is none.
async fn pending(ctx: &PageCtx, token: &str) -> Result<Result<InvitationPreview, Response>, PageError> {
    let token = token.trim();
    if token.is_empty() {
        return Ok(Err(unavailable(ctx, copy::INVITATION_INVALID, false)));
    }
    if mode(ctx) == OrgMode::Personal {
        return Ok(Err(unavailable(ctx, copy::INVITATIONS_OFF, false)));
    }
    let Some(preview) = ctx.state().services.invitations().preview(token).await? else {
        return Ok(Err(unavailable(ctx, copy::INVITATION_INVALID, false)));
    };
    let status = preview.invitation.status;
    if let Some(u) = copy::invitation_status(status) {
        return Ok(Err(unavailable(ctx, u, status == InvitationStatus::Accepted)));
    }
    Ok(Ok(preview))
}

/// After a service refused the invitation: the page saying why when it is no longer pending,
/// else `fallback` on the form.
async fn refused(ctx: &PageCtx, token: &str, fallback: Failure) -> Result<Result<Failure, Response>, PageError> {
    Ok(match pending(ctx, token).await? {
        Err(page) => Err(page),
        Ok(_) => Ok(fallback),
    })
}

/// The invitation in a sentence: "… to join Acme as a member."
fn invited(p: &InvitationPreview) -> Markup {
    html! { "to join " strong { (p.organization) } " as " (role_phrase(p.invitation.row.role)) "." }
}

fn landing_card(ctx: &PageCtx, p: &InvitationPreview, token: &str) -> Markup {
    let (signup, login) = (page_url(ctx, "signup", token), page_url(ctx, "login", token));
    html! {
        div.card {
            h1 { "Join " (p.organization) }
            p.lead { "You are invited " (invited(p)) }
            dl.facts {
                dt { "Organization" } dd { (p.organization) }
                dt { "Invited email" } dd { (p.invitation.row.email) }
            }
            div.actions {
                @if p.account_exists {
                    a.button href=(login) { "Sign in to accept" }
                    a.button.secondary href=(signup) { "Create an account" }
                } @else {
                    a.button href=(signup) { "Create an account" }
                    a.button.secondary href=(login) { "I already have an account" }
                }
            }
        }
    }
}

fn signup_card(ctx: &PageCtx, p: &InvitationPreview, token: &str, error: Option<&str>) -> Markup {
    html! {
        div.card {
            h1 { "Join " (p.organization) }
            p.lead { "Create your account " (invited(p)) }
            (alert("error", error))
            form method="post" action={ "/auth/invitations/signup" (ctx.rt_query()) } {
                (fields::csrf(&ctx.csrf))
                input type="hidden" name="token" value=(token);
                (fields::fixed_email("invited-email", "Email", &p.invitation.row.email))
                (fields::password("password", "Password", Password::New, true))
                button type="submit" { "Create account and join" }
            }
            (super::oauth::invitation_buttons(ctx, &provider_return(ctx, "signup", token)))
            @if mode(ctx) == OrgMode::Multi {
                p.switch { "Already have an account? " a href=(page_url(ctx, "login", token)) { "Sign in to accept" } }
            }
        }
    }
}

/// The invitation's signup page after a provider round trip: create the account with that
/// identity and join, by this click (never by the round trip itself).
fn provider_signup_card(ctx: &PageCtx, p: &InvitationPreview, token: &str, pending: &PendingSignup) -> Markup {
    html! {
        div.card {
            h1 { "Join " (p.organization) }
            p.lead { "Create your account with " (pending.provider_display) " " (invited(p)) }
            dl.facts {
                dt { "Organization" } dd { (p.organization) }
                dt { "Email" } dd { (pending.email) }
                dt { "Sign in with" } dd { (pending.provider_display) }
            }
            form method="post" action={ "/auth/invitations/signup" (ctx.rt_query()) } {
                (fields::csrf(&ctx.csrf))
                input type="hidden" name="token" value=(token);
                input type="hidden" name="signup_id" value=(pending.id);
                button type="submit" { "Create account and join" }
            }
            p.switch { a href=(page_url(ctx, "signup", token)) { "Use a password instead" } }
        }
    }
}

fn login_card(ctx: &PageCtx, p: &InvitationPreview, token: &str, error: Option<&str>) -> Markup {
    let back = return_to::encode(&format!("/auth/invitations/login?token={}", return_to::encode(token)));
    html! {
        div.card {
            h1 { "Join " (p.organization) }
            p.lead { "Sign in " (invited(p)) }
            (alert("error", error))
            form method="post" action={ "/auth/invitations/login" (ctx.rt_query()) } data-login-form {
                (fields::csrf(&ctx.csrf))
                input type="hidden" name="token" value=(token);
                (fields::fixed_email("invited-email", "Email", &p.invitation.row.email))
                (fields::password("password", "Password", Password::Current, true))
                button type="submit" { "Sign in and join" }
            }
            (super::oauth::invitation_buttons(ctx, &provider_return(ctx, "login", token)))
            p.switch { a href={ "/auth/password-reset?return_to=" (back) } { "Forgot your password?" } }
            p.switch { "No account yet? " a href=(page_url(ctx, "signup", token)) { "Create one" } }
        }
    }
}

/// The invited address has an account: signing up is not the way.
fn account_exists_card(ctx: &PageCtx, p: &InvitationPreview, token: &str) -> Markup {
    html! {
        div.card {
            h1 { "Join " (p.organization) }
            p.lead { "You are invited " (invited(p)) }
            (alert("error", Some(copy::invited_account_exists(mode(ctx)))))
            div.actions {
                @if mode(ctx) == OrgMode::Multi {
                    a.button href=(page_url(ctx, "login", token)) { "Sign in to accept" }
                } @else {
                    a.button href="/" { "Go to the home page" }
                }
            }
        }
    }
}

/// Signing in on an invitation whose address has no account yet.
fn no_account_card(ctx: &PageCtx, p: &InvitationPreview, token: &str) -> Markup {
    html! {
        div.card {
            h1 { "Join " (p.organization) }
            p.lead { "No account uses " strong { (p.invitation.row.email) } " yet. Create yours to accept the invitation." }
            div.actions { a.button href=(page_url(ctx, "signup", token)) { "Create an account" } }
        }
    }
}

/// The signed-in invitee's page: the invitation, the account it would join, and the choice.
fn accept_card(ctx: &PageCtx, p: &InvitationPreview, token: &str, notice: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        div.card {
            h1 { "Join " (p.organization) }
            p.lead { "You are invited " (invited(p)) }
            (alert("success", notice))
            (alert("error", error))
            p.meta { "You are signed in as " strong { (p.invitation.row.email) } "." }
            form method="post" action={ "/auth/invitations/accept" (ctx.rt_query()) } {
                (fields::csrf(&ctx.csrf))
                input type="hidden" name="token" value=(token);
                button type="submit" { "Accept the invitation" }
            }
            p.switch { a href=(ctx.return_to) { "Not now" } }
        }
    }
}

/// The signed-in app user, or `None` for a visitor (a refused refresh counts as one).
async fn visitor(ctx: &PageCtx) -> Result<Option<Principal>, PageError> {
    match ctx.user().await {
        Ok(who) => Ok(Some(who)),
        Err(PageError::Unauthenticated { .. } | PageError::NotAllowed) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn email_of(ctx: &PageCtx, who: &Principal) -> Result<String, PageError> {
    let me = ctx.state().services.profiles().user(who).await.map_err(copy::profile_read)?;
    Ok(me.email)
}

/// `GET /auth/invitations/accept?token=…`.
pub async fn accept_page(ctx: PageCtx, PageQuery(q): PageQuery<TokenForm>) -> Result<Response, PageError> {
    let p = match pending(&ctx, &q.token).await? {
        Ok(p) => p,
        Err(page) => return Ok(page),
    };
    let token = q.token.trim();
    let title = format!("Join {}", p.organization);
    let who = visitor(&ctx).await?;
    let body = match (mode(&ctx), who) {
        (OrgMode::Multi, None) => landing_card(&ctx, &p, token),
        (OrgMode::Multi, Some(who)) => {
            let email = email_of(&ctx, &who).await?;
            if email == p.invitation.row.email {
                let (notice, error) = ctx.take_flash();
                accept_card(&ctx, &p, token, notice.as_deref(), error.as_deref())
            } else {
                html! {
                    div.card {
                        h1 { (title) }
                        p.lead { "This invitation is for " strong { (p.invitation.row.email) } ", and you are signed in as " (email) "." }
                        div.actions {
                            a.button href=(page_url(&ctx, "login", token)) { "Sign in as " (p.invitation.row.email) }
                            a.button.secondary href=(page_url(&ctx, "signup", token)) { "Create an account for " (p.invitation.row.email) }
                        }
                    }
                }
            }
        }
        (OrgMode::Single | OrgMode::Personal, who) => {
            let member = match &who {
                Some(who) => {
                    let mine = ctx.state().services.organizations().mine(who).await?;
                    mine.iter().any(|m| m.organization.id == p.invitation.row.organization_id)
                }
                None => false,
            };
            if member {
                html! {
                    div.card {
                        h1 { "You are already a member of " (p.organization) }
                        p.lead { "Your account belongs to this organization; there is nothing to accept." }
                        a.button href="/" { "Continue" }
                    }
                }
            } else if p.account_exists {
                let card = account_exists_card(&ctx, &p, token);
                return Ok(ctx.html(StatusCode::UNPROCESSABLE_ENTITY, &title, card));
            } else {
                signup_card(&ctx, &p, token, None)
            }
        }
    };
    Ok(ctx.html(StatusCode::OK, &title, body))
}

/// `POST /auth/invitations/accept` (`multi` mode, signed in): joins the organization, moves
/// the session there, and goes on to `return_to`.
pub async fn accept(ctx: PageCtx, UserForm(who, form): UserForm<TokenForm>) -> Result<Response, PageError> {
    if mode(&ctx) != OrgMode::Multi {
        return Err(PageError::Forbidden("invitation page outside multi mode"));
    }
    let state = ctx.state().clone();
    let orgs = state.services.organizations();
    let token = form.token.trim();
    let failure: Failure = match state.services.invitations().accept(&who, token).await {
        Ok(accepted) => {
            match orgs.switch(&who, accepted.organization_id, Audience::App).await {
                Ok(issued) => ctx.set_session(&issued),
                // The membership stands; the session stays where it was.
                Err(
                    SwitchError::ModeForbids
                    | SwitchError::SessionInvalid
                    | SwitchError::NotMember
                    | SwitchError::Disabled
                    | SwitchError::AudienceForbidden,
                ) => {}
                Err(SwitchError::Token(t)) => return Err(PageError::internal(&t)),
                Err(SwitchError::Store(s)) => return Err(s.into()),
            }
            return Ok(ctx.redirect(&ctx.return_to));
        }
        Err(e) => copy::invitation(e)?,
    };
    match pending(&ctx, token).await? {
        Ok(p) => {
            let card = accept_card(&ctx, &p, token, None, Some(failure.message));
            Ok(ctx.html(failure.status, "Invitation", card))
        }
        Err(page) => Ok(page),
    }
}

/// `GET /auth/invitations/signup?token=…[&signup_id=…]`: the signup form for the invited
/// address, or, after a provider round trip made in this browser, the offer to create the
/// account with that identity.
pub async fn signup_page(ctx: PageCtx, PageQuery(q): PageQuery<SignupQuery>) -> Result<Response, PageError> {
    let p = match pending(&ctx, &q.token).await? {
        Ok(p) => p,
        Err(page) => return Ok(page),
    };
    let token = q.token.trim();
    let title = format!("Join {}", p.organization);
    // A provider sign-in refused here says why (behavior.md §9.3).
    let (_, error) = ctx.take_flash();
    if p.account_exists {
        return Ok(ctx.html(StatusCode::UNPROCESSABLE_ENTITY, &title, account_exists_card(&ctx, &p, token)));
    }
    if !q.signup_id.is_empty() {
        let oauth = ctx.state().services.oauth();
        match oauth.pending_signup(&q.signup_id, ctx.link_binding()).await {
            Ok(s) if s.invitation_id == p.invitation.row.id => {
                return Ok(ctx.html(StatusCode::OK, &title, provider_signup_card(&ctx, &p, token, &s)));
            }
            Ok(_) | Err(OAuthError::UnknownLink) => {
                let failure = copy::oauth(OAuthError::UnknownLink)?;
                return Ok(ctx.html(failure.status, &title, signup_card(&ctx, &p, token, Some(failure.message))));
            }
            Err(e) => return Err(copy::oauth(e).err().unwrap_or(PageError::NotFound)),
        }
    }
    Ok(ctx.html(StatusCode::OK, &title, signup_card(&ctx, &p, token, error.as_deref())))
}

/// `POST /auth/invitations/signup`: form `token`, `password`. With challenges on, the code page
/// (verifying it completes the signup in the invited organization); else the account, the
/// acceptance and the session in the invited organization at once, then `return_to`.
pub async fn signup(
    ctx: PageCtx,
    Client(client): Client,
    uri: Uri,
    CsrfForm(form): CsrfForm<InviteForm>,
) -> Result<Response, PageError> {
    if audience_for(&ctx.return_to) != Audience::App {
        return Err(PageError::Forbidden("invitation signup for the admin audience"));
    }
    let token = token_of(&form.token, &uri);
    let p = match pending(&ctx, &token).await? {
        Ok(p) => p,
        Err(page) => return Ok(page),
    };
    let title = format!("Join {}", p.organization);
    if p.account_exists {
        return Ok(ctx.html(StatusCode::UNPROCESSABLE_ENTITY, &title, account_exists_card(&ctx, &p, &token)));
    }
    let services = &ctx.state().services;
    if !form.signup_id.trim().is_empty() {
        let result = services.oauth().confirm_signup(&form.signup_id, ctx.link_binding(), &client).await;
        return match result {
            Ok(signed) => {
                let next = ctx.finish(signed, &ctx.return_to).await;
                Ok(ctx.redirect(&next))
            }
            Err(e) => {
                let failure = copy::oauth(e)?;
                match refused(&ctx, &token, failure).await? {
                    Ok(f) => Ok(ctx.html(f.status, &title, signup_card(&ctx, &p, &token, Some(f.message)))),
                    Err(page) => Ok(page),
                }
            }
        };
    }
    let result = match NewPassword::parse(&form.password) {
        Err(e) => Ok(copy::input(e)),
        Ok(password) if ctx.state().config.challenge.enabled => {
            let email = EmailAddress::from_stored(p.invitation.row.email.clone());
            match services.challenges().start_signup(&email, Some(&password), Some(&token), &client).await {
                Ok(id) => return Ok(super::challenge::verify_page(&ctx, ChallengePurpose::Signup, id, None, None)),
                Err(ChallengeError::InvalidInvitation) => {
                    refused(&ctx, &token, copy::challenge(ChallengeError::InvalidInvitation)?).await?
                }
                Err(e) => Ok(copy::challenge(e)?),
            }
        }
        Ok(password) => {
            let email = EmailAddress::from_stored(p.invitation.row.email.clone());
            let invited = Invited { code: &token, land_there: true };
            match services.accounts().signup(&email, &password, Some(invited), &client).await {
                Ok(signed) => {
                    let next = ctx.finish(signed, &ctx.return_to).await;
                    return Ok(ctx.redirect(&next));
                }
                Err(SignupError::InvalidInvitation) => {
                    refused(&ctx, &token, copy::signup(SignupError::InvalidInvitation)?).await?
                }
                Err(e) => Ok(copy::signup(e)?),
            }
        }
    };
    match result {
        Ok(failure) => Ok(ctx.html(failure.status, &title, signup_card(&ctx, &p, &token, Some(failure.message)))),
        Err(page) => Ok(page),
    }
}

/// `GET /auth/invitations/login?token=…` (`multi` mode): the sign-in form for the invited
/// address.
pub async fn login_page(ctx: PageCtx, PageQuery(q): PageQuery<TokenForm>) -> Result<Response, PageError> {
    if mode(&ctx) != OrgMode::Multi {
        return Ok(unavailable(&ctx, copy::INVITATION_LOGIN_OFF, false));
    }
    let p = match pending(&ctx, &q.token).await? {
        Ok(p) => p,
        Err(page) => return Ok(page),
    };
    let token = q.token.trim();
    let title = format!("Join {}", p.organization);
    let (_, error) = ctx.take_flash();
    if !p.account_exists {
        return Ok(ctx.html(StatusCode::OK, &title, no_account_card(&ctx, &p, token)));
    }
    Ok(ctx.html(StatusCode::OK, &title, login_card(&ctx, &p, token, error.as_deref())))
}

/// `POST /auth/invitations/login` (`multi` mode): form `token`, `password`. Signs in as the
/// invited address, accepts, and lands in the invited organization at `return_to`.
pub async fn login(
    ctx: PageCtx,
    Client(client): Client,
    uri: Uri,
    CsrfForm(form): CsrfForm<InviteForm>,
) -> Result<Response, PageError> {
    if mode(&ctx) != OrgMode::Multi {
        return Ok(unavailable(&ctx, copy::INVITATION_LOGIN_OFF, false));
    }
    let token = token_of(&form.token, &uri);
    let p = match pending(&ctx, &token).await? {
        Ok(p) => p,
        Err(page) => return Ok(page),
    };
    let title = format!("Join {}", p.organization);
    if !p.account_exists {
        return Ok(ctx.html(StatusCode::UNPROCESSABLE_ENTITY, &title, no_account_card(&ctx, &p, &token)));
    }
    let result = if form.password.is_empty() {
        Ok(Failure { status: StatusCode::BAD_REQUEST, message: "Enter your password." })
    } else {
        let accounts = ctx.state().services.accounts();
        match accounts.login_invited(&token, &form.password, &client, ctx.device_token()).await {
            Ok(signed) => {
                let next = ctx.finish(signed, &ctx.return_to).await;
                return Ok(ctx.redirect(&next));
            }
            Err(InvitedLoginError::Invitation(e)) => refused(&ctx, &token, copy::invitation(e)?).await?,
            Err(e) => Ok(copy::invited_login(e)?),
        }
    };
    match result {
        Ok(failure) => Ok(ctx.html(failure.status, &title, login_card(&ctx, &p, &token, Some(failure.message)))),
        Err(page) => Ok(page),
    }
}
