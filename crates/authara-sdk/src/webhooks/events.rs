//! The events of `contract/webhooks.yaml`.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::WebhookError;
use crate::claims::OrgRole;
use crate::client::OrgKind;

/// A delivery's envelope: `{"id","type","created_at","data"}`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WebhookEvent {
    /// The delivery's id, the same across retries (and in `X-Authara-Delivery`): deduplicate
    /// on it.
    pub id: String,
    /// When the change happened, RFC 3339 in UTC (`2026-01-02T03:04:05.678Z`).
    pub created_at: String,
    /// What happened.
    pub event: Event,
}

/// What happened, by event type.
///
/// Types this version does not know arrive as [`Event::Other`], so a newer server never
/// breaks an older receiver.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// `user.created`
    UserCreated(UserChanged),
    /// `user.updated`
    UserUpdated(UserChanged),
    /// `user.deleted`
    UserDeleted(UserChanged),
    /// `organization.created`
    OrganizationCreated(OrganizationChanged),
    /// `organization.updated`
    OrganizationUpdated(OrganizationChanged),
    /// `organization.deleted`
    OrganizationDeleted(OrganizationChanged),
    /// `organization.membership.created`
    MembershipCreated(MembershipCreated),
    /// `organization.membership.updated`
    MembershipUpdated(MembershipChanged),
    /// `organization.membership.deleted`
    MembershipDeleted(MembershipChanged),
    /// `organization.invitation.created`
    InvitationCreated(InvitationCreated),
    /// `organization.invitation.accepted`
    InvitationAccepted(InvitationAccepted),
    /// `organization.invitation.revoked`
    InvitationRevoked(InvitationRevoked),
    /// A type this version does not know.
    Other {
        /// The `type` field.
        kind: String,
        /// The `data` field.
        data: Value,
    },
}

impl Event {
    /// The event's type, as in `X-Authara-Event`.
    pub fn kind(&self) -> &str {
        match self {
            Event::UserCreated(_) => "user.created",
            Event::UserUpdated(_) => "user.updated",
            Event::UserDeleted(_) => "user.deleted",
            Event::OrganizationCreated(_) => "organization.created",
            Event::OrganizationUpdated(_) => "organization.updated",
            Event::OrganizationDeleted(_) => "organization.deleted",
            Event::MembershipCreated(_) => "organization.membership.created",
            Event::MembershipUpdated(_) => "organization.membership.updated",
            Event::MembershipDeleted(_) => "organization.membership.deleted",
            Event::InvitationCreated(_) => "organization.invitation.created",
            Event::InvitationAccepted(_) => "organization.invitation.accepted",
            Event::InvitationRevoked(_) => "organization.invitation.revoked",
            Event::Other { kind, .. } => kind,
        }
    }
}

/// `data` of `user.created`, `user.updated` and `user.deleted`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct UserChanged {
    /// The user.
    pub user_id: Uuid,
}

/// `data` of `organization.created`, `.updated` and `.deleted`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct OrganizationChanged {
    /// The organization.
    pub organization_id: Uuid,
    /// Its name.
    pub name: String,
    /// `personal` or `team`.
    pub kind: OrgKind,
    /// Who created it (`None` for a creator since deleted).
    pub created_by_user_id: Option<Uuid>,
}

/// `data` of `organization.membership.created`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct MembershipCreated {
    /// The organization.
    pub organization_id: Uuid,
    /// The new member.
    pub user_id: Uuid,
    /// The member's role.
    pub role: OrgRole,
    /// `true` for the membership that comes with a new organization.
    pub is_initial_membership: bool,
    /// The invitation it came from, if any.
    pub invitation_id: Option<Uuid>,
    /// The invitation's metadata (`{}` otherwise).
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

/// `data` of `organization.membership.updated` and `.deleted`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct MembershipChanged {
    /// The organization.
    pub organization_id: Uuid,
    /// The member.
    pub user_id: Uuid,
    /// The member's role (after an update; before a deletion).
    pub role: OrgRole,
}

/// `data` of `organization.invitation.created`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct InvitationCreated {
    /// The invitation.
    pub invitation_id: Uuid,
    /// The organization.
    pub organization_id: Uuid,
    /// The invited address.
    pub email: String,
    /// The role it grants.
    pub role: OrgRole,
    /// The application's metadata.
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// Who invited.
    pub invited_by_user_id: Option<Uuid>,
    /// RFC 3339.
    pub expires_at: String,
}

/// `data` of `organization.invitation.accepted`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct InvitationAccepted {
    /// The invitation.
    pub invitation_id: Uuid,
    /// The organization.
    pub organization_id: Uuid,
    /// The invited address.
    pub email: String,
    /// The role granted.
    pub role: OrgRole,
    /// The application's metadata.
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// Who accepted.
    pub accepted_by_user_id: Uuid,
    /// RFC 3339.
    pub accepted_at: String,
}

/// `data` of `organization.invitation.revoked`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct InvitationRevoked {
    /// The invitation.
    pub invitation_id: Uuid,
    /// The organization.
    pub organization_id: Uuid,
    /// The invited address.
    pub email: String,
    /// The role it would have granted.
    pub role: OrgRole,
    /// The application's metadata.
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// Who revoked.
    pub revoked_by_user_id: Option<Uuid>,
    /// RFC 3339.
    pub revoked_at: String,
}

#[derive(Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created_at: String,
    data: Value,
}

impl WebhookEvent {
    /// Parses a delivery's body. Check its signature first ([`super::WebhookVerifier`]).
    pub fn parse(body: &[u8]) -> Result<Self, WebhookError> {
        let env: Envelope = serde_json::from_slice(body).map_err(|e| WebhookError::InvalidEvent(e.to_string()))?;
        fn data<T: DeserializeOwned>(v: Value, wrap: fn(T) -> Event) -> Result<Event, WebhookError> {
            serde_json::from_value(v).map(wrap).map_err(|e| WebhookError::InvalidEvent(e.to_string()))
        }
        let event = match env.kind.as_str() {
            "user.created" => data(env.data, Event::UserCreated)?,
            "user.updated" => data(env.data, Event::UserUpdated)?,
            "user.deleted" => data(env.data, Event::UserDeleted)?,
            "organization.created" => data(env.data, Event::OrganizationCreated)?,
            "organization.updated" => data(env.data, Event::OrganizationUpdated)?,
            "organization.deleted" => data(env.data, Event::OrganizationDeleted)?,
            "organization.membership.created" => data(env.data, Event::MembershipCreated)?,
            "organization.membership.updated" => data(env.data, Event::MembershipUpdated)?,
            "organization.membership.deleted" => data(env.data, Event::MembershipDeleted)?,
            "organization.invitation.created" => data(env.data, Event::InvitationCreated)?,
            "organization.invitation.accepted" => data(env.data, Event::InvitationAccepted)?,
            "organization.invitation.revoked" => data(env.data, Event::InvitationRevoked)?,
            _ => Event::Other { kind: env.kind, data: env.data },
        };
        Ok(WebhookEvent { id: env.id, created_at: env.created_at, event })
    }
}
