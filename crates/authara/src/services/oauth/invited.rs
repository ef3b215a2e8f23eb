//! Provider sign-in on the invitation pages (behavior.md §7.2 `flow=login`, §9.3): when a
//! sign-in's `return_to` is `/auth/invitations/{signup|login}?token=…`, the provider round trip
//! never accepts the invitation by itself. A link from another site can start that round trip
//! in a victim's browser, so acceptance waits for the person's own click on our page:
//!
//! - an identity that has an account (linked, or by its email through the recovery link) signs
//!   in as any provider sign-in does and lands on the invitation's accept page, signed in, where
//!   the Accept button joins;
//! - a new identity whose verified email is the invited address gets a pending signup, bound to
//!   this browser: the invitation's signup page offers "create the account and join" with it,
//!   and that form's post creates the account, links the identity, accepts the invitation and
//!   starts the session in the invited organization, in one transaction.
//!
//! As for the password invitation pages, the allowlist admits the address on the strength of
//! the pending invitation.

use uuid::Uuid;

use super::{Identity, OAuth, OAuthError, SignInOutcome, bound, new_binding, refused};
use crate::config::OrgMode;
use crate::domain::{Audience, ClientInfo};
use crate::services::accounts::{Completion, NewAccount};
use crate::services::audit::Actor;
use crate::services::invitations::{AcceptError, Which};
use crate::services::signin::{Method, StartIn, Verified};
use crate::store::providers::NewPendingSignup;

/// How long a pending signup waits for its form to be posted.
const SIGNUP_TTL_MS: i64 = 10 * 60_000;

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

    /// The invitation's accept page, where a signed-in visitor accepts (carrying the
    /// invitation page's own `return_to`).
    pub fn accept_page(&self) -> String {
        self.page_url("accept")
    }

    /// `/auth/invitations/{page}?token=…`, carrying the invitation page's own `return_to` when
    /// it is a plain path (a nested, percent-encoded one would not pass as a safe `return_to`).
    pub fn page_url(&self, page: &str) -> String {
        let base = format!("/auth/invitations/{page}?token={}", crate::services::return_to::encode(&self.token));
        match &self.next {
            Some(next) if !next.contains(['?', '&', '#', '%', '+']) => format!("{base}&return_to={next}"),
            _ => base,
        }
    }
}

/// The query parameter that stands for an invitation page's `token` in a stored `return_to`:
/// the token's SHA-256 (hex), as the invitation itself keeps it.
const TOKEN_AT_REST: &str = "token_sha256";

fn token_digest(token: &str) -> String {
    use std::fmt::Write as _;
    crate::services::sessions::hash_refresh_token(token.trim()).iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `url` with the value of each query parameter named `from` passed through `f` (`None`:
/// nothing to do) and renamed `to`; every other byte stays as it was (`None` when no such
/// parameter is there or `f` refuses).
fn replace_param(url: &str, from: &str, to: &str, f: impl Fn(&str) -> Option<String>) -> Option<String> {
    let (path, query) = url.split_once('?')?;
    let mut found = false;
    let mut parts = Vec::new();
    for part in query.split('&') {
        match part.split_once('=') {
            Some((k, v)) if k == from => {
                let value = crate::services::return_to::percent_decode(v)?;
                parts.push(format!("{to}={}", crate::services::return_to::encode(&f(&value)?)));
                found = true;
            }
            _ => parts.push(part.to_owned()),
        }
    }
    found.then(|| format!("{path}?{}", parts.join("&")))
}

/// The `token` of an invitation page URL (`/auth/invitations/…?token=…`), if there is one.
pub fn invitation_token_of(url: &str) -> Option<String> {
    let (path, query) = url.split('#').next().unwrap_or_default().split_once('?')?;
    if !path.starts_with("/auth/invitations/") {
        return None;
    }
    let raw = query.split('&').filter_map(|p| p.split_once('=')).find(|(k, _)| *k == "token")?.1;
    crate::services::return_to::percent_decode(raw).map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

/// Invitation tokens never rest in the database inside a `return_to` (a provider flow's, a
/// recovery link's): an invitation page's `token` is stored as its SHA-256, and put back from
/// what the browser still holds when the flow comes back ([`restore_return_to`]).
pub fn return_to_at_rest(return_to: &str) -> String {
    if !return_to.starts_with("/auth/invitations/") {
        return return_to.to_owned();
    }
    replace_param(return_to, "token", TOKEN_AT_REST, |t| Some(token_digest(t))).unwrap_or_else(|| return_to.to_owned())
}

/// A stored `return_to` made whole again: an invitation page's token put back from `tokens`
/// (the ones the browser presents), the one whose SHA-256 was stored. `None` when it was
/// stored without its token and none of `tokens` is it (the flow cannot go on to the page);
/// any other `return_to` comes back as it is.
pub fn restore_return_to(stored: &str, tokens: &[&str]) -> Option<String> {
    use subtle::ConstantTimeEq as _;
    let hashed = stored
        .split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|p| p.split_once('=').is_some_and(|(k, _)| k == TOKEN_AT_REST)));
    if !hashed {
        return Some(stored.to_owned());
    }
    replace_param(stored, TOKEN_AT_REST, "token", |digest| {
        let token = tokens.iter().find(|t| bool::from(token_digest(t).as_bytes().ct_eq(digest.as_bytes())))?;
        Some(token.trim().to_owned())
    })
}

/// A pending signup, as the invitation's signup page offers it.
#[derive(Debug, Clone)]
pub struct PendingSignup {
    pub id: Uuid,
    pub provider: String,
    pub provider_display: String,
    pub email: String,
    pub invitation_id: Uuid,
}

impl OAuth {
    /// A verified identity coming back to the invitation page `target` (see the module docs).
    pub async fn sign_in_from_invitation(
        &self,
        identity: &Identity,
        target: &InvitationTarget,
        client: &ClientInfo,
    ) -> Result<SignInOutcome, OAuthError> {
        if self.core.config.org_mode == OrgMode::Personal {
            return Err(OAuthError::Invitation(AcceptError::Disabled));
        }
        let invitation = self.invitations.pending(&target.token).await?;
        let linked = self.core.store.user_by_provider(&identity.provider, &identity.subject).await?;
        let taken = self.core.store.user_by_email(&identity.email).await?;
        if linked.is_some() || taken.is_some() {
            return self.sign_in(identity, Audience::App, client, Some(&target.accept_page())).await;
        }
        if invitation.email != identity.email.as_str() {
            return Err(OAuthError::Invitation(AcceptError::WrongEmail));
        }
        let (binding, binding_hash) = new_binding();
        let id = Uuid::new_v4();
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        tx.insert_pending_signup(&NewPendingSignup {
            id,
            invitation_id: invitation.id,
            provider: &identity.provider,
            provider_user_id: &identity.subject,
            provider_email: identity.email.as_str(),
            binding_hash: &binding_hash,
            expires_at_ms: now.saturating_add(SIGNUP_TTL_MS),
            now_ms: now,
        })
        .await?;
        tx.commit().await?;
        Ok(SignInOutcome::SignupPending { signup_id: id, binding })
    }

    /// A valid pending signup made in this browser (`binding`), for the invitation's signup page.
    pub async fn pending_signup(&self, id: &str, binding: Option<&str>) -> Result<PendingSignup, OAuthError> {
        let id = Uuid::parse_str(id.trim()).map_err(|_| OAuthError::UnknownLink)?;
        let row = self.core.store.pending_signup(id).await?.ok_or(OAuthError::UnknownLink)?;
        if row.consumed_at_ms.is_some()
            || row.expires_at_ms <= self.core.now_ms()
            || !bound(Some(&row.binding_hash), binding)
        {
            return Err(OAuthError::UnknownLink);
        }
        Ok(PendingSignup {
            id: row.id,
            provider_display: self.display_name(&row.provider),
            provider: row.provider,
            email: row.provider_email,
            invitation_id: row.invitation_id,
        })
    }

    /// The invitation signup page's post with a pending signup: the account for the invited
    /// address with the identity, the accepted invitation and an app session in the invited
    /// organization, in one transaction.
    pub async fn confirm_signup(
        &self,
        id: &str,
        binding: Option<&str>,
        client: &ClientInfo,
    ) -> Result<Completion, OAuthError> {
        let id = Uuid::parse_str(id.trim()).map_err(|_| OAuthError::UnknownLink)?;
        let now = self.core.now_ms();
        let mut tx = self.core.store.begin().await?;
        let row = tx.pending_signup_for_update(id).await?.ok_or(OAuthError::UnknownLink)?;
        if row.consumed_at_ms.is_some()
            || row.expires_at_ms <= now
            || !bound(Some(&row.binding_hash), binding)
            || !tx.consume_pending_signup(row.id, now).await?
        {
            return Err(OAuthError::UnknownLink);
        }
        let email = crate::domain::EmailAddress::from_stored(row.provider_email.clone());
        let new = NewAccount { email: &email, password_hash: None, invited: true, verified: true };
        let Some(user) = self.accounts.create_user(&mut tx, &new, &Actor::anonymous(client)).await? else {
            return Err(OAuthError::InvitedAccountExists);
        };
        let identity = Identity { provider: row.provider.clone(), subject: row.provider_user_id.clone(), email };
        self.link_new(&mut tx, &user, &identity, "invitation", client).await?;
        let accepted = self.invitations.join(&mut tx, Which::Id(row.invitation_id), &user, client).await?;
        let verified = Verified::new(user, Method::Provider { name: row.provider })
            .with("created", true)
            .with("invitation_id", row.invitation_id.to_string());
        let start_in = StartIn::Organization(accepted.organization_id);
        self.signins.complete(tx, verified, Audience::App, start_in, client).await.map_err(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitation_tokens_rest_as_their_hash_and_come_back_only_with_the_token() {
        let page = "/auth/invitations/login?token=abc_-1&return_to=%2Fwelcome";
        let stored = return_to_at_rest(page);
        assert!(!stored.contains("abc_-1") && stored.contains("token_sha256="), "{stored}");
        let back = restore_return_to(&stored, &["other", "abc_-1"]).unwrap();
        let t = InvitationTarget::parse(&back).unwrap();
        assert_eq!((t.page, t.token.as_str(), t.next.as_deref()), (InvitationPage::Login, "abc_-1", Some("/welcome")));
        assert_eq!(restore_return_to(&stored, &["other"]), None, "another token does not open it");
        assert_eq!(restore_return_to(&stored, &[]), None);
        let accept = return_to_at_rest("/auth/invitations/accept?token=xyz");
        assert_eq!(restore_return_to(&accept, &["xyz"]).as_deref(), Some("/auth/invitations/accept?token=xyz"));
        assert_eq!(invitation_token_of("/auth/invitations/accept?token=xyz&return_to=%2Fa").as_deref(), Some("xyz"));
        assert_eq!(invitation_token_of("/app?token=xyz"), None);
        for plain in ["/", "/after?x=1", "/auth/account", "/auth/invitations/login", "/app?token=not-an-invitation"] {
            assert_eq!(return_to_at_rest(plain), plain);
            assert_eq!(restore_return_to(plain, &[]).as_deref(), Some(plain), "{plain}");
        }
    }

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
