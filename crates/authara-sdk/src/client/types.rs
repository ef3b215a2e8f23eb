//! The contract's schemas the internal API answers with.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::claims::OrgRole;

/// An organization's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgKind {
    /// `personal`: the one a user gets at signup (in personal mode).
    Personal,
    /// `team`: created for a group of users.
    Team,
}

/// `Organization`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Organization {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// `personal` or `team`.
    pub kind: OrgKind,
    /// Who created it, when known.
    #[serde(default)]
    pub created_by_user_id: Option<Uuid>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// `Membership`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Membership {
    /// The organization.
    pub organization_id: Uuid,
    /// The member.
    pub user_id: Uuid,
    /// The member's role.
    pub role: OrgRole,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// `OrganizationWithMembership`: a new organization and its owner's membership.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct OrganizationWithMembership {
    /// The organization.
    pub organization: Organization,
    /// The creator's membership (role `owner`).
    pub membership: Membership,
}

/// An invitation's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvitationStatus {
    /// Waiting to be accepted.
    Pending,
    /// Accepted: the user is a member.
    Accepted,
    /// Revoked (also when replaced by a resend).
    Revoked,
    /// Past its expiry.
    Expired,
}

/// `OrganizationInvitation`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Invitation {
    /// Its id.
    pub id: Uuid,
    /// The organization.
    pub organization_id: Uuid,
    /// The invited address.
    pub email: String,
    /// The role it grants.
    pub role: OrgRole,
    /// The application's metadata, stored and sent back as given.
    pub metadata: Map<String, Value>,
    /// Its state.
    pub status: InvitationStatus,
    /// RFC 3339.
    pub expires_at: String,
    /// The link to accept it (only in the answers to create and resend). It carries the
    /// invitation's secret token: hand it only to the invited person.
    #[serde(default)]
    pub invite_url: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct InvitationEnvelope {
    pub(crate) invitation: Invitation,
}

/// What [`InternalClient::create_invitation`](super::InternalClient::create_invitation) sends.
#[derive(Debug, Clone, Serialize)]
pub struct NewInvitation {
    actor_user_id: Uuid,
    email: String,
    role: OrgRole,
    metadata: Map<String, Value>,
}

impl NewInvitation {
    /// Invites `email` as a member, on behalf of `actor_user_id` (an owner or admin of the
    /// organization).
    pub fn new(actor_user_id: Uuid, email: impl Into<String>) -> Self {
        Self { actor_user_id, email: email.into(), role: OrgRole::Member, metadata: Map::new() }
    }

    /// The role to grant: `Member` (default) or `Admin` (the server refuses `Owner`).
    #[must_use]
    pub fn role(mut self, role: OrgRole) -> Self {
        self.role = role;
        self
    }

    /// Metadata stored with the invitation and sent back in its events.
    #[must_use]
    pub fn metadata(mut self, metadata: Map<String, Value>) -> Self {
        self.metadata = metadata;
        self
    }
}
