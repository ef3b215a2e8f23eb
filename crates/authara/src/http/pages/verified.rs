//! A sign-in provider verified someone (the code flow's callback, Google's page callback):
//! where the browser goes next, and how a failure before anyone is signed in reads.

use super::{Flash, PageCtx, PageError, audience_for, copy};
use crate::domain::ClientInfo;
use crate::services::oauth::{Identity, InvitationTarget, OAuthError, SignInOutcome};
use crate::services::return_to;
use axum::response::Response;

/// A failure before anyone is signed in: a flash, then the login page.
pub fn fail_to_login(ctx: &PageCtx, e: OAuthError) -> Result<Response, PageError> {
    ctx.flash(Flash::Error, copy::oauth(e)?.message);
    Ok(ctx.redirect(&ctx.login_url()))
}

/// A provider verified `identity` for a sign-in started from `return_to`: where the browser
/// goes next (the code flow's callback and Google's page callback alike).
/// - Signed in: the session is set (replacing whoever was signed in here), on to `return_to`;
///   from an invitation page, on to the invitation's accept page, where the person accepts.
/// - An existing account without this identity: its recovery-link page, bound to this browser.
/// - From an invitation page, a new identity for the invited address: the invitation's signup
///   page, which offers to create the account with it and join (bound to this browser).
/// - Refused: back to the invitation page, or the login page, saying why.
pub async fn provider_signed_in(
    ctx: &PageCtx,
    client: &ClientInfo,
    identity: &Identity,
    return_to: &str,
) -> Result<String, PageError> {
    let oauth = ctx.state().services.oauth();
    let invitation = InvitationTarget::parse(return_to);
    let outcome = match &invitation {
        Some(target) => oauth.sign_in_from_invitation(identity, target, client).await,
        None => oauth.sign_in(identity, audience_for(return_to), client, Some(return_to)).await,
    };
    match outcome {
        Ok(SignInOutcome::SignedIn(signed)) => {
            let then = match &invitation {
                Some(target) => {
                    ctx.flash(Flash::Success, copy::done::INVITATION_SIGNED_IN);
                    target.accept_page()
                }
                None => return_to.to_owned(),
            };
            Ok(ctx.finish(signed, &then).await)
        }
        Ok(SignInOutcome::LinkRequired { link_id, binding }) => {
            ctx.bind_link(&binding);
            // The link keeps the accept page's token hashed: this browser keeps the token.
            if let Some(target) = &invitation {
                ctx.remember_invitation_token(&target.token);
            }
            let then = invitation.as_ref().map_or_else(|| return_to.to_owned(), InvitationTarget::accept_page);
            Ok(format!("/auth/provider-links/confirm?link_id={link_id}&return_to={}", return_to::encode(&then)))
        }
        Ok(SignInOutcome::SignupPending { signup_id, binding }) => {
            ctx.bind_link(&binding);
            let page = invitation.as_ref().map_or_else(|| "/auth/login".to_owned(), |t| t.page_url("signup"));
            Ok(format!("{page}&signup_id={signup_id}"))
        }
        Err(e) => {
            ctx.flash(Flash::Error, copy::oauth(e)?.message);
            Ok(match invitation {
                Some(_) => return_to.to_owned(),
                None => ctx.login_url(),
            })
        }
    }
}

/// Where a recovery link goes once confirmed: the `return_to` it stored (an invitation page's
/// token taken back from this browser), else this request's; the default when the stored one
/// names an invitation this browser does not hold.
pub fn stored_return_to(ctx: &PageCtx, stored: Option<&str>) -> String {
    match stored.filter(|r| ctx.state().config.sites.return_hosts.allows(r)) {
        Some(r) => ctx.restore_return_to(r).unwrap_or_else(|| ctx.state().config.default_return_to.clone()),
        None => ctx.return_to.clone(),
    }
}
