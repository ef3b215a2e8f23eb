//! Finishing a sign-in: the one owner of what happens once someone is verified.
//!
//! Each sign-in method (password, email code, passkey, a provider identity, a recovery link,
//! the invitation pages) only *verifies* someone and hands a [`Verified`] to
//! [`SignIns::complete`], in the transaction that holds whatever the method wrote (a new
//! account, an accepted invitation, a consumed ceremony). The completion applies the policy
//! every sign-in shares, in that transaction:
//! - a disabled user, an address off the allowlist (an invitation admits it earlier in the
//!   same transaction), a refused audience: no session;
//! - the organization the session starts in (the user's default one, or the one an invitation
//!   just made them a member of);
//! - the session and its tokens;
//! - the `user.signed_in` event, which writes the `user.login` audit row;
//!
//! and commits. Adding a step every sign-in must take (a second factor) means changing this
//! file only.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::Core;
use super::audit::Actor;
use super::events::DomainEvent;
use super::sessions::{Issued, SessionError, Sessions};
use crate::domain::{Audience, ClientInfo, OrgId};
use crate::store::Tx;
use crate::store::accounts::{Membership, UserRow};

/// How someone proved who they are (the first factor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Password,
    /// A code sent to the address (verified signup).
    EmailCode,
    /// A passkey with user verification; `synced` when it lives in a cloud keychain.
    Passkey {
        id: Uuid,
        synced: bool,
    },
    /// An identity at a sign-in provider (`google`, `github`, a configured OpenID issuer).
    Provider {
        name: String,
    },
}

impl Method {
    /// The name the audit log shows (`metadata.method`).
    pub fn name(&self) -> &str {
        match self {
            Method::Password => "password",
            Method::EmailCode => "email_code",
            Method::Passkey { .. } => "passkey",
            Method::Provider { name } => name,
        }
    }
}

/// Someone a sign-in method verified.
#[derive(Debug, Clone)]
pub struct Verified {
    pub user: UserRow,
    pub method: Method,
    /// What else the audit row shows (`created`, `invitation_id`, the recovery link's
    /// provider…): never secrets.
    pub detail: Map<String, Value>,
    /// The device cookie a password login hands its browser (see `Accounts::login`).
    pub device: Option<String>,
}

impl Verified {
    pub fn new(user: UserRow, method: Method) -> Self {
        Verified { user, method, detail: Map::new(), device: None }
    }

    /// Adds a fact to the audit row.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(key.to_owned(), value.into());
        self
    }
}

/// Where the session starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartIn {
    /// The user's default organization (behavior.md §2.3).
    Default,
    /// An organization the user belongs to (the one an invitation just made them join).
    Organization(OrgId),
}

/// A signed-in user and their new session's tokens.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: UserRow,
    pub tokens: Issued,
    /// After a password login: the device token this browser keeps.
    pub device: Option<String>,
}

/// The completion of every sign-in.
#[derive(Clone)]
pub struct SignIns {
    core: Core,
    sessions: Sessions,
}

impl SignIns {
    pub(crate) fn new(core: Core, sessions: Sessions) -> Self {
        Self { core, sessions }
    }

    /// Completes the sign-in of `v` in `tx` and commits (see the module docs). A refusal
    /// returns with `tx` dropped: nothing the method wrote in it is kept.
    pub(crate) async fn complete(
        &self,
        mut tx: Tx,
        v: Verified,
        audience: Audience,
        start_in: StartIn,
        client: &ClientInfo,
    ) -> Result<SignedIn, SessionError> {
        // The user as this transaction sees it: disabled a moment ago is disabled.
        let user = tx.user_by_id(v.user.id).await?.ok_or(SessionError::Disabled)?;
        if user.disabled_at_ms.is_some() {
            return Err(SessionError::Disabled);
        }
        if !self.core.allowed_in(&mut tx, &user.email).await? {
            return Err(SessionError::NotAllowed);
        }
        let roles = tx.user_roles(user.id).await?;
        if !audience.permits(&roles) {
            return Err(SessionError::AudienceForbidden);
        }
        let membership = match start_in {
            StartIn::Organization(org) => tx
                .membership(org, user.id)
                .await?
                .map(|m| Membership { organization_id: m.organization_id, role: m.role }),
            StartIn::Default => tx.default_membership(user.id).await?,
        }
        .ok_or(SessionError::NoOrganization)?;
        let (session_id, tokens) = self.sessions.start(&mut tx, &user, membership, &roles, audience, client).await?;
        let event = DomainEvent::SignedIn {
            user_id: user.id,
            email: &user.email,
            method: v.method.name(),
            audience,
            session_id,
            detail: Value::Object(v.detail),
        };
        self.core.record(&mut tx, &Actor::user(user.id, client), &event).await?;
        tx.commit().await?;
        Ok(SignedIn { user, tokens, device: v.device })
    }
}
