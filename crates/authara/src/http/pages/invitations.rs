//! `/auth/invitations/accept?token=…`, the link of the invitation email (behavior.md §9.3), for
//! a signed-in user in `multi` mode: the organization and an Accept button; accepting joins it
//! and moves the session there. Visitors who are not signed in are asked to sign in first (and
//! come back here); signing up on the invitation, and `single` mode's signup form, are not built
//! yet: such invitations are accepted by signing up with the invitation code through the API.

use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::copy::{self, Failure};
use super::layout::alert;
use super::{CsrfForm, PageCtx, PageError, PageQuery, fields};
use crate::config::OrgMode;
use crate::domain::{Audience, InvitationStatus};
use crate::services::organizations::{Invitation, SwitchError};
use crate::services::return_to;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TokenForm {
    token: String,
}

fn unavailable(ctx: &PageCtx, status: StatusCode, message: &str) -> Response {
    let body = html! {
        div.card {
            h1 { "Invitation unavailable" }
            p.lead { (message) }
            a.button href="/" { "Go to the home page" }
        }
    };
    ctx.html(status, "Invitation unavailable", body)
}

fn accept_card(ctx: &PageCtx, org: &str, inv: &Invitation, token: &str, error: Option<&str>) -> Markup {
    html! {
        div.card {
            h1 { "Join " (org) }
            p.lead { "You are invited to join " strong { (org) } " as " (inv.row.role.as_str()) "." }
            (alert("error", error))
            form method="post" action="/auth/invitations/accept" {
                (fields::csrf(&ctx.csrf))
                input type="hidden" name="token" value=(token);
                button type="submit" { "Accept the invitation" }
            }
        }
    }
}

/// `GET /auth/invitations/accept?token=…`.
pub async fn accept_page(ctx: PageCtx, PageQuery(q): PageQuery<TokenForm>) -> Result<Response, PageError> {
    let state = ctx.state().clone();
    let services = &state.services;
    let gone = "This invitation is no longer available. Ask for a new one.";
    let Some((inv, org)) = services.organizations().preview(&q.token).await? else {
        return Ok(unavailable(&ctx, StatusCode::NOT_FOUND, gone));
    };
    if inv.status != InvitationStatus::Pending {
        return Ok(unavailable(&ctx, StatusCode::GONE, gone));
    }
    if state.config.org_mode != OrgMode::Multi {
        let here = "This invitation is accepted by creating your account with its invitation code.";
        return Ok(unavailable(&ctx, StatusCode::OK, here));
    }
    let who = match ctx.user().await {
        Ok(who) => who,
        Err(PageError::Unauthenticated { .. }) => {
            let back = format!(
                "/auth/login?return_to={}",
                return_to::encode(&format!("/auth/invitations/accept?token={}", q.token))
            );
            let body = html! {
                div.card {
                    h1 { "Join " (org) }
                    p.lead { "Sign in as " strong { (inv.row.email) } " to accept this invitation." }
                    a.button href=(back) { "Sign in" }
                }
            };
            return Ok(ctx.html(StatusCode::OK, "Invitation", body));
        }
        Err(e) => return Err(e),
    };
    let me = services.profiles().user(&who).await.map_err(|e| match copy::profile(e) {
        Ok(_) => PageError::Internal("invitation page".to_owned()),
        Err(p) => p,
    })?;
    if me.email != inv.row.email {
        let body = html! {
            div.card {
                h1 { "Join " (org) }
                p.lead { "This invitation is for " strong { (inv.row.email) } ", and you are signed in as " (me.email) ". Sign in with the invited address to accept it." }
            }
        };
        return Ok(ctx.html(StatusCode::OK, "Invitation", body));
    }
    Ok(ctx.html(StatusCode::OK, "Invitation", accept_card(&ctx, &org, &inv, &q.token, None)))
}

/// `POST /auth/invitations/accept`: joins the organization, moves the session there, and goes
/// to the default return path.
pub async fn accept(ctx: PageCtx, CsrfForm(form): CsrfForm<TokenForm>) -> Result<Response, PageError> {
    if ctx.state().config.org_mode != OrgMode::Multi {
        return Err(PageError::Forbidden("invitation page outside multi mode"));
    }
    let who = ctx.user().await?;
    let state = ctx.state().clone();
    let orgs = state.services.organizations();
    let failure: Failure = match orgs.accept(&who, &form.token).await {
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
            return Ok(ctx.redirect(&state.config.default_return_to));
        }
        Err(e) => copy::invitation(e)?,
    };
    match orgs.preview(&form.token).await? {
        Some((inv, org)) => {
            let card = accept_card(&ctx, &org, &inv, &form.token, Some(failure.message));
            Ok(ctx.html(failure.status, "Invitation", card))
        }
        None => Ok(unavailable(&ctx, failure.status, failure.message)),
    }
}
