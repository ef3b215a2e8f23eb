//! Provider sign-in on the invitation pages (behavior.md §7.2 `flow=login`, §9.3): when a
//! sign-in's `return_to` is `/auth/invitations/{signup|login}?token=…`, the identity joins the
//! invited organization instead of a plain sign-in.
//!
//! - The provider's verified email must be the invited address.
//! - From the signup page: no account may have that address (nor this identity); a new account
//!   is created with the identity (its own organization as the mode says for invited signups),
//!   accepts the invitation and starts its session in the invited organization.
//! - From the login page (`multi` mode only): the identity must already be linked to the
//!   invited account, which accepts and starts its session in the invited organization. An
//!   account with the address but without this identity gets the recovery link, carrying the
//!   invitation page: proving the account there (password or a linked Google identity) links
//!   the identity and accepts the invitation, in one transaction.
//!
//! As for the password invitation pages, the allowlist admits the address on the strength of
//! the pending invitation, and every step of a change (user, identity, acceptance, events,
//! session) is one transaction.

use serde_json::json;

use super::{Identity, OAuth, OAuthError, SignInOutcome};
use crate::config::OrgMode;
use crate::domain::{Audience, EmailAddress, OrgId};
use crate::services::accounts::SignedIn;
use crate::services::audit::Actor;
use crate::services::sessions::ClientInfo;
use crate::store::accounts::UserRow;
use crate::store::{StoreError, Tx};

/// Which invitation page a provider sign-in started from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationPage {
    /// `/auth/invitations/signup`: a new account.
    Signup,
    /// `/auth/invitations/login`: an existing account (`multi` mode).
    Login,
}

/// An invitation page named by a sign-in's `return_to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationTarget {
    pub page: InvitationPage,
    /// The invitation token (the page's `token`).
    pub token: String,
    /// The invitation page's own `return_to`, when safe: where the browser goes once joined.
    pub next: Option<String>,
}

impl InvitationTarget {
    /// The invitation page `return_to` names, if it is `/auth/invitations/signup` or
    /// `/auth/invitations/login` with a non-empty `token`.
    pub fn parse(return_to: &str) -> Option<Self> {
        let without_fragment = return_to.split('#').next().unwrap_or_default();
        let (path, query) = without_fragment.split_once('?')?;
        let page = match path {
            "/auth/invitations/signup" => InvitationPage::Signup,
            "/auth/invitations/login" => InvitationPage::Login,
            _ => return None,
        };
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
        let token = pairs.iter().find(|(k, _)| k == "token").map(|(_, v)| v.trim().to_owned())?;
        if token.is_empty() {
            return None;
        }
        let next = pairs
            .iter()
            .find(|(k, _)| k == "return_to")
            .map(|(_, v)| v.clone())
            .filter(|v| crate::services::return_to::is_safe(v) && Self::parse(v).is_none());
        Some(InvitationTarget { page, token, next })
    }
}

impl OAuth {
    /// Signs in (or up) with a verified identity from the invitation page `target`
    /// (`return_to` is that page's URL, kept by a recovery link). The session is an app
    /// session in the invited organization.
    pub async fn sign_in_invited(
        &self,
        identity: &Identity,
        target: &InvitationTarget,
        return_to: &str,
        client: &ClientInfo,
    ) -> Result<SignInOutcome, OAuthError> {
        if self.core.config.org_mode == OrgMode::Personal {
            return Err(OAuthError::Invitation(crate::services::organizations::AcceptError::Disabled));
        }
        if target.page == InvitationPage::Login && self.core.config.org_mode != OrgMode::Multi {
            return Err(OAuthError::InvitationLoginOff);
        }
        let invitation = self.organizations.pending(&target.token).await?;
        if invitation.email != identity.email.as_str() {
            return Err(OAuthError::Invitation(crate::services::organizations::AcceptError::WrongEmail));
        }
        let email = identity.email.clone();
        let linked = self.core.store.user_by_provider(&identity.provider, &identity.subject).await?;
        let by_email = self.core.store.user_by_email(&email).await?;
        let allowed = self.core.allowed(&email).await?;
        match target.page {
            InvitationPage::Signup => {
                if linked.is_some() || by_email.is_some() {
                    return Err(OAuthError::InvitedAccountExists);
                }
                self.signup_invited(identity, &target.token, allowed, client).await.map(SignInOutcome::SignedIn)
            }
            InvitationPage::Login => match (linked, by_email) {
                (Some(user), _) => {
                    let mut tx = self.core.store.begin().await?;
                    let org = self.accept_for(&mut tx, &target.token, &user, allowed, client).await?;
                    let tokens = self.sessions.create_in(&mut tx, &user, Some(org), Audience::App, client).await?;
                    let meta = json!({
                        "method": identity.provider, "audience": Audience::App.as_str(), "invitation_id": invitation.id,
                    });
                    self.core
                        .audit(&mut tx, &Actor::user(user.id, client), "user.login", Some((user.id, &user.email)), meta)
                        .await?;
                    tx.commit().await?;
                    Ok(SignInOutcome::SignedIn(SignedIn { user, tokens, device: None }))
                }
                (None, Some(existing)) => {
                    let link_id = self.create_recovery_link(existing.id, identity, return_to).await?;
                    Ok(SignInOutcome::LinkRequired { link_id })
                }
                (None, None) => Err(OAuthError::InvitedNoAccount),
            },
        }
    }

    /// A new account for the invited address with the identity, the acceptance and an app
    /// session in the invited organization, in one transaction (`user.created`, the
    /// organization events of the mode, `organization.invitation.accepted`,
    /// `organization.membership.created`).
    async fn signup_invited(
        &self,
        identity: &Identity,
        token: &str,
        allowed: bool,
        client: &ClientInfo,
    ) -> Result<SignedIn, OAuthError> {
        let now = self.core.now_ms();
        let email = &identity.email;
        let mut tx = self.core.store.begin().await?;
        let row = self.organizations.lock_by_code(&mut tx, token, email).await?;
        if !allowed {
            self.organizations.admit_in(&mut tx, &row, email, client).await?;
        }
        let own_org = self.accounts.gets_own_org(true);
        let Some(user) = self.accounts.create_user_with(&mut tx, email, None, own_org).await? else {
            return Err(OAuthError::InvitedAccountExists);
        };
        match tx.link_provider(user.id, &identity.provider, &identity.subject, now).await {
            Err(StoreError::Conflict) => return Err(OAuthError::LinkedElsewhere),
            other => other?,
        }
        let accepted = self.organizations.accept_in(&mut tx, &row, &user).await?;
        let tokens =
            self.sessions.create_in(&mut tx, &user, Some(accepted.organization_id), Audience::App, client).await?;
        let meta = json!({
            "method": identity.provider, "audience": Audience::App.as_str(), "created": true, "invitation_id": row.id,
        });
        self.core
            .audit(&mut tx, &Actor::user(user.id, client), "user.login", Some((user.id, &user.email)), meta)
            .await?;
        tx.commit().await?;
        Ok(SignedIn { user, tokens, device: None })
    }

    /// Accepts the invitation behind `token` for `user` in `tx` (the allowlist admitting the
    /// address when `allowed` is false); the invited organization.
    pub(super) async fn accept_for(
        &self,
        tx: &mut Tx,
        token: &str,
        user: &UserRow,
        allowed: bool,
        client: &ClientInfo,
    ) -> Result<OrgId, OAuthError> {
        if self.core.config.org_mode != OrgMode::Multi {
            return Err(OAuthError::InvitationLoginOff);
        }
        let email = EmailAddress::from_stored(user.email.clone());
        let row = self.organizations.lock_by_code(tx, token, &email).await?;
        if !allowed {
            self.organizations.admit_in(tx, &row, &email, client).await?;
        }
        Ok(self.organizations.accept_in(tx, &row, user).await?.organization_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitation_pages_are_recognized() {
        let t = InvitationTarget::parse("/auth/invitations/signup?token=abc_-1").unwrap();
        assert_eq!((t.page, t.token.as_str(), t.next), (InvitationPage::Signup, "abc_-1", None));
        let t = InvitationTarget::parse("/auth/invitations/login?token=abc&return_to=%2Fwelcome").unwrap();
        assert_eq!((t.page, t.next.as_deref()), (InvitationPage::Login, Some("/welcome")));
        let t = InvitationTarget::parse("/auth/invitations/login?return_to=https%3A%2F%2Fevil.example&token=x");
        assert_eq!(t.map(|t| t.next), Some(None), "an unsafe inner return_to is dropped");
        for not in [
            "/auth/invitations/accept?token=x",
            "/auth/invitations/signup",
            "/auth/invitations/signup?token=",
            "/auth/invitations/signup/?token=x",
            "/auth/login?return_to=%2Fauth%2Finvitations%2Fsignup%3Ftoken%3Dx",
            "/",
        ] {
            assert_eq!(InvitationTarget::parse(not), None, "{not}");
        }
    }
}
